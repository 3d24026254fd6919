defmodule Dynamo.Table do
  @moduledoc """
  Reads and writes of the items of a `Dynamo.Schema`: single items, batches, pages of scans
  and queries, transactions (`transact_write_items/2`, `transact_get_items/2`) and PartiQL
  (`execute_statement/3`, `batch_execute_statement/2`).

  Every function runs its request on the native runtime and answers by message, so no
  scheduler waits on DynamoDB. Errors are `{:error, %Dynamo.Error{}}`; every such function has
  a bang form (`get_item!/3`, ...) that returns the value itself and raises the error. Bad
  arguments raise `ArgumentError` naming the function and the problem, before any request.
  Every function takes `config:` (see `Dynamo.Config`).

  What a struct holds is stored as itself (see `Dynamo.Codec`): a map in a field is a map,
  even when it looks like DynamoDB JSON. `expression_attribute_values` may be DynamoDB JSON
  (`%{":v" => %{"BOOL" => true}}`) or plain values (`%{":v" => true}`). `last_evaluated_key`
  is a string-keyed DynamoDB JSON map, so it survives `Jason.encode!/1` and `Jason.decode!/1`
  unchanged and can be passed back as `exclusive_start_key`.

  ## Timeouts

  Every function that makes requests takes `timeout:`, the longest wait for its answer in
  milliseconds (or `:infinity`). The default is `config :cloud_streams, call_timeout: ms`,
  else 30 s: single-item requests take milliseconds, and an interactive caller should learn
  within half a minute that DynamoDB does not answer rather than wait out the SDK's retries.
  When the timeout passes, the native request is cancelled and the call returns
  `{:error, %Dynamo.Error{kind: :timeout}}`; a caller that dies mid-call cancels its request
  too. Whole-table reads belong to `Dynamo.Table.Stream`, whose waits are per page.

      # config/runtime.exs: every call of the application waits at most 5 s
      config :cloud_streams, call_timeout: 5_000

      # one call that may take longer
      Dynamo.Table.batch_write_item(User, users, timeout: 120_000)
  """

  alias CloudStreams.{Call, Native, Options, Redact, Telemetry}
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
    ],
    timeout: [
      type: {:or_nil, :timeout},
      doc:
        "the longest wait for the answer, in ms, or `:infinity` (default: " <>
          "`config :cloud_streams, call_timeout:`, else 30 s; see \"Timeouts\")."
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
  `condition_expression:` makes the write conditional (`:conditional_check_failed` when the
  condition does not hold).

      iex> :ok = Dynamo.Table.put_item(%DocAccount{id: "doc-put", owner: "cy", balance: 5})
      iex> {:error, %Dynamo.Error{kind: :precondition_failed}} =
      ...>   Dynamo.Table.put_item(%DocAccount{id: "doc-put"},
      ...>     condition_expression: "attribute_not_exists(id)"
      ...>   )
      iex> {:ok, %DocAccount{balance: 5}} = Dynamo.Table.delete_item(DocAccount, id: "doc-put")

  Options:

  #{Options.docs(@expression_opts)}
  """
  @spec put_item(struct(), keyword()) :: :ok | {:error, Error.t()}
  def put_item(struct, opts \\ [])

  def put_item(%schema{} = struct, opts) do
    function = "Dynamo.Table.put_item/2"
    opts = Options.validate!(opts, @expression_opts, function)
    schema!(schema, function)

    {item, expressions} =
      encoding!(function, fn -> {Schema.to_item(struct), expressions(opts)} end)

    call(
      :put_item,
      schema,
      &Native.dynamo_put_item(
        config(opts),
        schema.__dynamo__(:table),
        item,
        expressions,
        &1
      ),
      opts
    )
    |> ok_only()
  end

  def put_item(other, _opts) do
    raise ArgumentError,
          "Dynamo.Table.put_item/2 expects a struct of a Dynamo.Schema, got: #{Redact.inspect(other)}"
  end

  @doc """
  Reads one item by key: `{:ok, struct}` or `{:ok, nil}` when there is none. Options:
  `consistent_read:`, `projection_expression:`, `expression_attribute_names:`, `config:`.

      iex> {:ok, %DocAccount{owner: "ann", balance: 100}} = Dynamo.Table.get_item(DocAccount, id: "acc1")
      iex> Dynamo.Table.get_item(DocAccount, [id: "nobody"], consistent_read: true)
      {:ok, nil}

  Options:

  #{Options.docs(@get_opts)}
  """
  @spec get_item(schema(), key(), keyword()) :: {:ok, struct() | nil} | {:error, Error.t()}
  def get_item(schema, key, opts \\ []) do
    Schema.schema!(schema, "Dynamo.Table.get_item/3")

    opts = Options.validate!(opts, @get_opts, "Dynamo.Table.get_item/3")

    key = key!(schema, key, "Dynamo.Table.get_item/3")

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
      ),
      opts
    )
    |> map_ok(&(&1 && Schema.from_item(schema, &1)))
  end

  @doc """
  Deletes one item by key; returns the item as it was, or `nil` when there was none.
  `condition_expression:` as for `put_item/2`.

      iex> :ok = Dynamo.Table.put_item(%DocAccount{id: "doc-delete", balance: 1})
      iex> {:ok, %DocAccount{balance: 1}} = Dynamo.Table.delete_item(DocAccount, id: "doc-delete")
      iex> Dynamo.Table.delete_item(DocAccount, id: "doc-delete")
      {:ok, nil}

  Options:

  #{Options.docs(@expression_opts)}
  """
  @spec delete_item(schema(), key(), keyword()) :: {:ok, struct() | nil} | {:error, Error.t()}
  def delete_item(schema, key, opts \\ []) do
    function = "Dynamo.Table.delete_item/3"
    opts = Options.validate!(opts, @expression_opts, function)
    key = key!(schema, key, function)
    expressions = encoding!(function, fn -> expressions(opts) end)

    call(
      :delete_item,
      schema,
      &Native.dynamo_delete_item(
        config(opts),
        schema.__dynamo__(:table),
        key,
        expressions,
        &1
      ),
      opts
    )
    |> map_ok(&(&1 && Schema.from_item(schema, &1)))
  end

  @doc """
  Updates one item by key and returns it as it is after the update. `set:`, `remove:` and
  `add:` build the update expression; `update_expression:` gives one directly.

  `set:` (a map of fields to values), `remove:` (a list of fields) and `add:` (a map of
  numeric fields to increments, or set fields to elements to add) build the update
  expression; `update_expression:` gives one directly. `condition_expression:` as for
  `put_item/2`. Values in `set:` and `add:` are plain values of the fields' types.

      iex> {:ok, %DocAccount{balance: 110}} =
      ...>   Dynamo.Table.update_item(DocAccount, [id: "acc1"], add: %{balance: 10})
      iex> {:ok, %DocAccount{balance: 100}} =
      ...>   Dynamo.Table.update_item(DocAccount, [id: "acc1"],
      ...>     update_expression: "SET balance = balance - :d",
      ...>     expression_attribute_values: %{":d" => 10}
      ...>   )

  Options:

  #{Options.docs(@update_opts)}
  """
  @spec update_item(schema(), key(), keyword()) :: {:ok, struct()} | {:error, Error.t()}
  def update_item(schema, key, opts) do
    Schema.schema!(schema, "Dynamo.Table.update_item/3")

    opts = Options.validate!(opts, @update_opts, "Dynamo.Table.update_item/3")

    function = "Dynamo.Table.update_item/3"
    key = key!(schema, key, function)

    {{expression, names, values}, base} =
      encoding!(function, fn -> {update_expression(schema, opts), expressions(opts)} end)

    if expression == "" do
      raise ArgumentError,
            "Dynamo.Table.update_item/3 needs set:, remove:, add: or update_expression:"
    end

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
      ),
      opts
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

      iex> {:ok, page} =
      ...>   Dynamo.Table.scan(DocAccount,
      ...>     filter_expression: "balance >= :min",
      ...>     expression_attribute_values: %{":min" => 60}
      ...>   )
      iex> {Enum.map(page.items, & &1.id), page.last_evaluated_key}
      {["acc1"], nil}

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

    read_page(schema, :scan, read(schema, opts, "Dynamo.Table.scan/2", segment: segment), opts)
  end

  @doc false
  def query_options, do: @query_opts

  @doc """
  One page of a query: as `scan/2`, plus `key_condition_expression` (required) and
  `scan_index_forward` (default true: ascending sort key).

      iex> {:ok, %{items: [%DocAccount{owner: "bob"}]}} =
      ...>   Dynamo.Table.query(DocAccount,
      ...>     key_condition_expression: "id = :id",
      ...>     expression_attribute_values: %{":id" => "acc2"}
      ...>   )

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
      read(schema, opts, "Dynamo.Table.query/2",
        key_condition_expression: opts.key_condition_expression,
        forward: opts.scan_index_forward
      ),
      opts
    )
  end

  @doc false
  # The read request the NIF takes (shared with Dynamo.Table.Stream).
  def read(schema, opts, extra), do: read(schema, opts, "Dynamo.Table.Stream", extra)

  @doc false
  def read(schema, opts, function, extra) do
    schema!(schema, function)
    encoding!(function, fn -> read!(schema, opts, extra) end)
  end

  defp read!(schema, opts, extra) do
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

  defp read_page(schema, operation, read, opts) do
    {config, read} = Map.pop!(read, :config)

    call(operation, schema, &Native.dynamo_read_page(config, operation, read, &1), opts)
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
  `{:error, %Dynamo.Error{kind: :throttled}}`. `requests` are structs to put, or
  `{:put, struct}` / `{:delete, key}`.

  Returns `{:ok, applied_count}`. A batch is not a transaction: when it fails part-way, the
  error's `applied` counts the requests DynamoDB applied before the failure (every request of
  the groups of 25 sent before, and those of the failing group DynamoDB processed).

      iex> Dynamo.Table.batch_write_item(DocAccount, [%DocAccount{id: "doc-b1"}, {:put, %DocAccount{id: "doc-b2"}}])
      {:ok, 2}
      iex> Dynamo.Table.batch_write_item(DocAccount, [{:delete, [id: "doc-b1"]}, {:delete, %{id: "doc-b2"}}])
      {:ok, 2}

  Options:

  #{Options.docs(@config_opt)}
  """
  @spec batch_write_item(schema(), [struct() | {:put, struct()} | {:delete, key()}], keyword()) ::
          {:ok, non_neg_integer()} | {:error, Error.t()}
  def batch_write_item(schema, requests, opts \\ []) do
    function = "Dynamo.Table.batch_write_item/3"
    opts = Options.validate!(opts, @config_opt, function)
    schema!(schema, function)
    list!(requests, function, "the requests")

    {puts, deletes} = encoding!(function, fn -> batch_requests(schema, requests) end)

    call(
      :batch_write_item,
      schema,
      &Native.dynamo_batch_write(
        config(opts),
        schema.__dynamo__(:table),
        Enum.reverse(puts),
        Enum.reverse(deletes),
        &1
      ),
      opts
    )
  end

  defp batch_requests(schema, requests) do
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
  end

  @doc """
  Reads many items by key, 100 per request; unprocessed keys are retried as in
  `batch_write_item/3`. Missing items are left out.

      iex> {:ok, accounts} = Dynamo.Table.batch_get_item(DocAccount, [[id: "acc1"], [id: "acc2"], [id: "nobody"]])
      iex> accounts |> Enum.map(& &1.id) |> Enum.sort()
      ["acc1", "acc2"]

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

    list!(keys, "Dynamo.Table.batch_get_item/3", "the keys")
    keys = Enum.map(keys, &key!(schema, &1, "Dynamo.Table.batch_get_item/3"))

    call(
      :batch_get_item,
      schema,
      &Native.dynamo_batch_get(
        config(opts),
        schema.__dynamo__(:table),
        keys,
        opts.consistent_read,
        &1
      ),
      opts
    )
    |> map_ok(fn items -> Enum.map(items, &Schema.from_item(schema, &1)) end)
  end

  @doc """
  Every item of the table, read as `Dynamo.Table.Stream.parallel_scan/2` reads it, in one list:
  `{:ok, [struct]}`. For tables that fit in memory; stream the others.

      iex> {:ok, accounts} = Dynamo.Table.parallel_scan(DocAccount, segments: 2)
      iex> accounts |> Enum.map(& &1.id) |> Enum.sort()
      ["acc1", "acc2"]
  """
  @spec parallel_scan(schema(), keyword()) :: {:ok, [struct()]} | {:error, Error.t()}
  def parallel_scan(schema, opts \\ []) do
    {:ok, schema |> Dynamo.Table.Stream.parallel_scan(opts) |> Enum.to_list()}
  rescue
    error in Error -> {:error, error}
  end

  @doc """
  The same as `Dynamo.Table.Stream.scan/2` (the name in the streaming guide's table).

      iex> Dynamo.Table.stream_scan(DocAccount, page_size: 1) |> Enum.count()
      2
  """
  @spec stream_scan(schema(), keyword()) :: Enumerable.t()
  defdelegate stream_scan(schema, opts \\ []), to: Dynamo.Table.Stream, as: :scan

  @doc """
  The same as `Dynamo.Table.Stream.parallel_scan/2`.

      iex> Dynamo.Table.stream_parallel_scan(DocAccount, segments: 2) |> Enum.count()
      2
  """
  @spec stream_parallel_scan(schema(), keyword()) :: Enumerable.t()
  defdelegate stream_parallel_scan(schema, opts \\ []),
    to: Dynamo.Table.Stream,
    as: :parallel_scan

  @doc """
  The same as `Dynamo.Table.Stream.scan_to_process/3`.

      iex> {:ok, _scanner} = Dynamo.Table.stream_scan_to_process(DocAccount, self(), batch_size: 10)
      iex> receive do {:scan_batch, accounts} -> length(accounts) after 5_000 -> :timeout end
      2
      iex> receive do :scan_complete -> :ok after 5_000 -> :timeout end
      :ok
  """
  @spec stream_scan_to_process(schema(), pid(), keyword()) :: {:ok, pid()} | {:error, term()}
  defdelegate stream_scan_to_process(schema, pid, opts \\ []),
    to: Dynamo.Table.Stream,
    as: :scan_to_process

  # --- transactions ----------------------------------------------------------------------

  # DynamoDB's limits: actions of one transaction, statements of one batch.
  @max_transaction_actions 100
  @max_batch_statements 25

  @condition_opts [
    condition_expression: {{:or_nil, :string}, nil},
    expression_attribute_names: {{:or_nil, :any}, nil},
    expression_attribute_values: {{:or_nil, :any}, nil}
  ]

  @transact_write_opts [
                         client_request_token: [
                           type: {:or_nil, :string},
                           doc:
                             "makes a retry safe: DynamoDB applies one transaction per token " <>
                               "(for ten minutes)."
                         ]
                       ] ++ @config_opt

  @doc """
  Applies up to #{@max_transaction_actions} writes, on items of one or several schemas, all or none.

  Actions:

    * `{:put, struct}` or `{:put, struct, opts}`
    * `{:update, schema, key, opts}` - `opts` as for `update_item/3` (`set:`, `remove:`, `add:`
      or `update_expression:`)
    * `{:delete, schema, key}` or `{:delete, schema, key, opts}`
    * `{:condition_check, schema, key, opts}` - writes nothing; `condition_expression:` is
      required

  Each action's `opts` may hold `condition_expression:`, `expression_attribute_names:` and
  `expression_attribute_values:`. Two actions may not touch the same item.

  Options: `client_request_token:` (1 to 36 characters) makes the call idempotent: DynamoDB
  applies a transaction once per token for 10 minutes, so a retry after a timeout cannot apply
  it twice; `config:`.

  A cancelled transaction is `{:error, %Dynamo.Error{code: "TransactionCanceledException"}}`
  whose `cancellation_reasons` say, for each action in order, why: `code:
  "ConditionalCheckFailed"` (`kind: :precondition_failed`) for the condition that failed,
  `"TransactionConflict"` (`:throttled`) when a concurrent transaction held an item, `"None"`
  (`:cancelled`) for the actions that were fine. The error's `kind` is the first failed
  action's.

      iex> :ok = Dynamo.Table.transact_write_items([
      ...>   {:update, DocAccount, [id: "acc1"],
      ...>    add: %{balance: -10},
      ...>    condition_expression: "balance >= :ten",
      ...>    expression_attribute_values: %{":ten" => 10}},
      ...>   {:update, DocAccount, [id: "acc2"], add: %{balance: 10}}
      ...> ])
      iex> {:error, error} = Dynamo.Table.transact_write_items([
      ...>   {:update, DocAccount, [id: "acc2"], add: %{balance: -10}},
      ...>   {:condition_check, DocAccount, [id: "nobody"], condition_expression: "attribute_exists(id)"}
      ...> ])
      iex> {error.kind, Enum.map(error.cancellation_reasons, & &1.code)}
      {:precondition_failed, ["None", "ConditionalCheckFailed"]}
      iex> :ok = Dynamo.Table.transact_write_items([
      ...>   {:update, DocAccount, [id: "acc1"], add: %{balance: 10}},
      ...>   {:update, DocAccount, [id: "acc2"], add: %{balance: -10}}
      ...> ])

  Options:

  #{Options.docs(@transact_write_opts)}
  """
  @spec transact_write_items([tuple()], keyword()) :: :ok | {:error, Error.t()}
  def transact_write_items(actions, opts \\ []) do
    function = "Dynamo.Table.transact_write_items/2"

    opts = Options.validate!(opts, @transact_write_opts, function)

    token = opts.client_request_token

    if token && (byte_size(token) == 0 or String.length(token) > 36) do
      raise ArgumentError,
            "#{function}: client_request_token must have 1 to 36 characters, got: #{inspect(token)}"
    end

    actions =
      actions
      |> actions!(function, @max_transaction_actions)
      |> Enum.with_index()
      |> Enum.map(fn {action, i} -> write_action(action, "#{function}: action #{i}") end)

    call(
      :transact_write_items,
      Enum.map(actions, &elem(&1, 1)),
      &Native.dynamo_transact_write(config(opts), actions, token, &1),
      opts
    )
    |> ok_only()
  end

  defp actions!(actions, function, max) do
    unless is_list(actions) do
      raise ArgumentError, "#{function} takes a list, got: #{inspect(actions)}"
    end

    case length(actions) do
      0 ->
        raise ArgumentError, "#{function} needs at least one action"

      n when n > max ->
        raise ArgumentError,
              "#{function} takes at most #{max} actions (DynamoDB's limit), got #{n}"

      _ ->
        actions
    end
  end

  defp write_action({:put, struct}, context), do: write_action({:put, struct, []}, context)

  defp write_action({:put, %schema{} = struct, opts}, context) do
    schema!(schema, context)
    opts = Options.validate!(opts, @condition_opts, context)

    encoding!(context, fn ->
      {:put, schema.__dynamo__(:table), Schema.to_item(struct), expressions(opts)}
    end)
  end

  defp write_action({:update, schema, key, opts}, context) do
    opts =
      Options.validate!(
        opts,
        @condition_opts ++
          [
            set: [type: {:custom, __MODULE__, :cast_fields, []}, default: %{}],
            remove: [type: {:list, :atom}, default: []],
            add: [type: {:custom, __MODULE__, :cast_fields, []}, default: %{}],
            update_expression: [type: {:or_nil, :string}]
          ],
        context
      )

    key = key!(schema, key, context)

    {{expression, names, values}, base} =
      encoding!(context, fn -> {update_expression(schema, opts), expressions(opts)} end)

    if expression == "" do
      raise ArgumentError, "#{context}: an update needs set:, remove:, add: or update_expression:"
    end

    expressions = %{
      base
      | names: Map.merge(base.names, names),
        values: Map.merge(base.values, values)
    }

    {:update, schema.__dynamo__(:table), key, expression, expressions}
  end

  defp write_action({:delete, schema, key}, context),
    do: write_action({:delete, schema, key, []}, context)

  defp write_action({kind, schema, key, opts}, context)
       when kind in [:delete, :condition_check] do
    opts = Options.validate!(opts, @condition_opts, context)
    key = key!(schema, key, context)

    if kind == :condition_check and is_nil(opts.condition_expression) do
      raise ArgumentError, "#{context}: a condition check needs condition_expression:"
    end

    {kind, schema.__dynamo__(:table), key, encoding!(context, fn -> expressions(opts) end)}
  end

  defp write_action(other, context) do
    raise ArgumentError,
          "#{context}: expected {:put, struct}, {:put, struct, opts}, {:update, schema, key, opts}, " <>
            "{:delete, schema, key}, {:delete, schema, key, opts} or " <>
            "{:condition_check, schema, key, opts}, got: #{inspect(other)}"
  end

  @doc """
  Reads up to #{@max_transaction_actions} items, of one or several schemas, as one consistent
  snapshot: `{:ok, [struct | nil]}` in the order of `gets` (`nil` where there is no item).

  Each get is `{schema, key}` or `{schema, key, opts}`, with `projection_expression:` and
  `expression_attribute_names:` in `opts`. Options: `config:`.

      iex> {:ok, [%DocAccount{balance: 100}, nil]} =
      ...>   Dynamo.Table.transact_get_items([{DocAccount, [id: "acc1"]}, {DocAccount, [id: "nobody"]}])

  Options:

  #{Options.docs(@config_opt)}
  """
  @spec transact_get_items([{schema(), key()} | {schema(), key(), keyword()}], keyword()) ::
          {:ok, [struct() | nil]} | {:error, Error.t()}
  def transact_get_items(gets, opts \\ []) do
    function = "Dynamo.Table.transact_get_items/2"
    opts = Options.validate!(opts, @config_opt, function)

    gets =
      gets
      |> actions!(function, @max_transaction_actions)
      |> Enum.with_index()
      |> Enum.map(fn {get, i} -> get_action(get, "#{function}: get #{i}") end)

    schemas = Enum.map(gets, &elem(&1, 0))
    gets = Enum.map(gets, &Tuple.delete_at(&1, 0))

    call(
      :transact_get_items,
      Enum.map(gets, &elem(&1, 0)),
      &Native.dynamo_transact_get(config(opts), gets, &1),
      opts
    )
    |> map_ok(fn items ->
      Enum.zip_with(schemas, items, fn schema, item -> item && Schema.from_item(schema, item) end)
    end)
  end

  defp get_action({schema, key}, context), do: get_action({schema, key, []}, context)

  defp get_action({schema, key, opts}, context) when is_list(opts) do
    opts =
      Options.validate!(
        opts,
        [
          projection_expression: {{:or_nil, :string}, nil},
          expression_attribute_names: {{:or_nil, :any}, nil}
        ],
        context
      )

    key = key!(schema, key, context)
    {schema, schema.__dynamo__(:table), key, opts.projection_expression, names(opts)}
  end

  defp get_action(other, context) do
    raise ArgumentError,
          "#{context}: expected {schema, key} or {schema, key, opts}, got: #{inspect(other)}"
  end

  # --- PartiQL ------------------------------------------------------------------------------

  @statement_opts [
                    parameters: [
                      type: {:list, :any},
                      default: [],
                      doc:
                        "the values of the statement's `?` placeholders, in order, as plain values."
                    ],
                    consistent_read: [
                      type: :boolean,
                      default: false,
                      doc: "a strongly consistent read."
                    ]
                  ] ++ @config_opt

  @execute_opts @statement_opts ++
                  [
                    limit: [
                      type: {:or_nil, {:in, 1..@max_limit}},
                      doc: "items evaluated for the page (DynamoDB's `Limit`)."
                    ],
                    next_token: [
                      type: {:or_nil, :string},
                      doc: "the `next_token` of the previous page, to read the next one."
                    ]
                  ]

  @doc false
  def statement_options, do: @statement_opts

  @doc """
  Runs one PartiQL statement and answers one page: `{:ok, %{items: [struct], next_token:
  token | nil}}`, the items decoded into `schema`'s structs. Pass `next_token` back as
  `next_token:` for the next page; `nil` means there is no more. For every page, use
  `Dynamo.Table.Stream.execute_statement/3`.

  Options: `parameters:` (the values of the statement's `?`, in order, as plain Elixir values:
  a map is a map), `consistent_read:`, `limit:` (items evaluated per page), `next_token:`,
  `config:`. A statement DynamoDB cannot parse is `{:error, %Dynamo.Error{kind:
  :invalid_argument}}`.

      iex> {:ok, %{items: [%DocAccount{owner: "ann"}], next_token: nil}} =
      ...>   Dynamo.Table.execute_statement(DocAccount,
      ...>     ~s(SELECT * FROM "cloud_streams_doc_accounts" WHERE id = ?),
      ...>     parameters: ["acc1"]
      ...>   )

  Options:

  #{Options.docs(@execute_opts)}
  """
  @spec execute_statement(schema(), String.t(), keyword()) ::
          {:ok, %{items: [struct()], next_token: String.t() | nil}} | {:error, Error.t()}
  def execute_statement(schema, statement, opts \\ []) do
    function = "Dynamo.Table.execute_statement/3"

    opts =
      Options.validate!(
        opts,
        @execute_opts,
        function
      )

    schema!(schema, function)
    statement = statement(statement, opts, function)

    call(
      :execute_statement,
      schema,
      &Native.dynamo_execute_statement(config(opts), statement, &1),
      opts
    )
    |> map_ok(fn page ->
      %{items: Enum.map(page.items, &Schema.from_item(schema, &1)), next_token: page.next_token}
    end)
  end

  @doc false
  # The statement the NIF takes (shared with Dynamo.Table.Stream.execute_statement/3).
  def statement(statement, opts, function) do
    unless is_binary(statement) and statement != "" do
      raise ArgumentError, "#{function} needs a statement string, got: #{inspect(statement)}"
    end

    unless is_list(opts.parameters) do
      raise ArgumentError,
            "#{function}: parameters must be a list, got: #{inspect(opts.parameters)}"
    end

    parameters =
      opts.parameters
      |> Enum.with_index()
      |> Enum.map(fn {value, i} ->
        encoding!("#{function}: parameter #{i}", fn -> Codec.encode(value) end)
      end)

    %{
      statement: statement,
      parameters: parameters,
      consistent_read: opts.consistent_read,
      limit: Map.get(opts, :limit),
      next_token: Map.get(opts, :next_token)
    }
  end

  @doc """
  Runs up to #{@max_batch_statements} PartiQL statements in one request. Each succeeds or fails on
  its own: `{:ok, results}` with, in order, `{:ok, struct | nil}` (the item a `SELECT` read,
  `nil` for writes and missing items) or `{:error, %Dynamo.Error{}}` for that statement
  (`code: "ConditionalCheckFailed"`, `"DuplicateItem"` ...).

  Each statement is `{schema, statement}` or `{schema, statement, parameters}`. Options:
  `consistent_read:`, `config:`.

  A batch holds reads or writes, not both (DynamoDB's rule).

      iex> select = ~s(SELECT * FROM "cloud_streams_doc_accounts" WHERE id = ?)
      iex> {:ok, [{:ok, %DocAccount{id: "acc2"}}, {:ok, nil}]} =
      ...>   Dynamo.Table.batch_execute_statement([{DocAccount, select, ["acc2"]}, {DocAccount, select, ["nobody"]}])
      iex> {:ok, [{:error, error}]} =
      ...>   Dynamo.Table.batch_execute_statement([
      ...>     {DocAccount, ~s(INSERT INTO "cloud_streams_doc_accounts" VALUE {'id': ?}), ["acc1"]}
      ...>   ])
      iex> error.kind
      :already_exists

  Options:

  #{Options.docs(@consistent_read_opt ++ @config_opt)}
  """
  @spec batch_execute_statement([tuple()], keyword()) ::
          {:ok, [{:ok, struct() | nil} | {:error, Error.t()}]} | {:error, Error.t()}
  def batch_execute_statement(statements, opts \\ []) do
    function = "Dynamo.Table.batch_execute_statement/2"

    opts = Options.validate!(opts, @consistent_read_opt ++ @config_opt, function)

    {schemas, statements} =
      statements
      |> actions!(function, @max_batch_statements)
      |> Enum.with_index()
      |> Enum.map(fn {entry, i} ->
        context = "#{function}: statement #{i}"

        {schema, statement, parameters} =
          case entry do
            {schema, statement} ->
              {schema, statement, []}

            {schema, statement, parameters} ->
              {schema, statement, parameters}

            other ->
              raise ArgumentError,
                    "#{context}: expected {schema, statement} or {schema, statement, parameters}, got: #{inspect(other)}"
          end

        schema!(schema, context)

        {schema,
         statement(
           statement,
           %{parameters: parameters, consistent_read: opts.consistent_read},
           context
         )}
      end)
      |> Enum.unzip()

    call(
      :batch_execute_statement,
      Enum.map(schemas, & &1.__dynamo__(:table)),
      &Native.dynamo_batch_execute_statement(config(opts), statements, &1),
      opts
    )
    |> map_ok(fn results ->
      Enum.zip_with(schemas, results, fn
        schema, {:ok, item} -> {:ok, item && Schema.from_item(schema, item)}
        _schema, {:error, native} -> {:error, Error.from_native(native)}
      end)
    end)
  end

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

      iex> :ok = Dynamo.Table.create_table(DocScratch)
      iex> {:error, %Dynamo.Error{kind: :already_exists}} = Dynamo.Table.create_table(DocScratch)
      iex> Dynamo.Table.delete_table(DocScratch)
      :ok

  An index: `Dynamo.Table.create_table(User, indexes: [{"by_email", :email}])`.

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
      :create_table,
      schema,
      &Native.dynamo_create_table(
        config(opts),
        schema.__dynamo__(:table),
        key.(schema.__dynamo__(:partition_key)),
        key.(schema.__dynamo__(:sort_key)),
        indexes,
        &1
      ),
      opts
    )
    |> ok_only()
  end

  @doc """
  Deletes the schema's table.

      iex> :ok = Dynamo.Table.create_table(DocScratch)
      iex> Dynamo.Table.delete_table(DocScratch)
      :ok
      iex> {:error, %Dynamo.Error{kind: :not_found}} = Dynamo.Table.delete_table(DocScratch)

  Options:

  #{Options.docs(@config_opt)}
  """
  @spec delete_table(schema(), keyword()) :: :ok | {:error, Error.t()}
  def delete_table(schema, opts \\ []) do
    Schema.schema!(schema, "Dynamo.Table.delete_table/2")
    opts = Options.validate!(opts, @config_opt, "Dynamo.Table.delete_table/2")

    call(
      :delete_table,
      schema,
      &Native.dynamo_delete_table(config(opts), schema.__dynamo__(:table), &1),
      opts
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

  # --- bang forms ----------------------------------------------------------------------------
  # Each returns what the plain form returns in `{:ok, value}` and raises its `Dynamo.Error`.

  @doc """
  Like `put_item/2`, but returns the value itself and raises `Dynamo.Error`.

      iex> Dynamo.Table.put_item!(%DocAccount{id: "doc-bang-put"})
      :ok
      iex> Dynamo.Table.delete_item!(DocAccount, id: "doc-bang-put").id
      "doc-bang-put"
  """
  @spec put_item!(struct(), keyword()) :: :ok
  def put_item!(struct, opts \\ []), do: put_item(struct, opts) |> bang!()

  @doc """
  Like `get_item/3`, but returns the value itself and raises `Dynamo.Error`.

      iex> Dynamo.Table.get_item!(DocAccount, id: "acc2").owner
      "bob"
  """
  @spec get_item!(schema(), key(), keyword()) :: struct() | nil
  def get_item!(schema, key, opts \\ []), do: get_item(schema, key, opts) |> bang!()

  @doc """
  Like `delete_item/3`, but returns the value itself and raises `Dynamo.Error`.

      iex> Dynamo.Table.delete_item!(DocAccount, id: "nobody")
      nil
  """
  @spec delete_item!(schema(), key(), keyword()) :: struct() | nil
  def delete_item!(schema, key, opts \\ []), do: delete_item(schema, key, opts) |> bang!()

  @doc """
  Like `update_item/3`, but returns the value itself and raises `Dynamo.Error`.

      iex> Dynamo.Table.update_item!(DocAccount, [id: "acc2"], set: %{owner: "bob"}).balance
      50
  """
  @spec update_item!(schema(), key(), keyword()) :: struct()
  def update_item!(schema, key, opts), do: update_item(schema, key, opts) |> bang!()

  @doc """
  Like `scan/2`, but returns the value itself and raises `Dynamo.Error`.

      iex> Dynamo.Table.scan!(DocAccount, select: :count).count
      2
  """
  @spec scan!(schema(), keyword()) :: page()
  def scan!(schema, opts \\ []), do: scan(schema, opts) |> bang!()

  @doc """
  Like `query/2`, but returns the value itself and raises `Dynamo.Error`.

      iex> Dynamo.Table.query!(DocAccount, key_condition_expression: "id = :id", expression_attribute_values: %{":id" => "acc1"}).count
      1
  """
  @spec query!(schema(), keyword()) :: page()
  def query!(schema, opts), do: query(schema, opts) |> bang!()

  @doc """
  Like `batch_write_item/3`, but returns the value itself and raises `Dynamo.Error`.

      iex> Dynamo.Table.batch_write_item!(DocAccount, [{:delete, [id: "nobody"]}])
      1
  """
  @spec batch_write_item!(schema(), [struct() | {:put, struct()} | {:delete, key()}], keyword()) ::
          non_neg_integer()
  def batch_write_item!(schema, requests, opts \\ []),
    do: batch_write_item(schema, requests, opts) |> bang!()

  @doc """
  Like `batch_get_item/3`, but returns the value itself and raises `Dynamo.Error`.

      iex> Dynamo.Table.batch_get_item!(DocAccount, [[id: "acc1"]]) |> Enum.map(& &1.owner)
      ["ann"]
  """
  @spec batch_get_item!(schema(), [key()], keyword()) :: [struct()]
  def batch_get_item!(schema, keys, opts \\ []), do: batch_get_item(schema, keys, opts) |> bang!()

  @doc """
  Like `parallel_scan/2`, but returns the value itself and raises `Dynamo.Error`.

      iex> Dynamo.Table.parallel_scan!(DocAccount) |> length()
      2
  """
  @spec parallel_scan!(schema(), keyword()) :: [struct()]
  def parallel_scan!(schema, opts \\ []), do: parallel_scan(schema, opts) |> bang!()

  @doc """
  Like `create_table/2`, but returns the value itself and raises `Dynamo.Error`.

      iex> Dynamo.Table.create_table!(DocScratch)
      :ok
      iex> Dynamo.Table.delete_table!(DocScratch)
      :ok
  """
  @spec create_table!(schema(), keyword()) :: :ok
  def create_table!(schema, opts \\ []), do: create_table(schema, opts) |> bang!()

  @doc """
  Like `delete_table/2`, but returns the value itself and raises `Dynamo.Error`.

      iex> Dynamo.Table.delete_table!(DocScratch)
      ** (Dynamo.Error) (not_found) Cannot do operations on a non-existent table
  """
  @spec delete_table!(schema(), keyword()) :: :ok
  def delete_table!(schema, opts \\ []), do: delete_table(schema, opts) |> bang!()

  @doc """
  Like `transact_write_items/2`, but returns the value itself and raises `Dynamo.Error`.

      iex> Dynamo.Table.transact_write_items!([{:condition_check, DocAccount, [id: "acc1"], condition_expression: "attribute_exists(id)"}])
      :ok
  """
  @spec transact_write_items!([tuple()], keyword()) :: :ok
  def transact_write_items!(actions, opts \\ []),
    do: transact_write_items(actions, opts) |> bang!()

  @doc """
  Like `transact_get_items/2`, but returns the value itself and raises `Dynamo.Error`.

      iex> Dynamo.Table.transact_get_items!([{DocAccount, [id: "acc1"]}]) |> Enum.map(& &1.owner)
      ["ann"]
  """
  @spec transact_get_items!([{schema(), key()} | {schema(), key(), keyword()}], keyword()) :: [
          struct() | nil
        ]
  def transact_get_items!(gets, opts \\ []), do: transact_get_items(gets, opts) |> bang!()

  @doc """
  Like `execute_statement/3`, but returns the value itself and raises `Dynamo.Error`.

      iex> Dynamo.Table.execute_statement!(DocAccount, ~s(SELECT owner FROM "cloud_streams_doc_accounts" WHERE id = 'acc2')).items
      [%DocAccount{id: nil, owner: "bob", balance: 0}]
  """
  @spec execute_statement!(schema(), String.t(), keyword()) :: %{
          items: [struct()],
          next_token: String.t() | nil
        }
  def execute_statement!(schema, statement, opts \\ []),
    do: execute_statement(schema, statement, opts) |> bang!()

  @doc """
  Like `batch_execute_statement/2`, but returns the value itself and raises `Dynamo.Error`.

      iex> [{:ok, %DocAccount{owner: "ann"}}] =
      ...>   Dynamo.Table.batch_execute_statement!([{DocAccount, ~s(SELECT * FROM "cloud_streams_doc_accounts" WHERE id = ?), ["acc1"]}])
  """
  @spec batch_execute_statement!([tuple()], keyword()) :: [
          {:ok, struct() | nil} | {:error, Error.t()}
        ]
  def batch_execute_statement!(statements, opts \\ []),
    do: batch_execute_statement(statements, opts) |> bang!()

  defp bang!(:ok), do: :ok
  defp bang!({:ok, value}), do: value
  defp bang!({:error, %Error{} = error}), do: raise(error)

  # --- helpers -------------------------------------------------------------------------------

  @doc false
  # Raises unless `schema` is a Dynamo.Schema module.
  def schema!(schema, function) do
    # function_exported?/3 does not load modules: ensure_loaded? first.
    unless is_atom(schema) and not is_nil(schema) and Code.ensure_loaded?(schema) and
             function_exported?(schema, :__dynamo__, 1) do
      raise ArgumentError, "#{function} needs a Dynamo.Schema module, got: #{inspect(schema)}"
    end

    schema
  end

  @doc false
  # Runs `build`, whose ArgumentErrors (a value that cannot be stored, a bad key) are raised
  # again naming `function`.
  def encoding!(function, build) do
    build.()
  rescue
    e in ArgumentError ->
      message = Exception.message(e)

      if String.starts_with?(message, function) do
        reraise e, __STACKTRACE__
      else
        reraise ArgumentError, "#{function}: #{message}", __STACKTRACE__
      end
  end

  defp key!(schema, key, function) do
    schema!(schema, function)
    encoding!(function, fn -> Schema.key_item(schema, key) end)
  end

  defp config(opts), do: Dynamo.Config.native(opts.config)

  defp expressions(opts),
    do: %{condition: opts.condition_expression, names: names(opts), values: values(opts)}

  defp names(opts), do: opts[:expression_attribute_names] || %{}

  @doc false
  # `expression_attribute_values` as tagged values (DynamoDB JSON or plain); shared with
  # Dynamo.Table.Stream.Export.
  def values(opts) do
    case opts[:expression_attribute_values] do
      nil ->
        %{}

      values when is_map(values) or is_list(values) ->
        try do
          Codec.encode_item(values)
        rescue
          e in ArgumentError ->
            reraise ArgumentError,
                    "expression_attribute_values: #{Exception.message(e)}",
                    __STACKTRACE__
        end

      other ->
        raise ArgumentError, "expression_attribute_values must be a map, got: #{inspect(other)}"
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

  # One request, in its telemetry span, waited for at most `opts.timeout`. The NIF answers
  # with the value and the SDK's retries and throttles, which only the span reports. `tables`
  # is the schema, or the tables of a call that may touch several.
  defp call(operation, tables, start, opts) do
    request = Telemetry.dynamo_request(operation, table_names(tables))

    case Call.await(start, Map.get(opts, :timeout), &Error.from_native/1, request) do
      {:ok, {value, %{retries: _, throttles: _}}} -> {:ok, value}
      error -> error
    end
  end

  # One table is named alone; several (a transaction, a batch of statements) as a list.
  defp table_names(schema) when is_atom(schema), do: schema.__dynamo__(:table)

  defp table_names(tables) when is_list(tables) do
    case Enum.uniq(tables) do
      [table] -> table
      tables -> tables
    end
  end

  defp ok_only({:ok, _}), do: :ok
  defp ok_only(error), do: error

  defp map_ok({:ok, value}, fun), do: {:ok, fun.(value)}
  defp map_ok(error, _fun), do: error
end
