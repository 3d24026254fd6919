defmodule ObjectStoreX.S3StreamingTest do
  # Every failure path of a streaming upload aborts its multipart upload: after each test,
  # the bucket lists no multipart upload under the test's prefix. Failures are made by a
  # proxy in front of the S3 emulator that cuts chosen requests; listing goes to the emulator
  # directly. Also: how many list requests a lazy listing makes.
  use ExUnit.Case, async: false
  @moduletag :s3

  import CloudStreams.NativeHelpers
  import CloudStreams.TestBed, only: [env!: 1, s3_store: 2]
  alias CloudStreams.CountingProxy
  alias ObjectStoreX.Error
  alias ObjectStoreX.Stream, as: OS

  @mib 1_048_576
  @no_retry [retry: [max_retries: 0, retry_timeout: 1_000]]

  setup do
    prefix = "failures-#{System.os_time(:millisecond)}-#{System.unique_integer([:positive])}"
    {:ok, direct} = s3_store(prefix, [])
    on_exit(fn -> assert_native_idle() end)
    {:ok, prefix: prefix, direct: direct}
  end

  defp via_proxy(prefix, fail) do
    {url, agent} = CountingProxy.start(env!("CLOUD_STREAMS_S3_ENDPOINT"), fail)
    {:ok, store} = s3_store(prefix, [endpoint: url] ++ @no_retry)
    {store, agent}
  end

  # Multipart uploads in progress under the prefix, as the emulator lists them.
  defp open_uploads(prefix) do
    {:ok, _} = Application.ensure_all_started(:inets)

    url =
      "#{env!("CLOUD_STREAMS_S3_ENDPOINT")}/#{env!("CLOUD_STREAMS_S3_BUCKET")}?uploads&prefix=#{prefix}"

    {:ok, {{_, 200, _}, _, body}} =
      :httpc.request(:get, {to_charlist(url), []}, [], body_format: :binary)

    length(Regex.scan(~r/<Upload>/, body))
  end

  defp eventually(check, deadline \\ System.monotonic_time(:millisecond) + 10_000) do
    cond do
      check.() -> true
      System.monotonic_time(:millisecond) > deadline -> false
      true -> Process.sleep(50) && eventually(check, deadline)
    end
  end

  defp parts(n), do: Stream.repeatedly(fn -> :binary.copy("p", @mib) end) |> Stream.take(n)

  test "a failed part aborts the upload", %{prefix: prefix} do
    {store, agent} = via_proxy(prefix, ~r/^PUT .*partNumber=2&/)

    assert {:error, %Error{kind: :network, path: "part-fails.bin"}} =
             OS.upload(parts(20), store, "part-fails.bin", part_size: 5 * @mib, max_concurrency: 1)

    assert Enum.any?(CountingProxy.requests(agent), &String.starts_with?(&1, "DELETE "))
    assert open_uploads(prefix) == 0
  end

  test "a failed completion aborts the upload", %{prefix: prefix} do
    {store, _agent} = via_proxy(prefix, ~r/^POST .*uploadId=/)

    assert {:error, %Error{kind: :network}} =
             OS.upload(parts(11), store, "complete-fails.bin", part_size: 5 * @mib)

    assert open_uploads(prefix) == 0
  end

  test "an exception in the enumerable aborts the upload, then is re-raised", %{
    prefix: prefix,
    direct: store
  } do
    failing = Stream.concat(parts(12), Stream.map([:boom], fn _ -> raise "input failed" end))

    assert_raise RuntimeError, "input failed", fn ->
      OS.upload(failing, store, "input-fails.bin", part_size: 5 * @mib)
    end

    assert open_uploads(prefix) == 0
  end

  test "the death of the uploading process aborts the upload", %{prefix: prefix, direct: store} do
    parent = self()

    uploader =
      spawn(fn ->
        parts(1_000)
        |> Stream.with_index()
        |> Stream.each(fn {_, i} -> if i == 12, do: send(parent, :uploading) end)
        |> Stream.map(&elem(&1, 0))
        |> OS.upload(store, "dies.bin", part_size: 5 * @mib)
      end)

    assert_receive :uploading, 30_000
    assert open_uploads(prefix) == 1
    Process.exit(uploader, :kill)

    assert eventually(fn -> open_uploads(prefix) == 0 end)
  end

  test "a download paced by a slow consumer outlives the store's request timeout", %{
    prefix: prefix
  } do
    body = :crypto.strong_rand_bytes(6 * @mib)
    {:ok, store} = s3_store(prefix, client: [timeout: 1_000])
    :ok = ObjectStoreX.put(store, "slow.bin", body)

    # 24 chunks at 100 ms each: 2.4 s, more than twice the 1 s whole-request timeout.
    {micros, downloaded} =
      :timer.tc(fn ->
        OS.download(store, "slow.bin", chunk_size: 256 * 1024, prefetch_bytes: 256 * 1024)
        |> Enum.map(fn chunk ->
          Process.sleep(100)
          chunk
        end)
      end)

    assert IO.iodata_to_binary(downloaded) == body
    assert micros > 2_000_000
  end

  describe "lazy listing over 5,000 objects" do
    setup %{prefix: prefix, direct: store} do
      1..5_000
      |> Task.async_stream(&ObjectStoreX.put(store, "many/#{&1}", ""),
        max_concurrency: 32,
        timeout: 60_000
      )
      |> Stream.run()

      {proxied, agent} = via_proxy(prefix, nil)
      {:ok, proxied: proxied, agent: agent}
    end

    @tag timeout: 180_000
    test "Enum.take(stream, 10) makes one list request and stops", %{proxied: store, agent: agent} do
      assert length(OS.list_stream(store, prefix: "many") |> Enum.take(10)) == 10
      assert_native_idle()
      Process.sleep(200)
      assert [list] = CountingProxy.requests(agent)
      assert list =~ "list-type=2"

      assert OS.list_stream(store, prefix: "many") |> Enum.count() == 5_000
      # One request for the first take, then 5 pages of 1,000.
      assert length(CountingProxy.requests(agent)) == 6
    end
  end
end
