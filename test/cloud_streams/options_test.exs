defmodule CloudStreams.OptionsTest do
  # The option validator (CloudStreams.Options) and the docs generated from the schemas.
  use ExUnit.Case, async: true

  import ExUnit.CaptureIO

  alias CloudStreams.{BadInputSweep, Options}

  @schema [
    chunk_size: [type: {:in, 1..1024}, default: 16, doc: "bytes per chunk."],
    old_chunk: [type: {:in, 1..1024}, deprecated: "use :chunk_size"],
    name: [type: :string, required: true, doc: "a name."],
    client: [
      type: {:or_nil, :keyword_list},
      keys: [timeout: [type: :timeout, default: 5_000, doc: "ms."]],
      doc: "client settings:"
    ],
    rate: [type: {:or_nil, {:number, 0.5, 10}}, doc: "per second."]
  ]

  test "values are checked against their types and bounds" do
    assert %{chunk_size: 16, name: "n", client: nil, rate: nil} =
             Options.validate!([name: "n"], @schema, "f/1")

    for {opts, message} <- [
          {[name: "n", chunk_size: 1025],
           ~r/:chunk_size of f\/1: expected an integer from 1 to 1024/},
          {[name: "n", chunk_size: 1.0], ~r/:chunk_size/},
          {[name: <<255>>], ~r/:name of f\/1: expected a string \(valid UTF-8\)/},
          {[], ~r/missing required option :name for f\/1/},
          {[name: "n", rate: 1.0e-300], ~r/:rate .* from 0.5 to 10/},
          {[name: "n", client: [timeout: 2 ** 32]], ~r/:timeout of option :client of f\/1/},
          {[name: "n", client: %{}], ~r/:client of f\/1: expected nil or a keyword list/},
          {%{name: "n"}, ~r/f\/1 expects a keyword list of options/}
        ] do
      assert_raise ArgumentError, message, fn -> Options.validate!(opts, @schema, "f/1") end
    end
  end

  test "nested keys come back as a map with their defaults" do
    assert %{client: %{timeout: 5_000}} =
             Options.validate!([name: "n", client: []], @schema, "f/1")
  end

  test "an unknown option gets a suggestion when one is close" do
    assert_raise ArgumentError,
                 ~r/unknown option :chunk_sise for f\/1; did you mean :chunk_size\? known/,
                 fn ->
                   Options.validate!([name: "n", chunk_sise: 1], @schema, "f/1")
                 end

    error = assert_raise ArgumentError, fn -> Options.validate!([zzz: 1], @schema, "f/1") end
    refute error.message =~ "did you mean"
  end

  test "a deprecated option still works and warns" do
    warning =
      capture_io(:stderr, fn ->
        assert %{old_chunk: 8} = Options.validate!([name: "n", old_chunk: 8], @schema, "f/1")
      end)

    assert warning =~ "option :old_chunk of f/1 is deprecated: use :chunk_size"
  end

  test "the renamed library options keep their old names" do
    {:ok, store} = ObjectStoreX.new(:memory)
    :ok = ObjectStoreX.put(store, "f", "0123456789")

    warning =
      capture_io(:stderr, fn ->
        assert ObjectStoreX.Stream.download(store, "f", prefetch: 4) |> Enum.join() ==
                 "0123456789"

        assert [_] =
                 ObjectStoreX.Stream.list_stream(store, prefetch: 1, page_size: 5)
                 |> Enum.to_list()
      end)

    assert warning =~ "use :prefetch_bytes"
    assert warning =~ "use :prefetch_pages"
    assert warning =~ "use :batch_size"
  end

  test "docs list every option with its default and bounds" do
    docs = Options.docs(@schema)
    assert docs =~ "* `:chunk_size` - bytes per chunk. From 1 to 1,024. Default: `16`."
    assert docs =~ "* `:old_chunk` - deprecated: use :chunk_size."
    assert docs =~ "* `:name` - a name. Required."
    assert docs =~ "    * `:timeout` - ms. At most 4,294,967,295 ms. Default: `5000`."
  end

  # Docs drift: every option a public function accepts (read from its own unknown-option
  # error, that is from its schema) appears in its @doc or its module's @moduledoc.
  defp documented(store),
    do: [
      {ObjectStoreX, :new, 2, &ObjectStoreX.new(:s3, &1)},
      {ObjectStoreX, :new, 2, &ObjectStoreX.new(:local, &1)},
      {ObjectStoreX, :new, 2, &ObjectStoreX.new(:azure, &1)},
      {ObjectStoreX, :new, 2, &ObjectStoreX.new(:gcs, &1)},
      {ObjectStoreX, :new, 2, &ObjectStoreX.new(:http, &1)},
      {ObjectStoreX, :put, 4, &ObjectStoreX.put(store, "p", "x", &1)},
      {ObjectStoreX, :get, 3, &ObjectStoreX.get(store, "p", &1)},
      {ObjectStoreX, :list, 2, &ObjectStoreX.list(store, &1)},
      {ObjectStoreX, :signed_url, 3, &ObjectStoreX.signed_url(store, "p", &1)},
      {ObjectStoreX.Stream, :download, 3, &ObjectStoreX.Stream.download(store, "p", &1)},
      {ObjectStoreX.Stream, :download_file, 4,
       &ObjectStoreX.Stream.download_file(store, "p", "d", &1)},
      {ObjectStoreX.Stream, :upload, 4, &ObjectStoreX.Stream.upload([], store, "p", &1)},
      {ObjectStoreX.Stream, :list_stream, 2, &ObjectStoreX.Stream.list_stream(store, &1)},
      {Dynamo.Table, :put_item, 2, &Dynamo.Table.put_item(%DocUser{id: "u"}, &1)},
      {Dynamo.Table, :get_item, 3, &Dynamo.Table.get_item(DocUser, [id: "u"], &1)},
      {Dynamo.Table, :delete_item, 3, &Dynamo.Table.delete_item(DocUser, [id: "u"], &1)},
      {Dynamo.Table, :update_item, 3, &Dynamo.Table.update_item(DocUser, [id: "u"], &1)},
      {Dynamo.Table, :scan, 2, &Dynamo.Table.scan(DocUser, &1)},
      {Dynamo.Table, :query, 2, &Dynamo.Table.query(DocUser, &1)},
      {Dynamo.Table, :batch_write_item, 3, &Dynamo.Table.batch_write_item(DocUser, [], &1)},
      {Dynamo.Table, :batch_get_item, 3, &Dynamo.Table.batch_get_item(DocUser, [], &1)},
      {Dynamo.Table, :create_table, 2, &Dynamo.Table.create_table(DocUser, &1)},
      {Dynamo.Table, :delete_table, 2, &Dynamo.Table.delete_table(DocUser, &1)},
      {Dynamo.Table.Stream, :scan, 2, &Dynamo.Table.Stream.scan(DocUser, &1)},
      {Dynamo.Table.Stream, :parallel_scan, 2, &Dynamo.Table.Stream.parallel_scan(DocUser, &1)},
      {Dynamo.Table.Stream, :query, 2, &Dynamo.Table.Stream.query(DocUser, &1)},
      {Dynamo.Table.Stream.Export, nil, nil,
       &Dynamo.Table.Stream.export(DocUser, store, "p", &1)},
      {Dynamo.Table.Stream.Import, :import, 4,
       &Dynamo.Table.Stream.Import.import(store, "", "table", &1)},
      {Dynamo.Table.Stream.Import, :read_export, 3,
       &Dynamo.Table.Stream.Import.read_export(store, "", &1)},
      {Dynamo.Config, nil, nil, &Dynamo.Table.get_item(DocUser, [id: "u"], config: &1)},
      {CloudStreams.Synthetic, :stream, 1, &CloudStreams.Synthetic.stream/1}
    ]

  test "every option of every public function is documented" do
    {:ok, store} = ObjectStoreX.new(:memory)

    for {module, fun, arity, call} <- documented(store) do
      docs = docs(module, fun, arity)

      for name <- BadInputSweep.option_names(call) do
        assert docs =~ "`#{inspect(name)}`" or docs =~ "`#{name}:`",
               "#{inspect(module)}.#{fun}/#{arity} accepts #{inspect(name)} but does not document it"
      end
    end
  end

  defp docs(module, fun, arity) do
    {:docs_v1, _, _, _, moduledoc, _, entries} = Code.fetch_docs(module)
    moduledoc = if is_map(moduledoc), do: moduledoc["en"], else: ""

    fun_doc =
      Enum.find_value(entries, "", fn
        {{:function, ^fun, ^arity}, _, _, %{"en" => doc}, _} -> doc
        _ -> nil
      end)

    moduledoc <> fun_doc
  end
end
