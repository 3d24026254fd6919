defmodule CloudStreams.PrecompiledNifTest do
  # The precompiled path of the NIF compiler (mix/compile.cloud_streams_native.exs), end to
  # end: `mix cloud_streams.precompile` builds a real artifact and checksum file, a copy of
  # the package (the files mix.exs lists) gets that checksum file, OTP's httpd serves the
  # artifact on loopback, and an app depending on the package is compiled and run.
  #
  # cargo is shadowed on PATH by a script that records each call and fails, so a test shows
  # whether the compiler used the artifact or fell back to a source build. The artifact and
  # checksum formats are rustler_precompiled's (lib/rustler_precompiled.ex of
  # philss/rustler_precompiled: `lib_name_with_ext`, `tar_gz_file_url`, `write_checksum!`).
  use ExUnit.Case, async: true

  alias CloudStreams.PackageCopy
  alias Mix.Tasks.Compile.CloudStreamsNative, as: Compiler

  @moduletag timeout: 300_000
  @moduletag :tmp_dir

  setup_all do
    release =
      Path.join(
        System.tmp_dir!(),
        "cloud_streams_precompiled_#{System.unique_integer([:positive])}"
      )

    on_exit(fn -> File.rm_rf!(release) end)

    ExUnit.CaptureIO.capture_io(fn ->
      Mix.Tasks.CloudStreams.Precompile.run(["--output", release])
    end)

    {:ok, artifact} = Compiler.artifact_name()
    checksum_file = Path.join(release, Compiler.checksum_file_name())
    %{^artifact => checksum} = Compiler.read_checksums(checksum_file)

    [library] = unpack(File.read!(Path.join(release, artifact)))

    %{release: release, artifact: artifact, checksum: checksum, library: library}
  end

  # Each test copies the package (sources, guides); leave no copy behind.
  setup %{tmp_dir: dir} do
    on_exit(fn -> File.rm_rf!(dir) end)
  end

  test "the artifact is named and checksummed as rustler_precompiled names them", ctx do
    version = Mix.Project.config()[:version]
    {:ok, target} = Compiler.target()

    assert ctx.artifact == "libcloud_streams_nif-v#{version}-nif-2.15-#{target}.so.tar.gz"
    assert target =~ ~r/^[a-z0-9_]+-[a-z]+-[a-z]+(-[a-z0-9]+)?$/
    assert ctx.checksum == Compiler.checksum(File.read!(Path.join(ctx.release, ctx.artifact)))
    assert "sha256:" <> <<_::binary-size(64)>> = ctx.checksum
    assert {name, _} = ctx.library
    assert name == Path.rootname(ctx.artifact, ".tar.gz")

    text = File.read!(Path.join(ctx.release, Compiler.checksum_file_name()))
    assert text == ~s(%{\n  "#{ctx.artifact}" => "#{ctx.checksum}",\n}\n)
  end

  test "an app installs the served artifact without invoking cargo", ctx do
    served = served_dir(ctx, ctx.tmp_dir, File.read!(Path.join(ctx.release, ctx.artifact)))
    server = serve(served)
    app = app(ctx, ctx.tmp_dir, checksums: true)

    {output, status} = run_app(app, %{"CLOUD_STREAMS_PRECOMPILED_URL" => server.url})

    assert status == 0, output
    assert output =~ "result: [5, 5, 5]"
    assert output =~ "downloading the precompiled NIF #{server.url}/#{ctx.artifact}"
    refute cargo_called?(app)
    assert requests(server) == 1

    {_, contents} = ctx.library
    assert File.read!(Path.join(app.package, "priv/native/libcloud_streams_nif.so")) == contents

    # Installed once: compiling again neither downloads nor builds.
    {output, status} = run_app(app, %{"CLOUD_STREAMS_PRECOMPILED_URL" => server.url})
    assert status == 0, output
    assert requests(server) == 1
    refute cargo_called?(app)
  end

  test "HTTP_PROXY is honoured: the download goes through the proxy", ctx do
    # httpd answers a proxy's absolute-form request line (GET http://host/path) as well.
    proxy = serve(served_dir(ctx, ctx.tmp_dir, File.read!(Path.join(ctx.release, ctx.artifact))))
    app = app(ctx, ctx.tmp_dir, checksums: true)

    env = %{
      "CLOUD_STREAMS_PRECOMPILED_URL" => "http://artifacts.invalid",
      "HTTP_PROXY" => proxy.url
    }

    {output, status} = run_app(app, env)

    assert status == 0, output
    assert requests(proxy) == 1
    refute cargo_called?(app)
  end

  test "a tampered artifact is refused with a clear error, and nothing is installed", ctx do
    {name, contents} = ctx.library
    tampered = pack(name, contents <> "tampered")
    server = serve(served_dir(ctx, ctx.tmp_dir, tampered))
    app = app(ctx, ctx.tmp_dir, checksums: true)

    {output, status} = run_app(app, %{"CLOUD_STREAMS_PRECOMPILED_URL" => server.url})

    assert status != 0
    assert output =~ "the precompiled NIF #{ctx.artifact} was refused: its SHA-256 does not match"
    assert output =~ "expected #{ctx.checksum}, got #{Compiler.checksum(tampered)}"
    assert requests(server) == 1
    refute cargo_called?(app)
    refute File.exists?(Path.join(app.package, "priv/native/libcloud_streams_nif.so"))
  end

  test "no server answering: the compiler falls back to cargo", ctx do
    app = app(ctx, ctx.tmp_dir, checksums: true)

    {output, status} = run_app(app, %{"CLOUD_STREAMS_PRECOMPILED_URL" => closed_port_url()})

    # The fake cargo fails, so the build fails after the fallback was taken.
    assert status != 0
    assert output =~ "could not download"
    assert output =~ "building from source instead"
    assert cargo_called?(app)
  end

  test "an HTTP error (no artifact at the URL): the compiler falls back to cargo", ctx do
    server = serve(Path.join(ctx.tmp_dir, "empty") |> tap(&File.mkdir_p!/1))
    app = app(ctx, ctx.tmp_dir, checksums: true)

    {output, _status} = run_app(app, %{"CLOUD_STREAMS_PRECOMPILED_URL" => server.url})

    assert output =~ "HTTP status 404"
    assert requests(server) == 1
    assert cargo_called?(app)
  end

  test "CLOUD_STREAMS_BUILD=1 builds from source without a request", ctx do
    server = serve(served_dir(ctx, ctx.tmp_dir, File.read!(Path.join(ctx.release, ctx.artifact))))
    app = app(ctx, ctx.tmp_dir, checksums: true)

    env = %{"CLOUD_STREAMS_PRECOMPILED_URL" => server.url, "CLOUD_STREAMS_BUILD" => "1"}
    {output, _status} = run_app(app, env)

    assert output =~ "building the NIF from source (CLOUD_STREAMS_BUILD is set)"
    assert requests(server) == 0
    assert cargo_called?(app)
  end

  test "a checksum file without this target's artifact builds from source without a request",
       ctx do
    server = serve(served_dir(ctx, ctx.tmp_dir, File.read!(Path.join(ctx.release, ctx.artifact))))
    app = app(ctx, ctx.tmp_dir, checksums: false)

    {_output, _status} = run_app(app, %{"CLOUD_STREAMS_PRECOMPILED_URL" => server.url})

    assert requests(server) == 0
    assert cargo_called?(app)
  end

  test "TLS is verified: a server with an unknown certificate authority is not trusted", ctx do
    served = served_dir(ctx, ctx.tmp_dir, File.read!(Path.join(ctx.release, ctx.artifact)))
    server = serve(served, tls: true)
    app = app(ctx, ctx.tmp_dir, checksums: true)

    {output, _status} = run_app(app, %{"CLOUD_STREAMS_PRECOMPILED_URL" => server.url})

    assert server.url =~ "https://"
    assert output =~ "unknown_ca"
    assert output =~ "building from source instead"
    assert cargo_called?(app)
    refute File.exists?(Path.join(app.package, "priv/native/libcloud_streams_nif.so"))
  end

  ## Helpers

  defp unpack(tar_gz) do
    {:ok, files} = :erl_tar.extract({:binary, tar_gz}, [:compressed, :memory])
    for {name, contents} <- files, do: {to_string(name), contents}
  end

  defp pack(name, contents) do
    path =
      Path.join(System.tmp_dir!(), "cloud_streams_pack_#{System.unique_integer([:positive])}")

    :ok = :erl_tar.create(to_charlist(path), [{to_charlist(name), contents}], [:compressed])
    data = File.read!(path)
    File.rm!(path)
    data
  end

  defp served_dir(ctx, dir, artifact_bytes) do
    served = Path.join(dir, "served")
    File.mkdir_p!(served)
    File.write!(Path.join(served, ctx.artifact), artifact_bytes)
    served
  end

  # OTP's httpd on 127.0.0.1, with a transfer log to count requests.
  defp serve(dir, opts \\ []) do
    log = Path.join(Path.dirname(dir), "transfer_#{System.unique_integer([:positive])}.log")

    tls =
      if opts[:tls] do
        # A certificate chain of its own, under a root no OS trusts.
        key = [key: {:rsa, 2048, 65_537}]
        chain = %{root: key, intermediates: [], peer: key}

        %{server_config: config} =
          :public_key.pkix_test_data(%{server_chain: chain, client_chain: chain})

        [socket_type: {:ssl, config}]
      else
        []
      end

    {:ok, pid} =
      :inets.start(
        :httpd,
        [
          port: 0,
          bind_address: {127, 0, 0, 1},
          server_name: ~c"localhost",
          server_root: to_charlist(dir),
          document_root: to_charlist(dir),
          transfer_log: to_charlist(log),
          error_log: to_charlist(log <> ".errors")
        ] ++ tls
      )

    on_exit(fn -> :inets.stop(:httpd, pid) end)
    port = :httpd.info(pid)[:port]
    scheme = if opts[:tls], do: "https", else: "http"
    %{url: "#{scheme}://127.0.0.1:#{port}", log: log}
  end

  defp requests(server) do
    case File.read(server.log) do
      {:ok, text} -> text |> String.split("\n", trim: true) |> length()
      {:error, :enoent} -> 0
    end
  end

  defp closed_port_url do
    {:ok, socket} = :gen_tcp.listen(0, ip: {127, 0, 0, 1})
    {:ok, port} = :inet.port(socket)
    :ok = :gen_tcp.close(socket)
    "http://127.0.0.1:#{port}"
  end

  # A copy of the package as hex would ship it, an app that depends on it by path, and a
  # fake cargo that fails.
  defp app(ctx, dir, checksums: checksums?) do
    package = PackageCopy.copy!(Path.join(dir, "package"))
    name = Compiler.checksum_file_name()

    if checksums?,
      do: File.cp!(Path.join(ctx.release, name), Path.join(package, name)),
      else: File.rm(Path.join(package, name))

    app = Path.join(dir, "app")
    File.cp_r!(Path.expand("fixtures/path_dep_app", __DIR__), app)

    bin = Path.join(dir, "bin")
    marker = Path.join(dir, "cargo_called")
    PackageCopy.fake_cargo!(bin, marker, "echo 'fake cargo: refusing to build' >&2\nexit 1\n")
    %{dir: app, package: package, bin: bin, marker: marker}
  end

  defp run_app(app, env) do
    env =
      [
        {"CLOUD_STREAMS_PATH", app.package},
        {"PATH", app.bin <> ":" <> System.get_env("PATH")},
        {"MIX_ENV", "dev"},
        {"MIX_BUILD_PATH", nil},
        {"MIX_EXS", nil},
        {"CARGO", nil},
        {"CLOUD_STREAMS_BUILD", nil},
        {"HTTP_PROXY", nil},
        {"http_proxy", nil},
        {"HTTPS_PROXY", nil},
        {"https_proxy", nil}
      ] ++ Enum.to_list(env)

    System.cmd("mix", ["run", "-e", "IO.inspect(PathDepApp.run(), label: :result)"],
      cd: app.dir,
      env: env,
      stderr_to_stdout: true
    )
  end

  defp cargo_called?(app), do: PackageCopy.cargo_calls(app.marker) > 0
end
