# `make bench`: every benchmark, each with its raw-Rust baseline measured in the same run.
# One benchmark alone: `mix run bench/run.exs pull_stream` (or object_store, dynamo,
# table_transfer).
# With a telemetry handler attached: `CLOUD_STREAMS_BENCH_TELEMETRY=1 make bench`.
# CLOUD_STREAMS_BENCH_TELEMETRY=1 runs everything with a handler attached to every event, to
# compare with a run without. :telemetry is a hex package and cannot be installed here, so
# the test suite's stand-in (the package's public API over an ETS table, as the real one) is
# loaded first: the library checks for :telemetry once, at its first event.
if System.get_env("CLOUD_STREAMS_BENCH_TELEMETRY") in ["1", "true"] do
  Code.require_file("../test/support/telemetry_stand_in.ex", __DIR__)
  counter = :counters.new(1, [:write_concurrency])

  :ok =
    :telemetry.attach_many(
      "bench",
      CloudStreams.Telemetry.events(),
      fn _event, _measurements, _metadata, counter -> :counters.add(counter, 1, 1) end,
      counter
    )

  System.at_exit(fn _ -> IO.puts("telemetry: #{:counters.get(counter, 1)} events handled") end)
  IO.puts("telemetry: a handler is attached to every event")
end

Code.require_file("support.exs", __DIR__)
Code.require_file("pull_stream_bench.exs", __DIR__)
Code.require_file("object_store_bench.exs", __DIR__)
Code.require_file("dynamo_bench.exs", __DIR__)
Code.require_file("table_transfer_bench.exs", __DIR__)

benches = %{
  "pull_stream" => &Bench.PullStream.run/0,
  "object_store" => &Bench.ObjectStore.run/0,
  "dynamo" => &Bench.Dynamo.run/0,
  "table_transfer" => &Bench.TableTransfer.run/0
}

selected =
  case System.argv() do
    [] -> Map.keys(benches) |> Enum.sort(:desc)
    names -> names
  end

for name <- selected, do: Map.fetch!(benches, name).()

# The chart the README shows, from this run's ratios.
Bench.write_chart(Path.expand("results.svg", __DIR__))
