defmodule ObjectStoreX.LocalStreamFailureTest do
  # A failure in the middle of a download raises; the stream never ends short in silence.
  use ExUnit.Case, async: true

  @mib 1_048_576

  @tag :tmp_dir
  test "a file truncated while it is read raises instead of ending short", %{tmp_dir: dir} do
    file = Path.join(dir, "shrinks.bin")
    File.write!(file, :binary.copy(<<1>>, 20 * @mib))
    {:ok, store} = ObjectStoreX.new(:local, root: dir)

    error =
      assert_raise ObjectStoreX.Error, fn ->
        ObjectStoreX.Stream.download(store, "shrinks.bin", chunk_size: @mib, prefetch_bytes: @mib)
        |> Stream.with_index()
        |> Enum.each(fn {_chunk, index} ->
          # After the first chunk, cut the file to 5 MiB: the download is at most 3 MiB in.
          if index == 0, do: File.write!(file, :binary.copy(<<1>>, 5 * @mib))
        end)
      end

    assert error.message =~ "shrinks.bin ended at byte"
    assert error.path == "shrinks.bin"
  end
end
