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

  alias CloudStreams.{Call, Native, Options, Redact}
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

  # DynamoDB's own limits: Limit is a 32-bit integer, 1,000,000 segments at most.
  @max_limit 2_147_483_647
  @max_segments 1_000_000

  @config_opt [
    config: [
      type: :keyword_list,
      default: [],
      doc: "overrides of the application's DynamoDB configuration (see `Dynamo.Config`)."
    ]
  ]
  @names_opt [
    expression_attribute_names: [
      type: {:or_nil, {:custom, __MODULE__, :cast_names, []}},
      doc: "a map of `#name` placeholders to attribute names."
    ]
  ]
  @values_opt [
    expression_attribute_values: [
      type: {:or_nil, {:custom, __MODULE__, :cast_values, []}},
      doc:
        "a map of `:value` placeholders to values, plain (`%{\":v\" => true}`) or DynamoDB " <>
          "JSON (`%{\":v\" => %{\"BOOL\" => true}}`)."
    ]
  ]
  @consistent_read_opt [
    consistent_read: [type: :boolean, default: false, doc: "a strongly consistent read."]
  ]
  @projection_opt [
    projection_expression: [type: {:or_nil, :string}, doc: "the attributes to read."]
  ]

  @expression_opts [
                     condition_expression: [
                       type: {:or_nil, :string},
                       doc:
                         "makes the write conditional (`:conditional_check_failed` when the " <>
                           "condition does not hold)."
                     ]
                   ] ++ @names_opt ++ @values_opt ++ @config_opt

  @get_opts @consistent_read_opt ++ @projection_opt ++ @names_opt ++ @config_opt

  @update_opts @expression_opts ++
                 [
                   set: [
                     type: {:custom, __MODULE__, :cast_fields, []},
                     default: %{},
                     doc: "a map (or keyword list) of fields to their new values."
                   ],
                   remove: [type: {:list, :atom}, default: [], doc: "a list of fields to remove."],
                   add: [
                     type: {:custom, __MODULE__, :cast_fields, []},
                     default: %{},
                     doc:
                       "a map of numeric fields to increments, or set fields to elements to add."
                   ],
                   update_expression: [
                     type: {:or_nil, :string},
                     doc: "an update expression given directly, instead of `set`/`remove`/`add`."
                   ]
                 ]

  @doc """
  Writes a struct as an item, replacing any item with the same key.

  Options:

  #{Options.docs(@expression_opts)}
  """
  @spec put_item(struct(), keyword()) :: :ok | {:error, Error.t()}
  def put_item(struct, opts \\ [])

  def put_item(%schema{} = struct, opts) do
    Schema.schema!(schema, "Dynamo.Table.put_item/2")
    opts = Options.validate!(opts, @expression_opts, "Dynamo.Table.put_item/2")
    item = Schema.to_item(struct)

    call(
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

  def put_item(other, _opts) do
    raise ArgumentError,
          "Dynamo.Table.put_item/2 expects a struct of a Dynamo.Schema, got: #{Redact.inspect(other)}"
  end

  @doc """
  Reads one item by key: `{:ok, struct}` or `{:ok, nil}` when there is none.

  Options:

  #{Options.docs(@get_opts)}
  """
  @spec get_item(schema(), key(), keyword()) :: {:ok, struct() | nil} | {:error, Error.t()}
  def get_item(schema, key, opts \\ []) do
    Schema.schema!(schema, "Dynamo.Table.get_item/3")

    opts = Options.validate!(opts, @get_opts, "Dynamo.Table.get_item/3")

    key = Schema.key_item(schema, key)

    call(
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

  @doc """
  Deletes one item by key; returns the item as it was, or `nil` when there was none.

  Options:

  #{Options.docs(@expression_opts)}
  """
  @spec delete_item(schema(), key(), keyword()) :: {:ok, struct() | nil} | {:error, Error.t()}
  def delete_item(schema, key, opts \\ []) do
    Schema.schema!(schema, "Dynamo.Table.delete_item/3")
    opts = Options.validate!(opts, @expression_opts, "Dynamo.Table.delete_item/3")
    key = Schema.key_item(schema, key)

    call(
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
  Updates one item by key and returns it as it is after the update. `set:`, `remove:` and
  `add:` build the update expression; `update_expression:` gives one directly.

  Options:

  #{Options.docs(@update_opts)}
  """
  @spec update_item(schema(), key(), keyword()) :: {:ok, struct()} | {:error, Error.t()}
  def update_item(schema, key, opts) do
    Schema.schema!(schema, "Dynamo.Table.update_item/3")

    opts = Options.validate!(opts, @update_opts, "Dynamo.Table.update_item/3")

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
      Enum.with_index(opts.remove, fn field, i ->
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
               filter_expression: [
                 type: {:or_nil, :string},
                 doc: "which items of each page to return (they are still read)."
               ]
             ] ++
               @projection_opt ++
               @names_opt ++
               @values_opt ++
               @consistent_read_opt ++
               [
                 limit: [
                   type: {:or_nil, {:in, 1..@max_limit}},
                   doc:
                     "DynamoDB's `Limit`: items evaluated per request, at most 2,147,483,647 " <>
                       "(a 32-bit integer). DynamoDB also ends a page at 1 MB."
                 ],
                 exclusive_start_key: [
                   type: {:or_nil, {:custom, __MODULE__, :cast_item, []}},
                   doc: "a `last_evaluated_key`: start after it."
                 ],
                 index_name: [type: {:or_nil, :string}, doc: "read a secondary index."],
                 select: [
                   type: {:in, [nil, :all, :count]},
                   doc: "`:count` returns counts only."
                 ]
               ] ++ @config_opt

  @scan_opts @read_opts ++
               [
                 segment: [
                   type: {:or_nil, {:in, 0..(@max_segments - 1)}},
                   doc: "the segment to read, with `total_segments`."
                 ],
                 total_segments: [
                   type: {:or_nil, {:in, 1..@max_segments}},
                   doc: "segments of a parallel scan, at most 1,000,000 (DynamoDB's limit)."
                 ]
               ]

  @query_opts @read_opts ++
                [
                  key_condition_expression: [
                    type: :string,
                    required: true,
                    doc: "the key condition, with its `expression_attribute_values`."
                  ],
                  scan_index_forward: [
                    type: :boolean,
                    default: true,
                    doc: "ascending sort key order; false reads backwards."
                  ]
                ]

  @doc false
  def max_segments, do: @max_segments

  @doc false
  # What to read: shared with Dynamo.Table.Stream, whose pages replace limit and select.
  def read_options, do: @read_opts

  @doc """
  One page of a scan: `{:ok, %{items: [struct], last_evaluated_key: key | nil, count:,
  scanned_count:, consumed_capacity:}}` (read capacity units, when DynamoDB says). Pass `last_evaluated_key` back as `exclusive_start_key:` for the next
  page; `nil` means the scan is over (an empty page is not the end).

  For whole tables use `Dynamo.Table.Stream`.

  Options:

  #{Options.docs(@scan_opts)}
  """
  @spec scan(schema(), keyword()) :: {:ok, page()} | {:error, Error.t()}
  def scan(schema, opts \\ []) do
    Schema.schema!(schema, "Dynamo.Table.scan/2")

    opts = Options.validate!(opts, @scan_opts, "Dynamo.Table.scan/2")

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

  @doc false
  def query_options, do: @query_opts

  @doc """
  One page of a query: as `scan/2`, selected by the key condition.

  Options:

  #{Options.docs(@query_opts)}
  """
  @spec query(schema(), keyword()) :: {:ok, page()} | {:error, Error.t()}
  def query(schema, opts) do
    Schema.schema!(schema, "Dynamo.Table.query/2")

    opts = Options.validate!(opts, @query_opts, "Dynamo.Table.query/2")

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

    call(&Native.dynamo_read_page(config, operation, read, &1))
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

  Options:

  #{Options.docs(@config_opt)}
  """
  @spec batch_write_item(schema(), [struct() | {:put, struct()} | {:delete, key()}], keyword()) ::
          {:ok, non_neg_integer()} | {:error, Error.t()}
  def batch_write_item(schema, requests, opts \\ []) do
    Schema.schema!(schema, "Dynamo.Table.batch_write_item/3")
    opts = Options.validate!(opts, @config_opt, "Dynamo.Table.batch_write_item/3")
    list!(requests, "Dynamo.Table.batch_write_item/3", "requests")

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
                "invalid batch write request for #{inspect(schema)}: #{Redact.inspect(other)}"
      end)

    call(
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

  Options:

  #{Options.docs(@consistent_read_opt ++ @config_opt)}
  """
  @spec batch_get_item(schema(), [key()], keyword()) :: {:ok, [struct()]} | {:error, Error.t()}
  def batch_get_item(schema, keys, opts \\ []) do
    Schema.schema!(schema, "Dynamo.Table.batch_get_item/3")

    opts =
      Options.validate!(
        opts,
        @consistent_read_opt ++ @config_opt,
        "Dynamo.Table.batch_get_item/3"
      )

    list!(keys, "Dynamo.Table.batch_get_item/3", "keys")

    keys = Enum.map(keys, &Schema.key_item(schema, &1))

    call(
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

  @create_opts [
                 indexes: [
                   type: {:list, {:custom, __MODULE__, :cast_index, []}},
                   default: [],
                   doc:
                     "global secondary indexes, as `{name, partition_field}` or " <>
                       "`{name, partition_field, sort_field}`."
                 ]
               ] ++ @config_opt

  @doc """
  Creates the schema's table (on-demand capacity), keyed as the schema says.

  `indexes:` adds global secondary indexes, each projecting every attribute, as
  `[{name, partition_field}]` or `[{name, partition_field, sort_field}]` (fields of the schema);
  query them with `index_name: name`.

      Dynamo.Table.create_table(User, indexes: [{"by_email", :email}])

  Options:

  #{Options.docs(@create_opts)}
  """
  @spec create_table(schema(), keyword()) :: :ok | {:error, Error.t()}
  def create_table(schema, opts \\ []) do
    Schema.schema!(schema, "Dynamo.Table.create_table/2")

    opts =
      Options.validate!(
        opts,
        @create_opts,
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
      for index <- opts.indexes do
        case index do
          {name, partition} when is_binary(name) and is_atom(partition) ->
            {name, key.(partition), nil}

          {name, partition, sort} when is_binary(name) and is_atom(partition) and is_atom(sort) ->
            {name, key.(partition), key.(sort)}

          other ->
            raise ArgumentError,
                  "invalid index #{Redact.inspect(other)} for Dynamo.Table.create_table/2: " <>
                    "expected {name, partition_field} or {name, partition_field, sort_field}"
        end
      end

    call(
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

  @doc """
  Deletes the schema's table.

  Options:

  #{Options.docs(@config_opt)}
  """
  @spec delete_table(schema(), keyword()) :: :ok | {:error, Error.t()}
  def delete_table(schema, opts \\ []) do
    Schema.schema!(schema, "Dynamo.Table.delete_table/2")
    opts = Options.validate!(opts, @config_opt, "Dynamo.Table.delete_table/2")
    call(&Native.dynamo_delete_table(config(opts), schema.__dynamo__(:table), &1)) |> ok_only()
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

  defp names(opts), do: opts[:expression_attribute_names] || %{}

  defp values(opts) do
    case opts[:expression_attribute_values] do
      nil -> %{}
      values -> Codec.encode_item(values)
    end
  end

  defp list!(value, function, what) do
    unless is_list(value) do
      raise ArgumentError,
            "#{function} expects #{what} as a list, got: #{Redact.inspect(value)}"
    end
  end

  @doc false
  # The option type of `expression_attribute_names`: a map of `#name` to attribute names.
  def cast_names(names) when is_map(names) and not is_struct(names) do
    pairs = for {k, v} <- names, do: {name_text(k), name_text(v)}

    if Enum.all?(pairs, fn {k, v} -> k && v end),
      do: {:ok, Map.new(pairs)},
      else: {:error, "a map of placeholders to attribute names (strings or atoms)"}
  end

  def cast_names(_other), do: {:error, "a map of placeholders to attribute names"}

  defp name_text(value) when is_binary(value), do: String.valid?(value) && value
  defp name_text(value) when is_atom(value) and not is_nil(value), do: Atom.to_string(value)
  defp name_text(_value), do: nil

  @doc false
  # The option type of `expression_attribute_values`: a map (or keyword list) of placeholders
  # to values, plain or DynamoDB JSON.
  def cast_values(values) when is_map(values) and not is_struct(values), do: {:ok, values}

  def cast_values(values) when is_list(values) do
    if Keyword.keyword?(values) or Enum.all?(values, &match?({k, _} when is_binary(k), &1)),
      do: {:ok, values},
      else: {:error, "a map of placeholders to values"}
  end

  def cast_values(_other), do: {:error, "a map of placeholders to values"}

  @doc false
  # The option type of an index of `create_table/2`.
  def cast_index({name, partition} = index) when is_binary(name) and is_atom(partition),
    do: index_name(index, name)

  def cast_index({name, partition, sort} = index)
      when is_binary(name) and is_atom(partition) and is_atom(sort),
      do: index_name(index, name)

  def cast_index(_other),
    do: {:error, "{name, partition_field} or {name, partition_field, sort_field}"}

  defp index_name(index, name) do
    if String.valid?(name), do: {:ok, index}, else: {:error, "an index name as valid UTF-8"}
  end

  @doc false
  # The option type of a start key: a map of attribute names to DynamoDB JSON or values.
  def cast_item(item) when is_map(item) and not is_struct(item), do: {:ok, item}
  def cast_item(_other), do: {:error, "a map (a last_evaluated_key)"}

  @doc false
  # The option type of `set:` and `add:`: a map or keyword list of fields to values.
  def cast_fields(fields) when is_map(fields) and not is_struct(fields) do
    if Enum.all?(Map.keys(fields), &is_atom/1),
      do: {:ok, fields},
      else: {:error, "a map or keyword list of fields (atoms) to values"}
  end

  def cast_fields(fields) when is_list(fields) do
    if Keyword.keyword?(fields),
      do: {:ok, fields},
      else: {:error, "a map or keyword list of fields (atoms) to values"}
  end

  def cast_fields(_other), do: {:error, "a map or keyword list of fields (atoms) to values"}

  defp call(start), do: Call.await(start, &Error.from_native/1)

  defp ok_only({:ok, _}), do: :ok
  defp ok_only(error), do: error

  defp map_ok({:ok, value}, fun), do: {:ok, fun.(value)}
  defp map_ok(error, _fun), do: error
end
