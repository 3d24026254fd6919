defmodule ObjectStoreX.StreamConformance do
  @moduledoc false
  # The streaming half of the conformance suite: download, upload and list_stream on every
  # backend. Used like ObjectStoreX.Conformance:
  #
  #     use ObjectStoreX.StreamConformance, store: fn prefix -> ... end

  defmacro __using__(opts) do
    quote do
      use ExUnit.Case, async: false

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
              OS.download(store, "slow.bin", chunk_size: 256 * 1024, prefetch: @mib)
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

          assert_raise ArgumentError, ~r/invalid range/, fn ->
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

          assert_raise ArgumentError, ~r/:part_size .* at least 5242880/, fn ->
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

      describe "list_stream" do
        test "lists every object under a prefix, lazily", %{store: store} do
          paths = for i <- 1..60, do: "dir/#{String.pad_leading(to_string(i), 3, "0")}"

          paths
          |> Task.async_stream(&ObjectStoreX.put(store, &1, "x"), max_concurrency: 16)
          |> Stream.run()

          :ok = ObjectStoreX.put(store, "elsewhere", "x")

          listed = OS.list_stream(store, prefix: "dir", page_size: 7) |> Enum.map(& &1.location)
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
