defmodule Dynamo.Config do
  alias CloudStreams.Options

  # Milliseconds the native side takes (u64), bounded to what a caller can mean.
  @max_ms Options.max_timeout()
  # The SDK's attempt count is a u32; a retry loop needs a limit a caller can wait out.
  @max_attempts 100

  @schema [
    region: [type: {:or_nil, :string}, doc: "the AWS region."],
    endpoint: [
      type: {:or_nil, :string},
      doc: "an http(s) URL, such as DynamoDB Local's `\"http://localhost:8000\"`."
    ],
    access_key_id: [type: {:or_nil, :string}, doc: "with `:secret_access_key`."],
    secret_access_key: [type: {:or_nil, :string}, doc: "with `:access_key_id`."],
    session_token: [type: {:or_nil, :string}, doc: "for temporary credentials."],
    profile: [
      type: {:or_nil, :string},
      doc:
        "a profile of the shared AWS files. What is missing comes from the standard AWS " <>
          "chain of environment variables, profiles and instance metadata."
    ],
    max_attempts: [
      type: {:in, 1..@max_attempts},
      default: 10,
      doc:
        "attempts per request, at most #{@max_attempts} (long scans meet throttling, and " <>
          "the SDK's default of 3 is too few)."
    ],
    initial_backoff: [
      type: {:in, 1..@max_ms},
      default: 100,
      doc: "ms before the first retry (jittered exponential backoff)."
    ],
    max_backoff: [type: {:in, 1..@max_ms}, default: 20_000, doc: "the longest backoff, in ms."],
    connect_timeout: [type: {:or_nil, {:in, 1..@max_ms}}, doc: "ms."],
    operation_timeout: [type: {:or_nil, {:in, 1..@max_ms}}, doc: "ms, for a whole operation."]
  ]

  @moduledoc """
  How `Dynamo` reaches DynamoDB: application configuration, overridden per call with the
  `:config` option of any `Dynamo.Table` function.

      config :cloud_streams, :dynamo,
        region: "eu-west-1",
        endpoint: "http://localhost:8000"   # DynamoDB Local

  Options:

  #{Options.docs(@schema)}

  Clients are built once per configuration and reused.
  """

  @doc false
  # The map the NIF takes, from the application environment and `overrides`.
  @spec native(keyword()) :: map()
  def native(overrides \\ []) do
    # Each part is checked before they are merged, so a malformed one is named (and its
    # secrets hidden) instead of crashing the merge.
    base = Application.get_env(:cloud_streams, :dynamo, [])
    Options.validate!(base, @schema, "Dynamo configuration (application environment)")
    Options.validate!(overrides, @schema, "Dynamo configuration (option :config)")
    c = Options.validate!(Keyword.merge(base, overrides), @schema, "Dynamo configuration")
    check_keys!(c)
    check_endpoint!(c.endpoint)

    to_native(c)
  end

  defp to_native(c) do
    %{
      region: c.region,
      endpoint: c.endpoint,
      access_key_id: c.access_key_id,
      secret_access_key: c.secret_access_key,
      session_token: c.session_token,
      profile: c.profile,
      max_attempts: c.max_attempts,
      initial_backoff_ms: c.initial_backoff,
      max_backoff_ms: c.max_backoff,
      connect_timeout_ms: c.connect_timeout,
      operation_timeout_ms: c.operation_timeout
    }
  end

  # Half a key pair would silently fall back to the credential chain: say so instead.
  defp check_keys!(%{access_key_id: id, secret_access_key: secret})
       when is_nil(id) != is_nil(secret) do
    raise ArgumentError,
          "Dynamo configuration: :access_key_id and :secret_access_key go together, got only " <>
            if(id, do: ":access_key_id", else: ":secret_access_key")
  end

  defp check_keys!(_config), do: :ok

  defp check_endpoint!(nil), do: :ok

  defp check_endpoint!(endpoint) do
    case URI.parse(endpoint) do
      %URI{scheme: scheme, host: host}
      when scheme in ["http", "https"] and host not in [nil, ""] ->
        :ok

      _ ->
        raise ArgumentError,
              "invalid value for option :endpoint of Dynamo configuration: expected an " <>
                "http(s) URL such as \"http://localhost:8000\", got: #{CloudStreams.Redact.inspect(endpoint)}"
    end
  end
end
