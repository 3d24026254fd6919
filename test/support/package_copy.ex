defmodule CloudStreams.PackageCopy do
  @moduledoc false
  # A copy of cloud_streams as its hex package holds it (the files `package: [files: ...]`
  # of mix.exs lists), and a fake cargo that records each call, for the tests of the NIF
  # compiler (mix/compile.cloud_streams_native.exs).

  @doc "Copies the package's files from this checkout to `dir`; returns `dir`."
  def copy!(dir) do
    root = File.cwd!()

    for entry <- Mix.Project.config()[:package][:files],
        source <- Path.wildcard(Path.join(root, entry)) do
      dest = Path.join(dir, Path.relative_to(source, root))
      File.mkdir_p!(Path.dirname(dest))
      File.cp_r!(source, dest)
    end

    dir
  end

  @doc """
  Writes an executable `cargo` into `bin_dir` that appends its arguments to `marker`, then
  runs `body` (shell).
  """
  def fake_cargo!(bin_dir, marker, body) do
    File.mkdir_p!(bin_dir)
    path = Path.join(bin_dir, "cargo")
    File.write!(path, "#!/bin/sh\necho \"$@\" >> \"#{marker}\"\n" <> body)
    File.chmod!(path, 0o755)
    path
  end

  @doc "How many times the fake cargo was called."
  def cargo_calls(marker) do
    case File.read(marker) do
      {:ok, text} -> text |> String.split("\n", trim: true) |> length()
      {:error, :enoent} -> 0
    end
  end
end
