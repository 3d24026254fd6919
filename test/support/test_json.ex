defmodule CloudStreams.TestJSON do
  @moduledoc false
  # A small JSON encoder and decoder for tests that read exported files and speak DynamoDB's
  # JSON protocol: Elixir 1.14 has no JSON module and hex (Jason) is unreachable here. Strict
  # enough to fail on malformed input: it parses RFC 8259 JSON, nothing looser.

  @doc """
  Decodes one JSON text. With `raw_numbers: true` numbers come as `{:number, text}` with their
  exact text, so a test can check digits were written exactly.
  """
  def decode!(text, opts \\ []) do
    raw? = Keyword.get(opts, :raw_numbers, false)

    case value(skip(text), raw?) do
      {value, rest} ->
        if skip(rest) != "", do: raise(ArgumentError, "trailing data: #{inspect(rest)}")
        value
    end
  end

  @doc "Decodes newline-delimited JSON: one value per non-empty line."
  def decode_lines!(text, opts \\ []) do
    text |> String.split("\n") |> Enum.reject(&(&1 == "")) |> Enum.map(&decode!(&1, opts))
  end

  defp skip(<<c, rest::binary>>) when c in [?\s, ?\t, ?\n, ?\r], do: skip(rest)
  defp skip(rest), do: rest

  defp value("{" <> rest, raw?), do: object(skip(rest), raw?, [])
  defp value("[" <> rest, raw?), do: array(skip(rest), raw?, [])
  defp value("\"" <> rest, _raw?), do: string(rest, [])
  defp value("true" <> rest, _), do: {true, rest}
  defp value("false" <> rest, _), do: {false, rest}
  defp value("null" <> rest, _), do: {nil, rest}

  defp value(text, raw?) do
    case Regex.run(~r/^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/, text) do
      [number | _] ->
        rest = binary_part(text, byte_size(number), byte_size(text) - byte_size(number))
        {number(number, raw?), rest}

      nil ->
        raise ArgumentError, "not JSON at: #{inspect(String.slice(text, 0, 40))}"
    end
  end

  defp number(text, true), do: {:number, text}

  defp number(text, false) do
    case Integer.parse(text) do
      {integer, ""} -> integer
      _ -> String.to_float(normalise_float(text))
    end
  end

  # String.to_float/1 wants a fraction: "1e5" -> "1.0e5".
  defp normalise_float(text) do
    if String.contains?(text, "."),
      do: text,
      else: String.replace(text, ~r/[eE]/, ".0e", global: false)
  end

  defp object("}" <> rest, _raw?, acc), do: {Map.new(acc), rest}

  defp object("\"" <> rest, raw?, acc) do
    {key, rest} = string(rest, [])
    ":" <> rest = skip(rest)
    {value, rest} = value(skip(rest), raw?)
    acc = [{key, value} | acc]

    case skip(rest) do
      "," <> rest -> object(skip(rest), raw?, acc)
      "}" <> rest -> {Map.new(acc), rest}
      other -> raise ArgumentError, "expected , or } at: #{inspect(String.slice(other, 0, 40))}"
    end
  end

  defp array("]" <> rest, _raw?, []), do: {[], rest}

  defp array(text, raw?, acc) do
    {value, rest} = value(text, raw?)
    acc = [value | acc]

    case skip(rest) do
      "," <> rest -> array(skip(rest), raw?, acc)
      "]" <> rest -> {Enum.reverse(acc), rest}
      other -> raise ArgumentError, "expected , or ] at: #{inspect(String.slice(other, 0, 40))}"
    end
  end

  defp string("\"" <> rest, acc), do: {IO.iodata_to_binary(Enum.reverse(acc)), rest}

  defp string("\\u" <> <<hex::binary-size(4), rest::binary>>, acc) do
    code = String.to_integer(hex, 16)

    if code in 0xD800..0xDBFF do
      "\\u" <> <<low::binary-size(4), rest::binary>> = rest
      low = String.to_integer(low, 16)
      string(rest, [<<0x10000 + (code - 0xD800) * 0x400 + (low - 0xDC00)::utf8>> | acc])
    else
      string(rest, [<<code::utf8>> | acc])
    end
  end

  defp string("\\" <> <<c, rest::binary>>, acc) do
    escaped =
      case c do
        ?" -> "\""
        ?\\ -> "\\"
        ?/ -> "/"
        ?b -> "\b"
        ?f -> "\f"
        ?n -> "\n"
        ?r -> "\r"
        ?t -> "\t"
      end

    string(rest, [escaped | acc])
  end

  defp string(<<c, _::binary>>, _acc) when c < 0x20,
    do: raise(ArgumentError, "a control character inside a JSON string")

  defp string(<<c::utf8, rest::binary>>, acc), do: string(rest, [<<c::utf8>> | acc])

  @doc "Encodes maps (string or atom keys), lists, strings, numbers, booleans and nil."
  def encode!(value), do: IO.iodata_to_binary(encode(value))

  defp encode(map) when is_map(map) do
    [
      "{",
      Enum.map_intersperse(map, ",", fn {k, v} -> [encode(to_string(k)), ":", encode(v)] end),
      "}"
    ]
  end

  defp encode(list) when is_list(list), do: ["[", Enum.map_intersperse(list, ",", &encode/1), "]"]
  defp encode(true), do: "true"
  defp encode(false), do: "false"
  defp encode(nil), do: "null"
  defp encode(n) when is_integer(n), do: Integer.to_string(n)
  defp encode(n) when is_float(n), do: Float.to_string(n)
  defp encode(s) when is_binary(s), do: [?", escape(s), ?"]

  defp escape(s) do
    for <<c::utf8 <- s>>, into: "" do
      case c do
        ?" -> "\\\""
        ?\\ -> "\\\\"
        c when c < 0x20 -> "\\u" <> String.pad_leading(Integer.to_string(c, 16), 4, "0")
        c -> <<c::utf8>>
      end
    end
  end
end
