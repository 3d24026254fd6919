defmodule ObjectStoreX.Stream.Writes do
  @moduledoc false
  # Writes to an upload, pipelined: chunks are sent without waiting for each one's
  # acknowledgement while less than `window` bytes are unacknowledged, which hides the round
  # trip to the native actor. Acknowledgements come in order; the first error stops it all.
  #
  # Every wait for an acknowledgement is bounded by `timeout`: when it passes, the upload is
  # cancelled (the actor stops the stalled write and aborts the multipart upload) and the
  # acknowledgements still due are taken, so none arrives after the upload has returned.
  # The native side answers every write, even one it drops, so each wait for them ends.

  alias CloudStreams.{Call, Native}

  # How long the acknowledgements of a cancelled or failed upload may take to come in: the
  # actor answers them once its abort is done, which takes at most about 10 s.
  @late_answers 15_000

  # `telemetry`: the upload's span; `parts_seen`: parts the store confirmed, as acknowledged.
  defstruct [
    :upload,
    :window,
    :report,
    :timeout,
    :telemetry,
    unacked: :queue.new(),
    unacked_bytes: 0,
    parts_seen: 0
  ]

  alias CloudStreams.Telemetry

  def new(upload, window, report, timeout, span \\ nil) do
    remember(%__MODULE__{
      upload: upload,
      window: window,
      report: report,
      timeout: timeout,
      telemetry: span
    })
  end

  @doc """
  Emits `[..., :upload, :part]` for each part confirmed since the last call, up to
  `completed` (parts complete in the background; acknowledgements and the finish say how
  many have).
  """
  def parts_completed(%__MODULE__{parts_seen: seen} = writes, completed) when completed > seen do
    for number <- (seen + 1)..completed,
        do: Telemetry.event(writes.telemetry, :part, %{completed: number}, %{})

    %{writes | parts_seen: completed}
  end

  def parts_completed(writes, _completed), do: writes

  def send(writes, chunk) do
    case IO.iodata_to_binary(chunk) do
      "" ->
        {:ok, writes}

      data ->
        tag = make_ref()
        :ok = Native.store_upload_write(writes.upload, data, tag)
        unacked = :queue.in({tag, byte_size(data)}, writes.unacked)

        writes = %{
          writes
          | unacked: unacked,
            unacked_bytes: writes.unacked_bytes + byte_size(data)
        }

        writes |> remember() |> await_below(writes.window)
    end
  end

  @doc "Waits for every acknowledgement."
  def drain(%__MODULE__{} = writes), do: await_below(writes, 1)
  def drain({:error, _} = error), do: error

  @doc """
  Forgets the upload: takes the acknowledgements still on their way (after the enumeration
  raised, the state was lost with the exception; it is kept in the process dictionary for
  this), so that none arrives after the upload has returned, and removes the entry.
  """
  def abandon(upload) do
    case Process.delete({__MODULE__, upload}) do
      nil -> :ok
      writes -> take_acks(writes.unacked)
    end

    :ok
  end

  defp remember(writes) do
    Process.put({__MODULE__, writes.upload}, writes)
    writes
  end

  defp await_below(%{unacked_bytes: bytes} = writes, limit) when bytes < limit,
    do: {:ok, writes}

  defp await_below(writes, limit) do
    {{:value, {tag, size}}, rest} = :queue.out(writes.unacked)

    receive do
      {^tag, {:ok, {total, parts}}} ->
        # Remembered before the report runs: it may raise, and abandon/1 must not wait for
        # an acknowledgement already taken.
        writes = %{writes | unacked: rest, unacked_bytes: writes.unacked_bytes - size}
        writes = writes |> parts_completed(parts) |> remember()
        writes.report.(total)
        await_below(writes, limit)

      {^tag, {:error, native}} ->
        # Later acknowledgements carry the same error; take them so none is left behind.
        fail(writes.upload, rest, native)
    after
      writes.timeout ->
        Native.store_upload_cancel(writes.upload)
        {:error, timed_out} = Call.timed_out(writes.timeout)
        fail(writes.upload, rest, with_cancel_answer(timed_out, tag))
    end
  end

  # The stalled write answers once the cancel has aborted the upload; an abort that could not
  # reach the store says there which multipart upload it left behind.
  defp with_cancel_answer(timed_out, tag) do
    receive do
      {^tag, {:error, %{kind: :cancelled}}} ->
        timed_out

      {^tag, {:error, %{message: why}}} ->
        %{timed_out | message: timed_out.message <> "; " <> why}

      {^tag, _} ->
        timed_out
    after
      @late_answers -> timed_out
    end
  end

  defp fail(upload, unacked, native) do
    Process.delete({__MODULE__, upload})
    take_acks(unacked)
    {:error, ObjectStoreX.Error.from_native(native)}
  end

  defp take_acks(unacked) do
    deadline = System.monotonic_time(:millisecond) + @late_answers

    for {tag, _} <- :queue.to_list(unacked) do
      wait = max(deadline - System.monotonic_time(:millisecond), 0)

      receive do
        {^tag, _} -> :ok
      after
        wait -> :ok
      end
    end

    :ok
  end
end
