defmodule CloudStreams.DistributedTest do
  # Scaling past one machine on the BEAM's distribution: a parallel scan whose segments are
  # read on peer nodes (lib/dynamo/table/stream/distributed.ex) and a bulk copy spread over
  # nodes (lib/object_store_x/transfer.ex). Peers are started with OTP's :peer module; each
  # reaches DynamoDB Local through its own counting proxy, so the test sees which node read.
  use ExUnit.Case, async: false
  @moduletag :dynamodb

  import CloudStreams.NativeHelpers, only: [wait_until: 1]

  alias CloudStreams.{Cluster, CountingProxy}

  @moduletag :tmp_dir
  @moduletag timeout: 180_000
  @items 600

  setup_all do
    _ = Dynamo.Table.delete_table(ClusterUser)
    :ok = Dynamo.Table.create_table(ClusterUser)
    users = for n <- 1..@items, do: %ClusterUser{id: id(n), n: n}
    {:ok, @items} = Dynamo.Table.batch_write_item(ClusterUser, users)
    on_exit(fn -> Dynamo.Table.delete_table(ClusterUser) end)
    :ok
  end

  setup do
    endpoint = System.fetch_env!("CLOUD_STREAMS_DYNAMODB_ENDPOINT")
    peers = for _ <- 1..2, do: start_counted_peer(endpoint)
    {:ok, peers: peers}
  end

  defp start_counted_peer(endpoint) do
    {proxy, requests} = CountingProxy.start(endpoint)
    {peer, node} = Cluster.start_peer!(proxy)
    %{peer: peer, node: node, requests: requests}
  end

  defp id(n), do: "c" <> String.pad_leading(Integer.to_string(n), 4, "0")
  defp all_ids, do: Enum.map(1..@items, &id/1)
  defp requests(%{requests: agent}), do: length(CountingProxy.requests(agent))

  test "a parallel scan over nodes delivers every item exactly once, read on every node",
       %{peers: peers} do
    nodes = [node() | Enum.map(peers, & &1.node)]

    ids =
      Dynamo.Table.Stream.parallel_scan(ClusterUser, segments: 6, page_size: 25, nodes: nodes)
      |> Enum.map(& &1.id)

    assert Enum.sort(ids) == all_ids()
    for peer <- peers, do: assert(requests(peer) > 0, "#{peer.node} read nothing")
  end

  test "a node going down mid-scan: its segments resume on another node, nothing lost or doubled",
       %{peers: [doomed, survivor]} do
    parent = self()

    ids =
      Dynamo.Table.Stream.parallel_scan(ClusterUser,
        segments: 4,
        page_size: 10,
        nodes: [doomed.node, survivor.node]
      )
      |> Stream.with_index(1)
      |> Stream.each(fn {_user, i} ->
        if i == 50 do
          Cluster.stop_peer(doomed.peer)
          send(parent, :stopped)
        end

        Process.sleep(1)
      end)
      |> Enum.map(fn {user, _} -> user.id end)

    assert_received :stopped
    assert length(ids) == @items
    assert Enum.sort(ids) == all_ids()
    # The survivor read the doomed node's unfinished segments too: more than its own half.
    assert requests(survivor) > div(@items, 2) / 10
  end

  test "a DynamoDB error on a remote node raises Dynamo.Error in the caller", %{peers: peers} do
    error =
      assert_raise Dynamo.Error, fn ->
        Dynamo.Table.Stream.parallel_scan(ClusterUser,
          segments: 2,
          nodes: Enum.map(peers, & &1.node),
          config: [endpoint: "http://127.0.0.1:1", max_attempts: 1]
        )
        |> Enum.to_list()
      end

    assert error.retryable
    assert error.message =~ "segment"
  end

  test "stopping the enumeration stops the readers on every node", %{peers: peers} do
    nodes = Enum.map(peers, & &1.node)

    assert [_ | _] =
             Dynamo.Table.Stream.parallel_scan(ClusterUser, segments: 4, nodes: nodes)
             |> Enum.take(5)

    for node <- nodes do
      wait_until(fn ->
        :erpc.call(node, Task.Supervisor, :children, [CloudStreams.TaskSupervisor]) == [] and
          :erpc.call(node, CloudStreams, :stats, []).open_streams == 0
      end)
    end
  end

  test "bad nodes: option", %{peers: _} do
    assert_raise ArgumentError, ~r/:nodes/, fn ->
      Dynamo.Table.Stream.parallel_scan(ClusterUser, nodes: []) |> Enum.to_list()
    end

    assert_raise ArgumentError, ~r/:nodes/, fn ->
      Dynamo.Table.Stream.parallel_scan(ClusterUser, nodes: ["a"]) |> Enum.to_list()
    end
  end

  test "copy_many spreads the objects over nodes and survives one going down",
       %{peers: [doomed, survivor], tmp_dir: dir} do
    from = {:local, root: Path.join(dir, "from"), create_root: true}
    to = {:local, root: Path.join(dir, "to"), create_root: true}
    source = ObjectStoreX.new!(:local, elem(from, 1))
    paths = for i <- 1..40, do: "objects/#{i}.bin"
    bodies = Map.new(paths, &{&1, :crypto.strong_rand_bytes(512 * 1024)})
    for {path, body} <- bodies, do: :ok = ObjectStoreX.put(source, path, body)

    copy =
      Task.async(fn ->
        ObjectStoreX.Transfer.copy_many(from, to, paths,
          nodes: [doomed.node, survivor.node],
          max_concurrency: 2
        )
      end)

    destination = ObjectStoreX.new!(:local, elem(to, 1))
    wait_until(fn -> length(ObjectStoreX.list!(destination, prefix: "objects")) >= 5 end)
    Cluster.stop_peer(doomed.peer)

    assert {:ok, %{copied: 40, bytes: bytes}} = Task.await(copy, 60_000)
    assert bytes == 40 * 512 * 1024
    for {path, body} <- bodies, do: assert(ObjectStoreX.get!(destination, path) == body)
  end

  test "copy_many reports the objects that failed, and takes store specs only" do
    dir = Path.join(System.tmp_dir!(), "copy-fail-#{System.unique_integer([:positive])}")
    from = {:local, root: Path.join(dir, "from"), create_root: true}
    to = {:local, root: Path.join(dir, "to"), create_root: true}
    :ok = ObjectStoreX.put(ObjectStoreX.new!(:local, elem(from, 1)), "here", "x")

    assert {:error, %{copied: 1, failed: [{"missing", %ObjectStoreX.Error{kind: :not_found}}]}} =
             ObjectStoreX.Transfer.copy_many(from, to, ["here", "missing"])

    assert_raise ArgumentError, ~r/as \{backend, options\}/, fn ->
      ObjectStoreX.Transfer.copy_many(ObjectStoreX.new!(:memory), to, ["x"])
    end

    File.rm_rf!(dir)
  end
end
