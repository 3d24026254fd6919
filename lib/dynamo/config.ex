defmodule Dynamo.Config do
  @moduledoc """
  How `Dynamo` reaches DynamoDB: application configuration, overridden per call with the
  `:config` option of any `Dynamo.Table` function.

      config :cloud_streams, :dynamo,
        region: "eu-west-1",
        endpoint: "http://localhost:8000"   # DynamoDB Local

  Options: `:region`, `:endpoint`, `:access_key_id`, `:secret_access_key`, `:session_token`,
  `:profile` (all optional: what is missing comes from the standard AWS chain of environment
  variables, profiles and instance metadata), `:max_attempts` (default 10: long scans meet
  throttling, and the SDK's default of 3 is too few), `:initial_backoff` and `:max_backoff`
  (ms, defaults 100 and 20,000; jittered exponential backoff), `:connect_timeout` and
  `:operation_timeout` (ms). Clients are built once per configuration and reused.
  """

  alias CloudStreams.Options

  @schema [
    region: {{:or_nil, :string}, nil},
    endpoint: {{:or_nil, :string}, nil},
    access_key_id: {{:or_nil, :string}, nil},
    secret_access_key: {{:or_nil, :string}, nil},
    session_token: {{:or_nil, :string}, nil},
    profile: {{:or_nil, :string}, nil},
    max_attempts: {:pos_integer, 10},
    initial_backoff: {:pos_integer, 100},
    max_backoff: {:pos_integer, 20_000},
    connect_timeout: {{:or_nil, :pos_integer}, nil},
    operation_timeout: {{:or_nil, :pos_integer}, nil}
  ]

  @doc false
  # The map the NIF takes, from the application environment and `overrides`.
  @spec native(keyword()) :: map()
  def native(overrides \\ []) do
    base = Application.get_env(:cloud_streams, :dynamo, [])
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
                "http(s) URL such as \"http://localhost:8000\", got: #{inspect(endpoint)}"
    end
  end
end
