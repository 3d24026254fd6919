defmodule CloudStreams.Telemetry do
  @moduledoc """
  The library's `:telemetry` events: the one module that calls `:telemetry`.

  `:telemetry` is not a dependency. When the application that uses this library has it (every
  Phoenix application does), events are emitted through its public API (`:telemetry.execute/3`
  and `:telemetry.span/3`); when it is absent, nothing is emitted and nothing is built. Whether
  it is loaded is checked once and cached in `:persistent_term`.

  Events are per request, per stream, per page and per part, never per chunk or per item. A
  handler that raises is detached by `:telemetry` itself and never breaks a stream: the
  library relies on nothing else. The events and their measurements are listed in
  `guides/observability.md`.

      iex> CloudStreams.Telemetry.execute([:cloud_streams, :example], %{count: 1}, %{})
      :ok
  """

  # Not a dependency: present in the applications that have it, absent otherwise.
  @compile {:no_warn_undefined, :telemetry}

  @typedoc "An event name, as `:telemetry` takes it."
  @type event :: [atom(), ...]

  @typedoc "What a request span needs: its event prefix, its metadata and measurements known up front."
  @type request :: {event(), map(), map()}

  @typedoc "The running span of a stream, `nil` when nothing is emitted."
  @type span :: %{prefix: event(), metadata: map(), start: integer(), counts: map()} | nil

  @loaded_key {__MODULE__, :loaded?}

  @spans [
    [:object_store, :request],
    [:object_store, :download],
    [:object_store, :download_file],
    [:object_store, :list_stream],
    [:object_store, :upload],
    [:object_store, :copy_many],
    [:dynamo, :request],
    [:dynamo, :scan],
    [:dynamo, :parallel_scan],
    [:dynamo, :query],
    [:dynamo, :execute_statement],
    [:dynamo, :producer],
    [:dynamo, :scan_to_process],
    [:dynamo, :distributed_scan],
    [:dynamo, :export],
    [:dynamo, :import],
    [:dynamo, :read_export]
  ]

  @single [
    [:cluster, :retry],
    [:object_store, :upload, :part],
    [:object_store, :upload, :abort],
    [:dynamo, :page],
    [:dynamo, :throttle],
    [:dynamo, :capacity_pause],
    [:dynamo, :scan_to_process, :pause]
  ]

  @doc """
  Every event name the library emits, for `:telemetry.attach_many/4`.

      iex> [:cloud_streams, :dynamo, :page] in CloudStreams.Telemetry.events()
      true
  """
  @spec events() :: [event()]
  def events do
    spans = for span <- @spans, suffix <- [:start, :stop, :exception], do: span ++ [suffix]
    for name <- spans ++ @single, do: [:cloud_streams | name]
  end

  @doc """
  True when `:telemetry` is loaded. Checked once per VM, then read from `:persistent_term`.

      iex> is_boolean(CloudStreams.Telemetry.enabled?())
      true
  """
  @spec enabled?() :: boolean()
  def enabled? do
    case :persistent_term.get(@loaded_key, :unknown) do
      :unknown ->
        loaded? = Code.ensure_loaded?(:telemetry)
        :persistent_term.put(@loaded_key, loaded?)
        loaded?

      loaded? ->
        loaded?
    end
  end

  @doc """
  Emits one event with `:telemetry.execute/3`, when `:telemetry` is loaded.

      iex> CloudStreams.Telemetry.execute([:cloud_streams, :example], %{count: 1}, %{kind: :doc})
      :ok
  """
  @spec execute(event(), map(), map()) :: :ok
  def execute(event, measurements, metadata) do
    if enabled?(), do: :telemetry.execute(event, measurements, metadata)
    :ok
  end

  ## Single-shot requests

  @doc """
  The request span of an `ObjectStoreX` call: `operation` on `path` (`nil` for calls on many
  paths) of the store. Only the backend and the bucket (or container) name are taken from the
  store, never a credential.

      iex> {:ok, store} = ObjectStoreX.new(:memory)
      iex> CloudStreams.Telemetry.object_store_request(store, :head, "a.txt")
      {[:cloud_streams, :object_store, :request],
       %{operation: :head, backend: :memory, bucket: nil, path: "a.txt"}, %{}}
  """
  @spec object_store_request(ObjectStoreX.Store.t(), atom(), String.t() | nil, map()) ::
          request()
  def object_store_request(store, operation, path, measurements \\ %{}) do
    {[:cloud_streams, :object_store, :request], object_store_metadata(store, path, operation),
     measurements}
  end

  @doc """
  The request span of a `Dynamo.Table` call: `operation` on `table`.

      iex> CloudStreams.Telemetry.dynamo_request(:get_item, "users")
      {[:cloud_streams, :dynamo, :request], %{operation: :get_item, table: "users"}, %{}}
  """
  @spec dynamo_request(atom(), String.t() | nil) :: request()
  def dynamo_request(operation, table) do
    {[:cloud_streams, :dynamo, :request], %{operation: operation, table: table}, %{}}
  end

  @doc """
  Runs `fun` (which returns `{:ok, value}` or `{:error, exception}`) inside a `:telemetry.span/3`
  of `request`, and returns its result. The stop event carries `status: :ok | :error`, the
  error when there is one, and what the result measures (bytes, items, consumed capacity).
  `nil` runs `fun` alone.

      iex> request = CloudStreams.Telemetry.dynamo_request(:delete_item, "users")
      iex> CloudStreams.Telemetry.request(request, fn -> {:ok, nil} end)
      {:ok, nil}
  """
  @spec request(request() | nil, (() -> result)) :: result when result: term()
  def request(nil, fun), do: fun.()

  def request({prefix, metadata, measurements}, fun) do
    if enabled?() do
      :telemetry.span(prefix, metadata, fn ->
        result = fun.()

        {result, Map.merge(measurements, measure(metadata.operation, result)),
         stop_metadata(metadata, result)}
      end)
    else
      fun.()
    end
  end

  defp stop_metadata(metadata, {:error, error}),
    do: Map.merge(metadata, %{status: :error, error: error, error_kind: error_kind(error)})

  defp stop_metadata(metadata, _ok), do: Map.put(metadata, :status, :ok)

  @doc false
  # The kind of an error struct (`ObjectStoreX.Error`, `CloudStreams.Error`) or its type
  # (`Dynamo.Error`), `nil` for other reasons.
  @spec error_kind(term()) :: atom() | nil
  def error_kind(%{kind: kind}), do: kind
  def error_kind(%{type: type}), do: type
  def error_kind(_other), do: nil

  @dynamo_operations [
    :put_item,
    :get_item,
    :delete_item,
    :update_item,
    :batch_write_item,
    :batch_get_item,
    :scan,
    :query,
    :create_table,
    :delete_table,
    :transact_write_items,
    :transact_get_items,
    :execute_statement,
    :batch_execute_statement
  ]

  # What a successful result measures, by operation. Results are those of the NIFs, before
  # the calling module reshapes them: DynamoDB's come with the SDK's retries and throttles.
  defp measure(operation, {:ok, {value, %{retries: retries, throttles: throttles}}})
       when operation in @dynamo_operations do
    Map.merge(measure(operation, {:ok, value}), %{retries: retries, throttles: throttles})
  end

  defp measure(:get, {:ok, {data, _meta}}), do: %{bytes: byte_size(data)}

  defp measure(:get_ranges, {:ok, parts}),
    do: %{bytes: parts |> Enum.map(&byte_size/1) |> Enum.sum()}

  defp measure(operation, {:ok, metas}) when operation in [:list], do: %{items: length(metas)}

  defp measure(:list_with_delimiter, {:ok, %{objects: objects}}),
    do: %{items: length(objects)}

  defp measure(:delete_many, {:ok, {deleted, _failed}}), do: %{items: deleted}
  defp measure(:get_item, {:ok, item}), do: %{items: if(item, do: 1, else: 0)}

  defp measure(operation, {:ok, page}) when operation in [:scan, :query] and is_map(page) do
    %{items: length(page.items), consumed_capacity: page[:consumed_capacity]}
    |> Map.reject(fn {_key, value} -> is_nil(value) end)
  end

  defp measure(:batch_get_item, {:ok, items}) when is_list(items), do: %{items: length(items)}

  defp measure(:transact_get_items, {:ok, items}) when is_list(items),
    do: %{items: Enum.count(items, &(&1 != nil))}

  defp measure(:execute_statement, {:ok, %{items: items}}), do: %{items: length(items)}

  defp measure(:batch_execute_statement, {:ok, results}) when is_list(results),
    do: %{items: Enum.count(results, &match?({:ok, item} when item != nil, &1))}

  defp measure(:batch_write_item, {:ok, applied}) when is_integer(applied), do: %{items: applied}
  defp measure(_operation, _result), do: %{}

  ## Streams

  @doc """
  Starts the span of a stream: emits `prefix ++ [:start]` and returns the span to pass to
  `count/3` and `stop/3`, or `nil` when `:telemetry` is absent (then the other functions do
  nothing). Streams are lazy, so their spans cannot be one `:telemetry.span/3` call: they emit
  the same events, with the same measurements and a `telemetry_span_context`.
  """
  @spec start(event(), map()) :: span()
  def start(prefix, metadata) do
    if enabled?() do
      start = System.monotonic_time()
      metadata = Map.put_new_lazy(metadata, :telemetry_span_context, &make_ref/0)

      :telemetry.execute(
        prefix ++ [:start],
        %{system_time: System.system_time(), monotonic_time: start},
        metadata
      )

      %{prefix: prefix, metadata: metadata, start: start, counts: %{}}
    end
  end

  @doc "Adds `n` to the stream's total `key` (for example `:pages`), reported at the stop."
  @spec count(span(), atom(), integer()) :: span()
  def count(nil, _key, _n), do: nil

  def count(span, key, n),
    do: %{span | counts: Map.update(span.counts, key, n, &(&1 + n))}

  @doc """
  Ends the span of a stream with `prefix ++ [:stop]`: the totals counted, plus
  `measurements`, and `ending` in the metadata: `:done`, `:halted` (the consumer stopped
  early), `:cancelled`, or `{:error, error}` for an error returned rather than raised (then
  `ending: :error` and `error: error`).
  """
  @spec stop(span(), :done | :halted | :cancelled | {:error, term()}, map()) :: :ok
  def stop(span, ending, measurements \\ %{})
  def stop(nil, _ending, _measurements), do: :ok

  def stop(span, ending, measurements) do
    metadata =
      case ending do
        {:error, error} -> Map.merge(span.metadata, %{ending: :error, error: error})
        ending -> Map.put(span.metadata, :ending, ending)
      end

    emit(span, :stop, measurements, metadata)
  end

  @doc """
  Ends the span of a stream with `prefix ++ [:exception]`, as `:telemetry.span/3` does for a
  raise: `kind`, `reason` (the exception) and `stacktrace` in the metadata, with
  `ending: :error` and the totals counted.
  """
  @spec exception(span(), :error | :exit | :throw, term(), Exception.stacktrace()) :: :ok
  def exception(nil, _kind, _reason, _stacktrace), do: :ok

  def exception(span, kind, reason, stacktrace) do
    metadata =
      Map.merge(span.metadata, %{
        kind: kind,
        reason: reason,
        stacktrace: stacktrace,
        ending: :error
      })

    emit(span, :exception, %{}, metadata)
  end

  defp emit(span, suffix, measurements, metadata) do
    now = System.monotonic_time()

    measurements =
      span.counts
      |> Map.merge(measurements)
      |> Map.merge(%{duration: now - span.start, monotonic_time: now})

    :telemetry.execute(span.prefix ++ [suffix], measurements, metadata)
    :ok
  end

  @doc """
  Emits `prefix ++ [suffix]` within a stream's span (a page, a part, a pause), with the span's
  metadata and context merged under `metadata`.
  """
  @spec event(span(), atom(), map(), map()) :: :ok
  def event(nil, _suffix, _measurements, _metadata), do: :ok

  def event(span, suffix, measurements, metadata) do
    :telemetry.execute(span.prefix ++ [suffix], measurements, Map.merge(span.metadata, metadata))
    :ok
  end

  @doc """
  The events of one page of a DynamoDB stream, from what the native side reports of the
  request that fetched it (`%{retries:, throttles:, consumed_capacity:, capacity_wait_us:}`):
  `[:cloud_streams, :dynamo, :page]` always, `[:cloud_streams, :dynamo, :throttle]` when
  DynamoDB throttled it, `[:cloud_streams, :dynamo, :capacity_pause]` when
  `max_read_capacity` held it back. `metadata` names the operation and table.
  """
  @spec dynamo_page(map(), non_neg_integer(), non_neg_integer(), map()) :: :ok
  def dynamo_page(metadata, segment, items, request) do
    if enabled?() do
      metadata = Map.put(metadata, :segment, segment)
      wait = System.convert_time_unit(request.capacity_wait_us, :microsecond, :native)

      measurements =
        %{
          items: items,
          retries: request.retries,
          throttles: request.throttles,
          consumed_capacity: request.consumed_capacity,
          capacity_wait: wait
        }
        |> Map.reject(fn {_key, value} -> is_nil(value) end)

      :telemetry.execute([:cloud_streams, :dynamo, :page], measurements, metadata)

      if request.throttles > 0 do
        :telemetry.execute(
          [:cloud_streams, :dynamo, :throttle],
          %{throttles: request.throttles, retries: request.retries},
          metadata
        )
      end

      if wait > 0 do
        :telemetry.execute(
          [:cloud_streams, :dynamo, :capacity_pause],
          %{duration: wait},
          metadata
        )
      end
    end

    :ok
  end

  @doc false
  # The metadata naming a store and a path: backend and bucket only, never the configuration.
  @spec object_store_metadata(ObjectStoreX.Store.t(), String.t() | nil, atom()) :: map()
  def object_store_metadata(store, path, operation) do
    %{operation: operation, backend: store.backend, bucket: store.name, path: path}
  end
end
