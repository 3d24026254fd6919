defmodule CloudStreams.PullStreamTest do
  # Drives native/cloud_streams_nif/src/{stream,synthetic}.rs through CloudStreams.Synthetic.
  # Not async: the native stats are global, and several tests prove they return to zero.
  use ExUnit.Case, async: false

  import CloudStreams.NativeHelpers

  alias CloudStreams.{Native, Synthetic}

  @kib 1024
  @mib 1024 * 1024

  setup do
    assert_native_idle()
    on_exit(fn -> assert_native_idle() end)
  end

  defp expected_chunk(index, size), do: :binary.copy(<<Synthetic.pattern_byte(index)>>, size)

  describe "delivery" do
    test "every chunk arrives, in order, with its content" do
      chunks = Synthetic.stream(chunks: 300, chunk_size: 64 * @kib) |> Enum.to_list()

      assert length(chunks) == 300

      for {chunk, index} <- Enum.with_index(chunks) do
        assert chunk == expected_chunk(index, 64 * @kib)
      end
    end

    test "an empty source ends at once" do
      assert Synthetic.stream(chunks: 0) |> Enum.to_list() == []
    end

    test "chunks larger than the prefetch bound still pass, one at a time" do
      sizes =
        Synthetic.stream(chunks: 5, chunk_size: 4 * @mib, prefetch_bytes: @mib)
        |> Enum.map(&byte_size/1)

      assert sizes == List.duplicate(4 * @mib, 5)
    end

    test "each enumeration opens a new native stream" do
      stream = Synthetic.stream(chunks: 4, chunk_size: 8)
      assert Enum.to_list(stream) == Enum.to_list(stream)
    end

    test "the buffer ahead of a stalled consumer stays within the prefetch bound" do
      parent = self()

      consumer =
        spawn(fn ->
          Synthetic.stream(chunks: 1_000, chunk_size: 64 * @kib, prefetch_bytes: 512 * @kib)
          |> Enum.each(fn _ ->
            send(parent, :first_chunk)
            Process.sleep(:infinity)
          end)
        end)

      assert_receive :first_chunk, 5_000
      # The producer fills the buffer, then waits: 8 chunks of 64 KiB fit in 512 KiB. The
      # hand-off of the first chunk is a task of its own, counted until it has sent it.
      stats = wait_for_stats(&(&1.buffered_items == 8 and &1.live_tasks == 1))
      Process.sleep(100)
      assert CloudStreams.stats() == stats
      assert stats.buffered_bytes == 512 * @kib

      Process.exit(consumer, :kill)
    end
  end

  describe "processes" do
    test "a stream built in one process is consumed in another" do
      stream = Synthetic.stream(chunks: 20, chunk_size: 1_000, delay: 1)
      task = Task.async(fn -> Enum.map(stream, &:binary.first/1) end)

      assert Task.await(task) == Enum.map(0..19, &Synthetic.pattern_byte/1)
    end

    test "streams work inside Task.async_stream" do
      sums =
        1..8
        |> Task.async_stream(
          fn n ->
            Synthetic.stream(chunks: n * 10, chunk_size: 10_000, delay: 1)
            |> Enum.reduce(0, &(byte_size(&1) + &2))
          end,
          max_concurrency: 8
        )
        |> Enum.map(fn {:ok, sum} -> sum end)

      assert sums == Enum.map(1..8, &(&1 * 10 * 10_000))
    end

    test "no message of ours arrives unasked, while the consumer receives unrelated ones" do
      consumer = self()

      spammer =
        spawn_link(fn ->
          Stream.iterate(0, &(&1 + 1))
          |> Enum.each(fn n ->
            send(consumer, {:unrelated, n})
            Process.sleep(1)
          end)
        end)

      # The producer makes a chunk every 2 ms; the consumer takes 10 ms per chunk, so chunks
      # are always ready while it works. A push design would put them in the mailbox here.
      seen =
        Synthetic.stream(chunks: 40, chunk_size: 4 * @kib, delay: 2)
        |> Enum.map(fn _chunk ->
          Process.sleep(10)
          drain_mailbox()
        end)

      Process.unlink(spammer)
      Process.exit(spammer, :kill)

      messages = List.flatten(seen)
      assert Enum.count(messages, &match?({:unrelated, _}, &1)) > 40
      assert Enum.filter(messages, &stream_message?/1) == []
    end
  end

  describe "cancellation" do
    test "Enum.take/2 stops the native task and frees its buffer" do
      assert [_, _, _] = Synthetic.stream(chunks: 10_000, chunk_size: 64 * @kib) |> Enum.take(3)
      assert_native_idle()
    end

    test "an exception in the consumer stops the native task" do
      assert_raise RuntimeError, "consumer failed", fn ->
        Synthetic.stream(chunks: 10_000, chunk_size: 64 * @kib)
        |> Stream.with_index()
        |> Enum.each(fn {_, index} -> if index == 5, do: raise("consumer failed") end)
      end

      assert_native_idle()
    end

    test "killing the consuming process stops the native task" do
      parent = self()

      consumer =
        spawn(fn ->
          Synthetic.stream(chunks: 10_000, chunk_size: 64 * @kib)
          |> Enum.each(fn _ ->
            send(parent, :consuming)
            Process.sleep(:infinity)
          end)
        end)

      assert_receive :consuming, 5_000
      # The first chunk's hand-off task may still be ending.
      wait_for_stats(&match?(%{live_tasks: 1, open_streams: 1}, &1))

      Process.exit(consumer, :kill)
      assert_native_idle()
    end

    test "garbage collection of an abandoned handle stops its task" do
      parent = self()

      holder =
        spawn(fn ->
          open_and_forget = fn ->
            _handle = Native.synthetic_stream(native_opts(chunks: 1_000_000, chunk_size: 1_024))
            :ok
          end

          open_and_forget.()
          send(parent, {:opened, CloudStreams.stats()})
          :erlang.garbage_collect()
          send(parent, :collected)
          Process.sleep(:infinity)
        end)

      assert_receive {:opened, %{live_tasks: 1, open_streams: 1}}, 5_000
      assert_receive :collected, 5_000
      # The holder is alive: only the collection of its garbage can have stopped the task.
      assert_native_idle()
      assert Process.alive?(holder)
      Process.exit(holder, :kill)
    end

    test "10,000 streams opened and abandoned leak nothing" do
      binary_before = :erlang.memory(:binary)

      task =
        Task.async(fn ->
          for _ <- 1..10_000 do
            handle = Native.synthetic_stream(native_opts(chunks: 100, chunk_size: 1_024))
            # Half are pulled once (which may arm a delivery), half never.
            if :rand.uniform(2) == 1, do: Native.stream_pull(handle, make_ref())
          end

          :erlang.garbage_collect()
          CloudStreams.stats()
        end)

      Task.await(task, 60_000)
      assert_native_idle(30_000)
      assert :erlang.memory(:binary) - binary_before < 16 * @mib
    end
  end

  describe "errors" do
    test "a failure mid-stream raises after the chunks before it" do
      parent = self()

      error =
        assert_raise CloudStreams.Error, fn ->
          Synthetic.stream(chunks: 10, chunk_size: 100, fail_after: 3)
          |> Enum.each(&send(parent, {:chunk, &1}))
        end

      assert error.kind == :network
      assert error.retryable
      assert Exception.message(error) =~ "synthetic failure after 3 chunks"

      for index <- 0..2 do
        expected = expected_chunk(index, 100)
        assert_received {:chunk, ^expected}
      end

      refute_received {:chunk, _}
      assert CloudStreams.Error.retryable?(error)
      assert_native_idle()
    end

    test "a panic in the native task becomes an error and the VM lives" do
      error =
        assert_raise CloudStreams.Error, fn ->
          Synthetic.stream(chunks: 10, chunk_size: 100, panic_after: 2) |> Stream.run()
        end

      assert error.kind == :internal
      assert error.message =~ "native panic: synthetic panic after 2 chunks"
      refute error.retryable
      assert_native_idle()

      # The runtime still works after the panic.
      assert Synthetic.stream(chunks: 3, chunk_size: 1) |> Enum.to_list() == [<<0>>, <<1>>, <<2>>]
    end

    test "a panic inside a NIF call raises in the caller and the VM lives" do
      assert_raise ErlangError, ~r/nif_panicked/, fn -> Native.synthetic_nif_panic() end
      assert Synthetic.stream(chunks: 1, chunk_size: 1) |> Enum.to_list() == [<<0>>]
    end

    test "a slow source raises a :timeout error, stops, and leaves no late message" do
      error =
        assert_raise CloudStreams.Error, fn ->
          Synthetic.stream(chunks: 3, chunk_size: 10, delay: 300, timeout: 50) |> Stream.run()
        end

      assert error.kind == :timeout
      assert error.retryable
      assert error.message =~ "within 50 ms"
      assert_native_idle()

      # Past the moment the chunk would have been produced: nothing of ours may arrive.
      Process.sleep(400)
      assert Enum.filter(drain_mailbox(), &stream_message?/1) == []
    end

    test "bad options raise ArgumentError naming the option" do
      assert_raise ArgumentError, ~r/unknown option :chunk for CloudStreams.Synthetic/, fn ->
        Synthetic.stream(chunks: 1, chunk: 1)
      end

      assert_raise ArgumentError,
                   ~r/option :chunk_size .* expected an integer from 1 to \d+, got: 0/,
                   fn ->
                     Synthetic.stream(chunks: 1, chunk_size: 0)
                   end

      assert_raise ArgumentError, ~r/missing required option :chunks/, fn ->
        Synthetic.stream(chunk_size: 10)
      end

      assert_raise ArgumentError, ~r/option :timeout .* got: :soon/, fn ->
        Synthetic.stream(chunks: 1, timeout: :soon)
      end

      assert_raise ArgumentError, ~r/expects a keyword list of options/, fn ->
        Synthetic.stream(%{chunks: 1})
      end
    end
  end

  describe "schedulers" do
    test "a pull never blocks a scheduler" do
      parent = self()

      consumer =
        spawn(fn ->
          receive do
            :go -> :ok
          end

          # Slow chunks: a blocking pull would hold the scheduler for each 100 ms delay.
          Synthetic.stream(chunks: 5, chunk_size: @mib, delay: 100) |> Stream.run()
          # Fast, large chunks: a pull that copied data would show here.
          Synthetic.stream(chunks: 512, chunk_size: @mib) |> Stream.run()
          send(parent, :done)
        end)

      :erlang.system_monitor(self(), [{:long_schedule, 40}])

      try do
        send(consumer, :go)
        assert_receive :done, 30_000
      after
        :erlang.system_monitor(:undefined)
      end

      long = for {:monitor, ^consumer, :long_schedule, info} <- drain_mailbox(), do: info
      assert long == []
    end
  end

  defp native_opts(opts) do
    Map.merge(
      %{delay_ms: 0, fail_after: nil, panic_after: nil, prefetch: 4 * @kib},
      Map.new(opts)
    )
  end
end
