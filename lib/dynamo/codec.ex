defmodule Dynamo.Codec do
  @moduledoc """
  Lossless conversion between Elixir values and DynamoDB attribute values.

  Inside the library a value is a tagged term, exactly what the NIF exchanges:
  `{:s, binary}`, `{:n, "digits"}`, `{:b, binary}`, `{:bool, boolean}`, `:null`,
  `{:l, list}`, `{:m, map}`, `{:ss, list}`, `{:ns, list}`, `{:bs, list}`.

  Plain Elixir values map naturally: strings to `S`, integers and floats to `N`, booleans,
  `nil` to `NULL`, lists to `L`, maps to `M`, `MapSet`s to sets, `DateTime`s to ISO 8601
  strings.

  ## Values are values

  What is stored in a field, a map, a list or an `:any` field is stored as itself: a map is
  always a map, whatever its keys. `%{"S" => "small"}` is stored as a map with the key `"S"`
  and read back equal, never as the string `"small"`.

  DynamoDB JSON (`%{"S" => "x"}`, `%{"N" => "1"}`, `%{"BOOL" => true}`, ... with binaries in
  Base64) is read in exactly two places, where it is DynamoDB's own documented input:

    * `expression_attribute_values` - each value that is a one-key map whose key is a type
      name (`S N B BOOL NULL L M SS NS BS`) is DynamoDB JSON; any other value is plain. To
      compare with a plain map that has such a single key, write it as DynamoDB JSON
      (`%{"M" => %{"S" => %{"S" => "small"}}}`).
    * keys: `exclusive_start_key`, `last_evaluated_key` and checkpoint positions
      (`encode_item/1`), so a checkpoint survives a JSON round trip.

  There is no other way in: `encode/1` never reads DynamoDB JSON; `from_json/1` converts it
  explicitly.

  A schema field's type decides how a stored value comes back: a number stored from `10.0`
  comes back as `10.0` in a `:float` field (DynamoDB itself keeps no such distinction), an
  integer of any size stays an integer, binaries stay bytes.

  Values nest at most 32 levels deep, DynamoDB's limit: an attribute is level 1 and the
  contents of a list or map are one level deeper than it, so at most 31 lists or maps fit
  inside one another (what DynamoDB Local accepts). Deeper values raise `ArgumentError`
  before any request is made.

      iex> Dynamo.Codec.encode(%{"n" => 10, "tags" => MapSet.new(["a"])})
      {:m, %{"n" => {:n, "10"}, "tags" => {:ss, ["a"]}}}
      iex> Dynamo.Codec.encode(%{"S" => "small"})
      {:m, %{"S" => {:s, "small"}}}
      iex> Dynamo.Codec.from_json(%{"S" => "small"})
      {:s, "small"}
      iex> Dynamo.Codec.decode({:n, "123456789012345678901234567890"})
      123456789012345678901234567890
  """

  @type attribute :: term()

  @json_types ~w(S N B BOOL NULL L M SS NS BS)

  # DynamoDB's limit of 32 levels: at most 31 lists or maps inside one another.
  @max_containers 31

  @doc """
  A plain Elixir value as a tagged attribute value. Maps are always maps: DynamoDB JSON is
  not read here (see `from_json/1`).
  """
  @spec encode(term()) :: attribute()
  def encode(value), do: encode(value, 0)

  defp encode(nil, _depth), do: :null
  defp encode(value, _depth) when is_boolean(value), do: {:bool, value}
  defp encode(value, _depth) when is_binary(value), do: {:s, text!(value)}
  defp encode(value, _depth) when is_integer(value), do: {:n, Integer.to_string(value)}
  defp encode(value, _depth) when is_float(value), do: {:n, Float.to_string(value)}
  defp encode(value, _depth) when is_atom(value), do: {:s, Atom.to_string(value)}
  defp encode(%DateTime{} = value, _depth), do: {:s, DateTime.to_iso8601(value)}
  defp encode(%MapSet{} = set, _depth), do: encode_set(MapSet.to_list(set))

  defp encode(list, depth) when is_list(list) do
    depth = deeper!(depth)
    {:l, Enum.map(list, &encode(&1, depth))}
  end

  defp encode(%_{} = struct, _depth) do
    raise ArgumentError,
          "cannot store #{inspect(struct)} in DynamoDB: structs other than DateTime and MapSet have no attribute type"
  end

  defp encode(%{} = map, depth), do: encode_map(map, deeper!(depth))

  defp encode(other, _depth) do
    raise ArgumentError, "cannot store #{inspect(other)} in DynamoDB: no attribute type for it"
  end

  # `depth` counts the lists and maps around a value.
  defp deeper!(depth) when depth < @max_containers, do: depth + 1

  defp deeper!(_depth) do
    raise ArgumentError,
          "the value nests more than #{@max_containers} lists or maps inside one another " <>
            "(DynamoDB allows 32 levels, the attribute itself included)"
  end

  defp encode_map(map, depth),
    do: {:m, Map.new(map, fn {k, v} -> {key!(k), encode(v, depth)} end)}

  defp key!(key) when is_binary(key), do: text!(key)
  defp key!(key) when is_atom(key), do: Atom.to_string(key)

  defp key!(key),
    do:
      raise(
        ArgumentError,
        "map keys stored in DynamoDB must be strings or atoms, got: #{inspect(key)}"
      )

  defp encode_set([]), do: raise(ArgumentError, "DynamoDB cannot store an empty set")

  defp encode_set(elements) do
    cond do
      Enum.all?(elements, &is_binary/1) ->
        {:ss, Enum.map(elements, &text!/1)}

      Enum.all?(elements, &is_number/1) ->
        {:ns, Enum.map(elements, fn n -> elem(encode(n), 1) end)}

      true ->
        raise ArgumentError,
              "a DynamoDB set holds only strings or only numbers, got: #{inspect(elements)}"
    end
  end

  @doc """
  A DynamoDB JSON value (`%{"S" => "x"}`, `%{"M" => %{...}}`, binaries in Base64) as a tagged
  attribute value. Raises `ArgumentError` for anything else.

      iex> Dynamo.Codec.from_json(%{"L" => [%{"N" => "1"}, %{"NULL" => true}]})
      {:l, [{:n, "1"}, :null]}
  """
  @spec from_json(map()) :: attribute()
  def from_json(json), do: from_json(json, 0)

  defp from_json(%{} = json, depth) when map_size(json) == 1 do
    [{type, value}] = Map.to_list(json)
    json_value(type, value, depth)
  end

  defp from_json(other, _depth),
    do: raise(ArgumentError, "not a DynamoDB JSON value: #{inspect(other)}")

  defp json_value("S", v, _) when is_binary(v), do: {:s, text!(v)}
  defp json_value("N", v, _) when is_binary(v), do: {:n, text!(v)}
  defp json_value("N", v, _) when is_number(v), do: encode(v)
  defp json_value("B", v, _) when is_binary(v), do: {:b, base64!(v)}
  defp json_value("BOOL", v, _) when is_boolean(v), do: {:bool, v}
  defp json_value("NULL", true, _), do: :null

  defp json_value("L", v, depth) when is_list(v) do
    depth = deeper!(depth)
    {:l, Enum.map(v, &from_json(&1, depth))}
  end

  defp json_value("M", v, depth) when is_map(v) do
    depth = deeper!(depth)
    {:m, Map.new(v, fn {k, v} -> {key!(k), from_json(v, depth)} end)}
  end

  defp json_value("SS", [_ | _] = v, _), do: {:ss, Enum.map(v, &json_string!/1)}
  defp json_value("NS", [_ | _] = v, _), do: {:ns, Enum.map(v, &(&1 |> json_number!()))}
  defp json_value("BS", [_ | _] = v, _), do: {:bs, Enum.map(v, &base64!/1)}

  defp json_value(type, v, _),
    do: raise(ArgumentError, "invalid DynamoDB JSON value %{#{inspect(type)} => #{inspect(v)}}")

  defp json_string!(v) when is_binary(v), do: text!(v)
  defp json_string!(v), do: raise(ArgumentError, "not a string in a DynamoDB set: #{inspect(v)}")

  defp json_number!(v) when is_binary(v), do: text!(v)
  defp json_number!(v) when is_number(v), do: elem(encode(v), 1)
  defp json_number!(v), do: raise(ArgumentError, "not a number in a DynamoDB set: #{inspect(v)}")

  defp base64!(v) do
    case is_binary(v) && Base.decode64(v) do
      {:ok, bytes} -> bytes
      _ -> raise ArgumentError, "not Base64 in DynamoDB JSON: #{inspect(v)}"
    end
  end

  @doc false
  # DynamoDB JSON where DynamoDB documents it (keys, expression values), plain values otherwise.
  def json_or_plain(%{} = value) when map_size(value) == 1 and not is_struct(value) do
    case Map.keys(value) do
      [type] when type in @json_types -> from_json(value)
      _ -> encode(value)
    end
  end

  def json_or_plain(value), do: encode(value)

  defp text!(value) when is_binary(value) do
    if String.valid?(value) do
      value
    else
      raise ArgumentError,
            "cannot store #{inspect(value, limit: 8)} as a DynamoDB string: not valid UTF-8 " <>
              "(store bytes in a :binary field or as %{\"B\" => base64})"
    end
  end

  defp text!(value),
    do: raise(ArgumentError, "expected a string in a DynamoDB string set, got: #{inspect(value)}")

  @doc "A tagged attribute value as a plain Elixir value (numbers as integers or floats)."
  @spec decode(attribute()) :: term()
  def decode({:s, v}), do: v
  def decode({:n, v}), do: number(v)
  def decode({:b, v}), do: v
  def decode({:bool, v}), do: v
  def decode(:null), do: nil
  def decode({:l, list}), do: Enum.map(list, &decode/1)
  def decode({:m, map}), do: Map.new(map, fn {k, v} -> {k, decode(v)} end)
  def decode({:ss, list}), do: MapSet.new(list)
  def decode({:ns, list}), do: MapSet.new(list, &number/1)
  def decode({:bs, list}), do: MapSet.new(list)

  @doc "Parses a DynamoDB number: an integer when it has no fraction or exponent."
  @spec number(String.t()) :: number()
  def number(text) do
    case Integer.parse(text) do
      {integer, ""} ->
        integer

      _ ->
        case Float.parse(text) do
          {float, ""} -> float
          _ -> raise ArgumentError, "not a DynamoDB number: #{inspect(text)}"
        end
    end
  end

  @doc "A tagged value (or item) as DynamoDB JSON, binaries in Base64."
  @spec to_json(attribute() | map()) :: map()
  def to_json({:s, v}), do: %{"S" => v}
  def to_json({:n, v}), do: %{"N" => v}
  def to_json({:b, v}), do: %{"B" => Base.encode64(v)}
  def to_json({:bool, v}), do: %{"BOOL" => v}
  def to_json(:null), do: %{"NULL" => true}
  def to_json({:l, l}), do: %{"L" => Enum.map(l, &to_json/1)}
  def to_json({:m, m}), do: %{"M" => item_to_json(m)}
  def to_json({:ss, l}), do: %{"SS" => l}
  def to_json({:ns, l}), do: %{"NS" => l}
  def to_json({:bs, l}), do: %{"BS" => Enum.map(l, &Base.encode64/1)}

  @doc "An item (`%{name => tagged}`) as DynamoDB JSON."
  @spec item_to_json(map()) :: map()
  def item_to_json(item), do: Map.new(item, fn {k, v} -> {k, to_json(v)} end)

  @doc """
  Attributes of plain values (an item's undeclared attributes, PartiQL parameters) as tagged
  values; like `encode/1`, never reads DynamoDB JSON.

      iex> Dynamo.Codec.encode_attributes(%{"sizes" => %{"S" => "small"}})
      %{"sizes" => {:m, %{"S" => {:s, "small"}}}}
  """
  @spec encode_attributes(map() | keyword()) :: map()
  def encode_attributes(values), do: Map.new(values, fn {k, v} -> {key!(k), encode(v)} end)

  @doc """
  A key or expression values, given as DynamoDB JSON (`last_evaluated_key`'s form) or as plain
  values, as tagged values. Only keys (`exclusive_start_key`, checkpoint positions) and
  `expression_attribute_values` come this way; items are encoded with `encode/1`.

      iex> Dynamo.Codec.encode_item(%{"id" => %{"S" => "u1"}, "n" => 5})
      %{"id" => {:s, "u1"}, "n" => {:n, "5"}}
  """
  @spec encode_item(map() | keyword()) :: map()
  def encode_item(values), do: Map.new(values, fn {k, v} -> {key!(k), json_or_plain(v)} end)
end
