defmodule Dynamo.Table.Stream.Sender do
  @moduledoc false
  # The processes behind `Dynamo.Table.Stream.scan_to_process/3`.
  #
  # The scanner (supervised, its pid returned to the caller) enumerates the scan and sends
  # the items. A watcher beside it sends exactly one terminal message: the one the scanner
  # hands it at the end (the completion message, or the error message for any failure the
  # scanner caught: a DynamoDB error, an exception in `message_format` or `on_checkpoint`),
  # or, if the scanner dies first (killed, or a crash outside its rescue), an error message
  # saying so. If the receiver dies, the watcher kills the scanner, whose native stream then
  # stops with it.
  #
  # Pacing costs nothing while the receiver keeps up: the scanner reads the receiver's
  # mailbox length only once it has sent as many messages as could have filled the mailbox
  # to `max_mailbox` since the last reading, and waits (backing off from 1 ms to 64 ms) only
  # while the mailbox is above it.

  alias CloudStreams.Telemetry

  @max_backoff_ms 64

  @spec start(Enumerable.t(), pid(), map()) :: {:ok, pid()} | {:error, term()}
  def start(stream, receiver, opts) do
    Task.Supervisor.start_child(CloudStreams.TaskSupervisor, fn ->
      scanner = self()
      watcher = spawn(fn -> watch(scanner, receiver, opts) end)
      run(stream, receiver, watcher, opts)
    end)
  end

  defp run(stream, receiver, watcher, opts) do
    batch = opts.batch_size
    span = Telemetry.start([:cloud_streams, :dynamo, :scan_to_process], telemetry_metadata(opts))

    format =
      opts.message_format ||
        if batch == 1, do: {:scan_item, :item}, else: {:scan_batch, :items}

    items = if batch == 1, do: stream, else: Stream.chunk_every(stream, batch)

    ending =
      try do
        Enum.reduce(items, room(receiver, opts.max_mailbox), fn payload, room ->
          room = wait_for_room(receiver, opts.max_mailbox, room, span)
          send(receiver, fill(format, payload, [:item, :items], "message_format"))
          spend(room)
        end)

        :ok
      rescue
        error in Dynamo.Error -> {:error, error}
        exception -> {:error, internal("the scan failed: " <> Exception.message(exception))}
      catch
        kind, reason ->
          {:error, internal("the scan failed: #{Exception.format_banner(kind, reason)}")}
      end

    # The watcher alone sends the terminal message, so it is sent exactly once, whenever the
    # scanner dies; on one node it still follows every item sent before it.
    send(watcher, {:terminal, terminal(ending, opts)})

    case ending do
      :ok -> Telemetry.stop(span, :done)
      {:error, error} -> Telemetry.exception(span, :error, error, [])
    end
  end

  defp telemetry_metadata(opts),
    do: %{
      operation: :scan_to_process,
      table: Map.get(opts, :table),
      max_mailbox: opts.max_mailbox
    }

  defp spend(:infinity), do: :infinity
  defp spend(room), do: room - 1

  defp terminal(:ok, opts), do: opts.completion_message

  defp terminal({:error, error}, opts) do
    fill(opts.error_message, error, [:error], "error_message")
  rescue
    # A raising error_message function still leaves the receiver told, in the default shape.
    exception ->
      {:scan_error,
       internal(
         "error_message raised #{inspect(exception.__struct__)} for: " <>
           Exception.message(error)
       )}
  end

  defp watch(scanner, receiver, opts) do
    scanner_ref = Process.monitor(scanner)
    receiver_ref = Process.monitor(receiver)

    receive do
      {:terminal, message} ->
        send(receiver, message)

      {:DOWN, ^scanner_ref, :process, _, reason} ->
        # A :terminal sent before the scanner died arrives before its :DOWN.
        error = internal("the scanner exited before the scan ended: #{inspect(reason)}")
        send(receiver, terminal({:error, error}, opts))

      {:DOWN, ^receiver_ref, :process, _, _} ->
        Process.exit(scanner, :kill)
    end
  end

  # How many messages may be sent before the receiver's mailbox could pass `max`.
  # A remote receiver's mailbox cannot be read: it is not paced.
  defp room(receiver, _max) when node(receiver) != node(), do: :infinity

  defp room(receiver, max) do
    case Process.info(receiver, :message_queue_len) do
      {:message_queue_len, n} -> max - n
      nil -> max
    end
  end

  defp wait_for_room(_receiver, _max, :infinity, _span), do: :infinity
  defp wait_for_room(_receiver, _max, room, _span) when room > 0, do: room

  defp wait_for_room(receiver, max, _room, span) do
    case room(receiver, max) do
      room when room > 0 ->
        room

      _full ->
        # One event per pause, once it ends, however many looks it took.
        started = System.monotonic_time()
        room = paused(receiver, max, 1)
        Telemetry.event(span, :pause, %{duration: System.monotonic_time() - started}, %{})
        room
    end
  end

  defp paused(receiver, max, backoff) do
    Process.sleep(backoff)

    case room(receiver, max) do
      room when room > 0 -> room
      _full -> paused(receiver, max, min(backoff * 2, @max_backoff_ms))
    end
  end

  defp internal(message),
    do: %Dynamo.Error{kind: :internal, type: :internal, message: message, retryable: false}

  # A message from its template: a function of the payload, or a term in which the
  # placeholder atoms stand for it.
  defp fill(format, payload, _placeholders, option) when is_function(format, 1) do
    format.(payload)
  rescue
    exception ->
      reraise RuntimeError,
              [message: "#{option} raised #{Exception.format(:error, exception)}"],
              __STACKTRACE__
  end

  defp fill(format, payload, placeholders, _option) when is_tuple(format) do
    format
    |> Tuple.to_list()
    |> Enum.map(&if(&1 in placeholders, do: payload, else: &1))
    |> List.to_tuple()
  end

  defp fill(format, payload, placeholders, _option),
    do: if(format in placeholders, do: payload, else: format)
end
