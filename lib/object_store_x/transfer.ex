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
  (default 4), each asking for the next when done, so fast nodes take more work. When a node
  goes down (or a copier dies), the objects it was copying are handed out again to the others;
  copies are idempotent, so every object ends up copied exactly once in the destination.

  Returns `{:ok, %{copied: n, bytes: total}}`, or `{:error, %{copied: n, bytes: total,
  failed: [{path, %ObjectStoreX.Error{}}]}}` when some copies failed (each was tried once;
  `ObjectStoreX.Error.retryable?/1` says which are worth another run).
  """

  alias ObjectStoreX.Error

  @type store_spec :: {ObjectStoreX.backend(), keyword()}
  @type summary :: %{copied: non_neg_integer(), bytes: non_neg_integer()}

  @doc """
  Copies every path of `paths` from `from` to `to` (same path on both). Options: `:nodes`
  (default `[node()]`), `:max_concurrency` (copiers per node, default 4), `:to_path` (a
  function mapping a source path to its destination path, default: the same).

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
          | {:error, %{copied: non_neg_integer(), bytes: non_neg_integer(), failed: list()}}
  def copy_many(from, to, paths, opts \\ []) do
    opts =
      CloudStreams.Options.validate!(
        opts,
        [
          nodes: {:any, nil},
          max_concurrency: {:pos_integer, 4},
          to_path: {{:or_nil, {:fun, 1}}, nil}
        ],
        "ObjectStoreX.Transfer.copy_many/4"
      )

    check_spec!(from, :from)
    check_spec!(to, :to)
    nodes = nodes!(opts.nodes)
    # Both stores must build here first: a bad configuration fails once, clearly.
    with {:ok, _} <- build(from), {:ok, _} <- build(to) do
      paths = Enum.to_list(paths)
      job = %{from: from, to: to, to_path: opts.to_path}

      state = %{
        queue: :queue.from_list(paths),
        copiers: %{},
        nodes: nodes,
        job: job,
        copied: 0,
        bytes: 0,
        failed: []
      }

      state =
        for node <- nodes, _ <- 1..opts.max_concurrency, reduce: state do
          state -> start_copier(state, node)
        end

      state |> loop() |> result()
    end
  end

  defp check_spec!({backend, opts}, _name) when is_atom(backend) and is_list(opts), do: :ok

  defp check_spec!(other, name) do
    raise ArgumentError,
          "ObjectStoreX.Transfer.copy_many/4 takes #{name} as {backend, options} (every node " <>
            "builds its own store from it), got: #{inspect(other)}"
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

  defp start_copier(state, node) do
    args = [self(), state.job]

    started =
      try do
        Task.Supervisor.start_child(
          {CloudStreams.TaskSupervisor, node},
          __MODULE__,
          :copier,
          args
        )
      catch
        :exit, reason -> {:error, reason}
      end

    case started do
      {:ok, pid} ->
        monitor = Process.monitor(pid)
        put_in(state.copiers[monitor], %{pid: pid, node: node, path: nil})

      {:error, _} ->
        state
    end
  end

  defp loop(state) do
    if map_size(state.copiers) == 0 do
      if :queue.is_empty(state.queue) do
        state
      else
        # Every copier is gone (their nodes went down): the rest is copied here.
        state |> start_copier(node()) |> loop()
      end
    else
      receive do
        {:want, pid} ->
          state |> hand_out(pid) |> loop()

        {:copied, pid, bytes} ->
          state = %{state | copied: state.copied + 1, bytes: state.bytes + bytes}
          state |> hand_out(pid) |> loop()

        {:failed, pid, path, %Error{} = error} ->
          state = %{state | failed: [{path, error} | state.failed]}
          state |> hand_out(pid) |> loop()

        {:DOWN, monitor, :process, _pid, reason} when is_map_key(state.copiers, monitor) ->
          {copier, copiers} = Map.pop(state.copiers, monitor)
          state = %{state | copiers: copiers}

          # A copier that died mid-copy (its node went down): its object goes back in line.
          state =
            if copier.path != nil and reason != :normal,
              do: %{state | queue: :queue.in_r(copier.path, state.queue)},
              else: state

          loop(state)
      end
    end
  end

  # Records the path a copier is copying (nil: none), to hand it out again if the copier dies.
  defp copying(state, pid, path) do
    case Enum.find(state.copiers, fn {_m, c} -> c.pid == pid end) do
      {monitor, copier} -> put_in(state.copiers[monitor], %{copier | path: path})
      nil -> state
    end
  end

  defp hand_out(state, pid) do
    case :queue.out(state.queue) do
      {{:value, path}, queue} ->
        send(pid, {:copy, path})
        copying(%{state | queue: queue}, pid, path)

      {:empty, _} ->
        send(pid, :stop)
        copying(state, pid, nil)
    end
  end

  defp result(%{failed: [], copied: copied, bytes: bytes}),
    do: {:ok, %{copied: copied, bytes: bytes}}

  defp result(state),
    do: {:error, %{copied: state.copied, bytes: state.bytes, failed: Enum.reverse(state.failed)}}

  @doc false
  # A copier, on its node: asks for a path, copies it, reports, until told to stop or until
  # the coordinator exits.
  def copier(coordinator, job) do
    watch = Process.monitor(coordinator)
    {:ok, from} = build(job.from)
    {:ok, to} = build(job.to)
    send(coordinator, {:want, self()})
    copy_loop(coordinator, watch, from, to, job.to_path || (& &1))
  end

  defp copy_loop(coordinator, watch, from, to, to_path) do
    receive do
      {:copy, path} ->
        send(coordinator, copy_one(from, to, path, to_path.(path)))
        copy_loop(coordinator, watch, from, to, to_path)

      :stop ->
        :ok

      {:DOWN, ^watch, :process, _, _} ->
        :ok
    end
  end

  defp copy_one(from, to, path, destination) do
    counter = :counters.new(1, [])

    from
    |> ObjectStoreX.Stream.download(path)
    |> Stream.each(&:counters.add(counter, 1, byte_size(&1)))
    |> ObjectStoreX.Stream.upload(to, destination)
    |> case do
      :ok -> {:copied, self(), :counters.get(counter, 1)}
      {:error, error} -> {:failed, self(), path, error}
    end
  rescue
    error in Error -> {:failed, self(), path, error}
  end
end
