defmodule ObjectStoreX.Conformance do
  @moduledoc false
  # The one conformance suite every object-store backend runs (like object_store's own
  # integration tests). A backend's test module does:
  #
  #     use ObjectStoreX.Conformance, store: fn prefix -> ObjectStoreX.new(:memory, prefix: prefix) end
  #
  # Each test gets a store under a fresh prefix, so tests of one backend run concurrently and
  # never see each other's objects. What a backend supports is declared with the options
  # `signed_urls:`, `conditional_update:` and `attributes:` (booleans); where a feature is
  # missing, the suite checks that the backend says so with a clear error instead.

  defmacro __using__(opts) do
    signed_urls? = Keyword.get(opts, :signed_urls, false)
    conditional_update? = Keyword.get(opts, :conditional_update, false)
    attributes? = Keyword.get(opts, :attributes, false)

    quote do
      use ExUnit.Case, async: true
      @moduletag unquote(Keyword.get(opts, :moduletag, []))

      alias ObjectStoreX.{Error, Meta}

      setup do
        # Unique across runs too: stores and directories may outlive a run.
        prefix =
          "conformance-#{System.os_time(:millisecond)}-#{System.unique_integer([:positive])}"

        {:ok, store} = unquote(opts[:store]).(prefix)
        {:ok, store: store}
      end

      defp sample(size), do: for(i <- 0..(size - 1)//1, into: <<>>, do: <<rem(i * 7, 256)>>)

      describe "put, get, head" do
        test "round-trips binaries, iodata and empty objects", %{store: store} do
          data = sample(100_000)
          assert :ok = ObjectStoreX.put(store, "blob.bin", data)

          assert {:ok, ^data, %Meta{location: "blob.bin", size: 100_000}} =
                   ObjectStoreX.get(store, "blob.bin")

          assert :ok = ObjectStoreX.put(store, "iodata.txt", ["he", ?l, ["lo"]])
          assert ObjectStoreX.get!(store, "iodata.txt") == "hello"

          assert :ok = ObjectStoreX.put(store, "empty", "")
          assert {:ok, "", %Meta{size: 0}} = ObjectStoreX.get(store, "empty")
        end

        test "metadata has a UTC last_modified and, where known, an etag", %{store: store} do
          before = DateTime.add(DateTime.utc_now(), -120, :second)
          :ok = ObjectStoreX.put(store, "m.txt", "abc")

          assert {:ok, %Meta{size: 3, location: "m.txt", last_modified: modified} = meta} =
                   ObjectStoreX.head(store, "m.txt")

          assert %DateTime{time_zone: "Etc/UTC"} = modified
          assert DateTime.compare(modified, before) == :gt
          assert is_binary(meta.etag) or is_nil(meta.etag)
        end

        test "a missing object is :not_found, with its path, not retryable", %{store: store} do
          for result <- [
                ObjectStoreX.get(store, "nope/x.bin"),
                ObjectStoreX.head(store, "nope/x.bin")
              ] do
            assert {:error, %Error{kind: :not_found, path: "nope/x.bin"} = error} = result
            refute Error.retryable?(error)
            assert Exception.message(error) =~ "not found"
          end
        end

        test "unicode, spaces and nested paths", %{store: store} do
          paths = ["dir/sub dir/file name.txt", "ünïcödé/日本語.txt", "a/b/c/d/e/f.bin"]

          for path <- paths do
            assert :ok = ObjectStoreX.put(store, path, path)
            assert ObjectStoreX.get!(store, path) == path
          end

          assert {:ok, metas} = ObjectStoreX.list(store)
          assert Enum.sort(Enum.map(metas, & &1.location)) == Enum.sort(paths)
        end

        test "put :create refuses to replace an object", %{store: store} do
          assert :ok = ObjectStoreX.put(store, "once", "1", mode: :create)

          assert {:error, %Error{kind: :already_exists, path: "once"}} =
                   ObjectStoreX.put(store, "once", "2", mode: :create)

          assert ObjectStoreX.get!(store, "once") == "1"
        end

        if unquote(conditional_update?) do
          test "put {:update, version} succeeds only against the current version", %{store: store} do
            :ok = ObjectStoreX.put(store, "doc", "v1")
            {:ok, meta} = ObjectStoreX.head(store, "doc")
            stale = {:update, %{etag: "\"stale\"", version: nil}}

            assert {:error, %Error{kind: :precondition_failed}} =
                     ObjectStoreX.put(store, "doc", "v2", mode: stale)

            current = {:update, %{etag: meta.etag, version: meta.version}}
            assert :ok = ObjectStoreX.put(store, "doc", "v2", mode: current)
            assert ObjectStoreX.get!(store, "doc") == "v2"
          end
        else
          test "put {:update, version} is refused as :not_supported", %{store: store} do
            :ok = ObjectStoreX.put(store, "doc", "v1")
            mode = {:update, %{etag: "x", version: nil}}

            assert {:error, %Error{kind: :not_supported}} =
                     ObjectStoreX.put(store, "doc", "v2", mode: mode)
          end
        end

        test "conditional gets: if_match, if_none_match, if_(un)modified_since", %{store: store} do
          :ok = ObjectStoreX.put(store, "c", "data")
          {:ok, meta} = ObjectStoreX.head(store, "c")
          future = DateTime.add(DateTime.utc_now(), 3600, :second)
          past = ~U[2000-01-01 00:00:00Z]

          assert {:error, %Error{kind: :precondition_failed}} =
                   ObjectStoreX.get(store, "c", if_match: "\"other\"")

          assert {:error, %Error{kind: :not_modified}} =
                   ObjectStoreX.get(store, "c", if_none_match: meta.etag)

          assert {:error, %Error{kind: :not_modified}} =
                   ObjectStoreX.get(store, "c", if_modified_since: future)

          assert {:error, %Error{kind: :precondition_failed}} =
                   ObjectStoreX.get(store, "c", if_unmodified_since: past)

          assert {:ok, "data", _} = ObjectStoreX.get(store, "c", if_modified_since: past)
          assert {:ok, "data", _} = ObjectStoreX.get(store, "c", if_match: meta.etag)
          assert {:ok, "data", _} = ObjectStoreX.get(store, "c", if_none_match: "\"other\"")
        end

        if unquote(attributes?) do
          test "content attributes and metadata are accepted", %{store: store} do
            assert :ok =
                     ObjectStoreX.put(store, "page.html", "<p>hi</p>",
                       content_type: "text/html",
                       cache_control: "max-age=60",
                       metadata: %{"owner" => "tests"}
                     )

            assert ObjectStoreX.get!(store, "page.html") == "<p>hi</p>"
          end
        else
          test "content attributes are refused as :not_supported", %{store: store} do
            assert {:error, %Error{kind: :not_supported}} =
                     ObjectStoreX.put(store, "page.html", "<p>hi</p>", content_type: "text/html")
          end
        end
      end

      describe "ranges" do
        setup %{store: store} do
          :ok = ObjectStoreX.put(store, "r.bin", "0123456789")
          :ok
        end

        test "every range form, at the edges", %{store: store} do
          get = fn range -> ObjectStoreX.get!(store, "r.bin", range: range) end

          assert get.({0, 0}) == "0"
          assert get.({9, 9}) == "9"
          assert get.({0, 999}) == "0123456789"
          assert get.({5, 1_000}) == "56789"
          assert get.(2..4) == "234"
          assert get.({:offset, 7}) == "789"
          assert get.({:suffix, 3}) == "789"
          assert get.({:suffix, 100}) == "0123456789"
        end

        test "the metadata of a range read describes the whole object", %{store: store} do
          assert {:ok, "12", %Meta{size: 10}} = ObjectStoreX.get(store, "r.bin", range: {1, 2})
        end

        test "a range starting past the end is an :invalid_argument error", %{store: store} do
          assert {:error, %Error{kind: :invalid_argument}} =
                   ObjectStoreX.get(store, "r.bin", range: {10, 20})

          :ok = ObjectStoreX.put(store, "empty", "")

          assert {:error, %Error{kind: :invalid_argument}} =
                   ObjectStoreX.get(store, "empty", range: {0, 0})
        end

        test "inverted and negative ranges raise ArgumentError", %{store: store} do
          for bad <- [{5, 2}, {-1, 3}, {:suffix, 0}, {:offset, -1}, 5..2//-1, :all, {1, 2, 3}] do
            assert_raise ArgumentError, ~r/invalid (range|value for option :range)/, fn ->
              ObjectStoreX.get(store, "r.bin", range: bad)
            end
          end
        end

        test "get_ranges returns the parts in order, coalescing and cutting at the end", %{
          store: store
        } do
          assert {:ok, ["01", "23", "9", "789", "56789"]} =
                   ObjectStoreX.get_ranges(store, "r.bin", [
                     {0, 1},
                     2..3,
                     {9, 50},
                     {:suffix, 3},
                     {:offset, 5}
                   ])

          assert {:ok, []} = ObjectStoreX.get_ranges(store, "r.bin", [])

          assert {:error, %Error{kind: :not_found}} =
                   ObjectStoreX.get_ranges(store, "none", [{0, 1}])

          assert {:error, %Error{kind: :invalid_argument}} =
                   ObjectStoreX.get_ranges(store, "r.bin", [{20, 30}])
        end
      end

      describe "delete, copy, rename" do
        test "delete removes, and deleting what is missing succeeds", %{store: store} do
          :ok = ObjectStoreX.put(store, "d", "x")
          assert :ok = ObjectStoreX.delete(store, "d")
          assert {:error, %Error{kind: :not_found}} = ObjectStoreX.head(store, "d")
          assert :ok = ObjectStoreX.delete(store, "d")
        end

        test "delete_many counts deletions and reports failures by path", %{store: store} do
          paths = for i <- 1..25, do: "many/#{i}"
          for p <- paths, do: :ok = ObjectStoreX.put(store, p, "x")

          assert {:ok, 26, [{"bad/../path", %Error{kind: :invalid_argument}}]} =
                   ObjectStoreX.delete_many(store, paths ++ ["many/missing", "bad/../path"])

          assert {:ok, []} = ObjectStoreX.list(store, prefix: "many")
          assert {:ok, 0, []} = ObjectStoreX.delete_many(store, [])
        end

        test "copy and copy_if_not_exists", %{store: store} do
          :ok = ObjectStoreX.put(store, "src", "payload")
          :ok = ObjectStoreX.put(store, "taken", "old")

          assert :ok = ObjectStoreX.copy(store, "src", "dst")
          assert ObjectStoreX.get!(store, "dst") == "payload"
          assert :ok = ObjectStoreX.copy(store, "src", "taken")
          assert ObjectStoreX.get!(store, "taken") == "payload"

          assert {:error, %Error{kind: :already_exists}} =
                   ObjectStoreX.copy_if_not_exists(store, "src", "dst")

          assert :ok = ObjectStoreX.copy_if_not_exists(store, "src", "fresh")
          assert {:error, %Error{kind: :not_found}} = ObjectStoreX.copy(store, "missing", "x")
        end

        test "rename and rename_if_not_exists", %{store: store} do
          :ok = ObjectStoreX.put(store, "a", "A")
          :ok = ObjectStoreX.put(store, "b", "B")

          assert {:error, %Error{kind: :already_exists}} =
                   ObjectStoreX.rename_if_not_exists(store, "a", "b")

          assert :ok = ObjectStoreX.rename(store, "a", "c")
          assert {:error, %Error{kind: :not_found}} = ObjectStoreX.head(store, "a")
          assert ObjectStoreX.get!(store, "c") == "A"
          assert :ok = ObjectStoreX.rename_if_not_exists(store, "c", "d")
          assert ObjectStoreX.get!(store, "d") == "A"
        end
      end

      describe "listing" do
        setup %{store: store} do
          for p <- [
                "logs/2025/a.log",
                "logs/2025/b.log",
                "logs/2026/c.log",
                "logs/top.log",
                "other/x"
              ] do
            :ok = ObjectStoreX.put(store, p, p)
          end

          :ok
        end

        test "list by prefix, recursively, and after an offset", %{store: store} do
          locations = fn {:ok, metas} -> metas |> Enum.map(& &1.location) |> Enum.sort() end

          assert locations.(ObjectStoreX.list(store, prefix: "logs/2025")) == [
                   "logs/2025/a.log",
                   "logs/2025/b.log"
                 ]

          assert length(locations.(ObjectStoreX.list(store))) == 5

          assert locations.(ObjectStoreX.list(store, prefix: "logs", offset: "logs/2025/b.log")) ==
                   ["logs/2026/c.log", "logs/top.log"]

          assert ObjectStoreX.list(store, prefix: "nothing-here") == {:ok, []}
        end

        test "list_with_delimiter gives one level", %{store: store} do
          assert {:ok, %{objects: objects, common_prefixes: prefixes}} =
                   ObjectStoreX.list_with_delimiter(store, prefix: "logs")

          assert Enum.map(objects, & &1.location) == ["logs/top.log"]
          assert Enum.sort(prefixes) == ["logs/2025", "logs/2026"]
        end
      end

      describe "bad input" do
        test "wrong types and unknown options raise ArgumentError naming the problem", %{
          store: store
        } do
          assert_raise ArgumentError, ~r/path as a string, got: :atom/, fn ->
            ObjectStoreX.get(store, :atom)
          end

          assert_raise ArgumentError, ~r/path as a string/, fn ->
            ObjectStoreX.put(store, 42, "x")
          end

          assert_raise ArgumentError, ~r/data as a binary or iodata/, fn ->
            ObjectStoreX.put(store, "x", %{a: 1})
          end

          assert_raise ArgumentError, ~r/unknown option :rnage/, fn ->
            ObjectStoreX.get(store, "x", rnage: {0, 1})
          end

          assert_raise ArgumentError, ~r/option :mode/, fn ->
            ObjectStoreX.put(store, "x", "y", mode: :append)
          end

          assert_raise ArgumentError, ~r/:if_modified_since .*expected nil or a DateTime/, fn ->
            ObjectStoreX.get(store, "x", if_modified_since: "yesterday")
          end

          assert_raise ArgumentError, ~r/list of ranges/, fn ->
            ObjectStoreX.get_ranges(store, "x", {0, 1})
          end

          assert_raise ArgumentError, ~r/list of path strings/, fn ->
            ObjectStoreX.delete_many(store, "x")
          end

          assert_raise ArgumentError, ~r/option :expires_in/, fn ->
            ObjectStoreX.signed_url(store, "x", expires_in: -1)
          end
        end

        test "invalid paths are :invalid_argument errors", %{store: store} do
          for path <- ["../escape", "a/../b", "a//b", "", "a/./b"] do
            assert {:error, %Error{kind: :invalid_argument}} = ObjectStoreX.put(store, path, "x"),
                   "path #{inspect(path)} was accepted"

            assert {:error, %Error{kind: :invalid_argument}} = ObjectStoreX.get(store, path)
          end
        end
      end

      describe "concurrency" do
        test "2,000 concurrent gets from as many processes", %{store: store} do
          :ok = ObjectStoreX.put(store, "hot", "shared")

          results =
            1..2_000
            # Each call waits in line behind the others on a slow emulator: it gets the
            # test's bound, not the interactive default of 30 s.
            |> Task.async_stream(fn _ -> ObjectStoreX.get!(store, "hot", timeout: 120_000) end,
              max_concurrency: 2_000,
              timeout: 120_000
            )
            |> Enum.map(fn {:ok, data} -> data end)

          assert length(results) == 2_000
          assert Enum.all?(results, &(&1 == "shared"))
        end
      end

      describe "signed URLs" do
        if unquote(signed_urls?) do
          test "a signed GET URL serves the object", %{store: store} do
            :ok = ObjectStoreX.put(store, "shared.txt", "from a signed url")
            assert {:ok, url} = ObjectStoreX.signed_url(store, "shared.txt", expires_in: 300)

            {:ok, _} = Application.ensure_all_started(:inets)

            assert {:ok, {{_, 200, _}, _, body}} =
                     :httpc.request(:get, {to_charlist(url), []}, [], body_format: :binary)

            assert body == "from a signed url"
          end
        else
          test "stores that cannot sign say so", %{store: store} do
            assert {:error, %Error{kind: :not_supported}} = ObjectStoreX.signed_url(store, "x")
          end
        end
      end
    end
  end
end
