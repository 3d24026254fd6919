defmodule CloudStreams.ImportFixtures do
  @moduledoc false
  # Table exports written by hand, in DynamoDB's documented export layout (the AWS
  # developer guide, "DynamoDB table export output format": `AWSDynamoDB/<export id>/`
  # holding `_started`, `data/*.json.gz` of `{"Item":{...}}` lines, `manifest-files.json` of
  # `{"itemCount","md5Checksum","etag","dataFileS3Key"}` lines and `manifest-summary.json`,
  # written last), and in our NDJSON form (Dynamo.Table.Stream.Export's rules). Items are
  # given as the codec's tagged values, so a test compares what it reads back with exactly
  # what it wrote. JSON is written here by hand: Jason is a hex package, unreachable.

  @doc "Every DynamoDB attribute type, with the edge cases an export must carry losslessly."
  def every_type_item(id) do
    %{
      "id" => {:s, id},
      "empty" => {:s, ""},
      "text" => {:s, "é \"quoted\" \\ back\nslash\ttab 😀 \u0001"},
      "big" => {:n, "12345678901234567890123456789012345678"},
      "negative" => {:n, "-98765432109876543210987654321098765432"},
      "decimal" => {:n, "0.12345678901234567890123456789012345678"},
      "bin" => {:b, <<0, 1, 2, 255, 10>>},
      "yes" => {:bool, true},
      "no" => {:bool, false},
      "nothing" => :null,
      "ss" => {:ss, ["a", "b"]},
      "ns" => {:ns, ["1", "2.5", "-3", "99999999999999999999999999999999999999"]},
      "bs" => {:bs, [<<1>>, <<2, 3>>]},
      "list" => {:l, [{:s, "x"}, {:n, "1"}, {:l, []}, {:m, %{}}, :null, {:b, <<7>>}]},
      "map" =>
        {:m,
         %{
           "inner" => {:m, %{"deep" => {:l, [{:bool, false}, {:ss, ["z"]}]}}},
           "$ss" => {:s, "a key with a dollar"},
           "n" => {:n, "7"}
         }},
      "dollar" => {:m, %{"$b64" => {:s, "not a binary"}}}
    }
  end

  def simple_item(i), do: %{"id" => {:s, "item-#{i}"}, "n" => {:n, Integer.to_string(i)}}

  @doc "A DynamoDB export data line: `{\"Item\":{...}}`."
  def dynamodb_json_line(item), do: ~s({"Item":#{dynamodb_json(item)}}) <> "\n"

  def dynamodb_json(item) when is_map(item),
    do: object(item, fn value -> dynamodb_json_value(value) end)

  defp dynamodb_json_value({:s, v}), do: ~s({"S":#{string(v)}})
  defp dynamodb_json_value({:n, v}), do: ~s({"N":#{string(v)}})
  defp dynamodb_json_value({:b, v}), do: ~s({"B":#{string(Base.encode64(v))}})
  defp dynamodb_json_value({:bool, v}), do: ~s({"BOOL":#{v}})
  defp dynamodb_json_value(:null), do: ~s({"NULL":true})

  defp dynamodb_json_value({:l, l}),
    do: ~s({"L":[#{Enum.map_join(l, ",", &dynamodb_json_value/1)}]})

  defp dynamodb_json_value({:m, m}), do: ~s({"M":#{dynamodb_json(m)}})
  defp dynamodb_json_value({:ss, l}), do: ~s({"SS":[#{Enum.map_join(l, ",", &string/1)}]})
  defp dynamodb_json_value({:ns, l}), do: ~s({"NS":[#{Enum.map_join(l, ",", &string/1)}]})

  defp dynamodb_json_value({:bs, l}),
    do: ~s({"BS":[#{Enum.map_join(l, ",", &string(Base.encode64(&1)))}]})

  @doc "An NDJSON data line: plain JSON under the export's lossless rules."
  def ndjson_line(item), do: object(item, &plain/1) <> "\n"

  defp plain({:s, v}), do: string(v)
  # Numbers as JSON numbers with DynamoDB's exact digits.
  defp plain({:n, v}), do: v
  defp plain({:b, v}), do: ~s({"$b64":#{string(Base.encode64(v))}})
  defp plain({:bool, v}), do: "#{v}"
  defp plain(:null), do: "null"
  defp plain({:l, l}), do: "[" <> Enum.map_join(l, ",", &plain/1) <> "]"

  defp plain({:m, m}) do
    case Map.keys(m) do
      ["$" <> _] -> ~s({"$m":#{object(m, &plain/1)}})
      _ -> object(m, &plain/1)
    end
  end

  defp plain({:ss, l}), do: ~s({"$ss":[#{Enum.map_join(l, ",", &string/1)}]})
  defp plain({:ns, l}), do: ~s({"$ns":[#{Enum.join(l, ",")}]})
  defp plain({:bs, l}), do: ~s({"$bs":[#{Enum.map_join(l, ",", &string(Base.encode64(&1)))}]})

  defp object(map, value),
    do: "{" <> Enum.map_join(map, ",", fn {k, v} -> string(k) <> ":" <> value.(v) end) <> "}"

  @doc "A JSON string, escaped as RFC 8259 requires."
  def string(text) do
    escaped =
      for <<c::utf8 <- text>>, into: "" do
        case c do
          ?" -> "\\\""
          ?\\ -> "\\\\"
          ?\n -> "\\n"
          ?\t -> "\\t"
          c when c < 0x20 -> "\\u" <> String.pad_leading(Integer.to_string(c, 16), 4, "0")
          c -> <<c::utf8>>
        end
      end

    ~s("#{escaped}")
  end

  @doc "The base64 MD5 of `bytes`, as `md5Checksum` holds it."
  def md5(bytes), do: Base.encode64(:crypto.hash(:md5, bytes))

  @doc """
  Writes an export under `prefix` in `store`: `files` is `[{name, gzipped_bytes, item_count}]`.
  Options: `format:` (`"DYNAMODB_JSON"` or `"NDJSON"`), `complete:` (false leaves out the
  summary: an export in progress), `keys_with_prefix:` (false writes manifest keys without
  the prefix), `md5:` (a function of the file name giving the md5Checksum to write).
  Returns the export's directory.
  """
  def write_export(store, prefix, export_id, files, opts \\ []) do
    dir = Path.join([prefix, "AWSDynamoDB", export_id]) |> String.trim_leading("/")

    key_root =
      if Keyword.get(opts, :keys_with_prefix, true), do: dir, else: "AWSDynamoDB/#{export_id}"

    md5 = Keyword.get(opts, :md5, fn _name, bytes -> md5(bytes) end)
    :ok = ObjectStoreX.put(store, "#{dir}/_started", "")

    manifest =
      for {name, bytes, count} <- files, into: "" do
        :ok = ObjectStoreX.put(store, "#{dir}/data/#{name}", bytes)

        ~s({"itemCount":#{count},"md5Checksum":#{string(md5.(name, bytes))},"etag":null,) <>
          ~s("dataFileS3Key":#{string("#{key_root}/data/#{name}")}}\n)
      end

    :ok = ObjectStoreX.put(store, "#{dir}/manifest-files.json", manifest)

    if Keyword.get(opts, :complete, true) do
      total = files |> Enum.map(&elem(&1, 2)) |> Enum.sum()
      format = Keyword.get(opts, :format, "DYNAMODB_JSON")

      summary =
        ~s({"version":"2020-06-30","exportArn":null,"startTime":"2026-12-01T10:00:00.000Z",) <>
          ~s("endTime":"2026-12-01T10:01:00.000Z","s3Bucket":null,"s3Prefix":#{string(prefix)},) <>
          ~s("manifestFilesS3Key":#{string("#{key_root}/manifest-files.json")},) <>
          ~s("billedSizeBytes":0,"itemCount":#{total},"outputFormat":#{string(format)},) <>
          ~s("exportType":"FULL_EXPORT"})

      :ok = ObjectStoreX.put(store, "#{dir}/manifest-summary.json", summary)
    end

    dir
  end

  @doc "A data file of `items`, gzipped, in `format`."
  def data_file(items, format \\ "DYNAMODB_JSON") do
    line = if format == "NDJSON", do: &ndjson_line/1, else: &dynamodb_json_line/1
    items |> Enum.map_join(line) |> :zlib.gzip()
  end

  @doc "Sets in a canonical order, so tagged items compare whatever order DynamoDB keeps."
  def normalize(item) when is_map(item), do: Map.new(item, fn {k, v} -> {k, normalize(v)} end)
  def normalize({set, list}) when set in [:ss, :ns, :bs], do: {set, Enum.sort(list)}
  def normalize({:l, list}), do: {:l, Enum.map(list, &normalize/1)}
  def normalize({:m, map}), do: {:m, normalize(map)}
  def normalize(other), do: other
end
