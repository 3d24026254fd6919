defmodule CloudStreams.Cluster do
  @moduledoc false
  # Peer nodes for the distribution tests, on OTP's own :peer module: this VM becomes a
  # distributed node (epmd bound to 127.0.0.1), each peer gets our code paths and starts
  # :cloud_streams, with DynamoDB pointed at `endpoint`.

  def ensure_distributed! do
    unless Node.alive?() do
      # epmd binds 127.0.0.1 only; a running epmd is reused.
      {_, 0} = System.cmd("epmd", ["-daemon", "-address", "127.0.0.1"])
      # The OS pid keeps names apart when several test VMs share one epmd.
      name = :"cloud_streams_test_#{System.pid()}_#{System.unique_integer([:positive])}@127.0.0.1"
      {:ok, _} = Node.start(name, :longnames)
    end

    :ok
  end

  @doc "Starts a peer; returns `{peer, node}`. Stopped when the test ends."
  def start_peer!(dynamo_endpoint) do
    ensure_distributed!()
    name = :"peer#{System.pid()}_#{System.unique_integer([:positive])}"
    paths = Enum.flat_map(:code.get_path(), &[~c"-pa", &1])

    {:ok, peer, node} =
      :peer.start(%{
        name: name,
        host: ~c"127.0.0.1",
        longnames: true,
        # Peers connect to this node only, not to each other: a peer stopped by a test then
        # leaves no partition for :global to repair.
        args: [
          ~c"-connect_all",
          ~c"false",
          ~c"-setcookie",
          Atom.to_charlist(Node.get_cookie()) | paths
        ]
      })

    ExUnit.Callbacks.on_exit(fn -> stop_peer(peer) end)
    {:ok, _} = :erpc.call(node, Application, :ensure_all_started, [:cloud_streams])

    config =
      Application.get_env(:cloud_streams, :dynamo, []) |> Keyword.put(:endpoint, dynamo_endpoint)

    :ok = :erpc.call(node, Application, :put_env, [:cloud_streams, :dynamo, config])
    {peer, node}
  end

  @doc "Stops `:cloud_streams` on a peer, without the notice its logger would print."
  def stop_app!(node) do
    :ok = :erpc.call(node, :logger, :set_application_level, [:kernel, :warning])
    :ok = :erpc.call(node, :logger, :set_primary_config, [:level, :warning])
    :ok = :erpc.call(node, Application, :stop, [:cloud_streams])
  end

  @doc "Kills a peer's OS process (SIGKILL): the node vanishes without a word."
  def kill_peer!(node) do
    os_pid = :erpc.call(node, :os, :getpid, [])
    {_, 0} = System.cmd("kill", ["-9", List.to_string(os_pid)])
    :ok
  end

  def stop_peer(peer) do
    :peer.stop(peer)
  catch
    :exit, _ -> :ok
  end
end

defmodule CloudStreams.Cluster.TestWorker do
  @moduledoc false
  # A worker for CloudStreams.Cluster.Dispatcher tests, in test/support so peers load it. Its
  # payload says what to do; `init` refuses on the nodes listed in its args.
  @behaviour CloudStreams.Cluster.Dispatcher

  @impl true
  def init(%{refuse_on: nodes} = args) do
    if node() in nodes, do: {:error, "this node refuses"}, else: {:ok, args}
  end

  @impl true
  def run(_args, payload, emit) do
    case payload do
      {:ok, value} -> {:ok, value}
      {:error, reason} -> {:error, reason}
      {:node} -> {:ok, node()}
      {:emit, outputs} -> Enum.each(outputs, emit) && {:ok, length(outputs)}
      {:raise, message} -> raise message
      {:throw, value} -> throw(value)
      {:exit, reason} -> exit(reason)
      {:kill} -> Process.exit(self(), :kill)
      {:sleep, ms} -> Process.sleep(ms) && {:ok, node()}
      # Counts its attempts in `agent` (on the test node); raises until `failures` are done.
      {:flaky, agent, failures} -> flaky(agent, failures)
    end
  end

  defp flaky(agent, failures) do
    attempt = Agent.get_and_update(agent, &{&1 + 1, &1 + 1})
    if attempt <= failures, do: raise("flaky attempt #{attempt}"), else: {:ok, attempt}
  end
end

defmodule CloudStreams.Cluster.LogForwarder do
  @moduledoc false
  # A :logger handler for peers: sends every log event, formatted by OTP's own formatter (raw
  # terms, no Inspect protocol), to a process on the test node.

  def attach!(node, pid) do
    :ok =
      :erpc.call(node, :logger, :add_handler, [
        :forward_to_test,
        __MODULE__,
        %{config: %{pid: pid}}
      ])
  end

  def log(event, %{config: %{pid: pid}}) do
    text = :logger_formatter.format(event, %{single_line: true, template: [:msg]})
    send(pid, {:peer_log, node(), IO.chardata_to_string(text)})
  end

  @doc "The log lines forwarded so far, taken from the mailbox."
  def lines(acc \\ []) do
    receive do
      {:peer_log, node, text} -> lines(["#{node}: #{text}" | acc])
    after
      0 -> Enum.reverse(acc)
    end
  end
end
