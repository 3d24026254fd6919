defmodule Bench.TableTransfer do
  @moduledoc false
  # Issue 16: Dynamo.Table.Stream.export/4 and import/4 on DynamoDB Local and the local-disk
  # store, 100,000 items of the scan bench's shape (bench/dynamo_bench.exs).
  #
  # - export, 4 segments, page_size 500: against the raw-Rust scan of the same table
  #   (raw_baseline dynamo-scan: the items counted natively, so the writing would be free)
  #   and the pipeline users write by hand today, parallel_scan |> encode |> gzip |>
  #   ObjectStoreX.Stream.upload/4 (its JSON encoder is the small one below: hex's Jason
  #   cannot be installed here);
  # - BEAM memory growth during an export of the 100,000-item table and of a 10,000-item one;
  # - import of that export into an empty table, 25 items per BatchWriteItem, 4 in flight:
  #   against a raw-Rust program doing the same batch writes of the same items (raw_baseline
  #   dynamo-batch-write, items built before its meter starts) and the Elixir pipeline
  #   read_export |> Stream.chunk_every(25) |> Task.async_stream(batch_write_item).

  @items 100_000
  @page_size 500
  @segments 4
  @concurrency 4

  @compile {:no_warn_undefined,
            [Bench.TableTransfer.User, Bench.TableTransfer.Small, Bench.TableTransfer.Target]}
  @user Bench.TableTransfer.User
  @small Bench.TableTransfer.Small
  @target Bench.TableTransfer.Target

  def run do
    case System.get_env("CLOUD_STREAMS_DYNAMODB_ENDPOINT") do
      nil ->
        IO.puts("(DynamoDB Local not running: table transfer bench skipped; run `make bench`)")

      endpoint ->
        Application.put_env(:cloud_streams, :dynamo,
          endpoint: endpoint,
          region: System.get_env("AWS_REGION", "us-east-1")
        )

        Bench.Dynamo.define(@user, "cloud_streams_bench_transfer")
        Bench.Dynamo.define(@small, "cloud_streams_bench_transfer_small")
        Bench.Dynamo.define(@target, "cloud_streams_bench_transfer_target")
        keep? = System.get_env("CLOUD_STREAMS_BENCH_KEEP") == "1"
        seed(@user, @items, keep?)
        seed(@small, div(@items, 10), keep?)
        root = Path.join(System.tmp_dir!(), "cloud_streams_bench_transfer")
        File.rm_rf!(root)
        store = ObjectStoreX.new!(:local, root: root, create_root: true)

        try do
          export_rows(endpoint, store)
          if Bench.memory_rows?(), do: memory_rows(store)
          import_rows(endpoint, store)
        after
          File.rm_rf!(root)

          unless keep? do
            for schema <- [@user, @small, @target], do: Dynamo.Table.delete_table(schema)
          end
        end
    end
  end

  defp seed(schema, count, keep?) do
    if keep? and match?({:ok, %{count: 1}}, Dynamo.Table.scan(schema, limit: 1)) do
      IO.puts("(reusing #{schema.__dynamo__(:table)})")
    else
      Bench.Dynamo.seed(schema, count)
    end
  end

  defp export_rows(endpoint, store) do
    table = @user.__dynamo__(:table)

    raw = fn ->
      measured =
        Bench.raw_baseline!(["dynamo-scan", endpoint, table, "#{@segments}", "#{@page_size}"])

      true = measured.items == @items
      measured
    end

    ours = fn ->
      prefix = fresh_prefix(store, "ours")

      %{result: {:ok, %{items: @items}}} =
        Bench.measure(fn ->
          Dynamo.Table.Stream.export(@user, store, prefix,
            segments: @segments,
            page_size: @page_size
          )
        end)
    end

    by_hand = fn ->
      prefix = fresh_prefix(store, "by_hand")
      %{result: :ok} = Bench.measure(fn -> export_by_hand(store, prefix) end)
    end

    results =
      Bench.compare(
        [{"raw Rust", raw}, {"ours", ours}, {"by hand", by_hand}],
        Bench.rounds(3)
      )

    Bench.print_comparison(
      "Dynamo export: #{@items} items, #{@segments} segments, page_size #{@page_size}, " <>
        "to the local disk (raw: the same scan, items counted)",
      results,
      @items,
      100_000,
      "100k items",
      {1000, "k items/s"}
    )
  end

  defp fresh_prefix(store, name) do
    paths = store |> ObjectStoreX.Stream.list_stream(prefix: name) |> Enum.map(& &1.location)
    {:ok, _, []} = ObjectStoreX.delete_many(store, paths)
    name
  end

  # What a user writes today: every item into the BEAM as a struct, to DynamoDB JSON in
  # Elixir, gzipped with :zlib, uploaded as one multipart object.
  defp export_by_hand(store, prefix) do
    z = :zlib.open()
    :ok = :zlib.deflateInit(z, :default, :deflated, 31, 8, :default)

    lines =
      Dynamo.Table.Stream.parallel_scan(@user, segments: @segments, page_size: @page_size)
      |> Stream.map(fn item -> [~s({"Item":), encode_item(item), "}\n"] end)
      |> Stream.chunk_every(1_000)
      |> Stream.map(&:zlib.deflate(z, &1))
      |> Stream.concat(Stream.resource(fn -> z end, &finish_gzip/1, fn _ -> :ok end))

    try do
      :ok = ObjectStoreX.Stream.upload(lines, store, "#{prefix}/data/all.json.gz")
      :ok
    after
      :zlib.close(z)
    end
  end

  defp finish_gzip(nil), do: {:halt, nil}
  defp finish_gzip(z), do: {[:zlib.deflate(z, [], :finish)], nil}

  defp encode_item(item) do
    item
    |> Map.from_struct()
    |> Map.drop([:__extra__])
    |> Map.new(fn {field, value} -> {Atom.to_string(field), Dynamo.Codec.encode(value)} end)
    |> Dynamo.Codec.item_to_json()
    |> json()
  end

  # A minimal JSON encoder (maps, lists, strings, booleans, nil, numbers): the work Jason
  # would do, roughly.
  defp json(map) when is_map(map) do
    ["{", Enum.map_intersperse(map, ",", fn {k, v} -> [json(k), ":", json(v)] end), "}"]
  end

  defp json(list) when is_list(list), do: ["[", Enum.map_intersperse(list, ",", &json/1), "]"]
  defp json(true), do: "true"
  defp json(false), do: "false"
  defp json(nil), do: "null"
  defp json(n) when is_number(n), do: to_string(n)
  defp json(s) when is_binary(s), do: [?", escape(s), ?"]

  # What must be escaped in a JSON string; almost no string of the bench has any.
  @needs_escape ~r/["\\\x00-\x1f]/

  defp escape(s) do
    if Regex.match?(@needs_escape, s) do
      quoted = inspect(s)
      binary_part(quoted, 1, byte_size(quoted) - 2)
    else
      s
    end
  end

  # Peak BEAM memory while exporting a table, for two table sizes: it must not grow with it.
  defp memory_rows(store) do
    IO.puts("== Dynamo export memory (#{@segments} segments, page_size #{@page_size}):")

    for schema <- [@small, @user] do
      prefix = fresh_prefix(store, "memory")

      {{:ok, %{items: items}}, peaks} =
        Bench.with_peak_memory(fn ->
          Dynamo.Table.Stream.export(schema, store, prefix,
            segments: @segments,
            page_size: @page_size
          )
        end)

      IO.puts(
        "  #{schema.__dynamo__(:table)} (#{items} items): peak BEAM memory " <>
          "+#{Bench.mib(peaks.total)} MiB, RSS +#{Bench.mib(peaks.rss)} MiB"
      )
    end
  end

  defp import_rows(endpoint, store) do
    target = @target.__dynamo__(:table)
    prefix = fresh_prefix(store, "import")

    {:ok, %{items: @items}} =
      Dynamo.Table.Stream.export(@user, store, prefix, segments: @segments, page_size: @page_size)

    raw = fn ->
      empty_target()

      measured =
        Bench.raw_baseline!([
          "dynamo-batch-write",
          endpoint,
          target,
          "#{@items}",
          "#{@concurrency}"
        ])

      true = measured.items == @items
      measured
    end

    ours = fn ->
      empty_target()

      %{result: {:ok, %{items: @items}}} =
        Bench.measure(fn ->
          Dynamo.Table.Stream.import(store, prefix, @target, max_concurrency: @concurrency)
        end)
    end

    by_hand = fn ->
      empty_target()
      %{result: @items} = Bench.measure(fn -> import_by_hand(store, prefix) end)
    end

    results =
      Bench.compare(
        [{"raw Rust", raw}, {"ours", ours}, {"by hand", by_hand}],
        Bench.rounds(3)
      )

    Bench.print_comparison(
      "Dynamo import: #{@items} items from the local disk, 25 per BatchWriteItem, " <>
        "#{@concurrency} in flight (raw: the same batch writes)",
      results,
      @items,
      100_000,
      "100k items",
      {1000, "k items/s"}
    )
  end

  defp empty_target do
    _ = Dynamo.Table.delete_table(@target)
    :ok = Dynamo.Table.create_table(@target)
  end

  defp import_by_hand(store, prefix) do
    Dynamo.Table.Stream.read_export(store, prefix, schema: @target)
    |> Stream.chunk_every(25)
    |> Task.async_stream(
      fn batch ->
        {:ok, _} = Dynamo.Table.batch_write_item(@target, batch)
        length(batch)
      end,
      max_concurrency: @concurrency,
      timeout: :infinity
    )
    |> Enum.reduce(0, fn {:ok, written}, total -> total + written end)
  end
end
