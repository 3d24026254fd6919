defmodule LocalOnlyUser do
  @moduledoc false
  # A schema compiled into this test file only: peer nodes cannot load it.
  use Dynamo.Schema

  item do
    table_name("cloud_streams_cluster_users")

    field(:id, :string, partition_key: true)
    field(:n, :integer)
  end
end

defmodule CloudStreams.DistributedTest do
  # Scaling past one machine on the BEAM's distribution: a parallel scan whose segments are
  # read on peer nodes (lib/dynamo/table/stream/distributed.ex) and a bulk copy spread over
  # nodes (lib/object_store_x/transfer.ex). Peers are started with OTP's :peer module; each
  # reaches DynamoDB Local through its own counting proxy, so the test sees which node read.
  use ExUnit.Case, async: false
  @moduletag :dynamodb

  import CloudStreams.NativeHelpers, only: [wait_until: 1, assert_native_idle: 0]
  import ExUnit.CaptureLog

  alias CloudStreams.{Cluster, CountingProxy}
  alias CloudStreams.Cluster.LogForwarder

  @moduletag :tmp_dir
  @moduletag timeout: 180_000
  @items 600
  # A credential that must never be printed: in store specs and scan configs below.
  @secret "h4-cluster-secret-#{System.unique_integer([:positive])}"
  # How long a failure may take to be reported (far more than it needs).
  @bound 30_000

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
    copy_losing_a_node(doomed, survivor, dir, fn -> Cluster.stop_peer(doomed.peer) end)
  end

  test "copy_many reports the objects that failed, and takes store specs only" do
    dir = Path.join(System.tmp_dir!(), "copy-fail-#{System.unique_integer([:positive])}")
    from = {:local, root: Path.join(dir, "from"), create_root: true}
    to = {:local, root: Path.join(dir, "to"), create_root: true}
    :ok = ObjectStoreX.put(ObjectStoreX.new!(:local, elem(from, 1)), "here", "x")

    assert {:error, %{copied: 1, failed: [{"missing", %ObjectStoreX.Error{kind: :not_found}}]}} =
             ObjectStoreX.Transfer.copy_many(from, to, ["here", "missing"])

    # No listed node can run a copier: each object fails, saying why.
    absent = :"absent#{System.unique_integer([:positive])}@127.0.0.1"

    assert {:error,
            %{copied: 0, failed: [{"here", %CloudStreams.Error{kind: :no_workers} = error}]}} =
             ObjectStoreX.Transfer.copy_many(from, to, ["here"], nodes: [absent])

    assert error.message ==
             "no node can run a copier of ObjectStoreX.Transfer.copy_many/4 " <>
               "(#{absent}: it is not reachable)"

    assert_raise ArgumentError,
                 ~r/copy_many\/4 takes paths as strings, got :here at position 1/,
                 fn ->
                   ObjectStoreX.Transfer.copy_many(from, to, ["here", :here])
                 end

    assert_raise ArgumentError, ~r/paths as an enumerable of strings, got: 42/, fn ->
      ObjectStoreX.Transfer.copy_many(from, to, 42)
    end

    assert_raise ArgumentError, ~r/as \{backend, options\}/, fn ->
      ObjectStoreX.Transfer.copy_many(ObjectStoreX.new!(:memory), to, ["x"])
    end

    File.rm_rf!(dir)
  end

  # Runs `fun` in a task, within @bound: `{:ok, value}` or `{:raised, exception}`.
  defp bounded(fun) do
    task =
      Task.async(fn ->
        try do
          {:ok, fun.()}
        rescue
          exception -> {:raised, exception}
        end
      end)

    case Task.yield(task, @bound) || Task.shutdown(task, :brutal_kill) do
      {:ok, result} -> result
      nil -> flunk("no result within #{@bound} ms")
    end
  end

  defp halves(nodes) do
    scan = fn op ->
      Dynamo.Table.Stream.parallel_scan(ClusterUser,
        segments: 3,
        page_size: 20,
        nodes: nodes,
        filter_expression: "n #{op} :m",
        expression_attribute_values: %{":m" => div(@items, 2)}
      )
    end

    {scan.("<="), scan.(">")}
  end

  test "two distributed scans zipped in one process each get exactly their own items",
       %{peers: peers} do
    {low, high} = halves(Enum.map(peers, & &1.node))
    assert {:ok, pairs} = bounded(fn -> low |> Stream.zip(high) |> Enum.to_list() end)
    {lows, highs} = Enum.unzip(pairs)

    assert Enum.sort(Enum.map(lows, & &1.n)) == Enum.to_list(1..div(@items, 2))
    assert Enum.sort(Enum.map(highs, & &1.n)) == Enum.to_list((div(@items, 2) + 1)..@items)
  end

  test "no listed node can run a reader (schema not loaded there): a clear error, promptly",
       %{peers: peers} do
    nodes = Enum.map(peers, & &1.node)

    assert {:raised, %CloudStreams.Error{kind: :no_workers, message: message}} =
             bounded(fn ->
               Dynamo.Table.Stream.parallel_scan(LocalOnlyUser, segments: 2, nodes: nodes)
               |> Enum.to_list()
             end)

    for node <- nodes,
        do: assert(message =~ "#{node}: the schema module LocalOnlyUser is not loaded there")
  end

  test "no listed node can run a reader (:cloud_streams not started there): a clear error",
       %{peers: peers} do
    nodes = Enum.map(peers, & &1.node)
    for node <- nodes, do: Cluster.stop_app!(node)

    assert {:raised, %CloudStreams.Error{kind: :no_workers, message: message}} =
             bounded(fn ->
               Dynamo.Table.Stream.parallel_scan(ClusterUser, segments: 2, nodes: nodes)
               |> Enum.to_list()
             end)

    for node <- nodes,
        do: assert(message =~ "#{node}: CloudStreams.TaskSupervisor is not running")
  end

  test "readers that keep crashing: an error after the attempt limit, and no secret in any log",
       %{peers: peers} do
    nodes = Enum.map(peers, & &1.node)
    for node <- nodes, do: LogForwarder.attach!(node, self())
    # Built on each node: an endpoint that is no URL raises ArgumentError in every reader.
    config = [
      endpoint: "not a url",
      access_key_id: "cloudstreamstest",
      secret_access_key: @secret
    ]

    log =
      capture_log(fn ->
        result =
          bounded(fn ->
            Dynamo.Table.Stream.parallel_scan(ClusterUser,
              segments: 2,
              nodes: nodes,
              config: config
            )
            |> Enum.to_list()
          end)

        send(self(), {:result, result})
      end)

    assert_received {:result, {:raised, %CloudStreams.Error{kind: :worker_crashed} = error}}
    assert error.message =~ "ArgumentError"
    assert error.message =~ ":endpoint"
    assert error.message =~ "gave up after 3 attempts"
    refute error.message =~ @secret
    refute log =~ @secret
    Process.sleep(200)
    for line <- LogForwarder.lines(), do: refute(line =~ @secret)
    assert_readers_gone(nodes)
  end

  test "a node killed mid-scan: its segments resume elsewhere, each item exactly once",
       %{peers: [doomed, survivor]} do
    ids =
      Dynamo.Table.Stream.parallel_scan(ClusterUser,
        segments: 4,
        page_size: 10,
        nodes: [doomed.node, survivor.node]
      )
      |> Stream.with_index(1)
      |> Stream.each(fn {_user, i} ->
        if i == 50, do: Cluster.kill_peer!(doomed.node)
        Process.sleep(1)
      end)
      |> Enum.map(fn {user, _} -> user.id end)

    assert length(ids) == @items
    assert Enum.sort(ids) == all_ids()
    refute doomed.node in Node.list()
  end

  test "a reader killed mid-scan (its node stays up) is replaced there, each item exactly once",
       %{peers: [peer, _]} do
    ids =
      Dynamo.Table.Stream.parallel_scan(ClusterUser,
        segments: 2,
        page_size: 10,
        nodes: [peer.node]
      )
      |> Stream.with_index(1)
      |> Stream.each(fn {_user, i} ->
        if i == 50 do
          [reader | _] =
            :erpc.call(peer.node, Task.Supervisor, :children, [CloudStreams.TaskSupervisor])

          Process.exit(reader, :kill)
        end
      end)
      |> Enum.map(fn {user, _} -> user.id end)

    assert length(ids) == @items
    assert Enum.sort(ids) == all_ids()
    assert_readers_gone([peer.node])
  end

  defp assert_readers_gone(nodes) do
    for node <- nodes do
      wait_until(fn ->
        :erpc.call(node, Task.Supervisor, :children, [CloudStreams.TaskSupervisor]) == [] and
          :erpc.call(node, CloudStreams, :stats, []).open_streams == 0
      end)
    end
  end

  # 40 objects copied over `doomed` and `survivor`; `take_down` is called once 5 have
  # landed. Every object must end up in the destination, intact.
  defp copy_losing_a_node(doomed, survivor, dir, take_down) do
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
    take_down.()

    assert {:ok, %{copied: 40, bytes: bytes}} = Task.await(copy, 60_000)
    assert bytes == 40 * 512 * 1024
    for {path, body} <- bodies, do: assert(ObjectStoreX.get!(destination, path) == body)
  end

  defp s3_spec(prefix) do
    {
      :s3,
      # moto checks no signature: any secret will do, and this one must never be printed.
      bucket: System.fetch_env!("CLOUD_STREAMS_S3_BUCKET"),
      endpoint: System.fetch_env!("CLOUD_STREAMS_S3_ENDPOINT"),
      region: "us-east-1",
      access_key_id: "cloudstreamstest",
      secret_access_key: @secret,
      allow_http: true,
      prefix: prefix
    }
  end

  defp s3_source!(count, size) do
    {backend, opts} = spec = s3_spec("h4-copy-#{System.unique_integer([:positive])}")
    store = ObjectStoreX.new!(backend, opts)
    bodies = Map.new(1..count, &{"objects/#{&1}.bin", :crypto.strong_rand_bytes(size)})
    for {path, body} <- bodies, do: :ok = ObjectStoreX.put(store, path, body)
    {spec, bodies}
  end

  test "copy_many with a to_path that raises or returns a non-string: per-item failures, promptly",
       %{peers: peers, tmp_dir: dir} do
    {from, bodies} = s3_source!(3, 1_000)
    to = {:local, root: Path.join(dir, "to"), create_root: true}
    [bad, odd, good] = bodies |> Map.keys() |> Enum.sort()

    to_path = fn
      ^bad -> raise "no destination for #{bad}"
      ^odd -> :not_a_string
      path -> "copied/" <> path
    end

    nodes = [node() | Enum.map(peers, & &1.node)]
    for node <- tl(nodes), do: LogForwarder.attach!(node, self())

    log =
      capture_log(fn ->
        result =
          bounded(fn ->
            ObjectStoreX.Transfer.copy_many(from, to, [bad, odd, good],
              nodes: nodes,
              to_path: to_path
            )
          end)

        send(self(), {:result, result})
      end)

    assert_received {:result, {:ok, {:error, %{copied: 1, bytes: 1_000, failed: failed}}}}

    assert [
             {^bad, %ObjectStoreX.Error{kind: :invalid_argument, path: ^bad} = raised},
             {^odd, %ObjectStoreX.Error{kind: :invalid_argument, path: ^odd} = returned}
           ] = failed

    assert raised.message =~ "RuntimeError: no destination for #{bad}"
    assert returned.message =~ ":not_a_string"
    destination = ObjectStoreX.new!(:local, elem(to, 1))
    assert ObjectStoreX.get!(destination, "copied/" <> good) == bodies[good]
    assert_readers_gone(nodes)
    refute log =~ @secret
    Process.sleep(200)
    for line <- LogForwarder.lines(), do: refute(line =~ @secret)
  end

  test "copy_many: a node killed mid-copy, every object ends up in the destination",
       %{peers: [doomed, survivor], tmp_dir: dir} do
    copy_losing_a_node(doomed, survivor, dir, fn -> Cluster.kill_peer!(doomed.node) end)
  end

  test "copy_many: a copier killed mid-copy is replaced; what a copier holds shows no secret",
       %{tmp_dir: dir} do
    {from, bodies} = s3_source!(12, 1024 * 1024)
    to = {:local, root: Path.join(dir, "to"), create_root: true}
    parent = self()

    log =
      capture_log(fn ->
        copy =
          Task.async(fn ->
            ObjectStoreX.Transfer.copy_many(from, to, Map.keys(bodies), max_concurrency: 2)
          end)

        wait_until(fn -> Task.Supervisor.children(CloudStreams.TaskSupervisor) != [] end)
        [copier | _] = Task.Supervisor.children(CloudStreams.TaskSupervisor)
        # A crash report prints the task's arguments, which its stack holds, and its dictionary.
        {:backtrace, stack} = Process.info(copier, :backtrace)
        {:dictionary, dictionary} = Process.info(copier, :dictionary)
        send(parent, {:held, stack, inspect(dictionary, limit: :infinity)})
        Process.exit(copier, :kill)
        send(parent, {:result, Task.await(copy, 60_000)})
      end)

    assert_received {:result, {:ok, %{copied: 12}}}
    destination = ObjectStoreX.new!(:local, elem(to, 1))
    for {path, body} <- bodies, do: assert(ObjectStoreX.get!(destination, path) == body)
    assert_received {:held, stack, dictionary}
    assert stack =~ "CloudStreams.Cluster.Dispatcher"
    refute stack =~ @secret
    refute dictionary =~ @secret
    refute log =~ @secret
  end

  test "copy_many whose caller dies mid-object: the copier stops and its upload is aborted",
       %{tmp_dir: dir} do
    from = {:local, root: Path.join(dir, "from"), create_root: true}

    :ok =
      ObjectStoreX.put(
        ObjectStoreX.new!(:local, elem(from, 1)),
        "big.bin",
        :crypto.strong_rand_bytes(128 * 1024 * 1024)
      )

    prefix = "h4-abort-#{System.unique_integer([:positive])}"
    {backend, opts} = to = s3_spec(prefix)
    destination = ObjectStoreX.new!(backend, opts)

    caller = spawn(fn -> ObjectStoreX.Transfer.copy_many(from, to, ["big.bin"]) end)
    # The caller is taken away once the multipart upload is under way on moto.
    wait_until(fn -> CloudStreams.S3Uploads.open(prefix) != [] end)
    Process.exit(caller, :kill)

    wait_until(fn -> Task.Supervisor.children(CloudStreams.TaskSupervisor) == [] end)
    assert_native_idle()

    assert {:error, %ObjectStoreX.Error{kind: :not_found}} =
             ObjectStoreX.head(destination, "big.bin")

    # And the upload was aborted, not left behind.
    wait_until(fn -> CloudStreams.S3Uploads.open(prefix) == [] end)
  end
end
