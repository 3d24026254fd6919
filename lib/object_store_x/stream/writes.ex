defmodule ObjectStoreX.Stream.Writes do
  @moduledoc false
  # Writes to an upload, pipelined: chunks are sent without waiting for each one's
  # acknowledgement while less than `window` bytes are unacknowledged, which hides the round
  # trip to the native actor. Acknowledgements come in order; the first error stops it all.

  alias CloudStreams.Native

  # `telemetry`: the upload's span; `parts_seen`: parts the store confirmed, as acknowledged.
  defstruct [
    :upload,
    :window,
    :report,
    :telemetry,
    unacked: :queue.new(),
    unacked_bytes: 0,
    parts_seen: 0
  ]

  alias CloudStreams.Telemetry

  def new(upload, window, report, span \\ nil),
    do: remember(%__MODULE__{upload: upload, window: window, report: report, telemetry: span})

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
  Takes the acknowledgements still on their way after the enumeration raised (the state was
  lost with the exception; it is kept in the process dictionary for this), so that none
  arrives after the upload has returned.
  """
  def abandon(upload) do
    case Process.delete({__MODULE__, upload}) do
      nil ->
        :ok

      writes ->
        for {tag, _} <- :queue.to_list(writes.unacked), do: receive(do: ({^tag, _} -> :ok))
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
        for {later, _} <- :queue.to_list(rest), do: receive(do: ({^later, _} -> :ok))
        {:error, ObjectStoreX.Error.from_native(native)}
    end
  end
end
