defmodule CloudStreams.BoundsTest do
  # The values that took the VM down (issue 12): each is refused with an ArgumentError naming
  # the option and its bound, and the largest accepted value works on a small object, where
  # the buffers follow the object's size (native/cloud_streams_core/tests/ check the sizes).
  use ExUnit.Case, async: true

  alias ObjectStoreX.Stream, as: OS

  setup do
    {:ok, memory} = ObjectStoreX.new(:memory)

    root =
      Path.join(
        System.tmp_dir!(),
        "cs_bounds_#{System.pid()}_#{System.unique_integer([:positive])}"
      )

    {:ok, local} = ObjectStoreX.new(:local, root: root, create_root: true)
    on_exit(fn -> File.rm_rf!(root) end)

    for store <- [memory, local], do: :ok = ObjectStoreX.put(store, "small", "0123456789")
    %{stores: [memory, local]}
  end

  test "chunk sizes past 1 GiB are refused; 1 GiB on a 10-byte object reads 10 bytes", %{
    stores: stores
  } do
    for store <- stores do
      assert_raise ArgumentError,
                   ~r/:chunk_size of ObjectStoreX.Stream.download\/3: expected an integer from 1 to 1073741824/,
                   fn ->
                     OS.download(store, "small", chunk_size: 2 ** 35)
                   end

      assert [chunk] = OS.download(store, "small", chunk_size: 2 ** 30) |> Enum.to_list()
      assert chunk == "0123456789"
      assert :binary.referenced_byte_size(chunk) == 10
    end
  end

  test "listing batches past 1,000,000 are refused; the largest lists what is there", %{
    stores: stores
  } do
    for store <- stores do
      assert_raise ArgumentError, ~r/:batch_size .* from 1 to 1000000/, fn ->
        OS.list_stream(store, batch_size: 2 ** 28)
      end

      assert [%ObjectStoreX.Meta{location: "small"}] =
               OS.list_stream(store, batch_size: 1_000_000) |> Enum.to_list()
    end
  end

  test "DynamoDB's own limits bound segments, limits and read capacity" do
    for {opts, message} <- [
          {[segments: 1_000_001], ~r/:segments .* from 1 to 1000000/},
          {[segments: 2 ** 31], ~r/:segments/},
          {[page_size: 2 ** 31], ~r/:page_size .* from 1 to 2147483647/},
          {[max_read_capacity: 1.0e-300], ~r/:max_read_capacity .* from 0.001/},
          {[timeout: 2 ** 32], ~r/:timeout .* 4294967295/}
        ] do
      assert_raise ArgumentError, message, fn ->
        Dynamo.Table.Stream.parallel_scan(DocUser, opts)
      end
    end

    assert_raise ArgumentError, ~r/:limit .* from 1 to 2147483647/, fn ->
      Dynamo.Table.scan(DocUser, limit: 2 ** 31)
    end

    assert_raise ArgumentError, ~r/:max_attempts .* from 1 to 100/, fn ->
      Dynamo.Table.get_item(DocUser, [id: "u"], config: [max_attempts: 2 ** 32])
    end
  end

  test "a module that is not a schema is an ArgumentError naming the function" do
    for fun <- [
          fn -> Dynamo.Table.get_item(Enum, id: "u") end,
          fn -> Dynamo.Table.Stream.scan(:not_a_module) end,
          fn -> Dynamo.Table.create_table(String) end
        ] do
      assert_raise ArgumentError, ~r/expects a Dynamo.Schema module/, fun
    end
  end

  test "invalid UTF-8 is refused in Elixir, naming the option", %{stores: [store | _]} do
    assert_raise ArgumentError,
                 ~r/:prefix of ObjectStoreX.list\/2: expected nil or a string \(valid UTF-8\)/,
                 fn ->
                   ObjectStoreX.list(store, prefix: <<255>>)
                 end

    assert_raise ArgumentError, ~r/:if_none_match/, fn ->
      ObjectStoreX.get(store, "small", if_none_match: <<255>>)
    end

    assert_raise ArgumentError, ~r/:metadata/, fn ->
      ObjectStoreX.put(store, "x", "x", metadata: %{"k" => <<255>>})
    end

    assert_raise ArgumentError, ~r/:region of Dynamo configuration/, fn ->
      Dynamo.Table.get_item(DocUser, [id: "u"], config: [region: <<255>>])
    end

    assert_raise ArgumentError, ~r/:id of DocUser .* valid UTF-8/, fn ->
      Dynamo.Table.put_item(%DocUser{id: <<255, 254>>})
    end
  end
end
