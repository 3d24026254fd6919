defmodule CloudStreams.Job do
  @moduledoc false
  # Long native jobs that report progress: `ObjectStoreX.Stream.download_file/4`, the table
  # export and import. The NIF spawns the job on the tokio runtime and returns its task
  # handle; the job sends `{tag, progress}` reports (tuples tagged `:progress`), then exactly
  # one `{tag, answer}`, from one sender, in order. The handle is held until the answer, so
  # the death of the waiting process stops the job; so does a wait of `timeout` ms without a
  # message (a stall bound, not a deadline: reports reset it).

  alias CloudStreams.{Native, Telemetry}

  # How long the answer of a stopped job may take (an aborted task answers at once).
  @late_answer 5_000

  @doc """
  Starts the job with `start.(tag)` and waits for its answer, calling `report` with each
  progress report. Returns `{:answer, answer}`, or `:timeout` once the job is stopped. An
  exception in `report` stops the job, ends `span` with it and is re-raised.
  """
  @spec run((reference() -> reference()), (tuple() -> term()), timeout(), Telemetry.span()) ::
          {:answer, term()} | :timeout
  def run(start, report, timeout, span) do
    tag = make_ref()

    task =
      try do
        start.(tag)
      catch
        kind, reason ->
          Telemetry.exception(span, kind, reason, __STACKTRACE__)
          :erlang.raise(kind, reason, __STACKTRACE__)
      end

    result =
      try do
        await(tag, report, timeout)
      catch
        kind, reason ->
          stop(task, tag)
          Telemetry.exception(span, kind, reason, __STACKTRACE__)
          :erlang.raise(kind, reason, __STACKTRACE__)
      end

    case result do
      :timeout -> stop(task, tag)
      {:answer, _} -> Native.task_release(task)
    end

    result
  end

  defp await(tag, report, timeout) do
    receive do
      {^tag, progress} when is_tuple(progress) and elem(progress, 0) == :progress ->
        report.(progress)
        await(tag, report, timeout)

      {^tag, answer} ->
        {:answer, answer}
    after
      timeout -> :timeout
    end
  end

  # Stops the job, then takes its reports still on their way and its answer, so none arrives
  # later.
  defp stop(task, tag) do
    Native.task_release(task)
    take_messages(tag)
  end

  defp take_messages(tag) do
    receive do
      {^tag, progress} when is_tuple(progress) and elem(progress, 0) == :progress ->
        take_messages(tag)

      {^tag, _answer} ->
        :ok
    after
      @late_answer -> :ok
    end
  end
end
