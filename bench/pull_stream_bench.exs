defmodule Bench.PullStream do
  @moduledoc false
  # Issue 2: 1 GiB of synthetic 1 MiB chunks pulled into Elixir, against the same chunks
  # drained inside Rust through the same core; and the memory a slow consumer costs.

  @chunks 1024
  @chunk_size 1_048_576
  @rounds 5

  def run do
    IO.puts(
      "== pull-stream core: 1 GiB of synthetic 1 MiB chunks, #{@rounds} rounds; raw Rust: the same chunks drained by a Rust consumer"
    )

    rounds =
      for _ <- 1..@rounds do
        raw = Bench.raw_baseline!(["synthetic", "#{@chunks}", "#{@chunk_size}"])
        {seconds, bytes} = Bench.time(&pull_all/0)
        true = bytes == raw.bytes
        {raw.seconds, seconds}
      end

    Bench.print_ratio(@chunks * @chunk_size, rounds, "pull core, 1 GiB synthetic chunks")

    IO.puts("== slow consumer: 1 GiB, sleeping 5 ms per 1 MiB chunk")

    {bytes, peaks} =
      Bench.with_peak_memory(fn ->
        CloudStreams.Synthetic.stream(chunks: @chunks, chunk_size: @chunk_size)
        |> Enum.reduce(0, fn chunk, acc ->
          Process.sleep(5)
          acc + byte_size(chunk)
        end)
      end)

    true = bytes == @chunks * @chunk_size

    IO.puts(
      "  peak growth: BEAM total #{Bench.mib(peaks.total)} MiB, " <>
        "BEAM binaries #{Bench.mib(peaks.binary)} MiB, OS RSS #{Bench.mib(peaks.rss)} MiB"
    )
  end

  defp pull_all do
    CloudStreams.Synthetic.stream(chunks: @chunks, chunk_size: @chunk_size)
    |> Enum.reduce(0, &(byte_size(&1) + &2))
  end
end
