defmodule Bench.ObjectStore do
  @moduledoc false
  # Issue 4: download and upload of a 1 GiB object on the local-disk store and on the S3
  # emulator, each against a raw-Rust object_store program doing the same work in the same
  # run (native/cloud_streams_core/examples/raw_baseline.rs); and the memory a consumer that
  # sleeps 10 ms per chunk costs while it streams a 4 GiB object.

  @mib 1_048_576
  @gib 1024 * @mib
  @part_size 10 * @mib
  @concurrency 4

  def run do
    # CLOUD_STREAMS_BENCH_DIR picks the local store's disk (say, a tmpfs to leave the disk out).
    base = System.get_env("CLOUD_STREAMS_BENCH_DIR", System.tmp_dir!())
    root = Path.join(base, "cloud_streams_bench")
    IO.puts("(local-disk store in #{root})")
    File.rm_rf!(root)
    File.mkdir_p!(root)

    targets = [{"local disk", ObjectStoreX.new!(:local, root: root), "local", root, 5}]

    targets =
      case System.get_env("CLOUD_STREAMS_S3_ENDPOINT") do
        nil ->
          IO.puts("(S3 emulator not running: S3 rows skipped; run through `make bench`)")
          targets

        endpoint ->
          bucket = System.fetch_env!("CLOUD_STREAMS_S3_BUCKET")

          s3 =
            ObjectStoreX.new!(:s3,
              bucket: bucket,
              endpoint: endpoint,
              allow_http: true,
              from_env: true
            )

          # moto takes ~25 s to store 1 GiB: one round of uploads there.
          targets ++ [{"S3 emulator", s3, "s3", "#{endpoint}/#{bucket}", 1}]
      end

    for {name, store, kind, location, rounds} <- targets do
      upload(name, store, kind, location, rounds)
      # The download reads what the last upload wrote.
      download(name, store, kind, location, root, max(rounds, 3))
    end

    slow_consumer(root)
    File.rm_rf!(root)
  end

  defp upload(name, store, kind, location, rounds) do
    chunk = :binary.copy(<<7>>, @mib)

    raw = fn ->
      settle(store, "bench/raw.bin")

      args = [
        "put",
        kind,
        location,
        "bench/raw.bin",
        "#{@gib}",
        "#{@part_size}",
        "#{@concurrency}"
      ]

      Bench.raw_baseline!(args).seconds
    end

    ours = fn ->
      settle(store, "bench/ours.bin")

      {seconds, :ok} =
        Bench.time(fn ->
          Stream.repeatedly(fn -> chunk end)
          |> Stream.take(div(@gib, @mib))
          |> ObjectStoreX.Stream.upload(store, "bench/ours.bin",
            part_size: @part_size,
            max_concurrency: @concurrency
          )
        end)

      seconds
    end

    # Alternate which side goes first, so neither always meets the other's leftovers.
    results =
      for round <- 1..rounds do
        if rem(round, 2) == 1 do
          raw_seconds = raw.()
          {raw_seconds, ours.()}
        else
          ours_seconds = ours.()
          {raw.(), ours_seconds}
        end
      end

    ObjectStoreX.delete(store, "bench/raw.bin")
    report("upload 1 GiB, #{name}", results, "object_store multipart, 10 MiB parts, 4 in flight")
  end

  # Each upload starts from the same state: its previous output deleted and everything written
  # back, so the kernel's dirty-page throttling does not bill one side for the other's writes.
  defp settle(store, path) do
    ObjectStoreX.delete(store, path)
    System.cmd("sync", [])
  end

  defp download(name, store, kind, location, root, rounds) do
    raw_args =
      case kind do
        "local" -> ["file-read", Path.join(root, "bench/ours.bin")]
        "s3" -> ["get", "s3", location, "bench/ours.bin"]
      end

    results =
      for _ <- 1..rounds do
        raw = Bench.raw_baseline!(raw_args)

        {seconds, bytes} =
          Bench.time(fn ->
            ObjectStoreX.Stream.download(store, "bench/ours.bin")
            |> Enum.reduce(0, &(byte_size(&1) + &2))
          end)

        true = bytes == @gib and raw.bytes == @gib
        {raw.seconds, seconds}
      end

    baseline =
      if kind == "local", do: "std::fs::File, 4 MiB reads", else: "object_store GET stream"

    report("download 1 GiB, #{name}", results, baseline)
  end

  defp report(title, results, baseline) do
    IO.puts("== #{title}, #{length(results)} rounds; raw Rust: #{baseline}")
    Bench.print_ratio(@gib, results, title)
  end

  defp slow_consumer(root) do
    size = 4 * @gib
    path = Path.join(root, "slow-4g.bin")
    # Written sparse: the content does not matter, the file's size does.
    {:ok, file} = :file.open(path, [:write, :raw])
    :ok = :file.truncate(file |> tap(&:file.position(&1, size)))
    :file.close(file)

    store = ObjectStoreX.new!(:local, root: root)

    IO.puts(
      "== slow consumer: 4 GiB from the local-disk store, sleeping 10 ms per 1 MiB chunk (~45 s)"
    )

    {bytes, peaks} =
      Bench.with_peak_memory(fn ->
        ObjectStoreX.Stream.download(store, "slow-4g.bin")
        |> Enum.reduce(0, fn chunk, acc ->
          Process.sleep(10)
          acc + byte_size(chunk)
        end)
      end)

    true = bytes == size

    IO.puts(
      "  peak growth: BEAM total #{Bench.mib(peaks.total)} MiB, BEAM binaries " <>
        "#{Bench.mib(peaks.binary)} MiB, OS RSS #{Bench.mib(peaks.rss)} MiB (defaults: 1 MiB chunks, 8 MiB prefetch)"
    )
  end
end
