defmodule Bench.Dynamo do
  @moduledoc false
  # Issues 6 and 17: items per second of Dynamo.Table.Stream.scan/2 and parallel_scan/2 (1, 4
  # and 8 segments) over 100,000 items decoded into structs, each against a raw-Rust
  # aws-sdk-dynamodb program scanning the same table in the same run (raw_baseline
  # dynamo-scan) and boto3's Table resource (bench/peers.py); and the peak memory while a
  # consumer that sleeps 1 ms per item reads a 100,000-item table and a 10,000-item one.
  #
  # Items of ~200 bytes in 7 attributes: an id, an email, a 70-character name, an integer, a
  # boolean, a tenant and a timestamp string (read as a string: DynamoDB has no date type).

  @items 100_000
  @page_size 500

  # Both schemas are defined at run time (define/2).
  @compile {:no_warn_undefined, [Bench.Dynamo.User, Bench.Dynamo.SmallTable]}
  @user Bench.Dynamo.User
  @small Bench.Dynamo.SmallTable

  def define(module, table) do
    Module.create(
      module,
      quote do
        use Dynamo.Schema

        item do
          table_name(unquote(table))
          field(:id, :string, partition_key: true)
          field(:email, :string)
          field(:name, :string)
          field(:age, :integer)
          field(:active, :boolean)
          field(:tenant_id, :string)
          field(:created_at, :string)
        end
      end,
      Macro.Env.location(__ENV__)
    )
  end

  defp item(module, i) do
    struct(module,
      id: "user-#{i}",
      email: "user#{i}@example.com",
      name: String.pad_trailing("User Number #{i}", 70, "."),
      age: rem(i, 90),
      active: rem(i, 3) == 0,
      tenant_id: "tenant-#{rem(i, 50)}",
      created_at: ~U[2026-11-22 10:00:00Z] |> DateTime.add(i, :second) |> DateTime.to_iso8601()
    )
  end

  def run do
    case System.get_env("CLOUD_STREAMS_DYNAMODB_ENDPOINT") do
      nil ->
        IO.puts("(DynamoDB Local not running: Dynamo bench skipped; run through `make bench`)")

      endpoint ->
        define(@user, "cloud_streams_bench_items")
        define(@small, "cloud_streams_bench_items_small")
        configure(endpoint)
        # CLOUD_STREAMS_BENCH_KEEP=1 keeps the seeded tables for the next run (while tuning).
        keep? = System.get_env("CLOUD_STREAMS_BENCH_KEEP") == "1"
        seed(@user, @items, keep?)
        seed(@small, div(@items, 10), keep?)
        throughput(endpoint)
        if Bench.memory_rows?(), do: slow_consumer()

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

  # 1,000 items per task, 4 tasks at once.
  def seed(schema, count) do
    {seconds, _} =
      Bench.time(fn ->
        _ = Dynamo.Table.delete_table(schema)
        :ok = Dynamo.Table.create_table(schema)

        1..count
        |> Stream.map(&item(schema, &1))
        |> Stream.chunk_every(1_000)
        |> Task.async_stream(&Dynamo.Table.batch_write_item(schema, &1), timeout: :infinity)
        |> Enum.each(fn {:ok, {:ok, _written}} -> :ok end)
      end)

    IO.puts("(seeded #{count} items into #{schema.__dynamo__(:table)} in #{round(seconds)} s)")
  end

  defp throughput(endpoint) do
    table = @user.__dynamo__(:table)
    rounds = Bench.rounds(5)

    for {label, segments, stream} <- [
          {"scan", 1, fn -> Dynamo.Table.Stream.scan(@user, page_size: @page_size) end},
          {"parallel_scan, 1 segment", 1, parallel(1)},
          {"parallel_scan, 4 segments", 4, parallel(4)},
          {"parallel_scan, 8 segments", 8, parallel(8)}
        ] do
      raw = fn ->
        %{items: items} =
          measured =
          Bench.raw_baseline!(["dynamo-scan", endpoint, table, "#{segments}", "#{@page_size}"])

        true = items == @items
        measured
      end

      ours = fn -> %{result: @items} = Bench.measure(fn -> Enum.count(stream.()) end) end

      boto3 = fn ->
        %{items: items} =
          measured =
          Bench.peer!(~w(dynamo-scan boto3 #{endpoint} #{table} #{segments} #{@page_size}))

        true = items == @items
        measured
      end

      results = Bench.compare([{"raw Rust", raw}, {"ours", ours}, {"boto3", boto3}], rounds)

      Bench.print_comparison(
        "Dynamo #{label}: #{@items} items into structs, page_size #{@page_size}",
        results,
        @items,
        100_000,
        "100k items",
        {1000, "k items/s"}
      )
    end
  end

  defp parallel(segments) do
    fn -> Dynamo.Table.Stream.parallel_scan(@user, segments: segments, page_size: @page_size) end
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
