defmodule Dynamo.Table.Stream.ExportTest do
  # Table export (issue 16) against DynamoDB Local, the local disk and moto
  # (native/cloud_streams_core/src/export/, native/cloud_streams_nif/src/dynamo/export.rs,
  # lib/dynamo/table/stream/export.ex).
  #
  # The files are read back independently: `:zlib.gunzip/1` and the test's own JSON decoder
  # (test/support/export_json.ex), and checked against DynamoDB's documented export output
  # (developer guide, "DynamoDB table export output format": `_started`, data files of
  # `{"Item":{...}}` lines in DynamoDB JSON, `manifest-files.json` lines with `itemCount`,
  # `md5Checksum` (base64 MD5 of the file), `etag` and `dataFileS3Key`, and
  # `manifest-summary.json` with `version: "2020-06-30"`, `itemCount`, `outputFormat`,
  # `manifestFilesS3Key`, `exportType`).
  use ExUnit.Case, async: false
  @moduletag :dynamodb

  alias CloudStreams.{Cluster, CountingProxy, S3Uploads, TestBed, TestJSON}
  alias Dynamo.Table
  alias Dynamo.Table.Stream, as: TableStream

  @count 240

  defmodule Thing do
    use Dynamo.Schema

    item do
      table_name("cloud_streams_export_test_things")

      field(:id, :string, partition_key: true)
      field(:s, :string)
      field(:n, :integer)
      field(:b, :binary)
      field(:flag, :boolean)
      field(:tags, :string_set)
      field(:nums, :number_set)
      field(:blobs, :binary_set)
      field(:doc, :map)
      field(:list, :list)
      field(:nothing, :any)
    end
  end

  defmodule Missing do
    use Dynamo.Schema

    item do
      table_name("cloud_streams_export_test_missing")
      field(:id, :string, partition_key: true)
    end
  end

  # The exotic values, set with DynamoDB JSON so they are stored exactly as written.
  @special %{
    ":dec" => %{"N" => "-1234567890.1234567890123456789012345678"},
    ":big" => %{"N" => "12345678901234567890123456789012345678"},
    ":tagmap" => %{"M" => %{"$ss" => %{"S" => "not a set"}}},
    ":bin" => %{"B" => Base.encode64(<<0, 255, ?", ?\\, 10>>)},
    ":empty" => %{"S" => ""},
    ":ns" => %{"NS" => ["1", "99999999999999999999", "-0.5"]},
    ":null" => %{"NULL" => true}
  }

  def thing(i) do
    %Thing{
      id: "t#{String.pad_leading(Integer.to_string(i), 4, "0")}",
      s: if(rem(i, 7) == 0, do: "", else: "tëxt \"#{i}\"\n\t\\ ☃ \u0001"),
      n: if(rem(i, 5) == 0, do: Integer.pow(2, 70) + i, else: i - 100),
      b: <<i::32, 0, 255>>,
      flag: rem(i, 2) == 0,
      tags: MapSet.new(["a#{i}", "b"]),
      nums: MapSet.new([i, i + 1]),
      blobs: MapSet.new([<<i>>, <<0, i>>]),
      doc: %{"nested" => %{"deep" => [i, "x", %{"k" => nil}]}, "empty" => %{}},
      list: [i, "two", [true, false], %{}],
      nothing: nil
    }
  end

  # What each item must look like in DynamoDB JSON, built by hand from the seed (sets
  # sorted: their order is not part of DynamoDB's contract).
  def expected(i) do
    t = thing(i)

    %{
      "id" => %{"S" => t.id},
      "s" => %{"S" => t.s},
      "n" => %{"N" => Integer.to_string(t.n)},
      "b" => %{"B" => Base.encode64(t.b)},
      "flag" => %{"BOOL" => t.flag},
      "tags" => %{"SS" => Enum.sort(t.tags)},
      "nums" => %{"NS" => t.nums |> Enum.map(&Integer.to_string/1) |> Enum.sort()},
      "blobs" => %{"BS" => t.blobs |> Enum.map(&Base.encode64/1) |> Enum.sort()},
      "doc" => %{
        "M" => %{
          "nested" => %{
            "M" => %{
              "deep" => %{
                "L" => [
                  %{"N" => Integer.to_string(i)},
                  %{"S" => "x"},
                  %{"M" => %{"k" => %{"NULL" => true}}}
                ]
              }
            }
          },
          "empty" => %{"M" => %{}}
        }
      },
      "list" => %{
        "L" => [
          %{"N" => Integer.to_string(i)},
          %{"S" => "two"},
          %{"L" => [%{"BOOL" => true}, %{"BOOL" => false}]},
          %{"M" => %{}}
        ]
      }
      # `nothing` is nil: a schema does not write nil fields (NULL is in `doc` and `t0001`).
    }
  end

  setup_all do
    _ = Table.delete_table(Thing)
    :ok = Table.create_table(Thing)
    {:ok, @count} = Table.batch_write_item(Thing, Enum.map(1..@count, &thing/1))

    {:ok, _} =
      Table.update_item(Thing, %{id: "t0001"},
        update_expression:
          "SET #dec = :dec, #big = :big, #tagmap = :tagmap, #bin = :bin, #empty = :empty, " <>
            "#ns = :ns, #null = :null",
        expression_attribute_names: %{
          "#dec" => "dec",
          "#big" => "big",
          "#tagmap" => "tagmap",
          "#bin" => "bin",
          "#empty" => "empty",
          "#ns" => "ns",
          "#null" => "null"
        },
        expression_attribute_values: @special
      )

    on_exit(fn -> Table.delete_table(Thing) end)
    :ok
  end

  setup do
    root = Path.join(System.tmp_dir!(), "cs_export_#{System.unique_integer([:positive])}")
    File.mkdir_p!(root)
    on_exit(fn -> File.rm_rf!(root) end)
    {:ok, store} = ObjectStoreX.new(:local, root: root)
    %{root: root, store: store}
  end

  # Sets in sorted order, so items compare by value.
  def normalize(%{} = value) when map_size(value) == 1 do
    case Map.to_list(value) do
      [{tag, list}] when tag in ["SS", "NS", "BS"] -> %{tag => Enum.sort(list)}
      [{"M", map}] -> %{"M" => Map.new(map, fn {k, v} -> {k, normalize(v)} end)}
      [{"L", list}] -> %{"L" => Enum.map(list, &normalize/1)}
      _ -> value
    end
  end

  def normalize_item(item), do: Map.new(item, fn {k, v} -> {k, normalize(v)} end)

  def read!(store, path) do
    {:ok, data, _meta} = ObjectStoreX.get(store, path)
    data
  end

  def list_paths(store, prefix) do
    {:ok, metas} = ObjectStoreX.list(store, prefix: prefix)
    metas |> Enum.map(& &1.location) |> Enum.sort()
  end

  # The items of every data file the manifest lists, each line parsed; checks each file's
  # manifest line against the file itself.
  def manifest_items(store, dir) do
    store
    |> read!("#{dir}/manifest-files.json")
    |> TestJSON.decode_lines!(raw_numbers: true)
    |> Enum.flat_map(fn line ->
      %{"itemCount" => {:number, count}, "md5Checksum" => md5, "dataFileS3Key" => key} = line
      assert Map.has_key?(line, "etag")
      data = read!(store, key)
      assert md5 == :crypto.hash(:md5, data) |> Base.encode64()
      assert line["byteCount"] == {:number, Integer.to_string(byte_size(data))}
      lines = data |> :zlib.gunzip() |> TestJSON.decode_lines!(raw_numbers: true)
      assert length(lines) == String.to_integer(count)
      lines
    end)
  end

  def export_dir(store, prefix) do
    [dir] = list_dirs(store, "#{prefix}/AWSDynamoDB")
    dir
  end

  def list_dirs(store, prefix) do
    {:ok, %{common_prefixes: dirs}} = ObjectStoreX.list_with_delimiter(store, prefix: prefix)
    Enum.sort(dirs)
  end

  # The ids of `items`, which must all be distinct.
  def ids(items) do
    ids = Enum.map(items, fn %{"Item" => %{"id" => %{"S" => id}}} -> id end)
    assert length(ids) == length(Enum.uniq(ids)), "an item was exported twice"
    Enum.sort(ids)
  end

  def all_ids, do: Enum.map(1..@count, &thing(&1).id)

  describe "DynamoDB JSON" do
    test "the layout, the lines and the manifests are DynamoDB's", %{store: store} do
      assert {:ok, result} = TableStream.export(Thing, store, "backups/things", segments: 3)

      assert %{items: @count, files: files, bytes: bytes, export_id: id, manifest: manifest} =
               result

      assert id =~ ~r/\A\d{13}-[0-9a-f]{8}\z/
      dir = "backups/things/AWSDynamoDB/#{id}"
      assert manifest == "#{dir}/manifest-summary.json"
      assert export_dir(store, "backups/things") == dir

      paths = list_paths(store, dir)
      data = Enum.filter(paths, &String.starts_with?(&1, "#{dir}/data/"))
      assert length(data) == files and files >= 3

      assert paths -- data ==
               Enum.sort([
                 "#{dir}/_started",
                 "#{dir}/manifest-files.json",
                 "#{dir}/manifest-files.checksum",
                 "#{dir}/manifest-summary.json",
                 "#{dir}/manifest-summary.checksum"
               ])

      assert read!(store, "#{dir}/_started") == ""
      assert Enum.all?(data, &String.ends_with?(&1, ".json.gz"))
      # Each segment writes its own files.
      assert data |> Enum.map(&(&1 |> Path.basename() |> String.slice(0, 6))) |> Enum.uniq() ==
               ["000000", "000001", "000002"]

      items = manifest_items(store, dir)
      assert ids(items) == all_ids()
      assert Enum.sum(Enum.map(data, &byte_size(read!(store, &1)))) == bytes

      by_id = Map.new(items, fn %{"Item" => item} -> {item["id"]["S"], item} end)

      for i <- 2..@count do
        assert {i, normalize_item(by_id[thing(i).id])} == {i, normalize_item(expected(i))}
      end

      special = by_id["t0001"]
      assert special["dec"] == @special[":dec"]
      assert special["big"] == @special[":big"]
      assert special["tagmap"] == @special[":tagmap"]
      assert special["bin"] == @special[":bin"]
      assert special["empty"] == %{"S" => ""}
      assert special["null"] == %{"NULL" => true}
      assert Enum.sort(special["ns"]["NS"]) == Enum.sort(@special[":ns"]["NS"])

      summary = TestJSON.decode!(read!(store, manifest), raw_numbers: true)
      assert summary["version"] == "2020-06-30"
      assert summary["itemCount"] == {:number, "#{@count}"}
      assert summary["outputFormat"] == "DYNAMODB_JSON"
      assert summary["exportType"] == "FULL_EXPORT"
      assert summary["manifestFilesS3Key"] == "#{dir}/manifest-files.json"
      assert summary["s3Prefix"] == "backups/things"
      assert summary["exportArn"] =~ ~r"table/cloud_streams_export_test_things/export/#{id}\z"
      assert {:ok, _, _} = DateTime.from_iso8601(summary["startTime"])
      assert {:ok, _, _} = DateTime.from_iso8601(summary["endTime"])

      for name <- ["manifest-files", "manifest-summary"] do
        assert read!(store, "#{dir}/#{name}.checksum") ==
                 Base.encode64(:crypto.hash(:md5, read!(store, "#{dir}/#{name}.json")))
      end
    end

    test "a table name with :config, at the store's root", %{store: store} do
      assert {:ok, %{items: @count, export_id: id}} =
               TableStream.export("cloud_streams_export_test_things", store, "",
                 config: Application.get_env(:cloud_streams, :dynamo, [])
               )

      dir = "AWSDynamoDB/#{id}"
      assert ids(manifest_items(store, dir)) == all_ids()
      summary = TestJSON.decode!(read!(store, "#{dir}/manifest-summary.json"), raw_numbers: true)
      assert summary["s3Prefix"] == nil
    end

    test "a filter and a projection are the scan's", %{store: store} do
      assert {:ok, %{items: 120, export_id: id}} =
               TableStream.export(Thing, store, "p",
                 filter_expression: "flag = :t",
                 expression_attribute_values: %{":t" => true},
                 projection_expression: "id, #n",
                 expression_attribute_names: %{"#n" => "n"},
                 segments: 2
               )

      items = manifest_items(store, "p/AWSDynamoDB/#{id}")
      assert length(items) == 120

      assert Enum.all?(items, fn %{"Item" => item} ->
               Map.keys(item) |> Enum.sort() == ["id", "n"]
             end)
    end

    test "small max_file_bytes: several files per segment, each ending on a page", %{store: store} do
      assert {:ok, %{items: @count, files: files, export_id: id}} =
               TableStream.export(Thing, store, "small",
                 segments: 2,
                 page_size: 10,
                 max_file_bytes: 1
               )

      dir = "small/AWSDynamoDB/#{id}"

      lines =
        TestJSON.decode_lines!(read!(store, "#{dir}/manifest-files.json"), raw_numbers: true)

      assert length(lines) == files

      per_segment =
        Enum.group_by(lines, fn %{"dataFileS3Key" => key} ->
          key |> Path.basename() |> String.slice(0, 6)
        end)

      assert Map.keys(per_segment) == ["000000", "000001"]
      assert Enum.all?(per_segment, fn {_, files} -> length(files) > 3 end)
      # One page per file: at most page_size items each.
      assert Enum.all?(lines, fn %{"itemCount" => {:number, n}} ->
               String.to_integer(n) in 1..10
             end)

      assert ids(manifest_items(store, dir)) == all_ids()
    end
  end

  describe "NDJSON" do
    test "plain JSON values, lossless", %{store: store} do
      assert {:ok, %{items: @count, export_id: id}} =
               TableStream.export(Thing, store, "nd", format: :ndjson, segments: 2)

      dir = "nd/AWSDynamoDB/#{id}"
      summary = TestJSON.decode!(read!(store, "#{dir}/manifest-summary.json"), raw_numbers: true)
      assert summary["outputFormat"] == "NDJSON"

      lines =
        TestJSON.decode_lines!(read!(store, "#{dir}/manifest-files.json"), raw_numbers: true)

      items =
        Enum.flat_map(lines, fn %{"dataFileS3Key" => key} ->
          assert String.ends_with?(key, ".ndjson.gz")
          store |> read!(key) |> :zlib.gunzip() |> TestJSON.decode_lines!(raw_numbers: true)
        end)

      assert length(items) == @count
      by_id = Map.new(items, &{&1["id"], &1})
      special = by_id["t0001"]
      # Digits exactly as DynamoDB holds them, as JSON numbers.
      assert special["dec"] == {:number, "-1234567890.1234567890123456789012345678"}
      assert special["big"] == {:number, "12345678901234567890123456789012345678"}
      assert special["bin"] == %{"$b64" => Base.encode64(<<0, 255, ?", ?\\, 10>>)}
      # A map whose only key looks like a tag is wrapped.
      assert special["tagmap"] == %{"$m" => %{"$ss" => "not a set"}}
      assert special["empty"] == ""
      assert Map.fetch!(special, "null") == nil

      assert Enum.sort(special["ns"]["$ns"]) ==
               Enum.sort(Enum.map(@special[":ns"]["NS"], &{:number, &1}))

      t = thing(10)
      item = by_id[t.id]
      assert item["s"] == t.s
      assert item["n"] == {:number, Integer.to_string(t.n)}
      assert item["b"] == %{"$b64" => Base.encode64(t.b)}
      assert item["flag"] == true
      assert Enum.sort(item["tags"]["$ss"]) == Enum.sort(t.tags)
      assert Enum.sort(item["nums"]["$ns"]) == [{:number, "10"}, {:number, "11"}]

      assert Enum.sort(item["blobs"]["$bs"]) ==
               t.blobs |> Enum.map(&Base.encode64/1) |> Enum.sort()

      assert item["doc"] == %{
               "nested" => %{"deep" => [{:number, "10"}, "x", %{"k" => nil}]},
               "empty" => %{}
             }

      assert item["list"] == [{:number, "10"}, "two", [true, false], %{}]
    end
  end

  describe "an export already under the prefix" do
    test "is refused, unless overwrite: true; a complete one resumes to its result", %{
      store: store
    } do
      assert {:ok, first} = TableStream.export(Thing, store, "again")

      assert {:error, %ObjectStoreX.Error{kind: :already_exists} = error} =
               TableStream.export(Thing, store, "again")

      assert error.message =~ first.export_id
      assert error.message =~ "resume: true"
      assert error.message =~ "overwrite: true"

      # Resuming a complete export writes nothing and answers its result.
      assert {:ok, ^first} = TableStream.export(Thing, store, "again", resume: true)
      assert {:ok, ^first} = TableStream.export(Thing, store, "again", resume: first.export_id)

      assert {:ok, second} = TableStream.export(Thing, store, "again", overwrite: true)
      assert second.export_id != first.export_id
      assert list_dirs(store, "again/AWSDynamoDB") == ["again/AWSDynamoDB/#{second.export_id}"]
      assert ids(manifest_items(store, "again/AWSDynamoDB/#{second.export_id}")) == all_ids()
    end

    test "resume with nothing to resume is an error", %{store: store} do
      assert {:error, %ObjectStoreX.Error{kind: :not_found}} =
               TableStream.export(Thing, store, "nothing", resume: true)
    end
  end

  describe "progress and control" do
    test "on_progress reports totals and segments; telemetry spans the export", %{store: store} do
      me = self()

      assert {:ok, %{items: @count, files: files, bytes: bytes}} =
               TableStream.export(Thing, store, "progress",
                 segments: 2,
                 page_size: 20,
                 max_file_bytes: 1,
                 progress_interval: 10,
                 on_progress: &send(me, {:progress, &1})
               )

      reports = collect(:progress)
      assert reports != []
      last = List.last(reports)
      assert %{items: @count, files: ^files, bytes: ^bytes} = last
      # Each report holds the segments running or changed since the one before.
      segments = Enum.reduce(reports, %{}, &Map.merge(&2, &1.segments))
      assert Map.keys(segments) == [0, 1]
      assert Enum.all?(segments, fn {_, s} -> s.done end)
      assert Enum.sum(Enum.map(segments, fn {_, s} -> s.items end)) == @count
      # Totals only grow.
      items = Enum.map(reports, & &1.items)
      assert items == Enum.sort(items)
    end

    test "one :telemetry span per export", %{store: store} do
      id = {__MODULE__, make_ref()}
      events = for suffix <- [:start, :stop], do: [:cloud_streams, :dynamo, :export, suffix]
      me = self()

      handler = fn event, measurements, metadata, _ ->
        send(me, {:telemetry, event, measurements, metadata})
      end

      :ok = :telemetry.attach_many(id, events, handler, nil)
      on_exit(fn -> :telemetry.detach(id) end)

      assert {:ok, %{items: @count, bytes: bytes, files: files}} =
               TableStream.export(Thing, store, "tele", segments: 2)

      assert_received {:telemetry, [:cloud_streams, :dynamo, :export, :start], _, start}

      assert %{operation: :export, table: "cloud_streams_export_test_things", segments: 2} = start

      assert %{backend: :local, path: "tele", format: :dynamodb_json} = start
      assert_received {:telemetry, [:cloud_streams, :dynamo, :export, :stop], stop, meta}
      assert %{items: @count, bytes: ^bytes, files: ^files, duration: _} = stop
      assert meta.ending == :done

      assert {:error, _} = TableStream.export(Missing, store, "tele2")
      assert_received {:telemetry, [:cloud_streams, :dynamo, :export, :start], _, _}
      assert_received {:telemetry, [:cloud_streams, :dynamo, :export, :stop], _, meta}
      assert %{ending: :error, error: %Dynamo.Error{}} = meta
    end

    test "a raising on_progress stops the export and raises", %{store: store} do
      assert_raise RuntimeError, "stop here", fn ->
        TableStream.export(Thing, store, "raise",
          page_size: 10,
          max_file_bytes: 1,
          progress_interval: 10,
          on_progress: fn _ -> raise "stop here" end
        )
      end

      assert_stops_cleanly()
    end
  end

  describe "stopped and resumed" do
    test "a killed export resumes to exactly one copy of every item", %{store: store, root: root} do
      me = self()

      task =
        TableStream.async_export(Thing, store, "crash",
          segments: 3,
          page_size: 5,
          max_file_bytes: 1,
          # Slow enough to be killed mid-way (DynamoDB Local reports consumed capacity).
          max_read_capacity: 10,
          progress_interval: 10,
          on_progress: &send(me, {:progress, &1})
        )

      assert_receive {:progress, %{files: files}} when files >= 4, 20_000
      # The task process dies: its handle on the native job is collected, and the job stops.
      assert Task.shutdown(task, :brutal_kill) == nil
      collect(:progress)

      dir = export_dir(store, "crash")
      refute File.exists?(Path.join(root, "#{dir}/manifest-summary.json"))
      records = list_paths(store, "#{dir}/_progress")
      assert records != []

      assert {:ok, %{items: @count, export_id: id}} =
               TableStream.export(Thing, store, "crash",
                 segments: 3,
                 page_size: 5,
                 max_file_bytes: 1,
                 resume: true
               )

      assert "crash/AWSDynamoDB/#{id}" == dir
      items = manifest_items(store, dir)
      assert ids(items) == all_ids()
      # No file but the manifest's is left in data/, and the resume state is gone.
      listed =
        TestJSON.decode_lines!(read!(store, "#{dir}/manifest-files.json"), raw_numbers: true)

      assert Enum.sort(Enum.map(listed, & &1["dataFileS3Key"])) ==
               list_paths(store, "#{dir}/data")

      assert list_paths(store, "#{dir}/_progress") == []
      assert_stops_cleanly()
    end

    test "resume with other options is refused", %{store: store} do
      me = self()

      task =
        TableStream.async_export(Thing, store, "other",
          segments: 2,
          page_size: 5,
          max_file_bytes: 1,
          max_read_capacity: 10,
          progress_interval: 10,
          on_progress: &send(me, {:progress, &1})
        )

      assert_receive {:progress, %{files: files}} when files >= 1, 20_000
      Task.shutdown(task, :brutal_kill)
      collect(:progress)

      assert {:error, %ObjectStoreX.Error{kind: :invalid_argument} = error} =
               TableStream.export(Thing, store, "other", segments: 3, resume: true)

      assert error.message =~ "same"
    end
  end

  describe "failures" do
    test "a missing table is a Dynamo.Error naming the segment", %{store: store} do
      assert {:error, %Dynamo.Error{type: :resource_not_found} = error} =
               TableStream.export(Missing, store, "missing", segments: 2)

      assert error.message =~ ~r/segment \d of 2/
      assert_stops_cleanly()
    end

    @tag :s3
    test "a store that fails mid-export names the segment and the file" do
      prefix = "export-fail-#{System.system_time(:nanosecond)}"
      # moto behind a proxy that cuts the request writing the third file of segment 0.
      {proxy, _agent} =
        CountingProxy.start(TestBed.env!("CLOUD_STREAMS_S3_ENDPOINT"),
          fail: ~r"PUT \S*/data/000000-000002\.json\.gz"
        )

      {:ok, store} =
        TestBed.s3_store(prefix, endpoint: proxy, retry: [max_retries: 0, retry_timeout: 1_000])

      assert {:error, %ObjectStoreX.Error{} = error} =
               TableStream.export(Thing, store, "x", segments: 1, page_size: 10, max_file_bytes: 1)

      assert error.message =~
               ~r"segment 0, file x/AWSDynamoDB/\d{13}-[0-9a-f]{8}/data/000000-000002\.json\.gz"

      assert error.path =~ ~r"x/AWSDynamoDB/.*/data/000000-000002\.json\.gz\z"
      # The finished files are kept, and recorded for a resume.
      {:ok, direct} = TestBed.s3_store(prefix)
      dir = export_dir(direct, "x")
      assert length(list_paths(direct, "#{dir}/data")) == 2
      assert [_] = list_paths(direct, "#{dir}/_progress")
      assert S3Uploads.open(prefix) == []
      assert_stops_cleanly()

      # Once the store answers again, the export resumes after its two files.
      assert {:ok, %{items: @count, files: files}} =
               TableStream.export(Thing, direct, "x",
                 segments: 1,
                 page_size: 10,
                 max_file_bytes: 1,
                 resume: true
               )

      assert files == div(@count, 10)
      assert ids(manifest_items(direct, dir)) == all_ids()
    end
  end

  describe "a stalled store" do
    @describetag :s3
    test "no progress within :timeout stops the export with a :timeout error" do
      prefix = "export-stall-#{System.system_time(:nanosecond)}"
      {proxy, agent} = CountingProxy.start(TestBed.env!("CLOUD_STREAMS_S3_ENDPOINT"))
      {:ok, store} = TestBed.s3_store(prefix, endpoint: proxy)
      me = self()

      task =
        TableStream.async_export(Thing, store, "x",
          segments: 1,
          page_size: 10,
          max_file_bytes: 1,
          max_read_capacity: 10,
          progress_interval: 10,
          timeout: 1_000,
          on_progress: &send(me, {:progress, &1})
        )

      assert_receive {:progress, %{files: files}} when files >= 1, 20_000
      # From now on the store answers nothing.
      CountingProxy.set_fault(agent, {:stall_after, 0})
      assert {:ok, {:error, %Dynamo.Error{kind: :timeout} = error}} = Task.yield(task, 20_000)
      assert error.message =~ "resume"
      collect(:progress)
      assert_stops_cleanly()
    end
  end

  describe "multipart uploads on moto" do
    @describetag :s3
    @blob_table "cloud_streams_export_test_blobs"
    # Incompressible, so that one data file spans several 5 MiB parts.
    @blobs 100
    @blob_bytes 100_000

    defmodule Blob do
      use Dynamo.Schema

      item do
        table_name("cloud_streams_export_test_blobs")
        field(:id, :string, partition_key: true)
        field(:data, :binary)
      end
    end

    setup do
      _ = Table.delete_table(Blob)
      :ok = Table.create_table(Blob)

      blobs =
        for i <- 1..@blobs, do: %Blob{id: "b#{i}", data: :crypto.strong_rand_bytes(@blob_bytes)}

      {:ok, @blobs} = Table.batch_write_item(Blob, blobs)
      on_exit(fn -> Table.delete_table(Blob) end)
      prefix = "export-mp-#{System.system_time(:nanosecond)}"
      {:ok, s3} = TestBed.s3_store(prefix)
      %{prefix: prefix, s3: s3}
    end

    # One segment, slowed down: its one data file passes the first 5 MiB part after about
    # 50 items.
    @slow [
      segments: 1,
      page_size: 5,
      part_size: 5 * 1024 * 1024,
      max_read_capacity: 150,
      progress_interval: 10
    ]

    defp blob_ids(items) do
      ids = Enum.map(items, fn %{"Item" => %{"id" => %{"S" => id}}} -> id end)
      assert length(ids) == length(Enum.uniq(ids)), "an item was exported twice"
      Enum.sort(ids)
    end

    # Waits until the export's multipart upload is open and recorded; fails at once, with
    # the export's answer, if the export ends first.
    defp await_recorded_upload(s3, marker \\ "uploadId\":\"", tries \\ 600) do
      receive do
        {ref, result} when is_reference(ref) ->
          flunk("the export ended first: #{inspect(result)}")

        {:export_result, _node, result} ->
          flunk("the export ended first: #{inspect(result)}")
      after
        0 ->
          cond do
            recorded_upload?(s3, marker) -> :ok
            tries == 0 -> flunk("no multipart upload was recorded")
            true -> Process.sleep(50) && await_recorded_upload(s3, marker, tries - 1)
          end
      end
    end

    defp recorded_upload?(store, marker) do
      case list_dirs(store, "k/AWSDynamoDB") do
        [dir] ->
          Enum.any?(list_paths(store, "#{dir}/_progress"), &(read!(store, &1) =~ marker))

        _ ->
          false
      end
    end

    test "Task.shutdown stops the export and aborts its upload", %{prefix: prefix, s3: s3} do
      task = TableStream.async_export(Blob, s3, "k", @slow)
      await_recorded_upload(s3)
      assert [_] = S3Uploads.open(prefix)
      assert Task.shutdown(task, :brutal_kill) == nil
      wait_until(fn -> S3Uploads.open(prefix) == [] end)
      assert_stops_cleanly()
    end

    test "a table deleted mid-upload: a Dynamo.Error naming the segment, no upload left",
         %{prefix: prefix, s3: s3} do
      task = TableStream.async_export(Blob, s3, "k", @slow)
      await_recorded_upload(s3)
      :ok = Table.delete_table(Blob)

      assert {:ok, {:error, %Dynamo.Error{type: :resource_not_found} = error}} =
               Task.yield(task, 60_000)

      assert error.message =~ "segment 0 of 1"
      # Aborted before the error was returned: nothing to wait for.
      assert S3Uploads.open(prefix) == []
      assert_stops_cleanly()
    end

    test "a VM killed mid-upload: resume aborts the upload it left and writes every item once",
         %{prefix: prefix, s3: s3} do
      {_peer, node} = Cluster.start_peer!(TestBed.env!("CLOUD_STREAMS_DYNAMODB_ENDPOINT"))

      store_opts = [
        bucket: TestBed.env!("CLOUD_STREAMS_S3_BUCKET"),
        endpoint: TestBed.env!("CLOUD_STREAMS_S3_ENDPOINT"),
        region: "us-east-1",
        access_key_id: TestBed.env!("AWS_ACCESS_KEY_ID"),
        secret_access_key: TestBed.env!("AWS_SECRET_ACCESS_KEY"),
        allow_http: true,
        prefix: prefix
      ]

      :ok =
        :erpc.call(node, CloudStreams.ExportPeer, :start, [
          {:s3, store_opts},
          @blob_table,
          "k",
          @slow,
          self()
        ])

      # Killed once its multipart upload is open and recorded.
      await_recorded_upload(s3)
      Cluster.kill_peer!(node)
      [{_key, left_behind}] = S3Uploads.open(prefix)
      refute_received {:export_result, _, _}

      assert {:ok, %{items: @blobs, files: 1, export_id: id}} =
               TableStream.export(Blob, s3, "k",
                 segments: 1,
                 page_size: 5,
                 part_size: 5 * 1024 * 1024,
                 resume: true
               )

      assert S3Uploads.open(prefix) == [], "upload #{left_behind} was left behind"
      dir = "k/AWSDynamoDB/#{id}"
      assert blob_ids(manifest_items(s3, dir)) == Enum.sort(Enum.map(1..@blobs, &"b#{&1}"))
    end

    test "a VM killed mid-file on the local disk: resume deletes the staging file it left",
         %{root: root, store: store} do
      {_peer, node} = Cluster.start_peer!(TestBed.env!("CLOUD_STREAMS_DYNAMODB_ENDPOINT"))

      :ok =
        :erpc.call(node, CloudStreams.ExportPeer, :start, [
          {:local, [root: root]},
          @blob_table,
          "k",
          @slow,
          self()
        ])

      # The local store has no upload id: the record names the file in progress.
      await_recorded_upload(store, "inProgress\":{")
      Cluster.kill_peer!(node)
      staging = fn -> Path.wildcard(Path.join(root, "k/AWSDynamoDB/*/data/*#*")) end
      assert [left_behind] = staging.()
      assert left_behind =~ ~r"/data/000000-000000\.json\.gz#\d+\z"

      assert {:ok, %{items: @blobs, files: 1, export_id: id}} =
               TableStream.export(Blob, store, "k",
                 segments: 1,
                 page_size: 5,
                 part_size: 5 * 1024 * 1024,
                 resume: true
               )

      assert staging.() == []

      assert blob_ids(manifest_items(store, "k/AWSDynamoDB/#{id}")) ==
               Enum.sort(Enum.map(1..@blobs, &"b#{&1}"))
    end
  end

  describe "bad input" do
    test "each bad option raises naming the function and the option", %{store: store} do
      cases = [
        {[segments: 0], "segments"},
        {[format: :csv], "format"},
        {[max_file_bytes: 0], "max_file_bytes"},
        {[part_size: 1024], "part_size"},
        {[resume: "nope"], "resume"},
        {[overwrite: :yes], "overwrite"},
        {[on_progress: fn -> :ok end], "on_progress"},
        {[progress_interval: 0], "progress_interval"},
        {[progress_interval: 5_000, timeout: 5_000], "progress_interval"},
        {[timeout: -1], "timeout"},
        {[max_read_capacity: 0], "max_read_capacity"},
        {[page_size: 0], "page_size"},
        {[expression_attribute_values: %{":v" => {:bad}}], "expression_attribute_values"},
        {[segmets: 2], "segmets"}
      ]

      for {opts, name} <- cases do
        error =
          assert_raise ArgumentError, fn -> TableStream.export(Thing, store, "bad", opts) end

        assert error.message =~ "Dynamo.Table.Stream.export/4", inspect(opts)
        assert error.message =~ name, inspect(opts)

        error =
          assert_raise ArgumentError, fn ->
            TableStream.async_export(Thing, store, "bad", opts)
          end

        assert error.message =~ "Dynamo.Table.Stream.async_export/4", inspect(opts)
      end

      for {args, what} <- [
            {[:not_a_schema, store, "p"], "Dynamo.Schema"},
            {["ab", store, "p"], "table name"},
            {[Thing, :not_a_store, "p"], "store"},
            {[Thing, store, "a//b"], "prefix"},
            {[Thing, store, "../up"], "prefix"},
            {[Thing, store, :p], "prefix"}
          ] do
        error = assert_raise ArgumentError, fn -> apply(TableStream, :export, args) end
        assert error.message =~ "Dynamo.Table.Stream.export/4"
        assert error.message =~ what
      end

      assert list_paths(store, "") == []
    end
  end

  describe "resume and progress, after review" do
    @stopped [segments: 2, page_size: 5, max_file_bytes: 1]

    test "resume refuses another table, or other expression attribute names or values", %{
      store: store
    } do
      filter = [
        filter_expression: "#f = :t",
        expression_attribute_names: %{"#f" => "flag"},
        expression_attribute_values: %{":t" => true}
      ]

      stopped_export(store, "mixed", filter)
      config = Application.get_env(:cloud_streams, :dynamo, [])

      for {target, opts} <- [
            {"cloud_streams_export_test_other", [config: config] ++ filter},
            {Thing, Keyword.put(filter, :expression_attribute_values, %{":t" => false})},
            {Thing, Keyword.put(filter, :expression_attribute_names, %{"#f" => "s"})}
          ] do
        assert {:error, %ObjectStoreX.Error{kind: :invalid_argument} = error} =
                 TableStream.export(target, store, "mixed", @stopped ++ [resume: true] ++ opts)

        assert error.message =~ "table"
      end

      # The same options resume it.
      assert {:ok, %{items: 120}} =
               TableStream.export(Thing, store, "mixed", @stopped ++ [resume: true] ++ filter)
    end

    test "resume removes data files and local staging files that no record names", %{
      store: store,
      root: root
    } do
      dir = stopped_export(store, "stray", [])
      # As a run that died after a file's upload completed and before its record was saved
      # leaves it, and a local multipart staging file (`<file>#<n>`) never recorded.
      :ok = ObjectStoreX.put(store, "#{dir}/data/000001-000999.json.gz", "not recorded")
      File.write!(Path.join(root, "#{dir}/data/000000-000998.json.gz#1"), "staged")

      assert {:ok, %{items: @count}} =
               TableStream.export(Thing, store, "stray", @stopped ++ [resume: true])

      assert ids(manifest_items(store, dir)) == all_ids()

      listed =
        TestJSON.decode_lines!(read!(store, "#{dir}/manifest-files.json"), raw_numbers: true)

      assert Enum.sort(Enum.map(listed, & &1["dataFileS3Key"])) ==
               list_paths(store, "#{dir}/data")

      assert root |> Path.join("#{dir}/data") |> File.ls!() |> Enum.filter(&(&1 =~ "#")) == []
    end

    test "pages a filter empties still count as progress: no false :timeout", %{store: store} do
      me = self()

      # 240 pages of one item, none kept, paced at about 10 ms a page (0.5 read units each):
      # about 2.4 s of scanning with no item, byte or file written, under a 1 s timeout.
      assert {:ok, %{items: 0, files: 0}} =
               TableStream.export(Thing, store, "empty_pages",
                 segments: 1,
                 page_size: 1,
                 filter_expression: "#s = :none",
                 expression_attribute_names: %{"#s" => "s"},
                 expression_attribute_values: %{":none" => "no such value"},
                 max_read_capacity: 50,
                 progress_interval: 20,
                 timeout: 1_000,
                 on_progress: &send(me, {:progress, &1})
               )

      pages = Enum.map(collect(:progress), & &1.pages_scanned)
      assert List.last(pages) >= @count
      assert pages == Enum.sort(pages)
    end

    test "progress reports hold only the segments running or changed since the last one", %{
      store: store
    } do
      me = self()

      assert {:ok, %{items: @count}} =
               TableStream.export(Thing, store, "many_segments",
                 segments: 16,
                 max_concurrency: 2,
                 page_size: 5,
                 max_file_bytes: 1,
                 progress_interval: 10,
                 on_progress: &send(me, {:progress, &1})
               )

      reports = collect(:progress)
      # Two segments scan at a time (their writers may lag a little behind the scan).
      assert Enum.all?(reports, &(map_size(&1.segments) <= 8)),
             inspect(Enum.map(reports, &map_size(&1.segments)))

      segments = Enum.reduce(reports, %{}, &Map.merge(&2, &1.segments))
      assert Map.keys(segments) == Enum.to_list(0..15)
      assert Enum.all?(segments, fn {_, s} -> s.done end)
      assert Enum.sum(Enum.map(segments, fn {_, s} -> s.items end)) == @count
    end

    # DynamoDB's own export ids have 14 digits (`01234567890123-a1b2c3d4`); the export is
    # written as the import tests write one (test/support/import_fixtures.ex).
    test "a prefix holding a DynamoDB export is refused, unless overwrite: true", %{store: store} do
      item = CloudStreams.ImportFixtures.simple_item(1)

      CloudStreams.ImportFixtures.write_export(store, "native", "01234567890123-a1b2c3d4", [
        {"a.json.gz", CloudStreams.ImportFixtures.data_file([item]), 1}
      ])

      assert {:error, %ObjectStoreX.Error{kind: :already_exists} = error} =
               TableStream.export(Thing, store, "native")

      assert error.message =~ "01234567890123-a1b2c3d4"
      assert {:ok, %{export_id: id}} = TableStream.export(Thing, store, "native", overwrite: true)
      assert list_dirs(store, "native/AWSDynamoDB") == ["native/AWSDynamoDB/#{id}"]
    end
  end

  # An unfinished export of Thing: its process killed once it has finished a file.
  defp stopped_export(store, prefix, opts) do
    me = self()

    task =
      TableStream.async_export(
        Thing,
        store,
        prefix,
        @stopped ++
          [
            max_read_capacity: 10,
            progress_interval: 10,
            on_progress: &send(me, {:progress, &1})
          ] ++ opts
      )

    assert_receive {:progress, %{files: files}} when files >= 1, 20_000
    Task.shutdown(task, :brutal_kill)
    collect(:progress)
    export_dir(store, prefix)
  end

  defp collect(tag, acc \\ []) do
    receive do
      {^tag, value} -> collect(tag, [value | acc])
    after
      50 -> Enum.reverse(acc)
    end
  end

  # Nothing of the export keeps running once it has answered.
  defp assert_stops_cleanly do
    wait_until(fn -> CloudStreams.stats().live_tasks == 0 end)
  end

  defp wait_until(check, tries \\ 100) do
    cond do
      check.() ->
        :ok

      tries == 0 ->
        flunk(
          "timed out: #{inspect(CloudStreams.stats())} #{inspect(Process.info(self(), :messages), limit: 50, printable_limit: 500)}"
        )

      true ->
        Process.sleep(50) && wait_until(check, tries - 1)
    end
  end
end
