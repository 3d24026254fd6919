defmodule ObjectStoreX.PutOptions do
  @moduledoc false
  # The options of ObjectStoreX.put/4, shared with ObjectStoreX.Stream.upload/4: validated and
  # turned into the map the NIF takes (native/.../store/terms.rs, PutOpts).

  alias CloudStreams.Options
  alias ObjectStoreX.Meta

  @schema [
    mode: {:any, :overwrite},
    content_type: {{:or_nil, :string}, nil},
    content_disposition: {{:or_nil, :string}, nil},
    content_encoding: {{:or_nil, :string}, nil},
    content_language: {{:or_nil, :string}, nil},
    cache_control: {{:or_nil, :string}, nil},
    metadata: {{:or_nil, :any}, nil},
    tags: {{:or_nil, :any}, nil}
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
  def from_validated(opts, function) do
    %{
      mode: mode!(opts.mode, function),
      attributes: attributes!(opts, function),
      tags: string_pairs!(opts.tags, :tags, function)
    }
  end

  defp mode!(:overwrite, _), do: :overwrite
  defp mode!(:create, _), do: :create

  defp mode!({:update, %{} = version}, _),
    do: {:update, Map.get(version, :etag), Map.get(version, :version)}

  defp mode!(%Meta{etag: etag, version: version}, _), do: {:update, etag, version}

  defp mode!(other, function) do
    raise ArgumentError,
          "invalid value for option :mode of #{function}: expected :overwrite, :create " <>
            "or {:update, %{etag: etag, version: version}}, got: #{inspect(other)}"
  end

  defp attributes!(opts, function) do
    content = for key <- @attributes, value = opts[key], do: {Atom.to_string(key), value}

    metadata =
      for {k, v} <- string_pairs!(opts.metadata, :metadata, function), do: {"metadata:" <> k, v}

    content ++ metadata
  end

  defp string_pairs!(nil, _option, _function), do: []

  defp string_pairs!(map, option, function) when is_map(map) do
    Enum.map(map, fn
      {k, v} when (is_binary(k) or is_atom(k)) and (is_binary(v) or is_number(v) or is_atom(v)) ->
        {to_string(k), to_string(v)}

      pair ->
        raise ArgumentError,
              "invalid entry #{inspect(pair)} in option #{inspect(option)} of #{function}"
    end)
  end

  defp string_pairs!(other, option, function) do
    raise ArgumentError,
          "invalid value for option #{inspect(option)} of #{function}: expected a map, got: #{inspect(other)}"
  end
end
