defmodule CloudStreams.ExportJSON do
  @moduledoc false
  # A small, strict JSON decoder (RFC 8259) for the export tests, independent of the
  # library: Elixir 1.14 has no JSON module and hex is out of reach. Objects become maps,
  # arrays lists, strings binaries, `true`/`false`/`null` themselves (`null` as `nil`), and
  # numbers `{:number, "text"}` with their exact text, so tests can check that digits were
  # written exactly. Anything else (trailing data, a bad escape) raises.

  @doc "Decodes one JSON text."
  def decode!(text) when is_binary(text) do
    {value, rest} = value(skip(text))

    case skip(rest) do
      "" ->
        value

      other ->
        raise ArgumentError,
              "trailing data: #{inspect(binary_part(other, 0, min(20, byte_size(other))))}"
    end
  end

  @doc "Decodes newline-delimited JSON: one value per non-empty line."
  def decode_lines!(text) do
    text |> String.split("\n") |> Enum.reject(&(&1 == "")) |> Enum.map(&decode!/1)
  end

  defp skip(<<c, rest::binary>>) when c in [?\s, ?\t, ?\n, ?\r], do: skip(rest)
  defp skip(rest), do: rest

  defp value("{" <> rest), do: object(skip(rest), %{})
  defp value("[" <> rest), do: array(skip(rest), [])
  defp value("\"" <> rest), do: string(rest, [])
  defp value("true" <> rest), do: {true, rest}
  defp value("false" <> rest), do: {false, rest}
  defp value("null" <> rest), do: {nil, rest}

  defp value(<<c, _::binary>> = text) when c == ?- or c in ?0..?9 do
    [number] =
      Regex.run(~r/\A-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/, text, capture: :first)

    {{:number, number}, binary_part(text, byte_size(number), byte_size(text) - byte_size(number))}
  end

  defp value(other),
    do: raise(ArgumentError, "unexpected: #{inspect(String.slice(other, 0, 20))}")

  defp object("}" <> rest, acc), do: {acc, rest}

  defp object("\"" <> rest, acc) do
    {key, rest} = string(rest, [])
    ":" <> rest = skip(rest)
    {value, rest} = value(skip(rest))
    acc = Map.put(acc, key, value)

    case skip(rest) do
      "," <> rest -> object(skip(rest), acc)
      "}" <> rest -> {acc, rest}
    end
  end

  defp array("]" <> rest, []), do: {[], rest}

  defp array(text, acc) do
    {value, rest} = value(text)

    case skip(rest) do
      "," <> rest -> array(skip(rest), [value | acc])
      "]" <> rest -> {Enum.reverse([value | acc]), rest}
    end
  end

  defp string("\"" <> rest, acc), do: {acc |> Enum.reverse() |> IO.iodata_to_binary(), rest}

  defp string("\\u" <> <<hex::binary-4, rest::binary>>, acc) do
    code = String.to_integer(hex, 16)

    if code in 0xD800..0xDBFF do
      "\\u" <> <<low::binary-4, rest::binary>> = rest
      low = String.to_integer(low, 16)
      string(rest, [<<0x10000 + (code - 0xD800) * 0x400 + (low - 0xDC00)::utf8>> | acc])
    else
      string(rest, [<<code::utf8>> | acc])
    end
  end

  defp string("\\" <> <<c, rest::binary>>, acc) do
    char =
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

    string(rest, [char | acc])
  end

  defp string(<<c, _::binary>>, _acc) when c < 0x20,
    do: raise(ArgumentError, "unescaped control character in a string")

  defp string(<<c::utf8, rest::binary>>, acc), do: string(rest, [<<c::utf8>> | acc])
end
