defmodule CloudStreams.PullStream do
  @moduledoc """
  The Elixir face of the pull-stream core (architecture §2): an `Enumerable` over a native stream.

  Every download, listing and scan is one of these. Enumerating it opens the native stream in
  the enumerating process (so a stream built in one process can be consumed in another), then
  pulls one item at a time. A pull never blocks: when nothing is ready, the NIF arms a one-shot
  delivery and this process waits for exactly that message, tagged with a fresh reference. No
  message is ever sent that was not asked for.

  Halting the enumeration (`Enum.take/2`), an exception in the consumer, the death of the
  consuming process and garbage collection of the handle each stop the native task and free
  its buffer.

  Users meet this module only through the streams of `ObjectStoreX.Stream`, `Dynamo.Table.Stream`
  and `CloudStreams.Synthetic`:

      iex> CloudStreams.Synthetic.stream(chunks: 3, chunk_size: 4) |> Enum.to_list()
      [<<0, 0, 0, 0>>, <<1, 1, 1, 1>>, <<2, 2, 2, 2>>]
  """

  alias CloudStreams.{Native, Telemetry}

  @typedoc "An opaque native stream handle."
  @type handle :: reference()

  @typedoc "Turns the NIF's error map into the exception the stream raises."
  @type to_exception :: (map() -> Exception.t())

  @default_timeout 30_000

  @doc """
  Wraps a native stream as a lazy `Enumerable`.

  `open` is called each time the stream is enumerated, in the enumerating process, and returns
  a native handle (for example `fn -> CloudStreams.Native.synthetic_stream(opts) end`).

  Options (validated by the calling module):

    * `:timeout` - the longest wait for one item, in milliseconds (default 30 s). When it passes,
      the stream raises a `:timeout` error and stops.
    * `:error` - a function turning the NIF's error map into the exception to raise
      (default `CloudStreams.Error.from_native/1`).
    * `:pages` - when true, each native item is a list (a page of a listing or scan) whose
      elements the stream emits one by one (default false).
    * `:reduce` - `{acc, fun}`: each native item becomes `fun.(item, acc)`, which returns
      `{elements, acc}`; the end calls `fun.(:done, acc)` once, whose elements are emitted
      last. Scans use it to decode pages and keep each segment's position: when `fun` runs,
      every element emitted before has been consumed.
    * `:telemetry` - `{event_prefix, metadata}`: the stream emits `event_prefix ++ [:start]`
      when it opens and `[:stop]` (with its totals and `ending: :done | :halted`) or
      `[:exception]` when it ends (see `CloudStreams.Telemetry`). Totals are `chunks` and
      `bytes` for binary items, `pages` and `items` for the others.
  """
  @spec new((() -> handle()), keyword()) :: Enumerable.t()
  def new(open, opts \\ []) when is_function(open, 0) do
    timeout = Keyword.get(opts, :timeout, @default_timeout)
    to_exception = Keyword.get(opts, :error, &CloudStreams.Error.from_native/1)

    {acc, step} =
      case Keyword.fetch(opts, :reduce) do
        {:ok, {acc, fun}} when is_function(fun, 2) -> {acc, fun}
        :error -> {nil, if(Keyword.get(opts, :pages, false), do: &pages/2, else: &single/2)}
      end

    {prefix, metadata} = Keyword.get(opts, :telemetry, {nil, nil})

    Stream.resource(
      fn ->
        span = prefix && Telemetry.start(prefix, metadata)
        {:open, open.(), acc, span}
      end,
      &next(&1, step, timeout, to_exception),
      &close/1
    )
  end

  defp close({:failed, handle, _acc, span, exception}) do
    Native.stream_close(handle)
    Telemetry.exception(span, :error, exception, [])
    raise exception
  end

  defp close({state, handle, _acc, span}) do
    Native.stream_close(handle)
    Telemetry.stop(span, if(state == :ended, do: :done, else: :halted))
  end

  # The stream's totals, counted only while a span is open.
  defp tally(nil, _item, _elements), do: nil

  defp tally(span, item, _elements) when is_binary(item),
    do: span |> Telemetry.count(:chunks, 1) |> Telemetry.count(:bytes, byte_size(item))

  defp tally(span, _item, elements),
    do: span |> Telemetry.count(:pages, 1) |> Telemetry.count(:items, length(elements))

  defp pages(:done, acc), do: {[], acc}
  defp pages(page, acc), do: {page, acc}
  defp single(:done, acc), do: {[], acc}
  defp single(item, acc), do: {[item], acc}

  # One step of Stream.resource: the next elements, the end, or an exception.
  defp next({:ended, _, _, _} = state, _step, _timeout, _to_exception), do: {:halt, state}

  defp next({:open, handle, acc, span}, step, timeout, to_exception) do
    event =
      case pull(handle, timeout) do
        {:event, event} -> event
        {:wait, waiter} -> await(waiter)
      end

    case event do
      {:item, item} ->
        {elements, acc} = step.(item, acc)
        {elements, {:open, handle, acc, tally(span, item, elements)}}

      :done ->
        {elements, acc} = step.(:done, acc)
        {elements, {:ended, handle, acc, span}}

      {:error, native} ->
        # Raised by close/1, once the native stream is closed and the span ended.
        {:halt, {:failed, handle, acc, span, to_exception.(native)}}
    end
  end

  ## The pull consumer
  #
  # The one state machine that takes events from a native stream, used by the streams above
  # (which block in `await/1`) and by processes that must not block, such as
  # `Dynamo.Table.Stream.Producer` (which keep the waiter in their state, arm a timer for
  # `wait_time/1` and call `expired/1` when it fires):
  #
  #     pull --ready--> {:event, event}
  #       \--pending--> {:wait, waiter}: exactly one `{waiter.tag, event}` message will come
  #     waiting --wait_time passes--> disarm: the delivery was not handed over yet
  #                                           -> {:event, timeout error}
  #                                   else it is on its way -> waiting, for @grace_ms more
  #     on its way --@grace_ms passes--> {:event, internal error} (the native side broke its
  #                                      promise; never wait forever on it)

  # How long a delivery already handed over may take to arrive.
  @grace_ms 5_000

  @typedoc "A pending pull: one message `{tag, event}` will answer it."
  @type waiter :: %{
          handle: handle(),
          tag: reference(),
          timeout: timeout(),
          phase: :armed | :handed_over
        }

  @typedoc "What a native stream hands over."
  @type event :: {:item, term()} | :done | {:error, map()}

  @doc false
  # Pulls the next event: at once, or a waiter whose answer is the message `{waiter.tag, event}`.
  @spec pull(handle(), timeout()) :: {:event, event()} | {:wait, waiter()}
  def pull(handle, timeout) do
    tag = make_ref()

    case Native.stream_pull(handle, tag) do
      :pending -> {:wait, %{handle: handle, tag: tag, timeout: timeout, phase: :armed}}
      event -> {:event, event}
    end
  end

  @doc false
  # How long to wait for the waiter's message before calling `expired/1`.
  @spec wait_time(waiter()) :: timeout()
  def wait_time(%{phase: :armed, timeout: timeout}), do: timeout
  def wait_time(%{phase: :handed_over}), do: @grace_ms

  @doc false
  # The waiter's wait time passed without its message.
  @spec expired(waiter()) :: {:event, event()} | {:wait, waiter()}
  def expired(%{phase: :armed} = waiter) do
    if Native.stream_disarm(waiter.handle) do
      {:event, error(:timeout, "no item arrived within #{waiter.timeout} ms", true)}
    else
      # The event was handed over just as the wait expired: it is on its way, take it.
      {:wait, %{waiter | phase: :handed_over}}
    end
  end

  def expired(%{phase: :handed_over}) do
    {:event,
     error(:internal, "the native stream handed an item over but it never arrived", false)}
  end

  @doc false
  # Blocks until the waiter's event (or its expiry) comes.
  @spec await(waiter()) :: event()
  def await(%{tag: tag} = waiter) do
    receive do
      {^tag, event} -> event
    after
      wait_time(waiter) ->
        case expired(waiter) do
          {:event, event} -> event
          {:wait, waiter} -> await(waiter)
        end
    end
  end

  defp error(kind, message, retryable),
    do: {:error, %{kind: kind, message: message, retryable: retryable, status: nil, path: nil}}
end
