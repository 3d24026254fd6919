defmodule Dynamo.StatementTest do
  # PartiQL against DynamoDB Local: Dynamo.Table.execute_statement/3,
  # batch_execute_statement/2 and the lazy Dynamo.Table.Stream.execute_statement/3. The
  # per-statement error codes (DuplicateItem, ConditionalCheckFailed, ...) are those of
  # aws-sdk-dynamodb 1.136.0's src/types/_batch_statement_error_code_enum.rs.
  use ExUnit.Case, async: false
  @moduletag :dynamodb

  import CloudStreams.NativeHelpers, only: [assert_native_idle: 0, drain_mailbox: 0]

  alias Dynamo.{Error, Table}
  alias Dynamo.Table.Stream, as: TableStream

  defmodule Note do
    use Dynamo.Schema

    item do
      table_name("cloud_streams_statement_notes")

      field(:owner, :string, partition_key: true)
      field(:n, :integer, sort_key: true)
      field(:text, :string)
      field(:data)
    end
  end

  @table "cloud_streams_statement_notes"
  @count 60

  setup_all do
    _ = Table.delete_table(Note)
    :ok = Table.create_table(Note)
    on_exit(fn -> Table.delete_table(Note) end)
    notes = for n <- 1..@count, do: %Note{owner: "ann", n: n, text: "note #{n}"}
    {:ok, @count} = Table.batch_write_item(Note, notes)
    :ok
  end

  defp dynamodb_endpoint, do: System.fetch_env!("CLOUD_STREAMS_DYNAMODB_ENDPOINT")

  describe "execute_statement/3" do
    test "parameters are plain values, items come back as structs" do
      lookalike = %{"S" => "small", "N" => %{"NULL" => false}}

      assert {:ok, %{items: [], next_token: nil}} =
               Table.execute_statement(
                 Note,
                 ~s(INSERT INTO "#{@table}" VALUE {'owner': ?, 'n': ?, 'text': ?, 'data': ?}),
                 parameters: ["bob", 1, "hello", lookalike]
               )

      assert {:ok, %{items: [note]}} =
               Table.execute_statement(
                 Note,
                 ~s(SELECT * FROM "#{@table}" WHERE owner = ? AND n = ?),
                 parameters: ["bob", 1],
                 consistent_read: true
               )

      assert note == %Note{owner: "bob", n: 1, text: "hello", data: lookalike}
    end

    test "limit and next_token page through the results" do
      statement = ~s(SELECT * FROM "#{@table}" WHERE owner = ?)

      pages =
        Stream.unfold(:first, fn
          nil ->
            nil

          token ->
            next = if token == :first, do: nil, else: token

            {:ok, page} =
              Table.execute_statement(Note, statement,
                parameters: ["ann"],
                limit: 25,
                next_token: next
              )

            {page.items, page.next_token}
        end)
        |> Enum.to_list()

      assert length(pages) >= 3
      assert Enum.all?(pages, &(length(&1) <= 25))
      assert pages |> List.flatten() |> Enum.map(& &1.n) |> Enum.sort() == Enum.to_list(1..@count)
    end

    test "errors DynamoDB reports are {:error, %Dynamo.Error{}}" do
      assert {:error, %Error{kind: :invalid_argument, code: "ValidationException"}} =
               Table.execute_statement(Note, "SELEKT * FROM nowhere")

      assert {:error, %Error{kind: :not_found}} =
               Table.execute_statement(Note, ~s(SELECT * FROM "no_such_table_h1"))

      # A statement's condition that fails.
      assert {:error, %Error{kind: :precondition_failed, code: "ConditionalCheckFailedException"}} =
               Table.execute_statement(
                 Note,
                 ~s(UPDATE "#{@table}" SET text = 'x' WHERE owner = ? AND n = ? AND text = 'never'),
                 parameters: ["ann", 1]
               )

      # An INSERT of an item that exists: DynamoDB's code is DuplicateItemException,
      # DynamoDB Local's DuplicateItem.
      assert {:error, %Error{kind: :already_exists, code: "DuplicateItem" <> _}} =
               Table.execute_statement(
                 Note,
                 ~s(INSERT INTO "#{@table}" VALUE {'owner': ?, 'n': ?}),
                 parameters: ["ann", 1]
               )
    end

    test "bad input raises ArgumentError naming the problem" do
      assert_raise ArgumentError,
                   ~r/unknown option :params for Dynamo.Table.execute_statement/,
                   fn ->
                     Table.execute_statement(Note, "SELECT * FROM x", params: [])
                   end

      assert_raise ArgumentError, ~r/execute_statement\/3 needs a statement string/, fn ->
        Table.execute_statement(Note, :select)
      end

      assert_raise ArgumentError, ~r/:parameters/, fn ->
        Table.execute_statement(Note, "SELECT * FROM x", parameters: %{a: 1})
      end

      assert_raise ArgumentError, ~r/execute_statement\/3: parameter 1: cannot store #PID/, fn ->
        Table.execute_statement(Note, "SELECT * FROM x WHERE a = ? AND b = ?",
          parameters: [1, self()]
        )
      end

      assert_raise ArgumentError, ~r/needs a Dynamo.Schema module, got: Enum/, fn ->
        Table.execute_statement(Enum, "SELECT * FROM x")
      end
    end
  end

  describe "batch_execute_statement/2" do
    test "each statement succeeds or fails on its own" do
      # DynamoDB takes reads or writes in one batch, not both.
      select = ~s(SELECT * FROM "#{@table}" WHERE owner = ? AND n = ?)

      assert {:ok, [{:ok, %Note{owner: "ann", n: 2, text: "note 2"}}, {:ok, nil}]} =
               Table.batch_execute_statement(
                 [{Note, select, ["ann", 2]}, {Note, select, ["ann", 999]}],
                 consistent_read: true
               )

      insert = ~s(INSERT INTO "#{@table}" VALUE {'owner': ?, 'n': ?})

      assert {:ok, results} =
               Table.batch_execute_statement([
                 {Note, insert, ["ann", 3]},
                 {Note, insert, ["carl", 1]},
                 {Note,
                  ~s(UPDATE "#{@table}" SET text = 'y' WHERE owner = 'ann' AND n = 4 AND text = 'never')}
               ])

      assert [
               {:error, %Error{kind: :already_exists, code: "DuplicateItem"}},
               {:ok, nil},
               {:error, %Error{kind: :precondition_failed, code: "ConditionalCheckFailed"}}
             ] = results

      assert {:ok, %Note{owner: "carl"}} = Table.get_item(Note, owner: "carl", n: 1)

      assert {:error, %Error{kind: :invalid_argument, message: message}} =
               Table.batch_execute_statement([
                 {Note, select, ["ann", 2]},
                 {Note, insert, ["dan", 1]}
               ])

      assert message =~ "Read and write"
    end

    test "bad input raises before any request" do
      statement = {Note, "SELECT * FROM x"}

      assert_raise ArgumentError, ~r/at most 25 actions \(DynamoDB's limit\), got 26/, fn ->
        Table.batch_execute_statement(List.duplicate(statement, 26))
      end

      assert_raise ArgumentError, ~r/at least one action/, fn ->
        Table.batch_execute_statement([])
      end

      assert_raise ArgumentError, ~r/statement 1: expected \{schema, statement\}/, fn ->
        Table.batch_execute_statement([statement, "SELECT 1"])
      end

      assert_raise ArgumentError, ~r/statement 0: parameter 0: cannot store/, fn ->
        Table.batch_execute_statement([{Note, "SELECT * FROM x WHERE a = ?", [{:tuple}]}])
      end

      assert_raise ArgumentError, ~r/statement 0 needs a Dynamo.Schema module/, fn ->
        Table.batch_execute_statement([{:nope, "SELECT * FROM x"}])
      end
    end
  end

  describe "Dynamo.Table.Stream.execute_statement/3" do
    test "streams every page lazily; halting stops the fetching" do
      {proxy, agent} = CloudStreams.CountingProxy.start(dynamodb_endpoint())
      statement = ~s(SELECT * FROM "#{@table}" WHERE owner = ?)

      stream =
        TableStream.execute_statement(Note, statement,
          parameters: ["ann"],
          page_size: 10,
          prefetch_pages: 0,
          config: [endpoint: proxy]
        )

      assert CloudStreams.CountingProxy.requests(agent) == []
      assert length(Enum.take(stream, 15)) == 15
      assert_native_idle()
      # Two pages of ten hold fifteen items; a third may have been in flight when we stopped.
      assert length(CloudStreams.CountingProxy.requests(agent)) in 2..3

      # While the consumer holds a page, the stream fetches at most prefetch_pages more.
      for prefetch <- [0, 2] do
        {proxy, agent} = CloudStreams.CountingProxy.start(dynamodb_endpoint())

        paused =
          TableStream.execute_statement(Note, statement,
            parameters: ["ann"],
            page_size: 10,
            prefetch_pages: prefetch,
            config: [endpoint: proxy]
          )
          |> Enum.reduce_while(nil, fn _note, nil ->
            Process.sleep(300)
            {:halt, length(CloudStreams.CountingProxy.requests(agent))}
          end)

        assert paused == 1 + prefetch
        assert_native_idle()
      end

      all = TableStream.execute_statement(Note, statement, parameters: ["ann"], page_size: 7)
      assert all |> Enum.map(& &1.n) |> Enum.sort() == Enum.to_list(1..@count)
      assert Enum.all?(all, &match?(%Note{owner: "ann"}, &1))
      assert_native_idle()
    end

    test "built in one process, consumed in others, as with Task.async_stream/3" do
      streams =
        for owner <- ["ann", "nobody"] do
          TableStream.execute_statement(Note, ~s(SELECT n FROM "#{@table}" WHERE owner = ?),
            parameters: [owner],
            page_size: 20
          )
        end

      counts =
        streams
        |> Task.async_stream(&Enum.count/1, timeout: 30_000)
        |> Enum.map(fn {:ok, count} -> count end)

      assert counts == [@count, 0]
      assert_native_idle()
    end

    test "sends no message it was not asked for, so Flow's GenStage processes can consume it" do
      # Flow.from_enumerable/2 runs the enumerable inside a GenStage process that drops any
      # unexpected message: the consumer must find its mailbox empty after halting early and
      # after a full run (a signal-queue message is only seen by a receive, hence the wait).
      stream =
        TableStream.execute_statement(Note, ~s(SELECT * FROM "#{@table}" WHERE owner = ?),
          parameters: ["ann"],
          page_size: 5,
          prefetch_pages: 3
        )

      leftovers =
        Task.async(fn ->
          taken = Enum.take(stream, 7)
          Process.sleep(200)
          early = drain_mailbox()
          all = Enum.to_list(stream)
          Process.sleep(200)
          {length(taken), early, length(all), drain_mailbox()}
        end)
        |> Task.await(30_000)

      assert leftovers == {7, [], @count, []}
      assert_native_idle()
    end

    test "a failing statement raises Dynamo.Error; bad options raise ArgumentError" do
      assert_raise Error, ~r/invalid_argument/, fn ->
        TableStream.execute_statement(Note, "SELEKT nothing") |> Enum.to_list()
      end

      assert_native_idle()

      assert_raise ArgumentError, ~r/unknown option :limit/, fn ->
        TableStream.execute_statement(Note, "SELECT * FROM x", limit: 3)
      end
    end
  end
end
