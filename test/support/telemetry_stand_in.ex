defmodule :telemetry do
  @moduledoc false
  # A STAND-IN for the `telemetry` hex package, which cannot be installed here (hex is
  # unreachable). It is compiled with the test support files only, under the real module's
  # name, so the library's calls reach it exactly as they would reach the real one. It keeps
  # the real public contract, read from beam-telemetry/telemetry's src/telemetry.erl:
  # `attach/4`, `attach_many/4`, `detach/1`, `execute/3`, `span/3` with the same arguments and
  # returns; a handler that raises, exits or throws is detached, a
  # `[:telemetry, :handler, :failure]` event is emitted and an error is logged; `span/3` adds
  # `telemetry_span_context` unless the start metadata has one, merges extra measurements
  # under `duration`/`monotonic_time`, and re-raises after its `:exception` event.

  require Logger

  @table :cloud_streams_telemetry_stand_in

  def attach(handler_id, event_name, function, config),
    do: attach_many(handler_id, [event_name], function, config)

  def attach_many(handler_id, event_names, function, config) when is_function(function, 4) do
    Enum.each(event_names, &assert_event_name/1)
    ensure_table()

    if :ets.match_object(@table, {:_, handler_id, :_, :_}) != [] do
      {:error, :already_exists}
    else
      :ets.insert(@table, for(name <- event_names, do: {name, handler_id, function, config}))
      :ok
    end
  end

  def detach(handler_id) do
    ensure_table()

    if :ets.match_object(@table, {:_, handler_id, :_, :_}) == [] do
      {:error, :not_found}
    else
      :ets.match_delete(@table, {:_, handler_id, :_, :_})
      :ok
    end
  end

  def execute(event_name, value, metadata) when is_number(value),
    do: execute(event_name, %{value: value}, metadata)

  def execute([_ | _] = event_name, measurements, metadata)
      when is_map(measurements) and is_map(metadata) do
    handlers =
      if :ets.whereis(@table) == :undefined, do: [], else: :ets.lookup(@table, event_name)

    Enum.each(handlers, fn {_, handler_id, function, config} ->
      try do
        function.(event_name, measurements, metadata, config)
      catch
        kind, reason ->
          stacktrace = __STACKTRACE__
          detach(handler_id)

          execute(
            [:telemetry, :handler, :failure],
            %{monotonic_time: System.monotonic_time(), system_time: System.system_time()},
            %{
              event_name: event_name,
              handler_id: handler_id,
              handler_config: config,
              kind: kind,
              reason: reason,
              stacktrace: stacktrace
            }
          )

          Logger.error("Handler #{inspect(handler_id)} has failed and has been detached.")
      end
    end)
  end

  def span(event_prefix, start_metadata, span_function) do
    start_time = System.monotonic_time()
    default_ctx = make_ref()

    execute(
      event_prefix ++ [:start],
      %{monotonic_time: start_time, system_time: System.system_time()},
      merge_ctx(start_metadata, default_ctx)
    )

    try do
      span_function.()
    catch
      kind, reason ->
        stop_time = System.monotonic_time()

        execute(
          event_prefix ++ [:exception],
          %{duration: stop_time - start_time, monotonic_time: stop_time},
          merge_ctx(
            Map.merge(start_metadata, %{kind: kind, reason: reason, stacktrace: __STACKTRACE__}),
            default_ctx
          )
        )

        :erlang.raise(kind, reason, __STACKTRACE__)
    else
      {result, stop_metadata} ->
        stop(event_prefix, start_time, %{}, stop_metadata, default_ctx)
        result

      {result, extra_measurements, stop_metadata} ->
        stop(event_prefix, start_time, extra_measurements, stop_metadata, default_ctx)
        result
    end
  end

  defp stop(event_prefix, start_time, extra_measurements, stop_metadata, ctx) do
    stop_time = System.monotonic_time()

    execute(
      event_prefix ++ [:stop],
      Map.merge(extra_measurements, %{
        duration: stop_time - start_time,
        monotonic_time: stop_time
      }),
      merge_ctx(stop_metadata, ctx)
    )
  end

  defp merge_ctx(%{telemetry_span_context: _} = metadata, _ctx), do: metadata
  defp merge_ctx(metadata, ctx), do: Map.put(metadata, :telemetry_span_context, ctx)

  defp assert_event_name([_ | _] = name) do
    if Enum.all?(name, &is_atom/1), do: :ok, else: :erlang.error(:badarg, [name])
  end

  defp assert_event_name(other), do: :erlang.error(:badarg, [other])

  # The real package keeps handlers in an ETS table owned by its application; here a process
  # of its own owns it, started by the first attach.
  defp ensure_table do
    if :ets.whereis(@table) == :undefined do
      parent = self()

      {owner, ref} =
        spawn_monitor(fn ->
          :ets.new(@table, [:named_table, :public, :bag, read_concurrency: true])
          send(parent, {:table_ready, self()})
          Process.sleep(:infinity)
        end)

      # A concurrent first attach may have made it: then this owner fails to and exits.
      receive do
        {:table_ready, ^owner} -> Process.demonitor(ref, [:flush])
        {:DOWN, ^ref, :process, ^owner, _} -> :ok
      end
    end

    :ok
  end
end
