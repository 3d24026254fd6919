defmodule Dynamo.Table.Stream.Distributed do
  @moduledoc """
  A parallel scan whose segments are read on several nodes of a cluster:
  `Dynamo.Table.Stream.parallel_scan(User, segments: 8, nodes: [node() | Node.list()])`.

  It runs on the BEAM's own distribution, through `CloudStreams.Cluster.Dispatcher`. Each
  segment is read by a reader process under a node's `CloudStreams.TaskSupervisor`, with a
  native stream of its own, and its pages are decoded into structs there. Segments are spread
  over the nodes (at most `:max_concurrency` at once over all of them, by default all; at most
  64 per node unless `:max_concurrency` says more); a reader that finishes its segment takes
  the next one waiting. The enumerating process pulls pages from the readers the same way it
  pulls from a native stream: a reader sends a page only when asked, and at most one page per
  node is in flight, so memory stays bounded however large the table is.

  Every page carries its segment's position. When a node goes down (or its reader dies)
  mid-scan, its unfinished segments are read again from their last delivered positions on the
  other nodes of the list: nothing is lost and nothing is delivered twice. A DynamoDB error
  raises `Dynamo.Error` from the enumeration, as in a local scan. A reader that crashes (an
  exception other than `Dynamo.Error`, a kill) is replaced and its segment tried again, at most
  3 times, after which the enumeration raises `CloudStreams.Error` (kind `:worker_crashed`).
  When no listed node can run a reader (not reachable, `:cloud_streams` not started there, the
  schema module not loaded there), it raises `CloudStreams.Error` of kind `:no_workers`, whose
  message gives each node's reason. Stopping the enumeration, or the death of the enumerating
  process, stops every reader.

  Each node needs `:cloud_streams` running, the schema module loaded, and DynamoDB
  configuration (its application environment, or `config:` in the options, which travels with
  the request, wrapped so that no crash report prints it). Functions in the options
  (`on_checkpoint:`) run in the enumerating process.
  """

  alias CloudStreams.Cluster.Dispatcher
  alias CloudStreams.Telemetry
  alias Dynamo.Table.Stream, as: TableStream

  @behaviour Dispatcher

  # Readers per node when `:max_concurrency` is not given: enough to keep DynamoDB busy, few
  # enough that a scan of many segments does not start a process per segment.
  @default_per_node 64

  @doc false
  @spec stream(module(), map(), [node()]) :: Enumerable.t()
  def stream(schema, opts, nodes) do
    nodes = validate_nodes!(nodes)
    segments = opts.segments

    Stream.resource(
      fn -> start(schema, opts, nodes, segments) end,
      &next/1,
      &stop/1
    )
  end

  defp validate_nodes!(nodes) when is_list(nodes) and nodes != [] do
    if Enum.all?(nodes, &is_atom/1) do
      Enum.uniq(nodes)
    else
      raise ArgumentError, "invalid value for option :nodes: expected a list of node names"
    end
  end

  defp validate_nodes!(other) do
    raise ArgumentError,
          "invalid value for option :nodes: expected a non-empty list of node names, got: " <>
            inspect(other)
  end

  defp start(schema, opts, nodes, segments) do
    positions = TableStream.initial_positions(opts, segments)
    # Each segment is an item; its payload is where it starts (nil or a key), kept up to date
    # with each delivered page, so a retried segment resumes where it stopped.
    items = for {s, p} <- Enum.sort(positions), p != "done", do: {s, {s, p}}
    # What every reader is given: plain options, without the caller-side callback.
    remote_opts =
      opts
      |> Map.drop([:on_checkpoint, :resume])
      |> Map.put(:segments, segments)
      |> Map.to_list()
      |> Enum.reject(fn {_k, v} -> is_nil(v) end)

    per_node =
      if opts.max_concurrency,
        do: div(opts.max_concurrency + length(nodes) - 1, length(nodes)),
        else: min(div(segments + length(nodes) - 1, length(nodes)), @default_per_node)

    dispatcher =
      Dispatcher.start(__MODULE__, {schema, remote_opts, segments},
        items: items,
        nodes: nodes,
        max_concurrency: per_node,
        pull: true,
        name: "reader of Dynamo.Table.Stream.parallel_scan/2"
      )

    span =
      Telemetry.start([:cloud_streams, :dynamo, :distributed_scan], %{
        operation: :distributed_scan,
        table: schema.__dynamo__(:table),
        segments: segments,
        nodes: length(nodes)
      })

    %{
      telemetry: span,
      failed: nil,
      dispatcher: dispatcher,
      segments: segments,
      positions: positions,
      consumed: nil,
      on_checkpoint: opts.on_checkpoint
    }
  end

  defp next(%{dispatcher: nil} = state), do: {:halt, state}

  defp next(state) do
    case Dispatcher.next(state.dispatcher) do
      {:output, segment, {structs, position}, dispatcher} ->
        # Handed to the consumer: delivered. A retried segment starts after it.
        state = TableStream.commit(state)
        dispatcher = Dispatcher.update(dispatcher, segment, {segment, position})
        span = Telemetry.count(state.telemetry, :pages, 1)
        span = Telemetry.count(span, :items, length(structs))

        {structs,
         %{state | dispatcher: dispatcher, consumed: {segment, position}, telemetry: span}}

      {:completed, _segment, _, dispatcher} ->
        {[],
         %{
           state
           | dispatcher: dispatcher,
             telemetry: Telemetry.count(state.telemetry, :segments, 1)
         }}

      {:failed, _segment, reason, dispatcher} ->
        # Raised by stop/1, which ends the span first. Readers started since the last page
        # are known to this dispatcher only.
        {:halt, %{state | dispatcher: dispatcher, failed: reason}}

      {:done, _dispatcher} ->
        {:halt, %{TableStream.commit(state) | dispatcher: nil}}
    end
  end

  defp stop(%{dispatcher: nil} = state), do: Telemetry.stop(state.telemetry, :done)

  defp stop(%{failed: nil} = state) do
    Dispatcher.stop(state.dispatcher)
    Telemetry.stop(state.telemetry, :halted)
  end

  defp stop(%{failed: reason} = state) do
    Dispatcher.stop(state.dispatcher)
    Telemetry.exception(state.telemetry, :error, reason, [])
    raise reason
  end

  @impl Dispatcher
  @doc false
  # On each reader's node: the schema must be there.
  def init({schema, _opts, _segments} = context) do
    if Code.ensure_loaded?(schema) and function_exported?(schema, :__dynamo__, 1),
      do: {:ok, context},
      else: {:error, "the schema module #{inspect(schema)} is not loaded there"}
  end

  @impl Dispatcher
  @doc false
  # One segment from `start`, a page per pull. A segment whose last page was delivered before
  # its reader was lost is done.
  def run(_context, {_segment, "done"}, _emit), do: {:ok, nil}

  def run({schema, opts, segments}, {segment, start}, emit) do
    schema
    |> TableStream.segment_pages(opts, segments, [{segment, start}])
    |> Enum.each(fn {_segment, structs, position} -> emit.({structs, position}) end)

    {:ok, nil}
  rescue
    error in Dynamo.Error -> {:error, error}
  end
end
