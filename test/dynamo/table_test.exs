defmodule Dynamo.TableTest do
  # Dynamo.Table and Dynamo.Schema against DynamoDB Local (native/cloud_streams_nif/src/dynamo).
  use ExUnit.Case, async: false
  @moduletag :dynamodb

  alias Dynamo.{Error, Table}

  defmodule Doc do
    use Dynamo.Schema

    item do
      table_name("cloud_streams_table_test")

      field(:tenant, :string, partition_key: true)
      field(:id, :integer, sort_key: true)
      field(:title, :string, default: "untitled")
      field(:score, :float)
      field(:big, :integer)
      field(:blob, :binary)
      field(:active, :boolean, default: true)
      field(:tags, :string_set)
      field(:ratings, :number_set)
      field(:meta, :map)
      field(:history, :list)
      field(:created_at, :datetime)
    end
  end

  setup_all do
    _ = Table.delete_table(Doc)
    :ok = Table.create_table(Doc)
    on_exit(fn -> Table.delete_table(Doc) end)
    :ok
  end

  defp doc(id, fields \\ []), do: struct(%Doc{tenant: "t", id: id}, fields)

  test "every type round-trips losslessly" do
    at = ~U[2026-11-22 10:11:12.123456Z]

    original =
      doc(1,
        title: "hello",
        score: 10.0,
        big: 123_456_789_012_345_678_901_234_567_890,
        blob: <<0, 255, 1, 2>>,
        active: false,
        tags: MapSet.new(["a", "b"]),
        ratings: MapSet.new([1, 2.5]),
        meta: %{"nested" => %{"n" => 1, "f" => 1.5, "l" => [true, nil, "x"]}},
        history: [1, "two", 3.0],
        created_at: at
      )

    assert :ok = Table.put_item(original)
    assert {:ok, read} = Table.get_item(Doc, tenant: "t", id: 1)
    assert read == original
    assert is_float(read.score) and read.score == 10.0
  end

  test "missing fields take their defaults; undeclared attributes are kept in __extra__" do
    :ok = Table.put_item(%{doc(2) | __extra__: %{"legacy" => "kept", "n" => 7}})

    assert {:ok, %Doc{title: "untitled", active: true, score: nil} = read} =
             Table.get_item(Doc, %{tenant: "t", id: 2})

    assert read.__extra__ == %{"legacy" => "kept", "n" => 7}
  end

  test "get of a missing item is nil; delete returns the old item" do
    assert {:ok, nil} = Table.get_item(Doc, tenant: "t", id: 999)
    :ok = Table.put_item(doc(3, title: "bye"))
    assert {:ok, %Doc{title: "bye"}} = Table.delete_item(Doc, tenant: "t", id: 3)
    assert {:ok, nil} = Table.delete_item(Doc, tenant: "t", id: 3)
  end

  test "conditions: a failed condition is :precondition_failed, not retryable" do
    :ok = Table.put_item(doc(4))

    assert {:error,
            %Error{
              kind: :precondition_failed,
              type: :conditional_check_failed,
              code: "ConditionalCheckFailedException",
              status: 400
            } = error} =
             Table.put_item(doc(4), condition_expression: "attribute_not_exists(tenant)")

    refute Error.retryable?(error)

    # The bang form raises the same error.
    raised =
      assert_raise Error, fn ->
        Table.put_item!(doc(4), condition_expression: "attribute_not_exists(tenant)")
      end

    assert %Error{raised | __exception__: true} == error
    assert Exception.message(raised) =~ "(precondition_failed) The conditional request failed"
  end

  test "update_item with set, remove and add" do
    :ok = Table.put_item(doc(5, title: "a", big: 1, tags: MapSet.new(["x"])))

    assert {:ok, %Doc{title: "b", big: 11, tags: tags, score: nil}} =
             Table.update_item(Doc, [tenant: "t", id: 5],
               set: %{title: "b"},
               add: %{big: 10, tags: MapSet.new(["y"])},
               remove: [:score]
             )

    assert tags == MapSet.new(["x", "y"])

    assert {:error, %Error{type: :conditional_check_failed}} =
             Table.update_item(Doc, [tenant: "t", id: 5],
               set: %{title: "c"},
               condition_expression: "title = :t",
               expression_attribute_values: %{":t" => %{"S" => "nope"}}
             )
  end

  test "scan pages resume from last_evaluated_key; filters take DynamoDB JSON or plain values" do
    {:ok, 30} =
      Table.batch_write_item(Doc, for(i <- 100..129, do: doc(i, active: rem(i, 2) == 0)))

    pages =
      Stream.unfold(:start, fn
        nil ->
          nil

        key ->
          opts = [
            limit: 7,
            filter_expression: "id BETWEEN :min AND :max",
            expression_attribute_values: %{":min" => 100, ":max" => 129}
          ]

          opts = if key == :start, do: opts, else: opts ++ [exclusive_start_key: key]
          {:ok, %{items: items, last_evaluated_key: next}} = Table.scan(Doc, opts)
          {items, next}
      end)
      |> Enum.to_list()

    assert pages |> List.flatten() |> Enum.map(& &1.id) |> Enum.sort() == Enum.to_list(100..129)

    {:ok, %{items: active}} =
      Table.scan(Doc,
        filter_expression: "active = :val AND id BETWEEN :min AND :max",
        expression_attribute_values: %{
          ":val" => %{"BOOL" => true},
          ":min" => %{"N" => "100"},
          ":max" => 129
        }
      )

    assert length(active) == 15
  end

  test "query by key condition, in both orders" do
    {:ok, _} = Table.batch_write_item(Doc, for(i <- 200..204, do: doc(i)))

    opts = [
      key_condition_expression: "tenant = :t AND id BETWEEN :a AND :b",
      expression_attribute_values: %{":t" => "t", ":a" => 200, ":b" => 204}
    ]

    assert {:ok, %{items: items}} = Table.query(Doc, opts)
    assert Enum.map(items, & &1.id) == [200, 201, 202, 203, 204]
    assert {:ok, %{items: desc}} = Table.query(Doc, opts ++ [scan_index_forward: false])
    assert Enum.map(desc, & &1.id) == [204, 203, 202, 201, 200]
  end

  test "batch writes and gets beyond one request's limits" do
    assert {:ok, 130} = Table.batch_write_item(Doc, for(i <- 1000..1129, do: doc(i)))
    keys = for i <- 1000..1129, do: [tenant: "t", id: i]
    assert {:ok, items} = Table.batch_get_item(Doc, keys ++ [[tenant: "t", id: 5555]])
    assert length(items) == 130
    assert {:ok, 130} = Table.batch_write_item(Doc, for(k <- keys, do: {:delete, k}))
  end

  test "a table that does not exist is :resource_not_found" do
    defmodule Ghost do
      use Dynamo.Schema

      item do
        table_name("cloud_streams_no_such_table")
        field(:id, :string, partition_key: true)
      end
    end

    assert {:error, %Error{kind: :not_found, type: :resource_not_found}} =
             Table.get_item(Ghost, id: "x")

    assert_raise Error, ~r/not_found/, fn -> Table.get_item!(Ghost, id: "x") end
    assert_raise Error, ~r/not_found/, fn -> Table.scan!(Ghost) end
  end

  test "a batch write failing part-way says how many requests were applied" do
    # Requests go 25 at a time: the first 25 are applied, then DynamoDB refuses a group that
    # names one key twice ("Provided list of item keys contains duplicates").
    first = for i <- 2000..2024, do: doc(i)
    duplicated = [doc(2100), doc(2101), doc(2100)]

    assert {:error, %Error{kind: :invalid_argument, applied: 25} = error} =
             Table.batch_write_item(Doc, first ++ duplicated)

    assert error.message =~ "duplicates"
    {:ok, written} = Table.batch_get_item(Doc, for(i <- 2000..2101, do: [tenant: "t", id: i]))
    assert written |> Enum.map(& &1.id) |> Enum.sort() == Enum.to_list(2000..2024)

    # Errors of other calls say nothing about applied requests.
    assert {:error, %Error{applied: nil}} =
             Table.put_item(doc(2000), condition_expression: "attribute_not_exists(tenant)")
  end

  defmodule Indexed do
    use Dynamo.Schema

    item do
      table_name("cloud_streams_table_test_indexed")

      field(:id, :string, partition_key: true)
      field(:email, :string)
      field(:team, :string)
      field(:joined, :integer)
    end
  end

  test "global secondary indexes: created with the table, queried by index_name" do
    _ = Table.delete_table(Indexed)

    :ok =
      Table.create_table(Indexed, indexes: [{"by_email", :email}, {"by_team", :team, :joined}])

    on_exit(fn -> Table.delete_table(Indexed) end)

    people =
      for i <- 1..20,
          do: %Indexed{id: "p#{i}", email: "p#{i}@x.io", team: "t#{rem(i, 2)}", joined: i}

    {:ok, 20} = Table.batch_write_item(Indexed, people)

    assert {:ok, %{items: [%Indexed{id: "p7"}]}} =
             Table.query(Indexed,
               index_name: "by_email",
               key_condition_expression: "email = :e",
               expression_attribute_values: %{":e" => "p7@x.io"}
             )

    joined =
      Dynamo.Table.Stream.query(Indexed,
        index_name: "by_team",
        key_condition_expression: "team = :t AND joined > :after",
        expression_attribute_values: %{":t" => "t1", ":after" => 10},
        scan_index_forward: false,
        page_size: 2
      )
      |> Enum.map(& &1.joined)

    assert joined == [19, 17, 15, 13, 11]

    assert_raise ArgumentError, ~r/:nope is not a field/, fn ->
      Table.create_table(Indexed, indexes: [{"x", :nope}])
    end

    assert_raise ArgumentError, ~r/invalid (index|value for option :indexes)/, fn ->
      Table.create_table(Indexed, indexes: [:x])
    end
  end

  test "select: :count counts without items; segments split a scan" do
    {:ok, 12} = Table.batch_write_item(Doc, for(i <- 300..311, do: doc(i, title: "counted")))

    opts = [filter_expression: "title = :t", expression_attribute_values: %{":t" => "counted"}]
    assert {:ok, %{items: [], count: 12}} = Table.scan(Doc, opts ++ [select: :count])

    ids =
      for segment <- 0..2 do
        {:ok, %{items: items, last_evaluated_key: nil}} =
          Table.scan(Doc, opts ++ [segment: segment, total_segments: 3])

        Enum.map(items, & &1.id)
      end

    assert ids |> List.flatten() |> Enum.sort() == Enum.to_list(300..311)
  end

  test "DynamoDB's own refusals are {:error, %Dynamo.Error{}} with its message" do
    assert {:error,
            %Error{
              kind: :invalid_argument,
              type: :validation,
              code: "ValidationException",
              retryable: false
            } = error} = Table.scan(Doc, filter_expression: "title = = :t")

    assert error.message =~ "Invalid FilterExpression"

    assert {:error, %Error{type: :validation}} =
             Table.scan(Doc, filter_expression: "title = :undefined_value")
  end

  test "an unreachable endpoint is a retryable error, and no secret shows" do
    config = [
      endpoint: "http://127.0.0.1:1",
      access_key_id: "AKIDEXAMPLE",
      secret_access_key: "SECRETVALUE42",
      max_attempts: 1
    ]

    assert {:error, %Error{retryable: true} = error} =
             Table.get_item(Doc, [tenant: "t", id: 1], config: config)

    refute inspect(error) =~ "SECRETVALUE42"
    refute Exception.message(error) =~ "SECRETVALUE42"
  end

  test "bad input raises ArgumentError naming the problem" do
    for {fun, message} <- [
          {fn -> Table.scan(Doc, consistent_read: "yes") end, ~r/:consistent_read/},
          {fn -> Table.scan(Doc, limit: 0) end, ~r/:limit/},
          {fn -> Table.scan(Doc, select: :some) end, ~r/:select/},
          {fn -> Table.scan(Doc, expression_attribute_names: [1]) end,
           ~r/:expression_attribute_names .* expected nil or a map/},
          {fn -> Table.scan(Doc, expression_attribute_values: %{":v" => {:tuple}}) end,
           ~r/cannot store \{:tuple\}/},
          {fn -> Table.scan(Doc, expression_attribute_values: %{":v" => %{"N" => :x}}) end,
           ~r/invalid DynamoDB JSON/},
          {fn -> Table.query(Doc, []) end, ~r/missing required option :key_condition_expression/},
          {fn -> Table.update_item(Doc, [tenant: "t", id: 1], []) end, ~r/needs set:/},
          {fn -> Table.update_item(Doc, [tenant: "t", id: 1], set: %{nope: 1}) end,
           ~r/:nope is not a field/},
          {fn -> Table.batch_write_item(Doc, [%Indexed{id: "x"}]) end,
           ~r/invalid batch write request/},
          {fn -> Table.batch_get_item(Doc, [[tenant: "t"]]) end, ~r/missing key field :id/},
          {fn -> Table.get_item(Doc, "t") end, ~r/keyword list or map/},
          {fn -> Table.get_item(Doc, [tenant: "t", id: 1], config: [region: 1]) end, ~r/:region/},
          {fn -> Table.get_item(Doc, [tenant: "t", id: 1], config: [bogus: 1]) end,
           ~r/unknown option :bogus/},
          {fn -> Table.put_item(doc(1, big: 1.5)) end, ~r/field :big .* cannot hold 1.5/},
          {fn -> Table.put_item(doc(1, created_at: "yesterday")) end, ~r/:created_at/},
          {fn -> Table.put_item(doc(1, meta: %{1 => 2})) end, ~r/map keys/}
        ] do
      assert_raise ArgumentError, message, fun
    end

    assert_raise ArgumentError, ~r/no value for its key field :id/, fn ->
      Table.put_item(%Doc{tenant: "t"})
    end

    assert_raise ArgumentError, ~r/field :score .* cannot hold "high"/, fn ->
      Table.put_item(doc(1, score: "high"))
    end

    assert_raise ArgumentError, ~r/missing key field :id/, fn ->
      Table.get_item(Doc, tenant: "t")
    end

    assert_raise ArgumentError, ~r/are not key fields/, fn ->
      Table.get_item(Doc, tenant: "t", id: 1, title: "x")
    end

    assert_raise ArgumentError, ~r/unknown option :limt/, fn -> Table.scan(Doc, limt: 1) end

    assert_raise ArgumentError, ~r/segment: and total_segments: go together/, fn ->
      Table.scan(Doc, segment: 1)
    end

    assert_raise ArgumentError, ~r/cannot store an empty set/, fn ->
      Table.put_item(doc(1, tags: MapSet.new()))
    end

    assert_raise ArgumentError, ~r/unknown type :text/, fn ->
      Dynamo.Schema.__field__(Doc, :x, :text, [])
    end
  end
end
