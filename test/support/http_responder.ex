defmodule CloudStreams.HTTPResponder do
  @moduledoc false
  # A tiny HTTP server on 127.0.0.1 that answers every request with a fixed status (or never
  # answers), for failures the emulators cannot produce: 5xx, 429, hung connections.

  @doc """
  Starts a server that answers with `replies` in order, one per request, the last one
  repeated; returns `{base_url, script}` (see `requests/1`).
  """
  def start_script([_ | _] = replies) do
    {:ok, script} = Agent.start(fn -> {replies, 0} end)
    ExUnit.Callbacks.on_exit(fn -> Process.exit(script, :kill) end)
    {start({:script, script}), script}
  end

  @doc "Starts the server; returns its base URL. `reply` is `{status, body}` or `:hang`."
  def start(reply) do
    {:ok, listen} =
      :gen_tcp.listen(0, [:binary, active: false, reuseaddr: true, ip: {127, 0, 0, 1}])

    {:ok, port} = :inet.port(listen)
    owner = self()
    pid = spawn(fn -> accept_loop(listen, reply) end)
    :ok = :gen_tcp.controlling_process(listen, pid)
    ExUnit.Callbacks.on_exit(fn -> Process.exit(pid, :kill) end)
    _ = owner
    "http://127.0.0.1:#{port}"
  end

  defp accept_loop(listen, reply) do
    {:ok, socket} = :gen_tcp.accept(listen)
    spawn(fn -> serve(socket, reply) end) |> then(&:gen_tcp.controlling_process(socket, &1))
    accept_loop(listen, reply)
  end

  @doc "How many requests a scripted server has answered."
  def requests(script), do: Agent.get(script, &elem(&1, 1))

  defp serve(socket, {:script, script}) do
    reply =
      Agent.get_and_update(script, fn
        {[last], n} -> {last, {[last], n + 1}}
        {[next | rest], n} -> {next, {rest, n + 1}}
      end)

    serve(socket, reply)
  end

  defp serve(socket, :hang) do
    {:ok, _request} = :gen_tcp.recv(socket, 0, 5_000)
    Process.sleep(:infinity)
  end

  defp serve(socket, {status, body}) do
    case :gen_tcp.recv(socket, 0, 5_000) do
      {:ok, _request} ->
        :gen_tcp.send(socket, [
          "HTTP/1.1 #{status} Status\r\ncontent-length: #{byte_size(body)}\r\n",
          "connection: close\r\n\r\n",
          body
        ])

        :gen_tcp.close(socket)

      {:error, _} ->
        :ok
    end
  end
end
