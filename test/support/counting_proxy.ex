defmodule CloudStreams.CountingProxy do
  @moduledoc false
  # A TCP proxy on 127.0.0.1 in front of a test server that counts the HTTP requests passing
  # through, by request line, so tests can prove how many requests an operation made.

  use Agent

  @doc """
  Starts a proxy to `upstream` (\"http://host:port\"); returns `{proxy_url, agent}`.
  Requests whose request line matches `fail` (a regex) are not forwarded: the connection is
  cut instead, as a network failure would.
  """
  def start(upstream, fail \\ nil) do
    %URI{host: host, port: port} = URI.parse(upstream)
    {:ok, agent} = Agent.start_link(fn -> [] end)

    {:ok, listen} =
      :gen_tcp.listen(0, [:binary, active: false, reuseaddr: true, ip: {127, 0, 0, 1}])

    {:ok, proxy_port} = :inet.port(listen)
    acceptor = spawn(fn -> accept(listen, {to_charlist(host), port}, {agent, fail}) end)
    :ok = :gen_tcp.controlling_process(listen, acceptor)
    ExUnit.Callbacks.on_exit(fn -> Process.exit(acceptor, :kill) end)
    {"http://127.0.0.1:#{proxy_port}", agent}
  end

  @doc "The request lines seen so far (`\"GET /bucket?list-type=2&... HTTP/1.1\"`)."
  def requests(agent), do: agent |> Agent.get(& &1) |> Enum.reverse()

  defp accept(listen, upstream, watch) do
    {:ok, client} = :gen_tcp.accept(listen)
    {host, port} = upstream
    {:ok, server} = :gen_tcp.connect(host, port, [:binary, active: false])
    # Each pipe starts only once it owns its socket: a pipe that cuts a connection must not
    # close a socket whose ownership is still being handed over.
    up = spawn(fn -> start_pipe(client, server, watch) end)
    down = spawn(fn -> start_pipe(server, client, nil) end)
    :ok = :gen_tcp.controlling_process(client, up)
    :ok = :gen_tcp.controlling_process(server, down)
    send(up, :go)
    send(down, :go)
    accept(listen, upstream, watch)
  end

  defp start_pipe(from, to, watch) do
    receive do
      :go -> pipe(from, to, watch)
    end
  end

  defp pipe(from, to, watch) do
    case :gen_tcp.recv(from, 0) do
      {:ok, data} ->
        if watch && record(data, watch) == :fail do
          :gen_tcp.close(from)
          :gen_tcp.close(to)
        else
          :ok = :gen_tcp.send(to, data)
          pipe(from, to, watch)
        end

      {:error, _} ->
        :gen_tcp.close(to)
    end
  end

  # Request lines start a packet; bodies of uploads may contain anything, so only lines that
  # look like "METHOD /path HTTP/1.1" count.
  defp record(data, {agent, fail}) do
    lines =
      for [line] <- Regex.scan(~r/(?:GET|PUT|POST|DELETE|HEAD) \/\S* HTTP\/1\.1/, data), do: line

    Agent.update(agent, &(Enum.reverse(lines) ++ &1))
    if fail && Enum.any?(lines, &Regex.match?(fail, &1)), do: :fail, else: :ok
  end
end
