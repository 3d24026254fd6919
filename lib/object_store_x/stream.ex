defmodule ObjectStoreX.Stream do
  @moduledoc """
  Streaming downloads, uploads and listings with constant memory, whatever the size of the
  object or the bucket.

  Downloads and listings are lazy `Stream`s over the pull-stream core (see
  `CloudStreams.PullStream`): a native task reads ahead at most `:prefetch_bytes` (downloads)
  or `:prefetch_pages` (listings) and then stops reading from the network until the consumer
  catches up. Halting a stream (`Enum.take/2`), an exception in the consumer or the
  consumer's death stops the native task at once. Uploads read the enumerable and send
  fixed-size parts, several at a time, and abort the multipart upload on every failure path.

      iex> {:ok, store} = ObjectStoreX.new(:memory)
      iex> :ok = ["hello ", "streaming ", "world"] |> ObjectStoreX.Stream.upload(store, "s.txt")
      iex> ObjectStoreX.Stream.download(store, "s.txt", chunk_size: 5) |> Enum.to_list()
      ["hello", " stre", "aming", " worl", "d"]
  """

  require Logger

  alias CloudStreams.{Call, Job, Native, Options, PullStream, Redact, Telemetry}
  alias ObjectStoreX.{Error, PutOptions, Store}
  alias ObjectStoreX.Stream.Writes

  @mib 1_048_576
  @gib 1024 * @mib

  # The largest chunk a download hands over: a chunk is one VM binary, allocated whole.
  @max_chunk_size @gib
  # The longest read-ahead in bytes (a bound on a buffer, not an allocation).
  @max_prefetch 1024 * @gib
  @max_concurrency 1024

  @download_schema [
    timeout: [
      type: :timeout,
      default: 30_000,
      doc:
        "the longest wait for one chunk, in ms. A download paced by a slow consumer never " <>
          "fails for being slow: only the wait for the next chunk is timed."
    ],
    chunk_size: [
      type: {:in, 1..@max_chunk_size},
      default: @mib,
      doc:
        "bytes per chunk, at most 1 GiB. Buffers are sized by the object's (or range's) " <>
          "real size, so a large value on a small object costs nothing."
    ],
    prefetch_bytes: [
      type: {:in, 1..@max_prefetch},
      default: 8 * @mib,
      doc: "bytes read ahead of the consumer, at most 1 TiB (one chunk always fits)."
    ],
    prefetch: [
      type: {:in, 1..@max_prefetch},
      deprecated: "use :prefetch_bytes (:prefetch counts pages in listings)"
    ],
    range: [
      type: {:or_nil, {:custom, ObjectStoreX, :cast_range, []}},
      doc: "a part of the object, in any form `ObjectStoreX.get/3` takes."
    ],
    on_progress: [
      type: {:or_nil, {:fun, 2}},
      doc:
        "`fn bytes_so_far, total -> ... end`, called after each chunk; the total comes " <>
          "from a HEAD request made when the stream starts."
    ]
  ]

  @doc """
  A lazy stream of the object's bytes, as binaries of `:chunk_size` (the last may be
  shorter).

  Options:

  #{Options.docs(@download_schema)}

  A failure mid-stream raises `ObjectStoreX.Error` (with `kind` and `retryable` set): a
  stream never ends short silently.

      iex> {:ok, store} = ObjectStoreX.new(:memory)
      iex> :ok = ObjectStoreX.put(store, "f", "0123456789")
      iex> ObjectStoreX.Stream.download(store, "f", range: {2, 5}) |> Enum.join()
      "2345"
  """
  @spec download(Store.t(), ObjectStoreX.path(), keyword()) :: Enumerable.t()
  def download(store, path, opts \\ []) do
    Store.check!(store, "ObjectStoreX.Stream.download/3")
    ObjectStoreX.check_path!(path, "Stream.download/3")
    opts = Options.validate!(opts, @download_schema, "ObjectStoreX.Stream.download/3")
    range = opts.range
    prefetch = opts.prefetch || opts.prefetch_bytes

    chunks =
      PullStream.new(
        fn ->
          Native.store_download_stream(
            store.resource,
            path,
            range,
            opts.chunk_size,
            prefetch
          )
        end,
        timeout: opts.timeout,
        error: &Error.from_native/1,
        telemetry:
          {[:cloud_streams, :object_store, :download],
           Telemetry.object_store_metadata(store, path, :download)}
      )

    case opts.on_progress do
      nil -> chunks
      report -> with_progress(chunks, fn -> download_total!(store, path, range) end, report)
    end
  end

  defp download_total!(store, path, range) do
    meta = ObjectStoreX.head!(store, path)

    case range do
      nil -> meta.size
      {:bounded, first, stop} -> max(min(stop, meta.size) - first, 0)
      {:offset, n} -> max(meta.size - n, 0)
      {:suffix, n} -> min(n, meta.size)
    end
  end

  defp with_progress(enumerable, total_fun, report) do
    Stream.transform(
      enumerable,
      fn -> {0, total_fun.()} end,
      fn chunk, {done, total} ->
        done = done + byte_size(chunk)
        report.(done, total)
        {[chunk], {done, total}}
      end,
      fn _ -> :ok end
    )
  end

  @download_file_schema [
    part_size: [
      type: {:in, 1..@max_chunk_size},
      default: 8 * @mib,
      doc: "bytes per ranged GET, at most 1 GiB (each part is held in memory once)."
    ],
    max_concurrency: [
      type: {:in, 1..@max_concurrency},
      default: 8,
      doc:
        "GETs at the same time, at most #{@max_concurrency}. Memory stays near " <>
          "`part_size * max_concurrency`."
    ],
    resume: [
      type: :boolean,
      default: true,
      doc: "continue a previous attempt; false starts afresh."
    ],
    on_progress: [
      type: {:or_nil, {:fun, 2}},
      doc: "`fn bytes_done, total -> ... end`, called as parts complete."
    ],
    timeout: [
      type: :timeout,
      default: 60_000,
      doc:
        "the longest wait, in ms, for the next part to complete (default 60 s: a part of " <>
          "8 MiB at a slow 150 KB/s). When it passes, the download stops and " <>
          "`{:error, %ObjectStoreX.Error{kind: :timeout}}` is returned; calling again resumes it."
    ]
  ]

  @doc """
  Downloads an object to a local file with parallel ranged GETs: the fastest way to fetch a
  large object whole. Returns `:ok` or `{:error, %ObjectStoreX.Error{}}`.

  Parts are written in place into `<local_path>.partial`; finished parts are recorded in
  `<local_path>.partial.state`. A download that stops (an error, a crash) continues where it
  was when called again, as long as the object has not changed (same etag and size); then the
  partial file is renamed to `local_path`. Every part is fetched with `If-Match` on the etag,
  so the file never mixes two versions of the object.

  Options:

  #{Options.docs(@download_file_schema)}

  If `:on_progress` raises, the download stops (it can be resumed) and the exception
  propagates.

      iex> {:ok, store} = ObjectStoreX.new(:memory)
      iex> :ok = ObjectStoreX.put(store, "f.bin", "payload")
      iex> target = Path.join(System.tmp_dir!(), "cloud_streams_doc_download.bin")
      iex> ObjectStoreX.Stream.download_file(store, "f.bin", target)
      :ok
      iex> File.read!(target)
      "payload"
  """
  @spec download_file(Store.t(), ObjectStoreX.path(), Path.t(), keyword()) ::
          :ok | {:error, Error.t()}
  def download_file(store, path, local_path, opts \\ []) do
    Store.check!(store, "ObjectStoreX.Stream.download_file/4")
    ObjectStoreX.check_path!(path, "Stream.download_file/4")

    unless is_binary(local_path) and String.valid?(local_path) do
      raise ArgumentError,
            "ObjectStoreX.Stream.download_file/4 expects the local path as a string " <>
              "(valid UTF-8), got: #{inspect(local_path)}"
    end

    opts = Options.validate!(opts, @download_file_schema, "ObjectStoreX.Stream.download_file/4")
    report = opts.on_progress || fn _, _ -> :ok end

    span =
      Telemetry.start(
        [:cloud_streams, :object_store, :download_file],
        Telemetry.object_store_metadata(store, path, :download_file)
      )

    start =
      &Native.store_download_file(
        store.resource,
        path,
        Path.expand(local_path),
        opts.part_size,
        opts.max_concurrency,
        opts.resume,
        # Always reported: each part's completion is what the timeout waits for.
        true,
        &1
      )

    case Job.run(
           start,
           fn {:progress, done, total} -> report.(done, total) end,
           opts.timeout,
           span
         ) do
      :timeout ->
        {:error, timed_out} = Call.timed_out(opts.timeout)
        error = Error.from_native(timed_out)
        Telemetry.stop(span, {:error, error})
        {:error, error}

      {:answer, {:ok, summary}} ->
        Telemetry.stop(span, :done, %{bytes: summary.bytes, resumed_bytes: summary.resumed_bytes})
        :ok

      {:answer, {:error, native}} ->
        error = Error.from_native(native)
        Telemetry.stop(span, {:error, error})
        {:error, error}
    end
  end

  # S3's smallest and largest part sizes, applied to every backend (one rule).
  @min_part_size 5 * @mib
  @max_part_size 5 * @gib

  @upload_schema [
                   part_size: [
                     type: {:in, @min_part_size..@max_part_size},
                     default: 10 * @mib,
                     doc:
                       "the size of every part but the last, from 5 MiB to 5 GiB (the " <>
                         "smallest and largest parts S3 accepts)."
                   ],
                   max_concurrency: [
                     type: {:in, 1..@max_concurrency},
                     default: 4,
                     doc:
                       "parts uploaded at the same time, at most #{@max_concurrency}. Memory " <>
                         "stays near `part_size * (max_concurrency + 1)`, plus half a part " <>
                         "sent ahead of its acknowledgement (writes are pipelined to hide " <>
                         "the round trip)."
                   ],
                   on_progress: [
                     type: {:or_nil, {:fun, 2}},
                     doc:
                       "`fn bytes_so_far, total -> ... end` after each accepted chunk; " <>
                         "`total` is the file's size for a `File.stream!/3`, `nil` otherwise."
                   ],
                   timeout: [
                     type: :timeout,
                     default: 60_000,
                     doc:
                       "the longest wait, in ms, for the store to accept one chunk or to " <>
                         "complete the upload (default 60 s: a part of 10 MiB at a slow " <>
                         "200 KB/s). When it passes, the upload is cancelled and aborted and " <>
                         "`{:error, %ObjectStoreX.Error{kind: :timeout}}` returned."
                   ]
                 ] ++ PutOptions.schema()

  @doc """
  Uploads an enumerable of binaries (or iodata), of any sizes, as one object.

  Returns `:ok`, or `{:error, %ObjectStoreX.Error{}}` after aborting the multipart upload. An
  exception raised while enumerating aborts the upload and is re-raised.

  Options:

  #{Options.docs(@upload_schema)}

  `:mode` must stay `:overwrite`. When an abort cannot reach the store, the error names the
  multipart upload left behind (its upload id, on S3 and GCS, and the path), so it can be
  aborted later; after an exception in the enumerable the same is logged as a warning.

  A total smaller than one part is sent as a single put.

      iex> {:ok, store} = ObjectStoreX.new(:memory)
      iex> Stream.repeatedly(fn -> "x" end) |> Stream.take(3) |> ObjectStoreX.Stream.upload(store, "xxx")
      :ok
      iex> ObjectStoreX.get!(store, "xxx")
      "xxx"
  """
  @spec upload(Enumerable.t(), Store.t(), ObjectStoreX.path(), keyword()) ::
          :ok | {:error, Error.t()}
  def upload(enumerable, store, path, opts \\ []) do
    Store.check!(store, "ObjectStoreX.Stream.upload/4")
    enumerable!(enumerable, "ObjectStoreX.Stream.upload/4")

    with {:ok, upload, window, timeout} <-
           start_upload(store, path, opts, "ObjectStoreX.Stream.upload/4") do
      report = progress_reporter(opts[:on_progress], enumerable)
      span = upload_span(store, path)

      try do
        enumerable
        |> Enum.reduce_while(Writes.new(upload, window, report, timeout, span), fn chunk,
                                                                                   writes ->
          case Writes.send(writes, chunk) do
            {:ok, writes} -> {:cont, writes}
            {:error, _} = error -> {:halt, error}
          end
        end)
        |> Writes.drain()
      catch
        kind, reason ->
          Writes.abandon(upload)
          warn_left_behind(abort(upload, span, timeout))
          Telemetry.exception(span, kind, reason, __STACKTRACE__)
          :erlang.raise(kind, reason, __STACKTRACE__)
      else
        {:ok, writes} ->
          Writes.abandon(upload)
          writes |> finish() |> stop_on_error(span)

        {:error, _} = error ->
          # The actor has aborted the multipart upload (the error says so if it could not);
          # this ends the actor, which waits for a command after a failure.
          _ = abort(upload, span, timeout)
          stop_on_error(error, span)
      end
    end
  end

  defp enumerable!(enumerable, function) do
    if Enumerable.impl_for(enumerable) == nil or
         (is_function(enumerable) and not is_function(enumerable, 2)) do
      raise ArgumentError,
            "#{function} expects an enumerable of binaries, got: #{Redact.inspect(enumerable)}"
    end
  end

  defp start_upload(store, path, opts, function) do
    ObjectStoreX.check_path!(path, function)
    opts = Options.validate!(opts, @upload_schema, function)

    if opts.mode != :overwrite do
      raise ArgumentError,
            "option :mode of #{function} must be :overwrite, got: #{inspect(opts.mode)}"
    end

    put = PutOptions.from_validated(opts, function)

    case Native.store_upload_start(
           store.resource,
           path,
           opts.part_size,
           opts.max_concurrency,
           put
         ) do
      {:ok, upload} -> {:ok, upload, div(opts.part_size, 2), opts.timeout}
      {:error, native} -> {:error, Error.from_native(native)}
    end
  end

  defp progress_reporter(nil, _enumerable), do: fn _ -> :ok end

  defp progress_reporter(report, enumerable) do
    total =
      case enumerable do
        %File.Stream{path: path} -> File.stat!(path).size
        _ -> nil
      end

    &report.(&1, total)
  end

  defp stop_on_error({:error, error} = failed, span) do
    Telemetry.stop(span, {:error, error})
    failed
  end

  defp stop_on_error(ok, _span), do: ok

  defp upload_span(store, path) do
    Telemetry.start(
      [:cloud_streams, :object_store, :upload],
      Telemetry.object_store_metadata(store, path, :upload)
    )
  end

  defp finish(writes) do
    case command(writes.upload, &Native.store_upload_finish/2, writes.timeout) do
      {:ok, summary} ->
        # A single put is one part too.
        Writes.parts_completed(writes, summary.parts)
        Telemetry.stop(writes.telemetry, :done, %{bytes: summary.bytes, parts: summary.parts})
        :ok

      error ->
        error
    end
  end

  # An abort that fails leaves billable parts behind: its event says so (`status: :error`).
  defp abort(upload, span, timeout) do
    started = System.monotonic_time()
    result = command(upload, &Native.store_upload_abort/2, timeout)

    status =
      case result do
        {:ok, _} -> %{status: :ok}
        {:error, error} -> %{status: :error, error: error}
      end

    Telemetry.event(span, :abort, %{duration: System.monotonic_time() - started}, status)

    case result do
      {:ok, :ok} -> :ok
      error -> error
    end
  end

  # A command to the upload's actor; a command still unanswered at the timeout is cancelled.
  defp command(upload, send, timeout) do
    start = fn tag ->
      :ok = send.(upload, tag)
      fn -> Native.store_upload_cancel(upload) end
    end

    Call.await(start, timeout, &Error.from_native/1)
  end

  defp warn_left_behind(:ok), do: :ok

  defp warn_left_behind({:error, error}) do
    Logger.warning("ObjectStoreX.Stream: the upload's abort failed: #{Exception.message(error)}")
  end

  defmodule UploadSink do
    @moduledoc """
    A `Collectable` that uploads what is collected into it, made by
    `ObjectStoreX.Stream.upload_sink/3`. `Enum.into/2` and `Stream.into/2` both work; a
    failure raises `ObjectStoreX.Error` after aborting the upload.
    """
    @enforce_keys [:store, :path, :opts]
    defstruct [:store, :path, :opts]

    @type t :: %__MODULE__{store: Store.t(), path: String.t(), opts: keyword()}

    defimpl Collectable do
      def into(%{store: store, path: path, opts: opts} = sink) do
        writes = ObjectStoreX.Stream.__start_sink__(store, path, opts)

        collector = fn
          writes, {:cont, chunk} ->
            ObjectStoreX.Stream.__sink_write__(writes, chunk)

          writes, :done ->
            ObjectStoreX.Stream.__sink_finish__(writes)
            sink

          writes, :halt ->
            ObjectStoreX.Stream.__sink_abort__(writes)
            :ok
        end

        {writes, collector}
      end
    end
  end

  @doc """
  A `Collectable` that uploads into `path`, with the options of `upload/4`.

      iex> {:ok, store} = ObjectStoreX.new(:memory)
      iex> sink = ObjectStoreX.Stream.upload_sink(store, "collected.txt")
      iex> ["a", "b", "c"] |> Enum.into(sink)
      iex> ObjectStoreX.get!(store, "collected.txt")
      "abc"
  """
  @spec upload_sink(Store.t(), ObjectStoreX.path(), keyword()) :: UploadSink.t()
  def upload_sink(store, path, opts \\ []) do
    Store.check!(store, "ObjectStoreX.Stream.upload_sink/3")
    ObjectStoreX.check_path!(path, "Stream.upload_sink/3")
    Options.validate!(opts, @upload_schema, "ObjectStoreX.Stream.upload_sink/3")
    %UploadSink{store: store, path: path, opts: opts}
  end

  @doc false
  def __start_sink__(store, path, opts) do
    case start_upload(store, path, opts, "ObjectStoreX.Stream.upload_sink/3") do
      {:ok, upload, window, timeout} ->
        report = progress_reporter(opts[:on_progress], nil)
        Writes.new(upload, window, report, timeout, upload_span(store, path))

      {:error, error} ->
        raise error
    end
  end

  @doc false
  def __sink_write__(writes, chunk) do
    case Writes.send(writes, chunk) do
      {:ok, writes} ->
        writes

      {:error, error} ->
        _ = abort(writes.upload, writes.telemetry, writes.timeout)
        Telemetry.exception(writes.telemetry, :error, error, [])
        raise error
    end
  end

  @doc false
  def __sink_finish__(writes) do
    with {:ok, writes} <- Writes.drain(writes),
         :ok <- Writes.abandon(writes.upload),
         :ok <- finish(writes) do
      :ok
    else
      {:error, error} ->
        Telemetry.exception(writes.telemetry, :error, error, [])
        raise error
    end
  end

  @doc false
  def __sink_abort__(writes) do
    Writes.abandon(writes.upload)
    warn_left_behind(abort(writes.upload, writes.telemetry, writes.timeout))
    Telemetry.stop(writes.telemetry, :halted)
  end

  @max_batch_size 1_000_000
  @max_prefetch_pages 10_000

  @list_schema [
    prefix: [type: {:or_nil, :string}, doc: "list only the objects under this prefix."],
    offset: [type: {:or_nil, :string}, doc: "start after this path."],
    batch_size: [
      type: {:in, 1..@max_batch_size},
      default: 1000,
      doc:
        "the most objects handed over per message, at most #{@max_batch_size}. A batch " <>
          "holds what the store has sent (S3 sends at most 1000 keys per request)."
    ],
    page_size: [
      type: {:in, 1..@max_batch_size},
      deprecated: "use :batch_size (:page_size is DynamoDB's items per request in Dynamo)"
    ],
    prefetch_pages: [
      type: {:in, 0..@max_prefetch_pages},
      default: 0,
      doc: "pages fetched ahead of the consumer, at most #{@max_prefetch_pages}."
    ],
    prefetch: [
      type: {:in, 0..@max_prefetch_pages},
      deprecated: "use :prefetch_pages (:prefetch counts bytes in downloads)"
    ],
    timeout: [type: :timeout, default: 30_000, doc: "the longest wait for a page, in ms."]
  ]

  @doc """
  A lazy stream of `%ObjectStoreX.Meta{}` for every object under `:prefix`, fetched page by
  page. Nothing is fetched before the stream is enumerated, and with the default
  `prefetch_pages: 0` a page is fetched only when the consumer needs it: `Enum.take(stream, 10)`
  makes one list request and stops the listing.

  Options:

  #{Options.docs(@list_schema)}

  A transient failure mid-listing (a connection reset, a 5xx) does not restart the listing:
  it resumes after the last object handed over, up to 5 times in a row with backoff, and
  then raises the error.

      iex> {:ok, store} = ObjectStoreX.new(:memory)
      iex> for i <- 1..3, do: :ok = ObjectStoreX.put(store, "logs/\#{i}", "x")
      iex> ObjectStoreX.Stream.list_stream(store, prefix: "logs") |> Enum.map(& &1.location) |> Enum.sort()
      ["logs/1", "logs/2", "logs/3"]
  """
  @spec list_stream(Store.t(), keyword()) :: Enumerable.t()
  def list_stream(store, opts \\ []) do
    Store.check!(store, "ObjectStoreX.Stream.list_stream/2")
    opts = Options.validate!(opts, @list_schema, "ObjectStoreX.Stream.list_stream/2")

    PullStream.new(
      fn ->
        Native.store_list_stream(
          store.resource,
          opts.prefix,
          opts.offset,
          opts.page_size || opts.batch_size,
          opts.prefetch || opts.prefetch_pages
        )
      end,
      timeout: opts.timeout,
      error: &Error.from_native/1,
      pages: true,
      telemetry:
        {[:cloud_streams, :object_store, :list_stream],
         Telemetry.object_store_metadata(store, opts.prefix, :list_stream)}
    )
  end

  # Bang forms of upload/4 and download_file/4: each raises the `ObjectStoreX.Error` the plain
  # form returns.

  @doc """
  Like `upload/4`, raising `ObjectStoreX.Error`.

      iex> store = ObjectStoreX.new!(:memory)
      iex> ["a", "b"] |> ObjectStoreX.Stream.upload!(store, "ab")
      :ok
      iex> ObjectStoreX.get!(store, "ab")
      "ab"
  """
  @spec upload!(Enumerable.t(), Store.t(), ObjectStoreX.path(), keyword()) :: :ok
  def upload!(enumerable, store, path, opts \\ []),
    do: raise_error(upload(enumerable, store, path, opts))

  @doc """
  Like `download_file/4`, raising `ObjectStoreX.Error`.

      iex> store = ObjectStoreX.new!(:memory)
      iex> target = Path.join(System.tmp_dir!(), "cloud_streams_doc_download_bang.bin")
      iex> ObjectStoreX.Stream.download_file!(store, "missing.bin", target)
      ** (ObjectStoreX.Error) (not_found) Object at location missing.bin not found: No data in memory found. Location: missing.bin
  """
  @spec download_file!(Store.t(), ObjectStoreX.path(), Path.t(), keyword()) :: :ok
  def download_file!(store, path, local_path, opts \\ []),
    do: raise_error(download_file(store, path, local_path, opts))

  defp raise_error(:ok), do: :ok
  defp raise_error({:error, %Error{} = error}), do: raise(error)
end
