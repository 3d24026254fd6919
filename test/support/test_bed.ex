defmodule CloudStreams.TestBed do
  @moduledoc false
  # Where the servers started by scripts/with_servers.sh are (scripts/servers.sh env), and
  # which of them answer, for the test tiers of test/test_helper.exs.

  # Tag => what the tests tagged with it need: a name and the variable holding its endpoint.
  @servers [
    dynamodb: {"DynamoDB Local", "CLOUD_STREAMS_DYNAMODB_ENDPOINT"},
    s3: {"the S3 emulator (moto)", "CLOUD_STREAMS_S3_ENDPOINT"},
    azure: {"Azurite", "CLOUD_STREAMS_AZURE_ENDPOINT"}
  ]
  @probe_timeout 1_000

  @doc """
  The servers that cannot be reached, as `{tag, why}`, each probed once with a TCP connect:
  its endpoint variable is unset, or nothing accepts connections there.
  """
  def unreachable_servers do
    for {tag, {name, variable}} <- @servers,
        why = unreachable(name, variable),
        do: {tag, why}
  end

  defp unreachable(name, variable) do
    case probe(System.get_env(variable)) do
      :ok -> nil
      {:error, :unset} -> "#{name} (#{variable} is not set)"
      {:error, why} -> "#{name} (#{System.get_env(variable)}: #{why})"
    end
  end

  @doc "Whether something accepts TCP connections at `endpoint`, a URL with host and port."
  def probe(nil), do: {:error, :unset}

  def probe(endpoint) do
    with %URI{host: host, port: port} when is_binary(host) and is_integer(port) <-
           URI.parse(endpoint),
         {:ok, socket} <-
           :gen_tcp.connect(to_charlist(host), port, [active: false], @probe_timeout) do
      :gen_tcp.close(socket)
      :ok
    else
      %URI{} -> {:error, "not a URL with a host and port"}
      {:error, reason} -> {:error, to_string(:inet.format_error(reason))}
    end
  end

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
