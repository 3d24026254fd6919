defmodule CloudStreams.Cluster.DispatcherTest do
  # The dispatcher under copy_many and distributed scans, driven with a scripted worker
  # (test/support/cluster.ex) on real :peer nodes.
  use ExUnit.Case, async: false

  alias CloudStreams.Cluster
  alias CloudStreams.Cluster.{Dispatcher, TestWorker}

  @moduletag timeout: 120_000
  @bound 15_000

  setup do
    # The peers need no DynamoDB here: the endpoint only fills their configuration.
    endpoint = System.get_env("CLOUD_STREAMS_DYNAMODB_ENDPOINT", "http://127.0.0.1:9")
    nodes = for _ <- 1..2, do: elem(Cluster.start_peer!(endpoint), 1)
    {:ok, nodes: nodes}
  end

  # Every event until :done, within a bound, as {completed, failed, outputs}.
  defp run_all(items, opts) do
    task =
      Task.async(fn ->
        {args, opts} = Keyword.pop(opts, :args, %{refuse_on: []})
        collect(Dispatcher.start(TestWorker, args, [items: items] ++ opts), %{}, %{}, [])
      end)

    Task.await(task, @bound)
  end

  defp collect(state, completed, failed, outputs) do
    case Dispatcher.next(state) do
      {:completed, id, value, state} ->
        collect(state, Map.put(completed, id, value), failed, outputs)

      {:failed, id, reason, state} ->
        collect(state, completed, Map.put(failed, id, reason), outputs)

      {:output, id, data, state} ->
        collect(state, completed, failed, [{id, data} | outputs])

      {:done, _state} ->
        {completed, failed, Enum.reverse(outputs)}
    end
  end

  test "raises, throws and exits are caught and tried max_attempts times; {:error, _} fails at once",
       %{nodes: nodes} do
    {:ok, always} = Agent.start_link(fn -> 0 end)
    {:ok, once} = Agent.start_link(fn -> 0 end)

    items = [
      raise: {:raise, "boom"},
      throw: {:throw, :thrown},
      exit: {:exit, :bye},
      always: {:flaky, always, 1_000},
      once: {:flaky, once, 1},
      error: {:error, :refused},
      fine: {:ok, 42}
    ]

    {completed, failed, []} = run_all(items, nodes: nodes, max_concurrency: 2, max_attempts: 3)

    assert completed == %{fine: 42, once: 2}
    assert failed.error == :refused
    # The flaky item ran exactly max_attempts times; the others failed the same way.
    assert Agent.get(always, & &1) == 3

    for {id, text} <- [raise: "RuntimeError", throw: ":thrown", exit: ":bye", always: "flaky"] do
      assert %CloudStreams.Error{kind: :worker_crashed, message: message} = failed[id]
      assert message =~ text
      assert message =~ "gave up after 3 attempts"
      assert message =~ "(in CloudStreams.Cluster.TestWorker."
    end
  end

  test "a worker that dies holding an item is replaced; the item fails after max_attempts",
       %{nodes: nodes} do
    items = [{:killed, {:kill}} | for(i <- 1..10, do: {i, {:sleep, 20}})]
    {completed, failed, []} = run_all(items, nodes: nodes, max_concurrency: 1, max_attempts: 2)

    assert Map.keys(completed) |> Enum.sort() == Enum.to_list(1..10)
    # Both nodes kept working: each lost worker was replaced.
    assert completed |> Map.values() |> Enum.uniq() |> Enum.sort() == Enum.sort(nodes)
    assert %CloudStreams.Error{kind: :worker_crashed, message: message} = failed.killed
    assert message =~ ":killed"
    assert message =~ "gave up after 2 attempts"
  end

  test "no node can run a worker: every item fails with :no_workers, naming each node's reason",
       %{nodes: [stopped, refusing]} do
    Cluster.stop_app!(stopped)
    absent = :"absent#{System.unique_integer([:positive])}@127.0.0.1"

    {completed, failed, []} =
      run_all([a: {:ok, 1}, b: {:ok, 2}],
        nodes: [stopped, absent, refusing],
        args: %{refuse_on: [refusing]}
      )

    assert completed == %{}
    assert %{a: %CloudStreams.Error{kind: :no_workers, message: message}, b: _} = failed
    assert message =~ "#{stopped}: CloudStreams.TaskSupervisor is not running"
    assert message =~ "#{absent}: it is not reachable"
    assert message =~ "#{refusing}: this node refuses"
  end

  test "a node that cannot run workers is skipped; the others do the work",
       %{nodes: [good, refusing]} do
    items = for i <- 1..6, do: {i, {:node}}

    {completed, %{}, []} = run_all(items, nodes: [refusing, good], args: %{refuse_on: [refusing]})

    assert Map.values(completed) == List.duplicate(good, 6)
  end

  test "two jobs in one process each get their own messages; pull mode keeps one in flight per node",
       %{nodes: [node | _]} do
    outputs = fn tag -> for i <- 1..20, do: {tag, i} end
    items = fn tag -> for s <- 1..3, do: {s, {:emit, outputs.({tag, s})}} end
    opts = [nodes: [node], max_concurrency: 3, pull: true]
    left = Dispatcher.start(TestWorker, %{refuse_on: []}, [items: items.(:left)] ++ opts)
    right = Dispatcher.start(TestWorker, %{refuse_on: []}, [items: items.(:right)] ++ opts)

    {left_events, right_events} = alternate(left, right, [], [])

    for {events, tag} <- [{left_events, :left}, {right_events, :right}] do
      assert Enum.sort(events) == Enum.sort(for s <- 1..3, o <- outputs.({tag, s}), do: {s, o})
    end
  end

  # Takes one event from each job in turn, checking after each that at most one message per
  # job is waiting in the mailbox (one node, so one in flight).
  defp alternate(nil, nil, l, r), do: {l, r}

  defp alternate(left, right, l, r) do
    {left, l} = step(left, l)
    {right, r} = step(right, r)
    Process.sleep(2)
    {:messages, messages} = Process.info(self(), :messages)
    assert length(messages) <= 2, "more than one message per job in flight: #{length(messages)}"
    alternate(left, right, l, r)
  end

  defp step(nil, acc), do: {nil, acc}

  defp step(state, acc) do
    case Dispatcher.next(state) do
      {:output, id, data, state} -> {state, [{id, data} | acc]}
      {:completed, _id, 20, state} -> {state, acc}
      {:done, _} -> {nil, acc}
    end
  end
end
