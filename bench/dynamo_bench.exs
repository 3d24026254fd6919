defmodule Bench.Dynamo do
  @moduledoc false
  # Issue 6: items per second of Dynamo.Table.Stream.scan/2 and parallel_scan/2 (1, 4 and 8
  # segments) over 100,000 items decoded into structs, each against a raw-Rust aws-sdk-dynamodb
  # program scanning the same table in the same run (raw_baseline dynamo-scan); and the peak
  # memory while a consumer that sleeps 1 ms per item reads a 100,000-item table and a
  # 10,000-item one.

  @items 100_000
  @page_size 500
  @rounds 5

  # Both schemas are defined at run time (demo/sample_users.exs).
  @compile {:no_warn_undefined, [Bench.Dynamo.User, Bench.Dynamo.SmallTable]}
  @user Bench.Dynamo.User
  @small Bench.Dynamo.SmallTable

  def run do
    case System.get_env("CLOUD_STREAMS_DYNAMODB_ENDPOINT") do
      nil ->
        IO.puts("(DynamoDB Local not running: Dynamo bench skipped; run through `make bench`)")

      endpoint ->
        SampleUsers.define(@user, "cloud_streams_bench_users")
        SampleUsers.define(@small, "cloud_streams_bench_users_small")
        configure(endpoint)
        # CLOUD_STREAMS_BENCH_KEEP=1 keeps the seeded tables for the next run (while tuning).
        keep? = System.get_env("CLOUD_STREAMS_BENCH_KEEP") == "1"
        seed(@user, @items, keep?)
        seed(@small, div(@items, 10), keep?)
        throughput(endpoint)
        slow_consumer()

        unless keep? do
          Dynamo.Table.delete_table(@user)
          Dynamo.Table.delete_table(@small)
        end
    end
  end

  # Both sides take their credentials from the AWS_* variables scripts/with_servers.sh sets
  # (DynamoDB Local keeps one database per access key and region).
  defp configure(endpoint) do
    Application.put_env(:cloud_streams, :dynamo,
      endpoint: endpoint,
      region: System.get_env("AWS_REGION", "us-east-1")
    )
  end

  defp seed(schema, count, keep?) do
    if keep? and match?({:ok, _}, Dynamo.Table.scan(schema, limit: 1)) do
      IO.puts("(reusing #{schema.__dynamo__(:table)})")
    else
      seed(schema, count)
    end
  end

  def seed(schema, count) do
    {seconds, _} = Bench.time(fn -> SampleUsers.seed(schema, count) end)
    IO.puts("(seeded #{count} items into #{schema.__dynamo__(:table)} in #{round(seconds)} s)")
  end

  defp throughput(endpoint) do
    table = @user.__dynamo__(:table)

    for {label, segments, stream} <- [
          {"scan", 1, fn -> Dynamo.Table.Stream.scan(@user, page_size: @page_size) end},
          {"parallel_scan, 1 segment", 1, parallel(1)},
          {"parallel_scan, 4 segments", 4, parallel(4)},
          {"parallel_scan, 8 segments", 8, parallel(8)}
        ] do
      results =
        for _ <- 1..@rounds do
          raw =
            Bench.raw_baseline!(["dynamo-scan", endpoint, table, "#{segments}", "#{@page_size}"])

          {seconds, count} = Bench.time(fn -> Enum.count(stream.()) end)
          ^count = @items
          true = raw.items == @items
          {raw.seconds, seconds}
        end

      IO.puts("== Dynamo #{label}: #{@items} items into structs, page_size #{@page_size}")
      print_items_ratio(results, "Dynamo #{label}")
    end
  end

  defp parallel(segments) do
    fn -> Dynamo.Table.Stream.parallel_scan(@user, segments: segments, page_size: @page_size) end
  end

  defp print_items_ratio(results, label) do
    rate = fn seconds -> "#{round(@items / seconds / 1000)}k items/s" end
    raw = Enum.map(results, &elem(&1, 0))
    ours = Enum.map(results, &elem(&1, 1))
    Bench.record(label, Bench.median(raw) / Bench.median(ours), Enum.min(raw) / Enum.min(ours))

    IO.puts(
      "  median: ours #{rate.(Bench.median(ours))}, raw #{rate.(Bench.median(raw))}, " <>
        "ratio #{Float.round(Bench.median(raw) / Bench.median(ours), 2)}"
    )

    IO.puts(
      "  best:   ours #{rate.(Enum.min(ours))}, raw #{rate.(Enum.min(raw))}, " <>
        "ratio #{Float.round(Enum.min(raw) / Enum.min(ours), 2)}"
    )
  end

  # A consumer sleeping 1 ms per item reads 3,000 items (about 4 s): memory is that of the
  # buffered pages, the same for a table ten times smaller.
  defp slow_consumer do
    IO.puts("== Dynamo slow consumer (1 ms per item, 3,000 items, 8 segments, page_size 100):")

    for schema <- [@user, @small] do
      {_, peaks} =
        Bench.with_peak_memory(fn ->
          Dynamo.Table.Stream.parallel_scan(schema, segments: 8, page_size: 100)
          |> Stream.each(fn _ -> Process.sleep(1) end)
          |> Stream.take(3_000)
          |> Stream.run()
        end)

      {:ok, %{count: _}} = Dynamo.Table.scan(schema, limit: 1)

      IO.puts(
        "  #{schema.__dynamo__(:table)}: peak BEAM memory +#{Bench.mib(peaks.total)} MiB, " <>
          "RSS +#{Bench.mib(peaks.rss)} MiB"
      )
    end
  end
end
