defmodule Dynamo.ProducerTest do
  # Dynamo.Table.Stream.Producer against DynamoDB Local, on the built-in engine (gen_stage
  # cannot be installed here). The test processes send exactly what gen_stage 1.3.2 sends
  # (elixir-lang/gen_stage v1.3.2, lib/gen_stage.ex):
  #   - consumers: {:"$gen_producer", {pid, tag}, {:subscribe, current, opts} | {:ask, n} |
  #     {:cancel, reason}}, and they get {:"$gen_consumer", {producer, tag}, events |
  #     {:cancel, reason}} ("Message protocol overview", lines 689-772);
  #   - GenStage.demand/2 is GenServer.cast(stage, {:"$demand", mode}) (line 1346),
  #     GenStage.demand/1 GenServer.call(stage, :"$demand") (1330),
  #     estimate_buffered_count/2 a call of :"$estimate_buffered_count" (1800),
  #     sync_info/3 and async_info/2 a call and a cast of {:"$info", msg} (1305, 1320);
  #   - GenStage.stream/2 subscribes with the tag {monitor_ref, inner_ref}, asks max_demand at
  #     once and casts the demand mode (lib/gen_stage/stream.ex, lines 44-58 and 78-83);
  #   - Flow.from_stages/2 casts :accumulate to its producers before its stages subscribe and
  #     :forward once they have (dashbitco/flow v1.2.4, lib/flow/materialize.ex lines 21-23,
  #     lib/gen_stage/stream.ex line 46 through Flow.Coordinator's :stream call).
  use ExUnit.Case, async: false
  @moduletag :dynamodb

  import CloudStreams.NativeHelpers, only: [wait_for_stats: 1]

  alias CloudStreams.CountingProxy
  alias Dynamo.Table
  alias Dynamo.Table.Stream.Producer

  @items 1_000

  defmodule User do
    use Dynamo.Schema

    item do
      table_name("cloud_streams_producer_test")

      field(:id, :string, partition_key: true)
      field(:email, :string)
    end
  end

  # A table that is never created: every scan of it fails.
  defmodule Missing do
    use Dynamo.Schema

    item do
      table_name("cloud_streams_producer_test_missing")

      field(:id, :string, partition_key: true)
    end
  end

  setup_all do
    _ = Table.delete_table(User)
    _ = Table.delete_table(Missing)
    :ok = Table.create_table(User)
    on_exit(fn -> Table.delete_table(User) end)

    users = for i <- 1..@items, do: %User{id: id(i), email: email(i)}
    {:ok, @items} = Table.batch_write_item(User, users)
    %{ids: Enum.map(users, & &1.id) |> Enum.sort()}
  end

  setup do
    before = CloudStreams.stats()
    # However a test ends (normal exit, error, stop, or its linked producer killed with it),
    # the native stream it opened is closed (terminate/2 or garbage collection).
    on_exit(fn -> assert_native_back_to(before) end)
    %{before: before}
  end

  describe "consuming" do
    test "under a supervisor, by name: every item exactly once, then :normal, not restarted",
         %{ids: ids, before: before} do
      # The guide's child spec shape.
      children = [
        {Producer, schema: User, name: __MODULE__.Users, segments: 4, page_size: 500}
      ]

      {:ok, sup} = Supervisor.start_link(children, strategy: :one_for_one)
      producer = GenServer.whereis(__MODULE__.Users)
      assert is_pid(producer)

      tag = subscribe(producer)
      {%{^tag => users}, reason} = consume(producer, %{tag => {100, 0}})

      assert reason == :normal
      assert Enum.all?(users, &match?(%User{}, &1))
      assert ids_of(users) == ids

      # restart: :transient, so a finished scan stays finished.
      assert [{Producer, :undefined, :worker, [Producer]}] = Supervisor.which_children(sup)
      assert GenServer.whereis(__MODULE__.Users) == nil
      assert_native_back_to(before)
      Supervisor.stop(sup)
    end

    test "never more events than asked: 7 asked, 7 come, and nothing more until the next ask" do
      {:ok, producer} = Producer.start_link(schema: User, segments: 4, page_size: 50)
      tag = subscribe(producer)

      ask(producer, tag, 7)
      assert length(receive_events(producer, tag, 7)) == 7
      # A page holds 50 items: plenty are buffered, and none may come unasked.
      assert events_in_mailbox(producer, tag, 200) == []

      ask(producer, tag, 3)
      assert length(receive_events(producer, tag, 3)) == 3
      assert events_in_mailbox(producer, tag, 200) == []

      GenServer.stop(producer)
    end

    test "DynamoDB is asked only for what consumers demanded", %{before: before} do
      # Every Scan request goes through a proxy that counts them: the producer's client is
      # the only one using this endpoint.
      endpoint = Application.fetch_env!(:cloud_streams, :dynamo)[:endpoint]
      {proxy, agent} = CountingProxy.start(endpoint)
      scans = fn -> agent |> CountingProxy.requests() |> Enum.count(&(&1 =~ ~r/^POST /)) end

      {:ok, producer} =
        Producer.start_link(
          schema: User,
          segments: 1,
          page_size: 10,
          config: [endpoint: proxy]
        )

      tag = subscribe(producer)
      # No demand, no request: a missing demand is never guessed.
      Process.sleep(200)
      assert scans.() == 0

      ask(producer, tag, 5)
      assert length(receive_events(producer, tag, 5)) == 5
      Process.sleep(200)
      # One page for 5 events, and no read-ahead: the producer keeps that page's other 5
      # items, and nothing waits in the native buffer (prefetch_pages defaults to 0 here).
      assert scans.() == 1
      assert buffered(producer) == 5
      # (At most what it was: streams other tests left may be collected meanwhile.)
      assert CloudStreams.stats().buffered_items <= before.buffered_items

      # The next 5 come from what is buffered: still one request.
      ask(producer, tag, 5)
      assert length(receive_events(producer, tag, 5)) == 5
      Process.sleep(200)
      assert scans.() == 1
      assert buffered(producer) == 0

      # One more event needs one more page, and only one.
      ask(producer, tag, 1)
      assert length(receive_events(producer, tag, 1)) == 1
      Process.sleep(200)
      assert scans.() == 2
      assert buffered(producer) == 9
      assert CloudStreams.stats().buffered_items <= before.buffered_items

      GenServer.stop(producer)
    end

    test "two subscriptions share the demand; the one with more pending demand is served first",
         %{ids: ids} do
      {:ok, producer} = Producer.start_link(schema: User, segments: 1, page_size: 50)
      # Both subscriptions belong to this process, so the order of their batches is visible.
      a = subscribe(producer)
      b = subscribe(producer)

      # Both asks are queued before the producer sees either, so both are pending when the
      # first page (50 items) arrives: b (40) must get its 40 first, then a (30) the other 10.
      :ok = :sys.suspend(producer)
      ask(producer, a, 30)
      ask(producer, b, 40)
      :ok = :sys.resume(producer)

      assert {^b, first} = receive_any_events(producer, [a, b])
      assert length(first) == 40
      assert {^a, second} = receive_any_events(producer, [a, b])
      assert length(second) <= 30

      # The rest, with different ask sizes, each batch checked against its own demand.
      {got, reason} = consume(producer, %{a => {13, 30 - length(second)}, b => {29, 0}})
      assert reason == :normal

      all_a = second ++ got[a]
      all_b = first ++ got[b]
      assert all_a != [] and all_b != []
      assert ids_of(all_a ++ all_b) == ids
    end

    test "the guide's producer -> producer_consumer -> consumer pipeline", %{ids: ids} do
      {:ok, producer} =
        Producer.start_link(schema: User, name: __MODULE__.Pipeline, segments: 4, page_size: 50)

      transformer =
        start_transformer(GenServer.whereis(__MODULE__.Pipeline), fn user ->
          %{user | email: String.downcase(user.email)}
        end)

      tag = subscribe(transformer)
      {%{^tag => users}, reason} = consume(transformer, %{tag => {64, 0}})

      # The transformer exits as its producer did: :normal, once everything went through.
      assert reason == :normal
      refute Process.alive?(producer)
      assert ids_of(users) == ids

      for user <- users do
        "u" <> n = user.id
        assert user.email == String.downcase(email(String.to_integer(n)))
      end
    end
  end

  describe "protocol" do
    test "duplicate and unknown tags are cancelled, cancels echoed, unknown options ignored" do
      {:ok, producer} = Producer.start_link(schema: User, segments: 2, page_size: 50)

      # Options this producer does not know (GenStage's own, and nonsense) are ignored.
      tag = subscribe(producer, max_demand: 10, min_demand: 5, cancel: :transient, bogus: true)

      send(producer, {:"$gen_producer", {self(), tag}, {:subscribe, nil, []}})

      assert_receive {:"$gen_consumer", {^producer, ^tag}, {:cancel, :duplicated_subscription}},
                     5_000

      # The first subscription is intact.
      ask(producer, tag, 3)
      assert length(receive_events(producer, tag, 3)) == 3

      unknown = make_ref()
      ask(producer, unknown, 5)

      assert_receive {:"$gen_consumer", {^producer, ^unknown}, {:cancel, :unknown_subscription}},
                     5_000

      cancel(producer, tag, :no_more_thanks)
      assert_receive {:"$gen_consumer", {^producer, ^tag}, {:cancel, :no_more_thanks}}, 5_000

      # The cancelled subscription is gone: its tag is unknown now, and nothing comes on it.
      ask(producer, tag, 1)

      assert_receive {:"$gen_consumer", {^producer, ^tag}, {:cancel, :unknown_subscription}},
                     5_000

      assert events_in_mailbox(producer, tag, 200) == []

      # The producer lives on and serves a new subscription.
      again = subscribe(producer)
      ask(producer, again, 2)
      assert length(receive_events(producer, again, 2)) == 2

      GenServer.stop(producer)
    end

    test "a consumer that dies is dropped; the other is served to the end", %{ids: ids} do
      {:ok, producer} = Producer.start_link(schema: User, segments: 4, page_size: 50)
      tag = subscribe(producer)
      parent = self()

      # A second consumer takes 10 events and dies with its demand met. (One that dies with
      # demand outstanding keeps it counted as already requested, as gen_stage's demand
      # dispatcher does: see CloudStreams.ProducerEngine.)
      doomed =
        spawn(fn ->
          doomed_tag = subscribe(producer)
          ask(producer, doomed_tag, 10)
          send(parent, {:doomed_got, receive_events(producer, doomed_tag, 10)})
          Process.sleep(:infinity)
        end)

      assert_receive {:doomed_got, taken}, 10_000
      monitor = Process.monitor(doomed)
      Process.exit(doomed, :kill)
      assert_receive {:DOWN, ^monitor, :process, ^doomed, :killed}, 5_000

      {%{^tag => users}, reason} = consume(producer, %{tag => {100, 0}})
      assert reason == :normal
      assert ids_of(users ++ taken) == ids
    end
  end

  describe "errors and options" do
    test "a failing source exits with {:dynamo_error, %Dynamo.Error{}}, never :normal",
         %{before: before} do
      Process.flag(:trap_exit, true)
      {:ok, producer} = Producer.start_link(schema: Missing, segments: 2, page_size: 10)
      tag = subscribe(producer)

      # Nothing is read before demand: the missing table goes unnoticed until someone asks.
      refute_receive {:EXIT, ^producer, _}, 200
      ask(producer, tag, 10)

      assert_receive {:EXIT, ^producer, {:dynamo_error, %Dynamo.Error{} = error}}, 10_000
      assert error.type == :resource_not_found
      refute error.retryable
      assert events_in_mailbox(producer, tag, 0) == []
      assert_native_back_to(before)
    end

    test "under a supervisor, a failed scan is restarted (restart: :transient)" do
      children = [{Producer, schema: Missing, name: __MODULE__.Failing}]
      {:ok, sup} = Supervisor.start_link(children, strategy: :one_for_one)
      first = GenServer.whereis(__MODULE__.Failing)
      monitor = Process.monitor(first)

      tag = subscribe(first)
      ask(first, tag, 1)

      assert_receive {:DOWN, ^monitor, :process, ^first,
                      {:dynamo_error, %Dynamo.Error{type: :resource_not_found}}},
                     10_000

      # The supervisor handled the exit before this call: a new producer waits for demand.
      assert [{Producer, second, :worker, [Producer]}] = Supervisor.which_children(sup)
      assert is_pid(second) and second != first
      assert GenServer.whereis(__MODULE__.Failing) == second
      Supervisor.stop(sup)
    end

    test "bad options raise an ArgumentError naming the option" do
      error = assert_raise ArgumentError, fn -> Producer.start_link(schema: User, segments: 0) end
      assert error.message =~ ":segments"

      error = assert_raise ArgumentError, fn -> Producer.start_link(schema: User, bogus: 1) end
      assert error.message =~ ":bogus"

      error =
        assert_raise ArgumentError, fn -> Producer.start_link(schema: User, page_size: 0) end

      assert error.message =~ ":page_size"

      for not_a_schema <- [String, NoSuchModule, "users", nil] do
        error = assert_raise ArgumentError, fn -> Producer.start_link(schema: not_a_schema) end
        assert error.message =~ "schema"
      end

      error = assert_raise ArgumentError, fn -> Producer.start_link(segments: 2) end
      assert error.message =~ "schema"
    end

    test "a schema module that is not loaded yet is accepted" do
      # mix and iex load modules on first use: the producer is often the first to name its
      # schema (it starts early in a supervision tree), so it must load it, not reject it.
      dir = Path.join(System.tmp_dir!(), "producer_test_#{System.unique_integer([:positive])}")
      File.mkdir_p!(dir)

      on_exit(fn ->
        Code.delete_path(dir)
        File.rm_rf!(dir)
      end)

      [{module, beam}] =
        Code.compile_string("""
        defmodule Dynamo.ProducerTest.NotYetLoaded do
          use Dynamo.Schema

          item do
            table_name("cloud_streams_producer_test")
            field(:id, :string, partition_key: true)
            field(:email, :string)
          end
        end
        """)

      # On the code path, but not loaded: as a compiled schema is before its first call.
      File.write!(Path.join(dir, "#{module}.beam"), beam)
      true = :code.delete(module)
      _ = :code.purge(module)
      true = Code.prepend_path(dir)
      refute :code.is_loaded(module)

      {:ok, producer} = Producer.start_link(schema: module, page_size: 10)
      tag = subscribe(producer)
      ask(producer, tag, 3)
      assert [_, _, _] = events = receive_events(producer, tag, 3)
      assert Enum.all?(events, &(&1.__struct__ == module))
      GenServer.stop(producer)
    end
  end

  describe "no leak" do
    test "a stopped or killed producer closes its native stream", %{before: before} do
      for ending <- [:stop, :kill] do
        {:ok, producer} = Producer.start_link(schema: User, segments: 4, page_size: 50)
        tag = subscribe(producer)
        ask(producer, tag, 5)
        assert length(receive_events(producer, tag, 5)) == 5

        # Mid-scan, the stream is open, and its task and its 4 segments' tasks are counted.
        assert %{open_streams: open, live_tasks: tasks} = CloudStreams.stats()
        assert open >= 1 and tasks >= before.live_tasks + 5

        case ending do
          # terminate/2 closes the stream.
          :stop ->
            GenServer.stop(producer)

          # No terminate/2: the handle's garbage collection closes it.
          :kill ->
            Process.unlink(producer)
            Process.exit(producer, :kill)
        end

        assert_native_back_to(before)
      end
    end
  end

  describe "as GenStage and Flow drive it" do
    test "GenStage.stream(cancel: :transient): every item, then the stream ends", %{ids: ids} do
      {:ok, producer} = Producer.start_link(schema: User, segments: 4, page_size: 50)
      monitor = Process.monitor(producer)
      # What GenStage.stream/2 sends: the subscription, the whole max_demand, the mode.
      tag = {make_ref(), monitor}
      send(producer, {:"$gen_producer", {self(), tag}, {:subscribe, nil, [cancel: :transient]}})
      ask(producer, tag, 1000)
      GenServer.cast(producer, {:"$demand", :forward})

      {%{^tag => users}, reason} = consume(producer, %{tag => {500, 1000}}, monitor)
      assert reason == :normal
      assert ids_of(users) == ids
    end

    test "Flow.from_stages: :accumulate holds every event back until :forward", %{ids: ids} do
      {:ok, producer} = Producer.start_link(schema: User, segments: 4, page_size: 50)
      GenServer.cast(producer, {:"$demand", :accumulate})
      assert GenServer.call(producer, :"$demand") == :accumulate

      # Two stages subscribe and ask, as Flow's mappers do, while demand accumulates.
      a = subscribe(producer, cancel: :transient)
      b = subscribe(producer, cancel: :transient)
      ask(producer, a, 100)
      ask(producer, b, 100)
      assert events_in_mailbox(producer, a, 300) == []
      assert events_in_mailbox(producer, b, 0) == []

      GenServer.cast(producer, {:"$demand", :forward})
      assert GenServer.call(producer, :"$demand") == :forward

      {got, reason} = consume(producer, %{a => {50, 100}, b => {50, 100}})
      assert reason == :normal
      assert got[a] != [] and got[b] != []
      assert ids_of(got[a] ++ got[b]) == ids
    end

    test "GenStage.demand/2 in both modes, on a running scan" do
      {:ok, producer} = Producer.start_link(schema: User, segments: 1, page_size: 20)
      assert GenServer.call(producer, :"$demand") == :forward
      tag = subscribe(producer)
      ask(producer, tag, 5)
      assert length(receive_events(producer, tag, 5)) == 5

      # Accumulate mid-scan: even events already buffered wait for :forward.
      GenServer.cast(producer, {:"$demand", :accumulate})
      ask(producer, tag, 30)
      assert events_in_mailbox(producer, tag, 300) == []
      GenServer.cast(producer, {:"$demand", :forward})
      assert length(receive_events(producer, tag, 30)) == 30

      GenServer.stop(producer)
    end

    test ":accumulate while the last page is in flight: held, then every event, then :normal" do
      {:ok, producer} = Producer.start_link(schema: User, segments: 1, page_size: 1_000)
      monitor = Process.monitor(producer)
      tag = subscribe(producer)
      ask(producer, tag, 2_000)
      # The page is being fetched: the producer holds it (and the end of the scan) back.
      GenServer.cast(producer, {:"$demand", :accumulate})
      assert events_in_mailbox(producer, tag, 1_000) == []
      refute_received {:DOWN, ^monitor, _, _, _}

      GenServer.cast(producer, {:"$demand", :forward})
      assert length(receive_events(producer, tag, @items)) == @items
      assert_receive {:DOWN, ^monitor, :process, _, :normal}, 5_000
    end

    test "demand: :accumulate at start, as GenStage's init option" do
      {:ok, producer} = Producer.start_link(schema: User, demand: :accumulate, page_size: 20)
      assert GenServer.call(producer, :"$demand") == :accumulate
      tag = subscribe(producer)
      ask(producer, tag, 3)
      assert events_in_mailbox(producer, tag, 300) == []
      GenServer.cast(producer, {:"$demand", :forward})
      assert length(receive_events(producer, tag, 3)) == 3
      GenServer.stop(producer)
    end

    test "estimate_buffered_count, sync_info and async_info, unknown calls and casts" do
      {:ok, producer} = Producer.start_link(schema: User, segments: 1, page_size: 50)
      assert GenServer.call(producer, :"$estimate_buffered_count") == 0
      tag = subscribe(producer)
      ask(producer, tag, 5)
      assert length(receive_events(producer, tag, 5)) == 5
      # The page's other 45 items wait in the stage's buffer.
      assert GenServer.call(producer, :"$estimate_buffered_count") == 45

      assert GenServer.call(producer, {:"$info", :hello}) == :ok
      # (gen_stage counts the two infos buffered behind the events too; this engine does not.)
      GenServer.cast(producer, {:"$info", :hello_again})
      assert {:error, {:unknown_call, :what}} = GenServer.call(producer, :what)
      GenServer.cast(producer, :what)
      send(producer, :what)

      # Still serving, from the same buffer.
      ask(producer, tag, 45)
      assert length(receive_events(producer, tag, 45)) == 45
      assert GenServer.call(producer, :"$estimate_buffered_count") == 0
      GenServer.stop(producer)
    end

    test "a subscription with current cancels that one first" do
      {:ok, producer} = Producer.start_link(schema: User, segments: 1, page_size: 50)
      old = subscribe(producer)
      ask(producer, old, 2)
      assert length(receive_events(producer, old, 2)) == 2

      new = make_ref()

      send(
        producer,
        {:"$gen_producer", {self(), new}, {:subscribe, {old, :replaced}, []}}
      )

      assert_receive {:"$gen_consumer", {^producer, ^old}, {:cancel, :replaced}}, 5_000
      ask(producer, new, 3)
      assert length(receive_events(producer, new, 3)) == 3
      ask(producer, old, 1)

      assert_receive {:"$gen_consumer", {^producer, ^old}, {:cancel, :unknown_subscription}},
                     5_000

      GenServer.stop(producer)
    end

    test "demand larger than a page is served across pages, in batches within the demand" do
      {:ok, producer} = Producer.start_link(schema: User, segments: 1, page_size: 50)
      tag = subscribe(producer)
      ask(producer, tag, 120)
      assert length(receive_events(producer, tag, 120)) == 120
      assert events_in_mailbox(producer, tag, 200) == []
      GenServer.stop(producer)
    end

    test "the guide's Example 5 under a Supervisor: to the end, the supervisor alive, no restart",
         %{ids: ids} do
      me = self()

      children = [
        {Producer, schema: User, name: __MODULE__.Example5, segments: 8, page_size: 50},
        Supervisor.child_spec(
          {CloudStreams.StageConsumer,
           name: __MODULE__.Transformer,
           subscribe_to: __MODULE__.Example5,
           transform: &%{&1 | email: String.downcase(&1.email)},
           report_to: me},
          id: :transformer
        ),
        Supervisor.child_spec(
          {CloudStreams.StageConsumer,
           name: __MODULE__.Writer,
           subscribe_to: __MODULE__.Transformer,
           max_demand: 100,
           report_to: me},
          id: :writer
        )
      ]

      {:ok, sup} = Supervisor.start_link(children, strategy: :one_for_one)
      writer = GenServer.whereis(__MODULE__.Writer)
      writer_monitor = Process.monitor(writer)
      users = receive_reported(__MODULE__.Writer, length(ids), [])
      assert ids_of(users) == ids
      assert Enum.all?(users, &(&1.email == String.downcase(&1.email)))

      # Everyone ends :normal and nobody is restarted (restart: :transient throughout).
      assert_receive {:DOWN, ^writer_monitor, :process, ^writer, :normal}, 10_000
      assert Process.alive?(sup)

      assert [
               {:writer, :undefined, :worker, _},
               {:transformer, :undefined, :worker, _},
               {Producer, :undefined, :worker, _}
             ] = Supervisor.which_children(sup)

      assert_received {:started, __MODULE__.Transformer}
      assert_received {:started, __MODULE__.Writer}
      refute_received {:started, _}
      Supervisor.stop(sup)
    end
  end

  ## Consumers, speaking the protocol

  defp receive_reported(_name, 0, acc), do: acc

  defp receive_reported(name, n, acc) do
    receive do
      {:events, ^name, events} -> receive_reported(name, n - length(events), events ++ acc)
    after
      30_000 -> flunk("#{n} items never reached #{inspect(name)}")
    end
  end

  # What GenStage.estimate_buffered_count/2 asks.
  defp buffered(producer), do: GenServer.call(producer, :"$estimate_buffered_count")

  defp id(i), do: "u" <> String.pad_leading(Integer.to_string(i), 4, "0")
  defp email(i), do: "User#{i}@Example.COM"

  defp ids_of(users), do: users |> Enum.map(& &1.id) |> Enum.sort()

  # Subscribes the calling process under a new tag, as GenStage's consumers do.
  defp subscribe(producer, opts \\ []) do
    tag = make_ref()
    send(producer, {:"$gen_producer", {self(), tag}, {:subscribe, nil, opts}})
    tag
  end

  defp ask(producer, tag, n), do: send(producer, {:"$gen_producer", {self(), tag}, {:ask, n}})

  defp cancel(producer, tag, reason),
    do: send(producer, {:"$gen_producer", {self(), tag}, {:cancel, reason}})

  # Receives events on `tag` until `n` have come. Each batch must be a non-empty list, never
  # more than the demand still outstanding.
  defp receive_events(producer, tag, n, acc \\ [])
  defp receive_events(_producer, _tag, 0, acc), do: acc

  defp receive_events(producer, tag, n, acc) do
    receive do
      {:"$gen_consumer", {^producer, ^tag}, events} when is_list(events) ->
        assert events != [] and length(events) <= n,
               "a batch of #{length(events)} events with #{n} asked"

        receive_events(producer, tag, n - length(events), acc ++ events)
    after
      10_000 -> flunk("#{n} events asked on #{inspect(tag)} never came")
    end
  end

  # The next batch on any of `tags`: {tag, events}.
  defp receive_any_events(producer, tags) do
    receive do
      {:"$gen_consumer", {^producer, tag}, events} when is_list(events) ->
        assert tag in tags
        {tag, events}
    after
      10_000 -> flunk("no events came")
    end
  end

  # The events on `tag` that arrive within `wait` ms. It receives rather than counts the
  # mailbox (architecture §4: a message can wait unseen in the signal queue).
  defp events_in_mailbox(producer, tag, wait) do
    Process.sleep(wait)

    receive do
      {:"$gen_consumer", {^producer, ^tag}, events} when is_list(events) ->
        events ++ events_in_mailbox(producer, tag, 0)
    after
      0 -> []
    end
  end

  # Consumes on each subscription of `demand` (tag => {ask_size, outstanding}) until the
  # producer exits. A subscription asks `ask_size` more each time its demand is met; every
  # batch is checked against its own subscription's outstanding demand. Returns
  # {%{tag => events}, exit_reason}.
  defp consume(producer, demand, monitor \\ nil) do
    monitor = monitor || Process.monitor(producer)

    demand =
      Map.new(demand, fn {tag, {size, outstanding}} ->
        {tag, {size, top_up(producer, tag, size, outstanding)}}
      end)

    consume_loop(producer, monitor, demand, Map.new(demand, fn {tag, _} -> {tag, []} end))
  end

  defp consume_loop(producer, monitor, demand, got) do
    receive do
      {:"$gen_consumer", {^producer, tag}, events}
      when is_map_key(demand, tag) and is_list(events) ->
        {size, outstanding} = Map.fetch!(demand, tag)

        assert events != [] and length(events) <= outstanding,
               "a batch of #{length(events)} events with #{outstanding} asked"

        outstanding = top_up(producer, tag, size, outstanding - length(events))
        got = Map.update!(got, tag, &Enum.reverse(events, &1))
        consume_loop(producer, monitor, Map.put(demand, tag, {size, outstanding}), got)

      {:"$gen_consumer", {^producer, tag}, {:cancel, reason}} ->
        flunk("subscription #{inspect(tag)} cancelled: #{inspect(reason)}")

      {:DOWN, ^monitor, :process, _pid, reason} ->
        {Map.new(got, fn {tag, events} -> {tag, Enum.reverse(events)} end), reason}
    after
      30_000 -> flunk("the producer neither sent events nor exited")
    end
  end

  defp top_up(producer, tag, size, 0) do
    ask(producer, tag, size)
    size
  end

  defp top_up(_producer, _tag, _size, outstanding), do: outstanding

  # A hand-written producer_consumer, as the guide's Transformer is with GenStage: a consumer
  # of `producer` and a producer for one downstream subscription. Downstream demand is
  # forwarded upstream one for one (the transform maps 1:1), so it never sends more than was
  # asked. Like GenStage's default (cancel: :permanent), it exits when its producer does.
  defp start_transformer(producer, transform) do
    spawn(fn ->
      upstream = Process.monitor(producer)
      up = subscribe(producer)
      transformer_loop(producer, upstream, up, nil, transform)
    end)
  end

  defp transformer_loop(producer, upstream, up, down, transform) do
    receive do
      {:"$gen_producer", {pid, tag}, {:subscribe, nil, _opts}} when down == nil ->
        Process.monitor(pid)
        transformer_loop(producer, upstream, up, {pid, tag}, transform)

      {:"$gen_producer", {pid, tag}, {:ask, n}} when down == {pid, tag} ->
        ask(producer, up, n)
        transformer_loop(producer, upstream, up, down, transform)

      {:"$gen_consumer", {^producer, ^up}, events} when is_list(events) ->
        {pid, tag} = down
        send(pid, {:"$gen_consumer", {self(), tag}, Enum.map(events, transform)})
        transformer_loop(producer, upstream, up, down, transform)

      {:DOWN, ^upstream, :process, _pid, reason} ->
        exit(reason)
    end
  end

  # Native tasks and streams are back to what they were (never above: others may close).
  defp assert_native_back_to(before) do
    wait_for_stats(fn stats ->
      stats.live_tasks <= before.live_tasks and stats.open_streams <= before.open_streams
    end)
  end
end
