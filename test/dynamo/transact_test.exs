defmodule Dynamo.TransactTest do
  # Dynamo.Table.transact_write_items/2 and transact_get_items/2 against DynamoDB Local.
  # The shapes of a cancelled transaction (TransactionCanceledException with one
  # CancellationReason per action, code "None" for the actions that were fine) follow the
  # TransactWriteItems API reference and aws-sdk-dynamodb 1.136.0's
  # src/types/_cancellation_reason.rs; DynamoDB Local sends them the same way.
  use ExUnit.Case, async: false
  @moduletag :dynamodb

  alias Dynamo.{Error, Table}

  defmodule Account do
    use Dynamo.Schema

    item do
      table_name("cloud_streams_transact_accounts")

      field(:id, :string, partition_key: true)
      field(:balance, :integer, default: 0)
      field(:meta, :map)
    end
  end

  defmodule Entry do
    use Dynamo.Schema

    item do
      table_name("cloud_streams_transact_entries")

      field(:account, :string, partition_key: true)
      field(:n, :integer, sort_key: true)
      field(:amount, :integer)
    end
  end

  # A table that is never created.
  defmodule Ghost do
    use Dynamo.Schema

    item do
      table_name("cloud_streams_transact_no_such_table")
      field(:id, :string, partition_key: true)
    end
  end

  setup_all do
    for schema <- [Account, Entry] do
      _ = Table.delete_table(schema)
      :ok = Table.create_table(schema)
    end

    on_exit(fn -> for schema <- [Account, Entry], do: Table.delete_table(schema) end)
    :ok
  end

  defp balance(id) do
    {:ok, account} = Table.get_item(Account, [id: id], consistent_read: true)
    account && account.balance
  end

  test "put, update, delete and condition check on two schemas apply together" do
    :ok = Table.put_item(%Account{id: "a1", balance: 100})
    :ok = Table.put_item(%Account{id: "gone", balance: 1})

    assert :ok =
             Table.transact_write_items([
               {:update, Account, [id: "a1"],
                update_expression: "SET balance = balance - :amount",
                condition_expression: "balance >= :amount",
                expression_attribute_values: %{":amount" => 30}},
               {:put, %Account{id: "a2", balance: 30, meta: %{"S" => "small"}}},
               {:put, %Entry{account: "a1", n: 1, amount: -30},
                condition_expression: "attribute_not_exists(account)"},
               {:delete, Account, [id: "gone"]},
               {:condition_check, Entry, [account: "a1", n: 0],
                condition_expression: "attribute_not_exists(account)"}
             ])

    assert {:ok,
            [%Account{balance: 70}, %Account{balance: 30, meta: %{"S" => "small"}}, nil, entry]} =
             Table.transact_get_items([
               {Account, [id: "a1"]},
               {Account, %{id: "a2"}},
               {Account, [id: "gone"]},
               {Entry, [account: "a1", n: 1], projection_expression: "amount, account, n"}
             ])

    assert entry == %Entry{account: "a1", n: 1, amount: -30}
  end

  test "100 actions, DynamoDB's limit, go in one transaction" do
    actions = for n <- 1..100, do: {:put, %Entry{account: "hundred", n: n, amount: n}}
    assert :ok = Table.transact_write_items(actions)

    {:ok, entries} =
      Table.transact_get_items(for n <- 1..100, do: {Entry, [account: "hundred", n: n]})

    assert Enum.map(entries, & &1.amount) == Enum.to_list(1..100)
  end

  test "a failed condition cancels everything and is reported for the right action" do
    :ok = Table.put_item(%Account{id: "c1", balance: 10})
    :ok = Table.put_item(%Account{id: "c2", balance: 10})

    assert {:error, %Error{} = error} =
             Table.transact_write_items([
               {:update, Account, [id: "c1"], add: %{balance: 5}},
               {:put, %Entry{account: "c1", n: 1, amount: 5}},
               {:update, Account, [id: "c2"],
                add: %{balance: -50},
                condition_expression: "balance >= :need",
                expression_attribute_values: %{":need" => 50}}
             ])

    assert error.code == "TransactionCanceledException"
    assert error.kind == :precondition_failed
    assert error.type == :conditional_check_failed
    refute Error.retryable?(error)

    assert [
             %{code: "None", kind: :cancelled},
             %{code: "None", kind: :cancelled},
             %{code: "ConditionalCheckFailed", kind: :precondition_failed}
           ] = error.cancellation_reasons

    assert Exception.message(error) =~ "precondition_failed"
    # Nothing was applied.
    assert balance("c1") == 10
    assert {:ok, nil} = Table.get_item(Entry, account: "c1", n: 1)
  end

  test "a client request token makes a retried transaction apply once" do
    :ok = Table.put_item(%Account{id: "idem", balance: 0})
    token = "token-#{System.unique_integer([:positive])}"
    actions = [{:update, Account, [id: "idem"], add: %{balance: 1}}]

    assert :ok = Table.transact_write_items(actions, client_request_token: token)
    assert :ok = Table.transact_write_items(actions, client_request_token: token)
    assert balance("idem") == 1

    # Without the token, the same actions apply again.
    assert :ok = Table.transact_write_items(actions)
    assert balance("idem") == 2

    # The same token with other actions is refused.
    assert {:error, %Error{kind: :invalid_argument, code: "IdempotentParameterMismatchException"}} =
             Table.transact_write_items([{:update, Account, [id: "idem"], add: %{balance: 5}}],
               client_request_token: token
             )
  end

  # On DynamoDB a transaction that meets another one holding the same item is cancelled with
  # the reason "TransactionConflict" (kind :throttled, retryable). DynamoDB Local 2.x runs
  # requests one at a time: 40 concurrent transactions on one item (or 300, mixed with plain
  # updates) all succeed there, so this test checks that concurrency loses and doubles
  # nothing, and that whatever fails is a conflict. The reason-to-kind mapping of a conflict
  # is pinned by the unit tests of native/cloud_streams_core/src/dynamo/error.rs.
  test "concurrent transactions on one item: none lost or doubled; failures are conflicts" do
    :ok = Table.put_item(%Account{id: "hot", balance: 0})
    # Each transaction holds the hot item and writes one entry of its own.
    results =
      1..40
      |> Task.async_stream(
        fn n ->
          Table.transact_write_items(
            [
              {:update, Account, [id: "hot"], add: %{balance: 1}},
              {:put, %Entry{account: "hot", n: n, amount: 1}}
            ],
            config: [max_attempts: 1]
          )
        end,
        max_concurrency: 20,
        timeout: 60_000
      )
      |> Enum.map(fn {:ok, result} -> result end)

    applied = Enum.count(results, &(&1 == :ok))
    failed = for {:error, error} <- results, do: error

    # Every failure is a conflict, retryable, and no update was lost or doubled.
    for error <- failed do
      assert error.kind == :throttled, inspect(error)
      assert Error.retryable?(error)

      assert error.code == "TransactionConflictException" or
               Enum.any?(error.cancellation_reasons || [], &(&1.code == "TransactionConflict"))
    end

    assert balance("hot") == applied
    assert applied + length(failed) == 40

    {:ok, %{items: entries}} =
      Table.query(Entry,
        key_condition_expression: "account = :a",
        expression_attribute_values: %{":a" => "hot"},
        consistent_read: true
      )

    assert length(entries) == applied
  end

  describe "bad input is refused before any request" do
    test "counts, shapes, schemas, options and values" do
      put = {:put, %Account{id: "x"}}

      assert_raise ArgumentError, ~r/at least one action/, fn ->
        Table.transact_write_items([])
      end

      assert_raise ArgumentError, ~r/at most 100 actions \(DynamoDB's limit\), got 101/, fn ->
        Table.transact_write_items(for i <- 1..101, do: {:put, %Account{id: "x#{i}"}})
      end

      assert_raise ArgumentError, ~r/unknown option :token/, fn ->
        Table.transact_write_items([put], token: "t")
      end

      assert_raise ArgumentError, ~r/client_request_token must have 1 to 36 characters/, fn ->
        Table.transact_write_items([put], client_request_token: String.duplicate("t", 37))
      end

      assert_raise ArgumentError, ~r/action 1: expected \{:put, struct\}/, fn ->
        Table.transact_write_items([put, {:upsert, Account, [id: "x"]}])
      end

      assert_raise ArgumentError, ~r/action 0 needs a Dynamo.Schema module, got: String/, fn ->
        Table.transact_write_items([{:delete, String, [id: "x"]}])
      end

      assert_raise ArgumentError, ~r/action 0 needs a Dynamo.Schema module/, fn ->
        Table.transact_write_items([{:put, %URI{}}])
      end

      assert_raise ArgumentError,
                   ~r/action 0: a condition check needs condition_expression/,
                   fn ->
                     Table.transact_write_items([{:condition_check, Account, [id: "x"], []}])
                   end

      assert_raise ArgumentError, ~r/action 0: .*missing key field :n/, fn ->
        Table.transact_write_items([{:delete, Entry, [account: "x"]}])
      end

      assert_raise ArgumentError, ~r/unknown option :set for .*action 0/, fn ->
        Table.transact_write_items([{:delete, Account, [id: "x"], set: %{balance: 1}}])
      end

      assert_raise ArgumentError, ~r/action 0: .*field :meta of .*cannot hold/, fn ->
        Table.transact_write_items([{:put, %Account{id: "x", meta: %{"pid" => self()}}}])
      end

      assert_raise ArgumentError, ~r/action 0: expression_attribute_values/, fn ->
        Table.transact_write_items([
          {:delete, Account, [id: "x"],
           condition_expression: "balance = :b", expression_attribute_values: %{":b" => self()}}
        ])
      end

      assert_raise ArgumentError, ~r/get 0: expected \{schema, key\}/, fn ->
        Table.transact_get_items([Account])
      end

      assert_raise ArgumentError, ~r/at most 100 actions/, fn ->
        Table.transact_get_items(for i <- 1..101, do: {Account, [id: "x#{i}"]})
      end
    end

    test "what only DynamoDB can tell is an {:error, %Dynamo.Error{}}" do
      # Two actions on one item.
      assert {:error, %Error{kind: :invalid_argument, code: "ValidationException"}} =
               Table.transact_write_items([
                 {:put, %Account{id: "twice"}},
                 {:delete, Account, [id: "twice"]}
               ])

      assert {:error, %Error{kind: :not_found}} =
               Table.transact_write_items([{:put, %Ghost{id: "x"}}])

      assert {:error, %Error{kind: :not_found}} = Table.transact_get_items([{Ghost, [id: "x"]}])
    end
  end
end
