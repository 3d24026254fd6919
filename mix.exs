# The NIF compiler is defined outside lib/ so that it exists before this project compiles,
# here and in every project that lists us as a dependency (hex, and with it rustler's own
# Mix compiler, is unreachable: DESIGN §1).
Code.require_file("mix/compile.cloud_streams_native.exs", __DIR__)

defmodule CloudStreams.MixProject do
  use Mix.Project

  def project do
    [
      app: :cloud_streams,
      version: "0.1.0",
      elixir: "~> 1.14",
      start_permanent: Mix.env() == :prod,
      compilers: [:cloud_streams_native] ++ Mix.compilers(),
      elixirc_paths: elixirc_paths(Mix.env()),
      deps: [],
      docs: [main: "readme", extras: ["README.md"]]
    ]
  end

  def application do
    [mod: {CloudStreams.Application, []}, extra_applications: [:logger, :crypto, :inets, :ssl]]
  end

  defp elixirc_paths(:test), do: ["lib", "test/support"]
  defp elixirc_paths(_), do: ["lib"]
end
