defmodule ObjectStoreX.Transfer do
  @moduledoc """
  Bulk copies of many objects between stores, spread over the nodes of a cluster.

      from = {:local, root: "/data/exports"}
      to = {:s3, bucket: "archive", region: "eu-west-1"}
      {:ok, %{copied: 10_000, bytes: _}} =
        ObjectStoreX.Transfer.copy_many(from, to, paths, nodes: [node() | Node.list()])

  Each object is streamed from one store to the other (`ObjectStoreX.Stream.download/3` into
  `ObjectStoreX.Stream.upload/4`), so memory stays bounded whatever its size. Stores are given
  as `{backend, options}` (what `ObjectStoreX.new/2` takes), because a store handle lives in
  one VM: every node builds its own stores from them.

  The calling process hands out one path at a time to `:max_concurrency` copiers per node
  (default 4), each taking the next when done, so fast nodes take more work
  (`CloudStreams.Cluster.Dispatcher`). When a node goes down (or a copier dies), the objects
  it was copying are handed out again to the others; copies are idempotent, so every object
  ends up copied exactly once in the destination.

  Returns `{:ok, %{copied: n, bytes: total}}`, `{:error, %ObjectStoreX.Error{}}` when a store
  spec does not build (nothing is copied), or `{:error, %{copied: n, bytes: total,
  failed: [{path, reason}]}}` when some copies failed. A reason is an `ObjectStoreX.Error`
  when the store failed (the store's client already retried it;
  `ObjectStoreX.Error.retryable?/1` says which are worth another run), of kind
  `:invalid_argument` when `:to_path` raised or returned something other than a string, and a
  `CloudStreams.Error` when a copier crashed `:max_attempts` times on that object (kind
  `:worker_crashed`) or no listed node could run a copier (kind `:no_workers`, its message
  says why for each node).
  """

  alias CloudStreams.Cluster.Dispatcher
  alias CloudStreams.Telemetry
  alias ObjectStoreX.Error

  @behaviour Dispatcher

  @type store_spec :: {ObjectStoreX.backend(), keyword()}
  @type summary :: %{copied: non_neg_integer(), bytes: non_neg_integer()}
  @type failure :: {String.t(), Error.t() | CloudStreams.Error.t()}

  @doc """
  Copies every path of `paths` from `from` to `to` (same path on both). Options:

    * `:nodes` - the nodes to copy on (default `[node()]`)
    * `:max_concurrency` - copiers per node (default 4)
    * `:to_path` - a function mapping a source path to its destination path (default: the
      same); it runs in the calling process, so it needs no code on the other nodes
    * `:max_attempts` - how many times an object is tried when its copier crashes or dies
      (default 3), with a backoff between attempts

      iex> dir = Path.join(System.tmp_dir!(), "transfer-doc-\#{System.unique_integer([:positive])}")
      iex> from = {:local, root: Path.join(dir, "a"), create_root: true}
      iex> to = {:local, root: Path.join(dir, "b"), create_root: true}
      iex> source = ObjectStoreX.new!(elem(from, 0), elem(from, 1))
      iex> for i <- 1..3, do: ObjectStoreX.put!(source, "f\#{i}", "data \#{i}")
      iex> ObjectStoreX.Transfer.copy_many(from, to, ["f1", "f2", "f3"])
      {:ok, %{copied: 3, bytes: 18}}
  """
  @spec copy_many(store_spec(), store_spec(), Enumerable.t(), keyword()) ::
          {:ok, summary()}
          | {:error, %{copied: non_neg_integer(), bytes: non_neg_integer(), failed: [failure()]}}
          | {:error, Error.t()}
  def copy_many(from, to, paths, opts \\ []) do
    opts =
      CloudStreams.Options.validate!(
        opts,
        [
          nodes: {:any, nil},
          max_concurrency: {:pos_integer, 4},
          to_path: {{:or_nil, {:fun, 1}}, nil},
          max_attempts: {:pos_integer, 3}
        ],
        "ObjectStoreX.Transfer.copy_many/4"
      )

    check_spec!(from, :from)
    check_spec!(to, :to)
    nodes = nodes!(opts.nodes)
    paths = paths!(paths)
    # Both stores must build here first: a bad configuration fails once, clearly.
    with {:ok, _} <- build(from), {:ok, _} <- build(to) do
      {items, refused} = items(paths, opts.to_path || (& &1))
      span = copy_span(from, to, nodes, length(paths))

      summary =
        Dispatcher.start(__MODULE__, {from, to},
          items: items,
          nodes: nodes,
          max_concurrency: opts.max_concurrency,
          max_attempts: opts.max_attempts,
          name: "copier of ObjectStoreX.Transfer.copy_many/4"
        )
        |> collect(%{copied: 0, bytes: 0, failed: refused})

      totals = %{copied: summary.copied, bytes: summary.bytes, failed: length(summary.failed)}
      Telemetry.stop(span, :done, totals)
      result(summary)
    end
  end

  # Backends only: a store spec holds credentials.
  defp copy_span(from, to, nodes, count) do
    Telemetry.start([:cloud_streams, :object_store, :copy_many], %{
      operation: :copy_many,
      from_backend: elem(from, 0),
      to_backend: elem(to, 0),
      nodes: length(nodes),
      paths: count
    })
  end

  defp check_spec!({backend, opts}, _name) when is_atom(backend) and is_list(opts), do: :ok

  # The value is not shown: a misplaced store configuration holds credentials.
  defp check_spec!(_other, name) do
    raise ArgumentError,
          "ObjectStoreX.Transfer.copy_many/4 takes #{name} as {backend, options} (every node " <>
            "builds its own store from it; a store handle lives in one VM)"
  end

  defp nodes!(nil), do: [node()]

  defp nodes!(nodes) when is_list(nodes) and nodes != [] do
    if Enum.all?(nodes, &is_atom/1),
      do: Enum.uniq(nodes),
      else: raise(ArgumentError, "invalid value for option :nodes: expected node names")
  end

  defp nodes!(other),
    do: raise(ArgumentError, "invalid value for option :nodes: got: #{inspect(other)}")

  defp build({backend, opts}), do: ObjectStoreX.new(backend, opts)

  defp paths!(paths) do
    unless Enumerable.impl_for(paths) do
      raise ArgumentError,
            "ObjectStoreX.Transfer.copy_many/4 takes paths as an enumerable of strings, " <>
              "got: #{inspect(paths)}"
    end

    paths = Enum.to_list(paths)

    case Enum.find_index(paths, &(not is_binary(&1))) do
      nil ->
        paths

      index ->
        raise ArgumentError,
              "ObjectStoreX.Transfer.copy_many/4 takes paths as strings, got " <>
                "#{inspect(Enum.at(paths, index))} at position #{index}"
    end
  end

  # `{items, failures}`: an item is `{{index, path}, {path, destination}}` (the index keeps a
  # path listed twice as two copies, as asked). A path whose destination cannot be computed
  # fails here, before any copier sees it.
  defp items(paths, to_path) do
    paths
    |> Enum.with_index()
    |> Enum.reduce({[], []}, fn {path, index}, {items, failed} ->
      case destination(path, to_path) do
        {:ok, destination} -> {[{{index, path}, {path, destination}} | items], failed}
        {:error, error} -> {items, [{path, error} | failed]}
      end
    end)
    |> then(fn {items, failed} -> {Enum.reverse(items), failed} end)
  end

  defp destination(path, to_path) do
    case to_path.(path) do
      destination when is_binary(destination) ->
        {:ok, destination}

      other ->
        {:error, invalid(path, "to_path returned #{inspect(other)} for it, not a string")}
    end
  rescue
    exception ->
      {:error,
       invalid(
         path,
         "to_path raised #{inspect(exception.__struct__)}: " <> Exception.message(exception)
       )}
  catch
    kind, reason ->
      {:error, invalid(path, "to_path #{kind}: #{inspect(reason, limit: 10)}")}
  end

  defp invalid(path, message), do: %Error{kind: :invalid_argument, path: path, message: message}

  defp collect(dispatcher, summary) do
    case Dispatcher.next(dispatcher) do
      {:completed, _id, bytes, dispatcher} ->
        collect(dispatcher, %{summary | copied: summary.copied + 1, bytes: summary.bytes + bytes})

      {:failed, {_index, path}, reason, dispatcher} ->
        collect(dispatcher, %{summary | failed: [{path, reason} | summary.failed]})

      {:done, _dispatcher} ->
        summary
    end
  end

  defp result(%{failed: [], copied: copied, bytes: bytes}),
    do: {:ok, %{copied: copied, bytes: bytes}}

  defp result(summary), do: {:error, %{summary | failed: Enum.reverse(summary.failed)}}

  @impl Dispatcher
  @doc false
  # On each copier's node: both stores, built there from their specs.
  def init({from, to}) do
    with {:ok, source} <- build(from), {:ok, destination} <- build(to) do
      {:ok, {source, destination}}
    else
      {:error, error} -> {:error, "its stores could not be built: " <> Exception.message(error)}
    end
  end

  @impl Dispatcher
  @doc false
  def run({from, to}, {path, destination}, _emit) do
    counter = :counters.new(1, [])

    from
    |> ObjectStoreX.Stream.download(path)
    |> Stream.each(&:counters.add(counter, 1, byte_size(&1)))
    |> ObjectStoreX.Stream.upload(to, destination)
    |> case do
      :ok -> {:ok, :counters.get(counter, 1)}
      {:error, error} -> {:error, error}
    end
  rescue
    error in Error -> {:error, error}
  end
end
