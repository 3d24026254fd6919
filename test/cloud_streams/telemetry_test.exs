defmodule CloudStreams.TelemetryTest do
  # The :telemetry events of every request and stream (lib/cloud_streams/telemetry.ex), as a
  # handler sees them. Handlers attach through `:telemetry`, which in this test suite is the
  # STAND-IN of test/support/telemetry_stand_in.ex (the hex package cannot be installed
  # here); the library calls only the real package's public API. Events are emitted in the
  # process that runs the request or consumes the stream, so most are in this mailbox by the
  # time the call returns.
  use ExUnit.Case, async: false
  # Most events come from requests to the emulators.
  @moduletag :dynamodb
  @moduletag :s3

  import CloudStreams.NativeHelpers

  alias CloudStreams.{HTTPResponder, TestBed}
  alias Dynamo.Table
  alias Dynamo.Table.Stream, as: TableStream
  alias ObjectStoreX.Error
  alias ObjectStoreX.Stream, as: OStream

  @mib 1024 * 1024

  @events (for name <- [
                 [:object_store, :request],
                 [:object_store, :download],
                 [:object_store, :download_file],
                 [:object_store, :list_stream],
                 [:object_store, :upload],
                 [:object_store, :copy_many],
                 [:dynamo, :request],
                 [:dynamo, :scan],
                 [:dynamo, :parallel_scan],
                 [:dynamo, :query],
                 [:dynamo, :execute_statement],
                 [:dynamo, :producer],
                 [:dynamo, :scan_to_process],
                 [:dynamo, :distributed_scan],
                 [:dynamo, :export],
                 [:dynamo, :import],
                 [:dynamo, :read_export]
               ],
               suffix <- [:start, :stop, :exception] do
             [:cloud_streams | name] ++ [suffix]
           end) ++
            [
              [:cloud_streams, :cluster, :retry],
              [:cloud_streams, :object_store, :upload, :part],
              [:cloud_streams, :object_store, :upload, :abort],
              [:cloud_streams, :dynamo, :page],
              [:cloud_streams, :dynamo, :throttle],
              [:cloud_streams, :dynamo, :capacity_pause],
              [:cloud_streams, :dynamo, :scan_to_process, :pause]
            ]

  defmodule User do
    use Dynamo.Schema

    item do
      table_name("cloud_streams_telemetry_test_users")
      field(:id, :string, partition_key: true)
      field(:n, :integer)
    end
  end

  defmodule Missing do
    use Dynamo.Schema

    item do
      table_name("cloud_streams_telemetry_test_missing")
      field(:id, :string, partition_key: true)
    end
  end

  @users 30

  def forward(event, measurements, metadata, pid),
    do: send(pid, {:telemetry, event, measurements, metadata})

  setup do
    id = {__MODULE__, make_ref()}
    :ok = :telemetry.attach_many(id, @events, &__MODULE__.forward/4, self())
    on_exit(fn -> :telemetry.detach(id) end)
    {:ok, store} = ObjectStoreX.new(:memory)
    %{store: store}
  end

  # Every event received so far (they are sent by the emitting process before it goes on).
  defp drain(acc \\ []) do
    receive do
      {:telemetry, event, measurements, metadata} ->
        drain([{event, measurements, metadata} | acc])
    after
      0 -> Enum.reverse(acc)
    end
  end

  defp names(events), do: Enum.map(events, &elem(&1, 0))

  # A start/stop pair of one span: same context, the start's measurements, the stop's duration.
  defp assert_span([{start, start_m, start_meta}, {stop, stop_m, stop_meta}], prefix) do
    assert start == prefix ++ [:start]
    assert stop in [prefix ++ [:stop], prefix ++ [:exception]]
    assert %{system_time: system, monotonic_time: mono} = start_m
    assert is_integer(system) and is_integer(mono)
    assert %{duration: duration, monotonic_time: stop_mono} = stop_m
    assert duration >= 0 and stop_mono >= mono
    assert is_reference(start_meta.telemetry_span_context)
    assert stop_meta.telemetry_span_context == start_meta.telemetry_span_context
    {start_m, start_meta, stop_m, stop_meta}
  end

  test "events/0 lists every event of the guide's table" do
    assert Enum.sort(CloudStreams.Telemetry.events()) == Enum.sort(@events)
  end

  describe "ObjectStoreX requests" do
    test "each call is one span with its operation, backend, path and what it measures",
         %{store: store} do
      request = [:cloud_streams, :object_store, :request]
      base = %{backend: :memory, bucket: nil}

      :ok = ObjectStoreX.put(store, "a.txt", "hello")
      {_, start_meta, stop_m, stop_meta} = assert_span(drain(), request)

      assert Map.delete(start_meta, :telemetry_span_context) ==
               Map.merge(base, %{operation: :put, path: "a.txt"})

      assert Map.drop(stop_m, [:duration, :monotonic_time]) == %{bytes: 5}
      assert stop_meta == Map.put(start_meta, :status, :ok)

      for {call, operation, path, measured} <- [
            {fn -> ObjectStoreX.get(store, "a.txt") end, :get, "a.txt", %{bytes: 5}},
            {fn -> ObjectStoreX.head(store, "a.txt") end, :head, "a.txt", %{}},
            {fn -> ObjectStoreX.get_ranges(store, "a.txt", [{0, 1}, {3, 4}]) end, :get_ranges,
             "a.txt", %{bytes: 4}},
            {fn -> ObjectStoreX.copy(store, "a.txt", "b.txt") end, :copy, "a.txt", %{}},
            {fn -> ObjectStoreX.rename(store, "b.txt", "c.txt") end, :rename, "b.txt", %{}},
            {fn -> ObjectStoreX.list(store) end, :list, nil, %{items: 2}},
            {fn -> ObjectStoreX.list_with_delimiter(store, prefix: nil) end, :list_with_delimiter,
             nil, %{items: 2}},
            {fn -> ObjectStoreX.delete(store, "c.txt") end, :delete, "c.txt", %{}},
            {fn -> ObjectStoreX.delete_many(store, ["a.txt", "zz"]) end, :delete_many, nil,
             %{items: 2}}
          ] do
        assert {:ok, _} = wrap(call.())
        {_, start_meta, stop_m, stop_meta} = assert_span(drain(), request)
        assert start_meta.operation == operation
        assert start_meta.path == path
        assert start_meta.backend == :memory
        assert Map.drop(stop_m, [:duration, :monotonic_time]) == measured
        assert stop_meta.status == :ok
      end
    end

    test "a failed call stops with status :error and the error", %{store: store} do
      assert {:error, %Error{kind: :not_found}} = ObjectStoreX.get(store, "missing")

      {_, _, stop_m, stop_meta} = assert_span(drain(), [:cloud_streams, :object_store, :request])

      assert %{status: :error, error_kind: :not_found, error: %Error{kind: :not_found}} =
               stop_meta

      refute Map.has_key?(stop_m, :bytes)
    end

    test "a request retried after 503s is one span, ending as the last attempt did" do
      # object_store retries inside one call and exposes no callback: the span covers every
      # attempt (the scripted server sees three requests) and no retry count is reported.
      {url, script} = HTTPResponder.start_script([{503, "busy"}, {503, "busy"}, {200, "hello"}])

      retry = [max_retries: 3, init_backoff: 10, max_backoff: 20, retry_timeout: 10_000]
      {:ok, store} = ObjectStoreX.new(:http, url: url, allow_http: true, retry: retry)

      assert {:ok, "hello", _meta} = ObjectStoreX.get(store, "f")
      assert HTTPResponder.requests(script) == 3

      assert [{_, _, %{operation: :get, backend: :http}}, {_, %{bytes: 5}, %{status: :ok}}] =
               drain()
    end
  end

  defp wrap(:ok), do: {:ok, :ok}
  defp wrap({:ok, _, _} = ok), do: {:ok, ok}
  defp wrap(other), do: other

  describe "object store streams" do
    setup %{store: store} do
      :ok = ObjectStoreX.put(store, "big.bin", :binary.copy("x", 3 * @mib + 10))
      drain()
      :ok
    end

    test "a download reports chunks, bytes and ending :done", %{store: store} do
      assert store |> OStream.download("big.bin", chunk_size: @mib) |> Enum.count() == 4
      prefix = [:cloud_streams, :object_store, :download]
      {_, start_meta, stop_m, stop_meta} = assert_span(drain(), prefix)
      assert %{operation: :download, backend: :memory, path: "big.bin"} = start_meta
      assert %{chunks: 4, bytes: bytes} = stop_m
      assert bytes == 3 * @mib + 10
      assert stop_meta.ending == :done
    end

    test "a download halted by its consumer ends :halted", %{store: store} do
      assert [_] = store |> OStream.download("big.bin", chunk_size: @mib) |> Enum.take(1)

      {_, _, stop_m, stop_meta} = assert_span(drain(), [:cloud_streams, :object_store, :download])

      assert stop_meta.ending == :halted
      assert stop_m.chunks == 1
      assert_native_idle()
    end

    test "a failed download emits :exception with the error, and still raises it",
         %{store: store} do
      assert_raise Error, fn -> store |> OStream.download("missing") |> Enum.to_list() end
      events = drain()
      assert [[_, _, :download, :start], [_, _, :download, :exception]] = names(events)
      {_, _, _, meta} = assert_span(events, [:cloud_streams, :object_store, :download])
      assert %{kind: :error, reason: %Error{kind: :not_found}, ending: :error} = meta
      assert is_list(meta.stacktrace)
    end

    test "a handler that raises is detached and the download goes on", %{store: store} do
      id = {__MODULE__, :raising}

      :ok =
        :telemetry.attach(
          id,
          [:cloud_streams, :object_store, :download, :start],
          fn _, _, _, _ -> raise "handler bug" end,
          nil
        )

      on_exit(fn -> :telemetry.detach(id) end)

      ExUnit.CaptureLog.capture_log(fn ->
        assert store |> OStream.download("big.bin") |> Enum.map(&byte_size/1) |> Enum.sum() ==
                 3 * @mib + 10
      end)

      # Detached by :telemetry: a second detach finds nothing.
      assert :telemetry.detach(id) == {:error, :not_found}
      assert [:start, :stop] = drain() |> names() |> Enum.map(&List.last/1)
    end

    test "a listing reports pages and items", %{store: store} do
      for i <- 1..5, do: :ok = ObjectStoreX.put(store, "l/#{i}", "x")
      drain()
      assert store |> OStream.list_stream(prefix: "l", page_size: 2) |> Enum.count() == 5

      {_, start_meta, stop_m, stop_meta} =
        assert_span(drain(), [:cloud_streams, :object_store, :list_stream])

      assert %{operation: :list_stream, path: "l"} = start_meta
      assert %{pages: pages, items: 5} = stop_m
      assert pages >= 3
      assert stop_meta.ending == :done
    end

    test "download_file reports bytes", %{store: store} do
      target = Path.join(System.tmp_dir!(), "telemetry-#{System.unique_integer([:positive])}")
      on_exit(fn -> File.rm(target) end)
      assert :ok = OStream.download_file(store, "big.bin", target, part_size: @mib)

      events = Enum.reject(drain(), fn {[_, _, name | _], _, _} -> name == :request end)

      {_, _, stop_m, stop_meta} =
        assert_span(events, [:cloud_streams, :object_store, :download_file])

      assert %{bytes: bytes, resumed_bytes: 0} = stop_m
      assert bytes == 3 * @mib + 10
      assert stop_meta.ending == :done
    end

    test "download_file whose on_progress raises ends with :exception", %{store: store} do
      target = Path.join(System.tmp_dir!(), "telemetry-#{System.unique_integer([:positive])}")
      on_exit(fn -> File.rm(target <> ".partial") && File.rm(target <> ".partial.state") end)
      raising = fn _done, _total -> raise "progress broke" end

      assert_raise RuntimeError, fn ->
        OStream.download_file(store, "big.bin", target, part_size: @mib, on_progress: raising)
      end

      events = Enum.filter(drain(), &match?({[_, _, :download_file, _], _, _}, &1))
      assert [[_, _, _, :start], [_, _, _, :exception]] = names(events)
      assert %{kind: :error, reason: %RuntimeError{}} = elem(List.last(events), 2)
    end

    test "an upload reports bytes and parts", %{store: store} do
      data = :binary.copy("y", 11 * @mib)
      assert :ok = [data] |> OStream.upload(store, "up.bin", part_size: 5 * @mib)

      {parts, span} = Enum.split_with(drain(), &match?({[_, _, :upload, :part], _, _}, &1))

      {_, start_meta, stop_m, stop_meta} =
        assert_span(span, [:cloud_streams, :object_store, :upload])

      assert for({_, %{completed: n}, _} <- parts, do: n) == [1, 2, 3]
      assert Enum.all?(parts, fn {_, _, meta} -> meta == start_meta end)

      assert %{operation: :upload, path: "up.bin"} = start_meta
      assert %{bytes: bytes, parts: 3} = stop_m
      assert bytes == 11 * @mib
      assert stop_meta.ending == :done
    end

    test "an upload whose input raises emits its abort, then :exception", %{store: store} do
      input =
        Stream.concat(
          [:binary.copy("z", 6 * @mib)],
          Stream.map([1], fn _ -> raise ArgumentError, "input broke" end)
        )

      assert_raise ArgumentError, fn -> OStream.upload(input, store, "ab.bin") end

      assert [
               {[:cloud_streams, :object_store, :upload, :start], _, start_meta},
               {[:cloud_streams, :object_store, :upload, :abort], %{duration: d}, abort_meta},
               {[:cloud_streams, :object_store, :upload, :exception], _, exception_meta}
             ] = drain()

      assert d >= 0
      assert abort_meta.status == :ok
      assert abort_meta.telemetry_span_context == start_meta.telemetry_span_context
      assert %{kind: :error, reason: %ArgumentError{}, ending: :error} = exception_meta
    end

    test "an upload sink: a span while collecting, :done or :halted", %{store: store} do
      sink = OStream.upload_sink(store, "sink.bin")
      assert ["a", "b"] |> Enum.into(sink)

      assert [
               {[_, _, :upload, :start], _, %{path: "sink.bin"}},
               {[_, _, :upload, :part], %{completed: 1}, _},
               {[_, _, :upload, :stop], %{bytes: 2, parts: 1}, %{ending: :done}}
             ] = drain()

      # Enum.into halts the collectable when the input raises.
      input =
        Stream.map([1, 2], fn
          1 -> "c"
          2 -> raise "input broke"
        end)

      assert_raise RuntimeError, fn -> Enum.into(input, sink) end
      assert [_start, {_, _, abort_meta}, {[_, _, :upload, :stop], _, stop_meta}] = drain()
      assert abort_meta.status == :ok
      assert stop_meta.ending == :halted
    end

    test "without :telemetry loaded nothing is emitted and streams work", %{store: store} do
      key = {CloudStreams.Telemetry, :loaded?}
      :persistent_term.put(key, false)
      on_exit(fn -> :persistent_term.erase(key) end)

      assert ObjectStoreX.get!(store, "big.bin") |> byte_size() == 3 * @mib + 10
      assert store |> OStream.download("big.bin") |> Enum.count() > 0
      assert :ok = ["x"] |> OStream.upload(store, "off.bin")
      assert drain() == []
    end

    test "an abort that fails is reported with its error: the parts are left behind" do
      # A proxy in front of moto cuts every AbortMultipartUpload (DELETE ...?uploadId=...).
      endpoint = TestBed.env!("CLOUD_STREAMS_S3_ENDPOINT")
      {proxy, agent} = CloudStreams.CountingProxy.start(endpoint, ~r/^DELETE .*uploadId=/)
      {:ok, store} = TestBed.s3_store("telemetry-abort", endpoint: proxy, retry: [max_retries: 0])

      input =
        Stream.concat(
          [:binary.copy("z", 6 * @mib)],
          Stream.map([1], fn _ -> raise ArgumentError, "input broke" end)
        )

      assert_raise ArgumentError, fn ->
        OStream.upload(input, store, "left.bin", part_size: 5 * @mib)
      end

      assert [{_, %{duration: _}, meta}] =
               Enum.filter(drain(), &match?({[_, _, :upload, :abort], _, _}, &1))

      assert %{status: :error, error: %Error{}, path: "left.bin"} = meta
      aborts = agent |> CloudStreams.CountingProxy.requests() |> Enum.filter(&(&1 =~ "uploadId"))
      assert length(Enum.filter(aborts, &String.starts_with?(&1, "DELETE"))) == 4
    end

    test "copy_many reports copied, bytes and failures, and no store option" do
      dir = Path.join(System.tmp_dir!(), "telemetry-copy-#{System.unique_integer([:positive])}")
      on_exit(fn -> File.rm_rf(dir) end)
      from = {:local, root: Path.join(dir, "a"), create_root: true}
      to = {:local, root: Path.join(dir, "b"), create_root: true}
      source = ObjectStoreX.new!(:local, elem(from, 1))
      for i <- 1..3, do: ObjectStoreX.put!(source, "f#{i}", "data #{i}")
      drain()

      assert {:error, %{copied: 3}} =
               ObjectStoreX.Transfer.copy_many(from, to, ["f1", "f2", "f3", "nope"])

      events = Enum.filter(drain(), fn {[_, _, name | _], _, _} -> name == :copy_many end)

      {_, start_meta, stop_m, stop_meta} =
        assert_span(events, [:cloud_streams, :object_store, :copy_many])

      assert Map.delete(start_meta, :telemetry_span_context) == %{
               operation: :copy_many,
               from_backend: :local,
               to_backend: :local,
               nodes: 1,
               paths: 4
             }

      assert %{copied: 3, bytes: 18, failed: 1} = stop_m
      assert stop_meta.ending == :done
    end
  end

  describe "CloudStreams.stats/0" do
    test "counts an upload's actor while the upload is open", %{store: store} do
      assert_native_idle()
      {writes, collect} = Collectable.into(OStream.upload_sink(store, "counted.bin"))
      writes = collect.(writes, {:cont, "data"})
      assert %{live_tasks: 1} = CloudStreams.stats()
      collect.(writes, :halt)
      assert_native_idle()
    end
  end

  describe "the cluster dispatcher (copy_many, distributed scans)" do
    test "each retry of a crashed worker's item: attempt, backoff, error kind" do
      {:ok, flaky} = Agent.start_link(fn -> 0 end)

      state =
        CloudStreams.Cluster.Dispatcher.start(CloudStreams.Cluster.TestWorker, %{refuse_on: []},
          items: [a: {:flaky, flaky, 2}],
          nodes: [node()],
          max_attempts: 3,
          name: "test worker"
        )

      assert {:completed, :a, 3, state} = CloudStreams.Cluster.Dispatcher.next(state)
      assert {:done, _} = CloudStreams.Cluster.Dispatcher.next(state)

      assert [
               {[:cloud_streams, :cluster, :retry], %{attempt: 1, backoff: 100}, meta},
               {[:cloud_streams, :cluster, :retry], %{attempt: 2, backoff: 200}, meta}
             ] = drain()

      assert meta == %{worker: "test worker", error_kind: :worker_crashed}
    end
  end

  describe "no secret in any metadata" do
    test "S3 calls and streams with keys and a session token" do
      secret = "telemetrySecretKey1234567890"
      token = "telemetrySessionToken1234567890"

      {:ok, store} =
        TestBed.s3_store("telemetry-secrets", secret_access_key: secret, session_token: token)

      # moto accepts any credentials; the calls may fail, the events are what matter.
      _ = ObjectStoreX.put(store, "s.txt", "data")
      _ = ObjectStoreX.get(store, "s.txt")
      {:ok, url} = ObjectStoreX.signed_url(store, "s.txt")
      _ = ["data"] |> OStream.upload(store, "u.txt")
      _ = store |> OStream.download("s.txt") |> Enum.to_list()
      _ = store |> OStream.list_stream() |> Enum.to_list()

      events = drain()
      assert length(events) >= 12
      [signature] = Regex.run(~r/X-Amz-Signature=([0-9a-f]+)/, url, capture: :all_but_first)
      seen = inspect(events, limit: :infinity, printable_limit: :infinity)

      for forbidden <- [
            secret,
            token,
            signature,
            "X-Amz-Signature",
            TestBed.env!("AWS_ACCESS_KEY_ID")
          ] do
        refute seen =~ forbidden
      end
    end
  end

  describe "DynamoDB" do
    setup do
      _ = Table.delete_table(User)
      :ok = Table.create_table(User)

      {:ok, @users} =
        Table.batch_write_item(User, for(i <- 1..@users, do: %User{id: "u#{i}", n: i}))

      on_exit(fn -> Table.delete_table(User) end)
      drain()
      :ok
    end

    test "each call is one span with its operation, table and items" do
      request = [:cloud_streams, :dynamo, :request]
      table = "cloud_streams_telemetry_test_users"

      for {call, operation, measured} <- [
            {fn -> Table.put_item(%User{id: "x", n: 1}) end, :put_item, %{}},
            {fn -> Table.get_item(User, id: "x") end, :get_item, %{items: 1}},
            {fn -> Table.get_item(User, id: "none") end, :get_item, %{items: 0}},
            {fn -> Table.update_item(User, [id: "x"], set: %{n: 2}) end, :update_item, %{}},
            {fn -> Table.batch_get_item(User, [[id: "u1"], [id: "u2"]]) end, :batch_get_item,
             %{items: 2}},
            {fn -> Table.batch_write_item(User, [%User{id: "y", n: 3}]) end, :batch_write_item,
             %{items: 1}},
            {fn -> Table.delete_item(User, id: "x") end, :delete_item, %{}},
            {fn ->
               Table.query(User,
                 key_condition_expression: "id = :id",
                 expression_attribute_values: %{":id" => "u3"}
               )
             end, :query, %{items: 1}},
            {fn -> Table.transact_write_items([{:put, %User{id: "t", n: 4}}]) end,
             :transact_write_items, %{}},
            {fn -> Table.transact_get_items([{User, [id: "u1"]}, {User, [id: "none"]}]) end,
             :transact_get_items, %{items: 1}},
            {fn ->
               Table.execute_statement(User, ~s(SELECT * FROM "#{table}" WHERE id = 'u2'))
             end, :execute_statement, %{items: 1}},
            {fn ->
               Table.batch_execute_statement([
                 {User, ~s(SELECT * FROM "#{table}" WHERE id = ?), ["u4"]},
                 {User, ~s(SELECT * FROM "#{table}" WHERE id = ?), ["none"]}
               ])
             end, :batch_execute_statement, %{items: 1}}
          ] do
        assert {:ok, _} = wrap(call.())
        {_, start_meta, stop_m, stop_meta} = assert_span(drain(), request)

        assert Map.delete(start_meta, :telemetry_span_context) == %{
                 operation: operation,
                 table: table
               }

        assert Map.drop(stop_m, [:duration, :monotonic_time, :consumed_capacity]) ==
                 Map.merge(measured, %{retries: 0, throttles: 0})

        assert stop_meta.status == :ok
      end

      assert {:ok, %{items: items}} = Table.scan(User, limit: 5)
      {_, _, stop_m, _} = assert_span(drain(), request)
      assert stop_m.items == length(items)
      assert is_float(stop_m.consumed_capacity)
    end

    test "retries and throttles inside the SDK are counted in a page request" do
      {url, script} =
        HTTPResponder.start_script([{500, "{}"}, throttled(), {200, one_item_page()}])

      config = [endpoint: url, max_attempts: 5, initial_backoff: 1, max_backoff: 5]

      assert {:ok, %{items: [%User{id: "u1", n: 1}]}} = Table.scan(User, config: config)
      assert HTTPResponder.requests(script) == 3
      {_, _, stop_m, stop_meta} = assert_span(drain(), [:cloud_streams, :dynamo, :request])
      assert %{items: 1, retries: 2, throttles: 1} = stop_m
      assert stop_meta.status == :ok
    end

    test "every call counts the SDK's retries: a get_item answered after a 500" do
      item = ~s({"Item":{"id":{"S":"u1"},"n":{"N":"1"}}})
      {url, script} = HTTPResponder.start_script([{500, "{}"}, {200, item}])
      config = [endpoint: url, max_attempts: 3, initial_backoff: 1, max_backoff: 5]

      assert {:ok, %User{id: "u1", n: 1}} = Table.get_item(User, [id: "u1"], config: config)
      assert HTTPResponder.requests(script) == 2
      {_, _, stop_m, _} = assert_span(drain(), [:cloud_streams, :dynamo, :request])
      assert %{items: 1, retries: 1, throttles: 0} = stop_m
    end

    test "a throttled scan: the page reports its retry and throttle, and a throttle event" do
      {url, _script} = HTTPResponder.start_script([throttled(), {200, one_item_page()}])
      config = [endpoint: url, max_attempts: 5, initial_backoff: 1, max_backoff: 5]

      assert [%User{id: "u1"}] = User |> TableStream.scan(config: config) |> Enum.to_list()
      events = drain()

      assert [{_, page, meta}] =
               Enum.filter(events, &(elem(&1, 0) == [:cloud_streams, :dynamo, :page]))

      assert %{items: 1, retries: 1, throttles: 1, capacity_wait: 0} = page
      assert %{operation: :scan, segment: 0, table: "cloud_streams_telemetry_test_users"} = meta

      assert [{_, %{throttles: 1, retries: 1}, ^meta}] =
               Enum.filter(events, &(elem(&1, 0) == [:cloud_streams, :dynamo, :throttle]))
    end

    test "max_read_capacity: a capacity_pause event for each page it held back" do
      # 30 small items by 10: each page consumes 0.5 read units (eventually consistent), so
      # at 5 units per second each page after the first waits about 100 ms.
      assert User |> TableStream.scan(page_size: 10, max_read_capacity: 5) |> Enum.count() ==
               @users

      events = drain()
      pages = for {[:cloud_streams, :dynamo, :page], m, _} <- events, do: m
      pauses = for {[:cloud_streams, :dynamo, :capacity_pause], m, _} <- events, do: m
      assert Enum.all?(pages, &is_float(&1.consumed_capacity))
      assert length(pauses) >= 2
      assert Enum.all?(pauses, &(&1.duration > 0))
      # The later pages wait for the units consumed before them (the first, for a timer tick).
      long = System.convert_time_unit(50, :millisecond, :native)
      assert Enum.count(pages, &(&1.capacity_wait > long)) >= 2
    end

    test "a failed call stops with status :error and the Dynamo.Error" do
      assert {:error, _} = Table.get_item(Missing, id: "x")
      {_, _, _, meta} = assert_span(drain(), [:cloud_streams, :dynamo, :request])

      assert %{status: :error, error_kind: :not_found, error: %Dynamo.Error{}} = meta
    end

    test "a scan: a page event per page, totals at the stop" do
      assert User |> TableStream.scan(page_size: 7) |> Enum.count() == @users
      events = drain()

      {pages, span} =
        Enum.split_with(events, fn {name, _, _} -> name == [:cloud_streams, :dynamo, :page] end)

      {_, start_meta, stop_m, stop_meta} = assert_span(span, [:cloud_streams, :dynamo, :scan])

      assert %{operation: :scan, table: "cloud_streams_telemetry_test_users", segments: 1} =
               start_meta

      # 30 items by 7: four full pages, one of 2, and maybe an empty last one.
      assert stop_m.items == @users
      assert stop_m.pages == length(pages)
      assert length(pages) in 5..6
      assert Enum.sum(for {_, %{items: n}, _} <- pages, do: n) == @users

      assert Enum.all?(pages, fn {_, _, meta} -> meta.segment == 0 and meta.operation == :scan end)

      assert stop_meta.ending == :done
    end

    test "a PartiQL statement stream: a page event per page, totals at the stop" do
      table = "cloud_streams_telemetry_test_users"

      assert User
             |> TableStream.execute_statement(~s(SELECT * FROM "#{table}"), page_size: 7)
             |> Enum.count() == @users

      {pages, span} =
        Enum.split_with(drain(), fn {name, _, _} -> name == [:cloud_streams, :dynamo, :page] end)

      {_, start_meta, stop_m, stop_meta} =
        assert_span(span, [:cloud_streams, :dynamo, :execute_statement])

      assert %{operation: :execute_statement, table: ^table} = start_meta
      assert stop_m.items == @users
      assert stop_m.pages == length(pages)
      assert Enum.sum(for {_, %{items: n}, _} <- pages, do: n) == @users

      assert Enum.all?(pages, fn {_, m, meta} ->
               meta.operation == :execute_statement and m.retries == 0 and m.throttles == 0
             end)

      assert stop_meta.ending == :done
    end

    test "a parallel scan, a query and a halted scan" do
      assert User |> TableStream.parallel_scan(segments: 3) |> Enum.count() == @users
      span = Enum.reject(drain(), &(elem(&1, 0) == [:cloud_streams, :dynamo, :page]))
      {_, meta, stop_m, _} = assert_span(span, [:cloud_streams, :dynamo, :parallel_scan])
      assert meta.segments == 3
      assert stop_m.items == @users

      assert [_] =
               User
               |> TableStream.query(
                 key_condition_expression: "id = :id",
                 expression_attribute_values: %{":id" => "u4"}
               )
               |> Enum.to_list()

      span = Enum.reject(drain(), &(elem(&1, 0) == [:cloud_streams, :dynamo, :page]))
      {_, _, stop_m, stop_meta} = assert_span(span, [:cloud_streams, :dynamo, :query])
      assert {stop_m.items, stop_meta.ending} == {1, :done}

      assert [_, _] = User |> TableStream.scan(page_size: 5) |> Enum.take(2)
      span = Enum.reject(drain(), &(elem(&1, 0) == [:cloud_streams, :dynamo, :page]))
      {_, _, _, stop_meta} = assert_span(span, [:cloud_streams, :dynamo, :scan])
      assert stop_meta.ending == :halted
      assert_native_idle()
    end

    test "a failed scan emits :exception with the Dynamo.Error" do
      assert_raise Dynamo.Error, fn -> Missing |> TableStream.scan() |> Enum.to_list() end

      assert [
               {[:cloud_streams, :dynamo, :scan, :start], _, _},
               {[:cloud_streams, :dynamo, :scan, :exception], _, meta}
             ] = drain()

      assert %{kind: :error, reason: %Dynamo.Error{type: :resource_not_found}, ending: :error} =
               meta
    end

    test "scan_to_process: its span, and a pause event when the receiver's mailbox is full" do
      {:ok, _scanner} = TableStream.scan_to_process(User, self(), max_mailbox: 5)
      # Not reading for a while fills the mailbox past max_mailbox: the scanner pauses.
      Process.sleep(300)
      {events, items} = Enum.split_with(receive_items([]), &match?({:telemetry, _, _, _}, &1))
      assert length(items) == @users

      stop = [:cloud_streams, :dynamo, :scan_to_process, :stop]
      # The stop may come just before or just after :scan_complete.
      Process.sleep(100)
      events = for({:telemetry, name, m, meta} <- events, do: {name, m, meta}) ++ drain()
      assert [{_, %{duration: _}, meta}] = Enum.filter(events, &(elem(&1, 0) == stop))
      assert meta.ending == :done
      assert meta.table == "cloud_streams_telemetry_test_users"
      assert meta.max_mailbox == 5

      assert Enum.any?(events, fn {name, m, _} ->
               name == [:cloud_streams, :dynamo, :scan_to_process, :pause] and m.duration > 0
             end)
    end

    test "the Producer: a span from start to its end, with pages and items" do
      {:ok, producer} =
        TableStream.Producer.start_link(schema: User, engine: :builtin, page_size: 10)

      ref = Process.monitor(producer)
      tag = make_ref()
      send(producer, {:"$gen_producer", {self(), tag}, {:subscribe, nil, []}})
      send(producer, {:"$gen_producer", {self(), tag}, {:ask, 1_000}})
      assert length(receive_events(producer, tag, [])) == @users
      assert_receive {:DOWN, ^ref, :process, _, :normal}, 5_000

      span =
        drain()
        |> Enum.filter(fn {[_, _, name | _], _, _} -> name == :producer end)

      {_, meta, stop_m, stop_meta} = assert_span(span, [:cloud_streams, :dynamo, :producer])
      assert meta.table == "cloud_streams_telemetry_test_users"
      assert stop_m.items == @users
      assert stop_meta.ending == :done
    end

    test "a distributed scan on this node" do
      assert User |> TableStream.parallel_scan(segments: 2, nodes: [node()]) |> Enum.count() ==
               @users

      span = Enum.filter(drain(), fn {[_, _, name | _], _, _} -> name == :distributed_scan end)

      {_, meta, stop_m, stop_meta} =
        assert_span(span, [:cloud_streams, :dynamo, :distributed_scan])

      assert %{segments: 2, nodes: 1} = meta
      assert %{items: @users, segments: 2} = stop_m
      assert stop_meta.ending == :done
    end
  end

  # The scan's messages, and the telemetry events in between (left unread, they would fill
  # the mailbox and hold the scanner paused).
  # Answers shaped as DynamoDB's (aws-sdk-dynamodb's JSON protocol: HTTP 400 with the error
  # code in the body's "__type", as the DynamoDB API reference's "Error handling" shows it).
  defp throttled do
    {400,
     ~s({"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",) <>
       ~s("message":"The level of configured provisioned throughput for the table was exceeded."})}
  end

  defp one_item_page,
    do: ~s({"Items":[{"id":{"S":"u1"},"n":{"N":"1"}}],"Count":1,"ScannedCount":1})

  defp receive_items(acc) do
    receive do
      {:scan_item, item} -> receive_items([item | acc])
      {:telemetry, _, _, _} = event -> receive_items([event | acc])
      :scan_complete -> Enum.reverse(acc)
    after
      5_000 -> flunk("the scan did not complete")
    end
  end

  defp receive_events(_producer, _tag, acc) when length(acc) >= @users, do: acc

  defp receive_events(producer, tag, acc) do
    receive do
      {:"$gen_consumer", {^producer, ^tag}, events} when is_list(events) ->
        receive_events(producer, tag, acc ++ events)
    after
      5_000 -> flunk("the producer did not finish")
    end
  end
end
