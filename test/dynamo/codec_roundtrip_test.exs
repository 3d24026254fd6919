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

  setup_all do
    _ = Table.delete_table(Sample)
    :ok = Table.create_table(Sample)
    on_exit(fn -> Table.delete_table(Sample) end)
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
