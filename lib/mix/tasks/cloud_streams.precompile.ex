defmodule Mix.Tasks.CloudStreams.Precompile do
  @shortdoc "Builds the precompiled NIF artifact and checksum file for this target"
  @moduledoc """
  Builds the NIF crate with cargo (release profile) and packs it as a `rustler_precompiled`
  artifact for the running target, then writes the checksum file.

      mix cloud_streams.precompile [--output DIR]

  `DIR` (default `_build/precompiled`) receives
  `libcloud_streams_nif-v<version>-nif-<nif version>-<target>.so.tar.gz`, holding the library
  under the same name without `.tar.gz`, and `checksum-Elixir.CloudStreams.Native.exs`, which
  lists the SHA-256 of every artifact of this version in `DIR`. So artifacts built on several
  machines and gathered into one directory get one checksum file from a last run there.
  Publish the artifacts under the release's base URL and commit the checksum file at the
  package root (guides/releasing.md).

  ## Example

      $ mix cloud_streams.precompile --output /tmp/release
      Compiling NIF crate cloud_streams_nif (cargo, release profile)
      ...
      /tmp/release/libcloud_streams_nif-v0.1.0-nif-2.15-x86_64-unknown-linux-gnu.so.tar.gz
      /tmp/release/checksum-Elixir.CloudStreams.Native.exs (1 artifact)
  """
  use Mix.Task

  alias Mix.Tasks.Compile.CloudStreamsNative, as: Native

  @impl true
  @spec run([String.t()]) :: :ok
  def run(args) do
    {opts, rest} = OptionParser.parse!(args, strict: [output: :string])

    if rest != [] do
      Mix.raise(
        "mix cloud_streams.precompile takes no arguments, only --output DIR; got #{inspect(rest)}"
      )
    end

    output = Path.expand(opts[:output] || "_build/precompiled")

    artifact =
      case Native.artifact_name() do
        {:ok, name} -> name
        {:error, reason} -> Mix.raise("mix cloud_streams.precompile: #{reason}")
      end

    built = Native.cargo_build!(Native.root(), :release)
    library = Path.rootname(artifact, ".tar.gz")
    File.mkdir_p!(output)
    path = Path.join(output, artifact)

    :ok =
      :erl_tar.create(
        String.to_charlist(path),
        [{String.to_charlist(library), File.read!(built)}],
        [
          :compressed
        ]
      )

    Mix.shell().info(path)
    write_checksum_file(output)
  end

  defp write_checksum_file(output) do
    version = Mix.Project.config()[:version]

    checksums =
      for path <-
            Path.wildcard(Path.join(output, "libcloud_streams_nif-v#{version}-nif-*.so.tar.gz")),
          into: %{},
          do: {Path.basename(path), Native.checksum(File.read!(path))}

    file = Path.join(output, Native.checksum_file_name())
    Native.write_checksums(file, checksums)
    Mix.shell().info("#{file} (#{map_size(checksums)} artifact(s))")
  end
end
