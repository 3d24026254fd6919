defmodule Bench.ObjectStore do
  @moduledoc false
  # Issue 4: download and upload of a 1 GiB object on the local-disk store and on the S3
  # emulator, each against a raw-Rust object_store program doing the same work in the same
  # run (native/cloud_streams_core/examples/raw_baseline.rs) and, on S3, against obstore and
  # boto3 (bench/peers.py, issue 17); and the memory a consumer that sleeps 10 ms per chunk
  # costs while it streams a 4 GiB object.

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

    targets = [
      {"local disk", ObjectStoreX.new!(:local, root: root), "local", root, Bench.rounds(5),
       Bench.rounds(5)}
    ]

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
          targets ++ [{"S3 emulator", s3, "s3", "#{endpoint}/#{bucket}", 1, Bench.rounds(3)}]
      end

    for {name, store, kind, location, upload_rounds, download_rounds} <- targets do
      upload(name, store, kind, location, upload_rounds)
      # The download reads what the last upload wrote.
      download(name, store, kind, location, root, download_rounds)
    end

    if Bench.memory_rows?(), do: slow_consumer(root)
    File.rm_rf!(root)
  end

  # Every side of a comparison, as `{name, fun}`; each fun returns `%{seconds:, cpu:}`.
  # The Python peers run against the S3 emulator only (obstore's local store is object_store's).
  defp peers("s3", run), do: for(lib <- ["obstore", "boto3"], do: {lib, fn -> run.(lib) end})
  defp peers(_kind, _run), do: []

  defp upload(name, store, kind, location, rounds) do
    chunk = :binary.copy(<<7>>, @mib)
    size = size()

    raw = fn ->
      settle(store, "bench/raw.bin")

      Bench.raw_baseline!(
        ~w(put #{kind} #{location} bench/raw.bin #{size} #{@part_size} #{@concurrency})
      )
    end

    ours = fn ->
      settle(store, "bench/ours.bin")

      %{result: :ok} =
        measured =
        Bench.measure(fn ->
          Stream.repeatedly(fn -> chunk end)
          |> Stream.take(div(size, @mib))
          |> ObjectStoreX.Stream.upload(store, "bench/ours.bin",
            part_size: @part_size,
            max_concurrency: @concurrency
          )
        end)

      measured
    end

    peer = fn lib ->
      key = "bench/#{lib}.bin"
      settle(store, key)
      {endpoint, bucket} = split_location(location)

      Bench.peer!(
        ~w(s3-put #{lib} #{endpoint} #{bucket} #{key} #{size} #{@part_size} #{@concurrency})
      )
    end

    sides = [{"raw Rust", raw}, {"ours", ours}] ++ peers(kind, peer)
    results = Bench.compare(sides, rounds)

    for path <- ~w(bench/raw.bin bench/obstore.bin bench/boto3.bin),
        do: ObjectStoreX.delete(store, path)

    report(
      "upload #{size_label()}, #{name}",
      results,
      "object_store multipart, 10 MiB parts, 4 in flight"
    )
  end

  # Each upload starts from the same state: its previous output deleted and everything written
  # back, so the kernel's dirty-page throttling does not bill one side for the other's writes.
  defp settle(store, path) do
    ObjectStoreX.delete(store, path)
    System.cmd("sync", [])
  end

  defp split_location(location) do
    [bucket | rest] = location |> String.split("/") |> Enum.reverse()
    {rest |> Enum.reverse() |> Enum.join("/"), bucket}
  end

  defp download(name, store, kind, location, root, rounds) do
    size = size()

    raw_args =
      case kind do
        "local" -> ["file-read", Path.join(root, "bench/ours.bin")]
        "s3" -> ["get", "s3", location, "bench/ours.bin"]
      end

    raw = fn ->
      %{bytes: bytes} = measured = Bench.raw_baseline!(raw_args)
      true = bytes == size
      measured
    end

    ours = fn ->
      %{result: ^size} =
        Bench.measure(fn ->
          ObjectStoreX.Stream.download(store, "bench/ours.bin")
          |> Enum.reduce(0, &(byte_size(&1) + &2))
        end)
    end

    peer = fn lib ->
      {endpoint, bucket} = split_location(location)

      %{bytes: bytes} =
        measured = Bench.peer!(~w(s3-get #{lib} #{endpoint} #{bucket} bench/ours.bin))

      true = bytes == size
      measured
    end

    baseline =
      if kind == "local", do: "std::fs::File, 4 MiB reads", else: "object_store GET stream"

    sides = [{"raw Rust", raw}, {"ours", ours}] ++ peers(kind, peer)
    report("download #{size_label()}, #{name}", Bench.compare(sides, rounds), baseline)
  end

  defp report(title, results, baseline) do
    IO.puts("(#{title}: raw Rust is #{baseline}; peers stream 1 MiB chunks)")
    Bench.print_comparison(title, results, size(), @gib, "GiB", {1.0e9, "GB/s"})
  end

  # CLOUD_STREAMS_BENCH_MIB sets the size of the uploaded and downloaded objects (default
  # 1024: 1 GiB), for quick runs while tuning.
  defp size, do: String.to_integer(System.get_env("CLOUD_STREAMS_BENCH_MIB", "1024")) * @mib

  defp size_label do
    case div(size(), @mib) do
      mib when rem(mib, 1024) == 0 -> "#{div(mib, 1024)} GiB"
      mib -> "#{mib} MiB"
    end
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
