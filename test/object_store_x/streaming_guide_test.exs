defmodule ObjectStoreX.StreamingGuideTest.Helpers do
  @moduledoc false
  # The placeholders the guide's examples call, defined as a reader would.
  def parse_parquet_metadata(header, footer), do: {byte_size(header), byte_size(footer)}
  def parse_video_header(header, metadata), do: {byte_size(header), byte_size(metadata)}
  def process_batch(batch), do: length(batch)
  def process_object(meta), do: meta.location
end

defmodule ObjectStoreX.StreamingGuideTest do
  # Every Elixir block of guides/objectstorex_streaming_guide.md, run as written against a
  # local-disk store and the S3 emulator, in a scratch working directory. Blocks that define a
  # module are followed by a call of that module (see `drive/3`).
  use ExUnit.Case, async: false
  @moduletag :s3

  # Defined by the guide's blocks when they run.
  @compile {:no_warn_undefined,
            [Downloader, Uploader, RetryUploader, BackupSystem, LogProcessor, DataMigration]}
  alias CloudStreams.{Guide, TestBed}

  @guide Path.expand("../../guides/objectstorex_streaming_guide.md", __DIR__)
  @external_resource @guide
  @mib 1_048_576

  setup_all do
    large = :crypto.strong_rand_bytes(25 * @mib)
    {:ok, large: large}
  end

  setup %{large: large} = context do
    prefix = "guide-#{System.os_time(:millisecond)}-#{System.unique_integer([:positive])}"
    work = Path.join(System.tmp_dir!(), prefix)
    File.mkdir_p!(work)

    {:ok, store} =
      case context.backend do
        :local -> ObjectStoreX.new(:local, root: Path.join(work, "store"), create_root: true)
        :s3 -> TestBed.s3_store(prefix)
      end

    seed!(store, large)
    File.write!(Path.join(work, "large-file.bin"), large)
    File.write!(Path.join(work, "large.bin"), large)
    previous = File.cwd!()
    File.cd!(work)

    on_exit(fn ->
      File.cd!(previous)
      File.rm_rf!(work)
    end)

    binding = [
      store: store,
      data: "small data",
      stream: ["some ", "streamed ", "data"],
      path: Path.join(work, "large.bin"),
      remote_path: "tuned/large.bin"
    ]

    {:ok, store: store, binding: binding, work: work}
  end

  defp seed!(store, large) do
    objects =
      [
        {"large-file.bin", large},
        {"file.bin", :crypto.strong_rand_bytes(5_000)},
        {"data.parquet", :binary.copy(<<1>>, 10_000_001)},
        {"video.mp4", :crypto.strong_rand_bytes(3_000)},
        {"file1.bin", "one"},
        {"file2.bin", "two"},
        {"file3.bin", "three"},
        {"logs/2025-01-01/app.log", "ok\nERROR disk full\nok\nERROR again\n"}
      ] ++
        for(i <- 1..3, do: {"data/2025/#{i}.csv", "a,b\n"}) ++
        for(i <- 1..3, do: {"uploads/#{i}.bin", "u"}) ++
        for(i <- 1..5, do: {"temp/#{i}", "t"}) ++
        for(i <- 1..2, do: {"backups/#{i}.tar", "bk"})

    for {path, body} <- objects, do: :ok = ObjectStoreX.put(store, path, body)
  end

  # What to call after a block that defines a module, and what must then hold.
  defp drive(Downloader, %{store: store, large: large}) do
    Downloader.download_with_progress(store, "large-file.bin", "progress.bin")
    assert File.read!("progress.bin") == large
  end

  defp drive(Uploader, %{store: store, large: large}) do
    Uploader.upload_with_progress("large-file.bin", store, "uploaded-with-progress.bin")
    assert ObjectStoreX.get!(store, "uploaded-with-progress.bin") == large
  end

  defp drive(RetryUploader, %{store: store}) do
    assert RetryUploader.upload_with_retry(["retry ", "me"], store, "retry.txt") == :ok
    assert ObjectStoreX.get!(store, "retry.txt") == "retry me"
  end

  defp drive(BackupSystem, %{store: store, work: work}) do
    dir = Path.join(work, "to-back-up")
    File.mkdir_p!(dir)
    for i <- 1..3, do: File.write!(Path.join(dir, "f#{i}.txt"), "file #{i}")
    BackupSystem.backup_directory(dir, store, "nightly")
    for i <- 1..3, do: assert(ObjectStoreX.get!(store, "nightly/f#{i}.txt") == "file #{i}")
  end

  defp drive(LogProcessor, %{store: store}) do
    assert LogProcessor.process_logs(store, "2025-01-01") == ["ERROR disk full", "ERROR again"]
  end

  defp drive(DataMigration, %{store: store}) do
    {:ok, destination} = ObjectStoreX.new(:memory)
    DataMigration.migrate(store, destination, "data/")
    assert ObjectStoreX.get!(destination, "data/2025/1.csv") == "a,b\n"
  end

  for backend <- [:local, :s3], block <- Guide.blocks(@guide) do
    @tag backend: backend
    @tag timeout: 300_000
    if block.needs_hex? do
      @tag :skip
    end

    test "#{backend}: line #{block.line} (#{block.heading})", context do
      block = unquote(Macro.escape(block))

      Guide.run_and_drive!(
        block,
        context.binding,
        __MODULE__.Helpers,
        @guide,
        &drive(&1, context)
      )
    end
  end
end
