defmodule ObjectStoreX.Config do
  @moduledoc false
  # Validates the options of ObjectStoreX.new/2 and translates them into object_store's own
  # configuration keys (parsed again by object_store itself in native/.../store/config.rs).

  alias CloudStreams.Options

  @common [
    prefix: {{:or_nil, :string}, nil},
    client: {{:or_nil, :any}, nil},
    retry: {{:or_nil, :any}, nil},
    from_env: {:boolean, false},
    config: {{:or_nil, :any}, nil}
  ]

  # Elixir option => object_store key, per backend.
  @s3_keys [
    bucket: "aws_bucket",
    region: "aws_region",
    access_key_id: "aws_access_key_id",
    secret_access_key: "aws_secret_access_key",
    session_token: "aws_session_token",
    endpoint: "aws_endpoint",
    virtual_hosted_style: "aws_virtual_hosted_style_request",
    skip_signature: "aws_skip_signature",
    unsigned_payload: "aws_unsigned_payload",
    checksum: "aws_checksum_algorithm",
    disable_tagging: "aws_disable_tagging",
    request_payer: "aws_request_payer",
    conditional_put: "aws_conditional_put",
    copy_if_not_exists: "aws_copy_if_not_exists"
  ]

  @gcs_keys [
    bucket: "google_bucket",
    service_account_path: "google_service_account",
    service_account_key: "google_service_account_key",
    application_credentials: "google_application_credentials",
    bearer_token: "google_bearer_token",
    base_url: "google_base_url",
    skip_signature: "google_skip_signature"
  ]

  @azure_keys [
    account: "azure_storage_account_name",
    container: "azure_container_name",
    access_key: "azure_storage_account_key",
    sas_token: "azure_storage_sas_key",
    bearer_token: "azure_storage_token",
    endpoint: "azure_storage_endpoint",
    use_fabric_endpoint: "azure_use_fabric_endpoint",
    use_azure_cli: "azure_use_azure_cli",
    skip_signature: "azure_skip_signature",
    disable_tagging: "azure_disable_tagging"
  ]

  # Azurite's documented development account and key (public; not a secret).
  @azurite_account "devstoreaccount1"
  @azurite_key "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

  @client_schema [
    timeout: {:timeout, nil},
    connect_timeout: {:pos_integer, nil},
    read_timeout: {:pos_integer, nil},
    pool_idle_timeout: {:pos_integer, nil},
    pool_max_idle_per_host: {:non_neg_integer, nil},
    allow_http: {:boolean, nil},
    allow_invalid_certificates: {:boolean, nil},
    http1_only: {:boolean, nil},
    http2_only: {:boolean, nil},
    user_agent: {:string, nil},
    proxy_url: {:string, nil}
  ]

  @retry_schema [
    max_retries: {:non_neg_integer, 10},
    retry_timeout: {:pos_integer, 180_000},
    init_backoff: {:pos_integer, 100},
    max_backoff: {:pos_integer, 15_000}
  ]

  @doc false
  def schema(:memory), do: @common
  def schema(:local), do: @common ++ [root: {:string, :required}, create_root: {:boolean, false}]
  def schema(:http), do: @common ++ [url: {:string, :required}, allow_http: {:boolean, false}]

  def schema(:s3) do
    @common ++
      Enum.map(@s3_keys, fn
        {key, _}
        when key in [
               :virtual_hosted_style,
               :skip_signature,
               :unsigned_payload,
               :disable_tagging,
               :request_payer
             ] ->
          {key, {:boolean, nil}}

        {:checksum, _} ->
          {:checksum, {{:in, [nil, :sha256]}, nil}}

        {:conditional_put, _} ->
          {:conditional_put, {{:in, [nil, :etag, :disabled]}, nil}}

        {:copy_if_not_exists, _} ->
          {:copy_if_not_exists, {:any, :multipart}}

        {key, _} ->
          {key, {{:or_nil, :string}, nil}}
      end) ++ [allow_http: {:boolean, false}, url: {{:or_nil, :string}, nil}]
  end

  def schema(:gcs) do
    @common ++
      Enum.map(@gcs_keys, fn
        {:skip_signature, _} -> {:skip_signature, {:boolean, nil}}
        {key, _} -> {key, {{:or_nil, :string}, nil}}
      end) ++ [allow_http: {:boolean, false}, url: {{:or_nil, :string}, nil}]
  end

  def schema(:azure) do
    @common ++
      Enum.map(@azure_keys, fn
        {key, _}
        when key in [:use_fabric_endpoint, :use_azure_cli, :skip_signature, :disable_tagging] ->
          {key, {:boolean, nil}}

        {key, _} ->
          {key, {{:or_nil, :string}, nil}}
      end) ++
      [
        use_emulator: {:boolean, false},
        allow_http: {:boolean, false},
        url: {{:or_nil, :string}, nil}
      ]
  end

  @backends [:memory, :local, :s3, :gcs, :azure, :http]

  @doc false
  def backends, do: @backends

  @doc "Validates `opts` for `backend`; returns `{native_config, name, prefix}`."
  def build!(backend, opts) when backend in @backends do
    function = "ObjectStoreX.new/2 (#{inspect(backend)})"

    opts =
      backend |> schema() |> then(&Options.validate!(opts, &1, function)) |> emulator(backend)

    client = client!(opts, function)
    retry = retry!(opts.retry, function)
    options = options!(backend, opts, function)

    native = %{
      backend: Atom.to_string(backend),
      options: options,
      client: client,
      retry: retry,
      from_env: opts.from_env,
      url: Map.get(opts, :url),
      root: root!(backend, opts),
      prefix: opts.prefix
    }

    {native, name(backend, opts), opts.prefix}
  end

  def build!(backend, _opts) do
    raise ArgumentError,
          "unknown backend #{inspect(backend)} for ObjectStoreX.new/2; " <>
            "expected one of #{Enum.map_join(@backends, ", ", &inspect/1)} or a URL"
  end

  defp root!(:local, %{root: root, create_root: create?}) do
    if create?, do: File.mkdir_p!(root)
    root
  end

  defp root!(_backend, _opts), do: nil

  defp name(:local, opts), do: opts.root
  defp name(:azure, opts), do: opts.container || url_host(opts.url)
  # The scheme is shown by Store's inspect: keep host, port and path only.
  defp name(:http, opts), do: opts.url && String.replace(opts.url, ~r{^[a-z]+://}i, "")
  defp name(:memory, _opts), do: nil
  defp name(_backend, opts), do: opts.bucket || url_host(opts.url)

  defp url_host(nil), do: nil
  defp url_host(url), do: URI.parse(url).host

  # object_store's emulator mode reads Azurite's address from the environment only; with an
  # explicit endpoint, use Azurite's development account at that endpoint, over plain HTTP.
  defp emulator(%{use_emulator: true, endpoint: endpoint} = opts, :azure)
       when is_binary(endpoint) do
    %{
      opts
      | use_emulator: false,
        account: opts.account || @azurite_account,
        access_key: opts.access_key || @azurite_key,
        allow_http: true
    }
  end

  defp emulator(opts, _backend), do: opts

  defp options!(:s3, opts, function) do
    translate(opts, @s3_keys, function) ++ raw_config(opts.config, function)
  end

  defp options!(:gcs, opts, function) do
    translate(opts, @gcs_keys, function) ++ raw_config(opts.config, function)
  end

  defp options!(:azure, opts, function) do
    emulator = if opts.use_emulator, do: [{"azure_storage_use_emulator", "true"}], else: []
    translate(opts, @azure_keys, function) ++ emulator ++ raw_config(opts.config, function)
  end

  defp options!(_backend, opts, function), do: raw_config(opts.config, function)

  defp translate(opts, keys, function) do
    for {option, key} <- keys, value = Map.get(opts, option), value != nil do
      {key, encode_value(option, value, function)}
    end
  end

  defp encode_value(:copy_if_not_exists, :multipart, _), do: "multipart"
  defp encode_value(:copy_if_not_exists, {:header, k, v}, _), do: "header: #{k}: #{v}"

  defp encode_value(:copy_if_not_exists, {:header_with_status, k, v, status}, _),
    do: "header-with-status: #{k}: #{v}: #{status}"

  defp encode_value(:copy_if_not_exists, other, function) do
    raise ArgumentError,
          "invalid value for option :copy_if_not_exists of #{function}: expected :multipart, " <>
            "{:header, name, value} or {:header_with_status, name, value, status}, got: #{inspect(other)}"
  end

  defp encode_value(_option, value, _function) when is_atom(value), do: Atom.to_string(value)
  defp encode_value(_option, value, _function) when is_binary(value), do: value

  defp raw_config(nil, _function), do: []

  defp raw_config(config, function) when is_map(config) do
    for {key, value} <- config do
      unless is_binary(key) or is_atom(key) do
        raise ArgumentError, "invalid key #{inspect(key)} in option :config of #{function}"
      end

      {to_string(key), to_string(value)}
    end
  end

  defp raw_config(other, function) do
    raise ArgumentError,
          "invalid value for option :config of #{function}: expected a map of object_store " <>
            "configuration keys to values, got: #{inspect(other)}"
  end

  defp client!(opts, function) do
    client = Options.validate!(opts.client || [], @client_schema, "option :client of #{function}")
    client = if Map.get(opts, :allow_http), do: %{client | allow_http: true}, else: client

    for {key, value} <- client, value != nil do
      {Atom.to_string(key), client_value(key, value)}
    end
  end

  defp client_value(:timeout, :infinity), do: "infinity"

  defp client_value(key, ms)
       when key in [:timeout, :connect_timeout, :read_timeout, :pool_idle_timeout],
       do: "#{ms}ms"

  defp client_value(_key, value), do: to_string(value)

  defp retry!(nil, _function), do: nil

  defp retry!(retry, function) do
    r = Options.validate!(retry, @retry_schema, "option :retry of #{function}")
    {r.max_retries, r.retry_timeout, r.init_backoff, r.max_backoff}
  end
end
