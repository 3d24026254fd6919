defmodule CloudStreams.FaultInjectionTest do
  # Network faults over real sockets, for every kind of request the libraries make: a proxy
  # (test/support/counting_proxy.ex) that cuts connections after N bytes, stalls or delays
  # them, a server that accepts and never answers, and private emulators killed and
  # restarted mid-stream (test/support/private_server.ex). Each scenario asserts the error
  # kind, that it arrives within its bound, that the native stats return to zero and, for
  # uploads, that no multipart upload is left on the emulator (moto's ListMultipartUploads,
  # `GET /bucket?uploads`, as S3 documents it). The table printed at the end (scenario, error
  # kind, time to error) is what the issue's closing note quotes.
  use ExUnit.Case, async: false
  @moduletag :dynamodb
  @moduletag :s3

  import CloudStreams.NativeHelpers
  import CloudStreams.TestBed, only: [env!: 1, s3_store: 2]

  alias CloudStreams.{CountingProxy, HTTPResponder, PrivateServer}
  alias Dynamo.Table
  alias Dynamo.Table.Stream, as: TableStream
  alias ObjectStoreX.Error
  alias ObjectStoreX.Stream, as: OS

  @moduletag timeout: 180_000
  @kib 1024
  @mib 1_048_576
  # Slack over a bound for scheduling on a busy 2-core machine; a bound is checked, never a
  # speed.
  @slack 3_000
  @few_retries [retry: [max_retries: 1, retry_timeout: 2_000, init_backoff: 50, max_backoff: 200]]

  defmodule Item do
    use Dynamo.Schema

    item do
      table_name("cloud_streams_fault_items")
      field(:id, :string, partition_key: true)
      field(:body, :string)
    end
  end

  setup_all do
    {:ok, table} = Agent.start(fn -> [] end)

    on_exit(fn ->
      rows = table |> Agent.get(& &1) |> Enum.reverse()
      Agent.stop(table)
      IO.puts("\n\nFault injection: scenario | error kind | time to error (ms)")

      for {scenario, kind, ms} <- rows do
        IO.puts(
          "  #{String.pad_trailing(scenario, 62)} | #{String.pad_trailing(kind, 20)} | #{ms}"
        )
      end
    end)

    {:ok, table: table}
  end

  setup %{table: table} do
    prefix = "faults-#{System.os_time(:millisecond)}-#{System.unique_integer([:positive])}"
    {:ok, direct} = s3_store(prefix, [])
    on_exit(fn -> assert_native_idle(10_000) end)
    {:ok, prefix: prefix, direct: direct, table: table}
  end

  # Runs `fun`, records (scenario, error kind, elapsed) and returns `{result, elapsed_ms}`;
  # an error raised by a stream is returned as `{:raised, error}`.
  # A consumer as GenStage's send (see test/dynamo/producer_test.exs): subscribe, ask, and
  # take events until the producer exits; returns {events, exit reason}.
  # `after_20` runs once 20 events have come.
  defp consume_producer(producer, ask, after_20 \\ fn -> :ok end) do
    monitor = Process.monitor(producer)
    tag = make_ref()
    send(producer, {:"$gen_producer", {self(), tag}, {:subscribe, nil, []}})
    send(producer, {:"$gen_producer", {self(), tag}, {:ask, ask}})
    producer_loop(producer, tag, monitor, after_20, 0)
  end

  defp producer_loop(producer, tag, monitor, after_20, got) do
    receive do
      {:"$gen_consumer", {^producer, ^tag}, events} when is_list(events) ->
        if got < 20 and got + length(events) >= 20, do: after_20.()
        send(producer, {:"$gen_producer", {self(), tag}, {:ask, length(events)}})
        producer_loop(producer, tag, monitor, after_20, got + length(events))

      {:DOWN, ^monitor, :process, _, reason} ->
        {got, reason}
    after
      30_000 -> {got, :still_running}
    end
  end

  # Like timed/3, for a function returning {events, exit reason}: the kind is the reason's.
  defp timed_value(table, scenario, fun) do
    started = System.monotonic_time(:millisecond)
    {_got, reason} = value = fun.()
    elapsed = System.monotonic_time(:millisecond) - started

    kind =
      case reason do
        {:dynamo_error, %{kind: kind}} -> inspect(kind) <> " (exit)"
        other -> inspect(other)
      end

    Agent.update(table, &[{scenario, kind, elapsed} | &1])
    {value, elapsed}
  end

  defp timed(table, scenario, fun) do
    started = System.monotonic_time(:millisecond)

    result =
      try do
        fun.()
      rescue
        error in [Error, Dynamo.Error] -> {:raised, error}
      end

    elapsed = System.monotonic_time(:millisecond) - started
    Agent.update(table, &[{scenario, kind_of(result), elapsed} | &1])
    {result, elapsed}
  end

  defp kind_of({:error, %Error{kind: kind}}), do: inspect(kind)
  defp kind_of({:error, %Dynamo.Error{type: type}}), do: inspect(type)
  defp kind_of({:raised, %Error{kind: kind}}), do: "#{inspect(kind)} (raised)"
  defp kind_of({:raised, %Dynamo.Error{type: type}}), do: "#{inspect(type)} (raised)"
  defp kind_of(_succeeded), do: "none (succeeded)"

  defp via_proxy(prefix, opts) do
    {url, agent} = CountingProxy.start(env!("CLOUD_STREAMS_S3_ENDPOINT"), opts)
    {:ok, store} = s3_store(prefix, [endpoint: url] ++ @few_retries)
    {store, agent}
  end

  defp open_uploads(base_url, bucket, prefix),
    do: CloudStreams.S3Uploads.open(base_url, bucket, prefix)

  defp open_uploads(prefix),
    do: open_uploads(env!("CLOUD_STREAMS_S3_ENDPOINT"), env!("CLOUD_STREAMS_S3_BUCKET"), prefix)

  defp abort_upload({key, id}) do
    url = "#{env!("CLOUD_STREAMS_S3_ENDPOINT")}/#{env!("CLOUD_STREAMS_S3_BUCKET")}/#{key}"
    {:ok, _} = :httpc.request(:delete, {to_charlist("#{url}?uploadId=#{id}"), []}, [], [])
  end

  defp blob(size), do: :crypto.strong_rand_bytes(size)
  defp parts(n), do: Stream.repeatedly(fn -> :binary.copy("p", @mib) end) |> Stream.take(n)

  defp dynamo_config(endpoint, extra \\ []),
    do: [endpoint: endpoint, max_attempts: 1, connect_timeout: 1_000] ++ extra

  describe "single-shot calls" do
    test "S3 get and put against a server that stalls before answering", %{
      prefix: prefix,
      direct: direct,
      table: table
    } do
      :ok = ObjectStoreX.put(direct, "small", "x")
      {store, agent} = via_proxy(prefix, fault: {:stall_after, 0})

      {result, ms} =
        timed(table, "S3 get, server stalls", fn ->
          ObjectStoreX.get(store, "small", timeout: 1_000)
        end)

      assert {:error, %Error{kind: :timeout, retryable: true}} = result
      assert ms < 1_000 + @slack
      assert_native_idle()

      {result, ms} =
        timed(table, "S3 put, server stalls", fn ->
          ObjectStoreX.put(store, "new", blob(64 * @kib), timeout: 1_000)
        end)

      assert {:error, %Error{kind: :timeout}} = result
      assert ms < 1_000 + @slack
      assert_native_idle()

      # The configured default applies when no :timeout is given.
      Application.put_env(:cloud_streams, :call_timeout, 500)

      try do
        {result, ms} =
          timed(table, "S3 head, server stalls (config timeout)", fn ->
            ObjectStoreX.head(store, "small")
          end)

        assert {:error, %Error{kind: :timeout}} = result
        assert ms < 500 + @slack
      after
        Application.delete_env(:cloud_streams, :call_timeout)
      end

      assert_native_idle()
      assert drain_mailbox() == []
      CountingProxy.set_fault(agent, :pass)
      assert {:ok, "x", _} = ObjectStoreX.get(store, "small")
    end

    test "S3 get whose connection is cut before and mid-answer", %{
      prefix: prefix,
      direct: direct,
      table: table
    } do
      :ok = ObjectStoreX.put(direct, "obj", blob(256 * @kib))
      {store, _agent} = via_proxy(prefix, fault: {:cut_after, 0})

      {result, ms} =
        timed(table, "S3 get, connection reset before answer", fn ->
          ObjectStoreX.get(store, "obj")
        end)

      assert {:error, %Error{kind: :network, retryable: true}} = result
      assert ms < 30_000
      assert_native_idle()

      {store, _agent} = via_proxy(prefix, fault: {:cut_after, 1_000})

      {result, ms} =
        timed(table, "S3 get, connection reset mid-body", fn -> ObjectStoreX.get(store, "obj") end)

      assert {:error, %Error{retryable: true}} = result
      assert ms < 30_000
      assert_native_idle()
    end

    test "a slow network is not an error; one slower than the timeout is", %{
      prefix: prefix,
      direct: direct,
      table: table
    } do
      data = blob(256 * @kib)
      :ok = ObjectStoreX.put(direct, "slow", data)
      {store, agent} = via_proxy(prefix, fault: {:delay, 20})

      {result, _ms} =
        timed(table, "Stream.download, every packet delayed 20 ms", fn ->
          # Each chunk's wait is bounded, not the download's: small chunks keep coming.
          OS.download(store, "slow", chunk_size: 16 * @kib, timeout: 5_000) |> Enum.join()
        end)

      assert result == data

      CountingProxy.set_fault(agent, {:delay, 3_000})

      {result, ms} =
        timed(table, "S3 get, every packet delayed 3 s, timeout 1 s", fn ->
          ObjectStoreX.get(store, "slow", timeout: 1_000)
        end)

      assert {:error, %Error{kind: :timeout}} = result
      assert ms < 1_000 + @slack
      assert_native_idle()
    end

    test "DynamoDB get_item and put_item against a server that accepts and never answers", %{
      table: table
    } do
      config = dynamo_config(HTTPResponder.start(:hang))

      {result, ms} =
        timed(table, "Dynamo get_item, server never answers", fn ->
          Table.get_item(Item, [id: "a"], config: config, timeout: 1_000)
        end)

      assert {:error, %Dynamo.Error{type: :timeout, retryable: true}} = result
      assert ms < 1_000 + @slack
      assert_native_idle()

      {result, ms} =
        timed(table, "Dynamo put_item, server never answers", fn ->
          Table.put_item(%Item{id: "a", body: "b"}, config: config, timeout: 1_000)
        end)

      assert {:error, %Dynamo.Error{type: :timeout}} = result
      assert ms < 1_000 + @slack
      assert_native_idle()
      assert drain_mailbox() == []
    end

    test "a caller killed mid-request cancels its native request", %{
      prefix: prefix,
      direct: direct
    } do
      :ok = ObjectStoreX.put(direct, "small", "x")
      {store, _agent} = via_proxy(prefix, fault: {:stall_after, 0})
      config = dynamo_config(HTTPResponder.start(:hang))

      for call <- [
            fn -> ObjectStoreX.get(store, "small", timeout: :infinity) end,
            fn -> Table.get_item(Item, [id: "a"], config: config, timeout: :infinity) end
          ] do
        caller = spawn(call)
        wait_for_stats(&(&1.live_tasks > 0))
        Process.exit(caller, :kill)
        assert_native_idle()
      end
    end
  end

  describe "streams" do
    test "download: a stall mid-body times out; a cut once mid-body is resumed", %{
      prefix: prefix,
      direct: direct,
      table: table
    } do
      data = blob(4 * @mib)
      :ok = ObjectStoreX.put(direct, "big", data)
      {store, agent} = via_proxy(prefix, fault: {:stall_after, 300 * @kib})

      {result, ms} =
        timed(table, "Stream.download, server stalls mid-body", fn ->
          OS.download(store, "big", timeout: 1_000, chunk_size: 64 * @kib) |> Enum.to_list()
        end)

      assert {:raised, %Error{kind: :timeout}} = result
      assert ms < 1_000 + @slack
      assert_native_idle()

      CountingProxy.set_fault(agent, {:once, {:cut_after, 300 * @kib}})

      {result, _ms} =
        timed(table, "Stream.download, one connection reset mid-body", fn ->
          OS.download(store, "big", timeout: 5_000) |> Enum.join()
        end)

      assert result == data
      assert_native_idle()
    end

    test "upload: a cut part aborts; a stall times out and names the upload left behind", %{
      prefix: prefix,
      table: table
    } do
      {store, _agent} = via_proxy(prefix, fail: ~r/^PUT .*partNumber=2&/)

      {result, ms} =
        timed(table, "Stream.upload, part 2 connection reset", fn ->
          OS.upload(parts(20), store, "cut.bin", part_size: 5 * @mib, max_concurrency: 1)
        end)

      assert {:error, %Error{kind: :network}} = result
      assert ms < 30_000
      assert open_uploads(prefix) == []
      assert_native_idle()

      # Parts stall and the abort cannot reach the store (its requests are cut; a stalled
      # DELETE would still reach moto): the upload is left behind, and the error says which.
      {store, agent} = via_proxy(prefix, fail: ~r/^DELETE /)

      stalling =
        parts(20)
        |> Stream.with_index()
        |> Stream.map(fn {part, i} ->
          # Chunk 10 is read once the writes up to 7.5 MiB are acknowledged (half a part may
          # be unacknowledged), so the multipart upload exists by then.
          if i == 10, do: CountingProxy.set_fault(agent, {:stall_after, 0})
          part
        end)

      {result, ms} =
        timed(table, "Stream.upload, store stalls mid-upload", fn ->
          OS.upload(stalling, store, "stall.bin", part_size: 5 * @mib, timeout: 1_000)
        end)

      assert {:error, %Error{kind: :timeout, message: message}} = result
      # The ack wait, then four bounded abort attempts (2 s each) and their pauses.
      assert ms < 1_000 + 4 * 2_000 + 1_500 + @slack
      assert [{key, id}] = open_uploads(prefix)
      assert message =~ "multipart upload #{id} of stall.bin was left behind"
      abort_upload({key, id})
      assert open_uploads(prefix) == []
      assert_native_idle()
      assert drain_mailbox() == []
    end

    test "upload: a failed upload leaves no process-dictionary entry", %{
      prefix: prefix
    } do
      {store, _agent} = via_proxy(prefix, fail: ~r/^PUT .*partNumber=2&/)

      assert {:error, %Error{}} =
               OS.upload(parts(20), store, "pd.bin", part_size: 5 * @mib, max_concurrency: 1)

      assert Process.get_keys() |> Enum.filter(&match?({ObjectStoreX.Stream.Writes, _}, &1)) == []
      assert_native_idle()
    end

    test "list_stream: one reset mid-listing resumes after the last key; a store that stays down fails",
         %{prefix: prefix, direct: direct, table: table} do
      keys = for i <- 1..1_100, do: "k/" <> String.pad_leading(Integer.to_string(i), 5, "0")

      keys
      |> Task.async_stream(&ObjectStoreX.put(direct, &1, "x"), max_concurrency: 8)
      |> Stream.run()

      {store, agent} = via_proxy(prefix, [])

      {result, _ms} =
        timed(table, "list_stream, one connection reset on page 2", fn ->
          OS.list_stream(store, prefix: "k")
          |> Stream.with_index()
          |> Enum.map(fn {meta, i} ->
            # Page 2 is fetched only once page 1 is consumed (prefetch_pages: 0).
            if i == 0, do: CountingProxy.set_fault(agent, {:once, {:cut_after, 2_000}})
            meta.location
          end)
        end)

      assert result == keys
      lists = Enum.filter(CountingProxy.requests(agent), &(&1 =~ "list-type=2"))
      # Page 1, page 2 cut, page 2 again from the last key handed over (start-after).
      assert length(lists) == 3
      assert Enum.at(lists, 2) =~ "start-after=" <> "#{prefix}%2Fk%2F01000"
      assert_native_idle()

      CountingProxy.set_fault(agent, {:cut_after, 0})

      {result, ms} =
        timed(table, "list_stream, store unreachable (every connection reset)", fn ->
          OS.list_stream(store, prefix: "k") |> Enum.to_list()
        end)

      assert {:raised, %Error{kind: :network}} = result
      # Five resumes with doubling pauses from 200 ms, plus the requests.
      assert ms < 6_200 + 10_000
      assert_native_idle()
    end

    test "download_file: a stall times out and the next call resumes; on_progress raising stops it",
         %{prefix: prefix, direct: direct, table: table} do
      data = blob(4 * @mib)
      :ok = ObjectStoreX.put(direct, "file.bin", data)
      dest = Path.join(System.tmp_dir!(), "#{prefix}.bin")
      on_exit(fn -> Enum.each(Path.wildcard(dest <> "*"), &File.rm/1) end)
      {store, agent} = via_proxy(prefix, [])

      stall_after_first = fn done, _total ->
        if done >= @mib, do: CountingProxy.set_fault(agent, {:stall_after, 0})
      end

      {result, ms} =
        timed(table, "download_file, store stalls after one part", fn ->
          OS.download_file(store, "file.bin", dest,
            part_size: @mib,
            max_concurrency: 1,
            timeout: 1_000,
            on_progress: stall_after_first
          )
        end)

      assert {:error, %Error{kind: :timeout}} = result
      assert ms < 1_000 + @slack
      assert_native_idle()
      assert drain_mailbox() == []

      CountingProxy.set_fault(agent, :pass)
      assert :ok = OS.download_file(store, "file.bin", dest, part_size: @mib)
      assert File.read!(dest) == data
      File.rm!(dest)

      assert_raise RuntimeError, "progress failed", fn ->
        OS.download_file(store, "file.bin", dest,
          part_size: 256 * @kib,
          max_concurrency: 1,
          on_progress: fn _, _ -> raise "progress failed" end
        )
      end

      # The native download stopped: no task left, and no progress message comes after.
      assert_native_idle()
      Process.sleep(300)
      assert drain_mailbox() == []
    end

    test "Dynamo scan: a stalled DynamoDB times out the page wait", %{table: table} do
      {proxy, agent} = CountingProxy.start(env!("CLOUD_STREAMS_DYNAMODB_ENDPOINT"))
      config = dynamo_config(proxy)
      _ = Table.delete_table(Item)
      :ok = Table.create_table(Item)
      on_exit(fn -> Table.delete_table(Item) end)
      {:ok, _} = Table.batch_write_item(Item, for(i <- 1..50, do: %Item{id: "i#{i}", body: "x"}))
      CountingProxy.set_fault(agent, {:stall_after, 0})

      {result, ms} =
        timed(table, "Dynamo Stream.scan, DynamoDB stalls", fn ->
          TableStream.scan(Item, page_size: 10, timeout: 1_000, config: config) |> Enum.to_list()
        end)

      assert {:raised, %Dynamo.Error{type: :timeout}} = result
      assert ms < 1_000 + @slack

      {result, ms} =
        timed(table, "Dynamo scan (one page), DynamoDB stalls", fn ->
          Table.scan(Item, limit: 10, timeout: 1_000, config: config)
        end)

      assert {:error, %Dynamo.Error{type: :timeout}} = result
      assert ms < 1_000 + @slack
      assert_native_idle()
    end
  end

  describe "the Producer" do
    test "a stalled DynamoDB, and DynamoDB Local killed mid-scan: the producer exits with the error",
         %{table: table} do
      Process.flag(:trap_exit, true)
      {proxy, agent} = CountingProxy.start(env!("CLOUD_STREAMS_DYNAMODB_ENDPOINT"))
      _ = Table.delete_table(Item)
      :ok = Table.create_table(Item)
      on_exit(fn -> Table.delete_table(Item) end)
      {:ok, _} = Table.batch_write_item(Item, for(i <- 1..50, do: %Item{id: "i#{i}", body: "x"}))
      CountingProxy.set_fault(agent, {:stall_after, 0})

      {{got, reason}, ms} =
        timed_value(table, "Producer, DynamoDB stalls", fn ->
          {:ok, producer} =
            Dynamo.Table.Stream.Producer.start_link(
              schema: Item,
              page_size: 10,
              timeout: 1_000,
              config: dynamo_config(proxy)
            )

          consume_producer(producer, 5)
        end)

      assert got == 0
      assert {:dynamo_error, %Dynamo.Error{kind: :timeout}} = reason
      assert ms < 1_000 + @slack

      dynamo = PrivateServer.start(:dynamodb)
      config = dynamo_config(PrivateServer.url(dynamo), max_attempts: 2)
      :ok = Table.create_table(Item, config: config)
      items = for i <- 1..300, do: %Item{id: "i#{i}", body: "x"}
      {:ok, _} = Table.batch_write_item(Item, items, config: config)

      {:ok, producer} =
        Dynamo.Table.Stream.Producer.start_link(
          schema: Item,
          page_size: 10,
          timeout: 10_000,
          config: config
        )

      # The emulator is killed once the first 20 events are out.
      {{got, reason}, ms} =
        timed_value(table, "Producer, DynamoDB Local killed mid-scan", fn ->
          consume_producer(producer, 5, fn -> PrivateServer.kill(dynamo) end)
        end)

      assert got < 300
      assert {:dynamo_error, %Dynamo.Error{retryable: true}} = reason
      assert ms < 30_000
      assert_native_idle()
    end
  end

  describe "emulators killed mid-stream" do
    test "moto killed mid-download, then restarted", %{table: table} do
      moto = PrivateServer.start(:moto)

      {:ok, store} =
        ObjectStoreX.new(
          :s3,
          [
            bucket: PrivateServer.bucket(),
            endpoint: PrivateServer.url(moto),
            region: "us-east-1",
            access_key_id: "cloudstreamstest",
            secret_access_key: "cloudstreamstest",
            allow_http: true
          ] ++ @few_retries
        )

      :ok = ObjectStoreX.put(store, "big", blob(8 * @mib))

      {result, ms} =
        timed(table, "Stream.download, moto killed mid-stream", fn ->
          OS.download(store, "big",
            chunk_size: 256 * @kib,
            prefetch_bytes: 256 * @kib,
            timeout: 5_000
          )
          |> Stream.with_index()
          |> Enum.each(fn {_, i} -> if i == 1, do: PrivateServer.kill(moto) end)
        end)

      assert {:raised, %Error{retryable: true}} = result
      assert ms < 30_000
      assert_native_idle()

      {result, ms} = timed(table, "S3 get, moto down", fn -> ObjectStoreX.get(store, "big") end)
      assert {:error, %Error{kind: :network}} = result
      assert ms < 30_000

      # Uploads to a store that dies: the error comes, nothing is left running.
      moto = PrivateServer.restart(moto)

      killing =
        parts(30)
        |> Stream.with_index()
        |> Stream.map(fn {part, i} ->
          if i == 12, do: PrivateServer.kill(moto)
          part
        end)

      {result, ms} =
        timed(table, "Stream.upload, moto killed mid-upload", fn ->
          OS.upload(killing, store, "up.bin", part_size: 5 * @mib)
        end)

      assert {:error, %Error{retryable: true}} = result
      assert ms < 30_000 + 10_000
      assert_native_idle()

      moto = PrivateServer.restart(moto)
      assert {:error, %Error{kind: :not_found}} = ObjectStoreX.get(store, "big")
      assert open_uploads(PrivateServer.url(moto), PrivateServer.bucket(), "") == []
    end

    test "DynamoDB Local killed mid-scan, then restarted", %{table: table} do
      dynamo = PrivateServer.start(:dynamodb)
      config = dynamo_config(PrivateServer.url(dynamo), max_attempts: 2)
      :ok = Table.create_table(Item, config: config)

      {:ok, _} =
        Table.batch_write_item(Item, for(i <- 1..300, do: %Item{id: "i#{i}", body: "x"}),
          config: config
        )

      {result, ms} =
        timed(table, "Dynamo Stream.scan, DynamoDB Local killed mid-scan", fn ->
          TableStream.scan(Item, page_size: 10, timeout: 10_000, config: config)
          |> Stream.with_index()
          |> Enum.each(fn {_, i} -> if i == 25, do: PrivateServer.kill(dynamo) end)
        end)

      assert {:raised, %Dynamo.Error{retryable: true}} = result
      assert ms < 30_000
      assert_native_idle()

      {result, ms} =
        timed(table, "Dynamo get_item, DynamoDB Local down", fn ->
          Table.get_item(Item, [id: "i1"], config: config)
        end)

      assert {:error, %Dynamo.Error{retryable: true}} = result
      assert ms < 30_000

      dynamo = PrivateServer.restart(dynamo)
      config = dynamo_config(PrivateServer.url(dynamo), max_attempts: 2)

      assert {:error, %Dynamo.Error{type: :resource_not_found}} =
               Table.get_item(Item, [id: "i1"], config: config)

      assert_native_idle()
    end
  end

  describe "local special files" do
    @describetag :tmp_dir
    test "a FIFO in a :local root is refused, not waited on forever", %{
      tmp_dir: dir,
      table: table
    } do
      {_, 0} = System.cmd("mkfifo", [Path.join(dir, "pipe")])
      {:ok, store} = ObjectStoreX.new(:local, root: dir)

      {result, ms} =
        timed(table, "local get of a FIFO", fn -> ObjectStoreX.get(store, "pipe") end)

      assert {:error, %Error{kind: :invalid_argument}} = result
      assert ms < @slack

      {result, _ms} =
        timed(table, "local Stream.download of a FIFO", fn ->
          OS.download(store, "pipe") |> Enum.to_list()
        end)

      assert {:raised, %Error{kind: :invalid_argument}} = result

      # Every other read of the file is refused as well.
      assert {:error, %Error{kind: :invalid_argument}} =
               ObjectStoreX.get_ranges(store, "pipe", [{0, 1}])

      assert {:error, %Error{kind: :invalid_argument}} = ObjectStoreX.copy(store, "pipe", "copy")

      assert {:error, %Error{kind: :invalid_argument}} =
               OS.download_file(store, "pipe", Path.join(dir, "out"))

      assert_native_idle()
    end
  end
end
