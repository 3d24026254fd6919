# `make demo`: a tour of cloud_streams on the embedded defaults, a local-disk store, the S3
# emulator and DynamoDB Local (started and stopped by scripts/with_servers.sh). Each step prints
# its throughput and the BEAM's peak memory growth while it ran. About a minute after the build.

Code.require_file("sample_users.exs", __DIR__)

defmodule Tour do
  @mib 1024 * 1024
  @gib 1024 * @mib
  @items 100_000

  @restored Tour.RestoredUsers
  @user Tour.User

  def run do
    dir = Path.join(System.tmp_dir!(), "cloud_streams_tour_#{System.os_time(:second)}")
    configure_dynamo()
    started = System.monotonic_time(:millisecond)

    try do
      object_stores(dir)
      dynamo()
    after
      File.rm_rf!(dir)
      Dynamo.Table.delete_table(@user)
    end

    seconds = (System.monotonic_time(:millisecond) - started) / 1000

    IO.puts(
      "\nTour done in #{Float.round(seconds, 1)} s. Native core: #{inspect(CloudStreams.stats())}"
    )
  end

  # --- object stores ------------------------------------------------------------------------

  defp object_stores(dir) do
    local_spec = {:local, root: Path.join(dir, "store"), create_root: true}
    {:ok, store} = ObjectStoreX.new(:local, elem(local_spec, 1))
    IO.puts("\n== ObjectStoreX on #{inspect(store)}")

    # A generated 1 GiB stream: 1 MiB chunks, each a little different, hashed as they go.
    chunk = :crypto.strong_rand_bytes(@mib)

    written_hash =
      step("upload 1 GiB (multipart, 4 parts in flight)", @gib, fn ->
        Process.put(:tour_hash, :crypto.hash_init(:sha256))

        :ok =
          Stream.map(1..1024, fn i -> <<i::32, binary_part(chunk, 4, @mib - 4)::binary>> end)
          |> Stream.each(
            &Process.put(:tour_hash, :crypto.hash_update(Process.get(:tour_hash), &1))
          )
          |> ObjectStoreX.Stream.upload(store, "tour/big.bin",
            on_progress: fn sent, _total -> progress(div(sent, @mib), 1024, "MiB") end
          )

        IO.write("\n")
        :crypto.hash_final(Process.delete(:tour_hash))
      end)

    step("download it back, 1 MiB chunks, checking the SHA-256", @gib, fn ->
      read_hash =
        ObjectStoreX.Stream.download(store, "tour/big.bin")
        |> Enum.reduce(:crypto.hash_init(:sha256), &:crypto.hash_update(&2, &1))
        |> :crypto.hash_final()

      if read_hash != written_hash, do: raise("checksum mismatch")
      IO.puts("  sha256 #{Base.encode16(read_hash, case: :lower) |> binary_part(0, 16)}… matches")
    end)

    step("list, and range-read three slices of it", nil, fn ->
      for i <- 1..20, do: :ok = ObjectStoreX.put(store, "tour/small/#{i}.txt", "file #{i}")
      listed = ObjectStoreX.Stream.list_stream(store, prefix: "tour") |> Enum.count()

      {:ok, [a, b, c]} =
        ObjectStoreX.get_ranges(store, "tour/big.bin", [
          0..3,
          {@mib, @mib + 3},
          {:offset, 1023 * @mib}
        ])

      IO.puts(
        "  #{listed} objects listed; chunk numbers read from three ranges: #{inspect(Enum.map([a, b, binary_part(c, 0, 4)], &:binary.decode_unsigned/1))}"
      )
    end)

    case System.get_env("CLOUD_STREAMS_S3_ENDPOINT") do
      nil ->
        IO.puts("\n(S3 emulator not running: copy step skipped; run through `make demo`)")

      endpoint ->
        s3_spec =
          {:s3,
           bucket: System.fetch_env!("CLOUD_STREAMS_S3_BUCKET"),
           endpoint: endpoint,
           allow_http: true,
           from_env: true,
           prefix: "tour-#{System.os_time(:second)}"}

        step("copy it to the S3 emulator (ObjectStoreX.Transfer, streamed)", @gib, fn ->
          {:ok, %{copied: 1, bytes: @gib}} =
            ObjectStoreX.Transfer.copy_many(local_spec, s3_spec, ["tour/big.bin"])

          s3 = ObjectStoreX.new!(elem(s3_spec, 0), elem(s3_spec, 1))
          {:ok, meta} = ObjectStoreX.head(s3, "tour/big.bin")
          :ok = ObjectStoreX.delete(s3, "tour/big.bin")
          IO.puts("  #{inspect(s3)}: #{meta.size} bytes, etag #{meta.etag}")
        end)
    end
  end

  # A progress bar, redrawn only when it grows (one line per step, not one per chunk).
  defp progress(done, total, unit) do
    width = 40
    filled = div(done * width, total)

    if filled != Process.get(:tour_bar) do
      Process.put(:tour_bar, filled)
      bar = String.duplicate("█", filled) <> String.duplicate("·", width - filled)
      IO.write("\r  [#{bar}] #{done} / #{total} #{unit}")
    end
  end

  # --- DynamoDB -----------------------------------------------------------------------------

  defp configure_dynamo do
    if endpoint = System.get_env("CLOUD_STREAMS_DYNAMODB_ENDPOINT") do
      Application.put_env(:cloud_streams, :dynamo,
        endpoint: endpoint,
        region: System.get_env("AWS_REGION", "us-east-1")
      )
    end
  end

  defp dynamo do
    if System.get_env("CLOUD_STREAMS_DYNAMODB_ENDPOINT") == nil do
      IO.puts("\n(DynamoDB Local not running: DynamoDB steps skipped; run through `make demo`)")
    else
      IO.puts("\n== Dynamo on DynamoDB Local")
      SampleUsers.define(@user, "cloud_streams_tour_users")

      step(
        "seed #{@items} items (batch writes, 25 per request, 4 at once)",
        {@items, :items},
        fn ->
          SampleUsers.seed(@user, @items, &progress(&1, @items, "items"))
          IO.write("\n")
        end
      )

      step("Dynamo.Table.Stream.scan: one segment, lazy, into structs", {@items, :items}, fn ->
        @items = Dynamo.Table.Stream.scan(@user, page_size: 500) |> Enum.count()
      end)

      step("parallel_scan, 8 segments at once", {@items, :items}, fn ->
        tenants =
          Dynamo.Table.Stream.parallel_scan(@user, segments: 8, page_size: 500)
          |> Enum.frequencies_by(& &1.tenant_id)

        IO.puts("  #{map_size(tenants)} tenants, #{Enum.sum(Map.values(tenants))} users")
      end)

      step("scan_to_process: batches of 500 to a process", {@items, :items}, fn ->
        {:ok, _scanner} =
          Dynamo.Table.Stream.scan_to_process(@user, self(),
            segments: 4,
            batch_size: 500,
            page_size: 500
          )

        @items = receive_batches(0)
      end)

      step(
        "Dynamo.Table.Stream.Producer, one GenStage-protocol consumer asking 1,000 at a time",
        {@items, :items},
        fn ->
          {:ok, producer} =
            Dynamo.Table.Stream.Producer.start_link(schema: @user, segments: 4, page_size: 500)

          @items = consume(producer)
        end
      )

      table_transfer()
    end
  end

  # The whole table to the local disk in DynamoDB's export format, and back into another
  # table: natively end to end, the items never enter the BEAM.
  defp table_transfer do
    root = Path.join(System.tmp_dir!(), "cloud_streams_tour_exports")
    File.rm_rf!(root)
    store = ObjectStoreX.new!(:local, root: root, create_root: true)
    SampleUsers.define(@restored, "cloud_streams_tour_users_restored")
    _ = Dynamo.Table.delete_table(@restored)
    :ok = Dynamo.Table.create_table(@restored)

    step(
      "Dynamo.Table.Stream.export: DynamoDB's export format, 4 segments",
      {@items, :items},
      fn ->
        {:ok, %{items: @items, files: files, bytes: bytes, manifest: manifest}} =
          Dynamo.Table.Stream.export(@user, store, "users", segments: 4, page_size: 500)

        IO.puts("  #{files} gzipped files, #{Float.round(bytes / @mib, 1)} MiB: #{manifest}")
      end
    )

    step(
      "Dynamo.Table.Stream.import: into a second table, 25 items per request",
      {@items, :items},
      fn ->
        {:ok, %{items: @items}} =
          Dynamo.Table.Stream.import(store, "users", @restored,
            on_progress: &progress(&1.items, &1.total_items || @items, "items")
          )

        IO.write("\n")
      end
    )

    Dynamo.Table.delete_table(@restored)
    File.rm_rf!(root)
  end

  defp receive_batches(count) do
    receive do
      {:scan_batch, users} -> receive_batches(count + length(users))
      :scan_complete -> count
      {:scan_error, error} -> raise error
    end
  end

  # What a GenStage consumer does: subscribe, ask, ask again as events arrive.
  defp consume(producer) do
    Process.unlink(producer)
    monitor = Process.monitor(producer)
    tag = make_ref()
    send(producer, {:"$gen_producer", {self(), tag}, {:subscribe, nil, []}})
    send(producer, {:"$gen_producer", {self(), tag}, {:ask, 1_000}})
    consume_loop(producer, tag, monitor, 0, 1_000)
  end

  defp consume_loop(producer, tag, monitor, count, pending) do
    receive do
      {:"$gen_consumer", {^producer, ^tag}, events} when is_list(events) ->
        pending = pending - length(events)

        pending =
          if pending < 500 do
            send(producer, {:"$gen_producer", {self(), tag}, {:ask, 1_000}})
            pending + 1_000
          else
            pending
          end

        consume_loop(producer, tag, monitor, count + length(events), pending)

      {:DOWN, ^monitor, :process, ^producer, :normal} ->
        count
    end
  end

  # --- steps --------------------------------------------------------------------------------

  defp step(title, amount, fun) do
    IO.puts("\n▶ #{title}")
    :erlang.garbage_collect()
    base = :erlang.memory(:total)
    sampler = spawn_link(fn -> sample(base, 0) end)
    started = System.monotonic_time(:microsecond)
    result = fun.()
    seconds = (System.monotonic_time(:microsecond) - started) / 1.0e6
    send(sampler, {:stop, self()})

    peak =
      receive do
        {:peak, peak} -> peak
      end

    IO.puts(
      "  #{rate(amount, seconds)}#{Float.round(seconds, 2)} s, peak BEAM memory +#{Float.round(peak / @mib, 1)} MiB"
    )

    result
  end

  defp rate(nil, _seconds), do: ""
  defp rate({items, :items}, seconds), do: "#{round(items / seconds)} items/s, "
  defp rate(bytes, seconds), do: "#{Float.round(bytes / seconds / 1.0e9, 2)} GB/s, "

  defp sample(base, peak) do
    receive do
      {:stop, parent} -> send(parent, {:peak, peak})
    after
      10 -> sample(base, max(peak, :erlang.memory(:total) - base))
    end
  end
end

Tour.run()
