defmodule CloudStreams.Cluster.Dispatcher do
  @moduledoc """
  Hands items of work to worker processes on the nodes of a cluster, for
  `ObjectStoreX.Transfer.copy_many/4` and distributed scans (`Dynamo.Table.Stream.parallel_scan/2`
  with `nodes:`).

  The dispatcher runs in the calling process: `start/3` starts workers, `next/1` waits for the
  next event (an output, a completed item, a failed item, or the end). Workers run under each
  node's `CloudStreams.TaskSupervisor` and call a module implementing this module's callbacks:
  `c:init/1` once per worker, then `c:run/3` once per item. A worker that finishes an item is
  handed the next one, so fast nodes take more work.

    * Every message, both ways, carries the job's own reference, and the coordinator accepts
      a message only from a worker it started: two jobs driven by one process never take each
      other's messages.
    * An exception, throw or exit in `c:run/3` is caught and counts as a failed attempt; so does
      a worker that dies holding an item (except when its node went down or shut it down,
      which is no fault of the item). An item is tried again after a backoff (100 ms, doubling, at most 2 s) up to
      `:max_attempts` times, then reported failed with its last reason. `{:error, reason}` from
      `c:run/3` fails the item at once.
    * Lost workers are replaced on the nodes still usable, up to `:max_concurrency` per node,
      with a bound on the number of replacements. A node where a worker cannot start (not
      reachable, `:cloud_streams` not running) or where `c:init/1` fails takes no more workers.
      When pending items are left and no node can run a worker, each is reported failed with a
      `CloudStreams.Error` of kind `:no_workers` that says why, node by node.
    * In `pull: true` mode a worker sends an output (`emit`) or a result only when asked, and
      at most one such message per node is in flight.
    * The worker's arguments travel wrapped in a closure, so a crash report of a worker (which
      prints a process's arguments) shows no credentials.
    * Both sides monitor each other: a wait ends when the other side dies or its node is lost
      (OTP notices a silent node within `net_ticktime`). A caller that abandons a job calls
      `stop/1`; a caller that dies stops its workers by dying, even in the middle of an item.

  Events returned by `next/1`:

    * `{:output, id, data, state}` - something a worker emitted while running item `id`
    * `{:completed, id, value, state}` - `c:run/3` returned `{:ok, value}`
    * `{:failed, id, reason, state}` - the item will not be tried again
    * `{:done, state}` - every item is completed or failed; the workers are stopped

  Example: a worker module (compiled on every node), and a loop over the events.

      defmodule Doubler do
        @behaviour CloudStreams.Cluster.Dispatcher
        def init(factor), do: {:ok, factor}
        def run(factor, n, _emit), do: {:ok, n * factor}
      end

      state = Dispatcher.start(Doubler, 2, items: [a: 1, b: 2], nodes: [node() | Node.list()])
      {:completed, _id, _doubled, state} = Dispatcher.next(state)
      {:completed, _id, _doubled, state} = Dispatcher.next(state)
      {:done, _} = Dispatcher.next(state)
  """

  @typedoc "What identifies an item in events; any term, unique within the job."
  @type id :: term()
  @type event ::
          {:output, id(), term(), t()}
          | {:completed, id(), term(), t()}
          | {:failed, id(), term(), t()}
          | {:done, t()}
  @opaque t :: map()

  @doc "Runs once in each worker, on its node, before any item; `{:error, why}` marks the node unusable."
  @callback init(args :: term()) :: {:ok, context :: term()} | {:error, String.t()}

  @doc """
  Runs one item. `emit.(data)` hands `data` to the coordinator as an `:output` event (in pull
  mode it waits until the coordinator asks).
  """
  @callback run(context :: term(), payload :: term(), emit :: (term() -> :ok)) ::
              {:ok, term()} | {:error, term()}

  @coordinator_gone {__MODULE__, :coordinator_gone}
  @base_backoff 100
  @max_backoff 2_000

  @doc """
  Starts workers running `module` with `args` (handed to `c:init/1` on each worker's node).

  Options: `:items` (required, `[{id, payload}]`), `:nodes` (required, node names),
  `:max_concurrency` (workers per node, default 4), `:max_attempts` (per item, default 3),
  `:pull` (default false), `:name` (what errors call a worker, default "worker of <module>").
  Worker replacements are bounded: at most `max_attempts` times the workers the nodes can run.
  """
  @spec start(module(), term(), keyword()) :: t()
  def start(module, args, opts) do
    opts =
      CloudStreams.Options.validate!(
        opts,
        [
          items: {:any, :required},
          nodes: {:any, :required},
          max_concurrency: {:pos_integer, 4},
          max_attempts: {:pos_integer, 3},
          pull: {:boolean, false},
          name: {:string, "worker of #{inspect(module)}"}
        ],
        "CloudStreams.Cluster.Dispatcher.start/3"
      )

    %{nodes: nodes, max_concurrency: per_node, max_attempts: max_attempts, items: items} = opts

    state = %{
      ref: make_ref(),
      module: module,
      args: wrap(args),
      name: opts.name,
      pull: opts.pull,
      nodes: nodes,
      per_node: per_node,
      max_attempts: max_attempts,
      # Initial workers plus a bounded number of replacements.
      starts_left: length(nodes) * per_node * (1 + max_attempts),
      payloads: Map.new(items),
      attempts: %{},
      queue: :queue.from_list(Enum.map(items, &elem(&1, 0))),
      delayed: [],
      workers: %{},
      monitors: %{},
      unusable: %{},
      tokens: %{},
      pulls: 0,
      events: :queue.new()
    }

    fill(state)
  end

  @doc "Replaces the payload of item `id`: what it is started with if it has to run again."
  @spec update(t(), id(), term()) :: t()
  def update(state, id, payload), do: put_in(state.payloads[id], payload)

  @doc "Waits for the next event (see the module doc)."
  @spec next(t()) :: event()
  def next(state) do
    case :queue.out(state.events) do
      {{:value, event}, events} ->
        Tuple.append(event, %{state | events: events})

      {:empty, _} ->
        if finished?(state) do
          {:done, stop(state)}
        else
          state |> await() |> fill() |> next()
        end
    end
  end

  @doc "Stops every worker of the job (they exit `:shutdown`, which no report logs)."
  @spec stop(t()) :: t()
  def stop(state) do
    for {pid, worker} <- state.workers do
      Process.demonitor(worker.monitor, [:flush])
      Process.exit(pid, :shutdown)
    end

    %{state | workers: %{}, monitors: %{}, tokens: %{}}
  end

  defp finished?(state) do
    :queue.is_empty(state.queue) and state.delayed == [] and
      not Enum.any?(state.workers, fn {_pid, w} -> w.item != nil end)
  end

  # One message of this job: a worker's message, a worker's end, or the next backoff expiring.
  defp await(%{ref: ref} = state) do
    receive do
      {^ref, pid, message} when is_map_key(state.workers, pid) ->
        handle(state, pid, message)

      {:DOWN, monitor, :process, _pid, reason} when is_map_key(state.monitors, monitor) ->
        lost(state, Map.fetch!(state.monitors, monitor), reason)
    after
      wait_time(state) -> state
    end
  end

  defp wait_time(%{delayed: []}), do: :infinity

  defp wait_time(%{delayed: delayed}) do
    due = delayed |> Enum.map(&elem(&1, 0)) |> Enum.min()
    max(due - now(), 0)
  end

  defp handle(state, pid, {:output, id, data}) do
    state |> answered(pid) |> event({:output, id, data})
  end

  defp handle(state, pid, {:result, id, result}) do
    state = state |> answered(pid) |> idle(pid)

    case result do
      {:ok, value} -> event(state, {:completed, id, value})
      {:error, reason} -> event(state, {:failed, id, reason})
      {:retry, reason} -> retry(state, id, reason)
    end
  end

  defp handle(state, pid, {:init_failed, why}) do
    worker = state.workers[pid]
    state = forget(state, pid)
    state = put_in(state.unusable[worker.node], why)
    requeue(state, worker.item)
  end

  defp lost(state, pid, reason) do
    worker = state.workers[pid]
    state = forget(state, pid)

    cond do
      reason == :noconnection ->
        # The node went down: no fault of the item, which goes back first in line.
        state = put_in(state.unusable[worker.node], "it went down")
        requeue(state, worker.item)

      reason == :shutdown or match?({:shutdown, _}, reason) ->
        # The node is stopping (its supervisor shut the worker down): no fault of the item.
        state = put_in(state.unusable[worker.node], "it shut its workers down")
        requeue(state, worker.item)

      worker.item == nil ->
        state

      true ->
        error = %CloudStreams.Error{
          kind: :worker_crashed,
          message: "a #{state.name} on #{worker.node} exited: #{describe_exit(reason)}"
        }

        retry(state, worker.item, error)
    end
  end

  defp requeue(state, nil), do: state
  defp requeue(state, id), do: %{state | queue: :queue.in_r(id, state.queue)}

  defp retry(state, id, reason) do
    attempts = Map.get(state.attempts, id, 0) + 1
    state = put_in(state.attempts[id], attempts)

    if attempts >= state.max_attempts do
      event(state, {:failed, id, after_attempts(reason, attempts)})
    else
      delay = min(@base_backoff * Integer.pow(2, attempts - 1), @max_backoff)
      due = now() + delay + :rand.uniform(div(delay, 2) + 1) - 1

      CloudStreams.Telemetry.execute(
        [:cloud_streams, :cluster, :retry],
        %{attempt: attempts, backoff: delay},
        %{worker: state.name, error_kind: CloudStreams.Telemetry.error_kind(reason)}
      )

      %{state | delayed: [{due, id} | state.delayed]}
    end
  end

  defp after_attempts(%CloudStreams.Error{} = error, attempts),
    do: %{error | message: "#{error.message} (gave up after #{attempts} attempts)"}

  defp after_attempts(reason, _attempts), do: reason

  defp event(state, event), do: %{state | events: :queue.in(event, state.events)}

  defp forget(state, pid) do
    worker = Map.fetch!(state.workers, pid)
    Process.demonitor(worker.monitor, [:flush])
    state = answered(state, pid)

    %{
      state
      | workers: Map.delete(state.workers, pid),
        monitors: Map.delete(state.monitors, worker.monitor)
    }
  end

  # The worker's message answered its node's pull (in pull mode): the node can be asked again.
  defp answered(state, pid) do
    node = state.workers[pid].node

    if state.tokens[node] == pid,
      do: %{state | tokens: Map.delete(state.tokens, node)},
      else: state
  end

  defp idle(state, pid), do: put_in(state.workers[pid].item, nil)

  # Gives every waiting item a worker if one is idle or can be started, asks the nodes for
  # their next message in pull mode, and fails what is left when no worker can run it.
  defp fill(state) do
    state = state |> promote_due() |> hand_to_idle() |> start_workers()
    state = if state.pull, do: pull(state), else: state

    if map_size(state.workers) == 0 and not finished?(state) and not can_start?(state),
      do: fail_pending(state),
      else: state
  end

  defp promote_due(%{delayed: []} = state), do: state

  defp promote_due(state) do
    now = now()
    {due, later} = Enum.split_with(state.delayed, fn {time, _id} -> time <= now end)
    ids = due |> Enum.sort() |> Enum.map(&elem(&1, 1))
    %{state | delayed: later, queue: :queue.join(state.queue, :queue.from_list(ids))}
  end

  defp hand_to_idle(state) do
    with false <- :queue.is_empty(state.queue),
         {pid, _} <- Enum.find(state.workers, fn {_pid, w} -> w.item == nil end) do
      {{:value, id}, queue} = :queue.out(state.queue)
      %{state | queue: queue} |> give(pid, id) |> hand_to_idle()
    else
      _ -> state
    end
  end

  defp give(state, pid, id) do
    send(pid, {state.ref, {:item, id, Map.fetch!(state.payloads, id)}})
    put_in(state.workers[pid].item, id)
  end

  defp start_workers(state) do
    with false <- :queue.is_empty(state.queue),
         true <- state.starts_left > 0,
         node when node != nil <- least_loaded(state) do
      state = %{state | starts_left: state.starts_left - 1}

      case start_worker(state, node) do
        {:ok, pid} ->
          {{:value, id}, queue} = :queue.out(state.queue)
          monitor = Process.monitor(pid)
          worker = %{node: node, monitor: monitor, item: nil, pulled_at: 0}

          %{state | queue: queue, workers: Map.put(state.workers, pid, worker)}
          |> put_in([:monitors, monitor], pid)
          |> give(pid, id)
          |> start_workers()

        {:error, why} ->
          start_workers(put_in(state.unusable[node], why))
      end
    else
      _ -> state
    end
  end

  defp can_start?(state), do: state.starts_left > 0 and least_loaded(state) != nil

  # The usable node with the fewest workers and room for one more (ties: the order given).
  defp least_loaded(state) do
    counts = Enum.frequencies_by(state.workers, fn {_pid, w} -> w.node end)

    state.nodes
    |> Enum.reject(&is_map_key(state.unusable, &1))
    |> Enum.map(&{Map.get(counts, &1, 0), &1})
    |> Enum.filter(fn {count, _node} -> count < state.per_node end)
    |> Enum.min_by(&elem(&1, 0), fn -> {0, nil} end)
    |> elem(1)
  end

  defp start_worker(state, node) do
    args = [self(), state.ref, state.module, state.args, state.pull]

    case Task.Supervisor.start_child(
           {CloudStreams.TaskSupervisor, node},
           __MODULE__,
           :worker,
           args
         ) do
      {:ok, pid} -> {:ok, pid}
      {:error, reason} -> {:error, "a worker could not start: #{inspect(reason)}"}
    end
  catch
    :exit, {{:nodedown, _}, _} ->
      {:error, "it is not reachable"}

    :exit, {:noproc, _} ->
      {:error, "CloudStreams.TaskSupervisor is not running (is :cloud_streams started?)"}

    :exit, reason ->
      {:error, "a worker could not start: #{describe_exit(reason)}"}
  end

  # Pull mode: each node without a message in flight is asked, by the worker with an item that
  # was asked least recently.
  defp pull(state) do
    state.workers
    |> Enum.filter(fn {_pid, w} -> w.item != nil and not is_map_key(state.tokens, w.node) end)
    |> Enum.group_by(fn {_pid, w} -> w.node end)
    |> Enum.reduce(state, fn {node, workers}, state ->
      {pid, _} = Enum.min_by(workers, fn {_pid, w} -> w.pulled_at end)
      send(pid, {state.ref, :pull})
      state = %{state | pulls: state.pulls + 1, tokens: Map.put(state.tokens, node, pid)}
      put_in(state.workers[pid].pulled_at, state.pulls)
    end)
  end

  defp fail_pending(state) do
    error = %CloudStreams.Error{kind: :no_workers, message: no_workers_message(state)}
    ids = :queue.to_list(state.queue) ++ Enum.map(Enum.sort(state.delayed), &elem(&1, 1))
    state = %{state | queue: :queue.new(), delayed: []}
    Enum.reduce(ids, state, &event(&2, {:failed, &1, error}))
  end

  defp no_workers_message(state) do
    reasons =
      Enum.map_join(state.nodes, "; ", fn node ->
        "#{node}: #{Map.get(state.unusable, node, "its workers kept exiting")}"
      end)

    "no node can run a #{state.name} (#{reasons})"
  end

  defp now, do: System.monotonic_time(:millisecond)

  # A short reason for an exit, without the terms (arguments, state) it may carry.
  defp describe_exit({%{__exception__: true} = exception, _stacktrace}),
    do: Exception.message(exception)

  defp describe_exit({reason, _detail}) when is_atom(reason), do: inspect(reason)
  defp describe_exit(reason) when is_atom(reason), do: inspect(reason)
  defp describe_exit(_reason), do: "abnormal exit"

  # Arguments travel as a closure: crash reports print a process's arguments, and a closure
  # prints as `#Function<...>`, not as the credentials it holds.
  defp wrap(args), do: fn -> args end

  @doc false
  # A worker, on its node: init, then one item at a time until told to stop or until the
  # coordinator exits.
  @spec worker(pid(), reference(), module(), (() -> term()), boolean()) :: :ok
  def worker(coordinator, ref, module, args, pull?) do
    watch = Process.monitor(coordinator)
    link = %{coordinator: coordinator, ref: ref, watch: watch, pull: pull?}
    stop_with(coordinator)

    case guarded(fn -> module.init(args.()) end) do
      {:ok, context} ->
        try do
          work(link, module, context)
        catch
          :exit, @coordinator_gone -> :ok
        end

      {:error, why} when is_binary(why) ->
        init_failed(link, why)

      {:caught, caught} ->
        init_failed(link, describe(caught))

      _other ->
        init_failed(link, "#{inspect(module)}.init/1 returned an unexpected value")
    end
  end

  # A worker busy with an item (a copy of a large object) does not read its mailbox: a watcher
  # shuts it down when the coordinator goes, so its native work is cancelled at once. The
  # watcher ends with whichever of the two goes first.
  defp stop_with(coordinator) do
    worker = self()

    spawn(fn ->
      watched = Process.monitor(worker)
      Process.monitor(coordinator)

      receive do
        {:DOWN, ^watched, :process, _, _} -> :ok
        {:DOWN, _, :process, _, _} -> Process.exit(worker, :shutdown)
      end
    end)
  end

  defp init_failed(link, why) do
    send(link.coordinator, {link.ref, self(), {:init_failed, why}})
    :ok
  end

  defp work(%{ref: ref, watch: watch} = link, module, context) do
    receive do
      {^ref, {:item, id, payload}} ->
        emit = fn data -> reply(link, {:output, id, data}) end

        result =
          case guarded(fn -> module.run(context, payload, emit) end) do
            {:ok, _} = ok ->
              ok

            {:error, _} = error ->
              error

            {:caught, caught} ->
              {:retry, %CloudStreams.Error{kind: :worker_crashed, message: describe(caught)}}

            _other ->
              message = "#{inspect(module)}.run/3 returned an unexpected value on #{node()}"
              {:retry, %CloudStreams.Error{kind: :worker_crashed, message: message}}
          end

        reply(link, {:result, id, result})
        work(link, module, context)

      {^ref, :stop} ->
        :ok

      {:DOWN, ^watch, :process, _, _} ->
        :ok
    end
  end

  # In pull mode a message goes only in answer to a pull.
  defp reply(%{pull: false} = link, message),
    do: send(link.coordinator, {link.ref, self(), message})

  defp reply(%{ref: ref, watch: watch} = link, message) do
    receive do
      {^ref, :pull} -> send(link.coordinator, {ref, self(), message})
      {^ref, :stop} -> exit(@coordinator_gone)
      {:DOWN, ^watch, :process, _, _} -> exit(@coordinator_gone)
    end

    :ok
  end

  # Runs `fun`, turning anything it raises, throws or exits into `{:caught, {kind, reason,
  # stacktrace}}`; the exit that ends the worker because nobody waits for it any more passes.
  defp guarded(fun) do
    fun.()
  catch
    :exit, @coordinator_gone -> exit(@coordinator_gone)
    kind, reason -> {:caught, {kind, reason, __STACKTRACE__}}
  end

  defp describe({:error, reason, stacktrace}) do
    exception = Exception.normalize(:error, reason, stacktrace)

    "#{inspect(exception.__struct__)} on #{node()}: #{Exception.message(exception)}#{where(stacktrace)}"
  end

  defp describe({kind, reason, stacktrace}) do
    "#{kind} on #{node()}: #{inspect(reason, limit: 10, printable_limit: 200)}#{where(stacktrace)}"
  end

  # Where it happened, by function and arity only: a frame's arguments may hold anything.
  defp where([{module, function, arity_or_args, location} | _]) do
    arity = if is_list(arity_or_args), do: length(arity_or_args), else: arity_or_args
    " (in #{Exception.format_mfa(module, function, arity)}#{line(location)})"
  end

  defp where(_stacktrace), do: ""

  defp line(location) do
    case {location[:file], location[:line]} do
      {nil, _} -> ""
      {file, nil} -> ", #{file}"
      {file, line} -> ", #{file}:#{line}"
    end
  end
end
