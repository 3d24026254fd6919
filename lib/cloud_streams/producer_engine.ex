defmodule CloudStreams.ProducerEngine do
  @moduledoc """
  The producer side of GenStage, for when the `gen_stage` package is not loaded.

  A producer of this library (`Dynamo.Table.Stream.Producer`) is a GenStage callback module:
  `init/1` returns `{:producer, state}` or `{:producer, state, opts}`, and `handle_demand/2`,
  `handle_info/2`, `handle_call/3`, `handle_cast/2` return `{:noreply, events, state}`,
  `{:reply, reply, events, state}` or `{:stop, reason, state}`. Where `gen_stage` is loaded
  (every GenStage, Flow and Broadway user has it), the module runs on `GenStage` itself.
  Without it, it runs on this engine, a `GenServer` that speaks the producer half of
  GenStage's message protocol as `gen_stage` 1.3 implements it (the "Message protocol
  overview" of `GenStage`'s moduledoc, and `GenStage`'s producer handlers) with the default
  `GenStage.DemandDispatcher`'s rules:

    * `{:"$gen_producer", {pid, tag}, {:subscribe, current, opts}}`: `current`, when not nil,
      is `{tag, reason}` of a subscription cancelled first; a known tag is refused with
      `{:"$gen_consumer", {self(), tag}, {:cancel, :duplicated_subscription}}`; otherwise the
      consumer is monitored and starts with no demand.
    * `{:"$gen_producer", {pid, tag}, {:ask, n}}`: events up to the consumer's demand, sent as
      `{:"$gen_consumer", {self(), tag}, events}` (a non-empty list, never more than asked)
      to the consumer with the most pending demand first. An unknown tag is answered with
      `{:cancel, :unknown_subscription}`.
    * `{:"$gen_producer", {pid, tag}, {:cancel, reason}}`: the cancel is echoed back; the
      consumer's pending demand is kept for the others, as the demand dispatcher does. A
      consumer that dies is cancelled the same way.
    * `GenStage.demand(stage, :accumulate | :forward)` (a cast of `{:"$demand", mode}`): in
      `:accumulate` mode demand is held back from `handle_demand/2` and events from the
      consumers until `:forward`. `GenStage.demand/1` (a call of `:"$demand"`) answers the mode.
    * `GenStage.estimate_buffered_count/2` (a call of `:"$estimate_buffered_count"`) answers
      the number of events buffered past the consumers' demand.
    * `GenStage.sync_info/3` and `async_info/2` (a call or cast of `{:"$info", msg}`): `msg`
      is delivered to `handle_info/2` after every event buffered before it (but, as in
      gen_stage, not after events held back by `:accumulate`).
    * Any other call or cast goes to the callback module's `handle_call/3` or `handle_cast/2`.

  A consumer that dies (or cancels) with demand outstanding leaves that demand counted as
  already requested from `handle_demand/2`, to be served to the other consumers from the
  events it brings: the next asks of the others are reduced by it, exactly as gen_stage's
  demand dispatcher does (its `pending` count). With a finite producer this can leave
  events buffered: checked against gen_stage 1.3.2, `GenStage.from_enumerable(1..1000)`
  whose consumer with a demand of 1,000,000 dies hands only 100 events to a second
  consumer with `max_demand: 100`. Give consumers equal `max_demand`, as GenStage advises.

  Events emitted beyond the demand are buffered without limit (GenStage's
  `buffer_size: :infinity`): the callback module bounds them by emitting only for demand.
  Only the demand dispatcher exists here; other dispatchers need `gen_stage`.
  """

  use GenServer

  @doc """
  Starts `module` as a producer, like `GenStage.start_link/3`.

  The callback module must return `{:producer, state}` or `{:producer, state, opts}` from
  `init/1`; of the `opts`, `demand: :forward | :accumulate` is honoured, `buffer_size` and
  `buffer_keep` are ignored (the buffer is unbounded) and `dispatcher` must be
  `GenStage.DemandDispatcher`.
  """
  @spec start_link(module(), term(), GenServer.options()) :: GenServer.on_start()
  def start_link(module, args, options \\ []) do
    GenServer.start_link(__MODULE__, {module, args}, options)
  end

  ## Server

  @impl true
  def init({mod, args}) do
    case mod.init(args) do
      {:producer, state} ->
        init_producer(mod, state, [])

      {:producer, state, opts} when is_list(opts) ->
        init_producer(mod, state, opts)

      {:stop, reason} ->
        {:stop, reason}

      :ignore ->
        :ignore

      other ->
        {:stop, {:bad_return_value, other}}
    end
  end

  defp init_producer(mod, state, opts) do
    case Keyword.get(opts, :dispatcher, GenStage.DemandDispatcher) do
      dispatcher
      when dispatcher == GenStage.DemandDispatcher or
             (is_tuple(dispatcher) and elem(dispatcher, 0) == GenStage.DemandDispatcher) ->
        {:ok,
         %{
           mod: mod,
           state: state,
           # tag => {pid, monitor}; monitor => tag
           consumers: %{},
           monitors: %{},
           # [{demand, pid, tag}], highest demand first (the demand dispatcher's order)
           demands: [],
           # demand of cancelled consumers, already passed to handle_demand/2
           pending: 0,
           # {:event, e} and {:info, msg}, in order; `buffered` counts the events
           buffer: :queue.new(),
           buffered: 0,
           # :forward, or what :accumulate holds back, newest first
           mode: if(Keyword.get(opts, :demand, :forward) == :accumulate, do: [], else: :forward)
         }}

      other ->
        {:stop,
         {:bad_opts,
          "dispatcher #{inspect(other)} needs the gen_stage package; without it only " <>
            "GenStage.DemandDispatcher is available"}}
    end
  end

  @impl true
  def handle_info({:"$gen_producer", {pid, tag}, {:subscribe, current, _opts}}, stage) do
    case stage.consumers do
      %{^tag => _} ->
        send_noconnect(
          pid,
          {:"$gen_consumer", {self(), tag}, {:cancel, :duplicated_subscription}}
        )

        {:noreply, stage}

      %{} ->
        with {:noreply, stage} <- cancel_current(current, stage) do
          monitor = Process.monitor(pid)

          {:noreply,
           %{
             stage
             | consumers: Map.put(stage.consumers, tag, {pid, monitor}),
               monitors: Map.put(stage.monitors, monitor, tag),
               demands: stage.demands ++ [{0, pid, tag}]
           }}
        end
    end
  end

  def handle_info({:"$gen_producer", {pid, tag}, {:ask, counter}}, stage)
      when is_integer(counter) do
    case stage.consumers do
      %{^tag => _} ->
        {current, demands} = pop_demand(tag, stage.demands)
        demands = add_demand(current + counter, pid, tag, demands)
        already_sent = min(stage.pending, counter)

        stage = %{stage | demands: demands, pending: stage.pending - already_sent}
        take_from_buffer_or_handle_demand(counter - already_sent, stage)

      %{} ->
        send_noconnect(pid, {:"$gen_consumer", {self(), tag}, {:cancel, :unknown_subscription}})
        {:noreply, stage}
    end
  end

  def handle_info({:"$gen_producer", {_pid, tag}, {:cancel, reason}}, stage) do
    cancel(tag, reason, stage)
  end

  # Not ours to answer (gen_stage logs and ignores these too).
  def handle_info({:"$gen_producer", _, _}, stage), do: {:noreply, stage}
  def handle_info({:"$gen_consumer", _, _}, stage), do: {:noreply, stage}

  def handle_info({:DOWN, monitor, :process, _pid, reason} = message, stage) do
    case stage.monitors do
      %{^monitor => tag} -> cancel(tag, reason, stage)
      %{} -> callback(:handle_info, [message, stage.state], stage)
    end
  end

  def handle_info(message, stage), do: callback(:handle_info, [message, stage.state], stage)

  @impl true
  def handle_call(:"$demand", _from, stage) do
    {:reply, if(stage.mode == :forward, do: :forward, else: :accumulate), stage}
  end

  def handle_call(:"$estimate_buffered_count", _from, stage), do: {:reply, stage.buffered, stage}

  def handle_call({:"$info", message}, _from, stage), do: {:reply, :ok, info(message, stage)}

  # A consumer's own request, sent to a producer by mistake.
  def handle_call({:"$subscribe", _current, _to, _opts}, _from, stage),
    do: {:reply, {:error, :not_a_consumer}, stage}

  def handle_call(message, from, stage) do
    if function_exported?(stage.mod, :handle_call, 3) do
      case stage.mod.handle_call(message, from, stage.state) do
        {:reply, reply, events, state} when is_list(events) ->
          {:reply, reply, dispatch(events, %{stage | state: state})}

        {:stop, reason, reply, state} ->
          {:stop, reason, reply, %{stage | state: state}}

        other ->
          noreply(other, stage)
      end
    else
      {:reply, {:error, {:unknown_call, message}}, stage}
    end
  end

  @impl true
  def handle_cast({:"$demand", mode}, stage) when mode in [:forward, :accumulate],
    do: set_mode(mode, stage)

  def handle_cast({:"$info", message}, stage), do: {:noreply, info(message, stage)}
  def handle_cast({:"$subscribe", _current, _to, _opts}, stage), do: {:noreply, stage}
  def handle_cast(message, stage), do: callback(:handle_cast, [message, stage.state], stage)

  @impl true
  def terminate(reason, stage) do
    if function_exported?(stage.mod, :terminate, 2),
      do: stage.mod.terminate(reason, stage.state),
      else: :ok
  end

  ## Demand and events

  defp set_mode(:accumulate, %{mode: :forward} = stage), do: {:noreply, %{stage | mode: []}}
  defp set_mode(:accumulate, stage), do: {:noreply, stage}
  defp set_mode(:forward, %{mode: :forward} = stage), do: {:noreply, stage}

  # Replays what was held back, oldest first, as gen_stage does.
  defp set_mode(:forward, %{mode: held} = stage) do
    Enum.reduce(Enum.reverse(held), {:noreply, %{stage | mode: :forward}}, fn
      {:demand, counter}, {:noreply, stage} -> take_from_buffer_or_handle_demand(counter, stage)
      {:dispatch, events}, {:noreply, stage} -> {:noreply, dispatch(events, stage)}
      _, stop -> stop
    end)
  end

  defp take_from_buffer_or_handle_demand(counter, stage) do
    case take_from_buffer(counter, stage) do
      {0, stage} ->
        {:noreply, stage}

      {counter, %{mode: :forward} = stage} ->
        callback(:handle_demand, [counter, stage.state], stage)

      {counter, %{mode: held} = stage} ->
        {:noreply, %{stage | mode: [{:demand, counter} | held]}}
    end
  end

  # Hands buffered events to the consumers, up to `counter`; infos buffered behind them are
  # delivered as they come up. Returns the demand left.
  defp take_from_buffer(0, stage), do: {0, stage}

  defp take_from_buffer(counter, stage) do
    case :queue.out(stage.buffer) do
      {:empty, _} ->
        {counter, stage}

      {{:value, {:info, message}}, buffer} ->
        take_from_buffer(counter, deliver_info(message, %{stage | buffer: buffer}))

      {{:value, {:event, _}}, _} ->
        {events, buffer, taken} = take_events(stage.buffer, counter, [])
        stage = %{stage | buffer: buffer, buffered: stage.buffered - taken}
        take_from_buffer(counter - taken, dispatch(events, stage))
    end
  end

  defp take_events(buffer, 0, acc), do: {Enum.reverse(acc), buffer, length(acc)}

  defp take_events(buffer, counter, acc) do
    case :queue.peek(buffer) do
      {:value, {:event, event}} -> take_events(:queue.drop(buffer), counter - 1, [event | acc])
      _ -> {Enum.reverse(acc), buffer, length(acc)}
    end
  end

  defp dispatch([], stage), do: stage

  defp dispatch(events, %{mode: held} = stage) when is_list(held),
    do: %{stage | mode: [{:dispatch, events} | held]}

  defp dispatch(events, stage), do: deliver(events, stage)

  # The demand dispatcher: events to the highest demand first; the rest is buffered.
  defp deliver(events, stage) do
    {rest, demands} = deliver_to(events, stage.demands)
    left = length(rest)
    buffer = Enum.reduce(rest, stage.buffer, &:queue.in({:event, &1}, &2))

    %{
      stage
      | demands: demands,
        pending: max(stage.pending - left, 0),
        buffer: buffer,
        buffered: stage.buffered + left
    }
  end

  defp deliver_to([], demands), do: {[], demands}
  defp deliver_to(events, [{0, _, _} | _] = demands), do: {events, demands}
  defp deliver_to(events, []), do: {events, []}

  defp deliver_to(events, [{counter, pid, tag} | demands]) do
    {now, later} = Enum.split(events, counter)
    send_noconnect(pid, {:"$gen_consumer", {self(), tag}, now})
    deliver_to(later, add_demand(counter - length(now), pid, tag, demands))
  end

  defp add_demand(counter, pid, tag, [{current, _, _} | _] = demands) when counter > current,
    do: [{counter, pid, tag} | demands]

  defp add_demand(counter, pid, tag, [demand | demands]),
    do: [demand | add_demand(counter, pid, tag, demands)]

  defp add_demand(counter, pid, tag, []), do: [{counter, pid, tag}]

  defp pop_demand(tag, demands) do
    {{current, _pid, ^tag}, rest} = List.keytake(demands, tag, 2)
    {current, rest}
  end

  # An info waits behind the buffered events. Like gen_stage's, it does not wait behind events
  # held back by `:accumulate`: a producer finishing with an info must wait for `:forward`.
  defp info(message, stage) do
    if :queue.is_empty(stage.buffer),
      do: deliver_info(message, stage),
      else: %{stage | buffer: :queue.in({:info, message}, stage.buffer)}
  end

  defp deliver_info(message, stage) do
    send(self(), message)
    stage
  end

  ## Subscriptions

  defp cancel_current(nil, stage), do: {:noreply, stage}
  defp cancel_current({tag, reason}, stage), do: cancel(tag, reason, stage)

  # Ends a subscription: the cancel goes back to the consumer, its demand to the others.
  defp cancel(tag, reason, stage) do
    case Map.pop(stage.consumers, tag) do
      {nil, _} ->
        {:noreply, stage}

      {{pid, monitor}, consumers} ->
        Process.demonitor(monitor, [:flush])
        send_noconnect(pid, {:"$gen_consumer", {self(), tag}, {:cancel, reason}})
        {current, demands} = pop_demand(tag, stage.demands)

        {:noreply,
         %{
           stage
           | consumers: consumers,
             monitors: Map.delete(stage.monitors, monitor),
             demands: demands,
             pending: stage.pending + current
         }}
    end
  end

  ## Callbacks

  defp callback(name, args, stage) do
    if function_exported?(stage.mod, name, length(args)) do
      noreply(apply(stage.mod, name, args), stage)
    else
      {:noreply, stage}
    end
  end

  defp noreply({:noreply, events, state}, stage) when is_list(events),
    do: {:noreply, dispatch(events, %{stage | state: state})}

  defp noreply({:noreply, events, state, :hibernate}, stage) when is_list(events),
    do: {:noreply, dispatch(events, %{stage | state: state}), :hibernate}

  defp noreply({:stop, reason, state}, stage), do: {:stop, reason, %{stage | state: state}}
  defp noreply(other, stage), do: {:stop, {:bad_return_value, other}, stage}

  defp send_noconnect(pid, message), do: Process.send(pid, message, [:noconnect])
end
