defmodule Dynamo.Table.Stream.Export do
  alias CloudStreams.{Job, Native, Options, Telemetry}

  @function "Dynamo.Table.Stream.export/4"
  @mib 1024 * 1024
  @gib 1024 * @mib

  # What to read: the parallel scan's own option definitions.
  @scan_opts Keyword.take(Dynamo.Table.Stream.parallel_scan_options(), [
               :segments,
               :max_concurrency,
               :page_size,
               :filter_expression,
               :projection_expression,
               :expression_attribute_names,
               :expression_attribute_values,
               :consistent_read,
               :max_read_capacity,
               :config
             ])

  @own_opts [
    format: [
      type: {:in, [:dynamodb_json, :ndjson]},
      default: :dynamodb_json,
      doc:
        "`:dynamodb_json` (DynamoDB's own export lines, `{\"Item\":{...}}`) or `:ndjson` " <>
          "(plain JSON values, see below)."
    ],
    max_file_bytes: [
      type: :pos_integer,
      default: 128 * @mib,
      doc:
        "a data file ends at the first page boundary after its compressed size reaches " <>
          "this many bytes; the next page starts a new file."
    ],
    part_size: [
      type: {:in, (5 * @mib)..(5 * @gib)},
      default: 10 * @mib,
      doc:
        "the multipart upload part size of the data files, from 5 MiB to 5 GiB. Memory is " <>
          "about two parts per running segment."
    ],
    resume: [
      type: {:custom, __MODULE__, :cast_resume, []},
      default: false,
      doc:
        "`true` continues the newest unfinished export under the prefix, an export id " <>
          "that one. A complete export is not written again: its result is returned."
    ],
    overwrite: [
      type: :boolean,
      default: false,
      doc: "delete the exports already under the prefix first (otherwise they are refused)."
    ],
    on_progress: [
      type: {:or_nil, {:fun, 1}},
      doc:
        "called with `%{items:, bytes:, files:, pages_scanned:, segments: %{n => %{items:, " <>
          "bytes:, files:, pages_scanned:, done:}}}` (totals of the whole export, files of an " <>
          "earlier run included; `pages_scanned` counts this run's pages, empty ones too) at " <>
          "most every `progress_interval` ms while anything changed, and after each finished " <>
          "data file. `segments` holds only the segments running or changed since the " <>
          "previous report (never all of them: merge the reports to follow every segment). " <>
          "It runs in the process that runs the export; a raise stops the export."
    ],
    progress_interval: [
      type: {:in, 10..3_600_000},
      default: 1_000,
      doc: "the shortest time between two progress reports, in ms."
    ],
    timeout: [
      type: :timeout,
      default: 300_000,
      doc:
        "the longest time without progress, in ms (no page scanned, no byte written): a " <>
          "stalled export stops with a `:timeout` error and can be resumed."
    ]
  ]

  @opts @scan_opts ++ @own_opts

  @moduledoc """
  A whole table to an object store, natively end to end: `Dynamo.Table.Stream.export/4` and
  `Dynamo.Table.Stream.async_export/4` (this module holds the implementation).

  A parallel scan (the one `Dynamo.Table.Stream.parallel_scan/2` uses: the same requests,
  `max_read_capacity` pacing and retries) feeds one writer per segment in Rust, which
  encodes each page, gzips it and writes it by multipart upload on the same runtime. Items
  never cross into the BEAM. Memory is bounded by the segments running at once (a page and
  about two upload parts each), never by the table.

      {:ok, %{items: n, files: files, manifest: manifest}} =
        Dynamo.Table.Stream.export(User, store, "backups/users", segments: 8)

  ## Layout

  DynamoDB's own `ExportTableToPointInTime` layout, so DynamoDB's `ImportTable` (pointed at
  the `data/` folder) and every tool that reads native exports read it:

      <prefix>/AWSDynamoDB/<export_id>/_started                  empty, written first
      <prefix>/AWSDynamoDB/<export_id>/data/<segment>-<n>.json.gz
      <prefix>/AWSDynamoDB/<export_id>/manifest-files.json
      <prefix>/AWSDynamoDB/<export_id>/manifest-files.checksum
      <prefix>/AWSDynamoDB/<export_id>/manifest-summary.json     written last
      <prefix>/AWSDynamoDB/<export_id>/manifest-summary.checksum

  `export_id` is `<13-digit unix ms>-<8 hex digits>`, like DynamoDB's. Each data file is
  one gzip stream of lines `{"Item":{"id":{"S":"u1"},"n":{"N":"12.5"},...}}`, values in
  DynamoDB JSON (binaries in base64). Each segment writes its own files; a segment with no
  items writes none (DynamoDB writes an empty file per empty partition: an empty gzip
  member carries nothing an importer needs).

  `manifest-files.json` has one line per data file:
  `{"itemCount":N,"md5Checksum":"<base64 MD5 of the file>","etag":"...","dataFileS3Key":"<prefix>/AWSDynamoDB/<id>/data/...","byteCount":N}`
  (`byteCount`, the compressed size, is ours; readers ignore unknown fields). Keys are paths
  from the store's root with the prefix, as DynamoDB writes them from the bucket's root.
  `manifest-summary.json` has DynamoDB's fields (`version`, `exportArn`, `startTime`,
  `endTime`, `exportTime`, `tableArn`, `s3Prefix`, `manifestFilesS3Key`, `itemCount`,
  `outputFormat`, `exportType: "FULL_EXPORT"`); what a store cannot know is `null`
  (`tableId`, `s3Bucket`, the encryption fields) and `billedSizeBytes` is 0. The
  `.checksum` files hold the base64 MD5 of the manifest they sit next to.

  ## NDJSON

  `format: :ndjson` writes `data/<segment>-<n>.ndjson.gz` (`"outputFormat":"NDJSON"`), one
  plain JSON object per item, lossless:

    * strings are JSON strings, BOOL `true`/`false`, NULL `null`, L an array, M an object;
    * numbers are JSON numbers written with DynamoDB's exact digits (never through a
      float: 38-digit decimals and big integers survive);
    * binaries are `{"$b64":"..."}`; sets are `{"$ss":[...]}`, `{"$ns":[1,2.5]}` (numbers
      as JSON numbers), `{"$bs":["<base64>",...]}`;
    * an M whose only key starts with `$` is written `{"$m":{...}}`, so it is never read as
      one of these tags. The item itself (the line) is never wrapped.

  ## Resuming

  While an export runs, each segment keeps `_progress/segment-<n>.json` (ours): its
  finished files, its `last_evaluated_key` after the last one (files end on page
  boundaries, so that position is exact), and the multipart upload in progress. An export
  stopped at any point (an error, `Task.shutdown/2`, a killed VM) continues with
  `resume: true` (or the export id): uploads left behind are aborted (by upload id, or the
  local store's staging files deleted), each unfinished segment restarts after its last
  finished file, and only the files in progress are written again, under the same names.
  No item is lost or written twice. The options that shape the files (`segments`,
  `format`, `filter_expression`, `projection_expression`) must be the same; the progress
  records are removed once the summary is written.

  A prefix that already holds an export (complete or not) is refused with
  `{:error, %ObjectStoreX.Error{kind: :already_exists}}` unless `resume:` or
  `overwrite: true` is given.

  ## Errors

  `{:error, %Dynamo.Error{}}` when the table fails (its message names the segment:
  `"segment 2 of 8: ..."`), `{:error, %ObjectStoreX.Error{}}` when the store fails (its
  message names the segment and the data file, its `path` the file). Every multipart upload
  in progress is aborted before the error is returned, and the progress records are kept,
  so the export can be resumed.

  ## Options

  #{Options.docs(@opts)}
  """

  @type result :: %{
          export_id: String.t(),
          items: non_neg_integer(),
          bytes: non_neg_integer(),
          files: non_neg_integer(),
          manifest: String.t()
        }

  @doc false
  # Validates everything in the caller (bad options raise there, even for async_export)
  # and returns the job to run.
  @spec prepare!(module() | String.t(), ObjectStoreX.Store.t(), String.t(), keyword(), String.t()) ::
          map()
  def prepare!(schema_or_table, store, prefix, opts, function \\ @function) do
    table = table!(schema_or_table, function)
    ObjectStoreX.Store.check!(store, function)
    prefix = prefix!(prefix, function)
    opts = Options.validate!(opts, @opts, function)

    if opts.resume != false and opts.overwrite do
      raise ArgumentError,
            "#{function}: resume and overwrite: true contradict each other (resume continues " <>
              "the export under the prefix, overwrite deletes it first): pass one of them"
    end

    # Reports are the stall bound's heartbeat: they must come more often than it.
    if opts.timeout != :infinity and opts.progress_interval >= opts.timeout do
      raise ArgumentError,
            "#{function}: progress_interval (#{opts.progress_interval} ms) must be shorter " <>
              "than timeout (#{opts.timeout} ms), the longest time without a progress report"
    end

    %{
      table: table,
      store: store,
      prefix: prefix,
      opts: opts,
      config: Dynamo.Config.native(opts.config),
      read: read!(table, opts, function)
    }
  end

  @doc false
  @spec run(map()) :: {:ok, result()} | {:error, Dynamo.Error.t() | ObjectStoreX.Error.t()}
  def run(%{opts: opts} = job) do
    native_opts = %{
      segments: opts.segments,
      max_concurrency: opts.max_concurrency || min(opts.segments, 64),
      max_read_capacity: opts.max_read_capacity && opts.max_read_capacity * 1.0,
      prefix: job.prefix,
      format: opts.format,
      max_file_bytes: opts.max_file_bytes,
      part_size: opts.part_size,
      resume: opts.resume,
      overwrite: opts.overwrite,
      progress_interval_ms: opts.progress_interval
    }

    span =
      Telemetry.start([:cloud_streams, :dynamo, :export], %{
        operation: :export,
        table: job.table,
        segments: opts.segments,
        format: opts.format,
        backend: job.store.backend,
        bucket: job.store.name,
        path: job.prefix
      })

    report = opts.on_progress || fn _ -> :ok end

    start = &Native.dynamo_export(job.config, job.read, job.store.resource, native_opts, &1)

    case Job.run(start, fn {:progress, progress} -> report.(progress) end, opts.timeout, span) do
      :timeout ->
        error =
          Dynamo.Error.from_native(%{
            kind: :timeout,
            message:
              "no progress within #{opts.timeout} ms: the export was stopped (resume it " <>
                "with resume: true)",
            retryable: true,
            status: nil,
            path: nil,
            code: nil
          })

        Telemetry.stop(span, {:error, error})
        {:error, error}

      {:answer, {:ok, done}} ->
        Telemetry.stop(span, :done, Map.take(done, [:items, :bytes, :files]))
        {:ok, done}

      {:answer, {:error, native}} ->
        error = error_from_native(native)
        Telemetry.stop(span, {:error, error})
        {:error, error}
    end
  end

  # A store error always names a path (native/cloud_streams_core/src/export/mod.rs); a
  # table error never does.
  defp error_from_native(%{path: path} = native) when is_binary(path),
    do: ObjectStoreX.Error.from_native(native)

  defp error_from_native(native), do: Dynamo.Error.from_native(native)

  # DynamoDB's export ids (14 digits, a dash, 8 hex digits) and ours (13 digits: Unix ms).
  @export_id ~r/\A\d{13,14}-[0-9a-f]{8}\z/
  @export_id_doc "an export id (13 or 14 digits, a dash, 8 hex digits)"

  @doc false
  def cast_resume(value) when is_boolean(value), do: {:ok, value}
  def cast_resume(value), do: cast_export_id(value, "true, false or #{@export_id_doc}")

  @doc false
  # `export_id:` of the import and read_export/3.
  def cast_export_id(nil), do: {:ok, nil}
  def cast_export_id(value), do: cast_export_id(value, "nil or #{@export_id_doc}")

  defp cast_export_id(value, expected) do
    if is_binary(value) and value =~ @export_id, do: {:ok, value}, else: {:error, expected}
  end

  @doc false
  # A schema or a table name, as export/4 and import/4 take it: the table's name.
  def table!(table, function) when is_binary(table) do
    if String.valid?(table) and byte_size(table) in 3..255,
      do: table,
      else: table_error!(table, function)
  end

  def table!(schema, function) when is_atom(schema) do
    if Code.ensure_loaded?(schema) and function_exported?(schema, :__dynamo__, 1),
      do: schema.__dynamo__(:table),
      else: table_error!(schema, function)
  end

  def table!(other, function), do: table_error!(other, function)

  defp table_error!(other, function) do
    raise ArgumentError,
          "#{function} expects a Dynamo.Schema module or a table name (3 to 255 bytes), " <>
            "got: #{CloudStreams.Redact.inspect(other)}"
  end

  @doc false
  # A store path under which exports live: trimmed of slashes, no empty, . or .. segment.
  def prefix!(prefix, function) when is_binary(prefix) do
    trimmed = String.trim(prefix, "/")

    valid =
      String.valid?(prefix) and
        (trimmed == "" or
           Enum.all?(String.split(trimmed, "/"), &(&1 not in ["", ".", ".."])))

    unless valid do
      raise ArgumentError,
            "#{function} expects the prefix as a store path (\"\" for the store's root, no " <>
              "empty, \".\" or \"..\" segment), got: #{inspect(prefix)}"
    end

    trimmed
  end

  def prefix!(prefix, function) do
    raise ArgumentError,
          "#{function} expects the prefix as a string, got: #{CloudStreams.Redact.inspect(prefix)}"
  end

  # The scan request, as Dynamo.Table builds it for a schema (the table name is all a schema
  # adds here: nothing is decoded).
  defp read!(table, opts, function) do
    values = Dynamo.Table.encoding!(function, fn -> Dynamo.Table.values(opts) end)

    %{
      table: table,
      index_name: nil,
      key_condition_expression: nil,
      filter_expression: opts.filter_expression,
      projection_expression: opts.projection_expression,
      names: opts.expression_attribute_names || %{},
      values: values,
      consistent_read: opts.consistent_read,
      limit: opts.page_size,
      exclusive_start_key: nil,
      segment: nil,
      select_count: false,
      forward: true
    }
  end
end
