defmodule Mix.Tasks.Compile.CloudStreamsNative do
  @moduledoc """
  Installs the NIF as `priv/native/libcloud_streams_nif.so`: a precompiled artifact when one
  is published for this target, otherwise a build of the crate with cargo.

  Precompiled artifacts follow the `rustler_precompiled` contract. An artifact is named
  `libcloud_streams_nif-v<version>-nif-<nif version>-<target>.so.tar.gz` and holds the library
  under the same name without `.tar.gz`; its SHA-256 is listed in
  `checksum-Elixir.CloudStreams.Native.exs` at the package root, a map from artifact name to
  `"sha256:<hex>"`. `mix cloud_streams.precompile` makes both (guides/releasing.md).

  The compiler downloads the artifact for the running target from the base URL given by
  `CLOUD_STREAMS_PRECOMPILED_URL`, or else the project's `:precompiled_url`, with OTP's
  `:httpc` (TLS verified against the OS certificates), checks its SHA-256 and installs it.
  It builds from source with cargo instead when:

    * `CLOUD_STREAMS_BUILD=1` (or `true`) is set;
    * the checksum file lists no artifact for this version and target (a development
      checkout has none);
    * the download fails: no network, a refused connection, an HTTP error, a certificate
      that does not verify (a warning says so).

  `HTTP_PROXY`, `HTTPS_PROXY` and `NO_PROXY` are honoured.

  An artifact whose SHA-256 differs from the checksum file is refused with an error and
  nothing is installed: a tampered download never falls back silently.

  Source builds run `cargo` from the `PATH` (or the binary `CARGO` names) when a crate
  source, a `build.rs`, a `Cargo.toml`, `Cargo.lock` or `.cargo/config.toml` is not older than
  the installed library, or when the last install was not a source build of the same
  profile. The profile is release in every Mix environment (NOTES.md, issue 15). On macOS the
  library is linked with `-undefined dynamic_lookup`, as rustler does, and installed as `.so`,
  the name `:erlang.load_nif/2` looks for. Set `CARGO_TARGET_DIR` to share a warm `target/`
  between checkouts. `mix clean` removes the installed library and this compiler's manifest.
  """
  use Mix.Task.Compiler

  @crate "cloud_streams_nif"
  @nif_module "Elixir.CloudStreams.Native"
  @installed_name "lib#{@crate}.so"
  # NIF versions the crate can be built for (rustler's `nif_version_2_15` feature in
  # Cargo.toml); a newer VM of the same major version loads them too.
  @nif_versions ["2.15"]
  @build_env "CLOUD_STREAMS_BUILD"
  @url_env "CLOUD_STREAMS_PRECOMPILED_URL"
  @connect_timeout 10_000
  @download_timeout 120_000

  @impl true
  def run(_args) do
    root = root()
    installed = installed_path(root)
    manifest = read_manifest()

    case plan(root) do
      {:precompiled, artifact, checksum} ->
        cond do
          manifest == {:precompiled, artifact, checksum} and File.exists?(installed) ->
            {:noop, []}

          download_and_install(root, artifact, checksum) == :ok ->
            write_manifest({:precompiled, artifact, checksum})
            {:ok, []}

          # A fresh source build from an earlier fallback is kept.
          true ->
            build_from_source(root, manifest, nil)
        end

      {:source, reason} ->
        build_from_source(root, manifest, reason)
    end
  end

  @impl true
  def manifests, do: [manifest_path()]

  @impl true
  def clean do
    File.rm(installed_path(root()))
    File.rm(manifest_path())
    :ok
  end

  @doc "The root of the cloud_streams project (the package), where `mix.exs` is."
  @spec root() :: Path.t()
  def root, do: Path.expand("..", __DIR__)

  @doc "The checksum file's name, at the package root (the `rustler_precompiled` name)."
  @spec checksum_file_name() :: String.t()
  def checksum_file_name, do: "checksum-#{@nif_module}.exs"

  @doc """
  The artifact name for this project's version and the running target, e.g.
  `"libcloud_streams_nif-v0.1.0-nif-2.15-x86_64-unknown-linux-gnu.so.tar.gz"`.
  """
  @spec artifact_name() :: {:ok, String.t()} | {:error, String.t()}
  def artifact_name do
    with {:ok, nif_version} <- nif_version(),
         {:ok, target} <- target() do
      version = Mix.Project.config()[:version]
      {:ok, "lib#{@crate}-v#{version}-nif-#{nif_version}-#{target}.so.tar.gz"}
    end
  end

  @doc "Reads the checksum file at `path`: `%{artifact_name => \"sha256:<hex>\"}`."
  @spec read_checksums(Path.t()) :: %{String.t() => String.t()}
  def read_checksums(path) do
    case File.read(path) do
      {:ok, text} ->
        case Code.string_to_quoted(text) do
          {:ok, quoted} ->
            case Code.eval_quoted(quoted) do
              {%{} = map, _} -> map
              _ -> Mix.raise("#{path} is not a map of artifact names to checksums")
            end

          {:error, _} ->
            Mix.raise("#{path} is not a map of artifact names to checksums")
        end

      {:error, :enoent} ->
        %{}

      {:error, reason} ->
        Mix.raise("cannot read #{path}: #{:file.format_error(reason)}")
    end
  end

  @doc "Writes `checksums` to `path` in `rustler_precompiled`'s format (sorted, one per line)."
  @spec write_checksums(Path.t(), %{String.t() => String.t()}) :: :ok
  def write_checksums(path, checksums) do
    lines = for {name, sum} <- Enum.sort(checksums), do: ~s(  "#{name}" => "#{sum}",\n)
    File.write!(path, ["%{\n", lines, "}\n"])
  end

  @doc ~s(The checksum of `data` as the checksum file writes it: `"sha256:<hex>"`.)
  @spec checksum(iodata()) :: String.t()
  def checksum(data), do: "sha256:" <> Base.encode16(:crypto.hash(:sha256, data), case: :lower)

  @doc """
  Builds the crate with cargo in `profile` (`:release` or `:debug`) and returns the path of
  the library cargo made (`.so`, or `.dylib` on macOS).
  """
  @spec cargo_build!(Path.t(), :release | :debug) :: Path.t()
  def cargo_build!(root, profile) do
    Mix.shell().info("Compiling NIF crate #{@crate} (cargo, #{profile} profile)")

    args =
      ["rustc", "--manifest-path", Path.join(root, "Cargo.toml"), "-p", @crate, "--lib"] ++
        if(profile == :release, do: ["--release"], else: []) ++ platform_link_args()

    cargo = System.get_env("CARGO") || "cargo"

    output = IO.stream(:stdio, :line)

    case System.cmd(cargo, args, cd: root, into: output, stderr_to_stdout: true) do
      {_, 0} -> Path.join([target_dir(root), Atom.to_string(profile), built_name()])
      {_, status} -> Mix.raise("cargo build of #{@crate} failed (exit status #{status})")
    end
  rescue
    e in ErlangError ->
      Mix.raise("cannot run cargo (#{Exception.message(e)}): install Rust, see README.md")
  end

  defp plan(root) do
    with :ok <- build_not_forced(),
         {:ok, artifact} <- artifact_name(),
         {:ok, checksum} <- listed_checksum(root, artifact) do
      {:precompiled, artifact, checksum}
    else
      {:error, reason} -> {:source, reason}
    end
  end

  defp build_not_forced do
    if System.get_env(@build_env) in ["1", "true"],
      do: {:error, "#{@build_env} is set"},
      else: :ok
  end

  defp listed_checksum(root, artifact) do
    case Map.fetch(read_checksums(Path.join(root, checksum_file_name())), artifact) do
      {:ok, checksum} -> {:ok, checksum}
      # A development checkout: nothing published for this version, build quietly.
      :error -> {:error, nil}
    end
  end

  defp download_and_install(root, artifact, checksum) do
    url = artifact_url(artifact)
    Mix.shell().info("cloud_streams: downloading the precompiled NIF #{url}")

    case download(url) do
      {:ok, body} ->
        verify!(artifact, body, checksum)
        install_artifact!(root, artifact, body)

      {:error, reason} ->
        Mix.shell().error(
          "cloud_streams: could not download #{url} (#{reason}); building from source instead"
        )

        :error
    end
  end

  defp verify!(artifact, body, expected) do
    actual = checksum(body)

    if actual != expected do
      Mix.raise("""
      the precompiled NIF #{artifact} was refused: its SHA-256 does not match \
      #{checksum_file_name()} (expected #{expected}, got #{actual}). The download may have \
      been tampered with. Nothing was installed; set #{@build_env}=1 to build from source.\
      """)
    end
  end

  defp install_artifact!(root, artifact, body) do
    library = Path.rootname(artifact, ".tar.gz")

    case :erl_tar.extract({:binary, body}, [:compressed, :memory, files: [~c"#{library}"]]) do
      {:ok, [{_, contents}]} -> install!(root, {:contents, contents})
      _ -> Mix.raise("the precompiled NIF #{artifact} does not contain #{library}")
    end
  end

  defp artifact_url(artifact) do
    base = System.get_env(@url_env) || Mix.Project.config()[:precompiled_url]

    if base in [nil, ""] do
      Mix.raise("no base URL for precompiled NIFs: set #{@url_env} or :precompiled_url")
    end

    String.trim_trailing(base, "/") <> "/" <> artifact
  end

  defp download(url) do
    {:ok, _} = Application.ensure_all_started(:inets)
    {:ok, _} = Application.ensure_all_started(:ssl)

    with {:ok, http_options} <- http_options(url) do
      use_proxies()
      request = {String.to_charlist(url), []}

      case :httpc.request(:get, request, http_options, body_format: :binary) do
        {:ok, {{_, 200, _}, _headers, body}} -> {:ok, body}
        {:ok, {{_, status, _}, _headers, _body}} -> {:error, "HTTP status #{status}"}
        {:error, reason} -> {:error, inspect(reason)}
      end
    end
  end

  defp http_options(url) do
    base = [connect_timeout: @connect_timeout, timeout: @download_timeout, autoredirect: true]

    if String.starts_with?(url, "https:") do
      with {:ok, cacerts} <- os_cacerts() do
        ssl = [
          verify: :verify_peer,
          cacerts: cacerts,
          depth: 4,
          customize_hostname_check: [
            match_fun: :public_key.pkix_verify_hostname_match_fun(:https)
          ]
        ]

        {:ok, [ssl: ssl] ++ base}
      end
    else
      {:ok, base}
    end
  end

  # HTTP_PROXY and HTTPS_PROXY (or their lowercase forms), as rustler_precompiled and most
  # tools read them; NO_PROXY lists hosts reached directly.
  defp use_proxies do
    no_proxy =
      (env("NO_PROXY") || "")
      |> String.split(",", trim: true)
      |> Enum.map(&(&1 |> String.trim() |> String.to_charlist()))

    for {variable, option} <- [{"HTTP_PROXY", :proxy}, {"HTTPS_PROXY", :https_proxy}],
        proxy = env(variable),
        %URI{host: host, port: port} when is_binary(host) <- [URI.parse(proxy)] do
      :ok = :httpc.set_options([{option, {{String.to_charlist(host), port}, no_proxy}}])
    end

    :ok
  end

  defp env(name), do: System.get_env(name) || System.get_env(String.downcase(name))

  defp os_cacerts do
    {:ok, :public_key.cacerts_get()}
  rescue
    e -> {:error, "no CA certificates to verify TLS with: #{Exception.message(e)}"}
  end

  defp build_from_source(root, manifest, reason) do
    installed = installed_path(root)
    profile = profile()

    if manifest == {:source, profile} and not stale?(root, installed) do
      {:noop, []}
    else
      if reason, do: Mix.shell().info("cloud_streams: building the NIF from source (#{reason})")
      install!(root, {:file, cargo_build!(root, profile)})
      write_manifest({:source, profile})
      {:ok, []}
    end
  end

  # Release in every environment: a dependency compiles in :prod anyway, and the test suite
  # and the benchmarks measure speed against raw Rust (NOTES.md, issue 15).
  defp profile, do: :release

  defp install!(root, what) do
    installed = installed_path(root)
    File.mkdir_p!(Path.dirname(installed))
    # A running VM may have the old library mapped: replace the file, never overwrite it.
    File.rm(installed)

    case what do
      {:file, built} -> File.cp!(built, installed)
      {:contents, contents} -> File.write!(installed, contents)
    end

    # Mix links the build's priv/ to ours only if priv/ existed when it made the build
    # structure; a package ships none, so link it now.
    Mix.Project.build_structure()
    :ok
  end

  defp stale?(root, installed) do
    case File.stat(installed, time: :posix) do
      {:ok, %{mtime: built_at}} ->
        Enum.any?(sources(root), fn source ->
          File.stat!(source, time: :posix).mtime >= built_at
        end)

      {:error, _} ->
        true
    end
  end

  defp sources(root) do
    [
      "Cargo.toml",
      "Cargo.lock",
      ".cargo/config.toml",
      ".cargo/config",
      "native/*/Cargo.toml",
      "native/*/build.rs",
      "native/*/src/**/*"
    ]
    |> Enum.flat_map(&Path.wildcard(Path.join(root, &1), match_dot: true))
    |> Enum.filter(&File.regular?/1)
  end

  defp installed_path(root), do: Path.join([root, "priv", "native", @installed_name])

  defp built_name do
    case :os.type() do
      {:unix, :darwin} -> "lib#{@crate}.dylib"
      _ -> "lib#{@crate}.so"
    end
  end

  # rustler's flags for macOS: the NIF's enif_* symbols are resolved when the VM loads it.
  defp platform_link_args do
    case :os.type() do
      {:unix, :darwin} -> ["--", "-C", "link-arg=-undefined", "-C", "link-arg=dynamic_lookup"]
      _ -> []
    end
  end

  defp target_dir(root), do: System.get_env("CARGO_TARGET_DIR") || Path.join(root, "target")

  # The newest NIF version we build for that the running VM can load (same major version).
  defp nif_version do
    [major, minor] = version_parts(:erlang.system_info(:nif_version) |> List.to_string())

    @nif_versions
    |> Enum.filter(fn v -> match?([^major, m] when m <= minor, version_parts(v)) end)
    |> Enum.max_by(&version_parts/1, fn -> nil end)
    |> case do
      nil -> {:error, "no precompiled NIF for NIF version #{major}.#{minor}"}
      version -> {:ok, version}
    end
  end

  defp version_parts(version),
    do: version |> String.split(".") |> Enum.take(2) |> Enum.map(&String.to_integer/1)

  @doc """
  The running target as `rustler_precompiled` names it (Rust's target triple), e.g.
  `"x86_64-unknown-linux-gnu"` or `"aarch64-apple-darwin"`.
  """
  @spec target() :: {:ok, String.t()} | {:error, String.t()}
  def target do
    system = :erlang.system_info(:system_architecture) |> List.to_string()

    case String.split(system, "-") do
      [arch, vendor, os | abi] -> {:ok, normalize_target(arch, vendor, os, abi)}
      _ -> {:error, "no precompiled NIF for system architecture #{system}"}
    end
  end

  defp normalize_target(arch, vendor, os, abi) do
    cond do
      os =~ "darwin" ->
        arch = if arch == "arm", do: "aarch64", else: arch
        Enum.join([arch, "apple", "darwin"], "-")

      os =~ "linux" ->
        arch = if arch == "amd64", do: "x86_64", else: arch
        vendor = if vendor == "pc", do: "unknown", else: vendor
        Enum.join([arch, vendor, os | abi], "-")

      true ->
        Enum.join([arch, vendor, os | abi], "-")
    end
  end

  defp manifest_path, do: Path.join(Mix.Project.manifest_path(), "compile.cloud_streams_native")

  defp read_manifest do
    case File.read(manifest_path()) do
      {:ok, binary} -> :erlang.binary_to_term(binary)
      {:error, _} -> nil
    end
  rescue
    ArgumentError -> nil
  end

  defp write_manifest(term) do
    File.mkdir_p!(Path.dirname(manifest_path()))
    File.write!(manifest_path(), :erlang.term_to_binary(term))
  end
end
