# Point Dynamo at DynamoDB Local when the test bed is up (scripts/with_servers.sh).
if endpoint = System.get_env("CLOUD_STREAMS_DYNAMODB_ENDPOINT") do
  Application.put_env(:cloud_streams, :dynamo,
    endpoint: endpoint,
    region: "us-east-1",
    access_key_id: "cloudstreamstest",
    secret_access_key: "cloudstreamstest"
  )
end

ExUnit.start(capture_log: true)
