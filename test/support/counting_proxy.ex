defmodule CloudStreams.CountingProxy do
  @moduledoc false
  # A TCP proxy on 127.0.0.1 in front of a test server. It counts the HTTP requests passing
  # through, by request line, so tests can prove how many requests an operation made, and it
  # injects network faults into the responses, over real sockets:
  #
  #   * `{:cut_after, n}` - each connection is closed once `n` more response bytes went
  #     through it (a connection reset mid-body).
  #   * `{:stall_after, n}` - each connection stops forwarding responses after `n` more bytes
  #     and stays open (a server that hangs mid-body; `{:stall_after, 0}` never answers).
  #   * `{:delay, ms}` - every response packet waits `ms` first (a slow network).
  #   * `{:once, fault}` - the first connection to send a response packet gets `fault`;
  #     the others pass.
  #   * `:pass` - no fault (the default).
  #
  # The fault is read for each response packet of a connection that has none yet, so
  # `set_fault/2` also reaches connections the client keeps pooled. Once a connection has a
  # fault it keeps it.

  use Agent

  @doc """
  Starts a proxy to `upstream` (\"http://host:port\"); returns `{proxy_url, agent}`.
  `fail` is a regex, or a keyword list with `fail:` and `fault:` (see the moduledoc).
  Requests whose request line matches `fail` are not forwarded: the connection is cut
  instead, as a network failure would.
  """
  def start(upstream, opts \\ [])
  def start(upstream, nil), do: start(upstream, [])
  def start(upstream, %Regex{} = fail), do: start(upstream, fail: fail)

  def start(upstream, opts) do
    %URI{host: host, port: port} = URI.parse(upstream)
    fault = Keyword.get(opts, :fault, :pass)
    {:ok, agent} = Agent.start_link(fn -> %{requests: [], fault: fault} end)

    {:ok, listen} =
      :gen_tcp.listen(0, [:binary, active: false, reuseaddr: true, ip: {127, 0, 0, 1}])

    {:ok, proxy_port} = :inet.port(listen)
    watch = {agent, opts[:fail]}
    acceptor = spawn(fn -> accept(listen, {to_charlist(host), port}, watch) end)
    :ok = :gen_tcp.controlling_process(listen, acceptor)
    ExUnit.Callbacks.on_exit(fn -> Process.exit(acceptor, :kill) end)
    {"http://127.0.0.1:#{proxy_port}", agent}
  end

  @doc "The request lines seen so far (`\"GET /bucket?list-type=2&... HTTP/1.1\"`)."
  def requests(agent), do: agent |> Agent.get(& &1.requests) |> Enum.reverse()

  @doc "Sets the fault for responses from now on (see the moduledoc)."
  def set_fault(agent, fault), do: Agent.update(agent, &%{&1 | fault: fault})

  defp accept(listen, upstream, watch) do
    {:ok, client} = :gen_tcp.accept(listen)
    {host, port} = upstream

    case :gen_tcp.connect(host, port, [:binary, active: false]) do
      {:ok, server} ->
        # Each pipe starts only once it owns its socket: a pipe that cuts a connection must
        # not close a socket whose ownership is still being handed over. Pipes are linked to
        # the acceptor, so stopping the proxy closes every connection.
        {agent, _} = watch
        up = spawn_link(fn -> start_pipe(client, server, {:requests, watch}) end)
        down = spawn_link(fn -> start_pipe(server, client, {:responses, agent, nil}) end)
        :ok = :gen_tcp.controlling_process(client, up)
        :ok = :gen_tcp.controlling_process(server, down)
        send(up, :go)
        send(down, :go)

      {:error, _} ->
        # The upstream is down: the client sees its connection closed.
        :gen_tcp.close(client)
    end

    accept(listen, upstream, watch)
  end

  defp start_pipe(from, to, role) do
    receive do
      :go -> pipe(from, to, role)
    end
  end

  defp pipe(from, to, role) do
    case :gen_tcp.recv(from, 0) do
      {:ok, data} -> forward(data, from, to, role)
      {:error, _} -> :gen_tcp.close(to)
    end
  end

  defp forward(data, from, to, {:requests, watch} = role) do
    if record(data, watch) == :fail do
      close(from, to)
    else
      send_on(data, from, to, role)
    end
  end

  defp forward(data, from, to, {:responses, agent, nil}) do
    forward(data, from, to, {:responses, agent, take_fault(agent)})
  end

  defp forward(data, from, to, {:responses, agent, fault}) do
    case fault do
      :pass ->
        send_on(data, from, to, {:responses, agent, nil})

      {:delay, ms} ->
        Process.sleep(ms)
        send_on(data, from, to, {:responses, agent, fault})

      {:cut_after, n} when byte_size(data) >= n ->
        _ = :gen_tcp.send(to, binary_part(data, 0, n))
        close(from, to)

      {:cut_after, n} ->
        send_on(data, from, to, {:responses, agent, {:cut_after, n - byte_size(data)}})

      {:stall_after, n} when byte_size(data) >= n ->
        _ = :gen_tcp.send(to, binary_part(data, 0, n))
        stall(from, to)

      {:stall_after, n} ->
        send_on(data, from, to, {:responses, agent, {:stall_after, n - byte_size(data)}})
    end
  end

  # A fault for a connection: the current one, `{:once, f}` handed out to one connection.
  defp take_fault(agent) do
    Agent.get_and_update(agent, fn
      %{fault: {:once, fault}} = state -> {fault, %{state | fault: :pass}}
      %{fault: fault} = state -> {fault, state}
    end)
  end

  defp send_on(data, from, to, role) do
    case :gen_tcp.send(to, data) do
      :ok -> pipe(from, to, role)
      {:error, _} -> close(from, to)
    end
  end

  # Holds the connection open without forwarding anything more, whatever the server does
  # (moto closes its side after each response), until the client gives up (its pipe then
  # closes the server's side) or a minute passes.
  defp stall(from, to) do
    Process.sleep(60_000)
    close(from, to)
  end

  defp close(from, to) do
    :gen_tcp.close(from)
    :gen_tcp.close(to)
  end

  # Request lines start a packet; bodies of uploads may contain anything, so only lines that
  # look like "METHOD /path HTTP/1.1" count.
  defp record(data, {agent, fail}) do
    lines =
      for [line] <- Regex.scan(~r/(?:GET|PUT|POST|DELETE|HEAD) \/\S* HTTP\/1\.1/, data), do: line

    Agent.update(agent, &%{&1 | requests: Enum.reverse(lines) ++ &1.requests})
    if fail && Enum.any?(lines, &Regex.match?(fail, &1)), do: :fail, else: :ok
  end
end
