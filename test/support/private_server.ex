defmodule CloudStreams.PrivateServer do
  @moduledoc false
  # A private emulator for one test, on a free port, started the way scripts/servers.sh
  # starts the shared ones, so a test can kill it mid-stream and start it again without
  # disturbing other tests: `:moto` (S3) or `:dynamodb` (DynamoDB Local). Killed on exit.

  defstruct [:kind, :port, :os_pid]

  @doc "Starts `kind` on a free port (or on `port`) and waits until it answers."
  def start(kind, port \\ free_port()) do
    {executable, args, dir} = command(kind, port)

    log = Path.join(System.tmp_dir!(), "cloud_streams_private_#{kind}_#{port}.log")

    # Through sh, so the server's output goes to a log file, not to this process's mailbox;
    # sh tells its pid (the server's, after exec) first.
    os_port =
      Port.open({:spawn_executable, "/bin/sh"}, [
        :binary,
        args: ["-c", ~s(echo $$; exec "$0" "$@" > "#{log}" 2>&1), executable | args],
        cd: dir
      ])

    os_pid =
      receive do
        {^os_port, {:data, line}} -> line |> String.trim() |> String.to_integer()
      after
        10_000 -> raise "#{kind} did not start"
      end

    server = %__MODULE__{kind: kind, port: port, os_pid: os_pid}
    ExUnit.Callbacks.on_exit({__MODULE__, os_pid}, fn -> kill(server) end)
    wait_until_up(server, System.monotonic_time(:millisecond) + 60_000)
    if kind == :moto, do: create_bucket(server)
    server
  end

  @doc "The server's base URL."
  def url(%__MODULE__{port: port}), do: "http://127.0.0.1:#{port}"

  @doc "Kills the server at once (SIGKILL), as a crash would, and waits until it is gone."
  def kill(%__MODULE__{os_pid: os_pid} = server) do
    System.cmd("kill", ["-9", Integer.to_string(os_pid)], stderr_to_stdout: true)
    wait_until_down(server, 100)
  end

  @doc "Starts the same kind of server again on the same port (its data is gone)."
  def restart(%__MODULE__{kind: kind, port: port}), do: start(kind, port)

  @bucket "private-bucket"
  def bucket, do: @bucket

  defp command(:moto, port) do
    {Path.join(cache("venv-moto-*"), "bin/moto_server"),
     ["-H", "127.0.0.1", "-p", Integer.to_string(port)], System.tmp_dir!()}
  end

  defp command(:dynamodb, port) do
    dir = cache("dynamodb-local-*")

    {System.find_executable("java"),
     [
       "-Xmx512m",
       "-Djava.library.path=DynamoDBLocal_lib",
       "-jar",
       "DynamoDBLocal.jar",
       "-inMemory",
       "-port",
       Integer.to_string(port)
     ], dir}
  end

  defp cache(pattern) do
    root = System.get_env("CLOUD_STREAMS_CACHE") || Path.expand("~/.cache/cloud_streams")

    case Path.wildcard(Path.join(root, pattern)) do
      [dir | _] -> dir
      [] -> raise "no #{pattern} in #{root}: run scripts/setup.sh"
    end
  end

  defp free_port do
    {:ok, socket} = :gen_tcp.listen(0, ip: {127, 0, 0, 1})
    {:ok, port} = :inet.port(socket)
    :gen_tcp.close(socket)
    port
  end

  defp wait_until_up(server, deadline) do
    cond do
      up?(server) ->
        :ok

      System.monotonic_time(:millisecond) > deadline ->
        raise "#{server.kind} did not start on port #{server.port}"

      true ->
        Process.sleep(100)
        wait_until_up(server, deadline)
    end
  end

  defp wait_until_down(_server, 0), do: :ok

  defp wait_until_down(server, tries) do
    if up?(server), do: Process.sleep(50) && wait_until_down(server, tries - 1), else: :ok
  end

  # Answers HTTP: any status line will do (DynamoDB Local answers 400 to a bare GET).
  defp up?(server) do
    {:ok, _} = Application.ensure_all_started(:inets)

    match?(
      {:ok, _},
      :httpc.request(:get, {to_charlist(url(server) <> "/"), []}, [timeout: 1_000], [])
    )
  end

  defp create_bucket(server) do
    {:ok, {{_, 200, _}, _, _}} =
      :httpc.request(:put, {to_charlist("#{url(server)}/#{@bucket}"), [], ~c"", ~c""}, [], [])
  end
end
