defmodule CloudStreams.TestBed do
  @moduledoc false
  # Where the servers started by scripts/with_servers.sh are (scripts/servers.sh env).

  def env!(name) do
    System.get_env(name) ||
      raise "#{name} is not set: run the tests through `make test` (scripts/with_servers.sh)"
  end

  @doc "An S3 store on the emulator (moto), under `prefix`."
  def s3_store(prefix, opts \\ []) do
    ObjectStoreX.new(
      :s3,
      [
        bucket: env!("CLOUD_STREAMS_S3_BUCKET"),
        endpoint: env!("CLOUD_STREAMS_S3_ENDPOINT"),
        region: "us-east-1",
        access_key_id: env!("AWS_ACCESS_KEY_ID"),
        secret_access_key: env!("AWS_SECRET_ACCESS_KEY"),
        allow_http: true,
        prefix: prefix
      ]
      |> Keyword.merge(opts)
    )
  end

  @doc "An Azure store on Azurite, under `prefix`."
  def azure_store(prefix, opts \\ []) do
    ObjectStoreX.new(
      :azure,
      [
        container: env!("CLOUD_STREAMS_AZURE_CONTAINER"),
        endpoint: env!("CLOUD_STREAMS_AZURE_ENDPOINT"),
        use_emulator: true,
        prefix: prefix
      ]
      |> Keyword.merge(opts)
    )
  end
end
