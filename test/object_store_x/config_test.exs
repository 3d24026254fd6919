defmodule ObjectStoreX.ConfigTest do
  # ObjectStoreX.new/2: URLs, the environment, secrets, bad options, and how transport
  # failures are reported.
  use ExUnit.Case, async: true
  @moduletag :s3

  import CloudStreams.TestBed, only: [env!: 1, s3_store: 1]
  alias CloudStreams.HTTPResponder
  alias ObjectStoreX.Error

  @no_retry [retry: [max_retries: 0]]

  describe "URLs" do
    test "memory:// and file:// pick the backend" do
      assert {:ok, %{backend: :memory}} = ObjectStoreX.new("memory://")

      root =
        Path.join(System.tmp_dir!(), "cloud_streams_url_#{System.unique_integer([:positive])}")

      File.mkdir_p!(root)
      assert {:ok, %{backend: :local} = store} = ObjectStoreX.new("file://" <> root)
      :ok = ObjectStoreX.put(store, "via-url.txt", "x")
      assert File.read!(Path.join(root, "via-url.txt")) == "x"
    end

    test "s3://bucket/prefix reaches the bucket under the prefix" do
      bucket = env!("CLOUD_STREAMS_S3_BUCKET")
      prefix = "url-test-#{System.unique_integer([:positive])}"

      {:ok, store} =
        ObjectStoreX.new("s3://#{bucket}/#{prefix}",
          endpoint: env!("CLOUD_STREAMS_S3_ENDPOINT"),
          region: "us-east-1",
          access_key_id: "k",
          secret_access_key: "s",
          allow_http: true
        )

      assert inspect(store) == "#ObjectStoreX.Store<s3://#{bucket}/#{prefix}>"
      :ok = ObjectStoreX.put(store, "obj", "under the prefix")

      {:ok, plain} = s3_store(nil)
      assert ObjectStoreX.get!(plain, "#{prefix}/obj") == "under the prefix"
    end

    test "an unsupported scheme raises" do
      assert_raise ArgumentError, ~r/unsupported store URL "ftp:\/\/x"/, fn ->
        ObjectStoreX.new("ftp://x")
      end
    end
  end

  test "from_env: credentials come from AWS_* variables" do
    # scripts/with_servers.sh sets AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_REGION.
    {:ok, store} =
      ObjectStoreX.new(:s3,
        from_env: true,
        bucket: env!("CLOUD_STREAMS_S3_BUCKET"),
        endpoint: env!("CLOUD_STREAMS_S3_ENDPOINT"),
        allow_http: true,
        prefix: "from-env-#{System.unique_integer([:positive])}"
      )

    assert :ok = ObjectStoreX.put(store, "x", "y")
    assert ObjectStoreX.get!(store, "x") == "y"
  end

  test "no secret appears in inspect or in errors" do
    secret = "SUPER-SECRET-KEY-0123456789"

    {:ok, store} =
      ObjectStoreX.new(:s3,
        bucket: "no-such-bucket",
        endpoint: env!("CLOUD_STREAMS_S3_ENDPOINT"),
        region: "us-east-1",
        access_key_id: "AKID",
        secret_access_key: secret,
        session_token: secret <> "-token",
        allow_http: true
      )

    refute inspect(store) =~ secret
    refute inspect(store, structs: false) =~ secret
    assert {:error, error} = ObjectStoreX.get(store, "x")
    refute inspect(error) =~ secret
    refute Exception.message(error) =~ secret

    {:ok, azure} =
      ObjectStoreX.new(:azure, account: "acct", container: "c", access_key: Base.encode64(secret))

    refute inspect(azure) =~ Base.encode64(secret)
  end

  describe "bad configuration" do
    test "unknown backends and options raise ArgumentError naming them" do
      assert_raise ArgumentError, ~r/unknown backend :ftp/, fn -> ObjectStoreX.new(:ftp) end

      assert_raise ArgumentError,
                   ~r/unknown option :bucket for ObjectStoreX.new\/2 \(:memory\)/,
                   fn ->
                     ObjectStoreX.new(:memory, bucket: "b")
                   end

      assert_raise ArgumentError, ~r/missing required option :root/, fn ->
        ObjectStoreX.new(:local)
      end

      assert_raise ArgumentError, ~r/unknown option :timeuot for option :client/, fn ->
        ObjectStoreX.new(:memory, client: [timeuot: 5])
      end

      assert_raise ArgumentError, ~r/option :max_retries of option :retry/, fn ->
        ObjectStoreX.new(:memory, retry: [max_retries: -1])
      end

      assert_raise ArgumentError, ~r/option :copy_if_not_exists/, fn ->
        ObjectStoreX.new(:s3, bucket: "b", copy_if_not_exists: :always)
      end

      assert_raise ArgumentError, ~r/option :config/, fn -> ObjectStoreX.new(:s3, config: [1]) end
    end

    test "a missing local root or a bad object_store key is an :invalid_argument error" do
      assert {:error, %Error{kind: :invalid_argument, message: message}} =
               ObjectStoreX.new(:local, root: "/nonexistent/cloud_streams")

      assert message =~ "/nonexistent/cloud_streams"

      assert {:error, %Error{kind: :invalid_argument}} =
               ObjectStoreX.new(:s3, bucket: "b", config: %{"aws_no_such_key" => "1"})
    end

    test "new! raises the error" do
      assert_raise Error, ~r/invalid_argument/, fn ->
        ObjectStoreX.new!(:local, root: "/nonexistent/x")
      end
    end
  end

  describe "transport failures" do
    test "a refused connection is :network and retryable" do
      {:ok, store} =
        ObjectStoreX.new(:http, [url: "http://127.0.0.1:1", allow_http: true] ++ @no_retry)

      assert {:error, %Error{kind: :network} = error} = ObjectStoreX.get(store, "x")
      assert Error.retryable?(error)
    end

    test "a server that never answers is a :timeout, retryable" do
      url = HTTPResponder.start(:hang)

      {:ok, store} =
        ObjectStoreX.new(:http, [url: url, client: [timeout: 300], allow_http: true] ++ @no_retry)

      assert {:error, %Error{kind: :timeout} = error} = ObjectStoreX.get(store, "x")
      assert Error.retryable?(error)
    end

    test "5xx is :server_error and 429 is :throttled, both retryable; 403 is not" do
      for {status, kind, retryable} <- [
            {503, :server_error, true},
            {500, :server_error, true},
            {429, :throttled, true},
            {403, :permission_denied, false}
          ] do
        url = HTTPResponder.start({status, "nope"})
        {:ok, store} = ObjectStoreX.new(:http, [url: url, allow_http: true] ++ @no_retry)

        assert {:error, %Error{kind: ^kind, status: ^status, retryable: ^retryable}} =
                 ObjectStoreX.get(store, "x")
      end
    end
  end

  describe "GCS (no emulator reachable: configuration and transport only)" do
    test "a configured bucket builds and reports transport failures" do
      {:ok, store} =
        ObjectStoreX.new(
          :gcs,
          [bucket: "b", skip_signature: true, base_url: "http://127.0.0.1:1", allow_http: true] ++
            @no_retry
        )

      assert inspect(store) == "#ObjectStoreX.Store<gcs://b>"
      assert {:error, %Error{kind: :network}} = ObjectStoreX.get(store, "x")
    end
  end
end
