defmodule Dynamo.Table.Stream.Producer do
  @moduledoc """
  A GenStage producer of the items of a table, for demand-driven pipelines.

      children = [
        {Dynamo.Table.Stream.Producer, schema: User, name: UserProducer, segments: 4, page_size: 500},
        {MyConsumer, subscribe_to: [UserProducer]}
      ]

      Supervisor.start_link(children, strategy: :one_for_one)

  It is a GenStage callback module (`init/1` returns `{:producer, state, opts}`, events come
  from `handle_demand/2` and `handle_info/2`). Where the `gen_stage` package is loaded, as it
  is for every GenStage, Flow and Broadway user, it runs on `GenStage` itself: every GenStage
  function, demand mode and dispatcher works on it (`GenStage.stream/2`, `Flow.from_stages/2`,
  `ConsumerSupervisor`, `GenStage.demand/2`, `dispatcher: GenStage.BroadcastDispatcher`).
  Without `gen_stage` it runs on `CloudStreams.ProducerEngine`, which speaks the same
  producer protocol with the default demand dispatcher, so a hand-written consumer works too.

  DynamoDB is asked only for what consumers demanded: a page is fetched only while the
  consumers' demand is not yet covered by the items handed out (`:prefetch_pages`, default 0,
  lets it read ahead). Events past the demand (the rest of a page) wait in the stage's
  buffer, so at most one page per segment (two for one segment at a time) is held beyond what consumers asked for.

  ## Ending

  Once the scan is over and every item has been handed to a consumer, the producer exits
  `:normal`, as `GenStage.from_enumerable/2` does; `GenStage.stream(..., cancel: :transient)`
  and `Flow.from_stages/2` then end with every item. When a segment fails it exits with
  `{:dynamo_error, %Dynamo.Error{}}`: never `:normal`, never a silently shorter result.

  A consumer that leaves with demand still outstanding (for example
  `GenStage.stream([producer]) |> Enum.take(5)` on a producer that others share, or a
  consumer that crashes) leaves that demand counted as already requested: GenStage's demand
  dispatcher hands the events it brings to the other consumers, and reduces their next
  asks by it. A finite scan may end before that demand is met, and then the events left in
  the stage's buffer never go out and the producer does not finish (gen_stage does the same
  with `GenStage.from_enumerable/2`). Give a producer one consumer, or consumers that stay
  to the end with the same `max_demand`.

  Its child spec is `restart: :transient`: a finished scan is not restarted, a failed one is
  (from the beginning, or from `:resume`). Consumers under the same supervisor exit with the
  producer (GenStage's default `cancel: :permanent`): give them `restart: :transient` too
  (`use GenStage, restart: :transient`), as GenStage's docs prescribe for finite producers,
  or subscribe with `cancel: :transient`.

  ## Options

    * `:schema` - the `Dynamo.Schema` module whose table is scanned (required).
    * `:name` - a name to register the producer under.
    * `:demand` - `:forward` (default) or `:accumulate`, GenStage's initial demand mode.
    * `:dispatcher` - a GenStage dispatcher (needs `gen_stage`; default
      `GenStage.DemandDispatcher`).
    * `:engine` - `:auto` (default: `GenStage` when loaded, else the built-in engine),
      `:gen_stage` or `:builtin`.

  and the options of `Dynamo.Table.Stream.parallel_scan/2` (`:segments` defaults to 1 here,
  `:prefetch_pages` to 0).
  """

  alias CloudStreams.{PullStream, Telemetry}

  @own_opts [:schema, :name, :demand, :dispatcher, :engine]
  @function "Dynamo.Table.Stream.Producer.start_link/1"
  # Cast to itself through the stage, so it arrives after every buffered event.
  @finished :"$cloud_streams_scan_finished"

  @doc false
  def child_spec(opts) do
    %{id: __MODULE__, start: {__MODULE__, :start_link, [opts]}, restart: :transient}
  end

  @doc """
  Starts the producer; options as in the module doc.

  Bad options raise `ArgumentError` here, in the caller.
  """
  @spec start_link(keyword()) :: GenServer.on_start()
  def start_link(opts) do
    unless Keyword.keyword?(opts) do
      raise ArgumentError,
            "#{@function} expects a keyword list of options, got: #{CloudStreams.Redact.inspect(opts)}"
    end

    {own, scan_opts} = Keyword.split(opts, @own_opts)
    schema = Keyword.get(own, :schema)

    # function_exported?/3 does not load modules: in interactive mode (mix, iex) a schema not
    # called yet would be rejected, so load it first.
    unless is_atom(schema) and not is_nil(schema) and Code.ensure_loaded?(schema) and
             function_exported?(schema, :__dynamo__, 1) do
      raise ArgumentError,
            "#{@function} needs schema: a Dynamo.Schema module, got: #{inspect(schema)}"
    end

    engine = engine!(Keyword.get(own, :engine, :auto))
    stage_opts = stage_opts!(own, engine)

    scan_opts = scan_opts |> Keyword.put_new(:segments, 1) |> Keyword.put_new(:prefetch_pages, 0)
    # Validated here, so a bad option fails the start with an ArgumentError.
    source = Dynamo.Table.Stream.parallel_source(schema, scan_opts, @function)
    gen_opts = if name = own[:name], do: [name: name], else: []

    # The GenStage call is made at run time: the library compiles without gen_stage.
    apply(engine, :start_link, [__MODULE__, {source, stage_opts}, gen_opts])
  end

  defp engine!(:auto),
    do: if(Code.ensure_loaded?(GenStage), do: GenStage, else: CloudStreams.ProducerEngine)

  defp engine!(:builtin), do: CloudStreams.ProducerEngine

  defp engine!(:gen_stage) do
    if Code.ensure_loaded?(GenStage) do
      GenStage
    else
      raise ArgumentError, "#{@function}: engine: :gen_stage needs the gen_stage package loaded"
    end
  end

  defp engine!(other) do
    raise ArgumentError,
          "#{@function}: invalid value for option :engine, expected :auto, :gen_stage or " <>
            ":builtin, got: #{inspect(other)}"
  end

  defp stage_opts!(own, engine) do
    demand =
      case Keyword.get(own, :demand, :forward) do
        mode when mode in [:forward, :accumulate] ->
          mode

        other ->
          raise ArgumentError,
                "#{@function}: invalid value for option :demand, expected :forward or " <>
                  ":accumulate, got: #{inspect(other)}"
      end

    dispatcher = Keyword.get(own, :dispatcher, GenStage.DemandDispatcher)

    unless engine == GenStage or dispatcher == GenStage.DemandDispatcher or
             (is_tuple(dispatcher) and elem(dispatcher, 0) == GenStage.DemandDispatcher) do
      raise ArgumentError,
            "#{@function}: option :dispatcher (#{inspect(dispatcher)}) needs the gen_stage package loaded"
    end

    # Unbounded: this module emits only for demand, at most a page beyond it.
    [demand: demand, dispatcher: dispatcher, buffer_size: :infinity]
  end

  ## GenStage callbacks

  @doc false
  def init({{open, decode_state, decode, timeout}, stage_opts}) do
    span =
      Telemetry.start(
        [:cloud_streams, :dynamo, :producer],
        %{operation: :producer, table: decode_state.schema.__dynamo__(:table)}
      )

    state = %{
      telemetry: span,
      handle: open.(),
      decode: decode,
      decode_state: decode_state,
      timeout: timeout,
      # demand asked through handle_demand/2 and not yet covered by emitted events
      demand: 0,
      waiter: nil,
      timer: nil,
      done: false
    }

    {:producer, state, stage_opts}
  end

  @doc false
  def handle_demand(demand, state) do
    fill(%{state | demand: state.demand + demand}, [])
  end

  @doc false
  def handle_info({tag, event}, %{waiter: %{tag: tag}} = state) do
    if state.timer, do: Process.cancel_timer(state.timer)
    handle_event(event, %{state | waiter: nil, timer: nil}, [])
  end

  def handle_info({:pull_expired, tag}, %{waiter: %{tag: tag} = waiter} = state) do
    case PullStream.expired(waiter) do
      {:event, event} -> handle_event(event, %{state | waiter: nil, timer: nil}, [])
      {:wait, waiter} -> {:noreply, [], wait(state, waiter)}
    end
  end

  def handle_info(@finished, state), do: {:stop, :normal, state}

  # Stale timers, and anything else sent to the stage.
  def handle_info(_message, state), do: {:noreply, [], state}

  @doc false
  def handle_call(message, _from, state),
    do: {:reply, {:error, {:unknown_call, message}}, [], state}

  @doc false
  def handle_cast(_message, state), do: {:noreply, [], state}

  @doc false
  def terminate(reason, state) do
    CloudStreams.Native.stream_close(state.handle)

    case reason do
      {:dynamo_error, error} -> Telemetry.exception(state.telemetry, :error, error, [])
      _ when state.done -> Telemetry.stop(state.telemetry, :done)
      _ -> Telemetry.stop(state.telemetry, :cancelled)
    end
  end

  ## Pulling pages

  # Pulls while demand is left; `events` are those gathered so far in this callback, newest
  # page first.
  defp fill(%{done: true} = state, events), do: {:noreply, flatten(events), state}
  defp fill(%{waiter: waiter} = state, events) when waiter != nil, do: emit(state, events)
  defp fill(%{demand: demand} = state, events) when demand <= 0, do: emit(state, events)

  defp fill(state, events) do
    case PullStream.pull(state.handle, state.timeout) do
      {:event, event} -> handle_event(event, state, events)
      {:wait, waiter} -> emit(wait(state, waiter), events)
    end
  end

  defp wait(state, waiter) do
    timer =
      case PullStream.wait_time(waiter) do
        :infinity -> nil
        ms -> Process.send_after(self(), {:pull_expired, waiter.tag}, ms)
      end

    %{state | waiter: waiter, timer: timer}
  end

  defp handle_event({:item, page}, state, events) do
    {items, decode_state} = state.decode.(page, state.decode_state)
    # What exceeds the demand waits in the stage's buffer, which serves the next asks itself.
    state = %{state | decode_state: decode_state, demand: max(state.demand - length(items), 0)}
    fill(count_page(state, items), [items | events])
  end

  defp handle_event(:done, state, events) do
    {items, decode_state} = state.decode.(:done, state.decode_state)
    finish_when_forwarding(self())
    {:noreply, flatten([items | events]), %{state | decode_state: decode_state, done: true}}
  end

  defp handle_event({:error, native}, state, _events) do
    {:stop, {:dynamo_error, Dynamo.Error.from_native(native)}, state}
  end

  defp emit(state, events), do: {:noreply, flatten(events), state}

  defp count_page(%{telemetry: nil} = state, _items), do: state

  defp count_page(state, items) do
    span = state.telemetry |> Telemetry.count(:pages, 1) |> Telemetry.count(:items, length(items))
    %{state | telemetry: span}
  end

  # The last events are out of this callback; the stage must stop only once each has gone to
  # a consumer. An info cast to the stage (what `GenStage.async_info/2` does) is delivered
  # after every buffered event, but gen_stage delivers it at once while it holds events back
  # in `:accumulate` mode. So a helper waits until the stage forwards (`GenStage.demand/1`,
  # asked by call: the held events were replayed before it answers :forward), then casts
  # the info. Every event exists by then, so nothing can overtake it.
  defp finish_when_forwarding(stage) do
    spawn(fn -> finish_loop(stage, Process.monitor(stage), 10) end)
  end

  defp finish_loop(stage, monitor, backoff) do
    mode =
      try do
        GenServer.call(stage, :"$demand", 5_000)
      catch
        :exit, _ -> :unknown
      end

    if mode == :forward do
      GenServer.cast(stage, {:"$info", @finished})
    else
      receive do
        {:DOWN, ^monitor, :process, _, _} -> :ok
      after
        backoff -> finish_loop(stage, monitor, min(backoff * 2, 1_000))
      end
    end
  end

  defp flatten(pages), do: pages |> Enum.reverse() |> Enum.concat()
end
