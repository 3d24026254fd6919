defmodule Dynamo.Codec do
  @moduledoc """
  Lossless conversion between Elixir values and DynamoDB attribute values.

  Inside the library a value is a tagged term, exactly what the NIF exchanges:
  `{:s, binary}`, `{:n, "digits"}`, `{:b, binary}`, `{:bool, boolean}`, `:null`,
  `{:l, list}`, `{:m, map}`, `{:ss, list}`, `{:ns, list}`, `{:bs, list}`.

  Plain Elixir values map naturally: strings to `S`, integers and floats to `N`, booleans,
  `nil` to `NULL`, lists to `L`, maps to `M`, `MapSet`s to sets, `DateTime`s to ISO 8601
  strings. DynamoDB JSON (`%{"S" => "x"}`, `%{"N" => "1"}`, `%{"BOOL" => true}`, ... with
  binaries in Base64) is accepted too, and is what `last_evaluated_key` looks like, so a
  checkpoint survives a JSON round trip.

  A schema field's type decides how a stored value comes back: a number stored from `10.0`
  comes back as `10.0` in a `:float` field (DynamoDB itself keeps no such distinction), an
  integer of any size stays an integer, binaries stay bytes.

      iex> Dynamo.Codec.encode(%{"n" => 10, "tags" => MapSet.new(["a"])})
      {:m, %{"n" => {:n, "10"}, "tags" => {:ss, ["a"]}}}
      iex> Dynamo.Codec.decode({:n, "123456789012345678901234567890"})
      123456789012345678901234567890
  """

  @type attribute :: term()

  @json_types ~w(S N B BOOL NULL L M SS NS BS)

  @doc "A plain Elixir value (or DynamoDB JSON) as a tagged attribute value."
  @spec encode(term()) :: attribute()
  def encode(nil), do: :null
  def encode(value) when is_boolean(value), do: {:bool, value}
  def encode(value) when is_binary(value), do: {:s, text!(value)}
  def encode(value) when is_integer(value), do: {:n, Integer.to_string(value)}
  def encode(value) when is_float(value), do: {:n, Float.to_string(value)}
  def encode(value) when is_atom(value), do: {:s, Atom.to_string(value)}
  def encode(%DateTime{} = value), do: {:s, DateTime.to_iso8601(value)}
  def encode(%MapSet{} = set), do: encode_set(MapSet.to_list(set))
  def encode(list) when is_list(list), do: {:l, Enum.map(list, &encode/1)}

  def encode(%{} = map) when map_size(map) == 1 do
    case Map.to_list(map) do
      [{type, value}] when type in @json_types -> from_json(type, value)
      _ -> encode_map(map)
    end
  end

  def encode(%_{} = struct) do
    raise ArgumentError,
          "cannot store #{inspect(struct)} in DynamoDB: structs other than DateTime and MapSet have no attribute type"
  end

  def encode(%{} = map), do: encode_map(map)

  def encode(other) do
    raise ArgumentError, "cannot store #{inspect(other)} in DynamoDB: no attribute type for it"
  end

  defp encode_map(map), do: {:m, Map.new(map, fn {k, v} -> {key!(k), encode(v)} end)}

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

  defp from_json("S", v) when is_binary(v), do: {:s, text!(v)}
  defp from_json("N", v) when is_binary(v), do: {:n, text!(v)}
  defp from_json("N", v) when is_number(v), do: encode(v)
  defp from_json("B", v) when is_binary(v), do: {:b, Base.decode64!(v)}
  defp from_json("BOOL", v) when is_boolean(v), do: {:bool, v}
  defp from_json("NULL", true), do: :null
  defp from_json("L", v) when is_list(v), do: {:l, Enum.map(v, &encode/1)}
  defp from_json("M", v) when is_map(v), do: encode_map(v)
  defp from_json("SS", v) when is_list(v), do: {:ss, Enum.map(v, &text!/1)}

  defp from_json("NS", v) when is_list(v),
    do: {:ns, Enum.map(v, &if(is_number(&1), do: to_string(&1), else: text!(&1)))}

  defp from_json("BS", v) when is_list(v), do: {:bs, Enum.map(v, &Base.decode64!/1)}

  defp from_json(type, v),
    do: raise(ArgumentError, "invalid DynamoDB JSON value %{#{inspect(type)} => #{inspect(v)}}")

  # DynamoDB strings (and the native side) are UTF-8; bytes belong in binaries (`B`).
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

  @doc "Attribute values given as DynamoDB JSON or plain values, as tagged values."
  @spec encode_item(map() | keyword()) :: map()
  def encode_item(values), do: Map.new(values, fn {k, v} -> {key!(k), encode(v)} end)
end
