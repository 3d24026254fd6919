defmodule CloudStreams.Guide do
  @moduledoc false
  # Reads the Elixir code blocks of a guide, so the test suite runs the examples exactly as
  # the guide shows them.

  @doc "The ```elixir blocks of `path`: `%{line:, heading:, code:, needs_hex?:}`."
  def blocks(path) do
    path
    |> File.read!()
    |> String.split("\n")
    |> Enum.with_index(1)
    |> collect(nil, nil, [])
  end

  defp collect([], _heading, _open, acc), do: Enum.reverse(acc)

  defp collect([{"```elixir", line} | rest], heading, nil, acc),
    do: collect(rest, heading, {line + 1, []}, acc)

  defp collect([{"```", _} | rest], heading, {line, lines}, acc) do
    code = lines |> Enum.reverse() |> Enum.join("\n")

    block = %{
      line: line,
      heading: heading,
      code: code,
      needs_hex?: code =~ ~r/Needs the \w+ hex package/
    }

    collect(rest, heading, nil, [block | acc])
  end

  defp collect([{text, _} | rest], heading, {line, lines}, acc),
    do: collect(rest, heading, {line, [text | lines]}, acc)

  defp collect([{"#" <> _ = title, _} | rest], _heading, nil, acc),
    do: collect(rest, String.trim_leading(title, "#") |> String.trim(), nil, acc)

  defp collect([_ | rest], heading, nil, acc), do: collect(rest, heading, nil, acc)

  @doc "Evaluates a block with `binding`, importing `helpers`; returns its value."
  def run!(block, binding, helpers, file) do
    code = "import #{inspect(helpers)}, warn: false\n" <> block.code
    {value, _binding} = Code.eval_string(code, binding, file: file, line: block.line - 1)
    value
  end

  @doc """
  Evaluates a block like one cell of a session: with the variables, aliases and imports of
  the blocks before it (`session`, from `new_session/2`); returns the session after it.
  """
  def new_session(helpers, file) do
    {_, binding, env} =
      Code.eval_quoted_with_env(
        quote(do: import(unquote(helpers), warn: false)),
        [],
        Code.env_for_eval(file: file)
      )

    {binding, env}
  end

  def run_in_session!(block, {binding, env}, _file) do
    quoted = Code.string_to_quoted!(block.code, file: env.file, line: block.line)
    {_value, binding, env} = Code.eval_quoted_with_env(quoted, binding, env)
    {binding, env}
  end

  @doc """
  Runs a block with its output captured, then calls `drive` with each module it defines (to
  exercise what the block only declares), and unloads those modules for the next block.
  """
  def run_and_drive!(block, binding, helpers, file, drive) do
    ExUnit.CaptureIO.capture_io(fn ->
      run!(block, binding, helpers, file)

      for module <- defined_modules(block) do
        drive.(module)
        :code.purge(module)
        :code.delete(module)
      end
    end)
  end

  @doc "The modules a block defines."
  def defined_modules(block) do
    for [_, name] <- Regex.scan(~r/^defmodule ([\w.]+) do/m, block.code),
        do: Module.concat([name])
  end
end
