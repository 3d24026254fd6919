defmodule Dynamo.NestingTest do
  # DynamoDB nests values at most 32 levels deep ("Nested attribute depth" in the DynamoDB
  # developer guide's quotas page). DynamoDB Local 2.x counts the attribute as level 1: it
  # takes 31 lists inside one another holding a string, and refuses 32 lists, even when the
  # innermost is empty ("Nesting Levels have exceeded supported limits"). Deeper values are refused in Elixir with an
  # ArgumentError naming the function and the option; the NIF's own decoder stops at the same
  # depth, so a value nested thousands of levels deep can never overflow a scheduler's stack.
  # Those cases run in a peer VM: a crash there would be seen as the peer going down, not as
  # this VM dying.
  use ExUnit.Case, async: false
  @moduletag :dynamodb

  alias Dynamo.Table

  setup_all do
    _ = Table.delete_table(NestedDoc)
    :ok = Table.create_table(NestedDoc)
    on_exit(fn -> Table.delete_table(NestedDoc) end)
    :ok
  end

  defp nested(levels, inner \\ "x"), do: Enum.reduce(1..levels, inner, fn _, acc -> [acc] end)

  defp tagged(levels), do: Enum.reduce(1..levels, {:s, "x"}, fn _, acc -> {:l, [acc]} end)

  test "31 lists or maps inside one another are stored; 32 are refused before any request" do
    item = %NestedDoc{id: "deep31", value: nested(31)}
    assert :ok = Table.put_item(item)
    assert {:ok, ^item} = Table.get_item(NestedDoc, id: "deep31")

    maps = %NestedDoc{id: "maps31", value: Enum.reduce(1..31, 1, fn _, acc -> %{"m" => acc} end)}
    assert :ok = Table.put_item(maps)
    assert {:ok, ^maps} = Table.get_item(NestedDoc, id: "maps31")

    # 32 lists, the innermost empty: DynamoDB Local refuses this too.
    error =
      assert_raise ArgumentError, fn ->
        Table.put_item(%NestedDoc{id: "deep32", value: nested(31, [])})
      end

    assert error.message =~ "Dynamo.Table.put_item/2"
    assert error.message =~ "field :value"
    assert error.message =~ "more than 31 lists or maps"
    assert {:ok, nil} = Table.get_item(NestedDoc, id: "deep32")

    error =
      assert_raise ArgumentError, fn ->
        Table.scan(NestedDoc,
          filter_expression: "#v = :v",
          expression_attribute_names: %{"#v" => "value"},
          expression_attribute_values: %{":v" => nested(32)}
        )
      end

    assert error.message =~ "Dynamo.Table.scan/2: expression_attribute_values"
  end

  describe "5,000 levels, in a peer VM" do
    setup do
      paths = Enum.flat_map(:code.get_path(), &[~c"-pa", &1])
      {:ok, peer, _node} = :peer.start_link(%{connection: :standard_io, args: paths})
      on_exit(fn -> catch_exit(:peer.stop(peer)) end)
      {:ok, _} = :peer.call(peer, Application, :ensure_all_started, [:cloud_streams])
      %{peer: peer}
    end

    test "through Dynamo.Table: an ArgumentError naming the function and the option",
         %{peer: peer} do
      deep = nested(5_000)

      assert {:error, %ArgumentError{message: message}} =
               call(peer, Table, :put_item, [%NestedDoc{id: "deep", value: deep}])

      assert message =~ "Dynamo.Table.put_item/2: field :value of NestedDoc"

      assert {:error, %ArgumentError{message: message}} =
               call(peer, Table, :scan, [
                 NestedDoc,
                 [
                   filter_expression: "attribute_exists(id)",
                   expression_attribute_values: %{":v" => deep}
                 ]
               ])

      assert message =~ "Dynamo.Table.scan/2: expression_attribute_values"
      assert 3 == :peer.call(peer, Kernel, :+, [1, 2])
    end

    test "straight into the NIF: badarg, and the VM lives on", %{peer: peer} do
      config = Dynamo.Config.native()
      deep = tagged(5_000)
      expressions = %{condition: nil, names: %{}, values: %{}}

      # An item attribute (:any) and an expression value, each 5,000 lists deep.
      assert {:error, %ArgumentError{}} =
               call(peer, CloudStreams.Native, :dynamo_put_item, [
                 config,
                 "cloud_streams_nesting_test",
                 %{"id" => {:s, "deep"}, "value" => deep},
                 expressions,
                 make_ref()
               ])

      assert {:error, %ArgumentError{}} =
               call(peer, CloudStreams.Native, :dynamo_put_item, [
                 config,
                 "cloud_streams_nesting_test",
                 %{"id" => {:s, "deep"}},
                 %{expressions | condition: "value <> :v", values: %{":v" => deep}},
                 make_ref()
               ])

      # 32 lists are one too many there as well; 31 are accepted.
      assert {:error, %ArgumentError{}} =
               call(peer, CloudStreams.Native, :dynamo_put_item, [
                 config,
                 "cloud_streams_nesting_test",
                 %{"id" => {:s, "deep"}, "value" => tagged(32)},
                 expressions,
                 make_ref()
               ])

      # Accepted: the NIF answers with the handle of the request it started.
      assert {:ok, task} =
               call(peer, CloudStreams.Native, :dynamo_put_item, [
                 config,
                 "cloud_streams_nesting_test",
                 %{"id" => {:s, "deep"}, "value" => tagged(31)},
                 expressions,
                 make_ref()
               ])

      assert is_reference(task)

      assert 3 == :peer.call(peer, Kernel, :+, [1, 2])
    end
  end

  # Runs the call in the peer; an exception comes back as {:error, exception}. A crashed peer
  # makes :peer.call exit, which fails the test.
  defp call(peer, module, function, args) do
    {:ok, :peer.call(peer, module, function, args)}
  catch
    :error, exception -> {:error, Exception.normalize(:error, exception, [])}
  end
end
