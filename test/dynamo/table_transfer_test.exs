defmodule Dynamo.TableTransferTest do
  # Issue 16's round trip, checked from outside the library. A table holding every attribute
  # type is written over DynamoDB's own JSON protocol (CloudStreams.DynamoDBWire: numbers as
  # DynamoDB's exact digit strings, binaries as Base64), exported with
  # Dynamo.Table.Stream.export/4, imported into a second table with import/4, and both tables
  # are read back over the wire and compared item by item. The same export is also loaded by
  # moto's ImportTable (moto/dynamodb/models/table_import.py: it lists the objects under
  # S3KeyPrefix, gunzips each and puts every line's "Item"), the counterpart DynamoDB users
  # feed exports to.
  use ExUnit.Case, async: false
  @moduletag :dynamodb

  alias CloudStreams.{DynamoDBWire, TestBed}
  alias Dynamo.Table.Stream

  @source "cloud_streams_transfer_source"
  @moto_source "cloud_streams_transfer_moto_source"
  @target "cloud_streams_transfer_target"
  @items 420
  @digits "12345678901234567890123456789012345678"

  setup_all do
    endpoint = TestBed.env!("CLOUD_STREAMS_DYNAMODB_ENDPOINT")
    items = Enum.map(1..@items, &item/1)

    for {table, items} <- [
          {@source, items},
          {@moto_source, Enum.map(items, &for_moto/1)}
        ] do
      create_table(endpoint, table)
      :ok = DynamoDBWire.batch_put(endpoint, table, items)
    end

    on_exit(fn -> for table <- [@source, @moto_source], do: delete_table(endpoint, table) end)

    %{
      endpoint: endpoint,
      source_items: normalise(DynamoDBWire.scan_all(endpoint, @source)),
      moto_items: normalise(DynamoDBWire.scan_all(endpoint, @moto_source))
    }
  end

  setup %{endpoint: endpoint} do
    create_table(endpoint, @target)
    on_exit(fn -> delete_table(endpoint, @target) end)

    root =
      Path.join(System.tmp_dir!(), "cloud_streams_transfer_#{System.unique_integer([:positive])}")

    on_exit(fn -> File.rm_rf!(root) end)
    %{local: ObjectStoreX.new!(:local, root: root, create_root: true)}
  end

  # Every attribute type, in shapes that stress an encoder: big and tiny numbers with 38
  # significant digits, empty strings and binaries, escapes and characters outside the BMP,
  # sets, nested maps and lists, map keys that look like DynamoDB JSON type names or our
  # NDJSON tags, and attributes missing from some items.
  defp item(i) do
    base = %{
      "id" => %{"S" => "item-#{String.pad_leading("#{i}", 4, "0")}"},
      "s" => %{
        "S" => Enum.at(["", "plain", "é\"\\\n\t\u0001😀", String.duplicate("x", 300)], rem(i, 4))
      },
      "big" => %{"N" => "#{Integer.pow(10, 37) + i}"},
      # 38 significant digits, DynamoDB's most.
      "decimal" => %{"N" => "-#{i}.#{String.slice(@digits, 0, 38 - String.length("#{i}"))}"},
      "tiny" => %{"N" => "1.5E-#{100 + rem(i, 29)}"},
      "huge" => %{"N" => "9.9999999999999999999999999999999999999E+125"},
      "b" => %{"B" => Base.encode64(:crypto.strong_rand_bytes(rem(i, 40)))},
      "ss" => %{"SS" => ["a#{i}", "b", "ü"]},
      "ns" => %{"NS" => ["1", "-0.5", "#{Integer.pow(2, 70) + i}"]},
      "bs" => %{"BS" => [Base.encode64(<<0, 255, i::16>>), Base.encode64("b")]},
      "bool" => %{"BOOL" => rem(i, 2) == 0},
      "null" => %{"NULL" => true},
      "l" => %{
        "L" => [
          %{"S" => ""},
          %{"N" => "#{i}"},
          %{"L" => []},
          %{"M" => %{"deep" => %{"L" => [%{"NULL" => true}, %{"BOOL" => false}]}}}
        ]
      },
      "m" => %{
        "M" => %{
          "S" => %{"S" => "a key named S"},
          "$b64" => %{"S" => "a key like a tag"},
          "empty" => %{"M" => %{}},
          "n" => %{"N" => "0.000001"}
        }
      }
    }

    if rem(i, 7) == 0, do: Map.drop(base, ["b", "ss", "l"]), else: base
  end

  # moto's ImportTable parses data files with py_partiql_parser's JsonParser, which yields
  # nothing for a document holding an empty object (`{"M":{}}` included: the import then
  # reports COMPLETED with 0 items) and reads the escape `\"` as the end of a string (`"x\"y"`
  # becomes `x\`). Both are valid JSON, which Python's json module reads back exactly from our
  # files; moto cannot, so the table it loads has no empty map and no escaped string.
  defp for_moto(item) do
    item
    |> update_in(["m", "M"], &Map.delete(&1, "empty"))
    |> Map.update!("s", fn %{"S" => s} -> %{"S" => String.replace(s, ~r/[\x00-\x1f"\\]/, "")} end)
  end

  defp create_table(endpoint, table) do
    delete_table(endpoint, table)

    {:ok, _} =
      DynamoDBWire.request(endpoint, "CreateTable", %{
        "TableName" => table,
        "BillingMode" => "PAY_PER_REQUEST",
        "AttributeDefinitions" => [%{"AttributeName" => "id", "AttributeType" => "S"}],
        "KeySchema" => [%{"AttributeName" => "id", "KeyType" => "HASH"}]
      })
  end

  defp delete_table(endpoint, table),
    do: DynamoDBWire.request(endpoint, "DeleteTable", %{"TableName" => table})

  # Sets are unordered in DynamoDB: compare them sorted; items by key.
  defp normalise(items), do: items |> Enum.map(&sets_sorted/1) |> Enum.sort_by(& &1["id"]["S"])

  defp sets_sorted(%{} = map) do
    Map.new(map, fn
      {type, list} when type in ["SS", "NS", "BS"] -> {type, Enum.sort(list)}
      {key, value} -> {key, sets_sorted(value)}
    end)
  end

  defp sets_sorted(list) when is_list(list), do: Enum.map(list, &sets_sorted/1)
  defp sets_sorted(other), do: other

  for format <- [:dynamodb_json, :ndjson] do
    test "export then import (#{format}) copies every item exactly, every type", ctx do
      assert {:ok, export} =
               Stream.export(@source, ctx.local, "round_trip",
                 format: unquote(format),
                 segments: 3,
                 page_size: 40
               )

      assert export.items == @items
      assert {:ok, imported} = Stream.import(ctx.local, "round_trip", @target)
      assert imported.items == @items
      assert imported.files == export.files

      target = normalise(DynamoDBWire.scan_all(ctx.endpoint, @target))
      assert length(target) == @items

      for {expected, got} <- Enum.zip(ctx.source_items, target) do
        assert got == expected
      end
    end
  end

  test "read_export gives each item as Dynamo.Codec decodes it", ctx do
    {:ok, _} = Stream.export(@source, ctx.local, "read", segments: 2, page_size: 100)

    expected =
      ctx.source_items
      |> Enum.map(&(Dynamo.Codec.from_json(%{"M" => &1}) |> Dynamo.Codec.decode()))
      |> Enum.sort_by(& &1["id"])

    read = Stream.read_export(ctx.local, "read") |> Enum.sort_by(& &1["id"])
    assert length(read) == @items
    assert read == expected
  end

  @tag :s3
  test "moto's ImportTable loads our export from S3 into the same items", ctx do
    moto = TestBed.env!("CLOUD_STREAMS_S3_ENDPOINT")
    bucket = TestBed.env!("CLOUD_STREAMS_S3_BUCKET")
    store_prefix = "transfer-#{System.unique_integer([:positive])}"
    {:ok, s3} = TestBed.s3_store(store_prefix)

    assert {:ok, %{export_id: export_id, items: @items}} =
             Stream.export(@moto_source, s3, "exports/source", segments: 2, page_size: 60)

    table = "cloud_streams_moto_imported_#{System.unique_integer([:positive])}"

    {:ok, %{"ImportTableDescription" => %{"ImportArn" => arn}}} =
      DynamoDBWire.request(moto, "ImportTable", %{
        "S3BucketSource" => %{
          "S3Bucket" => bucket,
          # DynamoDB's guidance for importing an export: the data folder of one export.
          "S3KeyPrefix" => "#{store_prefix}/exports/source/AWSDynamoDB/#{export_id}/data/"
        },
        "InputFormat" => "DYNAMODB_JSON",
        "InputCompressionType" => "GZIP",
        "TableCreationParameters" => %{
          "TableName" => table,
          "BillingMode" => "PAY_PER_REQUEST",
          "AttributeDefinitions" => [%{"AttributeName" => "id", "AttributeType" => "S"}],
          "KeySchema" => [%{"AttributeName" => "id", "KeyType" => "HASH"}]
        }
      })

    description = await_import(moto, arn, 100)
    assert description["ImportStatus"] == "COMPLETED", inspect(description)
    assert description["ErrorCount"] == 0
    assert description["ImportedItemCount"] == @items

    imported = normalise(DynamoDBWire.scan_all(moto, table))
    assert length(imported) == @items

    for {expected, got} <- Enum.zip(ctx.moto_items, imported) do
      assert got == expected
    end

    # And our importer reads the same export back from S3.
    assert {:ok, %{items: @items}} = Stream.import(s3, "exports/source", @target)
    assert normalise(DynamoDBWire.scan_all(ctx.endpoint, @target)) == ctx.moto_items
  end

  defp await_import(endpoint, arn, tries) do
    {:ok, %{"ImportTableDescription" => description}} =
      DynamoDBWire.request(endpoint, "DescribeImport", %{"ImportArn" => arn})

    if description["ImportStatus"] == "IN_PROGRESS" and tries > 0 do
      Process.sleep(100)
      await_import(endpoint, arn, tries - 1)
    else
      description
    end
  end
end

defmodule Dynamo.TableTransferArgumentsTest do
  # export/4, import/4 and read_export/3 check their arguments with the same rules, in the
  # caller, before any request: these need no server.
  use ExUnit.Case, async: true

  alias Dynamo.Table.Stream

  setup do
    %{store: ObjectStoreX.new!(:memory)}
  end

  test "resume and overwrite together are refused", %{store: store} do
    error =
      assert_raise ArgumentError, fn ->
        Stream.export("some_table", store, "p", resume: true, overwrite: true)
      end

    assert error.message =~ "Dynamo.Table.Stream.export/4: resume and overwrite: true"
  end

  test "a prefix with an empty, . or .. segment is refused by all three", %{store: store} do
    for prefix <- ["a//b", "a/../b", "./a"] do
      for {function, call} <- [
            {"export/4", fn -> Stream.export("some_table", store, prefix) end},
            {"import/4", fn -> Stream.import(store, prefix, "some_table") end},
            {"read_export/3", fn -> Stream.read_export(store, prefix) end}
          ] do
        error = assert_raise ArgumentError, call

        assert error.message =~
                 "Dynamo.Table.Stream.#{function} expects the prefix as a store path"
      end
    end
  end

  test "export ids follow DynamoDB's shape or ours", %{store: store} do
    error =
      assert_raise ArgumentError, fn ->
        Stream.import(store, "p", "some_table", export_id: "../../x")
      end

    assert error.message =~ ":export_id"
    assert error.message =~ "13 or 14 digits, a dash, 8 hex digits"

    assert_raise ArgumentError, ~r/:resume/, fn ->
      Stream.export("some_table", store, "p", resume: "latest")
    end

    # DynamoDB's (14 digits) and ours (13) pass the check; the store then has no such export.
    for id <- ["01234567890123-a1b2c3d4", "1796126052724-6587b93c"] do
      assert {:error, %ObjectStoreX.Error{kind: :not_found}} =
               Stream.import(store, "p", "some_table", export_id: id)
    end
  end

  test "a write capacity too low for the stall bound is refused", %{store: store} do
    error =
      assert_raise ArgumentError, fn ->
        Stream.import(store, "p", "some_table", max_write_capacity: 0.1, timeout: 60_000)
      end

    assert error.message =~ "Dynamo.Table.Stream.import/4: max_write_capacity: 0.1"
    assert error.message =~ "timeout: 60000 ms"

    assert {:error, %ObjectStoreX.Error{kind: :not_found}} =
             Stream.import(store, "p", "some_table", max_write_capacity: 1, timeout: 60_000)
  end
end
