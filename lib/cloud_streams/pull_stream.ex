defmodule CloudStreams.PullStream do
  @moduledoc """
  The Elixir face of the pull-stream core (DESIGN §2): an `Enumerable` over a native stream.

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

  alias CloudStreams.Native

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

    Stream.resource(
      fn -> {:open, open.(), acc} end,
      &next(&1, step, timeout, to_exception),
      fn {_, handle, _} -> Native.stream_close(handle) end
    )
  end

  defp pages(:done, acc), do: {[], acc}
  defp pages(page, acc), do: {page, acc}
  defp single(:done, acc), do: {[], acc}
  defp single(item, acc), do: {[item], acc}

  # One step of Stream.resource: the next elements, the end, or an exception.
  defp next({:ended, _, _} = state, _step, _timeout, _to_exception), do: {:halt, state}

  defp next({:open, handle, acc}, step, timeout, to_exception) do
    case pull(handle, make_ref(), timeout) do
      {:item, item} ->
        {elements, acc} = step.(item, acc)
        {elements, {:open, handle, acc}}

      :done ->
        {elements, acc} = step.(:done, acc)
        {elements, {:ended, handle, acc}}

      {:error, native} ->
        raise to_exception.(native)
    end
  end

  defp pull(handle, tag, timeout) do
    case Native.stream_pull(handle, tag) do
      :pending -> await(handle, tag, timeout)
      event -> event
    end
  end

  defp await(handle, tag, timeout) do
    receive do
      {^tag, event} -> event
    after
      timeout ->
        if Native.stream_disarm(handle) do
          {:error,
           %{
             kind: :timeout,
             message: "no item arrived within #{timeout} ms",
             retryable: true,
             status: nil,
             path: nil
           }}
        else
          # The event was handed over just as the wait expired: it is on its way, take it.
          receive do
            {^tag, event} -> event
          end
        end
    end
  end
end
