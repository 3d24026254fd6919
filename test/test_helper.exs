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
# all, so it runs everything.
unreachable = CloudStreams.TestBed.unreachable_servers()

if unreachable != [] do
  IO.puts(
    "Skipping tests tagged #{Enum.map_join(unreachable, ", ", &inspect(elem(&1, 0)))}: " <>
      "not reachable: #{Enum.map_join(unreachable, "; ", &elem(&1, 1))}. " <>
      "`make test` (or scripts/with_servers.sh mix test) starts them."
  )
end

ExUnit.start(capture_log: true, exclude: Keyword.keys(unreachable))
