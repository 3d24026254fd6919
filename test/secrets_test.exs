defmodule CloudStreams.SecretsTest do
  # Every place a secret could be shown: exception messages, `inspect` of stores and errors,
  # and the log, including the crash reports of processes that die of those errors. Each
  # secret below is unique, so finding it anywhere means it leaked. Needs no server: the
  # requests go to closed ports on 127.0.0.1.
  use ExUnit.Case, async: false

  import ExUnit.CaptureLog

  @secrets ~w(DYNAMO-APP-SECRET-1 DYNAMO-CALL-SECRET-2 S3-CONFIG-SECRET-3 HTTP-PASSWORD-4
              PROXY-PASSWORD-5 FTP-PASSWORD-6 SESSION-TOKEN-7 AZURE-KEY-8 SAS-SIG-9)

  # Runs `fun` and returns everything it showed: its result or exception, inspected.
  defp shown(fun) do
    try do
      inspect(fun.(), limit: :infinity, printable_limit: :infinity)
    rescue
      e -> Exception.format(:error, e, __STACKTRACE__) <> inspect(e, limit: :infinity)
    catch
      kind, reason -> Exception.format(kind, reason, __STACKTRACE__)
    end
  end

  defp refute_secrets(text, where) do
    for secret <- @secrets do
      refute text =~ secret, "#{secret} shown in #{where}:\n#{text}"
    end
  end

  setup do
    previous = Application.get_env(:cloud_streams, :dynamo)
    on_exit(fn -> Application.put_env(:cloud_streams, :dynamo, previous || []) end)

    Application.put_env(:cloud_streams, :dynamo,
      endpoint: "http://127.0.0.1:1",
      region: "us-east-1",
      access_key_id: "AKIDEXAMPLE",
      secret_access_key: "DYNAMO-APP-SECRET-1",
      max_attempts: 1
    )

    :ok
  end

  defp scenarios do
    http_url = "http://user:HTTP-PASSWORD-4@127.0.0.1:1/base"

    [
      # A Dynamo config: that is not a keyword list (the application's key is in the merge).
      fn ->
        Dynamo.Table.get_item(DocUser, [id: "u1"],
          config: %{secret_access_key: "DYNAMO-CALL-SECRET-2"}
        )
      end,
      fn -> Dynamo.Table.get_item(DocUser, [id: "u1"], config: "garbage") end,
      fn -> Dynamo.Table.get_item(DocUser, [id: "u1"], config: [secret_access_key: 42]) end,
      fn ->
        Dynamo.Table.get_item(DocUser, [id: "u1"],
          config: [session_token: "SESSION-TOKEN-7", bogus: 1]
        )
      end,
      # A request that fails, with the secrets in its configuration.
      fn ->
        Dynamo.Table.get_item(DocUser, [id: "u1"], config: [session_token: "SESSION-TOKEN-7"])
      end,
      fn ->
        Dynamo.Table.Stream.scan(DocUser,
          config: [session_token: "SESSION-TOKEN-7"],
          timeout: 5_000
        )
        |> Enum.to_list()
      end,
      # A wrong-typed S3 :config, and secrets given as config keys.
      fn ->
        ObjectStoreX.new(:s3,
          bucket: "b",
          config: [{"aws_secret_access_key", "S3-CONFIG-SECRET-3"}]
        )
      end,
      fn -> ObjectStoreX.new(:s3, bucket: "b", config: {"x", "S3-CONFIG-SECRET-3"}) end,
      fn ->
        ObjectStoreX.new(:s3,
          bucket: "b",
          config: %{"aws_secret_access_key" => {"S3-CONFIG-SECRET-3"}}
        )
      end,
      fn -> ObjectStoreX.new(:s3, bucket: "b", secret_access_key: ~c"S3-CONFIG-SECRET-3") end,
      fn ->
        ObjectStoreX.new(:azure,
          account: "a",
          container: "c",
          access_key: 123,
          sas_token: "SAS-SIG-9"
        )
      end,
      fn ->
        ObjectStoreX.new(:azure, account: "a", container: "c", access_key: "AZURE-KEY-8", bogus: 1)
      end,
      # HTTP stores with a password in the URL: inspect, and the error of a request.
      fn -> ObjectStoreX.new(http_url) end,
      fn ->
        ObjectStoreX.new(:http, url: http_url, allow_http: true)
        |> then(fn {:ok, s} -> ObjectStoreX.get(s, "f") end)
      end,
      fn ->
        ObjectStoreX.new(:http, url: http_url, allow_http: true)
        |> then(fn {:ok, s} -> ObjectStoreX.Stream.download(s, "f") |> Enum.to_list() end)
      end,
      fn -> ObjectStoreX.new(:http, url: String.replace(http_url, "127.0.0.1:1", "[::zz]")) end,
      # proxy_url: wrong-typed, malformed and unreachable.
      fn ->
        ObjectStoreX.new(:s3, bucket: "b", client: [proxy_url: ~c"http://u:PROXY-PASSWORD-5@p"])
      end,
      fn ->
        ObjectStoreX.new(:s3, bucket: "b", client: [proxy_url: "http://u:PROXY-PASSWORD-5@[::zz]"])
      end,
      fn ->
        {:ok, s} =
          ObjectStoreX.new(:s3,
            bucket: "b",
            region: "us-east-1",
            access_key_id: "AK",
            secret_access_key: "S3-CONFIG-SECRET-3",
            endpoint: "http://127.0.0.1:1",
            allow_http: true,
            retry: [max_retries: 0],
            client: [proxy_url: "http://u:PROXY-PASSWORD-5@127.0.0.1:1"]
          )

        {inspect(s), ObjectStoreX.head(s, "f")}
      end,
      # Unsupported URLs and backends.
      fn -> ObjectStoreX.new("ftp://u:FTP-PASSWORD-6@host/x") end,
      fn ->
        ObjectStoreX.new("https://h/x?sig=SAS-SIG-9") |> then(fn {:ok, s} -> inspect(s) end)
      end,
      fn -> ObjectStoreX.new(:nope, secret_access_key: "S3-CONFIG-SECRET-3") end
    ]
  end

  test "no test secret appears in a message, an inspect or the log" do
    log =
      capture_log(fn ->
        for {scenario, i} <- Enum.with_index(scenarios()) do
          refute_secrets(shown(scenario), "scenario #{i}")
        end

        # Processes that die of these errors: their crash reports go to the log.
        for scenario <- scenarios() do
          {pid, ref} = spawn_monitor(fn -> raise inspect(scenario.()) end)
          assert_receive {:DOWN, ^ref, :process, ^pid, _}, 15_000
        end

        # A scanner sending its error to a process.
        {:ok, _} =
          Dynamo.Table.Stream.scan_to_process(DocUser, self(),
            config: [session_token: "SESSION-TOKEN-7"]
          )

        assert_receive {:scan_error, error}, 15_000
        refute_secrets(inspect(error) <> Exception.message(error), "a scan error")
        # A producer that dies of its scan's error: its crash report shows its state.
        Process.flag(:trap_exit, true)

        {:ok, producer} =
          Dynamo.Table.Stream.Producer.start_link(
            schema: DocUser,
            config: [session_token: "SESSION-TOKEN-7"]
          )

        tag = make_ref()
        send(producer, {:"$gen_producer", {self(), tag}, {:subscribe, nil, []}})
        send(producer, {:"$gen_producer", {self(), tag}, {:ask, 10}})
        assert_receive {:EXIT, ^producer, {:dynamo_error, _}}, 15_000
        Logger.flush()
      end)

    # The log did receive the crash reports checked above.
    assert log =~ ~r/GenServer .* terminating\n\*\* \(stop\) \{:dynamo_error/
    refute_secrets(log, "the log")
  end
end
