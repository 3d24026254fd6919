# Point Dynamo at DynamoDB Local when the test bed is up (scripts/with_servers.sh).
if endpoint = System.get_env("CLOUD_STREAMS_DYNAMODB_ENDPOINT") do
  Application.put_env(:cloud_streams, :dynamo,
    endpoint: endpoint,
    region: "us-east-1",
    access_key_id: "cloudstreamstest",
    secret_access_key: "cloudstreamstest"
  )
end

# Test tiers: tests tagged with a server (`@moduletag :dynamodb`, `:s3`, `:azure`) run only
# when it answers; without emulators `mix test` runs everything else. `make test` starts them
# all and sets CLOUD_STREAMS_REQUIRE_SERVERS, so there a missing server fails the run instead
# of skipping tests.
unreachable = CloudStreams.TestBed.unreachable_servers()
reasons = Enum.map_join(unreachable, "; ", &elem(&1, 1))

cond do
  unreachable == [] ->
    :ok

  System.get_env("CLOUD_STREAMS_REQUIRE_SERVERS") == "1" ->
    raise "CLOUD_STREAMS_REQUIRE_SERVERS is set, but these servers are not reachable: #{reasons}"

  true ->
    IO.puts(
      "Skipping tests tagged #{Enum.map_join(unreachable, ", ", &inspect(elem(&1, 0)))}: " <>
        "not reachable: #{reasons}. `make test` (or scripts/with_servers.sh mix test) starts them."
    )
end

ExUnit.start(capture_log: true, exclude: Keyword.keys(unreachable))
