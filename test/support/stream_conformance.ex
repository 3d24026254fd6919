defmodule ObjectStoreX.StreamConformance do
  @moduledoc false
  # The streaming half of the conformance suite: download, upload and list_stream on every
  # backend. Used like ObjectStoreX.Conformance:
  #
  #     use ObjectStoreX.StreamConformance, store: fn prefix -> ... end

  defmacro __using__(opts) do
    quote do
      use ExUnit.Case, async: false
      @moduletag unquote(Keyword.get(opts, :moduletag, []))

      import CloudStreams.NativeHelpers
      alias ObjectStoreX.{Error, Meta}
      alias ObjectStoreX.Stream, as: OS

      @mib 1_048_576

      setup do
        assert_native_idle()
        prefix = "streams-#{System.os_time(:millisecond)}-#{System.unique_integer([:positive])}"
        {:ok, store} = unquote(opts[:store]).(prefix)
        on_exit(fn -> assert_native_idle() end)
        {:ok, store: store}
      end

      defp data(size), do: :crypto.strong_rand_bytes(size)

      describe "download" do
        test "streams the whole object in chunks of chunk_size", %{store: store} do
          body = data(3 * @mib + 17)
          :ok = ObjectStoreX.put(store, "big.bin", body)

          chunks = OS.download(store, "big.bin", chunk_size: @mib) |> Enum.to_list()

          assert Enum.map(chunks, &byte_size/1) == [@mib, @mib, @mib, 17]
          assert IO.iodata_to_binary(chunks) == body
        end

        test "range reads stream just the range", %{store: store} do
          body = data(100_000)
          :ok = ObjectStoreX.put(store, "r.bin", body)

          assert OS.download(store, "r.bin", range: {10, 50_009}, chunk_size: 4096) |> Enum.join() ==
                   binary_part(body, 10, 50_000)

          assert OS.download(store, "r.bin", range: {:offset, 99_990}) |> Enum.join() ==
                   binary_part(body, 99_990, 10)

          assert OS.download(store, "r.bin", range: {99_000, 200_000}) |> Enum.join() ==
                   binary_part(body, 99_000, 1_000)
        end

        test "an empty object streams nothing", %{store: store} do
          :ok = ObjectStoreX.put(store, "empty", "")
          assert OS.download(store, "empty") |> Enum.to_list() == []
        end

        test "a missing object raises :not_found when enumerated, not when built", %{store: store} do
          stream = OS.download(store, "missing.bin")

          error = assert_raise Error, fn -> Enum.to_list(stream) end
          assert error.kind == :not_found
          assert error.path == "missing.bin"
          refute Error.retryable?(error)
        end

        test "halting early stops the native task", %{store: store} do
          :ok = ObjectStoreX.put(store, "h.bin", data(8 * @mib))
          assert [first] = OS.download(store, "h.bin", chunk_size: @mib) |> Enum.take(1)
          assert byte_size(first) == @mib
          assert_native_idle()
        end

        test "works inside Task.async_stream and across processes", %{store: store} do
          bodies = for i <- 1..4, into: %{}, do: {"p#{i}.bin", data(i * 300_000)}
          for {path, body} <- bodies, do: :ok = ObjectStoreX.put(store, path, body)

          streams =
            for {path, _} <- bodies, do: {path, OS.download(store, path, chunk_size: 65_536)}

          results =
            streams
            |> Task.async_stream(fn {path, stream} -> {path, Enum.join(stream)} end,
              timeout: 60_000
            )
            |> Map.new(fn {:ok, pair} -> pair end)

          assert results == bodies
        end

        test "a slow consumer holds at most prefetch bytes ahead", %{store: store} do
          :ok = ObjectStoreX.put(store, "slow.bin", data(12 * @mib))
          parent = self()

          consumer =
            spawn(fn ->
              OS.download(store, "slow.bin", chunk_size: 256 * 1024, prefetch_bytes: @mib)
              |> Enum.each(fn _ ->
                send(parent, :chunk)
                Process.sleep(:infinity)
              end)
            end)

          assert_receive :chunk, 10_000
          stats = wait_for_stats(&(&1.buffered_bytes >= @mib))
          Process.sleep(200)
          assert CloudStreams.stats().buffered_bytes == stats.buffered_bytes
          assert stats.buffered_bytes <= @mib
          Process.exit(consumer, :kill)
        end

        test "on_progress reports bytes so far and the total", %{store: store} do
          :ok = ObjectStoreX.put(store, "prog.bin", data(2 * @mib + 5))
          parent = self()

          OS.download(store, "prog.bin", on_progress: &send(parent, {:progress, &1, &2}))
          |> Stream.run()

          assert_received {:progress, @mib, 2_097_157}
          assert_received {:progress, 2_097_152, 2_097_157}
          assert_received {:progress, 2_097_157, 2_097_157}
        end

        test "bad options raise ArgumentError naming them", %{store: store} do
          assert_raise ArgumentError, ~r/unknown option :chunk/, fn ->
            OS.download(store, "x", chunk: 1)
          end

          assert_raise ArgumentError, ~r/invalid (range|value for option :range)/, fn ->
            OS.download(store, "x", range: {3, 1})
          end

          assert_raise ArgumentError, ~r/path as a string/, fn -> OS.download(store, nil) end
        end
      end

      describe "upload" do
        test "multipart in equal parts, from chunks of any size", %{store: store} do
          body = data(12 * @mib + 333)
          chunks = chunk_randomly(body)

          assert :ok =
                   OS.upload(chunks, store, "multi.bin", part_size: 5 * @mib, max_concurrency: 2)

          assert ObjectStoreX.get!(store, "multi.bin") == body
        end

        test "a small total becomes a single put; iodata and empty inputs work", %{store: store} do
          assert :ok = OS.upload([["a", ?b], "c"], store, "small.txt")
          assert ObjectStoreX.get!(store, "small.txt") == "abc"
          assert :ok = OS.upload([], store, "nothing.txt")
          assert ObjectStoreX.get!(store, "nothing.txt") == ""
        end

        test "an exception in the enumerable aborts the upload and is re-raised", %{store: store} do
          failing =
            Stream.concat(
              Stream.repeatedly(fn -> data(@mib) end) |> Stream.take(11),
              Stream.map([1], fn _ -> raise "source failed" end)
            )

          assert_raise RuntimeError, "source failed", fn ->
            OS.upload(failing, store, "aborted.bin", part_size: 5 * @mib)
          end

          assert {:error, %Error{kind: :not_found}} = ObjectStoreX.head(store, "aborted.bin")

          # Writes are pipelined: no acknowledgement may arrive after upload/4 has returned.
          Process.sleep(50)
          assert Enum.filter(drain_mailbox(), &match?({tag, _} when is_reference(tag), &1)) == []
        end

        test "an on_progress callback that raises aborts the upload, leaving nothing behind",
             %{store: store} do
          chunks = Stream.repeatedly(fn -> data(@mib) end) |> Stream.take(12)
          fail = fn done, _ -> if done > 6 * @mib, do: raise("progress failed") end

          assert_raise RuntimeError, "progress failed", fn ->
            OS.upload(chunks, store, "progress-fails.bin", part_size: 5 * @mib, on_progress: fail)
          end

          assert {:error, %Error{kind: :not_found}} =
                   ObjectStoreX.head(store, "progress-fails.bin")

          Process.sleep(50)
          assert Enum.filter(drain_mailbox(), &match?({tag, _} when is_reference(tag), &1)) == []
        end

        test "on_progress reports accepted bytes, and the size of a File.stream!", %{store: store} do
          file =
            Path.join(System.tmp_dir!(), "cloud_streams_up_#{System.unique_integer([:positive])}")

          File.write!(file, data(300_000))
          parent = self()

          :ok =
            File.stream!(file, [], 100_000)
            |> OS.upload(store, "from-file.bin", on_progress: &send(parent, {:progress, &1, &2}))

          assert_received {:progress, 100_000, 300_000}
          assert_received {:progress, 300_000, 300_000}
          File.rm!(file)
        end

        test "Enum.into/2 and Stream.into/2 upload through the sink", %{store: store} do
          sink = OS.upload_sink(store, "into.txt")
          assert ^sink = Enum.into(["x", "y", "z"], sink)
          assert ObjectStoreX.get!(store, "into.txt") == "xyz"

          passed =
            ["1", "2"]
            |> Stream.into(OS.upload_sink(store, "stream-into.txt"))
            |> Enum.to_list()

          assert passed == ["1", "2"]
          assert ObjectStoreX.get!(store, "stream-into.txt") == "12"
        end

        test "bad input: data that is not iodata aborts and raises", %{store: store} do
          assert_raise ArgumentError, fn -> OS.upload([%{not: :iodata}], store, "bad.bin") end

          assert_raise ArgumentError, ~r/:part_size .* from 5242880 to/, fn ->
            OS.upload(["x"], store, "x", part_size: 1024)
          end

          assert_raise ArgumentError, ~r/unknown option :parts/, fn ->
            OS.upload(["x"], store, "x", parts: 2)
          end

          assert {:error, %Error{kind: :invalid_argument}} = OS.upload(["x"], store, "../escape")
        end

        test "download |> upload copies with bounded memory", %{store: store} do
          body = data(11 * @mib)
          :ok = ObjectStoreX.put(store, "source.bin", body)

          assert :ok =
                   OS.download(store, "source.bin")
                   |> OS.upload(store, "copy.bin", part_size: 5 * @mib)

          assert ObjectStoreX.get!(store, "copy.bin") == body
        end
      end

      describe "download_file" do
        setup do
          dir =
            Path.join(System.tmp_dir!(), "cloud_streams_dl_#{System.unique_integer([:positive])}")

          File.mkdir_p!(dir)
          on_exit(fn -> File.rm_rf!(dir) end)
          {:ok, dir: dir}
        end

        test "fetches the object in parallel parts, reporting progress", %{store: store, dir: dir} do
          body = data(5 * @mib + 3)
          :ok = ObjectStoreX.put(store, "whole.bin", body)
          target = Path.join(dir, "whole.bin")
          parent = self()

          assert :ok =
                   OS.download_file(store, "whole.bin", target,
                     part_size: @mib,
                     max_concurrency: 3,
                     on_progress: &send(parent, {:progress, &1, &2})
                   )

          assert File.read!(target) == body
          assert File.ls!(dir) == ["whole.bin"]
          assert_received {:progress, 5_242_883, 5_242_883}
          assert length(for {:progress, _, _} <- drain_mailbox(), do: 1) == 5
        end

        test "an empty object makes an empty file; a missing one an error", %{
          store: store,
          dir: dir
        } do
          :ok = ObjectStoreX.put(store, "empty", "")
          assert :ok = OS.download_file(store, "empty", Path.join(dir, "empty"))
          assert File.read!(Path.join(dir, "empty")) == ""

          assert {:error, %Error{kind: :not_found}} =
                   OS.download_file(store, "missing", Path.join(dir, "missing"))
        end

        test "resumes after its caller died, and starts afresh when the object changed",
             %{store: store, dir: dir} do
          body = data(8 * @mib)
          :ok = ObjectStoreX.put(store, "resume.bin", body)
          target = Path.join(dir, "resume.bin")
          opts = [part_size: @mib, max_concurrency: 1]

          # The caller dies after two parts: its download stops and leaves its state behind.
          die_after_two_parts = fn done, _total ->
            if done >= 2 * @mib, do: Process.exit(self(), :kill)
          end

          {pid, ref} =
            spawn_monitor(fn ->
              OS.download_file(
                store,
                "resume.bin",
                target,
                [on_progress: die_after_two_parts] ++ opts
              )
            end)

          assert_receive {:DOWN, ^ref, :process, ^pid, :killed}, 10_000
          assert_native_idle()
          refute File.exists?(target)
          assert File.exists?(target <> ".partial.state")

          parent = self()

          assert :ok =
                   OS.download_file(
                     store,
                     "resume.bin",
                     target,
                     [on_progress: &send(parent, {:progress, &1, &2})] ++ opts
                   )

          assert File.read!(target) == body
          # The first report is what the earlier attempt had already fetched.
          assert_received {:progress, first, 8_388_608}
          assert first >= 2 * @mib

          # A changed object is fetched whole, whatever a stale state says.
          File.write!(target <> ".partial", :binary.copy(<<0>>, 8 * @mib))
          File.write!(target <> ".partial.state", "\"stale\" 8388608 1048576\n0\n1\n")
          new_body = data(3 * @mib)
          :ok = ObjectStoreX.put(store, "resume.bin", new_body)
          assert :ok = OS.download_file(store, "resume.bin", target, opts)
          assert File.read!(target) == new_body
        end
      end

      describe "list_stream" do
        test "lists every object under a prefix, lazily", %{store: store} do
          paths = for i <- 1..60, do: "dir/#{String.pad_leading(to_string(i), 3, "0")}"

          paths
          |> Task.async_stream(&ObjectStoreX.put(store, &1, "x"), max_concurrency: 16)
          |> Stream.run()

          :ok = ObjectStoreX.put(store, "elsewhere", "x")

          listed = OS.list_stream(store, prefix: "dir", batch_size: 7) |> Enum.map(& &1.location)
          assert Enum.sort(listed) == paths
          assert [%Meta{size: 1} | _] = OS.list_stream(store, prefix: "dir") |> Enum.take(1)
          assert_native_idle()
        end

        test "an empty listing is an empty stream", %{store: store} do
          assert OS.list_stream(store, prefix: "nothing-here") |> Enum.to_list() == []
        end
      end

      defp chunk_randomly(body, acc \\ [])
      defp chunk_randomly(<<>>, acc), do: Enum.reverse(acc)

      defp chunk_randomly(body, acc) do
        size = min(byte_size(body), Enum.random([1, 100, 65_536, 1_000_003, 3 * @mib]))
        <<chunk::binary-size(size), rest::binary>> = body
        chunk_randomly(rest, [chunk | acc])
      end
    end
  end
end
