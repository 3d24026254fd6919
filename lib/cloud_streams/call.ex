defmodule CloudStreams.Call do
  @moduledoc false
  # Operations that run on the tokio runtime answer by message: the NIF returns at once and
  # the result arrives as {tag, result}. Most NIFs return the handle of the native task doing
  # the work. The caller holds that handle while it waits, so its death (the handle is
  # collected) aborts the task; the native side answers every call, even an aborted or
  # panicked one (with an :internal error), so exactly one answer comes.
  #
  # Every wait is bounded by a timeout: when it passes, the task is released (aborted) and
  # its answer taken, so no message is left behind. A success that crossed the deadline is
  # returned rather than reported as a timeout: the work was done.

  alias CloudStreams.Native

  @default_timeout 30_000
  # How long the answer of a cancelled operation may take: dropping an aborted task is
  # prompt; a cancelled upload answers once its abort is done (at most about 10 s).
  @late_answer 15_000

  @doc """
  The timeout of a single-shot call: the caller's `:timeout` option, else
  `config :cloud_streams, call_timeout: ms`, else 30 s.
  """
  @spec timeout(timeout() | nil) :: timeout()
  def timeout(nil) do
    case Application.get_env(:cloud_streams, :call_timeout, @default_timeout) do
      :infinity ->
        :infinity

      # The longest wait `receive ... after` accepts.
      ms when is_integer(ms) and ms >= 0 and ms <= 4_294_967_295 ->
        ms

      other ->
        raise ArgumentError,
              "invalid value for config :cloud_streams, :call_timeout: expected an integer " <>
                "from 0 to 4294967295 (milliseconds) or :infinity, got: #{inspect(other)}"
    end
  end

  def timeout(timeout), do: timeout

  @doc """
  Starts an operation with a fresh tag and waits for its answer, at most `timeout` ms (`nil`:
  the configured default). `start` returns the native task's handle, or, for commands handed
  to an actor that answers them itself (uploads), a function that cancels the command.
  """
  @spec await((reference() -> reference() | (() -> term())), timeout() | nil) ::
          {:ok, term()} | {:error, map()}
  def await(start, timeout) do
    timeout = timeout(timeout)
    tag = make_ref()
    task = start.(tag)

    receive do
      {^tag, result} ->
        keep_alive(task)
        result
    after
      timeout ->
        cancel(task)

        receive do
          {^tag, {:ok, _} = late} -> late
          {^tag, {:error, native}} -> timed_out(timeout, native)
        after
          @late_answer -> timed_out(timeout)
        end
    end
  end

  @doc """
  Like `await/2`, with the error map turned into an exception struct by `to_error`, inside the
  `CloudStreams.Telemetry.request/2` span of `request` (`nil`: no span). The span sees the
  native result and the final error, timeouts included.
  """
  @spec await(
          (reference() -> reference() | (() -> term())),
          timeout() | nil,
          (map() -> Exception.t()),
          CloudStreams.Telemetry.request() | nil
        ) ::
          {:ok, term()} | {:error, Exception.t()}
  def await(start, timeout, to_error, request \\ nil) do
    CloudStreams.Telemetry.request(request, fn ->
      case await(start, timeout) do
        {:ok, value} -> {:ok, value}
        {:error, native} -> {:error, to_error.(native)}
      end
    end)
  end

  @doc "The error map of a wait that timed out, in the shape the native side sends."
  @spec timed_out(timeout()) :: {:error, map()}
  def timed_out(timeout) do
    {:error,
     %{
       kind: :timeout,
       message: "no answer within #{timeout} ms (the native request was cancelled)",
       retryable: true,
       status: nil,
       path: nil,
       code: nil
     }}
  end

  # Used after the answer, so the handle is not collected (aborting the task) while waited on.
  # The answer of a cancelled operation is an :internal or :cancelled error, unless the
  # cancel itself failed (an upload's abort that left its multipart upload behind): that is
  # worth telling.
  defp timed_out(timeout, %{kind: kind}) when kind in [:internal, :cancelled],
    do: timed_out(timeout)

  defp timed_out(timeout, %{message: why}) do
    {:error, timed_out} = timed_out(timeout)
    {:error, %{timed_out | message: timed_out.message <> "; " <> why}}
  end

  defp keep_alive(cancel) when is_function(cancel, 0), do: :ok
  defp keep_alive(task), do: Native.task_release(task)

  defp cancel(cancel) when is_function(cancel, 0), do: cancel.()
  defp cancel(task), do: Native.task_release(task)
end
