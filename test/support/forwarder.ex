defmodule CloudStreams.Forwarder do
  @moduledoc false
  # A process that forwards every message it receives to `to` as `{:forwarded, message}`,
  # until `last` arrives: a receiver to start on a peer node (test modules are not loaded
  # there, this one is on the code path).

  def start(node, to, last), do: Node.spawn(node, __MODULE__, :loop, [to, last])

  def loop(to, last) do
    receive do
      ^last ->
        send(to, {:forwarded, last})

      message ->
        send(to, {:forwarded, message})
        loop(to, last)
    end
  end
end
