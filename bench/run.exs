# `make bench`: every benchmark, each with its raw-Rust baseline measured in the same run.
# One benchmark alone: `mix run bench/run.exs pull_stream` (or object_store, dynamo).
Code.require_file("support.exs", __DIR__)
Code.require_file("pull_stream_bench.exs", __DIR__)
Code.require_file("object_store_bench.exs", __DIR__)
Code.require_file("dynamo_bench.exs", __DIR__)

benches = %{
  "pull_stream" => &Bench.PullStream.run/0,
  "object_store" => &Bench.ObjectStore.run/0,
  "dynamo" => &Bench.Dynamo.run/0
}

selected =
  case System.argv() do
    [] -> Map.keys(benches) |> Enum.sort(:desc)
    names -> names
  end

for name <- selected, do: Map.fetch!(benches, name).()

# The chart the README shows, from this run's ratios.
Bench.write_chart(Path.expand("results.svg", __DIR__))
