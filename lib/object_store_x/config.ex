defmodule ObjectStoreX.Config do
  @moduledoc false
  # Validates the options of ObjectStoreX.new/2 and translates them into object_store's own
  # configuration keys (parsed again by object_store itself in native/.../store/config.rs).

  alias CloudStreams.{Options, Redact}

  # Milliseconds the native side takes for client and retry durations.
  @max_ms Options.max_timeout()
  @max_retries 1000

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
    timeout: [
      type: :timeout,
      doc: "the whole request, in ms or `:infinity` (default 30 s)."
    ],
    connect_timeout: [type: {:in, 1..@max_ms}, doc: "ms."],
    read_timeout: [type: {:in, 1..@max_ms}, doc: "the longest wait for the next bytes, in ms."],
    pool_idle_timeout: [type: {:in, 1..@max_ms}, doc: "ms."],
    pool_max_idle_per_host: [type: {:in, 0..1_000_000}, doc: "idle connections kept per host."],
    allow_http: [type: {:or_nil, :boolean}, doc: "allow plain HTTP."],
    allow_invalid_certificates: [type: {:or_nil, :boolean}, doc: "skip TLS verification."],
    http1_only: [type: {:or_nil, :boolean}, doc: "HTTP/1 only."],
    http2_only: [type: {:or_nil, :boolean}, doc: "HTTP/2 only."],
    user_agent: [type: {:or_nil, :string}, doc: "the User-Agent header."],
    proxy_url: [type: {:or_nil, :string}, doc: "an HTTP(S) proxy (never shown in errors)."]
  ]

  @retry_schema [
    max_retries: [
      type: {:in, 0..@max_retries},
      default: 10,
      doc: "retries of a failed request, at most #{@max_retries}."
    ],
    retry_timeout: [
      type: {:in, 1..@max_ms},
      default: 180_000,
      doc: "ms after which a request is not retried any more."
    ],
    init_backoff: [type: {:in, 1..@max_ms}, default: 100, doc: "the first backoff, in ms."],
    max_backoff: [type: {:in, 1..@max_ms}, default: 15_000, doc: "the longest backoff, in ms."]
  ]

  @common [
    prefix: [type: {:or_nil, :string}, doc: "every path is relative to this prefix."],
    client: [
      type: {:or_nil, :keyword_list},
      keys: @client_schema,
      doc: "HTTP client settings (all optional):"
    ],
    retry: [
      type: {:or_nil, :keyword_list},
      keys: @retry_schema,
      doc: "retries of failed requests:"
    ],
    from_env: [
      type: :boolean,
      default: false,
      doc:
        "start from the standard environment variables (`AWS_*`, `GOOGLE_*`, `AZURE_*`), " <>
          "as object_store's `from_env` builders do; explicit options win."
    ],
    config: [
      type: {:or_nil, {:custom, __MODULE__, :cast_raw_config, []}},
      doc: "a map of any other object_store configuration key to its value."
    ]
  ]

  @doc false
  def common_schema, do: @common

  @doc false
  def schema(:memory), do: @common

  def schema(:local) do
    @common ++
      [
        root: [type: :string, required: true],
        create_root: [type: :boolean, default: false],
        confine_to_root: [type: :boolean, default: false]
      ]
  end

  def schema(:http),
    do: @common ++ [url: [type: :string, required: true], allow_http: {:boolean, false}]

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
          {:copy_if_not_exists,
           [type: {:custom, __MODULE__, :cast_copy_if_not_exists, []}, default: "multipart"]}

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

    client = client(opts)
    retry = retry(opts.retry)
    options = options(backend, opts)

    native = %{
      backend: Atom.to_string(backend),
      options: options,
      client: client,
      retry: retry,
      from_env: opts.from_env,
      url: Map.get(opts, :url),
      root: root!(backend, opts),
      confine_to_root: Map.get(opts, :confine_to_root, false),
      prefix: opts.prefix
    }

    {native, name(backend, opts), opts.prefix}
  end

  def build!(backend, _opts) do
    raise ArgumentError,
          "unknown backend #{Redact.inspect(backend)} for ObjectStoreX.new/2; " <>
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
  defp name(:http, opts),
    do: opts.url && String.replace(Redact.text(opts.url), ~r{^[a-z]+://}i, "")

  defp name(:memory, _opts), do: nil
  defp name(_backend, opts), do: opts.bucket || url_host(opts.url)

  defp url_host(nil), do: nil
  defp url_host(url), do: url |> URI.parse() |> Map.get(:host) |> then(&(&1 && Redact.text(&1)))

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

  defp options(:s3, opts), do: translate(opts, @s3_keys) ++ (opts.config || [])
  defp options(:gcs, opts), do: translate(opts, @gcs_keys) ++ (opts.config || [])

  defp options(:azure, opts) do
    emulator = if opts.use_emulator, do: [{"azure_storage_use_emulator", "true"}], else: []
    translate(opts, @azure_keys) ++ emulator ++ (opts.config || [])
  end

  defp options(_backend, opts), do: opts.config || []

  defp translate(opts, keys) do
    for {option, key} <- keys, value = Map.get(opts, option), value != nil do
      {key, encode_value(value)}
    end
  end

  defp encode_value(value) when is_atom(value), do: Atom.to_string(value)
  defp encode_value(value) when is_binary(value), do: value

  @doc false
  # The option type of `:copy_if_not_exists`, as object_store's configuration string.
  def cast_copy_if_not_exists(:multipart), do: {:ok, "multipart"}
  def cast_copy_if_not_exists("multipart"), do: {:ok, "multipart"}

  def cast_copy_if_not_exists({:header, k, v}) when is_binary(k) and is_binary(v),
    do: checked_text("header: #{k}: #{v}")

  def cast_copy_if_not_exists({:header_with_status, k, v, status})
      when is_binary(k) and is_binary(v) and is_integer(status) and status in 100..599,
      do: checked_text("header-with-status: #{k}: #{v}: #{status}")

  def cast_copy_if_not_exists(_other) do
    {:error,
     ":multipart, {:header, name, value} or {:header_with_status, name, value, status} " <>
       "(strings, status 100-599)"}
  end

  defp checked_text(text) do
    if String.valid?(text),
      do: {:ok, text},
      else: {:error, "header names and values as valid UTF-8 strings"}
  end

  @doc false
  # The option type of `:config`: a map of object_store keys to values, as string pairs.
  def cast_raw_config(config) when is_map(config) and not is_struct(config) do
    pairs = for {key, value} <- config, do: {config_text(key), config_text(value)}

    if Enum.all?(pairs, fn {k, v} -> k && v end),
      do: {:ok, pairs},
      else: {:error, raw_config_expected()}
  end

  def cast_raw_config(_other), do: {:error, raw_config_expected()}

  defp raw_config_expected,
    do: "a map of object_store configuration keys to values (strings, atoms, numbers or booleans)"

  defp config_text(value) when is_binary(value), do: String.valid?(value) && value
  defp config_text(value) when is_atom(value) and not is_nil(value), do: Atom.to_string(value)
  defp config_text(value) when is_number(value), do: to_string(value)
  defp config_text(_value), do: nil

  defp client(opts) do
    client = opts.client || %{}
    client = if Map.get(opts, :allow_http), do: Map.put(client, :allow_http, true), else: client

    for {key, value} <- client, value != nil do
      {Atom.to_string(key), client_value(key, value)}
    end
  end

  defp client_value(:timeout, :infinity), do: "infinity"

  defp client_value(key, ms)
       when key in [:timeout, :connect_timeout, :read_timeout, :pool_idle_timeout],
       do: "#{ms}ms"

  defp client_value(_key, value), do: to_string(value)

  defp retry(nil), do: nil
  defp retry(r), do: {r.max_retries, r.retry_timeout, r.init_backoff, r.max_backoff}
end
