defmodule Dynamo.Table.Stream do
  alias CloudStreams.{Native, Options, PullStream, Telemetry}
  alias Dynamo.{Codec, Schema}

  @type schema :: module()
  @typedoc "Where each segment of a scan stands (see the module doc)."
  @type checkpoint :: %{String.t() => term()}

  # DynamoDB's Limit is a 32-bit integer and it allows 1,000,000 segments. Segments run at
  # most @default_concurrency at once unless asked: each running one holds a request and a
  # page, so "all at once" must not mean a million.
  @max_page_size 2_147_483_647
  @max_prefetch_pages 10_000
  @max_segments Dynamo.Table.max_segments()
  @default_concurrency 64
  # Each running segment is a request in flight: a thousand is more than a table needs, and
  # a million took 50 s to spawn and tear down on a failing scan.
  @max_concurrency 1_000
  # Read capacity units per second: below 0.001 a pause would last for ages; no table
  # reaches 10^9.
  @min_read_capacity 0.001
  @max_read_capacity 1.0e9

  @stream_opts [
    page_size: [
      type: {:in, 1..@max_page_size},
      default: 100,
      doc:
        "DynamoDB's `Limit`: items evaluated per request, at most 2,147,483,647 (a 32-bit " <>
          "integer). DynamoDB also ends a page at 1 MB."
    ],
    prefetch_pages: [
      type: {:in, 0..@max_prefetch_pages},
      default: 2,
      doc:
        "pages fetched ahead of the consumer, at most #{@max_prefetch_pages}. Buffered " <>
          "memory is at most `prefetch_pages` plus one page per segment being read (two for a scan or query read one segment at a time: one arriving, one being decoded)."
    ],
    max_read_capacity: [
      type: {:or_nil, {:number, @min_read_capacity, @max_read_capacity}},
      doc:
        "read capacity units per second the whole stream may consume, from the " <>
          "`ConsumedCapacity` DynamoDB reports with each page (from 0.001 to 10^9). " <>
          "Requests are paced to stay under it, so a scan can run beside production " <>
          "traffic. Default: no cap."
    ],
    timeout: [
      type: :timeout,
      default: 120_000,
      doc:
        "the longest wait for one page, in ms, after DynamoDB's own retries. Throttling " <>
          "and 5xx answers are retried with jittered backoff (`Dynamo.Config`'s " <>
          "`:max_attempts`)."
    ],
    on_checkpoint: [
      type: {:or_nil, {:fun, 1}},
      doc:
        "a function called with a checkpoint (see below) each time a page has been " <>
          "entirely consumed, and once at the end."
    ],
    resume: [type: {:or_nil, :map}, doc: "a checkpoint to continue from."]
  ]

  # The stream's own :timeout (per page) replaces the single call's.
  @read_opts Keyword.drop(Dynamo.Table.read_options(), [
               :limit,
               :select,
               :exclusive_start_key,
               :timeout
             ]) ++
               @stream_opts

  @scan_opts @read_opts ++
               [
                 exclusive_start_key:
                   Keyword.fetch!(Dynamo.Table.read_options(), :exclusive_start_key)
               ]

  @parallel_opts @read_opts ++
                   [
                     segments: [
                       type: {:in, 1..@max_segments},
                       default: 4,
                       doc:
                         "segments read at the same time, at most 1,000,000 (DynamoDB's limit)."
                     ],
                     max_concurrency: [
                       type: {:or_nil, {:in, 1..@max_concurrency}},
                       doc:
                         "segments read at once, at most #{@max_concurrency} (default: all of " <>
                           "them, up to #{@default_concurrency}; each running segment holds a " <>
                           "request and a page)."
                     ]
                   ]

  @query_opts @scan_opts ++
                Keyword.take(Dynamo.Table.query_options(), [
                  :key_condition_expression,
                  :scan_index_forward
                ])

  @moduledoc """
  Whole tables as lazy streams of structs: `scan/2`, `parallel_scan/2`, `query/2`, and
  `scan_to_process/3` for message-driven consumers. `Dynamo.Table.Stream.Producer` is the
  GenStage producer.

  Every stream runs on the pull-stream core (architecture §2): a native task fetches pages into a
  buffer bounded in pages, and stops fetching when it is full. Memory depends on the page size
  and the number of segments, never on the table. Nothing is fetched before the stream is
  enumerated, and halting it (`Enum.take/2`, an exception, the death of the consuming process)
  stops the fetching. A stream may be built in one process and enumerated in another
  (`Task.async_stream/3`, `Flow.from_enumerable/2`): it only ever sends a message to the
  process that is waiting for it.

      Dynamo.Table.Stream.scan(User, page_size: 500)
      |> Stream.filter(& &1.active)
      |> Enum.take(1000)

  ## Options

  Every stream takes the options of `Dynamo.Table.scan/2` that describe what to read:
  `:filter_expression`, `:projection_expression`, `:expression_attribute_names`,
  `:expression_attribute_values` (DynamoDB JSON or plain values), `:consistent_read`,
  `:index_name`, and `:config` (see `Dynamo.Config`). Besides:

  #{Options.docs(@stream_opts)}

  ## Errors

  A failing request raises `Dynamo.Error` from the enumeration, after every item before it
  was delivered; in a parallel scan the message names the segment. A segment is never
  silently dropped.

  ## Checkpoints

  A checkpoint is a plain map with string keys, so it survives `Jason.encode!/1` and
  `Jason.decode!/1` and `:erlang.term_to_binary/1` unchanged:

      %{"segments" => 4, "positions" => %{"0" => "done", "1" => %{"id" => %{"S" => "u42"}}, "2" => nil, "3" => "done"}}

  Each segment's position is `nil` (not started), a `last_evaluated_key` (continue after it)
  or `"done"`. It counts only pages whose items have all been consumed, so resuming from it
  reads again at most the page that was being consumed when the stream stopped, and never
  skips an item. Pass it back as `resume:` with the same options (and the same `:segments`).
  """

  @doc """
  A lazy, sequential stream of every item of the schema's table, as structs.

  Takes the options in the module doc, and `:exclusive_start_key` (a `last_evaluated_key` of
  `Dynamo.Table.scan/2`) to start after it.

      iex> Dynamo.Table.Stream.scan(DocUser) |> Enum.count()
      3
  """
  @spec scan(schema(), keyword()) :: Enumerable.t()
  def scan(schema, opts \\ []) do
    Schema.schema!(schema, "Dynamo.Table.Stream.scan/2")
    opts = Options.validate!(opts, @scan_opts, "Dynamo.Table.Stream.scan/2")
    read_stream(schema, :scan, :scan, opts, 1, 1, start_key(opts))
  end

  @doc """
  A lazy stream of every item of the table, read as `:segments` segments, `:max_concurrency`
  of them at once. Items of all segments come in
  one stream, in no particular order. Each segment paginates on its own; memory stays bounded
  by `prefetch_pages` plus one page per running segment (two when one segment runs at a time).

  Works under `Flow.from_enumerable/2`, which enumerates it inside another process.

  `nodes:` (a list of connected nodes, e.g. `[node() | Node.list()]`) reads the segments on
  those nodes, pulling one page at a time from each, and resumes a lost node's segments
  elsewhere from their last delivered positions: see `Dynamo.Table.Stream.Distributed` and
  `guides/distributed_systems.md`.

  Options, besides those in the module doc:

  #{Options.docs(Keyword.take(@parallel_opts, [:segments, :max_concurrency]))}

      iex> Dynamo.Table.Stream.parallel_scan(DocUser, segments: 3)
      ...> |> Enum.map(& &1.id) |> Enum.sort()
      ["u1", "u2", "u3"]
  """
  @spec parallel_scan(schema(), keyword()) :: Enumerable.t()
  def parallel_scan(schema, opts \\ []) do
    Schema.schema!(schema, "Dynamo.Table.Stream.parallel_scan/2")
    opts = keyword!(opts, "Dynamo.Table.Stream.parallel_scan/2")
    {nodes, opts} = Keyword.pop(opts, :nodes)
    opts = Options.validate!(opts, @parallel_opts, "Dynamo.Table.Stream.parallel_scan/2")

    if nodes do
      Dynamo.Table.Stream.Distributed.stream(schema, opts, nodes)
    else
      read_stream(schema, :parallel_scan, :scan, opts, opts.segments, concurrency(opts), nil)
    end
  end

  @doc """
  A lazy stream of the items a query selects: `:key_condition_expression` (required) with its
  `:expression_attribute_values`, `:index_name`, `:filter_expression`, `:scan_index_forward`
  (default true: ascending sort key), `:exclusive_start_key`, and the options in the module doc.

      iex> Dynamo.Table.Stream.query(DocUser,
      ...>   key_condition_expression: "id = :id",
      ...>   expression_attribute_values: %{":id" => "u2"}
      ...> ) |> Enum.map(& &1.email)
      ["b@example.com"]
  """
  @spec query(schema(), keyword()) :: Enumerable.t()
  def query(schema, opts) do
    Schema.schema!(schema, "Dynamo.Table.Stream.query/2")
    opts = Options.validate!(opts, @query_opts, "Dynamo.Table.Stream.query/2")
    read_stream(schema, :query, :query, opts, 1, 1, start_key(opts))
  end

  # `message_format`, `completion_message` and `error_message` are any term by design: the
  # caller's own message shapes.
  @sender_opts [
    batch_size: [type: {:in, 1..@max_prefetch_pages}, default: 1, doc: "items per message."],
    message_format: [
      type: :any,
      doc:
        "the item message: a term in which the atom `:item` (or `:items`) stands for the " <>
          "item (or the batch), like the defaults `{:scan_item, :item}` and " <>
          "`{:scan_batch, :items}`; or a function of the item (or batch) returning the message."
    ],
    completion_message: [type: :any, default: :scan_complete, doc: "sent at the end."],
    error_message: [
      type: :any,
      default: {:scan_error, :error},
      doc: "a term in which `:error` stands for the `Dynamo.Error`, or a function of it."
    ],
    max_mailbox: [
      type: {:in, 1..@max_page_size},
      default: 1_000,
      doc:
        "the scanner pauses while `pid`'s mailbox holds this many messages or more, so a " <>
          "slow receiver is never flooded. It counts every message in the mailbox, not only " <>
          "the scan's: a receiver that leaves other messages unread holds the scan back. " <>
          "Pacing costs nothing while the receiver keeps up (the mailbox is read only after " <>
          "as many sends as could fill it); a paused scanner looks again after 1 ms, backing " <>
          "off to 64 ms. A receiver on another node is not paced."
    ]
  ]

  @doc """
  Scans the table in a supervised process that sends the items to `pid`; returns
  `{:ok, scanner_pid}`.

  Messages: `{:scan_item, item}` for each item, or `{:scan_batch, items}` with `:batch_size`
  above 1; then exactly one of `:scan_complete` or `{:scan_error, %Dynamo.Error{}}`. Every
  way a scan can end reaches the receiver: a DynamoDB error, an exception raised by a
  `:message_format` function, an item that cannot be decoded, even the scanner process being
  killed, each end in `{:scan_error, error}` (`type: :internal` for failures that are not
  DynamoDB's, with what happened in its message).
  Options: those of `parallel_scan/2` (`:segments` defaults to 1 here), and

  #{Options.docs(@sender_opts)}

  The scanner runs under `CloudStreams.TaskSupervisor` and stops (with its native fetching)
  as soon as `pid` exits.

      iex> {:ok, _scanner} = Dynamo.Table.Stream.scan_to_process(DocUser, self(), batch_size: 10)
      iex> receive do {:scan_batch, users} -> length(users) end
      3
      iex> receive do :scan_complete -> :ok end
      :ok
  """
  @spec scan_to_process(schema(), pid(), keyword()) :: {:ok, pid()} | {:error, term()}
  def scan_to_process(schema, pid, opts \\ [])

  def scan_to_process(schema, pid, opts) when is_pid(pid) do
    Schema.schema!(schema, "Dynamo.Table.Stream.scan_to_process/3")
    opts = keyword!(opts, "Dynamo.Table.Stream.scan_to_process/3")

    own = @sender_opts
    {own_opts, scan_opts} = Keyword.split(opts, Keyword.keys(own))
    scan_opts = Keyword.put_new(scan_opts, :segments, 1)
    # Validated here, in the caller, so a bad option raises where it was written.
    stream = parallel_scan(schema, scan_opts)
    own_opts = Options.validate!(own_opts, own, "Dynamo.Table.Stream.scan_to_process/3")

    Dynamo.Table.Stream.Sender.start(
      stream,
      pid,
      Map.put(own_opts, :table, schema.__dynamo__(:table))
    )
  end

  def scan_to_process(_schema, pid, _opts) do
    raise ArgumentError,
          "Dynamo.Table.Stream.scan_to_process/3 sends to a pid, got: #{inspect(pid)}"
  end

  @doc false
  # The parallel scan's option definitions, reused by the table export.
  def parallel_scan_options, do: @parallel_opts

  @doc false
  # The Producer's source: a parallel scan, validated as `function` would validate it.
  def parallel_source(schema, opts, function) do
    opts = Options.validate!(opts, @parallel_opts, function)
    {open, state, decode} = source(schema, :scan, opts, opts.segments, concurrency(opts), nil)
    {open, state, decode, opts.timeout}
  end

  defp concurrency(opts), do: opts.max_concurrency || min(opts.segments, @default_concurrency)

  defp keyword!(opts, function) do
    unless Keyword.keyword?(opts) do
      raise ArgumentError,
            "#{function} expects a keyword list of options, got: #{CloudStreams.Redact.inspect(opts)}"
    end

    opts
  end

  # The native stream and the page decoder: returns `{open_fun, decode_state, decode_fun}`
  # where `decode_fun.(native_page | :done, state)` returns `{structs, state}` and reports
  # checkpoints.
  defp source(schema, operation, opts, segments, max_concurrency, start_key) do
    {positions, starts} = starts(opts.resume, segments, start_key)
    open = opener(schema, operation, opts, segments, starts, max_concurrency)

    state = %{
      schema: schema,
      segments: segments,
      positions: positions,
      consumed: nil,
      on_checkpoint: opts.on_checkpoint,
      page_event: %{operation: operation, table: schema.__dynamo__(:table)}
    }

    {open, state, &decode/2}
  end

  @doc false
  # Pages of some segments of a scan of `segments`, each as `{segment, structs, position}`:
  # what a node reads for `Dynamo.Table.Stream.Distributed`. `starts` is `[{segment, key | nil}]`.
  def segment_pages(schema, opts, segments, starts) do
    opts = Options.validate!(opts, @parallel_opts, "Dynamo.Table.Stream.parallel_scan/2")
    starts = for {s, key} <- starts, do: {s, key && Codec.encode_item(key)}
    open = opener(schema, :scan, opts, segments, starts, concurrency(opts))
    page_event = %{operation: :scan, table: schema.__dynamo__(:table)}

    pages = fn
      :done, acc ->
        {[], acc}

      {segment, items, last_key, request}, acc ->
        {structs, position} = page(items, last_key, schema)
        Telemetry.dynamo_page(page_event, segment, length(structs), request)
        {[{segment, structs, position}], acc}
    end

    PullStream.new(open,
      timeout: opts.timeout,
      error: &Dynamo.Error.from_native/1,
      reduce: {nil, pages}
    )
  end

  defp opener(schema, operation, opts, segments, starts, max_concurrency) do
    total = if segments > 1, do: segments

    read =
      Dynamo.Table.read(
        schema,
        Map.merge(opts, %{limit: opts.page_size, select: nil, exclusive_start_key: nil}),
        key_condition_expression: opts[:key_condition_expression],
        forward: Map.get(opts, :scan_index_forward, true)
      )

    {config, read} = Map.pop!(read, :config)
    # The native side builds the structs (native/.../dynamo/structs.rs).
    struct_plan = Schema.native_plan(schema)

    fn ->
      Native.dynamo_read_stream(
        config,
        operation,
        read,
        total,
        starts,
        max_concurrency,
        opts.prefetch_pages,
        opts.max_read_capacity && opts.max_read_capacity * 1.0,
        struct_plan
      )
    end
  end

  # `name`: the stream's name in its telemetry events (`parallel_scan` is a `:scan` operation).
  defp read_stream(schema, name, operation, opts, segments, max_concurrency, start_key) do
    {open, state, decode} = source(schema, operation, opts, segments, max_concurrency, start_key)
    metadata = %{operation: name, table: schema.__dynamo__(:table), segments: segments}

    PullStream.new(open,
      timeout: opts.timeout,
      error: &Dynamo.Error.from_native/1,
      reduce: {state, decode},
      telemetry: {[:cloud_streams, :dynamo, name], metadata}
    )
  end

  # A page arrives: the page before it has been consumed, so its position is now safe.
  defp decode({segment, items, last_key, request}, state) do
    state = commit(state)
    {structs, position} = page(items, last_key, state.schema)
    Telemetry.dynamo_page(state.page_event, segment, length(structs), request)
    {structs, %{state | consumed: {segment, position}}}
  end

  defp decode(:done, state), do: {[], commit(state)}

  # A native page's structs, and the position of its segment after it.
  defp page(items, last_key, schema) do
    {Schema.finish_items(schema, items),
     if(last_key, do: Codec.item_to_json(last_key), else: "done")}
  end

  @doc false
  # The page handed out last has been consumed (the consumer asked for more): its position
  # counts from now, and `on_checkpoint` hears of it. Shared with Distributed, whose state
  # holds the same keys.
  def commit(%{consumed: nil} = state), do: state

  def commit(%{consumed: {segment, position}} = state) do
    state = %{state | consumed: nil, positions: Map.put(state.positions, segment, position)}

    if state.on_checkpoint do
      state.on_checkpoint.(checkpoint(state))
    end

    state
  end

  defp checkpoint(state) do
    positions =
      Map.new(0..(state.segments - 1), fn s ->
        {Integer.to_string(s), Map.get(state.positions, s)}
      end)

    %{"segments" => state.segments, "positions" => positions}
  end

  defp start_key(%{exclusive_start_key: nil}), do: nil
  defp start_key(%{exclusive_start_key: key, resume: nil}), do: Codec.encode_item(key)

  defp start_key(_opts),
    do: raise(ArgumentError, "exclusive_start_key: and resume: cannot be used together")

  @doc false
  # Where each segment starts (`%{segment => nil | key | "done"}`, every segment), from
  # `resume:`.
  def initial_positions(%{resume: nil}, segments), do: Map.new(0..(segments - 1), &{&1, nil})
  def initial_positions(opts, segments), do: opts.resume |> starts(segments, nil) |> elem(0)

  # The known positions (a segment not in them has not started) and what the native stream
  # reads: `{:all, segments, start_key}` for a fresh scan, so nothing is made per segment up
  # front, or the `{segment, start_key | nil}` list of a resumed one.
  defp starts(nil, segments, start_key), do: {%{}, {:all, segments, start_key}}

  defp starts(%{"segments" => segments, "positions" => given} = checkpoint, segments, _)
       when is_map(given) do
    positions =
      Map.new(0..(segments - 1), fn s ->
        case Map.fetch(given, Integer.to_string(s)) do
          {:ok, position} when is_nil(position) or position == "done" or is_map(position) ->
            {s, position}

          _ ->
            raise ArgumentError,
                  "invalid resume: checkpoint, no valid position for segment #{s}: #{inspect(checkpoint)}"
        end
      end)

    starts =
      for {s, position} <- Enum.sort(positions), position != "done" do
        {s, position && Codec.encode_item(position)}
      end

    {positions, starts}
  end

  defp starts(%{"segments" => other}, segments, _) when is_integer(other) do
    raise ArgumentError,
          "resume: holds a checkpoint of #{other} segments, but this scan has #{segments}"
  end

  defp starts(other, _segments, _) do
    raise ArgumentError,
          "invalid resume: expected a checkpoint given to on_checkpoint:, got: #{inspect(other)}"
  end

  @doc """
  A lazy stream of every item a PartiQL statement returns, as structs of `schema`, over all
  its pages. It runs on the same pull core as the scans: at most `:prefetch_pages` pages are
  fetched ahead of the consumer, halting the stream (`Enum.take/2`) stops the fetching, and it
  can be built in one process and consumed in another (`Task.async_stream/3`, Flow).

  Options: `:parameters` (the values of the statement's `?`, plain Elixir values, in order),
  `:consistent_read`, `:page_size` (DynamoDB's `Limit`: items evaluated per request, default
  100), `:prefetch_pages` (default 2), `:timeout` (the longest wait for one page, default
  120,000 ms) and `:config`. A failing request raises `Dynamo.Error`.

      iex> Dynamo.Table.Stream.execute_statement(DocUser, ~s(SELECT * FROM "cloud_streams_doc_users" WHERE active = ?),
      ...>   parameters: [true], page_size: 1
      ...> ) |> Enum.map(& &1.id) |> Enum.sort()
      ["u1", "u2", "u3"]
  """
  @spec execute_statement(schema(), String.t(), keyword()) :: Enumerable.t()
  def execute_statement(schema, statement, opts \\ []) do
    function = "Dynamo.Table.Stream.execute_statement/3"

    opts =
      Options.validate!(
        opts,
        Keyword.take(Dynamo.Table.statement_options(), [:parameters, :consistent_read, :config]) ++
          Keyword.take(@stream_opts, [:page_size, :prefetch_pages, :timeout]),
        function
      )

    Dynamo.Table.schema!(schema, function)
    statement = Dynamo.Table.statement(statement, Map.put(opts, :limit, opts.page_size), function)
    config = Dynamo.Config.native(opts.config)
    # The native side builds the structs (native/.../dynamo/structs.rs).
    struct_plan = Schema.native_plan(schema)

    page_event = %{operation: :execute_statement, table: schema.__dynamo__(:table)}

    pages = fn
      :done, acc ->
        {[], acc}

      {items, request}, acc ->
        structs = Schema.finish_items(schema, items)
        Telemetry.dynamo_page(page_event, 0, length(structs), request)
        {structs, acc}
    end

    PullStream.new(
      fn ->
        Native.dynamo_statement_stream(config, statement, opts.prefetch_pages, struct_plan)
      end,
      timeout: opts.timeout,
      error: &Dynamo.Error.from_native/1,
      reduce: {nil, pages},
      telemetry: {[:cloud_streams, :dynamo, :execute_statement], page_event}
    )
  end

  ## Table export (issue 16)

  @doc """
  Exports the whole table to `store` under `prefix`, in DynamoDB's own export format (or
  NDJSON), natively end to end; returns when the export is complete.

  `schema_or_table` is a `Dynamo.Schema` module or a table name (then `:config` gives the
  connection). Returns `{:ok, %{export_id:, items:, bytes:, files:, manifest:}}` (`bytes`:
  the compressed bytes of the data files; `manifest`: the path of
  `manifest-summary.json`), or `{:error, %Dynamo.Error{} | %ObjectStoreX.Error{}}` naming
  the segment and the file that failed. See `Dynamo.Table.Stream.Export` for the layout,
  the formats, resuming and every option.

      {:ok, %{items: 1_000, manifest: manifest}} =
        Dynamo.Table.Stream.export(User, store, "backups/users", segments: 4)
  """
  @spec export(schema() | String.t(), ObjectStoreX.Store.t(), String.t(), keyword()) ::
          {:ok, Dynamo.Table.Stream.Export.result()}
          | {:error, Dynamo.Error.t() | ObjectStoreX.Error.t()}
  def export(schema_or_table, store, prefix, opts \\ []) do
    schema_or_table
    |> Dynamo.Table.Stream.Export.prepare!(store, prefix, opts)
    |> Dynamo.Table.Stream.Export.run()
  end

  @doc """
  `export/4` in a task under the library's supervisor (not linked to the caller). Options
  are validated in the caller. Await it with `Task.await/2` or `Task.yield/2`; stop it with
  `Task.shutdown/2`, which stops the export and aborts its uploads in progress (resume it
  later with `resume: true`).

      task = Dynamo.Table.Stream.async_export(User, store, "backups/users")
      {:ok, %{items: _}} = Task.await(task, :infinity)
  """
  @spec async_export(schema() | String.t(), ObjectStoreX.Store.t(), String.t(), keyword()) ::
          Task.t()
  def async_export(schema_or_table, store, prefix, opts \\ []) do
    job =
      Dynamo.Table.Stream.Export.prepare!(
        schema_or_table,
        store,
        prefix,
        opts,
        "Dynamo.Table.Stream.async_export/4"
      )

    Task.Supervisor.async_nolink(CloudStreams.TaskSupervisor, fn ->
      Dynamo.Table.Stream.Export.run(job)
    end)
  end

  # Table import and reading exports (Dynamo.Table.Stream.Import).

  @doc """
  Imports a table export (DynamoDB's own `DYNAMODB_JSON` export, or ours) from `store` under
  `prefix` into the table of `schema_or_table` (a `Dynamo.Schema` module or a table name):
  every data file streamed, gunzipped and decoded natively and written with `BatchWriteItem`,
  resumable with `resume: true` after a crash. Returns `{:ok, %{items:, files:, bytes:}}` or
  `{:error, %Dynamo.Error{} | %ObjectStoreX.Error{}}`. Format, resume and options:
  `Dynamo.Table.Stream.Import`.

      iex> {:error, error} = Dynamo.Table.Stream.import(ObjectStoreX.new!(:memory), "backups", "users")
      iex> error.kind
      :not_found
  """
  @spec import(ObjectStoreX.Store.t(), String.t(), schema() | String.t(), keyword()) ::
          {:ok, Dynamo.Table.Stream.Import.totals()}
          | {:error, Dynamo.Error.t() | ObjectStoreX.Error.t()}
  def import(store, prefix, schema_or_table, opts \\ []),
    do: Dynamo.Table.Stream.Import.import(store, prefix, schema_or_table, opts)

  @doc """
  `import/4` in a task under `CloudStreams.TaskSupervisor`: await it with `Task.await/2`,
  stop it with `Task.shutdown/2` (see `Dynamo.Table.Stream.Import.async_import/4`).

      iex> task = Dynamo.Table.Stream.async_import(ObjectStoreX.new!(:memory), "backups", "users")
      iex> {:error, %ObjectStoreX.Error{kind: :not_found}} = Task.await(task)
  """
  @spec async_import(ObjectStoreX.Store.t(), String.t(), schema() | String.t(), keyword()) ::
          Task.t()
  def async_import(store, prefix, schema_or_table, opts \\ []),
    do: Dynamo.Table.Stream.Import.async_import(store, prefix, schema_or_table, opts)

  @doc """
  The items of the export under `prefix` as a lazy stream: plain maps (values decoded by
  `Dynamo.Codec.decode/1`), or structs with `schema:`. Options and errors:
  `Dynamo.Table.Stream.Import`.

      iex> store = ObjectStoreX.new!(:memory)
      iex> dir = "backups/AWSDynamoDB/1700000000000-0a1b2c3d"
      iex> :ok = ObjectStoreX.put(store, dir <> "/data/a.json.gz",
      ...>   :zlib.gzip(~s({"Item":{"id":{"S":"u1"},"visits":{"N":"42"}}}\\n)))
      iex> :ok = ObjectStoreX.put(store, dir <> "/manifest-files.json",
      ...>   ~s({"itemCount":1,"dataFileS3Key":"backups/AWSDynamoDB/1700000000000-0a1b2c3d/data/a.json.gz"}\\n))
      iex> :ok = ObjectStoreX.put(store, dir <> "/manifest-summary.json", ~s({"outputFormat":"DYNAMODB_JSON"}))
      iex> Dynamo.Table.Stream.read_export(store, "backups") |> Enum.to_list()
      [%{"id" => "u1", "visits" => 42}]
  """
  @spec read_export(ObjectStoreX.Store.t(), String.t(), keyword()) :: Enumerable.t()
  def read_export(store, prefix, opts \\ []),
    do: Dynamo.Table.Stream.Import.read_export(store, prefix, opts)
end
