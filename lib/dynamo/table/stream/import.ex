defmodule Dynamo.Table.Stream.Import do
  alias CloudStreams.{Call, Job, Native, Options, PullStream, Telemetry}
  alias Dynamo.{Codec, Schema}
  alias Dynamo.Table.Stream.Export
  alias ObjectStoreX.Store

  @max_concurrency 1_000
  @max_prefetch_pages 10_000
  # Items per page of `read_export/3`: what a scan page holds by default.
  @page_size 100

  @import_opts [
    max_concurrency: [
      type: {:in, 1..@max_concurrency},
      default: 8,
      doc: "`BatchWriteItem` requests (25 items each) in flight, at most #{@max_concurrency}."
    ],
    max_write_capacity: [
      type: {:or_nil, {:number, 0.001, 1.0e9}},
      doc:
        "write capacity units per second the import may consume, from the " <>
          "`ConsumedCapacity` of each answer (from 0.001 to 10^9). Default: no cap. A " <>
          "request of 25 items costs 25 units, more for items over 1 KB, and waits for " <>
          "them under the cap: `:timeout` must be longer than that wait (a cap too low for " <>
          "25 units is refused)."
    ],
    resume: [
      type: :boolean,
      default: false,
      doc:
        "continue from the import's progress record (see \"Import\"); false starts afresh " <>
          "and rewrites the record."
    ],
    progress_record: [
      type: :boolean,
      default: true,
      doc:
        "write the progress record into the export's store. `false` for a store the import " <>
          "may only read (another account's bucket): nothing is written there, and the " <>
          "import cannot be resumed."
    ],
    export_id: [
      type: {:custom, Export, :cast_export_id, []},
      doc: "the export to read (default: the newest complete one under the prefix)."
    ],
    on_progress: [
      type: {:or_nil, {:fun, 1}},
      doc:
        "called with `%{items:, files:, bytes:, total_items:, total_files:}` (the totals so " <>
          "far, and the export's own item count, `nil` when its manifests give none, and " <>
          "number of data files) each time the progress record is written (with " <>
          "`progress_record: false`, at the same moments). If it raises, " <>
          "the import stops (it can be resumed) and the exception propagates."
    ],
    timeout: [
      type: :timeout,
      default: 120_000,
      doc:
        "the longest time without progress, in ms. When it passes, the import stops and " <>
          "`{:error, %Dynamo.Error{kind: :timeout}}` is returned; `resume: true` continues it."
    ],
    config: [
      type: :keyword_list,
      default: [],
      doc: "overrides of the application's DynamoDB configuration (see `Dynamo.Config`)."
    ]
  ]

  @read_opts [
    schema: [
      type: {:or_nil, {:custom, __MODULE__, :cast_schema, []}},
      doc:
        "a `Dynamo.Schema` module: items come as its structs. Default: plain maps, each " <>
          "value decoded by `Dynamo.Codec.decode/1`."
    ],
    export_id: Keyword.fetch!(@import_opts, :export_id),
    prefetch_pages: [
      type: {:in, 0..@max_prefetch_pages},
      default: 2,
      doc: "pages of #{@page_size} items read ahead of the consumer."
    ],
    timeout: [
      type: :timeout,
      default: 120_000,
      doc: "the longest wait for one page, in ms."
    ]
  ]

  @moduledoc """
  Loads a table export from an object store into a DynamoDB table, and reads an export as a
  stream of items: `Dynamo.Table.Stream.import/4`, `async_import/4` and `read_export/3`.

  ## What is read

  A DynamoDB export, as `ExportTableToPointInTime` writes it in `DYNAMODB_JSON` format or as
  `Dynamo.Table.Stream.export/4` writes it (in that format or `format: :ndjson`, whose rules
  are in `Dynamo.Table.Stream.Export`), under `<prefix>/AWSDynamoDB/<export_id>/`:
  `manifest-summary.json` (its presence means the export is complete), `manifest-files.json`
  (one line per data file, with its `itemCount` and `md5Checksum`) and the gzipped data files
  it lists. The export read is the one named by `export_id:`, else the newest complete one
  under the prefix. An export without its summary (still running, or stopped) is refused with
  `kind: :precondition_failed`; no export at all is `:not_found`.

  The keys in the manifests (`dataFileS3Key`, `manifestFilesS3Key`) are relative to the
  bucket, with the export's prefix (DynamoDB's) or without it: both are accepted, and
  whatever precedes `AWSDynamoDB/<export_id>/` is ignored, so a store rooted anywhere above
  the export reads it.

  Everything happens natively: each data file is streamed from the store, gunzipped (several
  gzip members in one file included) and decoded line by line, and for an import written
  with `BatchWriteItem`, so no item crosses into the BEAM. Memory per file is about one
  network frame and its decompressed output, whatever the export's size. Each file's MD5 and
  item count are checked against the manifest when the file has been read: a mismatch, bad
  gzip or a malformed line is an `ObjectStoreX.Error` with `kind: :invalid_argument` naming
  the file (and the line), after the items before it were written (or emitted).

  ## Import

  Items are put 25 per request, up to `:max_concurrency` requests in flight. Items DynamoDB
  leaves unprocessed are retried with jittered exponential backoff, 10 times, then the import
  fails with `kind: :throttled`. `:max_write_capacity` paces requests by the
  `ConsumedCapacity` DynamoDB reports, like `max_read_capacity` paces a scan; each request
  holds one unit per item (the least a put costs) before it is sent, so requests in flight at
  once are paced too.

  An import keeps a progress record of its own in the export's store,
  `<prefix>/AWSDynamoDB/<export_id>/_import/<table>.json`: for each data file, the prefix of
  its lines whose items are all written (requests finish out of order, so only a contiguous
  prefix counts) and whether it is done. It is rewritten when a file is done and at least
  every second within one. After a crash (the process, the node or the VM), the same call with
  `resume: true` skips the done files and the acknowledged lines. What it writes again, the
  requests that were in flight, are puts of the same items: DynamoDB replaces an item by its
  key, so the table ends with exactly one copy of every item. Items are written as they are in
  the export: an item already in the table with the same key is replaced. An export in a
  store the import may only read is imported with `progress_record: false`: nothing is
  written to the store, and the import cannot be resumed.

  The result's `items`, `files` and `bytes` (compressed bytes of the data files done) count
  the whole import, what was done before a resume included. Failures are
  `{:error, %ObjectStoreX.Error{}}` for the store (the export, its files, the progress record)
  and `{:error, %Dynamo.Error{}}` for DynamoDB, whose message names the file and the lines
  whose items could not be written.

  ## Options of `import/4` and `async_import/4`

  #{Options.docs(@import_opts)}

  ## Options of `read_export/3`

  #{Options.docs(@read_opts)}
  """

  @doc false
  def import_options, do: @import_opts

  @doc false
  def read_options, do: @read_opts

  @typedoc "What an import did: items written, data files done, their compressed bytes."
  @type totals :: %{items: non_neg_integer(), files: non_neg_integer(), bytes: non_neg_integer()}

  @doc """
  Imports the export under `prefix` in `store` into the table of `schema_or_table` (a
  `Dynamo.Schema` module or a table name). See the module doc.

      iex> {:error, error} = Dynamo.Table.Stream.Import.import(ObjectStoreX.new!(:memory), "backups", "users")
      iex> {error.kind, error.message}
      {:not_found, "no export under backups/AWSDynamoDB"}
  """
  @spec import(Store.t(), String.t(), module() | String.t(), keyword()) ::
          {:ok, totals()} | {:error, Dynamo.Error.t() | ObjectStoreX.Error.t()}
  def import(store, prefix, schema_or_table, opts \\ []) do
    store
    |> prepare!(prefix, schema_or_table, opts, "Dynamo.Table.Stream.import/4")
    |> run()
  end

  @doc """
  Starts `import/4` in a task under `CloudStreams.TaskSupervisor`, not linked to the caller:
  `Task.await/2` or `Task.yield/2` give its result, `Task.shutdown/2` stops it (the native
  import stops with the task; `resume: true` continues it later). Bad arguments raise here,
  in the caller.
  """
  @spec async_import(Store.t(), String.t(), module() | String.t(), keyword()) :: Task.t()
  def async_import(store, prefix, schema_or_table, opts \\ []) do
    request = prepare!(store, prefix, schema_or_table, opts, "Dynamo.Table.Stream.async_import/4")
    Task.Supervisor.async_nolink(CloudStreams.TaskSupervisor, fn -> run(request) end)
  end

  @doc """
  The items of the export under `prefix`, as a lazy stream: plain maps (attribute names to
  values decoded by `Dynamo.Codec.decode/1`, as `Dynamo.Table.get_item/3` decodes an untyped
  map) or, with `schema:`, structs of that schema. Files are read one after the other, a page
  at a time, only as the stream is consumed; halting it stops the reading. A corrupt file or
  a failing store raises `ObjectStoreX.Error`.
  """
  @spec read_export(Store.t(), String.t(), keyword()) :: Enumerable.t()
  def read_export(store, prefix, opts \\ []) do
    function = "Dynamo.Table.Stream.read_export/3"
    Store.check!(store, function)
    prefix = Export.prefix!(prefix, function)
    opts = Options.validate!(opts, @read_opts, function)

    {plan, pages} =
      case opts.schema do
        nil ->
          {nil,
           fn
             :done, acc -> {[], acc}
             items, acc -> {Enum.map(items, &Codec.decode({:m, &1})), acc}
           end}

        schema ->
          {Schema.native_plan(schema),
           fn
             :done, acc -> {[], acc}
             items, acc -> {Schema.finish_items(schema, items), acc}
           end}
      end

    metadata =
      Map.merge(Telemetry.object_store_metadata(store, prefix, :read_export), %{
        schema: opts.schema,
        export_id: opts.export_id
      })

    PullStream.new(
      fn ->
        Native.dynamo_export_stream(
          store.resource,
          prefix,
          opts.export_id,
          @page_size,
          opts.prefetch_pages,
          plan
        )
      end,
      timeout: opts.timeout,
      error: &ObjectStoreX.Error.from_native/1,
      reduce: {nil, pages},
      telemetry: {[:cloud_streams, :dynamo, :read_export], metadata}
    )
  end

  @doc false
  def cast_schema(schema) do
    if is_atom(schema) and Code.ensure_loaded?(schema) and
         function_exported?(schema, :__dynamo__, 1),
       do: {:ok, schema},
       else: {:error, "a Dynamo.Schema module"}
  end

  defp prepare!(store, prefix, schema_or_table, opts, function) do
    Store.check!(store, function)
    prefix = Export.prefix!(prefix, function)
    table = Export.table!(schema_or_table, function)
    opts = Options.validate!(opts, @import_opts, function)
    capacity_fits_timeout!(opts, function)

    if opts.resume and not opts.progress_record do
      raise ArgumentError,
            "#{function}: resume: true needs the progress record, which progress_record: " <>
              "false does not write"
    end

    %{
      store: store,
      prefix: prefix,
      table: table,
      opts: opts,
      config: Dynamo.Config.native(opts.config),
      native: %{
        prefix: prefix,
        export_id: opts.export_id,
        table: table,
        max_concurrency: opts.max_concurrency,
        max_write_capacity: opts.max_write_capacity && opts.max_write_capacity * 1.0,
        resume: opts.resume,
        progress_record: opts.progress_record
      }
    }
  end

  # A request writes 25 items, at least 25 write units: under the cap it waits at least 25 /
  # max_write_capacity seconds, which must be shorter than the stall bound. Items over 1 KB
  # cost more units (the option's doc says so): this catches only what is sure to fail.
  defp capacity_fits_timeout!(%{max_write_capacity: cap, timeout: timeout}, function)
       when is_number(cap) and is_integer(timeout) and cap * timeout / 1000 <= 25 do
    raise ArgumentError,
          "#{function}: max_write_capacity: #{cap} lets a request of 25 items wait " <>
            "#{Float.round(25 / cap, 1)} s, longer than timeout: #{timeout} ms (the longest " <>
            "time without progress): raise one of them"
  end

  defp capacity_fits_timeout!(_opts, _function), do: :ok

  defp run(%{opts: opts} = request) do
    span =
      Telemetry.start(
        [:cloud_streams, :dynamo, :import],
        Map.merge(Telemetry.object_store_metadata(request.store, request.prefix, :import), %{
          table: request.table,
          export_id: opts.export_id
        })
      )

    report = opts.on_progress || fn _totals -> :ok end
    start = &Native.dynamo_import(request.config, request.store.resource, request.native, &1)

    case Job.run(start, fn {:progress, totals} -> report.(totals) end, opts.timeout, span) do
      :timeout ->
        {:error, timed_out} = Call.timed_out(opts.timeout)

        error =
          Dynamo.Error.from_native(%{
            timed_out
            | message: "the import made no progress within #{opts.timeout} ms (it was stopped)"
          })

        Telemetry.stop(span, {:error, error})
        {:error, error}

      {:answer, answer} ->
        case result(answer) do
          {:ok, totals} ->
            Telemetry.stop(span, :done, totals)
            {:ok, totals}

          {:error, error} ->
            Telemetry.stop(span, {:error, error})
            {:error, error}
        end
    end
  end

  defp result({:ok, {:done, totals}}), do: {:ok, totals}

  defp result({:ok, {:failed, :object_store, native}}),
    do: {:error, ObjectStoreX.Error.from_native(native)}

  defp result({:ok, {:failed, :dynamo, native}}), do: {:error, Dynamo.Error.from_native(native)}

  # The native side failed before it could answer (an aborted task answers this way).
  defp result({:error, native}), do: {:error, Dynamo.Error.from_native(native)}
end
