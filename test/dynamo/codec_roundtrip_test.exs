defmodule Dynamo.CodecRoundtripTest do
  # Property-style: many random items of every type, written to DynamoDB Local and read back,
  # must come back equal. Seeded by ExUnit's seed, so a failure can be replayed.
  use ExUnit.Case, async: false
  @moduletag :dynamodb

  alias Dynamo.Table

  defmodule Sample do
    use Dynamo.Schema

    item do
      table_name("cloud_streams_codec_test")

      field(:id, :integer, partition_key: true)
      field(:text, :string)
      field(:int, :integer)
      field(:float, :float)
      field(:flag, :boolean)
      field(:bytes, :binary)
      field(:strings, :string_set)
      field(:numbers, :number_set)
      field(:blobs, :binary_set)
      field(:map, :map)
      field(:list, :list)
      field(:at, :datetime)
    end
  end

  # Values that look like DynamoDB JSON: one-key maps whose key is a type name.
  defmodule Lookalike do
    use Dynamo.Schema

    item do
      table_name("cloud_streams_codec_lookalike_test")

      field(:pk, :string, partition_key: true)
      field(:id, :integer, sort_key: true)
      field(:text, :string)
      field(:int, :integer)
      field(:float, :float)
      field(:number, :number)
      field(:flag, :boolean)
      field(:bytes, :binary)
      field(:strings, :string_set)
      field(:numbers, :number_set)
      field(:blobs, :binary_set)
      field(:map, :map)
      field(:list, :list)
      field(:at, :datetime)
      field(:any)
    end
  end

  # Defaults that are not nil, of every type: the native side puts them in the structs it
  # builds (native/cloud_streams_nif/src/dynamo/structs.rs) for missing attributes.
  defmodule Defaults do
    use Dynamo.Schema

    item do
      table_name("cloud_streams_codec_defaults_test")

      field(:id, :integer, partition_key: true)
      field(:text, :string, default: "none")
      field(:int, :integer, default: -1)
      field(:float, :float, default: 0.5)
      field(:number, :number, default: 7)
      field(:flag, :boolean, default: true)
      field(:bytes, :binary, default: <<0, 255>>)
      field(:strings, :string_set, default: MapSet.new(["a"]))
      field(:numbers, :number_set, default: MapSet.new([1, 2]))
      field(:blobs, :binary_set, default: MapSet.new([<<2>>]))
      field(:map, :map, default: %{"k" => [1, "v", nil]})
      field(:list, :list, default: [%{"a" => 1.5}])
      field(:at, :datetime, default: ~U[2026-01-01 00:00:00.123Z])
      field(:any, default: {:not, "storable"})
    end
  end

  # The same table and attribute names, every one of another type than Defaults declares:
  # items written through it hold values the native side leaves to Dynamo.Schema.
  defmodule Swapped do
    use Dynamo.Schema

    item do
      table_name("cloud_streams_codec_defaults_test")

      field(:id, :integer, partition_key: true)
      field(:text, :binary)
      field(:int, :string_set)
      field(:float, :string)
      field(:number, :binary_set)
      field(:flag, :number_set)
      field(:bytes, :string)
      field(:strings, :integer)
      field(:numbers, :boolean)
      field(:blobs, :map)
      field(:map, :list)
      field(:list, :map)
      field(:at, :string)
      field(:any, :binary)
    end
  end

  @schemas [Sample, Lookalike, Defaults]

  setup_all do
    for schema <- @schemas do
      _ = Table.delete_table(schema)
      :ok = Table.create_table(schema)
    end

    on_exit(fn -> for schema <- @schemas, do: Table.delete_table(schema) end)
    :ok
  end

  @cases 300

  test "#{@cases} random items of every type round-trip" do
    samples = for id <- 1..@cases, do: sample(id)

    {:ok, @cases} = Table.batch_write_item(Sample, samples)
    {:ok, read} = Table.batch_get_item(Sample, for(s <- samples, do: [id: s.id]))

    by_id = Map.new(read, &{&1.id, &1})

    for sample <- samples, back = Map.fetch!(by_id, sample.id), back != sample do
      changed =
        for {k, v} <- Map.from_struct(sample), Map.get(back, k) != v, do: {k, v, Map.get(back, k)}

      flunk("item #{sample.id} changed (field, written, read): #{inspect(changed)}")
    end
  end

  test "scans decode #{@cases} random items exactly as Dynamo.Schema.from_item/2 does" do
    # The stream decodes on the native side (dynamo/structs.rs); Dynamo.Table reads through
    # Dynamo.Schema. Both must give the structs that were written.
    samples = for id <- (@cases + 1)..(2 * @cases), do: sample(id)
    {:ok, @cases} = Table.batch_write_item(Sample, samples)
    {:ok, read} = Table.batch_get_item(Sample, for(s <- samples, do: [id: s.id]))

    streamed =
      Dynamo.Table.Stream.parallel_scan(Sample, segments: 3, page_size: 50)
      |> Enum.filter(&(&1.id > @cases))

    assert Enum.sort_by(streamed, & &1.id) == Enum.sort_by(samples, & &1.id)
    assert Enum.sort_by(streamed, & &1.id) == Enum.sort_by(read, & &1.id)
  end

  @mixed 240

  test "structs built natively: missing fields take their defaults, mismatched types and undeclared attributes as Dynamo.Schema.from_item/2 reads them" do
    # Each item is written through one of three schemas: Defaults with random fields nil
    # (missing), Swapped (every attribute of another type than declared: strings where a
    # datetime is declared among them), or undeclared attributes only (__extra__, any type).
    # Streams build the structs natively; batch_get_item reads them through Dynamo.Schema.
    written = for id <- 1..@mixed, do: mixed_item(id)

    for {schema, items} <- Enum.group_by(written, & &1.__struct__) do
      {:ok, count} = Table.batch_write_item(schema, items)
      assert count == length(items)
    end

    keys = for item <- written, do: [id: item.id]
    {:ok, expected} = Table.batch_get_item(Defaults, keys, consistent_read: true)
    expected = Enum.sort_by(expected, & &1.id)
    assert length(expected) == @mixed

    # The Defaults-written ones read back with defaults where they were written with nil.
    default = %Defaults{}

    for %Defaults{} = item <- written do
      filled =
        Map.new(Map.from_struct(item), fn
          {field, nil} -> {field, Map.fetch!(default, field)}
          pair -> pair
        end)

      assert Enum.find(expected, &(&1.id == item.id)) == struct(Defaults, filled)
    end

    streams = [
      {"Stream.scan", Dynamo.Table.Stream.scan(Defaults, page_size: 37)},
      {"Stream.parallel_scan", Dynamo.Table.Stream.parallel_scan(Defaults, segments: 4)},
      {"Stream.execute_statement",
       Dynamo.Table.Stream.execute_statement(
         Defaults,
         ~s(SELECT * FROM "cloud_streams_codec_defaults_test"),
         page_size: 41
       )}
    ]

    for {path, stream} <- streams do
      read = Enum.sort_by(stream, & &1.id)
      assert length(read) == @mixed, "#{path} read #{length(read)} items"

      for {want, got} <- Enum.zip(expected, read), want != got do
        changed =
          for {k, v} <- Map.from_struct(want), Map.get(got, k) != v, do: {k, v, Map.get(got, k)}

        flunk(
          "#{path}: item #{want.id} differs (field, Dynamo.Schema, native): #{inspect(changed)}"
        )
      end
    end
  end

  defp mixed_item(id) do
    case rem(id, 3) do
      0 ->
        full = %{lookalike_item("-", id) | __extra__: %{}} |> Map.from_struct() |> Map.drop([:pk])

        values =
          for {field, value} <- full, do: {field, if(:rand.uniform(3) == 1, do: nil, else: value)}

        struct(
          Defaults,
          values ++ [id: id, any: Enum.random([nil, value(2)]), __extra__: extra()]
        )

      1 ->
        %Swapped{
          id: id,
          text: :crypto.strong_rand_bytes(:rand.uniform(8)),
          int: MapSet.new([text()]),
          float: Enum.random(["1.5", text()]),
          number: MapSet.new([:crypto.strong_rand_bytes(3)]),
          flag: MapSet.new([integer()]),
          bytes: text(),
          strings: integer(),
          numbers: :rand.uniform(2) == 1,
          blobs: lookalike(2),
          map: [value(2)],
          list: %{"m" => value(2)},
          at: datetime_text(),
          any: :crypto.strong_rand_bytes(2),
          __extra__: extra()
        }

      2 ->
        nothing = for field <- Defaults.__dynamo__(:fields), do: {field, nil}
        struct(Defaults, nothing ++ [id: id, __extra__: Map.put(extra(), "only", value(3))])
    end
  end

  # Undeclared attributes of any type, sets and big integers among them.
  defp extra do
    for i <- 1..:rand.uniform(4), :rand.uniform(2) == 1, into: %{} do
      {"x#{i}", Enum.random([value(2), integer(), MapSet.new([integer()]), text()])}
    end
  end

  # ISO 8601 timestamps in the shapes the native side decodes and those it leaves to Elixir.
  defp datetime_text do
    at = DateTime.from_unix!(:rand.uniform(4_000_000_000) * 1_000_000, :microsecond)

    Enum.random([
      DateTime.to_iso8601(DateTime.truncate(at, :second)),
      DateTime.to_iso8601(DateTime.truncate(at, :millisecond)),
      DateTime.to_iso8601(at),
      String.replace(DateTime.to_iso8601(DateTime.truncate(at, :second)), "Z", "+01:30"),
      "2026-02-30T10:00:00Z",
      "2026-01-01T24:00:00Z",
      text()
    ])
  end

  describe "values that look like DynamoDB JSON are stored as themselves" do
    # The reported case: a :map field holding %{"S" => "small"} was stored as the string
    # "small", %{"N" => "5"} as the number 5, and %{"NULL" => false} raised.
    test "the reported values, through put_item and get_item" do
      for {value, id} <- Enum.with_index([%{"S" => "small"}, %{"N" => "5"}, %{"NULL" => false}]) do
        item = %Lookalike{pk: "reported", id: id, map: value, any: value, list: [value]}
        :ok = Table.put_item(item)
        assert {:ok, ^item} = Table.get_item(Lookalike, pk: "reported", id: id)
      end
    end

    @lookalikes 120

    test "#{@lookalikes} random items, through every write and read path" do
      pk = "random"
      items = for id <- 1..@lookalikes, do: lookalike_item(pk, id)
      {by_put, rest} = Enum.split(items, div(@lookalikes, 3))
      {by_batch, by_update} = Enum.split(rest, div(@lookalikes, 3))
      # update_item sets declared fields only.
      by_update = for item <- by_update, do: %{item | __extra__: %{}}
      items = by_put ++ by_batch ++ by_update

      for item <- by_put, do: :ok = Table.put_item(item)
      {:ok, count} = Table.batch_write_item(Lookalike, by_batch)
      assert count == length(by_batch)

      for item <- by_update do
        set =
          for {k, v} <- Map.from_struct(item),
              k not in [:pk, :id, :__extra__],
              v != nil,
              do: {k, v}

        assert {:ok, ^item} =
                 Table.update_item(Lookalike, [pk: pk, id: item.id], set: Map.new(set))
      end

      expected = Enum.sort_by(items, & &1.id)
      keys = for item <- items, do: [pk: pk, id: item.id]

      gets =
        for key <- keys,
            {:ok, item} = Table.get_item(Lookalike, key, consistent_read: true),
            do: item

      assert_same(expected, gets, "get_item")

      {:ok, batch} = Table.batch_get_item(Lookalike, keys, consistent_read: true)
      assert_same(expected, batch, "batch_get_item")

      query = [key_condition_expression: "pk = :pk", expression_attribute_values: %{":pk" => pk}]
      assert_same(expected, all_pages(&Table.query(Lookalike, &1), query ++ [limit: 17]), "query")
      assert_same(expected, all_pages(&Table.scan(Lookalike, &1), limit: 23), "scan")

      assert_same(
        expected,
        Enum.to_list(Dynamo.Table.Stream.scan(Lookalike, page_size: 19)),
        "Stream.scan"
      )

      assert_same(
        expected,
        Enum.to_list(Dynamo.Table.Stream.parallel_scan(Lookalike, segments: 3, page_size: 11)),
        "Stream.parallel_scan"
      )

      assert_same(
        expected,
        Enum.to_list(Dynamo.Table.Stream.query(Lookalike, query ++ [page_size: 13])),
        "Stream.query"
      )

      assert_same(expected, producer_items(Lookalike), "Producer")

      # delete_item returns the item as it was.
      [first | _] = expected
      assert {:ok, ^first} = Table.delete_item(Lookalike, pk: pk, id: first.id)
    end
  end

  # Scans also see the other test's items: only the partition `pk` of `expected` counts.
  defp assert_same([%{pk: pk} | _] = expected, read, path) do
    read = read |> Enum.filter(&(&1.pk == pk)) |> Enum.sort_by(& &1.id)

    for {written, back} <- Enum.zip(expected, read), written != back do
      changed =
        for {k, v} <- Map.from_struct(written),
            Map.get(back, k) != v,
            do: {k, v, Map.get(back, k)}

      flunk("#{path}: item #{written.id} changed (field, written, read): #{inspect(changed)}")
    end

    assert length(read) == length(expected), "#{path} read #{length(read)} items"
  end

  defp all_pages(read, opts, acc \\ []) do
    {:ok, page} = read.(opts)
    acc = acc ++ page.items

    case page.last_evaluated_key do
      nil -> acc
      key -> all_pages(read, Keyword.put(opts, :exclusive_start_key, key), acc)
    end
  end

  # The Producer, driven with GenStage's protocol messages as a GenStage consumer sends them.
  # A finite producer ends its subscriptions (and exits :normal) once the scan is done.
  defp producer_items(schema) do
    {:ok, producer} = Dynamo.Table.Stream.Producer.start_link(schema: schema, page_size: 29)
    monitor = Process.monitor(producer)
    tag = make_ref()
    send(producer, {:"$gen_producer", {self(), tag}, {:subscribe, nil, []}})
    send(producer, {:"$gen_producer", {self(), tag}, {:ask, 100_000}})
    receive_events({producer, tag, monitor}, [])
  end

  defp receive_events({producer, tag, monitor} = subscription, acc) do
    receive do
      {:"$gen_consumer", {^producer, ^tag}, events} when is_list(events) ->
        receive_events(subscription, acc ++ events)

      {:DOWN, ^monitor, :process, ^producer, reason} ->
        assert reason == :normal
        acc
    after
      10_000 -> flunk("the producer sent nothing for 10 s after #{length(acc)} items")
    end
  end

  @type_names ~w(S N B BOOL NULL L M SS NS BS)

  defp lookalike_item(pk, id) do
    %Lookalike{
      pk: pk,
      id: id,
      text: Enum.random(@type_names),
      int: integer(),
      float: float(),
      number: integer(),
      flag: :rand.uniform(2) == 1,
      bytes: :crypto.strong_rand_bytes(:rand.uniform(16)),
      strings: MapSet.new(Enum.take_random(@type_names, :rand.uniform(4))),
      numbers: MapSet.new(for _ <- 1..:rand.uniform(4), do: integer()),
      blobs: MapSet.new(for _ <- 1..:rand.uniform(3), do: :crypto.strong_rand_bytes(4)),
      map: lookalike(2),
      list: for(_ <- 1..:rand.uniform(3), do: lookalike(2)),
      at: DateTime.from_unix!(:rand.uniform(4_000_000_000)),
      any: value(3),
      __extra__: if(rem(id, 3) == 2, do: %{}, else: %{"x" => lookalike(2)})
    }
  end

  # A one-key map whose key is a DynamoDB type name, holding any value.
  defp lookalike(depth), do: %{Enum.random(@type_names) => value(depth)}

  # A value of any type that survives DynamoDB unchanged in an untyped place (floats always
  # have a fraction: DynamoDB keeps no distinction between 10.0 and 10).
  defp value(0), do: scalar()

  defp value(depth) do
    case :rand.uniform(6) do
      1 ->
        lookalike(depth - 1)

      2 ->
        for _ <- 1..:rand.uniform(3), do: value(depth - 1)

      3 ->
        Map.new(
          for _ <- 1..:rand.uniform(3),
              do: {Enum.random(@type_names ++ ["x", "m"]), value(depth - 1)}
        )

      4 ->
        %{"M" => %{Enum.random(@type_names) => value(depth - 1)}}

      _ ->
        scalar()
    end
  end

  defp scalar do
    Enum.random([
      text(),
      Enum.random(@type_names),
      integer(),
      Float.round(:rand.uniform() * 1000, 3) + 0.125,
      true,
      false,
      nil,
      MapSet.new(Enum.take_random(@type_names, 2)),
      MapSet.new([integer(), integer() + 1]),
      []
    ])
  end

  defp sample(id) do
    %Sample{
      id: id,
      text: text(),
      int: integer(),
      float: float(),
      flag: :rand.uniform(2) == 1,
      bytes: :crypto.strong_rand_bytes(:rand.uniform(64)),
      strings: MapSet.new(for _ <- 1..:rand.uniform(5), do: text()),
      numbers: MapSet.new(for _ <- 1..:rand.uniform(5), do: integer()),
      blobs: MapSet.new(for _ <- 1..:rand.uniform(3), do: :crypto.strong_rand_bytes(8)),
      map: %{
        "s" => text(),
        "n" => integer(),
        "nested" => %{"l" => [integer(), text(), nil, true]}
      },
      list: [integer(), text(), false, nil, [integer()]],
      at:
        DateTime.from_unix!(
          :rand.uniform(4_000_000_000) * 1_000_000 + :rand.uniform(999_999),
          :microsecond
        )
        |> DateTime.truncate(Enum.random([:second, :millisecond, :microsecond])),
      # Undeclared attributes, kept in __extra__.
      __extra__: if(rem(id, 3) == 0, do: %{"note" => text(), "n" => integer()}, else: %{})
    }
  end

  # Integers from small to far past 64 bits, either sign.
  defp integer do
    magnitude = Enum.random([10, 1_000_000, 9_223_372_036_854_775_807, 10 ** 37])
    (:rand.uniform(magnitude) - 1) * Enum.random([1, -1])
  end

  # Floats with fractions and exponents inside DynamoDB's range (1e-130 .. 9.99e125).
  defp float do
    (:rand.uniform() - 0.5) * :math.pow(10, :rand.uniform(200) - 100)
  end

  # Non-empty unicode text, spaces included.
  defp text do
    alphabet = ~c"abcXYZ 019-_/ éü日本語🙂"
    for(_ <- 1..:rand.uniform(20), into: "", do: <<Enum.random(alphabet)::utf8>>)
  end
end
