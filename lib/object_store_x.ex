defmodule ObjectStoreX do
  @moduledoc """
  Object stores (memory, local disk, S3 and S3-compatible stores, Google Cloud Storage,
  Azure Blob Storage, plain HTTP) over the Rust `object_store` crate.

  Every operation runs on the native runtime and answers by message: no scheduler ever waits
  on the network, and thousands of processes can call at once. Errors are
  `{:error, %ObjectStoreX.Error{}}` with a `kind` to branch on; bad arguments raise
  `ArgumentError` naming the option. Streaming (download, upload, listing) is in
  `ObjectStoreX.Stream`.

      iex> {:ok, store} = ObjectStoreX.new(:memory)
      iex> :ok = ObjectStoreX.put(store, "greeting.txt", "hello world")
      iex> {:ok, data, meta} = ObjectStoreX.get(store, "greeting.txt", range: {0, 4})
      iex> {data, meta.size}
      {"hello", 11}

  ## Paths

  Paths are strings such as `"data/2025/file.bin"`: `/`-separated, with no empty, `.` or
  `..` segment. Unicode and spaces are fine.

  ## Ranges

  `range:` (and each range of `get_ranges/4`) takes `{first, last}` or `first..last`, both
  including `last` (as HTTP `Range` does: `{0, 999}` is the first 1000 bytes),
  `{:offset, n}` (from byte `n` to the end) or `{:suffix, n}` (the last `n` bytes). A range
  that runs past the end returns what exists; one that starts past the end is an
  `:invalid_argument` error.

  ## Timeouts

  Every operation takes `timeout:`, the longest wait for its answer in milliseconds (or
  `:infinity`). The default is `config :cloud_streams, call_timeout: ms`, else 30 s: an
  interactive caller (a web request, a console) learns within half a minute that a store
  does not answer, instead of waiting out the client's retry budget (3 minutes by default);
  30 s is also the client's own whole-request timeout, so one slow but healthy request is not
  cut short. When the timeout passes, the native request is cancelled and the call returns
  `{:error, %ObjectStoreX.Error{kind: :timeout}}`. A caller that dies mid-call cancels its
  request too. Large objects belong to `ObjectStoreX.Stream`, whose waits are per chunk.
  """

  alias CloudStreams.{Call, Native, Options, Redact, Telemetry}
  alias ObjectStoreX.{Config, Error, Meta, PutOptions, Store}

  # The `timeout:` every operation takes (see "Timeouts" in the moduledoc).
  @timeout_schema [
    timeout: [
      type: {:or_nil, :timeout},
      doc:
        "the longest wait for the answer, in ms, or `:infinity` (default: " <>
          "`config :cloud_streams, call_timeout:`, else 30 s; see \"Timeouts\")."
    ]
  ]

  @typedoc "A store backend, or a URL such as `\"s3://bucket/prefix\"` or `\"file:///data\"`."
  @type backend :: Store.backend() | String.t()
  @type path :: String.t()
  @type range ::
          {non_neg_integer(), non_neg_integer()}
          | Range.t()
          | {:offset, non_neg_integer()}
          | {:suffix, pos_integer()}
  @type error :: {:error, Error.t()}

  @doc """
  Configures a store. No request is made: credentials and buckets are checked by the first
  operation.

  ## Backends and their options

    * `:memory` - an in-memory store (tests, caches).
    * `:local` - a directory: `root:` (required), `create_root:` (create it when missing),
      `confine_to_root:` (default `false`). By default symlinks inside the root are followed
      wherever they point, as the filesystem does (a root may link to shared data). With
      `confine_to_root: true` every path whose target, symlinks resolved, lies outside the
      root is refused with `:permission_denied` (reads, writes, deletes, copies, renames,
      streams), and listings leave such entries out. The check resolves the path before
      each operation: a link swapped in between the check and the operation is not caught.
    * `:s3` - `bucket:`, `region:`, `access_key_id:`, `secret_access_key:`,
      `session_token:`, `endpoint:` (S3-compatible stores and emulators), `allow_http:`,
      `virtual_hosted_style:`, `conditional_put:` (`:etag` or `:disabled`),
      `copy_if_not_exists:` (`:multipart`, the default, `{:header, name, value}` or
      `{:header_with_status, name, value, status}`), `skip_signature:`,
      `unsigned_payload:`, `checksum:` (`:sha256`), `disable_tagging:`, `request_payer:`.
    * `:gcs` - `bucket:`, `service_account_path:`, `service_account_key:`,
      `application_credentials:`, `bearer_token:`, `base_url:`, `skip_signature:`,
      `allow_http:`. (No GCS emulator is reachable where this library is tested: GCS is
      covered for configuration, signing errors and transport failures only.)
    * `:azure` - `account:`, `container:`, `access_key:`, `sas_token:`, `bearer_token:`,
      `endpoint:`, `use_emulator:` (Azurite; with `endpoint:` it uses Azurite's development
      account at that address), `allow_http:`, `use_fabric_endpoint:`, `use_azure_cli:`,
      `skip_signature:`, `disable_tagging:`.
    * `:http` - `url:` (required), `allow_http:`.

  Options of every backend:

  #{Options.docs(Config.common_schema())}

  A URL picks the backend and bucket: `s3://bucket/prefix`, `gs://bucket`, `az://container`,
  `file:///absolute/dir`, `memory://`, `https://host/base`; `opts` add the rest.

      iex> {:ok, store} = ObjectStoreX.new(:s3, bucket: "b", region: "eu-west-1", access_key_id: "AK", secret_access_key: "s3cr3t")
      iex> inspect(store)
      "#ObjectStoreX.Store<s3://b>"
      iex> ObjectStoreX.new(:s3, bukket: "b")
      ** (ArgumentError) unknown option :bukket for ObjectStoreX.new/2 (:s3); did you mean :bucket? known options: :prefix, :client, :retry, :from_env, :config, :bucket, :region, :access_key_id, :secret_access_key, :session_token, :endpoint, :virtual_hosted_style, :skip_signature, :unsigned_payload, :checksum, :disable_tagging, :request_payer, :conditional_put, :copy_if_not_exists, :allow_http, :url
  """
  @spec new(backend(), keyword()) :: {:ok, Store.t()} | error()
  def new(backend, opts \\ [])

  def new(url, opts) when is_binary(url) do
    {backend, url_opts} = parse_url!(url)
    new(backend, Keyword.merge(url_opts, opts))
  end

  def new(backend, opts) do
    {native, name, prefix} = Config.build!(backend, opts)

    case Native.store_new(native) do
      {:ok, resource} ->
        {:ok, %Store{backend: backend, name: name, prefix: prefix, resource: resource}}

      {:error, native_error} ->
        {:error, Error.from_native(native_error)}
    end
  end

  @doc "Like `new/2`, but raises `ObjectStoreX.Error`."
  @spec new!(backend(), keyword()) :: Store.t()
  def new!(backend, opts \\ []), do: bang(new(backend, opts))

  defp parse_url!(url) do
    uri = URI.parse(url)
    path = String.trim(uri.path || "", "/")
    prefix = if path == "", do: [], else: [prefix: path]

    case uri.scheme do
      "memory" ->
        {:memory, prefix}

      "file" ->
        {:local, root: "/" <> path}

      s when s in ["s3", "s3a"] ->
        {:s3, [url: url] ++ prefix}

      s when s in ["gs", "gcs"] ->
        {:gcs, [url: url] ++ prefix}

      s when s in ["az", "azure", "abfs", "abfss", "adl"] ->
        {:azure, [url: url] ++ prefix}

      s when s in ["http", "https"] ->
        {:http, url: url, allow_http: s == "http"}

      _ ->
        raise ArgumentError, "unsupported store URL #{Redact.inspect(url)} for ObjectStoreX.new/2"
    end
  end

  @doc """
  Writes `data` (a binary or iodata) as one object.

  Options:

  #{Options.docs(PutOptions.schema())}

  Large data is handed to the native side without a copy.

      iex> {:ok, store} = ObjectStoreX.new(:memory)
      iex> ObjectStoreX.put(store, "a.json", ~s({"a": 1}), content_type: "application/json")
      :ok
      iex> {:error, %ObjectStoreX.Error{kind: :already_exists}} = ObjectStoreX.put(store, "a.json", "x", mode: :create)
  """
  @spec put(Store.t(), path(), iodata(), keyword()) :: :ok | error()
  def put(store, path, data, opts \\ []) do
    Store.check!(store, "ObjectStoreX.put/4")
    check_path!(path, "put/4")
    opts = Options.validate!(opts, PutOptions.schema() ++ @timeout_schema, "ObjectStoreX.put/4")
    native_opts = PutOptions.from_validated(opts, "ObjectStoreX.put/4")
    data = iodata!(data, "put/4")

    store
    |> call(:put, path, &Native.store_put(&1, path, data, native_opts, &2), opts.timeout, %{
      bytes: byte_size(data)
    })
    |> ok_only()
  end

  @doc "Like `put/4`, but raises `ObjectStoreX.Error`."
  @spec put!(Store.t(), path(), iodata(), keyword()) :: :ok
  def put!(store, path, data, opts \\ []), do: bang(put(store, path, data, opts))

  @get_schema [
                range: [
                  type: {:or_nil, {:custom, __MODULE__, :cast_range, []}},
                  doc: "see \"Ranges\" above."
                ],
                if_match: [
                  type: {:or_nil, :string},
                  doc: "an etag (or `\"*\"`); a mismatch is `:precondition_failed`."
                ],
                if_none_match: [
                  type: {:or_nil, :string},
                  doc: "an etag (or `\"*\"`); a match is `:not_modified`."
                ],
                if_modified_since: [
                  type: {:or_nil, {:custom, __MODULE__, :cast_datetime, []}},
                  doc: "a `DateTime`."
                ],
                if_unmodified_since: [
                  type: {:or_nil, {:custom, __MODULE__, :cast_datetime, []}},
                  doc: "a `DateTime`."
                ],
                version: [
                  type: {:or_nil, :string},
                  doc: "a version id, on stores with versioning."
                ]
              ] ++ @timeout_schema

  @doc """
  Reads an object, or part of it, into memory: `{:ok, data, %ObjectStoreX.Meta{}}`, whatever
  the options. For large objects use `ObjectStoreX.Stream.download/3`.

  Options:

  #{Options.docs(@get_schema)}

      iex> {:ok, store} = ObjectStoreX.new(:memory)
      iex> :ok = ObjectStoreX.put(store, "f.bin", "0123456789")
      iex> {:ok, "789", _meta} = ObjectStoreX.get(store, "f.bin", range: {:suffix, 3})
      iex> {:ok, "23", _meta} = ObjectStoreX.get(store, "f.bin", range: 2..3)
  """
  @spec get(Store.t(), path(), keyword()) :: {:ok, binary(), Meta.t()} | error()
  def get(store, path, opts \\ []) do
    Store.check!(store, "ObjectStoreX.get/3")
    check_path!(path, "get/3")
    opts = Options.validate!(opts, @get_schema, "ObjectStoreX.get/3")

    native_opts = %{
      range: opts.range,
      if_match: opts.if_match,
      if_none_match: opts.if_none_match,
      if_modified_since: opts.if_modified_since,
      if_unmodified_since: opts.if_unmodified_since,
      version: opts.version
    }

    case call(store, :get, path, &Native.store_get(&1, path, native_opts, &2), opts.timeout) do
      {:ok, {data, meta}} -> {:ok, data, meta}
      error -> error
    end
  end

  @doc "Like `get/3`, but returns the data alone and raises `ObjectStoreX.Error`."
  @spec get!(Store.t(), path(), keyword()) :: binary()
  def get!(store, path, opts \\ []) do
    case get(store, path, opts) do
      {:ok, data, _meta} -> data
      {:error, error} -> raise error
    end
  end

  @doc """
  The metadata of an object, without its data.

      iex> {:ok, store} = ObjectStoreX.new(:memory)
      iex> :ok = ObjectStoreX.put(store, "f.bin", "abc")
      iex> {:ok, %ObjectStoreX.Meta{size: 3, last_modified: %DateTime{}}} = ObjectStoreX.head(store, "f.bin")
  """
  @spec head(Store.t(), path(), keyword()) :: {:ok, Meta.t()} | error()
  def head(store, path, opts \\ []) do
    Store.check!(store, "ObjectStoreX.head/3")
    check_path!(path, "head/3")
    opts = Options.validate!(opts, @timeout_schema, "ObjectStoreX.head/3")
    call(store, :head, path, &Native.store_head(&1, path, &2), opts.timeout)
  end

  @doc "Like `head/3`, but raises `ObjectStoreX.Error`."
  @spec head!(Store.t(), path(), keyword()) :: Meta.t()
  def head!(store, path, opts \\ []), do: bang(head(store, path, opts))

  @doc """
  Reads several ranges of one object, coalescing nearby ranges into few requests. Returns
  the parts in the order asked. Ranges are as in `get/3`.

      iex> {:ok, store} = ObjectStoreX.new(:memory)
      iex> :ok = ObjectStoreX.put(store, "f.bin", "0123456789")
      iex> ObjectStoreX.get_ranges(store, "f.bin", [{0, 1}, {8, 100}])
      {:ok, ["01", "89"]}
  """
  @spec get_ranges(Store.t(), path(), [range()], keyword()) :: {:ok, [binary()]} | error()
  def get_ranges(store, path, ranges, opts \\ []) do
    Store.check!(store, "ObjectStoreX.get_ranges/4")
    check_path!(path, "get_ranges/4")
    opts = Options.validate!(opts, @timeout_schema, "ObjectStoreX.get_ranges/4")

    unless is_list(ranges) do
      raise ArgumentError,
            "ObjectStoreX.get_ranges/4 expects a list of ranges, got: #{Redact.inspect(ranges)}"
    end

    ranges = Enum.map(ranges, &range!/1)

    call(
      store,
      :get_ranges,
      path,
      &Native.store_get_ranges(&1, path, ranges, &2),
      opts.timeout
    )
  end

  @doc "Like `get_ranges/4`, but raises `ObjectStoreX.Error`."
  @spec get_ranges!(Store.t(), path(), [range()], keyword()) :: [binary()]
  def get_ranges!(store, path, ranges, opts \\ []),
    do: bang(get_ranges(store, path, ranges, opts))

  @doc """
  Deletes an object. Deleting an object that does not exist succeeds, on every store.

      iex> {:ok, store} = ObjectStoreX.new(:memory)
      iex> ObjectStoreX.delete(store, "never-written")
      :ok
  """
  @spec delete(Store.t(), path(), keyword()) :: :ok | error()
  def delete(store, path, opts \\ []) do
    Store.check!(store, "ObjectStoreX.delete/3")
    check_path!(path, "delete/3")
    opts = Options.validate!(opts, @timeout_schema, "ObjectStoreX.delete/3")
    store |> call(:delete, path, &Native.store_delete(&1, path, &2), opts.timeout) |> ok_only()
  end

  @doc "Like `delete/3`, but raises `ObjectStoreX.Error`."
  @spec delete!(Store.t(), path(), keyword()) :: :ok
  def delete!(store, path, opts \\ []), do: bang(delete(store, path, opts))

  @doc """
  Deletes many objects with the store's bulk delete (1,000 keys per request on S3).

  Returns `{:ok, deleted_count, failed}` where `failed` lists `{path, %ObjectStoreX.Error{}}`.
  Objects that did not exist count as deleted. An invalid path fails alone.

      iex> {:ok, store} = ObjectStoreX.new(:memory)
      iex> :ok = ObjectStoreX.put(store, "a", "1")
      iex> {:ok, 2, [{"../x", %ObjectStoreX.Error{kind: :invalid_argument}}]} =
      ...>   ObjectStoreX.delete_many(store, ["a", "b", "../x"])
  """
  @spec delete_many(Store.t(), [path()], keyword()) ::
          {:ok, non_neg_integer(), [{path(), Error.t()}]} | error()
  def delete_many(store, paths, opts \\ []) do
    Store.check!(store, "ObjectStoreX.delete_many/3")

    unless is_list(paths) and Enum.all?(paths, &(is_binary(&1) and String.valid?(&1))) do
      raise ArgumentError,
            "ObjectStoreX.delete_many/3 expects a list of path strings (valid UTF-8), " <>
              "got: #{Redact.inspect(paths)}"
    end

    opts = Options.validate!(opts, @timeout_schema, "ObjectStoreX.delete_many/3")

    case call(store, :delete_many, nil, &Native.store_delete_many(&1, paths, &2), opts.timeout) do
      {:ok, {deleted, failed}} ->
        {:ok, deleted,
         Enum.map(failed, fn {path, native} -> {path, Error.from_native(native)} end)}

      error ->
        error
    end
  end

  @doc """
  Copies an object within the store, replacing the target if it exists.

      iex> {:ok, store} = ObjectStoreX.new(:memory)
      iex> :ok = ObjectStoreX.put(store, "a", "1")
      iex> ObjectStoreX.copy(store, "a", "b")
      :ok
  """
  @spec copy(Store.t(), path(), path(), keyword()) :: :ok | error()
  def copy(store, from, to, opts \\ []), do: transfer(store, from, to, :copy, false, opts)

  @doc "Like `copy/4`, but fails with `:already_exists` if the target exists."
  @spec copy_if_not_exists(Store.t(), path(), path(), keyword()) :: :ok | error()
  def copy_if_not_exists(store, from, to, opts \\ []),
    do: transfer(store, from, to, :copy, true, opts)

  @doc """
  Moves an object within the store, replacing the target if it exists.

      iex> {:ok, store} = ObjectStoreX.new(:memory)
      iex> :ok = ObjectStoreX.put(store, "a", "1")
      iex> :ok = ObjectStoreX.rename(store, "a", "b")
      iex> {:error, %ObjectStoreX.Error{kind: :not_found}} = ObjectStoreX.head(store, "a")
  """
  @spec rename(Store.t(), path(), path(), keyword()) :: :ok | error()
  def rename(store, from, to, opts \\ []), do: transfer(store, from, to, :rename, false, opts)

  @doc "Like `rename/4`, but fails with `:already_exists` if the target exists."
  @spec rename_if_not_exists(Store.t(), path(), path(), keyword()) :: :ok | error()
  def rename_if_not_exists(store, from, to, opts \\ []),
    do: transfer(store, from, to, :rename, true, opts)

  @doc "Like `copy/4`, but raises `ObjectStoreX.Error`."
  @spec copy!(Store.t(), path(), path(), keyword()) :: :ok
  def copy!(store, from, to, opts \\ []), do: bang(copy(store, from, to, opts))

  @doc "Like `rename/4`, but raises `ObjectStoreX.Error`."
  @spec rename!(Store.t(), path(), path(), keyword()) :: :ok
  def rename!(store, from, to, opts \\ []), do: bang(rename(store, from, to, opts))

  defp transfer(store, from, to, operation, if_not_exists?, opts) do
    function = "#{operation}/4"
    Store.check!(store, "ObjectStoreX.#{function}")
    check_path!(from, function)
    check_path!(to, function)
    opts = Options.validate!(opts, @timeout_schema, "ObjectStoreX.#{function}")

    start = &Native.store_transfer(&1, operation, from, to, if_not_exists?, &2)
    store |> call(operation, from, start, opts.timeout) |> ok_only()
  end

  @list_schema [
                 prefix: [
                   type: {:or_nil, :string},
                   doc: "list only the objects under this prefix."
                 ],
                 offset: [type: {:or_nil, :string}, doc: "start after this path."]
               ] ++ @timeout_schema

  @doc """
  Every object under `:prefix` (recursively), in one list. `:offset` starts after that path.
  For large listings use `ObjectStoreX.Stream.list_stream/2`, which fetches page by page.

      iex> {:ok, store} = ObjectStoreX.new(:memory)
      iex> for p <- ["a/1", "a/2", "b/1"], do: :ok = ObjectStoreX.put(store, p, "x")
      iex> {:ok, metas} = ObjectStoreX.list(store, prefix: "a")
      iex> Enum.map(metas, & &1.location) |> Enum.sort()
      ["a/1", "a/2"]
  """
  @spec list(Store.t(), keyword()) :: {:ok, [Meta.t()]} | error()
  def list(store, opts \\ []) do
    Store.check!(store, "ObjectStoreX.list/2")
    opts = Options.validate!(opts, @list_schema, "ObjectStoreX.list/2")

    call(
      store,
      :list,
      opts.prefix,
      &Native.store_list(&1, opts.prefix, opts.offset, &2),
      opts.timeout
    )
  end

  @doc "Like `list/2`, but raises `ObjectStoreX.Error`."
  @spec list!(Store.t(), keyword()) :: [Meta.t()]
  def list!(store, opts \\ []), do: bang(list(store, opts))

  @doc """
  One level of the hierarchy under `:prefix`: the objects directly in it and the
  "directories" (common prefixes) below it.

      iex> {:ok, store} = ObjectStoreX.new(:memory)
      iex> for p <- ["a/1", "a/b/2", "c"], do: :ok = ObjectStoreX.put(store, p, "x")
      iex> {:ok, %{objects: [%{location: "a/1"}], common_prefixes: ["a/b"]}} =
      ...>   ObjectStoreX.list_with_delimiter(store, prefix: "a")
  """
  @spec list_with_delimiter(Store.t(), keyword()) ::
          {:ok, %{objects: [Meta.t()], common_prefixes: [String.t()]}} | error()
  def list_with_delimiter(store, opts \\ []) do
    Store.check!(store, "ObjectStoreX.list_with_delimiter/2")

    opts =
      Options.validate!(
        opts,
        Keyword.take(@list_schema, [:prefix, :timeout]),
        "ObjectStoreX.list_with_delimiter/2"
      )

    call(
      store,
      :list_with_delimiter,
      opts.prefix,
      &Native.store_list_with_delimiter(&1, opts.prefix, &2),
      opts.timeout
    )
  end

  # S3's longest presigned URL lifetime: seven days.
  @max_expires_in 604_800

  @signed_url_schema [
                       method: [
                         type: {:in, [:get, :put, :head, :delete]},
                         default: :get,
                         doc: "what the URL lets its holder do."
                       ],
                       expires_in: [
                         type: {:in, 1..@max_expires_in},
                         default: 3600,
                         doc:
                           "seconds the URL stays valid, at most #{@max_expires_in} (seven days, S3's limit)."
                       ]
                     ] ++ @timeout_schema

  @doc """
  A presigned URL that lets anyone holding it `:method` the object for `:expires_in`
  seconds. S3, GCS and Azure only; other stores return `:not_supported`.

  Options:

  #{Options.docs(@signed_url_schema)}

      iex> {:ok, store} = ObjectStoreX.new(:s3, bucket: "b", region: "us-east-1", access_key_id: "AK", secret_access_key: "SK")
      iex> {:ok, url} = ObjectStoreX.signed_url(store, "report.pdf", expires_in: 600)
      iex> url =~ "X-Amz-Expires=600"
      true
  """
  @spec signed_url(Store.t(), path(), keyword()) :: {:ok, String.t()} | error()
  def signed_url(store, path, opts \\ []) do
    Store.check!(store, "ObjectStoreX.signed_url/3")
    check_path!(path, "signed_url/3")
    opts = Options.validate!(opts, @signed_url_schema, "ObjectStoreX.signed_url/3")
    method = opts.method |> Atom.to_string() |> String.upcase()

    call(
      store,
      :signed_url,
      path,
      &Native.store_signed_url(&1, method, path, opts.expires_in, &2),
      opts.timeout
    )
  end

  @doc "Like `signed_url/3`, but raises `ObjectStoreX.Error`."
  @spec signed_url!(Store.t(), path(), keyword()) :: String.t()
  def signed_url!(store, path, opts \\ []), do: bang(signed_url(store, path, opts))

  # Bang forms of the functions above that had none: each raises the `ObjectStoreX.Error`
  # the plain form returns.

  @doc """
  Like `delete_many/2`, returning `{deleted, failures}` and raising `ObjectStoreX.Error` when
  the request fails as a whole.

      iex> store = ObjectStoreX.new!(:memory)
      iex> :ok = ObjectStoreX.put(store, "a", "1")
      iex> ObjectStoreX.delete_many!(store, ["a", "b"])
      {2, []}
  """
  @spec delete_many!(Store.t(), [path()]) :: {non_neg_integer(), [{path(), Error.t()}]}
  def delete_many!(store, paths) do
    {:ok, deleted, failures} = bang_many(delete_many(store, paths))
    {deleted, failures}
  end

  defp bang_many({:ok, _deleted, _failures} = result), do: result
  defp bang_many({:error, %Error{} = error}), do: raise(error)

  @doc """
  Like `list_with_delimiter/2`, raising `ObjectStoreX.Error`.

      iex> store = ObjectStoreX.new!(:memory)
      iex> :ok = ObjectStoreX.put(store, "a/b/c", "1")
      iex> ObjectStoreX.list_with_delimiter!(store, prefix: "a").common_prefixes
      ["a/b"]
  """
  @spec list_with_delimiter!(Store.t(), keyword()) :: %{
          objects: [Meta.t()],
          common_prefixes: [String.t()]
        }
  def list_with_delimiter!(store, opts \\ []), do: bang(list_with_delimiter(store, opts))

  @doc """
  Like `copy_if_not_exists/3`, raising `ObjectStoreX.Error` (`:already_exists` when `to`
  exists).

      iex> store = ObjectStoreX.new!(:memory)
      iex> :ok = ObjectStoreX.put(store, "a", "1")
      iex> ObjectStoreX.copy_if_not_exists!(store, "a", "b")
      :ok
      iex> ObjectStoreX.copy_if_not_exists!(store, "a", "b")
      ** (ObjectStoreX.Error) (already_exists) Object at location b already exists: Object already exists at that location: b
  """
  @spec copy_if_not_exists!(Store.t(), path(), path()) :: :ok
  def copy_if_not_exists!(store, from, to), do: bang(copy_if_not_exists(store, from, to))

  @doc """
  Like `rename_if_not_exists/3`, raising `ObjectStoreX.Error`.

      iex> store = ObjectStoreX.new!(:memory)
      iex> :ok = ObjectStoreX.put(store, "a", "1")
      iex> ObjectStoreX.rename_if_not_exists!(store, "a", "b")
      :ok
      iex> ObjectStoreX.get!(store, "b")
      "1"
  """
  @spec rename_if_not_exists!(Store.t(), path(), path()) :: :ok
  def rename_if_not_exists!(store, from, to), do: bang(rename_if_not_exists(store, from, to))

  # --- helpers -------------------------------------------------------------------------------

  # One request on the store, in its telemetry span, bounded by `timeout` (nil: the
  # configured default). `measurements`: those known before it runs.
  defp call(store, operation, path, start, timeout, measurements \\ %{}) do
    request = Telemetry.object_store_request(store, operation, path, measurements)
    Call.await(&start.(store.resource, &1), timeout, &Error.from_native/1, request)
  end

  defp ok_only({:ok, _}), do: :ok
  defp ok_only(error), do: error

  defp bang({:ok, value}), do: value
  defp bang(:ok), do: :ok
  defp bang({:error, %Error{} = error}), do: raise(error)

  @doc false
  def check_path!(path, function) do
    function =
      if String.starts_with?(function, "ObjectStoreX"),
        do: function,
        else: "ObjectStoreX.#{function}"

    cond do
      not is_binary(path) ->
        raise ArgumentError,
              "#{function} expects the path as a string, got: #{Redact.inspect(path)}"

      not String.valid?(path) ->
        raise ArgumentError,
              "#{function} expects the path as valid UTF-8, got: #{inspect(path)}"

      true ->
        :ok
    end
  end

  defp iodata!(data, function) do
    IO.iodata_to_binary(data)
  rescue
    ArgumentError ->
      reraise ArgumentError,
              "ObjectStoreX.#{function} expects the data as a binary or iodata, got: #{inspect(data, limit: 5)}",
              __STACKTRACE__
  end

  # Offsets and lengths the native side takes (u64).
  @max_offset 18_446_744_073_709_551_615

  @doc false
  # Normalises the range forms of the moduledoc to what the NIF takes (end exclusive).
  def range!(range) do
    case cast_range(range) do
      {:ok, native} ->
        native

      {:error, expected} ->
        raise ArgumentError, "invalid range #{Redact.inspect(range)}: expected #{expected}"
    end
  end

  @doc false
  # The option type of a range: `{:ok, native_range}` or `{:error, what_was_expected}`.
  def cast_range({first, last})
      when is_integer(first) and is_integer(last) and first >= 0 and last >= first and
             last < @max_offset,
      do: {:ok, {:bounded, first, last + 1}}

  def cast_range(%Range{first: first, last: last, step: 1}) when first <= last,
    do: cast_range({first, last})

  def cast_range({:offset, n}) when is_integer(n) and n >= 0 and n <= @max_offset,
    do: {:ok, {:offset, n}}

  def cast_range({:suffix, n}) when is_integer(n) and n > 0 and n <= @max_offset,
    do: {:ok, {:suffix, n}}

  def cast_range(_other) do
    {:error,
     "a range: {first, last} or first..last with 0 <= first <= last, {:offset, n} or " <>
       "{:suffix, n}, with integers below 2^64"}
  end

  @doc false
  # The option type of a timestamp: a `DateTime`, sent as Unix microseconds.
  def cast_datetime(%DateTime{} = at) do
    micros = DateTime.to_unix(at, :microsecond)

    if micros in -(2 ** 63)..(2 ** 63 - 1),
      do: {:ok, micros},
      else: {:error, "a DateTime within the range of 64-bit microseconds"}
  end

  def cast_datetime(_other), do: {:error, "a DateTime"}
end
