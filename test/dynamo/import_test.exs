defmodule Dynamo.ImportTest do
  # Dynamo.Table.Stream.import/4 and read_export/3 against DynamoDB Local, the local disk and
  # moto. The exports are written by the test (CloudStreams.ImportFixtures) in DynamoDB's
  # documented export layout: the AWS developer guide, "DynamoDB table export output format".
  use ExUnit.Case, async: false
  @moduletag :dynamodb

  import CloudStreams.NativeHelpers
  alias CloudStreams.{ImportFixtures, Native}
  alias Dynamo.{Codec, Schema, Table}
  alias Dynamo.Table.Stream

  defmodule Everything do
    use Dynamo.Schema

    item do
      table_name("cloud_streams_import_test")
      field(:id, :string, partition_key: true)
      field(:big, :integer)
      field(:bin, :binary)
      field(:yes, :boolean)
      field(:ss, :string_set)
      field(:list, :list)
      field(:map, :map)
      field(:text, :string)
    end
  end

  defmodule Second do
    use Dynamo.Schema

    item do
      table_name("cloud_streams_import_test_second")
      field(:id, :string, partition_key: true)
      field(:n, :integer)
    end
  end

  @id "1764583200000-0a1b2c3d"

  setup do
    for schema <- [Everything, Second] do
      _ = Table.delete_table(schema)
      :ok = Table.create_table(schema)
    end

    root =
      Path.join(
        System.tmp_dir!(),
        "cloud_streams_import_test_#{System.unique_integer([:positive])}"
      )

    File.mkdir_p!(root)

    on_exit(fn ->
      File.rm_rf!(root)
      Table.delete_table(Everything)
      Table.delete_table(Second)
    end)

    {:ok, store: ObjectStoreX.new!(:local, root: root), root: root}
  end

  defp items do
    [ImportFixtures.every_type_item("all-types"), ImportFixtures.every_type_item("all-types-2")] ++
      Enum.map(1..60, &ImportFixtures.simple_item/1)
  end

  # The items DynamoDB holds, as the codec's tagged values straight from the NIF: numbers keep
  # their digits, which Dynamo.Codec.decode/1 would turn into floats.
  defp raw_items(table) do
    read = %{
      table: table,
      index_name: nil,
      key_condition_expression: nil,
      filter_expression: nil,
      projection_expression: nil,
      names: %{},
      values: %{},
      consistent_read: true,
      limit: nil,
      exclusive_start_key: nil,
      segment: nil,
      select_count: false,
      forward: true
    }

    config = Dynamo.Config.native([])
    raw_pages(config, read, [])
  end

  defp raw_pages(config, read, acc) do
    {:ok, {page, _counts}} =
      CloudStreams.Call.await(&Native.dynamo_read_page(config, :scan, read, &1), 30_000)

    acc = acc ++ page.items

    case page.last_evaluated_key do
      nil -> acc
      key -> raw_pages(config, %{read | exclusive_start_key: key}, acc)
    end
  end

  defp by_id(items), do: Map.new(items, &{&1["id"], ImportFixtures.normalize(&1)})

  defp assert_table_holds(table, expected) do
    assert by_id(raw_items(table)) == by_id(expected)
  end

  defp record(store, table) do
    {:ok, json, _meta} =
      ObjectStoreX.get(store, "backups/AWSDynamoDB/#{@id}/_import/#{table}.json")

    json
  end

  defp two_file_export(store, items, format \\ "DYNAMODB_JSON") do
    {first, second} = Enum.split(items, 20)
    {second_a, second_b} = Enum.split(second, 15)
    # The second file is two gzip members, as concatenated gzip files are.
    two_members =
      ImportFixtures.data_file(second_a, format) <> ImportFixtures.data_file(second_b, format)

    ext = if format == "NDJSON", do: "ndjson.gz", else: "json.gz"

    files = [
      {"first.#{ext}", ImportFixtures.data_file(first, format), length(first)},
      {"second.#{ext}", two_members, length(second)}
    ]

    ImportFixtures.write_export(store, "backups", @id, files, format: format)
    files
  end

  test "a DynamoDB JSON export of every attribute type is imported item by item", %{store: store} do
    files = two_file_export(store, items())
    bytes = files |> Enum.map(&byte_size(elem(&1, 1))) |> Enum.sum()

    assert {:ok, %{items: 62, files: 2, bytes: ^bytes}} =
             Stream.import(store, "backups", Everything)

    assert_table_holds("cloud_streams_import_test", items())

    # Read back the way an application reads it, too.
    expected = Schema.from_item(Everything, ImportFixtures.every_type_item("all-types"))
    assert {:ok, ^expected} = Table.get_item(Everything, id: "all-types")
    assert expected.big == 12_345_678_901_234_567_890_123_456_789_012_345_678
    assert expected.__extra__["empty"] == ""

    # The progress record names every file as done.
    record = record(store, "cloud_streams_import_test")

    for {name, _, count} <- files do
      assert record =~ ~r/"backups\/AWSDynamoDB\/#{@id}\/data\/#{name}":\{[^}]*"done":true/
      assert record =~ ~r/data\/#{name}":\{[^}]*"items":#{count},/
    end

    assert_native_idle()
  end

  test "read_export streams the same items as plain maps and as structs", %{store: store} do
    two_file_export(store, items())

    plain = Stream.read_export(store, "backups") |> Enum.to_list()
    decode = fn item -> Map.new(item, fn {k, v} -> {k, Codec.decode(v)} end) end

    assert Enum.sort_by(plain, & &1["id"]) ==
             items() |> Enum.map(decode) |> Enum.sort_by(& &1["id"])

    structs = Stream.read_export(store, "backups", schema: Everything) |> Enum.to_list()

    assert Enum.sort_by(structs, & &1.id) ==
             items() |> Enum.map(&Schema.from_item(Everything, &1)) |> Enum.sort_by(& &1.id)

    # Lazy: taking a few items reads no further, and stops the native reader.
    assert [_, _] = Stream.read_export(store, "backups", prefetch_pages: 0) |> Enum.take(2)
    assert_native_idle()
  end

  @tag :s3
  test "an NDJSON export on S3 is imported into a table named by a string, keys without the prefix" do
    store =
      CloudStreams.TestBed.s3_store("import-#{System.unique_integer([:positive])}") |> elem(1)

    {first, second} = Enum.split(items(), 30)

    ImportFixtures.write_export(
      store,
      "backups",
      @id,
      [
        {"a.ndjson.gz", ImportFixtures.data_file(first, "NDJSON"), 30},
        {"b.ndjson.gz", ImportFixtures.data_file(second, "NDJSON"), 32}
      ],
      format: "NDJSON",
      keys_with_prefix: false
    )

    assert {:ok, %{items: 62, files: 2}} =
             Stream.import(store, "backups", "cloud_streams_import_test_second")

    assert_table_holds("cloud_streams_import_test_second", items())

    assert Stream.read_export(store, "backups") |> Enum.count() == 62

    # A store rooted at the prefix reads the same export (the manifests' keys are ignored up
    # to AWSDynamoDB/<id>/).
    {:ok, rooted} = CloudStreams.TestBed.s3_store(Path.join(store.prefix, "backups"))

    assert Stream.read_export(rooted, "") |> Enum.count() == 62
  end

  test "the newest complete export is read; export_id: picks one; an incomplete one is refused",
       %{store: store} do
    old = [ImportFixtures.simple_item(1)]
    new = [ImportFixtures.simple_item(2)]

    ImportFixtures.write_export(store, "backups", "1764583100000-00000000", [
      {"a.json.gz", ImportFixtures.data_file(old), 1}
    ])

    ImportFixtures.write_export(store, "backups", @id, [
      {"a.json.gz", ImportFixtures.data_file(new), 1}
    ])

    # Newer, still in progress (no summary): never chosen by default.
    ImportFixtures.write_export(
      store,
      "backups",
      "1764583300000-ffffffff",
      [{"a.json.gz", ImportFixtures.data_file(new), 1}],
      complete: false
    )

    assert [%{"id" => "item-2"}] = Stream.read_export(store, "backups") |> Enum.to_list()

    assert [%{"id" => "item-1"}] =
             Stream.read_export(store, "backups", export_id: "1764583100000-00000000")
             |> Enum.to_list()

    assert {:error, %ObjectStoreX.Error{kind: :precondition_failed, message: message}} =
             Stream.import(store, "backups", Second, export_id: "1764583300000-ffffffff")

    assert message =~ "1764583300000-ffffffff is incomplete"

    assert {:error, %ObjectStoreX.Error{kind: :not_found}} =
             Stream.import(store, "elsewhere", Second)

    assert {:error, %ObjectStoreX.Error{kind: :not_found}} =
             Stream.import(store, "backups", Second, export_id: "1764583400000-00000000")

    assert_raise ObjectStoreX.Error, ~r/incomplete/, fn ->
      Stream.read_export(store, "backups", export_id: "1764583300000-ffffffff") |> Enum.to_list()
    end

    # Only the newest complete one is written when importing without export_id:.
    assert {:ok, %{items: 1}} = Stream.import(store, "backups", Second)
    assert [%{"id" => {:s, "item-2"}}] = raw_items("cloud_streams_import_test_second")
  end

  describe "a corrupt export is an error naming the file" do
    setup %{store: store} do
      good = ImportFixtures.data_file(Enum.map(1..30, &ImportFixtures.simple_item/1))
      {:ok, good: good, store: store}
    end

    test "a checksum that differs from the manifest's", %{store: store, good: good} do
      ImportFixtures.write_export(store, "backups", @id, [{"a.json.gz", good, 30}],
        md5: fn _, _ -> ImportFixtures.md5("something else") end
      )

      assert {:error, %ObjectStoreX.Error{kind: :invalid_argument} = error} =
               Stream.import(store, "backups", Second)

      assert error.path == "backups/AWSDynamoDB/#{@id}/data/a.json.gz"
      assert error.message =~ "differs from the manifest's md5Checksum"

      assert_raise ObjectStoreX.Error, ~r/a\.json\.gz: MD5/, fn ->
        Stream.read_export(store, "backups") |> Enum.to_list()
      end
    end

    test "bytes that are not gzip", %{store: store} do
      ImportFixtures.write_export(store, "backups", @id, [
        {"a.json.gz", "plain text, not gzip", 1}
      ])

      assert {:error, %ObjectStoreX.Error{kind: :invalid_argument, message: message}} =
               Stream.import(store, "backups", Second)

      assert message =~ "data/a.json.gz: not valid gzip"
    end

    test "a malformed line, named by its number", %{store: store, good: good} do
      bad =
        :zlib.gzip(
          ImportFixtures.dynamodb_json_line(ImportFixtures.simple_item(1)) <>
            ~s({"Item":{"id":{"S":"x"},"n":{"N":"not a number"}}}\n)
        )

      ImportFixtures.write_export(store, "backups", @id, [
        {"a.json.gz", good, 30},
        {"b.json.gz", bad, 2}
      ])

      assert {:error, %ObjectStoreX.Error{kind: :invalid_argument} = error} =
               Stream.import(store, "backups", Second)

      assert error.message =~ "data/b.json.gz line 2: attribute \"n\""
      assert error.path =~ "data/b.json.gz"
      assert_native_idle()
    end
  end

  test "a killed import resumes to exactly one copy of every item", %{store: store} do
    files =
      for f <- 1..6 do
        items = Enum.map((f * 1000)..(f * 1000 + 249), &ImportFixtures.simple_item/1)
        {"part-#{f}.json.gz", ImportFixtures.data_file(items), 250}
      end

    ImportFixtures.write_export(store, "backups", @id, files)
    test = self()

    importer =
      spawn(fn ->
        Stream.import(store, "backups", Second,
          max_concurrency: 1,
          on_progress: fn totals ->
            send(test, {:progress, totals})
            # Held here until killed: the native import goes on meanwhile, as a crashed
            # caller's would until its handle is collected.
            Process.sleep(:infinity)
          end
        )
      end)

    assert_receive {:progress, %{files: done, total_items: 1500, total_files: 6}}, 30_000
    assert done < 6
    Process.exit(importer, :kill)

    # The native job stopped with its caller: the record no longer changes.
    assert_native_idle(10_000)
    stopped = record(store, "cloud_streams_import_test_second")
    Process.sleep(1_500)
    assert record(store, "cloud_streams_import_test_second") == stopped
    refute Enum.all?(1..6, &(stopped =~ ~r/part-#{&1}.json.gz":\{[^}]*"done":true/))

    assert {:ok, %{items: 1500, files: 6}} =
             Stream.import(store, "backups", Second, resume: true, max_concurrency: 4)

    ids = Stream.read_export(store, "backups") |> Enum.map(& &1["id"])
    table_ids = Dynamo.Table.Stream.scan(Second) |> Enum.map(& &1.id)
    assert length(table_ids) == 1500
    assert Enum.sort(table_ids) == Enum.sort(ids)

    final = record(store, "cloud_streams_import_test_second")
    for f <- 1..6, do: assert(final =~ ~r/part-#{f}.json.gz":\{[^}]*"done":true/)
  end

  @tag timeout: 120_000
  test "an import on a killed node resumes elsewhere to exactly one copy of every item",
       %{store: store, root: root} do
    files =
      for f <- 1..8 do
        items = Enum.map((f * 1000)..(f * 1000 + 249), &ImportFixtures.simple_item/1)
        {"part-#{f}.json.gz", ImportFixtures.data_file(items), 250}
      end

    ImportFixtures.write_export(store, "backups", @id, files)

    {_peer, node} =
      CloudStreams.Cluster.start_peer!(System.fetch_env!("CLOUD_STREAMS_DYNAMODB_ENDPOINT"))

    _importer =
      :erpc.call(node, CloudStreams.ImportPeer, :start, [
        root,
        "backups",
        "cloud_streams_import_test_second",
        self()
      ])

    assert_receive {:peer_progress, %{files: done}}, 30_000
    assert done < 8
    :ok = CloudStreams.Cluster.kill_peer!(node)

    stopped = record(store, "cloud_streams_import_test_second")
    refute Enum.all?(1..8, &(stopped =~ ~r/part-#{&1}.json.gz":\{[^}]*"done":true/))

    assert {:ok, %{items: 2000, files: 8}} =
             Stream.import(store, "backups", "cloud_streams_import_test_second", resume: true)

    table_ids = Dynamo.Table.Stream.scan(Second) |> Enum.map(& &1.id)
    assert length(table_ids) == 2000
    assert MapSet.new(table_ids) == MapSet.new(Stream.read_export(store, "backups"), & &1["id"])
  end

  test "resume: true with every file done writes nothing again", %{store: store} do
    two_file_export(store, Enum.map(1..40, &ImportFixtures.simple_item/1))
    assert {:ok, %{items: 40, files: 2}} = Stream.import(store, "backups", Second)
    # A table emptied after the import shows that a resume of a finished import skips it all.
    :ok = Table.delete_table(Second)
    :ok = Table.create_table(Second)
    assert {:ok, %{items: 40, files: 2}} = Stream.import(store, "backups", Second, resume: true)
    assert raw_items("cloud_streams_import_test_second") == []
  end

  test "max_write_capacity paces the writes by the capacity DynamoDB reports", %{store: store} do
    two_file_export(store, Enum.map(1..60, &ImportFixtures.simple_item/1))
    started = System.monotonic_time(:millisecond)

    assert {:ok, %{items: 60}} =
             Stream.import(store, "backups", Second, max_write_capacity: 20, max_concurrency: 4)

    # 60 small items consume 60 write units in 3 requests (20, 25 and 15 items), all three
    # ready at once: at 20 units per second, whichever goes last waits for the units of the
    # other two, at least 35 of them: 1.75 s. Only a lower bound: never a speed goal.
    assert System.monotonic_time(:millisecond) - started >= 1_700
  end

  test "items DynamoDB leaves unprocessed are retried", %{store: store} do
    ImportFixtures.write_export(store, "backups", @id, [
      {"a.json.gz", ImportFixtures.data_file([ImportFixtures.simple_item(1)]), 1}
    ])

    # What DynamoDB answers when it could not write some items of a BatchWriteItem
    # (UnprocessedItems, keyed by table, in the request's own shape: the API reference's
    # BatchWriteItem response), then a full success.
    unprocessed =
      ~s({"UnprocessedItems":{"cloud_streams_import_test_second":[{"PutRequest":{"Item":) <>
        ImportFixtures.dynamodb_json(ImportFixtures.simple_item(1)) <> "}}]}}"

    {endpoint, script} =
      CloudStreams.HTTPResponder.start_script([
        {200, unprocessed},
        {200, unprocessed},
        {200, ~s({"UnprocessedItems":{}})}
      ])

    assert {:ok, %{items: 1}} =
             Stream.import(store, "backups", Second, config: [endpoint: endpoint, max_attempts: 1])

    assert CloudStreams.HTTPResponder.requests(script) == 3
  end

  test "an item the table refuses is a Dynamo.Error naming the file and lines", %{store: store} do
    # DynamoDB refuses an empty string as a key value (a ValidationException).
    refused = %{"id" => {:s, ""}}
    items = Enum.map(1..30, &ImportFixtures.simple_item/1) |> List.insert_at(27, refused)

    ImportFixtures.write_export(store, "backups", @id, [
      {"a.json.gz", ImportFixtures.data_file(items), 31}
    ])

    assert {:error, %Dynamo.Error{kind: :invalid_argument, code: "ValidationException"} = error} =
             Stream.import(store, "backups", Second, max_concurrency: 1)

    assert error.message =~
             "writing the items of lines 26-31 of backups/AWSDynamoDB/#{@id}/data/a.json.gz"

    # The request before it (lines 1-25) was written.
    assert length(raw_items("cloud_streams_import_test_second")) == 25
  end

  test "an import that makes no progress for timeout: ms stops with a timeout error",
       %{store: store} do
    two_file_export(store, Enum.map(1..40, &ImportFixtures.simple_item/1))
    # A DynamoDB endpoint that takes requests and never answers.
    endpoint = CloudStreams.HTTPResponder.start(:hang)

    assert {:error, %Dynamo.Error{kind: :timeout, message: message}} =
             Stream.import(store, "backups", Second, config: [endpoint: endpoint], timeout: 500)

    assert message =~ "no progress within 500 ms"
    assert_native_idle()
    assert drain_mailbox() == []
  end

  test "a missing table is a Dynamo.Error naming the file and lines", %{store: store} do
    two_file_export(store, Enum.map(1..40, &ImportFixtures.simple_item/1))

    assert {:error, %Dynamo.Error{} = error} =
             Stream.import(store, "backups", "cloud_streams_import_test_missing")

    assert error.message =~
             ~r/lines 1-20 of backups\/AWSDynamoDB\/#{@id}\/data\/(first|second)\.json\.gz to cloud_streams_import_test_missing/

    assert_native_idle()
  end

  test "async_import is a task: awaited, or shut down with its native job", %{store: store} do
    two_file_export(store, Enum.map(1..40, &ImportFixtures.simple_item/1))
    task = Stream.async_import(store, "backups", Second)
    assert {:ok, %{items: 40, files: 2}} = Task.await(task, 30_000)

    # One request at a time, the second held back 20 s by the capacity the first consumed.
    slow =
      Stream.async_import(store, "backups", Second, max_write_capacity: 1, max_concurrency: 1)

    Process.sleep(300)
    assert Task.shutdown(slow, :brutal_kill) == nil
    assert_native_idle(10_000)
  end

  def forward(event, measurements, metadata, pid),
    do: send(pid, {:telemetry, event, measurements, metadata})

  test "an import and a read_export are telemetry spans", %{store: store} do
    two_file_export(store, Enum.map(1..40, &ImportFixtures.simple_item/1))
    id = {__MODULE__, make_ref()}

    events =
      for name <- [:import, :read_export],
          suffix <- [:start, :stop, :exception],
          do: [:cloud_streams, :dynamo, name, suffix]

    :ok = :telemetry.attach_many(id, events, &__MODULE__.forward/4, self())
    on_exit(fn -> :telemetry.detach(id) end)

    assert {:ok, %{items: 40, files: 2, bytes: bytes}} = Stream.import(store, "backups", Second)

    assert_received {:telemetry, [_, _, :import, :start], _,
                     %{table: "cloud_streams_import_test_second"}}

    assert_received {:telemetry, [_, _, :import, :stop], %{items: 40, files: 2, bytes: ^bytes},
                     %{ending: :done}}

    assert {:error, _} = Stream.import(store, "nowhere", Second)

    assert_received {:telemetry, [_, _, :import, :stop], _,
                     %{ending: :error, error: %ObjectStoreX.Error{kind: :not_found}}}

    assert Enum.count(Stream.read_export(store, "backups")) == 40

    assert_received {:telemetry, [_, _, :read_export, :stop], %{items: 40, pages: 2},
                     %{ending: :done}}
  end

  test "bad arguments raise ArgumentError naming the function and the option", %{store: store} do
    for {opts, option} <- [
          {[max_concurrency: 0], ":max_concurrency"},
          {[max_write_capacity: 0], ":max_write_capacity"},
          {[resume: :yes], ":resume"},
          {[export_id: 12], ":export_id"},
          {[on_progress: fn -> :ok end], ":on_progress"},
          {[timeout: -1], ":timeout"},
          {[segments: 4], "segments"}
        ] do
      error = assert_raise ArgumentError, fn -> Stream.import(store, "backups", Second, opts) end
      assert error.message =~ "Dynamo.Table.Stream.import/4"
      assert error.message =~ option
    end

    assert_raise ArgumentError, ~r/max_concurrency of Dynamo.Table.Stream.async_import\/4/, fn ->
      Stream.async_import(store, "backups", Second, max_concurrency: 0)
    end

    assert_raise ArgumentError, ~r/import\/4 expects a store/, fn ->
      Stream.import(:nope, "backups", Second)
    end

    assert_raise ArgumentError, ~r/import\/4 expects the prefix/, fn ->
      Stream.import(store, nil, Second)
    end

    assert_raise ArgumentError,
                 ~r/import\/4 expects a Dynamo.Schema module or a table name/,
                 fn ->
                   Stream.import(store, "backups", String)
                 end

    assert_raise ArgumentError, ~r/:prefetch_pages of Dynamo.Table.Stream.read_export\/3/, fn ->
      Stream.read_export(store, "backups", prefetch_pages: -1)
    end

    assert_raise ArgumentError,
                 ~r/option :schema of Dynamo.Table.Stream.read_export\/3: expected nil or a Dynamo.Schema module/,
                 fn ->
                   Stream.read_export(store, "backups", schema: String)
                 end
  end

  # A line has an upper bound (4 MiB; DynamoDB items are at most 400 KB): a corrupt file
  # without newlines is refused once its partial line passes it, not held in memory whole.
  test "a line longer than 4 MiB is an error naming the file and the line", %{store: store} do
    first = ImportFixtures.dynamodb_json_line(ImportFixtures.simple_item(1))
    endless = :zlib.gzip(first <> String.duplicate("x", 4 * 1024 * 1024 + 1))
    ImportFixtures.write_export(store, "backups", @id, [{"a.json.gz", endless, 2}])

    assert {:error, %ObjectStoreX.Error{kind: :invalid_argument} = error} =
             Stream.import(store, "backups", Second)

    assert error.path == "backups/AWSDynamoDB/#{@id}/data/a.json.gz"
    assert error.message =~ "data/a.json.gz line 2: longer than 4194304 bytes"
  end

  # DynamoDB's export ids have 14 digits (e.g. 01234567890123-a1b2c3d4); folders that are no
  # export id are not exports, even with a summary inside.
  test "DynamoDB's 14-digit ids are read; other folders are ignored", %{store: store} do
    ImportFixtures.write_export(store, "backups", "01234567890123-a1b2c3d4", [
      {"a.json.gz", ImportFixtures.data_file([ImportFixtures.simple_item(1)]), 1}
    ])

    ImportFixtures.write_export(store, "backups", "99999999999999-zzzzzzzz", [
      {"a.json.gz", ImportFixtures.data_file([ImportFixtures.simple_item(2)]), 1}
    ])

    assert [%{"id" => "item-1"}] = Stream.read_export(store, "backups") |> Enum.to_list()
  end

  test "progress_record: false imports from a store it never writes to", %{store: store} do
    files =
      for f <- 1..2 do
        items = Enum.map((f * 1000)..(f * 1000 + 99), &ImportFixtures.simple_item/1)
        {"part-#{f}.json.gz", ImportFixtures.data_file(items), 100}
      end

    ImportFixtures.write_export(store, "backups", @id, files)

    before =
      store |> ObjectStoreX.Stream.list_stream(prefix: "backups") |> Enum.map(& &1.location)

    test = self()

    assert {:ok, %{items: 200, files: 2}} =
             Stream.import(store, "backups", Second,
               progress_record: false,
               on_progress: &send(test, {:progress, &1})
             )

    assert_received {:progress, %{files: 2, total_items: 200}}

    after_import =
      store |> ObjectStoreX.Stream.list_stream(prefix: "backups") |> Enum.map(& &1.location)

    assert Enum.sort(after_import) == Enum.sort(before)

    assert_raise ArgumentError, ~r/resume: true needs the progress record/, fn ->
      Stream.import(store, "backups", Second, resume: true, progress_record: false)
    end
  end
end
