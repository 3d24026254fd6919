defmodule CloudStreams.StageConsumer do
  @moduledoc false
  # A GenStage consumer, or a producer_consumer with one downstream subscription, written out
  # by hand because the gen_stage package cannot be installed here. It sends what gen_stage
  # 1.3's consumers send and reacts as they do (lib/gen_stage.ex of elixir-lang/gen_stage
  # v1.3.2: the "Message protocol overview" of the moduledoc, and `consumer_subscribe` /
  # `consumer_cancel`):
  #
  #   * it monitors the producer, then sends `{:"$gen_producer", {self(), ref}, {:subscribe,
  #     nil, opts}}` and `{:ask, max_demand}` with the monitor reference as the tag;
  #   * it asks again once its pending demand falls to `min_demand`, never beyond `max_demand`;
  #   * when the producer goes down or cancels, `cancel: :permanent` (GenStage's default) exits
  #     with the producer's reason, `cancel: :transient` exits only for a reason other than
  #     `:normal`, `:shutdown` or `{:shutdown, _}`.
  #
  # With `transform:` it is a producer_consumer: it accepts one subscriber and forwards its
  # demand upstream one for one (the transform maps 1:1), so it never sends unasked events.
  # Every batch it receives (or, as a producer_consumer, sends) is checked against its demand,
  # and reported to `report_to` as `{:events, name, events}`; its start as `{:started, name}`.
  use GenServer, restart: :transient

  def start_link(opts), do: GenServer.start_link(__MODULE__, opts, Keyword.take(opts, [:name]))

  @impl true
  def init(opts) do
    producer = GenServer.whereis(Keyword.fetch!(opts, :subscribe_to))
    report_to = Keyword.fetch!(opts, :report_to)
    name = Keyword.get(opts, :name, self())
    send(report_to, {:started, name})

    if producer == nil do
      {:stop, :noproc}
    else
      max = Keyword.get(opts, :max_demand, 10)
      min = Keyword.get(opts, :min_demand, div(max, 2))
      ref = Process.monitor(producer)
      transform = Keyword.get(opts, :transform)

      send(producer, {:"$gen_producer", {self(), ref}, {:subscribe, nil, [max_demand: max]}})
      if transform == nil, do: send(producer, {:"$gen_producer", {self(), ref}, {:ask, max}})

      {:ok,
       %{
         producer: producer,
         ref: ref,
         max: max,
         min: min,
         pending: if(transform == nil, do: max, else: 0),
         cancel: Keyword.get(opts, :cancel, :permanent),
         transform: transform,
         downstream: nil,
         report_to: report_to,
         name: name
       }}
    end
  end

  @impl true
  def handle_info({:"$gen_consumer", {producer, ref}, events}, %{ref: ref} = state)
      when is_list(events) do
    true = producer == state.producer
    n = length(events)

    if events == [] or n > state.pending do
      raise "#{inspect(state.name)} got #{n} events with #{state.pending} asked"
    end

    state = %{state | pending: state.pending - n}

    case state.transform do
      nil ->
        send(state.report_to, {:events, state.name, events})
        {:noreply, ask_more(state)}

      transform ->
        {pid, tag} = state.downstream
        send(pid, {:"$gen_consumer", {self(), tag}, Enum.map(events, transform)})
        {:noreply, state}
    end
  end

  def handle_info({:"$gen_consumer", {_, ref}, {:cancel, reason}}, %{ref: ref} = state),
    do: producer_gone(reason, state)

  def handle_info({:DOWN, ref, :process, _, reason}, %{ref: ref} = state),
    do: producer_gone(reason, state)

  # As a producer_consumer: one downstream subscriber, its demand forwarded upstream.
  def handle_info({:"$gen_producer", {pid, tag}, {:subscribe, nil, _}}, %{downstream: nil} = s)
      when s.transform != nil do
    Process.monitor(pid)
    {:noreply, %{s | downstream: {pid, tag}}}
  end

  def handle_info({:"$gen_producer", {pid, tag}, {:ask, n}}, %{downstream: {pid, tag}} = state) do
    send(state.producer, {:"$gen_producer", {self(), state.ref}, {:ask, n}})
    {:noreply, %{state | pending: state.pending + n}}
  end

  def handle_info({:DOWN, _, :process, _, _}, state), do: {:noreply, state}

  defp ask_more(%{pending: pending, min: min, max: max} = state) when pending <= min do
    send(state.producer, {:"$gen_producer", {self(), state.ref}, {:ask, max - pending}})
    %{state | pending: max}
  end

  defp ask_more(state), do: state

  defp producer_gone(reason, %{cancel: :permanent} = state), do: {:stop, reason, state}

  defp producer_gone(reason, %{cancel: :transient} = state) do
    case reason do
      r when r in [:normal, :shutdown] -> {:noreply, state}
      {:shutdown, _} -> {:noreply, state}
      _ -> {:stop, reason, state}
    end
  end
end
