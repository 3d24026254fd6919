# `make demo`: a tour of cloud_streams. This first stage streams the synthetic source through
# the pull-stream core; the object-store and DynamoDB stages arrive with those libraries.

defmodule Tour do
  @gib 1024 * 1024 * 1024
  @mib 1024 * 1024

  def run do
    step("Stream 1 GiB of 1 MiB chunks from Rust into Elixir", fn ->
      {micros, bytes} =
        :timer.tc(fn ->
          CloudStreams.Synthetic.stream(chunks: div(@gib, @mib))
          |> Enum.reduce(0, &(byte_size(&1) + &2))
        end)

      "#{bytes} bytes at #{Float.round(bytes / micros / 1000, 2)} GB/s"
    end)

    step("Stop early: take 3 chunks of an endless-looking stream", fn ->
      chunks = CloudStreams.Synthetic.stream(chunks: 1_000_000) |> Enum.take(3)
      Process.sleep(50)
      "took #{length(chunks)} chunks; native core now: #{inspect(CloudStreams.stats())}"
    end)

    step("A slow consumer (2 ms per chunk) reads 256 MiB: memory stays flat", fn ->
      :erlang.garbage_collect()
      before = :erlang.memory(:total)
      watcher = Task.async(fn -> watch_peak(before, 0) end)

      CloudStreams.Synthetic.stream(chunks: 256)
      |> Stream.each(fn _ -> Process.sleep(2) end)
      |> Stream.run()

      send(watcher.pid, :stop)
      "peak BEAM memory growth: #{Float.round(Task.await(watcher) / @mib, 1)} MiB"
    end)

    step("A failure mid-stream raises a clear error", fn ->
      try do
        CloudStreams.Synthetic.stream(chunks: 10, fail_after: 4, chunk_size: 1024) |> Stream.run()
      rescue
        error in CloudStreams.Error ->
          "#{inspect(error.__struct__)}: #{Exception.message(error)} (retryable: #{error.retryable})"
      end
    end)
  end

  defp step(title, fun) do
    IO.puts("\n▶ #{title}")
    IO.puts("  #{fun.()}")
  end

  defp watch_peak(base, peak) do
    receive do
      :stop -> peak
    after
      5 -> watch_peak(base, max(peak, :erlang.memory(:total) - base))
    end
  end
end

Tour.run()
