defmodule CloudStreams.NativeHelpers do
  @moduledoc false
  # Helpers for tests that prove the native core leaks nothing and sends nothing unasked.

  import ExUnit.Assertions

  @idle %{live_tasks: 0, open_streams: 0, buffered_bytes: 0, buffered_items: 0}

  @doc "Waits until no native task, stream or buffer is left; fails with the last stats."
  def assert_native_idle(timeout \\ 5_000), do: wait_for_stats(&(&1 == @idle), timeout)

  @doc "Waits until `fun.(CloudStreams.stats())` is true and returns those stats."
  def wait_for_stats(fun, timeout \\ 5_000) do
    wait(fun, System.monotonic_time(:millisecond) + timeout)
  end

  defp wait(fun, deadline) do
    stats = CloudStreams.stats()

    cond do
      fun.(stats) ->
        stats

      System.monotonic_time(:millisecond) > deadline ->
        flunk("native stats never matched: #{inspect(stats)}")

      true ->
        Process.sleep(10)
        wait(fun, deadline)
    end
  end

  @doc """
  Takes every message in the mailbox. Messages sent from native threads can sit in the signal
  queue, unseen by `Process.info/2`, until the next receive (architecture §4): only receiving proves
  the mailbox empty.
  """
  def drain_mailbox(acc \\ []) do
    receive do
      message -> drain_mailbox([message | acc])
    after
      0 -> Enum.reverse(acc)
    end
  end

  @doc "Waits until `fun.()` is true (polling every 10 ms for up to 5 s), or fails."
  def wait_until(fun, tries \\ 500) do
    cond do
      fun.() -> :ok
      tries == 0 -> flunk("condition never held")
      true -> Process.sleep(10) && wait_until(fun, tries - 1)
    end
  end

  @doc "True for a message shaped like a pull-stream delivery."
  def stream_message?({tag, event}) when is_reference(tag) do
    match?({:item, _}, event) or event == :done or match?({:error, _}, event)
  end

  def stream_message?(_), do: false
end
