defmodule Dynamo.Table.Stream.Sender do
  @moduledoc false
  # The process behind `Dynamo.Table.Stream.scan_to_process/3`: enumerates a scan and sends
  # its items to a receiver, pausing while the receiver's mailbox is above its high-water
  # mark, and stopping (native fetching included) as soon as the receiver exits.

  @poll_ms 5

  def run(stream, pid, opts) do
    receiver = Process.monitor(pid)
    batch = opts.batch_size

    format =
      opts.message_format ||
        if batch == 1, do: {:scan_item, :item}, else: {:scan_batch, :items}

    items = if batch == 1, do: stream, else: Stream.chunk_every(stream, batch)

    result =
      try do
        Enum.reduce_while(items, :ok, fn payload, :ok ->
          if wait_for_room(pid, receiver, opts.max_mailbox) do
            send(pid, fill(format, payload, [:item, :items]))
            {:cont, :ok}
          else
            {:halt, :receiver_down}
          end
        end)
      rescue
        error in Dynamo.Error -> {:error, error}
      end

    case result do
      :ok -> send(pid, opts.completion_message)
      {:error, error} -> send(pid, fill(opts.error_message, error, [:error]))
      :receiver_down -> :ok
    end

    :ok
  end

  # False once the receiver is gone; otherwise waits while its mailbox is above `max`.
  defp wait_for_room(pid, receiver, max) do
    receive do
      {:DOWN, ^receiver, :process, _, _} -> false
    after
      0 ->
        if node(pid) == node() and mailbox(pid) > max do
          receive do
            {:DOWN, ^receiver, :process, _, _} -> false
          after
            @poll_ms -> wait_for_room(pid, receiver, max)
          end
        else
          true
        end
    end
  end

  defp mailbox(pid) do
    case Process.info(pid, :message_queue_len) do
      {:message_queue_len, n} -> n
      nil -> 0
    end
  end

  # A message from its template: a function of the payload, or a term in which the
  # placeholder atoms stand for it.
  defp fill(format, payload, _placeholders) when is_function(format, 1), do: format.(payload)

  defp fill(format, payload, placeholders) when is_tuple(format) do
    format
    |> Tuple.to_list()
    |> Enum.map(&if(&1 in placeholders, do: payload, else: &1))
    |> List.to_tuple()
  end

  defp fill(format, payload, placeholders),
    do: if(format in placeholders, do: payload, else: format)
end
