defmodule Dynamo.Table do
  @moduledoc """
  Reads and writes of the items of a `Dynamo.Schema`.

  Every function runs its request on the native runtime and answers by message, so no
  scheduler waits on DynamoDB. Errors are `{:error, %Dynamo.Error{}}`; bad arguments raise
  `ArgumentError` naming the problem. Every function takes `config:` (see `Dynamo.Config`).

  `expression_attribute_values` may be DynamoDB JSON (`%{":v" => %{"BOOL" => true}}`) or
  plain values (`%{":v" => true}`). `last_evaluated_key` is a string-keyed DynamoDB JSON map,
  so it survives `Jason.encode!/1` and `Jason.decode!/1` unchanged and can be passed back as
  `exclusive_start_key`.
  """

  alias CloudStreams.{Call, Native, Options, Telemetry}
  alias Dynamo.{Codec, Error, Schema}

  @type schema :: module()
  @type key :: keyword() | map()
  @type page :: %{
          items: [struct()],
          last_evaluated_key: map() | nil,
          count: non_neg_integer(),
          scanned_count: non_neg_integer(),
          consumed_capacity: float() | nil
        }

  @expression_opts [
    condition_expression: {{:or_nil, :string}, nil},
    expression_attribute_names: {{:or_nil, :any}, nil},
    expression_attribute_values: {{:or_nil, :any}, nil},
    config: {:any, []}
  ]

  @doc """
  Writes a struct as an item, replacing any item with the same key.
  `condition_expression:` makes the write conditional (`:conditional_check_failed` when the
  condition does not hold).
  """
  @spec put_item(struct(), keyword()) :: :ok | {:error, Error.t()}
  def put_item(%schema{} = struct, opts \\ []) do
    opts = Options.validate!(opts, @expression_opts, "Dynamo.Table.put_item/2")
    item = Schema.to_item(struct)

    call(
      :put_item,
      schema,
      &Native.dynamo_put_item(
        config(opts),
        schema.__dynamo__(:table),
        item,
        expressions(opts),
        &1
      )
    )
    |> ok_only()
  end

  @doc "Reads one item by key: `{:ok, struct}` or `{:ok, nil}` when there is none."
  @spec get_item(schema(), key(), keyword()) :: {:ok, struct() | nil} | {:error, Error.t()}
  def get_item(schema, key, opts \\ []) do
    opts =
      Options.validate!(
        opts,
        [
          consistent_read: {:boolean, false},
          projection_expression: {{:or_nil, :string}, nil},
          expression_attribute_names: {{:or_nil, :any}, nil},
          config: {:any, []}
        ],
        "Dynamo.Table.get_item/3"
      )

    key = Schema.key_item(schema, key)

    call(
      :get_item,
      schema,
      &Native.dynamo_get_item(
        config(opts),
        schema.__dynamo__(:table),
        key,
        opts.consistent_read,
        opts.projection_expression,
        names(opts),
        &1
      )
    )
    |> map_ok(&(&1 && Schema.from_item(schema, &1)))
  end

  @doc "Deletes one item by key; returns the item as it was, or `nil` when there was none."
  @spec delete_item(schema(), key(), keyword()) :: {:ok, struct() | nil} | {:error, Error.t()}
  def delete_item(schema, key, opts \\ []) do
    opts = Options.validate!(opts, @expression_opts, "Dynamo.Table.delete_item/3")
    key = Schema.key_item(schema, key)

    call(
      :delete_item,
      schema,
      &Native.dynamo_delete_item(
        config(opts),
        schema.__dynamo__(:table),
        key,
        expressions(opts),
        &1
      )
    )
    |> map_ok(&(&1 && Schema.from_item(schema, &1)))
  end

  @doc """
  Updates one item by key and returns it as it is after the update.

  `set:` (a map of fields to values), `remove:` (a list of fields) and `add:` (a map of
  numeric fields to increments, or set fields to elements to add) build the update
  expression; `update_expression:` gives one directly. `condition_expression:` as for
  `put_item/2`.
  """
  @spec update_item(schema(), key(), keyword()) :: {:ok, struct()} | {:error, Error.t()}
  def update_item(schema, key, opts) do
    opts =
      Options.validate!(
        opts,
        @expression_opts ++
          [
            set: {:any, %{}},
            remove: {:any, []},
            add: {:any, %{}},
            update_expression: {{:or_nil, :string}, nil}
          ],
        "Dynamo.Table.update_item/3"
      )

    key = Schema.key_item(schema, key)
    {expression, names, values} = update_expression(schema, opts)

    if expression == "" do
      raise ArgumentError,
            "Dynamo.Table.update_item/3 needs set:, remove:, add: or update_expression:"
    end

    base = expressions(opts)

    expressions = %{
      base
      | names: Map.merge(base.names, names),
        values: Map.merge(base.values, values)
    }

    call(
      :update_item,
      schema,
      &Native.dynamo_update_item(
        config(opts),
        schema.__dynamo__(:table),
        key,
        expression,
        expressions,
        &1
      )
    )
    |> map_ok(&Schema.from_item(schema, &1))
  end

  defp update_expression(schema, %{update_expression: given} = opts) when is_binary(given) do
    if opts.set != %{} or opts.remove != [] or opts.add != %{} do
      raise ArgumentError,
            "Dynamo.Table.update_item/3 takes update_expression: or set:/remove:/add:, not both"
    end

    _ = schema
    {given, %{}, %{}}
  end

  defp update_expression(schema, opts) do
    types = schema.__dynamo__(:types)

    clause = fn pairs, prefix ->
      pairs
      |> Enum.with_index()
      |> Enum.map(fn {{field, value}, i} ->
        type =
          Map.get(types, field) ||
            raise ArgumentError, "#{inspect(field)} is not a field of #{inspect(schema)}"

        {"##{prefix}#{i}", Atom.to_string(field), ":#{prefix}#{i}",
         Schema.encode!(schema, field, type, value)}
      end)
    end

    set = clause.(Enum.to_list(opts.set), "set")
    add = clause.(Enum.to_list(opts.add), "add")

    remove =
      Enum.with_index(List.wrap(opts.remove), fn field, i ->
        {"#remove#{i}", Atom.to_string(field)}
      end)

    parts =
      [
        set != [] && "SET " <> Enum.map_join(set, ", ", fn {n, _, v, _} -> "#{n} = #{v}" end),
        remove != [] && "REMOVE " <> Enum.map_join(remove, ", ", &elem(&1, 0)),
        add != [] && "ADD " <> Enum.map_join(add, ", ", fn {n, _, v, _} -> "#{n} #{v}" end)
      ]
      |> Enum.filter(& &1)

    names = Map.new(set ++ add, fn {n, f, _, _} -> {n, f} end) |> Map.merge(Map.new(remove))
    values = Map.new(set ++ add, fn {_, _, v, value} -> {v, value} end)
    {Enum.join(parts, " "), names, values}
  end

  @read_opts [
    filter_expression: {{:or_nil, :string}, nil},
    projection_expression: {{:or_nil, :string}, nil},
    expression_attribute_names: {{:or_nil, :any}, nil},
    expression_attribute_values: {{:or_nil, :any}, nil},
    consistent_read: {:boolean, false},
    limit: {{:or_nil, :pos_integer}, nil},
    exclusive_start_key: {{:or_nil, :any}, nil},
    index_name: {{:or_nil, :string}, nil},
    select: {{:in, [nil, :all, :count]}, nil},
    config: {:any, []}
  ]

  @doc false
  # What to read: shared with Dynamo.Table.Stream, whose pages replace limit and select.
  def read_options, do: @read_opts

  @doc """
  One page of a scan: `{:ok, %{items: [struct], last_evaluated_key: key | nil, count:,
  scanned_count:, consumed_capacity:}}` (read capacity units, when DynamoDB says). Pass `last_evaluated_key` back as `exclusive_start_key:` for the next
  page; `nil` means the scan is over (an empty page is not the end).

  Options: `filter_expression`, `projection_expression`, `expression_attribute_names`,
  `expression_attribute_values`, `consistent_read`, `limit` (items evaluated per page),
  `exclusive_start_key`, `index_name`, `segment` with `total_segments`, `select: :count`.
  For whole tables use `Dynamo.Table.Stream`.
  """
  @spec scan(schema(), keyword()) :: {:ok, page()} | {:error, Error.t()}
  def scan(schema, opts \\ []) do
    opts =
      Options.validate!(
        opts,
        @read_opts ++
          [
            segment: {{:or_nil, :non_neg_integer}, nil},
            total_segments: {{:or_nil, :pos_integer}, nil}
          ],
        "Dynamo.Table.scan/2"
      )

    segment =
      case {opts.segment, opts.total_segments} do
        {nil, nil} ->
          nil

        {s, t} when is_integer(s) and is_integer(t) and s < t ->
          {s, t}

        other ->
          raise ArgumentError,
                "segment: and total_segments: go together, with segment < total_segments, got: #{inspect(other)}"
      end

    read_page(schema, :scan, read(schema, opts, segment: segment))
  end

  @doc """
  One page of a query: as `scan/2`, plus `key_condition_expression` (required) and
  `scan_index_forward` (default true: ascending sort key).
  """
  @spec query(schema(), keyword()) :: {:ok, page()} | {:error, Error.t()}
  def query(schema, opts) do
    opts =
      Options.validate!(
        opts,
        @read_opts ++
          [key_condition_expression: {:string, :required}, scan_index_forward: {:boolean, true}],
        "Dynamo.Table.query/2"
      )

    read_page(
      schema,
      :query,
      read(schema, opts,
        key_condition_expression: opts.key_condition_expression,
        forward: opts.scan_index_forward
      )
    )
  end

  @doc false
  # The read request the NIF takes (shared with Dynamo.Table.Stream).
  def read(schema, opts, extra \\ []) do
    %{
      config: config(opts),
      table: schema.__dynamo__(:table),
      index_name: opts.index_name,
      key_condition_expression: extra[:key_condition_expression],
      filter_expression: opts.filter_expression,
      projection_expression: opts.projection_expression,
      names: names(opts),
      values: values(opts),
      consistent_read: opts.consistent_read,
      limit: opts.limit,
      exclusive_start_key:
        opts.exclusive_start_key && Codec.encode_item(opts.exclusive_start_key),
      segment: extra[:segment],
      select_count: opts.select == :count,
      forward: Keyword.get(extra, :forward, true)
    }
  end

  defp read_page(schema, operation, read) do
    {config, read} = Map.pop!(read, :config)

    call(operation, schema, &Native.dynamo_read_page(config, operation, read, &1))
    |> map_ok(&decode_page(schema, &1))
  end

  @doc false
  def decode_page(schema, page) do
    %{
      items: Enum.map(page.items, &Schema.from_item(schema, &1)),
      last_evaluated_key: page.last_evaluated_key && Codec.item_to_json(page.last_evaluated_key),
      count: page.count,
      scanned_count: page.scanned_count,
      consumed_capacity: page.consumed_capacity
    }
  end

  @doc """
  Writes and deletes many items, 25 per request. Items DynamoDB leaves unprocessed are retried
  with jittered backoff, up to 10 times per request; after that the call returns
  `{:error, %Dynamo.Error{type: :throttled}}`. `requests` are structs to put, or
  `{:put, struct}` / `{:delete, key}`.
  Returns `{:ok, applied_count}`.
  """
  @spec batch_write_item(schema(), [struct() | {:put, struct()} | {:delete, key()}], keyword()) ::
          {:ok, non_neg_integer()} | {:error, Error.t()}
  def batch_write_item(schema, requests, opts \\ []) do
    opts = Options.validate!(opts, [config: {:any, []}], "Dynamo.Table.batch_write_item/3")

    {puts, deletes} =
      Enum.reduce(requests, {[], []}, fn
        {:put, %^schema{} = s}, {p, d} ->
          {[Schema.to_item(s) | p], d}

        %^schema{} = s, {p, d} ->
          {[Schema.to_item(s) | p], d}

        {:delete, key}, {p, d} ->
          {p, [Schema.key_item(schema, key) | d]}

        other, _ ->
          raise ArgumentError,
                "invalid batch write request for #{inspect(schema)}: #{inspect(other)}"
      end)

    call(
      :batch_write_item,
      schema,
      &Native.dynamo_batch_write(
        config(opts),
        schema.__dynamo__(:table),
        Enum.reverse(puts),
        Enum.reverse(deletes),
        &1
      )
    )
  end

  @doc """
  Reads many items by key, 100 per request; unprocessed keys are retried as in
  `batch_write_item/3`. Missing items are left out.
  """
  @spec batch_get_item(schema(), [key()], keyword()) :: {:ok, [struct()]} | {:error, Error.t()}
  def batch_get_item(schema, keys, opts \\ []) do
    opts =
      Options.validate!(
        opts,
        [consistent_read: {:boolean, false}, config: {:any, []}],
        "Dynamo.Table.batch_get_item/3"
      )

    keys = Enum.map(keys, &Schema.key_item(schema, &1))

    call(
      :batch_get_item,
      schema,
      &Native.dynamo_batch_get(
        config(opts),
        schema.__dynamo__(:table),
        keys,
        opts.consistent_read,
        &1
      )
    )
    |> map_ok(fn items -> Enum.map(items, &Schema.from_item(schema, &1)) end)
  end

  @doc """
  Every item of the table, read as `Dynamo.Table.Stream.parallel_scan/2` reads it, in one list:
  `{:ok, [struct]}`. For tables that fit in memory; stream the others.
  """
  @spec parallel_scan(schema(), keyword()) :: {:ok, [struct()]} | {:error, Error.t()}
  def parallel_scan(schema, opts \\ []) do
    {:ok, schema |> Dynamo.Table.Stream.parallel_scan(opts) |> Enum.to_list()}
  rescue
    error in Error -> {:error, error}
  end

  @doc "The same as `Dynamo.Table.Stream.scan/2` (the name in the streaming guide's table)."
  @spec stream_scan(schema(), keyword()) :: Enumerable.t()
  defdelegate stream_scan(schema, opts \\ []), to: Dynamo.Table.Stream, as: :scan

  @doc "The same as `Dynamo.Table.Stream.parallel_scan/2`."
  @spec stream_parallel_scan(schema(), keyword()) :: Enumerable.t()
  defdelegate stream_parallel_scan(schema, opts \\ []),
    to: Dynamo.Table.Stream,
    as: :parallel_scan

  @doc "The same as `Dynamo.Table.Stream.scan_to_process/3`."
  @spec stream_scan_to_process(schema(), pid(), keyword()) :: {:ok, pid()} | {:error, term()}
  defdelegate stream_scan_to_process(schema, pid, opts \\ []),
    to: Dynamo.Table.Stream,
    as: :scan_to_process

  @doc """
  Creates the schema's table (on-demand capacity), keyed as the schema says.

  `indexes:` adds global secondary indexes, each projecting every attribute, as
  `[{name, partition_field}]` or `[{name, partition_field, sort_field}]` (fields of the schema);
  query them with `index_name: name`.

      Dynamo.Table.create_table(User, indexes: [{"by_email", :email}])
  """
  @spec create_table(schema(), keyword()) :: :ok | {:error, Error.t()}
  def create_table(schema, opts \\ []) do
    opts =
      Options.validate!(
        opts,
        [config: {:any, []}, indexes: {:any, []}],
        "Dynamo.Table.create_table/2"
      )

    types = schema.__dynamo__(:types)

    key = fn
      nil ->
        nil

      field ->
        type =
          Map.get(types, field) ||
            raise ArgumentError, "#{inspect(field)} is not a field of #{inspect(schema)}"

        {Atom.to_string(field), key_type(schema, field, type)}
    end

    indexes =
      for index <- List.wrap(opts.indexes) do
        case index do
          {name, partition} when is_binary(name) and is_atom(partition) ->
            {name, key.(partition), nil}

          {name, partition, sort} when is_binary(name) and is_atom(partition) and is_atom(sort) ->
            {name, key.(partition), key.(sort)}

          other ->
            raise ArgumentError,
                  "invalid index #{inspect(other)} for Dynamo.Table.create_table/2: " <>
                    "expected {name, partition_field} or {name, partition_field, sort_field}"
        end
      end

    call(
      :create_table,
      schema,
      &Native.dynamo_create_table(
        config(opts),
        schema.__dynamo__(:table),
        key.(schema.__dynamo__(:partition_key)),
        key.(schema.__dynamo__(:sort_key)),
        indexes,
        &1
      )
    )
    |> ok_only()
  end

  @doc "Deletes the schema's table."
  @spec delete_table(schema(), keyword()) :: :ok | {:error, Error.t()}
  def delete_table(schema, opts \\ []) do
    opts = Options.validate!(opts, [config: {:any, []}], "Dynamo.Table.delete_table/2")

    call(
      :delete_table,
      schema,
      &Native.dynamo_delete_table(config(opts), schema.__dynamo__(:table), &1)
    )
    |> ok_only()
  end

  defp key_type(_schema, _field, type) when type in [:string, :datetime, :any], do: "S"
  defp key_type(_schema, _field, type) when type in [:integer, :float, :number], do: "N"
  defp key_type(_schema, _field, :binary), do: "B"

  defp key_type(schema, field, type),
    do:
      raise(
        ArgumentError,
        "key field #{inspect(field)} of #{inspect(schema)} cannot be #{inspect(type)}"
      )

  # --- helpers -------------------------------------------------------------------------------

  defp config(opts), do: Dynamo.Config.native(opts.config)

  defp expressions(opts),
    do: %{condition: opts.condition_expression, names: names(opts), values: values(opts)}

  defp names(opts) do
    case opts[:expression_attribute_names] do
      nil ->
        %{}

      names when is_map(names) ->
        Map.new(names, fn {k, v} -> {to_string(k), to_string(v)} end)

      other ->
        raise ArgumentError, "expression_attribute_names must be a map, got: #{inspect(other)}"
    end
  end

  defp values(opts) do
    case opts[:expression_attribute_values] do
      nil ->
        %{}

      values when is_map(values) or is_list(values) ->
        Codec.encode_item(values)

      other ->
        raise ArgumentError, "expression_attribute_values must be a map, got: #{inspect(other)}"
    end
  end

  # One request, in its telemetry span. The NIF answers with the value and the SDK's retries
  # and throttles, which only the span reports.
  defp call(operation, schema, start) do
    request = Telemetry.dynamo_request(operation, schema.__dynamo__(:table))

    case Call.await(start, &Error.from_native/1, request) do
      {:ok, {value, %{retries: _, throttles: _}}} -> {:ok, value}
      error -> error
    end
  end

  defp ok_only({:ok, _}), do: :ok
  defp ok_only(error), do: error

  defp map_ok({:ok, value}, fun), do: {:ok, fun.(value)}
  defp map_ok(error, _fun), do: error
end
