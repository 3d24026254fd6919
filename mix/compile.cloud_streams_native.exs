defmodule Mix.Tasks.Compile.CloudStreamsNative do
  @moduledoc """
  Builds the NIF crate with cargo (release profile) and installs the shared library as
  `priv/native/libcloud_streams_nif.so`.

  Runs cargo only when a Rust source, a `Cargo.toml` or `Cargo.lock` is newer than the
  installed library. Set `CARGO_TARGET_DIR` to share a warm `target/` between checkouts.
  """
  use Mix.Task.Compiler

  @crate "cloud_streams_nif"
  @library "lib#{@crate}.so"

  @impl true
  def run(_args) do
    root = Path.expand("..", __DIR__)
    installed = Path.join([root, "priv", "native", @library])

    if stale?(root, installed) do
      build!(root)
      built = Path.join([target_dir(root), "release", @library])
      File.mkdir_p!(Path.dirname(installed))
      # A running VM may have the old library mapped: replace the file, never overwrite it.
      File.rm(installed)
      File.cp!(built, installed)
      {:ok, []}
    else
      {:noop, []}
    end
  end

  defp stale?(root, installed) do
    case File.stat(installed, time: :posix) do
      {:ok, %{mtime: built_at}} ->
        Enum.any?(sources(root), fn source ->
          File.stat!(source, time: :posix).mtime > built_at
        end)

      {:error, _} ->
        true
    end
  end

  defp sources(root) do
    [Path.join(root, "Cargo.toml"), Path.join(root, "Cargo.lock")]
    |> Enum.filter(&File.exists?/1)
    |> Kernel.++(Path.wildcard(Path.join(root, "native/*/Cargo.toml")))
    |> Kernel.++(Path.wildcard(Path.join(root, "native/*/src/**/*.rs")))
  end

  defp target_dir(root), do: System.get_env("CARGO_TARGET_DIR") || Path.join(root, "target")

  defp build!(root) do
    Mix.shell().info("Compiling NIF crate #{@crate} (cargo build --release)")

    args = [
      "build",
      "--release",
      "--manifest-path",
      Path.join(root, "Cargo.toml"),
      "-p",
      @crate
    ]

    case System.cmd("cargo", args,
           cd: root,
           into: IO.stream(:stdio, :line),
           stderr_to_stdout: true
         ) do
      {_, 0} -> :ok
      {_, status} -> Mix.raise("cargo build of #{@crate} failed (exit status #{status})")
    end
  rescue
    e in ErlangError ->
      Mix.raise("cannot run cargo (#{Exception.message(e)}): install Rust, see README.md")
  end
end
