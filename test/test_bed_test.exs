defmodule CloudStreams.TestBedTest do
  # The servers started by scripts/with_servers.sh answer where the environment says, and the
  # probe that decides the test tiers (test/test_helper.exs) tells them from a closed port.
  use ExUnit.Case, async: true

  alias CloudStreams.TestBed

  setup_all do
    {:ok, _} = Application.ensure_all_started(:inets)
    :ok
  end

  defp env!(name) do
    System.get_env(name) ||
      flunk("#{name} is not set: run the tests through `make test` (scripts/with_servers.sh)")
  end

  defp request(method, url, headers, body \\ "") do
    headers = for {k, v} <- headers, do: {to_charlist(k), to_charlist(v)}

    request =
      case method do
        :post -> {to_charlist(url), headers, ~c"application/x-amz-json-1.0", body}
        _ -> {to_charlist(url), headers}
      end

    {:ok, {{_, status, _}, _headers, body}} =
      :httpc.request(method, request, [timeout: 5_000], body_format: :binary)

    {status, body}
  end

  test "the tier probe: a listening port is reachable; a closed port or no endpoint is not" do
    {:ok, listen} = :gen_tcp.listen(0, ip: {127, 0, 0, 1})
    {:ok, port} = :inet.port(listen)
    assert TestBed.probe("http://127.0.0.1:#{port}/devstoreaccount1") == :ok

    :ok = :gen_tcp.close(listen)
    assert TestBed.probe("http://127.0.0.1:#{port}") == {:error, "connection refused"}
    assert TestBed.probe(nil) == {:error, :unset}
    assert TestBed.probe("not a url") == {:error, "not a URL with a host and port"}
  end

  @tag :dynamodb
  test "DynamoDB Local answers ListTables" do
    assert {:ok, %{"TableNames" => names}} =
             CloudStreams.DynamoDBWire.request(
               env!("CLOUD_STREAMS_DYNAMODB_ENDPOINT"),
               "ListTables",
               %{}
             )

    assert is_list(names)
  end

  @tag :s3
  test "the S3 emulator serves the test bucket" do
    bucket = env!("CLOUD_STREAMS_S3_BUCKET")
    {status, body} = request(:get, "#{env!("CLOUD_STREAMS_S3_ENDPOINT")}/#{bucket}", [])

    assert status == 200
    assert body =~ "<Name>#{bucket}</Name>"
  end

  @tag :azure
  test "Azurite has the test container" do
    account = env!("CLOUD_STREAMS_AZURE_ACCOUNT")
    container = env!("CLOUD_STREAMS_AZURE_CONTAINER")
    date = :httpd_util.rfc1123_date() |> to_string()
    version = "2021-08-06"

    # Shared Key authorization, as Azure documents it, for a GET of the container's properties.
    string_to_sign =
      Enum.join(["GET" | List.duplicate("", 11)], "\n") <>
        "\nx-ms-date:#{date}\nx-ms-version:#{version}\n" <>
        "/#{account}/#{account}/#{container}\nrestype:container"

    key = Base.decode64!(env!("CLOUD_STREAMS_AZURE_KEY"))
    signature = :crypto.mac(:hmac, :sha256, key, string_to_sign) |> Base.encode64()

    {status, _body} =
      request(
        :get,
        "#{env!("CLOUD_STREAMS_AZURE_ENDPOINT")}/#{container}?restype=container",
        [
          {"x-ms-date", date},
          {"x-ms-version", version},
          {"authorization", "SharedKey #{account}:#{signature}"}
        ]
      )

    assert status == 200
  end
end
