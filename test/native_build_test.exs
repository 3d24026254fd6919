defmodule CloudStreams.NativeBuildTest do
  # The source build of the NIF compiler (mix/compile.cloud_streams_native.exs) in a copy of
  # the package, with cargo replaced by a script that records its arguments and "builds" by
  # copying the real library where cargo would put it: what makes the compiler run cargo,
  # what it passes, and what `mix clean` removes.
  use ExUnit.Case, async: true

  alias CloudStreams.PackageCopy

  @moduletag :tmp_dir
  @moduletag timeout: 120_000
  @library "libcloud_streams_nif.so"

  setup %{tmp_dir: dir} do
    on_exit(fn -> File.rm_rf!(dir) end)
    package = PackageCopy.copy!(Path.join(dir, "package"))
    now = System.os_time(:second)

    # Every source older than any build, so that one touched file decides.
    for path <- Path.wildcard(Path.join(package, "**"), match_dot: true), File.regular?(path) do
      File.touch!(path, now - 1_000)
    end

    real = Path.join(dir, "real.so")
    File.cp!(Path.join(File.cwd!(), "priv/native/#{@library}"), real)
    target = Path.join(dir, "target")
    marker = Path.join(dir, "cargo_calls")

    bin = Path.join(dir, "bin")

    PackageCopy.fake_cargo!(bin, marker, """
    mkdir -p "#{target}/release"
    cp "#{real}" "#{target}/release/#{@library}"
    """)

    env = [
      {"PATH", bin <> ":" <> System.get_env("PATH")},
      {"CARGO_TARGET_DIR", target},
      {"MIX_ENV", "dev"},
      {"MIX_BUILD_PATH", nil},
      {"MIX_EXS", nil},
      {"CARGO", nil},
      {"CLOUD_STREAMS_BUILD", nil},
      {"CLOUD_STREAMS_PRECOMPILED_URL", nil}
    ]

    installed = Path.join(package, "priv/native/#{@library}")
    %{package: package, env: env, marker: marker, installed: installed, real: real}
  end

  defp mix(ctx, args, env \\ []) do
    System.cmd("mix", args, cd: ctx.package, env: ctx.env ++ env, stderr_to_stdout: true)
  end

  defp compile!(ctx) do
    {output, status} = mix(ctx, ["compile.cloud_streams_native"])
    assert status == 0, output
    output
  end

  defp calls(ctx), do: PackageCopy.cargo_calls(ctx.marker)

  test "builds the NIF crate in release with cargo rustc, and installs the library", ctx do
    compile!(ctx)

    assert calls(ctx) == 1
    [args] = File.read!(ctx.marker) |> String.split("\n", trim: true)
    manifest = Path.join(ctx.package, "Cargo.toml")
    assert args == "rustc --manifest-path #{manifest} -p cloud_streams_nif --lib --release"
    assert File.read!(ctx.installed) == File.read!(ctx.real)

    # Nothing changed: no cargo.
    compile!(ctx)
    assert calls(ctx) == 1
  end

  test "a change to any crate source, build script or cargo configuration rebuilds", ctx do
    compile!(ctx)
    now = System.os_time(:second)

    triggers = [
      "Cargo.toml",
      "Cargo.lock",
      ".cargo/config.toml",
      "native/cloud_streams_core/Cargo.toml",
      "native/cloud_streams_nif/build.rs",
      "native/cloud_streams_core/src/lib.rs",
      "native/cloud_streams_nif/src/dynamo/codec.rs"
    ]

    # Elixir sources and docs are not the NIF's.
    for other <- ["lib/cloud_streams.ex", "README.md", "mix.exs"] do
      File.touch!(ctx.installed, now - 100)
      File.touch!(Path.join(ctx.package, other), now)
      compile!(ctx)
      File.touch!(Path.join(ctx.package, other), now - 1_000)
    end

    assert calls(ctx) == 1

    for {trigger, n} <- Enum.with_index(triggers, 2) do
      File.touch!(ctx.installed, now - 100)
      path = Path.join(ctx.package, trigger)
      File.mkdir_p!(Path.dirname(path))
      File.touch!(path, now)

      compile!(ctx)
      assert calls(ctx) == n, "touching #{trigger} did not rebuild"
      File.touch!(path, now - 1_000)
    end
  end

  test "mix clean removes the installed library and the compiler's manifest", ctx do
    compile!(ctx)

    manifest =
      Path.join(ctx.package, "_build/dev/lib/cloud_streams/.mix/compile.cloud_streams_native")

    assert File.exists?(ctx.installed)
    assert File.exists?(manifest)

    {output, 0} = mix(ctx, ["clean"])

    refute File.exists?(ctx.installed), output
    refute File.exists?(manifest)

    # The next compile builds again, though no source changed.
    compile!(ctx)
    assert calls(ctx) == 2
  end

  test "a failing or missing cargo is a clear Mix error", ctx do
    {output, status} = mix(ctx, ["compile.cloud_streams_native"], [{"CARGO", "/bin/false"}])
    assert status != 0
    assert output =~ "cargo build of cloud_streams_nif failed (exit status 1)"

    missing = Path.join(ctx.tmp_dir, "no-such-cargo")
    {output, status} = mix(ctx, ["compile.cloud_streams_native"], [{"CARGO", missing}])
    assert status != 0
    assert output =~ "cannot run cargo"
    assert output =~ "install Rust"
    refute File.exists?(ctx.installed)
  end
end
