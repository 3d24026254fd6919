defmodule Dynamo.Table.Stream.Distributed do
  @moduledoc """
  A parallel scan whose segments are read on several nodes of a cluster:
  `Dynamo.Table.Stream.parallel_scan(User, segments: 8, nodes: [node() | Node.list()])`.

  It runs on the BEAM's own distribution. Segments are dealt round-robin to the nodes; on
  each, a process under that node's `CloudStreams.TaskSupervisor` reads its segments with a
  native stream of its own and decodes the pages into structs there. The enumerating process
  pulls pages from those readers the same way it pulls from a native stream: each reader sends
  a page only when asked, and is asked for the next one when its page arrives, so at most one
  page per node is in flight and memory stays bounded however large the table is.

  Every page carries its segment's position. When a node goes down (or its reader dies)
  mid-scan, its unfinished segments are read again from their last delivered positions on
  another node of the list (the local node if none is left): nothing is lost and nothing is
  delivered twice. A DynamoDB error raises `Dynamo.Error` from the enumeration, as in a local
  scan. Stopping the enumeration, or the death of the enumerating process, stops every reader.

  Each node needs `:cloud_streams` running, the schema module loaded, and DynamoDB
  configuration (its application environment, or `config:` in the options, which travels with
  the request). Functions in the options (`on_checkpoint:`) run in the enumerating process.
  """

  alias Dynamo.Table.Stream, as: TableStream

  @doc false
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
    todo = for {s, p} <- Enum.sort(positions), p != "done", do: s
    # What every reader is given: plain options, without the caller-side callback.
    remote_opts =
      opts
      |> Map.drop([:on_checkpoint, :resume])
      |> Map.put(:segments, segments)
      |> Map.to_list()
      |> Enum.reject(fn {_k, v} -> is_nil(v) end)

    state = %{
      schema: schema,
      opts: remote_opts,
      nodes: nodes,
      segments: segments,
      positions: positions,
      consumed: nil,
      on_checkpoint: opts.on_checkpoint,
      readers: %{}
    }

    todo
    |> Enum.with_index()
    |> Enum.group_by(fn {_s, i} -> Enum.at(nodes, rem(i, length(nodes))) end, &elem(&1, 0))
    |> Enum.reduce(state, fn {node, segs}, state -> start_reader(state, node, segs) end)
  end

  # Starts a reader of `segs` on `node` (or the first live node after it) and asks it for a page.
  defp start_reader(state, _node, []), do: state

  defp start_reader(state, node, segs) do
    # Segments handed to a reader are never "done": their position is nil or a key.
    starts = for s <- segs, do: {s, state.positions[s]}
    args = [self(), state.schema, state.opts, state.segments, starts]

    case start_child(node, args) do
      {:ok, pid} ->
        monitor = Process.monitor(pid)
        send(pid, {:pull, self()})
        put_in(state.readers[monitor], %{pid: pid, node: node, segments: segs})

      {:error, _reason} ->
        case live_nodes(state, node) do
          [next | _] -> start_reader(state, next, segs)
          [] -> start_reader(state, node(), segs)
        end
    end
  end

  defp start_child(node, args) do
    Task.Supervisor.start_child({CloudStreams.TaskSupervisor, node}, __MODULE__, :read, args)
  catch
    :exit, reason -> {:error, reason}
  end

  defp live_nodes(state, except) do
    connected = [node() | Node.list()]
    Enum.filter(state.nodes, &(&1 != except and &1 in connected))
  end

  defp next(%{readers: readers} = state) when map_size(readers) == 0 do
    {:halt, TableStream.commit(state)}
  end

  defp next(state) do
    receive do
      {:scan_page, pid, segment, structs, position} ->
        state = TableStream.commit(state)
        send(pid, {:pull, self()})
        {structs, %{state | consumed: {segment, position}}}

      {:scan_done, pid} ->
        {[], drop_reader(state, pid)}

      {:scan_error, _pid, error} ->
        raise error

      {:DOWN, monitor, :process, _pid, reason} when is_map_key(state.readers, monitor) ->
        {reader, readers} = Map.pop(state.readers, monitor)
        state = %{TableStream.commit(state) | readers: readers}

        case reason do
          :normal ->
            {[], state}

          _down ->
            # Its unfinished segments, from their last delivered positions, elsewhere.
            left = Enum.reject(reader.segments, &(state.positions[&1] == "done"))
            target = List.first(live_nodes(state, reader.node)) || node()
            {[], start_reader(state, target, left)}
        end
    end
  end

  defp drop_reader(state, pid) do
    case Enum.find(state.readers, fn {_m, r} -> r.pid == pid end) do
      {monitor, _} ->
        Process.demonitor(monitor, [:flush])
        %{state | readers: Map.delete(state.readers, monitor)}

      nil ->
        state
    end
  end

  defp stop(state) do
    for {monitor, reader} <- state.readers do
      Process.demonitor(monitor, [:flush])
      Process.exit(reader.pid, :kill)
    end

    :ok
  end

  @doc false
  # A reader, on its node: sends one page per `{:pull, coordinator}`, then `:scan_done`.
  def read(coordinator, schema, opts, segments, starts) do
    watch = Process.monitor(coordinator)

    try do
      schema
      |> TableStream.segment_pages(opts, segments, starts)
      |> Enum.each(fn {segment, structs, position} ->
        await_pull(watch)
        send(coordinator, {:scan_page, self(), segment, structs, position})
      end)

      await_pull(watch)
      send(coordinator, {:scan_done, self()})
    rescue
      error in Dynamo.Error ->
        await_pull(watch)
        send(coordinator, {:scan_error, self(), error})
    end
  end

  defp await_pull(watch) do
    receive do
      {:pull, _coordinator} -> :ok
      {:DOWN, ^watch, :process, _, _} -> exit(:normal)
    end
  end
end
