defmodule Dynamo.Table.StreamTest do
  # Dynamo.Table.Stream against DynamoDB Local (native/cloud_streams_nif/src/dynamo/stream.rs,
  # native/cloud_streams_core/src/dynamo/stream.rs).
  use ExUnit.Case, async: false
  @moduletag :dynamodb

  import CloudStreams.NativeHelpers

  alias Dynamo.Table
  alias Dynamo.Table.Stream, as: TableStream

  @count 1_000

  defmodule User do
    use Dynamo.Schema

    item do
      table_name("cloud_streams_stream_test_users")

      field(:id, :string, partition_key: true)
      field(:email, :string)
      field(:age, :integer)
      field(:active, :boolean, default: true)
      field(:tenant_id, :string)
    end
  end

  defmodule Event do
    use Dynamo.Schema

    item do
      table_name("cloud_streams_stream_test_events")

      field(:tenant, :string, partition_key: true)
      field(:seq, :integer, sort_key: true)
      field(:kind, :string)
    end
  end

  defmodule Missing do
    use Dynamo.Schema

    item do
      table_name("cloud_streams_stream_test_missing")
      field(:id, :string, partition_key: true)
    end
  end

  setup_all do
    for schema <- [User, Event] do
      _ = Table.delete_table(schema)
      :ok = Table.create_table(schema)
    end

    users =
      for i <- 1..@count do
        %User{
          id: id(i),
          email: "User#{i}@Example.com",
          age: rem(i, 60),
          active: rem(i, 2) == 0,
          tenant_id: "t#{rem(i, 5)}"
        }
      end

    {:ok, @count} = Table.batch_write_item(User, users)

    events =
      for t <- ["a", "b"], seq <- 1..120, do: %Event{tenant: t, seq: seq, kind: "k#{rem(seq, 3)}"}

    {:ok, 240} = Table.batch_write_item(Event, events)

    on_exit(fn ->
      Table.delete_table(User)
      Table.delete_table(Event)
    end)

    :ok
  end

  setup do
    assert_native_idle()
    on_exit(fn -> assert_native_idle() end)
  end

  defp id(i), do: "u" <> String.pad_leading(Integer.to_string(i), 5, "0")
  defp all_ids, do: Enum.map(1..@count, &id/1)

  describe "scan/2" do
    test "streams every item once, as structs" do
      users = TableStream.scan(User, page_size: 50) |> Enum.to_list()
      assert Enum.sort(Enum.map(users, & &1.id)) == all_ids()
      assert %User{id: "u00007", age: 7, active: false, tenant_id: "t2"} = find(users, "u00007")
    end

    test "is lazy: nothing is read before enumeration, and take/2 stops the reading" do
      {proxy, agent} = CloudStreams.CountingProxy.start(dynamodb_endpoint())
      config = [endpoint: proxy]

      stream = TableStream.scan(User, page_size: 10, prefetch_pages: 0, config: config)
      assert CloudStreams.CountingProxy.requests(agent) == []

      assert length(Enum.take(stream, 15)) == 15
      assert_native_idle()
      # Two pages of ten hold fifteen items; a third may have been in flight when we stopped.
      assert length(CloudStreams.CountingProxy.requests(agent)) in 2..3
    end

    test "filters at DynamoDB with DynamoDB JSON values, as the guide does" do
      users =
        TableStream.scan(User,
          filter_expression: "active = :val AND age > :min_age",
          expression_attribute_values: %{
            ":val" => %{"BOOL" => true},
            ":min_age" => %{"N" => "18"}
          }
        )
        |> Enum.to_list()

      expected = for i <- 1..@count, rem(i, 2) == 0, rem(i, 60) > 18, do: id(i)
      assert Enum.sort(Enum.map(users, & &1.id)) == expected
    end

    test "projects attributes; the others take their defaults" do
      [user | _] =
        TableStream.scan(User,
          projection_expression: "id, #e",
          expression_attribute_names: %{"#e" => "email"}
        )
        |> Enum.take(1)

      assert user.email =~ "@Example.com"
      assert user.age == nil and user.tenant_id == nil
    end

    test "exclusive_start_key continues after a page of Dynamo.Table.scan/2" do
      {:ok, %{items: first, last_evaluated_key: key}} = Table.scan(User, limit: 100)
      rest = TableStream.scan(User, exclusive_start_key: key) |> Enum.map(& &1.id)
      assert Enum.sort(Enum.map(first, & &1.id) ++ rest) == all_ids()
    end

    test "a stream built here can be consumed in another process" do
      stream = TableStream.scan(User, page_size: 100)
      task = Task.async(fn -> Enum.count(stream) end)
      assert Task.await(task) == @count

      counts =
        [stream, stream]
        |> Task.async_stream(&Enum.count/1)
        |> Enum.map(fn {:ok, n} -> n end)

      assert counts == [@count, @count]
    end
  end

  describe "parallel_scan/2" do
    test "reads every item exactly once across segments" do
      for segments <- [1, 3, 8] do
        ids =
          TableStream.parallel_scan(User, segments: segments, page_size: 40) |> Enum.map(& &1.id)

        assert Enum.sort(ids) == all_ids(), "segments: #{segments}"
      end
    end

    test "segments run at the same time; max_concurrency: 1 runs them one after another" do
      in_progress = fn opts ->
        checkpoints =
          collect_checkpoints(&TableStream.parallel_scan(User, [on_checkpoint: &1] ++ opts))

        checkpoints
        |> Enum.map(fn %{"positions" => p} -> Enum.count(p, fn {_, pos} -> is_map(pos) end) end)
        |> Enum.max()
      end

      assert in_progress.(segments: 4, page_size: 10) > 1
      assert in_progress.(segments: 4, page_size: 10, max_concurrency: 1) == 1
    end

    test "buffers a bounded number of pages, whatever the table's size" do
      parent = self()

      consumer =
        spawn_link(fn ->
          TableStream.parallel_scan(User, segments: 4, page_size: 10, prefetch_pages: 2)
          |> Stream.each(fn _ -> Process.sleep(1) end)
          |> Stream.take(200)
          |> Stream.run()

          send(parent, :finished)
        end)

      peaks =
        for _ <- 1..20 do
          Process.sleep(10)
          CloudStreams.stats().buffered_items
        end

      assert_receive :finished, 10_000
      refute Process.alive?(consumer)
      # At most prefetch_pages in the buffer; each segment holds at most one more page in hand.
      assert Enum.max(peaks) <= 2
      assert Enum.max(peaks) >= 1
    end

    test "works when enumerated inside a process that drops unexpected messages (Flow's shape)" do
      stream = TableStream.parallel_scan(User, segments: 4, page_size: 25)
      parent = self()

      # Flow.from_enumerable/2 enumerates inside a GenStage process whose mailbox also gets
      # protocol messages; a push design would hang here.
      stage =
        spawn_link(fn ->
          send(self(), {:"$gen_producer", make_ref(), :noise})
          count = Enum.reduce(stream, 0, fn _, n -> n + 1 end)
          send(parent, {:count, count})
        end)

      assert_receive {:count, @count}, 10_000
      refute Process.alive?(stage)
    end

    test "resumes from a checkpoint: nothing skipped, at most the page in progress read again" do
      table = :ets.new(:checkpoint, [:public])
      save = fn checkpoint -> :ets.insert(table, {:last, :erlang.term_to_binary(checkpoint)}) end
      opts = [segments: 4, page_size: 20, on_checkpoint: save]

      first = TableStream.parallel_scan(User, opts) |> Enum.take(333) |> Enum.map(& &1.id)
      [{:last, saved}] = :ets.lookup(table, :last)
      checkpoint = :erlang.binary_to_term(saved)
      assert %{"segments" => 4, "positions" => positions} = checkpoint
      assert map_size(positions) == 4

      rest =
        TableStream.parallel_scan(User, Keyword.put(opts, :resume, checkpoint))
        |> Enum.map(& &1.id)

      assert Enum.sort(Enum.uniq(first ++ rest)) == all_ids()
      # Every item read again belongs to a page that was being consumed: fewer than one page
      # per segment.
      assert length(first) + length(rest) - @count < 4 * 20

      # A finished scan's checkpoint is all done, and resuming from it reads nothing.
      [{:last, final}] = :ets.lookup(table, :last)
      done = :erlang.binary_to_term(final)
      assert Enum.all?(done["positions"], fn {_, p} -> p == "done" end)
      assert TableStream.parallel_scan(User, segments: 4, resume: done) |> Enum.to_list() == []
    end

    test "a checkpoint survives a JSON-style round trip (string keys, plain values)" do
      [checkpoint | _] =
        collect_checkpoints(&TableStream.scan(User, page_size: 500, on_checkpoint: &1))

      assert %{"segments" => 1, "positions" => %{"0" => key}} = checkpoint
      assert %{"id" => %{"S" => "u" <> _}} = key
    end
  end

  describe "query/2" do
    test "reads the items of a key condition, in sort order either way" do
      opts = [
        key_condition_expression: "tenant = :t AND seq > :min",
        expression_attribute_values: %{":t" => "a", ":min" => 100},
        page_size: 7
      ]

      assert Enum.map(TableStream.query(Event, opts), & &1.seq) == Enum.to_list(101..120)

      assert Enum.map(TableStream.query(Event, [scan_index_forward: false] ++ opts), & &1.seq) ==
               Enum.to_list(120..101)
    end

    test "filters after the key condition" do
      kinds =
        TableStream.query(Event,
          key_condition_expression: "tenant = :t",
          filter_expression: "kind = :k",
          expression_attribute_values: %{":t" => "b", ":k" => "k0"}
        )
        |> Enum.map(& &1.seq)

      assert kinds == Enum.filter(1..120, &(rem(&1, 3) == 0))
    end

    test "requires a key condition" do
      assert_raise ArgumentError, ~r/key_condition_expression/, fn ->
        TableStream.query(Event, [])
      end
    end
  end

  describe "errors" do
    test "a missing table raises Dynamo.Error from the enumeration, naming the segment" do
      error = assert_raise Dynamo.Error, fn -> TableStream.scan(Missing) |> Enum.to_list() end
      assert error.type == :resource_not_found

      error =
        assert_raise Dynamo.Error, fn ->
          TableStream.parallel_scan(Missing, segments: 2) |> Enum.to_list()
        end

      assert error.type == :resource_not_found
      assert error.message =~ ~r/segment \d of 2/
    end

    test "bad options raise ArgumentError naming the option, before any request" do
      for {fun, message} <- [
            {fn -> TableStream.scan(User, page_size: 0) end, ~r/:page_size/},
            {fn -> TableStream.scan(User, segments: 2) end, ~r/unknown option :segments/},
            {fn -> TableStream.parallel_scan(User, segments: 0) end, ~r/:segments/},
            {fn -> TableStream.scan(User, max_read_capacity: -1) end, ~r/:max_read_capacity/},
            {fn -> TableStream.scan(User, on_checkpoint: :nope) end, ~r/:on_checkpoint/},
            {fn -> TableStream.parallel_scan(User, segments: 2, resume: %{"x" => 1}) end,
             ~r/invalid resume/},
            {fn ->
               TableStream.parallel_scan(User,
                 segments: 2,
                 resume: %{"segments" => 4, "positions" => %{}}
               )
             end, ~r/4 segments, but this scan has 2/},
            {fn -> TableStream.scan(User, expression_attribute_values: %{":v" => self()}) end,
             ~r/cannot store/},
            {fn -> TableStream.scan_to_process(User, :not_a_pid) end, ~r/sends to a pid/},
            {fn -> TableStream.scan_to_process(User, self(), batch_size: 0) end, ~r/:batch_size/}
          ] do
        assert_raise ArgumentError, message, fun
      end
    end
  end

  describe "scan_to_process/3" do
    test "sends each item, then :scan_complete" do
      {:ok, scanner} = TableStream.scan_to_process(User, self(), segments: 4, page_size: 100)
      assert is_pid(scanner)
      ids = receive_items(:scan_item, [])
      assert Enum.sort(ids) == all_ids()
    end

    test "sends batches with batch_size above 1, never wrapped in :scan_item" do
      {:ok, _} = TableStream.scan_to_process(User, self(), batch_size: 64)
      batches = receive_batches([])
      assert Enum.all?(batches, &(length(&1) <= 64))
      assert batches |> List.flatten() |> Enum.map(& &1.id) |> Enum.sort() == all_ids()
    end

    test "message_format, completion_message and error_message shape the messages" do
      {:ok, _} =
        TableStream.scan_to_process(User, self(),
          message_format: {:user, :item, :from_scan},
          completion_message: {:users, :done}
        )

      assert_receive {:user, %User{}, :from_scan}, 5_000
      assert_receive {:users, :done}, 10_000

      {:ok, _} =
        TableStream.scan_to_process(User, self(),
          batch_size: 500,
          message_format: fn users -> {:got, length(users)} end
        )

      assert_receive {:got, 500}, 5_000
      assert_receive {:got, 500}, 5_000
      assert_receive :scan_complete, 5_000

      {:ok, _} = TableStream.scan_to_process(Missing, self(), error_message: {:failed, :error})
      assert_receive {:failed, %Dynamo.Error{type: :resource_not_found}}, 5_000
      {:ok, _} = TableStream.scan_to_process(Missing, self())
      assert_receive {:scan_error, %Dynamo.Error{type: :resource_not_found}}, 5_000
    end

    test "runs supervised, and stops when the receiver dies, its native stream with it" do
      before = CloudStreams.stats()
      receiver = spawn(fn -> Process.sleep(:infinity) end)
      {:ok, scanner} = TableStream.scan_to_process(User, receiver, max_mailbox: 5, page_size: 10)
      assert scanner in Enum.map(Task.Supervisor.children(CloudStreams.TaskSupervisor), & &1)
      ref = Process.monitor(scanner)
      Process.exit(receiver, :kill)
      assert_receive {:DOWN, ^ref, :process, ^scanner, :killed}, 5_000

      CloudStreams.NativeHelpers.wait_for_stats(fn stats ->
        stats.live_tasks <= before.live_tasks and stats.open_streams <= before.open_streams
      end)
    end

    test "an exception in message_format reaches the receiver as {:scan_error, _}, once" do
      {:ok, scanner} =
        TableStream.scan_to_process(User, self(),
          page_size: 100,
          # Runs in the scanner: the 500th message raises.
          message_format: fn _user ->
            n = Process.put(:sent, (Process.get(:sent) || 0) + 1) || 0
            if n == 499, do: raise("no 500"), else: :ok
          end
        )

      ref = Process.monitor(scanner)
      assert_receive {:scan_error, %Dynamo.Error{type: :internal} = error}, 10_000
      assert Exception.message(error) =~ "message_format raised"
      assert Exception.message(error) =~ "no 500"
      assert_receive {:DOWN, ^ref, :process, _, :normal}, 5_000
      refute_receive :scan_complete, 200
      refute_receive {:scan_error, _}, 200
    end

    test "an exception raised inside the scan (here by on_checkpoint) ends in {:scan_error, _}" do
      # Decoding is lenient (a value of another type is kept as it is), so user code run by
      # the stream is what can raise inside it.
      {:ok, _} =
        TableStream.scan_to_process(User, self(),
          page_size: 100,
          on_checkpoint: fn _ -> raise ArgumentError, "checkpoint store is down" end
        )

      assert_receive {:scan_error, %Dynamo.Error{type: :internal} = error}, 10_000
      assert Exception.message(error) =~ "the scan failed: checkpoint store is down"
      refute_received :scan_complete
    end

    test "a raising error_message function still tells the receiver, in the default shape" do
      {:ok, _} =
        TableStream.scan_to_process(Missing, self(), error_message: fn _ -> raise "oops" end)

      assert_receive {:scan_error, %Dynamo.Error{type: :internal} = error}, 10_000
      assert Exception.message(error) =~ "error_message raised"
    end

    test "a killed scanner is reported to the receiver" do
      {:ok, scanner} =
        TableStream.scan_to_process(User, self(),
          page_size: 10,
          max_mailbox: 20,
          message_format: fn _ -> :item end
        )

      assert_receive :item, 5_000
      Process.exit(scanner, :kill)
      assert_receive {:scan_error, %Dynamo.Error{type: :internal} = error}, 5_000
      assert Exception.message(error) =~ ":killed"
      flush_items()
      refute_received :scan_complete
    end

    test "pauses while the receiver's mailbox is above max_mailbox" do
      receiver = spawn(fn -> Process.sleep(:infinity) end)
      {:ok, scanner} = TableStream.scan_to_process(User, receiver, max_mailbox: 50, page_size: 20)
      Process.sleep(500)
      {:message_queue_len, queued} = Process.info(receiver, :message_queue_len)
      assert queued in 50..51
      assert Process.alive?(scanner)
      Process.exit(receiver, :kill)
    end

    test "a receiver on another node gets every item and the end (not paced)" do
      {_peer, node} = CloudStreams.Cluster.start_peer!(dynamodb_endpoint())
      receiver = CloudStreams.Forwarder.start(node, self(), :scan_complete)
      {:ok, _} = TableStream.scan_to_process(User, receiver, batch_size: 100)
      batches = receive_forwarded([])
      assert batches |> List.flatten() |> Enum.map(& &1.id) |> Enum.sort() == all_ids()
    end

    test "a paused scan goes on as the receiver drains its mailbox, to the end" do
      me = self()

      receiver =
        spawn(fn ->
          receive do
            :go -> send(me, {:drained, drain(0, 0)})
          end
        end)

      {:ok, _} = TableStream.scan_to_process(User, receiver, max_mailbox: 50, page_size: 20)

      CloudStreams.NativeHelpers.wait_until(fn ->
        Process.info(receiver, :message_queue_len) == {:message_queue_len, 50}
      end)

      send(receiver, :go)
      assert_receive {:drained, {@count, longest}}, 20_000
      # The :go message came on top of the 50 it found.
      assert longest <= 51
    end
  end

  # Receives scan items until :scan_complete; {count, longest mailbox seen}.
  defp drain(count, longest) do
    {:message_queue_len, queued} = Process.info(self(), :message_queue_len)

    receive do
      {:scan_item, _} -> drain(count + 1, max(longest, queued))
      :scan_complete -> {count, max(longest, queued)}
    after
      10_000 -> {:stuck, count}
    end
  end

  test "the comparison table's names are delegates" do
    assert Table.stream_scan(User, page_size: 500) |> Enum.count() == @count
    assert Table.stream_parallel_scan(User, segments: 2) |> Enum.count() == @count
    {:ok, _} = Table.stream_scan_to_process(User, self(), batch_size: 1000)
    assert_receive {:scan_batch, batch} when length(batch) == @count, 5_000
    assert_receive :scan_complete
  end

  test "max_read_capacity paces the requests by the capacity DynamoDB reports" do
    units = scan_capacity(100)
    assert units > 0, "DynamoDB Local reported no consumed capacity"

    # A rate at which the table's ten pages need a second: every page after the first waits
    # for the capacity of the one before. A lower bound on time, so it cannot be flaky.
    {micros, count} =
      :timer.tc(fn ->
        TableStream.scan(User, page_size: 100, max_read_capacity: units) |> Enum.count()
      end)

    assert count == @count
    assert micros >= 800_000
  end

  # --- helpers --------------------------------------------------------------------------

  defp find(users, id), do: Enum.find(users, &(&1.id == id))

  defp dynamodb_endpoint, do: System.fetch_env!("CLOUD_STREAMS_DYNAMODB_ENDPOINT")

  # Runs the stream `build` makes with an on_checkpoint: callback; returns the checkpoints.
  defp collect_checkpoints(build) do
    ref = make_ref()
    parent = self()
    build.(fn checkpoint -> send(parent, {ref, checkpoint}) end) |> Stream.run()
    receive_all(ref, [])
  end

  defp receive_all(ref, acc) do
    receive do
      {^ref, checkpoint} -> receive_all(ref, [checkpoint | acc])
    after
      0 -> Enum.reverse(acc)
    end
  end

  # The read capacity a whole scan consumes, page by page, as Dynamo.Table.scan/2 reports it.
  defp scan_capacity(limit, key \\ nil, acc \\ 0) do
    {:ok, page} = Table.scan(User, limit: limit, exclusive_start_key: key)
    acc = acc + (page.consumed_capacity || 0)
    if page.last_evaluated_key, do: scan_capacity(limit, page.last_evaluated_key, acc), else: acc
  end

  defp receive_items(tag, acc) do
    receive do
      {^tag, item} -> receive_items(tag, [item.id | acc])
      :scan_complete -> acc
    after
      10_000 -> flunk("no :scan_complete")
    end
  end

  defp receive_forwarded(acc) do
    receive do
      {:forwarded, {:scan_batch, items}} -> receive_forwarded([items | acc])
      {:forwarded, :scan_complete} -> acc
      {:forwarded, other} -> flunk("unexpected #{inspect(other)}")
    after
      10_000 -> flunk("no :scan_complete from the remote receiver")
    end
  end

  defp flush_items do
    receive do
      :item -> flush_items()
    after
      0 -> :ok
    end
  end

  defp receive_batches(acc) do
    receive do
      {:scan_batch, items} -> receive_batches([items | acc])
      :scan_complete -> acc
    after
      10_000 -> flunk("no :scan_complete")
    end
  end
end
