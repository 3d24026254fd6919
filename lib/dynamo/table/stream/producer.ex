defmodule Dynamo.Table.Stream.Producer do
  @moduledoc """
  A GenStage producer of the items of a table, for demand-driven pipelines.

      children = [
        {Dynamo.Table.Stream.Producer, schema: User, name: UserProducer, segments: 4, page_size: 500},
        {MyConsumer, subscribe_to: [UserProducer]}
      ]

      Supervisor.start_link(children, strategy: :one_for_one)

  It speaks GenStage's producer protocol without depending on `gen_stage` (a plain
  `GenServer`), so any GenStage consumer or producer_consumer subscribes to it, and so does
  Flow (`Flow.from_stages/2`). Several consumers share the demand: each batch of events goes
  to the consumer with the most pending demand, never more than it asked for.

  DynamoDB is asked only for what consumers demanded: a page is fetched only while the
  consumers' demand exceeds the buffered items (`:prefetch_pages`, default 0, lets it read
  ahead). With several segments, each running segment may fetch one page at once.

  The producer exits `:normal` once the scan is over and every item has been delivered, and
  with `{:dynamo_error, %Dynamo.Error{}}` when a segment fails (a segment is never silently
  dropped). Its child spec is `restart: :transient`: a finished scan is not restarted, a
  failed one is (from the beginning, or from `:resume`).

  Options: `:schema` (required), `:name`, and the options of
  `Dynamo.Table.Stream.parallel_scan/2` (`:segments` defaults to 1 here).
  """

  use GenServer, restart: :transient

  alias CloudStreams.Native

  @doc "Starts the producer; options as in the module doc."
  @spec start_link(keyword()) :: GenServer.on_start()
  def start_link(opts) do
    unless Keyword.keyword?(opts) do
      raise ArgumentError,
            "Dynamo.Table.Stream.Producer.start_link/1 expects a keyword list of options, " <>
              "got: #{CloudStreams.Redact.inspect(opts)}"
    end

    {schema, opts} = Keyword.pop(opts, :schema)
    {name, opts} = Keyword.pop(opts, :name)

    # function_exported?/3 does not load modules: in interactive mode (mix, iex) a schema not
    # called yet would be rejected, so load it first.
    unless is_atom(schema) and not is_nil(schema) and Code.ensure_loaded?(schema) and
             function_exported?(schema, :__dynamo__, 1) do
      raise ArgumentError,
            "Dynamo.Table.Stream.Producer needs schema: a Dynamo.Schema module, got: #{inspect(schema)}"
    end

    opts = Keyword.put_new(opts, :segments, 1) |> Keyword.put_new(:prefetch_pages, 0)
    # Validated in the caller, so a bad option fails the start with an ArgumentError.
    source = Dynamo.Table.Stream.parallel_source(schema, opts, "Dynamo.Table.Stream.Producer")
    gen_opts = if name, do: [name: name], else: []
    GenServer.start_link(__MODULE__, source, gen_opts)
  end

  @impl true
  def init({open, decode_state, decode, timeout}) do
    {:ok,
     %{
       handle: open.(),
       decode: decode,
       decode_state: decode_state,
       timeout: timeout,
       buffer: :queue.new(),
       buffered: 0,
       consumers: %{},
       pending: nil,
       timer: nil,
       done: false
     }}
  end

  @impl true
  def handle_info({:"$gen_producer", {pid, ref}, {:subscribe, _current, _opts}}, state) do
    if Map.has_key?(state.consumers, ref) do
      send(pid, {:"$gen_consumer", {self(), ref}, {:cancel, :duplicated_subscription}})
      {:noreply, state}
    else
      consumer = %{pid: pid, monitor: Process.monitor(pid), demand: 0}
      {:noreply, put_in(state.consumers[ref], consumer)}
    end
  end

  def handle_info({:"$gen_producer", {pid, ref}, {:ask, n}}, state)
      when is_integer(n) and n > 0 do
    case state.consumers do
      %{^ref => consumer} ->
        state = put_in(state.consumers[ref], %{consumer | demand: consumer.demand + n})
        state |> dispatch() |> fill()

      %{} ->
        send(pid, {:"$gen_consumer", {self(), ref}, {:cancel, :unknown_subscription}})
        {:noreply, state}
    end
  end

  def handle_info({:"$gen_producer", {pid, ref}, {:cancel, reason}}, state) do
    case Map.pop(state.consumers, ref) do
      {nil, _} ->
        {:noreply, state}

      {consumer, consumers} ->
        Process.demonitor(consumer.monitor, [:flush])
        send(pid, {:"$gen_consumer", {self(), ref}, {:cancel, reason}})
        {:noreply, %{state | consumers: consumers}}
    end
  end

  def handle_info({:"$gen_producer", _from, _other}, state), do: {:noreply, state}

  # GenStage's demand mode switch: this producer always serves demand as it comes.
  def handle_info({:"$demand", _mode}, state), do: {:noreply, state}

  def handle_info({:DOWN, monitor, :process, _pid, _reason}, state) do
    consumers =
      state.consumers
      |> Enum.reject(fn {_ref, c} -> c.monitor == monitor end)
      |> Map.new()

    {:noreply, %{state | consumers: consumers}}
  end

  def handle_info({:pull_timeout, tag}, %{pending: tag} = state) do
    if Native.stream_disarm(state.handle) do
      error = %Dynamo.Error{
        type: :timeout,
        message: "no page arrived within #{state.timeout} ms",
        retryable: true
      }

      {:stop, {:dynamo_error, error}, state}
    else
      # The page was handed over as the timer fired: it is on its way.
      {:noreply, state}
    end
  end

  def handle_info({:pull_timeout, _stale}, state), do: {:noreply, state}

  def handle_info({tag, event}, %{pending: tag} = state) when is_reference(tag) do
    if state.timer, do: Process.cancel_timer(state.timer)
    handle_event(event, %{state | pending: nil, timer: nil})
  end

  def handle_info(_unexpected, state), do: {:noreply, state}

  @impl true
  def terminate(_reason, state), do: Native.stream_close(state.handle)

  # Pulls pages while the consumers want more than is buffered.
  defp fill(state) do
    demand = state.consumers |> Map.values() |> Enum.map(& &1.demand) |> Enum.sum()

    cond do
      state.done -> maybe_stop(state)
      state.pending != nil -> {:noreply, state}
      demand <= state.buffered -> {:noreply, state}
      true -> pull(state)
    end
  end

  defp pull(state) do
    tag = make_ref()

    case Native.stream_pull(state.handle, tag) do
      :pending ->
        timer =
          if state.timeout != :infinity,
            do: Process.send_after(self(), {:pull_timeout, tag}, state.timeout)

        {:noreply, %{state | pending: tag, timer: timer}}

      event ->
        handle_event(event, state)
    end
  end

  defp handle_event({:item, page}, state) do
    {items, decode_state} = state.decode.(page, state.decode_state)
    buffer = Enum.reduce(items, state.buffer, &:queue.in/2)

    %{
      state
      | decode_state: decode_state,
        buffer: buffer,
        buffered: state.buffered + length(items)
    }
    |> dispatch()
    |> fill()
  end

  defp handle_event(:done, state) do
    {items, decode_state} = state.decode.(:done, state.decode_state)
    buffer = Enum.reduce(items, state.buffer, &:queue.in/2)

    %{
      state
      | decode_state: decode_state,
        buffer: buffer,
        buffered: state.buffered + length(items),
        done: true
    }
    |> dispatch()
    |> maybe_stop()
  end

  defp handle_event({:error, native}, state) do
    {:stop, {:dynamo_error, Dynamo.Error.from_native(native)}, state}
  end

  defp maybe_stop(%{done: true, buffered: 0} = state), do: {:stop, :normal, state}
  defp maybe_stop(state), do: {:noreply, state}

  # Gives buffered events to the consumer with the most pending demand, until the buffer or
  # the demand runs out.
  defp dispatch(%{buffered: 0} = state), do: state

  defp dispatch(state) do
    case Enum.max_by(state.consumers, fn {_ref, c} -> c.demand end, fn -> nil end) do
      {ref, %{demand: demand} = consumer} when demand > 0 ->
        count = min(demand, state.buffered)
        {events, buffer} = :queue.split(count, state.buffer)
        send(consumer.pid, {:"$gen_consumer", {self(), ref}, :queue.to_list(events)})

        %{
          state
          | buffer: buffer,
            buffered: state.buffered - count,
            consumers: Map.put(state.consumers, ref, %{consumer | demand: demand - count})
        }
        |> dispatch()

      _ ->
        state
    end
  end
end
