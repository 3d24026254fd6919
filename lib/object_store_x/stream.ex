defmodule ObjectStoreX.Stream do
  @moduledoc """
  Streaming downloads, uploads and listings with constant memory, whatever the size of the
  object or the bucket.

  Downloads and listings are lazy `Stream`s over the pull-stream core (see
  `CloudStreams.PullStream`): a native task reads ahead at most `:prefetch` and then stops
  reading from the network until the consumer catches up. Halting a stream (`Enum.take/2`),
  an exception in the consumer or the consumer's death stops the native task at once.
  Uploads read the enumerable and send fixed-size parts, several at a time, and abort the
  multipart upload on every failure path.

      iex> {:ok, store} = ObjectStoreX.new(:memory)
      iex> :ok = ["hello ", "streaming ", "world"] |> ObjectStoreX.Stream.upload(store, "s.txt")
      iex> ObjectStoreX.Stream.download(store, "s.txt", chunk_size: 5) |> Enum.to_list()
      ["hello", " stre", "aming", " worl", "d"]
  """

  alias CloudStreams.{Call, Native, Options, PullStream, Telemetry}
  alias ObjectStoreX.{Error, PutOptions, Store}
  alias ObjectStoreX.Stream.Writes

  @mib 1_048_576

  @download_schema [
    timeout: {:timeout, 30_000},
    chunk_size: {:pos_integer, @mib},
    prefetch: {:pos_integer, 8 * @mib},
    range: {:any, nil},
    on_progress: {{:or_nil, {:fun, 2}}, nil}
  ]

  @doc """
  A lazy stream of the object's bytes, as binaries of `:chunk_size` (the last may be
  shorter).

  Options:

    * `:timeout` - the longest wait for one chunk, in ms (default 30 s). A download paced by a
      slow consumer never fails for being slow: only the wait for the next chunk is timed.
    * `:chunk_size` - bytes per chunk (default 1 MiB).
    * `:prefetch` - bytes read ahead of the consumer (default 8 MiB).
    * `:range` - a part of the object, in any form `ObjectStoreX.get/3` takes.
    * `:on_progress` - `fn bytes_so_far, total -> ... end`, called after each chunk; the total
      comes from a HEAD request made when the stream starts.

  A failure mid-stream raises `ObjectStoreX.Error` (with `kind` and `retryable` set): a
  stream never ends short silently.

      iex> {:ok, store} = ObjectStoreX.new(:memory)
      iex> :ok = ObjectStoreX.put(store, "f", "0123456789")
      iex> ObjectStoreX.Stream.download(store, "f", range: {2, 5}) |> Enum.join()
      "2345"
  """
  @spec download(Store.t(), ObjectStoreX.path(), keyword()) :: Enumerable.t()
  def download(%Store{} = store, path, opts \\ []) do
    ObjectStoreX.check_path!(path, "Stream.download/3")
    opts = Options.validate!(opts, @download_schema, "ObjectStoreX.Stream.download/3")
    range = opts.range && ObjectStoreX.range!(opts.range)

    chunks =
      PullStream.new(
        fn ->
          Native.store_download_stream(
            store.resource,
            path,
            range,
            opts.chunk_size,
            opts.prefetch
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
    part_size: {:pos_integer, 8 * @mib},
    max_concurrency: {:pos_integer, 8},
    resume: {:boolean, true},
    on_progress: {{:or_nil, {:fun, 2}}, nil}
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

    * `:part_size` - bytes per ranged GET (default 8 MiB).
    * `:max_concurrency` - GETs at the same time (default 8). Memory stays near
      `part_size * max_concurrency`.
    * `:resume` - continue a previous attempt (default true); false starts afresh.
    * `:on_progress` - `fn bytes_done, total -> ... end`, called as parts complete.

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
  def download_file(%Store{} = store, path, local_path, opts \\ []) do
    ObjectStoreX.check_path!(path, "Stream.download_file/4")

    unless is_binary(local_path) do
      raise ArgumentError,
            "ObjectStoreX.Stream.download_file/4 expects the local path as a string, got: #{inspect(local_path)}"
    end

    opts = Options.validate!(opts, @download_file_schema, "ObjectStoreX.Stream.download_file/4")
    tag = make_ref()
    report = opts.on_progress

    span =
      Telemetry.start(
        [:cloud_streams, :object_store, :download_file],
        Telemetry.object_store_metadata(store, path, :download_file)
      )

    task =
      Native.store_download_file(
        store.resource,
        path,
        Path.expand(local_path),
        opts.part_size,
        opts.max_concurrency,
        opts.resume,
        report != nil,
        tag
      )

    # The task stops if this process dies (its handle is collected); keep it until answered.
    result =
      try do
        await_download(tag, report, span)
      catch
        # An on_progress callback raised: the span ends with it.
        kind, reason ->
          Telemetry.exception(span, kind, reason, __STACKTRACE__)
          :erlang.raise(kind, reason, __STACKTRACE__)
      end

    Native.task_release(task)
    result
  end

  # Progress reports and the answer come from one sender, in order.
  defp await_download(tag, report, span) do
    receive do
      {^tag, {:progress, done, total}} ->
        report.(done, total)
        await_download(tag, report, span)

      {^tag, {:ok, summary}} ->
        Telemetry.stop(span, :done, %{bytes: summary.bytes, resumed_bytes: summary.resumed_bytes})
        :ok

      {^tag, {:error, native}} ->
        error = Error.from_native(native)
        Telemetry.stop(span, {:error, error})
        {:error, error}
    end
  end

  @upload_schema [
                   part_size: {:pos_integer, 10 * @mib},
                   max_concurrency: {:pos_integer, 4},
                   on_progress: {{:or_nil, {:fun, 2}}, nil}
                 ] ++ PutOptions.schema()

  @min_part_size 5 * @mib

  @doc """
  Uploads an enumerable of binaries (or iodata), of any sizes, as one object.

  Returns `:ok`, or `{:error, %ObjectStoreX.Error{}}` after aborting the multipart upload. An
  exception raised while enumerating aborts the upload and is re-raised.

  Options:

    * `:part_size` - the size of every part but the last (default 10 MiB, at least 5 MiB).
    * `:max_concurrency` - parts uploaded at the same time (default 4). Memory stays near
      `part_size * (max_concurrency + 1)`, plus half a part sent ahead of its
      acknowledgement (writes are pipelined to hide the round trip).
    * `:on_progress` - `fn bytes_so_far, total -> ... end` after each accepted chunk; `total`
      is the file's size for a `File.stream!/3`, `nil` otherwise.
    * `:content_type`, `:metadata`, `:tags` and the other content options of
      `ObjectStoreX.put/4` (`:mode` must stay `:overwrite`).

  A total smaller than one part is sent as a single put.

      iex> {:ok, store} = ObjectStoreX.new(:memory)
      iex> Stream.repeatedly(fn -> "x" end) |> Stream.take(3) |> ObjectStoreX.Stream.upload(store, "xxx")
      :ok
      iex> ObjectStoreX.get!(store, "xxx")
      "xxx"
  """
  @spec upload(Enumerable.t(), Store.t(), ObjectStoreX.path(), keyword()) ::
          :ok | {:error, Error.t()}
  def upload(enumerable, %Store{} = store, path, opts \\ []) do
    with {:ok, upload, window} <- start_upload(store, path, opts, "ObjectStoreX.Stream.upload/4") do
      report = progress_reporter(opts[:on_progress], enumerable)
      span = upload_span(store, path)

      try do
        enumerable
        |> Enum.reduce_while(Writes.new(upload, window, report, span), fn chunk, writes ->
          case Writes.send(writes, chunk) do
            {:ok, writes} -> {:cont, writes}
            {:error, _} = error -> {:halt, error}
          end
        end)
        |> Writes.drain()
      catch
        kind, reason ->
          Writes.abandon(upload)
          abort(upload, span)
          Telemetry.exception(span, kind, reason, __STACKTRACE__)
          :erlang.raise(kind, reason, __STACKTRACE__)
      else
        {:ok, writes} ->
          Writes.abandon(upload)
          writes |> finish() |> stop_on_error(span)

        error ->
          stop_on_error(error, span)
      end
    end
  end

  defp start_upload(store, path, opts, function) do
    ObjectStoreX.check_path!(path, function)
    opts = Options.validate!(opts, @upload_schema, function)

    if opts.part_size < @min_part_size do
      raise ArgumentError,
            "invalid value for option :part_size of #{function}: expected at least " <>
              "#{@min_part_size} bytes (5 MiB, the smallest part S3 accepts), got: #{opts.part_size}"
    end

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
      {:ok, upload} -> {:ok, upload, div(opts.part_size, 2)}
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
    case writes.upload |> await(&Native.store_upload_finish(&1, &2)) |> native_result() do
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
  defp abort(upload, span) do
    started = System.monotonic_time()
    result = await(upload, &Native.store_upload_abort(&1, &2))

    status =
      case result do
        {:ok, _} -> %{status: :ok}
        {:error, native} -> %{status: :error, error: Error.from_native(native)}
      end

    Telemetry.event(span, :abort, %{duration: System.monotonic_time() - started}, status)
    result
  end

  defp await(upload, start), do: Call.await(&start.(upload, &1))

  defp native_result({:ok, value}), do: {:ok, value}
  defp native_result({:error, native}), do: {:error, Error.from_native(native)}

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
  def upload_sink(%Store{} = store, path, opts \\ []) do
    ObjectStoreX.check_path!(path, "Stream.upload_sink/3")
    Options.validate!(opts, @upload_schema, "ObjectStoreX.Stream.upload_sink/3")
    %UploadSink{store: store, path: path, opts: opts}
  end

  @doc false
  def __start_sink__(store, path, opts) do
    case start_upload(store, path, opts, "ObjectStoreX.Stream.upload_sink/3") do
      {:ok, upload, window} ->
        report = progress_reporter(opts[:on_progress], nil)
        Writes.new(upload, window, report, upload_span(store, path))

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
        abort(writes.upload, writes.telemetry)
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
    abort(writes.upload, writes.telemetry)
    Telemetry.stop(writes.telemetry, :halted)
  end

  @list_schema [
    prefix: {{:or_nil, :string}, nil},
    offset: {{:or_nil, :string}, nil},
    page_size: {:pos_integer, 1000},
    prefetch: {:non_neg_integer, 0},
    timeout: {:timeout, 30_000}
  ]

  @doc ~S"""
  A lazy stream of `%ObjectStoreX.Meta{}` for every object under `:prefix`, fetched page by
  page. Nothing is fetched before the stream is enumerated, and with the default
  `prefetch: 0` a page is fetched only when the consumer needs it: `Enum.take(stream, 10)`
  makes one list request and stops the listing.

  Options: `:prefix`, `:offset` (start after this path), `:page_size` (most objects per
  page handed over, default 1000), `:prefetch` (pages fetched ahead, default 0), `:timeout`
  (longest wait for a page, ms, default 30 s).

      iex> {:ok, store} = ObjectStoreX.new(:memory)
      iex> for i <- 1..3, do: :ok = ObjectStoreX.put(store, "logs/#{i}", "x")
      iex> ObjectStoreX.Stream.list_stream(store, prefix: "logs") |> Enum.map(& &1.location) |> Enum.sort()
      ["logs/1", "logs/2", "logs/3"]
  """
  @spec list_stream(Store.t(), keyword()) :: Enumerable.t()
  def list_stream(%Store{} = store, opts \\ []) do
    opts = Options.validate!(opts, @list_schema, "ObjectStoreX.Stream.list_stream/2")

    PullStream.new(
      fn ->
        Native.store_list_stream(
          store.resource,
          opts.prefix,
          opts.offset,
          opts.page_size,
          opts.prefetch
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
end
