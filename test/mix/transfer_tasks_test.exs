defmodule Mix.Tasks.CloudStreams.TransferTasksTest do
  # `mix cloud_streams.export` and `mix cloud_streams.import` run as an operator runs them:
  # the task's run/1 with command-line arguments, against DynamoDB Local and a local directory.
  use ExUnit.Case, async: false
  @moduletag :dynamodb

  import ExUnit.CaptureIO

  alias Mix.Tasks.CloudStreams.{Export, Import}

  defmodule Source do
    use Dynamo.Schema

    item do
      table_name("cloud_streams_mix_export_source")
      field(:id, :string, partition_key: true)
      field(:n, :integer)
      field(:tags, :any)
    end
  end

  defmodule Target do
    use Dynamo.Schema

    item do
      table_name("cloud_streams_mix_export_target")
      field(:id, :string, partition_key: true)
      field(:n, :integer)
      field(:tags, :any)
    end
  end

  @items 300

  setup_all do
    for schema <- [Source, Target] do
      _ = Dynamo.Table.delete_table(schema)
      :ok = Dynamo.Table.create_table(schema)
    end

    items =
      for i <- 1..@items,
          do: %Source{id: "item-#{i}", n: i * 1_000_000_007, tags: %{"i" => i, "l" => [i, "x"]}}

    for batch <- Enum.chunk_every(items, 25),
        do: {:ok, _} = Dynamo.Table.batch_write_item(Source, batch)

    on_exit(fn -> for schema <- [Source, Target], do: Dynamo.Table.delete_table(schema) end)
    :ok
  end

  setup do
    Mix.shell(Mix.Shell.Process)
    root = Path.join(System.tmp_dir!(), "cloud_streams_mix_#{System.unique_integer([:positive])}")
    File.mkdir_p!(root)
    on_exit(fn -> File.rm_rf!(root) end)
    on_exit(fn -> Mix.shell(Mix.Shell.IO) end)
    %{url: "file://" <> root, root: root}
  end

  test "exports a table and imports it into another, with progress and a summary", ctx do
    stderr =
      capture_io(:stderr, fn ->
        Export.run([
          "cloud_streams_mix_export_source",
          ctx.url,
          "--prefix",
          "backups/source",
          "--segments",
          "3",
          "--page-size",
          "50"
        ])
      end)

    assert_received {:mix_shell, :info, [summary]}
    assert summary =~ ~r/^exported 300 items in \d+ files/
    assert summary =~ ~r"backups/source/AWSDynamoDB/\d{13}-[0-9a-f]{8}/manifest-summary\.json$"
    # Not a terminal here: one line every 5 s at most, so at least the first report.
    assert stderr =~ "export: "
    assert [_export_id] = File.ls!(Path.join(ctx.root, "backups/source/AWSDynamoDB"))

    capture_io(:stderr, fn ->
      Import.run([ctx.url, "cloud_streams_mix_export_target", "--prefix", "backups/source"])
    end)

    assert_received {:mix_shell, :info, ["imported 300 items in " <> _]}

    source = Dynamo.Table.Stream.scan(Source) |> Enum.sort_by(& &1.id)
    target = Dynamo.Table.Stream.scan(Target) |> Enum.sort_by(& &1.id)
    assert length(target) == @items
    assert Enum.map(target, &Map.from_struct/1) == Enum.map(source, &Map.from_struct/1)
  end

  test "a prefix holding an export is refused unless --overwrite or --resume", ctx do
    args = ["cloud_streams_mix_export_source", ctx.url, "--prefix", "again"]
    capture_io(:stderr, fn -> Export.run(args) end)

    error = assert_raise Mix.Error, fn -> capture_io(:stderr, fn -> Export.run(args) end) end

    assert error.message =~
             "mix cloud_streams.export failed (table cloud_streams_mix_export_source): "

    assert error.message =~ "overwrite"

    capture_io(:stderr, fn -> Export.run(args ++ ["--overwrite"]) end)
    assert [_one] = File.ls!(Path.join(ctx.root, "again/AWSDynamoDB"))
  end

  test "a missing table fails with the error, and a non-zero exit", ctx do
    error =
      assert_raise Mix.Error, fn ->
        capture_io(:stderr, fn -> Export.run(["cloud_streams_no_such_table", ctx.url]) end)
      end

    assert error.message =~
             "mix cloud_streams.export failed (table cloud_streams_no_such_table): "

    assert error.message =~ "non-existent table"
  end

  describe "bad command lines are refused before any request" do
    test "an unknown switch, with a suggestion", ctx do
      error =
        assert_raise Mix.Error, fn -> Export.run(["some_table", ctx.url, "--segmnts", "4"]) end

      assert error.message ==
               "mix cloud_streams.export: unknown switch --segmnts; did you mean --segments?"

      error = assert_raise Mix.Error, fn -> Import.run([ctx.url, "some_table", "--resum"]) end
      assert error.message =~ "unknown switch --resum; did you mean --resume?"
    end

    test "a switch of the wrong type", ctx do
      error =
        assert_raise Mix.Error, fn ->
          Export.run(["some_table", ctx.url, "--segments", "four"])
        end

      assert error.message ==
               ~s(mix cloud_streams.export: --segments expects an integer, got: "four")
    end

    test "missing or extra arguments", ctx do
      error = assert_raise Mix.Error, fn -> Export.run(["t"]) end
      assert error.message =~ "mix cloud_streams.export expects TABLE STORE_URL"

      error = assert_raise Mix.Error, fn -> Import.run([ctx.url, "some_table", "extra"]) end
      assert error.message =~ "mix cloud_streams.import expects STORE_URL TABLE"
    end

    test "a format the export does not write", ctx do
      error =
        assert_raise Mix.Error, fn -> Export.run(["some_table", ctx.url, "--format", "csv"]) end

      assert error.message =~ ~s(--format is dynamodb_json or ndjson, got: "csv")
    end

    test "an option value the library refuses names the function and the option", ctx do
      error =
        assert_raise Mix.Error, fn -> Export.run(["some_table", ctx.url, "--segments", "0"]) end

      assert error.message =~ "mix cloud_streams.export: "
      assert error.message =~ "Dynamo.Table.Stream.export/4"
      assert error.message =~ "segments"
    end

    test "store switches on a store that is not S3", ctx do
      error =
        assert_raise Mix.Error, fn ->
          Export.run(["some_table", ctx.url, "--store-endpoint", "http://localhost:1"])
        end

      assert error.message =~ "apply to s3:// URLs only"
    end

    test "an unsupported store URL" do
      error = assert_raise Mix.Error, fn -> Export.run(["t", "ftp://host/x"]) end
      assert error.message =~ "mix cloud_streams.export: unsupported store URL"
    end
  end
end
