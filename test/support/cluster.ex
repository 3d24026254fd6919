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

  def stop_peer(peer) do
    :peer.stop(peer)
  catch
    :exit, _ -> :ok
  end
end
