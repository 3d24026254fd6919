defmodule ObjectStoreX.ConfineToRootTest do
  # Real symlinks on the local disk: a root holding links to a file and a directory outside
  # it, a link inside it, and a dangling link pointing outside.
  use ExUnit.Case, async: true

  alias ObjectStoreX.Stream, as: OS

  setup do
    base =
      Path.join(
        System.tmp_dir!(),
        "cs_confine_#{System.pid()}_#{System.unique_integer([:positive])}"
      )

    {root, outside} = {Path.join(base, "root"), Path.join(base, "outside")}
    File.mkdir_p!(Path.join(root, "dir"))
    File.mkdir_p!(outside)
    File.write!(Path.join(outside, "secret.txt"), "outside")
    File.write!(Path.join(root, "dir/inside.txt"), "inside")
    File.ln_s!(Path.join(outside, "secret.txt"), Path.join(root, "file_link"))
    File.ln_s!(outside, Path.join(root, "dir_link"))
    File.ln_s!(Path.join(root, "dir/inside.txt"), Path.join(root, "inner_link"))
    File.ln_s!(Path.join(outside, "missing"), Path.join(root, "dangling"))
    on_exit(fn -> File.rm_rf!(base) end)

    {:ok, confined} = ObjectStoreX.new(:local, root: root, confine_to_root: true)
    {:ok, open} = ObjectStoreX.new(:local, root: root)
    %{confined: confined, open: open, outside: outside, root: root}
  end

  defp denied?({:error, %ObjectStoreX.Error{kind: :permission_denied}}), do: true
  defp denied?(_other), do: false

  test "every operation refuses a path that resolves outside the root", c do
    store = c.confined

    for path <- ["file_link", "dir_link/secret.txt", "dangling"] do
      assert denied?(ObjectStoreX.get(store, path)), path
      assert denied?(ObjectStoreX.head(store, path)), path
      assert denied?(ObjectStoreX.get_ranges(store, path, [{0, 1}])), path
      assert denied?(ObjectStoreX.delete(store, path)), path
      assert denied?(ObjectStoreX.copy(store, path, "dir/copied")), path
      assert denied?(ObjectStoreX.rename(store, path, "dir/moved")), path
      assert denied?(ObjectStoreX.put(store, path, "overwritten")), path

      assert_raise ObjectStoreX.Error, ~r/outside the store's root/, fn ->
        store |> OS.download(path) |> Enum.to_list()
      end

      target = Path.join(System.tmp_dir!(), "cs_confine_dl_#{System.unique_integer([:positive])}")
      assert denied?(OS.download_file(store, path, target))
    end

    assert denied?(ObjectStoreX.put(store, "dir_link/new.txt", "x"))
    assert denied?(OS.upload(["x"], store, "dir_link/new.txt"))
    assert denied?(ObjectStoreX.copy(store, "dir/inside.txt", "dir_link/copied.txt"))
    assert denied?(ObjectStoreX.rename(store, "dir/inside.txt", "dir_link/moved.txt"))

    # Nothing outside was read, written or removed.
    assert File.ls!(c.outside) == ["secret.txt"]
    assert File.read!(Path.join(c.outside, "secret.txt")) == "outside"
  end

  test "listings leave out what resolves outside the root", c do
    {:ok, metas} = ObjectStoreX.list(c.confined)
    listed = Enum.map(metas, & &1.location)
    assert "dir/inside.txt" in listed
    assert "inner_link" in listed
    refute Enum.any?(listed, &String.starts_with?(&1, ["dir_link", "file_link"]))

    streamed = c.confined |> OS.list_stream(prefix: "dir_link") |> Enum.to_list()
    assert streamed == []

    {:ok, %{objects: objects}} = ObjectStoreX.list_with_delimiter(c.confined)
    refute Enum.any?(objects, &(&1.location == "file_link"))
  end

  test "a store prefix naming a link outside the root is refused too", c do
    {:ok, store} =
      ObjectStoreX.new(:local, root: c.root, prefix: "dir_link", confine_to_root: true)

    assert denied?(ObjectStoreX.get(store, "secret.txt"))
    assert denied?(ObjectStoreX.put(store, "planted.txt", "x"))
    assert {:ok, []} = ObjectStoreX.list(store)
    assert File.ls!(c.outside) == ["secret.txt"]
  end

  test "paths inside the root, links among them, work as usual", c do
    assert {:ok, "inside", _} = ObjectStoreX.get(c.confined, "inner_link")
    assert :ok = ObjectStoreX.put(c.confined, "dir/new/deeper.txt", "x")
    assert :ok = OS.upload(["y"], c.confined, "dir/uploaded.txt")
    assert :ok = ObjectStoreX.rename(c.confined, "dir/uploaded.txt", "dir/renamed.txt")
    assert OS.download(c.confined, "dir/renamed.txt") |> Enum.join() == "y"
  end

  test "by default links are followed wherever they point (documented)", c do
    assert {:ok, "outside", _} = ObjectStoreX.get(c.open, "file_link")
    assert {:ok, "outside", _} = ObjectStoreX.get(c.open, "dir_link/secret.txt")
  end

  test "a bad value of the option is an ArgumentError" do
    assert_raise ArgumentError, ~r/:confine_to_root .* expected a boolean/, fn ->
      ObjectStoreX.new(:local, root: System.tmp_dir!(), confine_to_root: "yes")
    end
  end
end
