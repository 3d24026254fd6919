defmodule ObjectStoreX.PutOptions do
  @moduledoc false
  # The options of ObjectStoreX.put/4, shared with ObjectStoreX.Stream.upload/4: validated and
  # turned into the map the NIF takes (native/.../store/terms.rs, PutOpts).

  alias CloudStreams.Options
  alias ObjectStoreX.Meta

  @schema [
    mode: [
      type: {:custom, __MODULE__, :cast_mode, []},
      default: :overwrite,
      doc:
        "`:overwrite`, `:create` (fails with `:already_exists` if the object exists) or " <>
          "`{:update, %{etag: etag, version: version}}` (fails with `:precondition_failed` " <>
          "unless the object is still at that etag or version)."
    ],
    content_type: [type: {:or_nil, :string}, doc: "the content type."],
    content_disposition: [type: {:or_nil, :string}, doc: "the content disposition."],
    content_encoding: [type: {:or_nil, :string}, doc: "the content encoding."],
    content_language: [type: {:or_nil, :string}, doc: "the content language."],
    cache_control: [type: {:or_nil, :string}, doc: "the cache control header."],
    metadata: [
      type: {:or_nil, {:custom, __MODULE__, :cast_pairs, []}},
      doc: "a map of user metadata, names and values strings (or atoms, numbers)."
    ],
    tags: [
      type: {:or_nil, {:custom, __MODULE__, :cast_pairs, []}},
      doc: "a map of object tags (stores that support them)."
    ]
  ]

  @attributes [
    :content_type,
    :content_disposition,
    :content_encoding,
    :content_language,
    :cache_control
  ]

  def schema, do: @schema

  @doc "Validates put options (and only those) and returns the native map."
  def to_native!(opts, function) do
    opts |> Options.validate!(@schema, function) |> from_validated(function)
  end

  @doc "The native map from options already validated against `schema/0`."
  def from_validated(opts, _function) do
    %{
      mode: opts.mode,
      attributes: attributes(opts),
      tags: opts.tags || []
    }
  end

  defp attributes(opts) do
    content = for key <- @attributes, value = opts[key], do: {Atom.to_string(key), value}
    metadata = for {k, v} <- opts.metadata || [], do: {"metadata:" <> k, v}
    content ++ metadata
  end

  @doc false
  # The option type of `:mode`, normalised to the NIF's form.
  def cast_mode(:overwrite), do: {:ok, :overwrite}
  def cast_mode(:create), do: {:ok, :create}

  def cast_mode({:update, %{} = version}) do
    {etag, version} = {Map.get(version, :etag), Map.get(version, :version)}

    if optional_string?(etag) and optional_string?(version),
      do: {:ok, {:update, etag, version}},
      else: mode_error()
  end

  def cast_mode(%Meta{etag: etag, version: version}),
    do: cast_mode({:update, %{etag: etag, version: version}})

  def cast_mode(_other), do: mode_error()

  defp mode_error do
    {:error, ":overwrite, :create or {:update, %{etag: etag, version: version}} (strings or nil)"}
  end

  defp optional_string?(value), do: is_nil(value) or (is_binary(value) and String.valid?(value))

  @doc false
  # The option type of `:metadata` and `:tags`: a map of names to values, as string pairs.
  def cast_pairs(map) when is_map(map) and not is_struct(map) do
    pairs = Enum.map(map, fn {k, v} -> {text(k), text(v)} end)

    if Enum.all?(pairs, fn {k, v} -> k && v end),
      do: {:ok, pairs},
      else: {:error, pairs_expected()}
  end

  def cast_pairs(_other), do: {:error, pairs_expected()}

  defp pairs_expected,
    do: "a map of strings (valid UTF-8), atoms or numbers to strings, atoms or numbers"

  defp text(value) when is_binary(value), do: String.valid?(value) && value

  defp text(value) when is_atom(value) and value not in [nil, true, false],
    do: Atom.to_string(value)

  defp text(value) when is_number(value), do: to_string(value)
  defp text(_value), do: nil
end
