# The NIF compiler is defined outside lib/ so that it exists before this project compiles,
# here and in every project that lists us as a dependency (it also downloads precompiled NIFs:
# guides/releasing.md).
Code.require_file("mix/compile.cloud_streams_native.exs", __DIR__)

defmodule CloudStreams.MixProject do
  use Mix.Project

  @version "0.1.0"
  @source_url "https://github.com/cloud-streams/cloud_streams"

  def project do
    [
      app: :cloud_streams,
      version: @version,
      elixir: "~> 1.14",
      start_permanent: Mix.env() == :prod,
      compilers: [:cloud_streams_native] ++ Mix.compilers(),
      elixirc_paths: elixirc_paths(Mix.env()),
      deps: [],
      # Where the release's precompiled NIFs are published (CLOUD_STREAMS_PRECOMPILED_URL
      # overrides it).
      precompiled_url: "#{@source_url}/releases/download/v#{@version}",
      description: description(),
      package: package(),
      source_url: @source_url,
      homepage_url: @source_url,
      docs: docs()
    ]
  end

  def application do
    [mod: {CloudStreams.Application, []}, extra_applications: [:logger, :crypto, :inets, :ssl]]
  end

  defp elixirc_paths(:test), do: ["lib", "test/support"]
  defp elixirc_paths(_), do: ["lib"]

  defp description do
    "Memory-bounded, cancellable streaming between Elixir and object stores (S3, GCS, Azure, " <>
      "local disk) or DynamoDB, on a Rust NIF; precompiled NIFs or a source build with cargo."
  end

  # What a hex package needs to install: the Elixir sources, the NIF compiler, the crates'
  # sources (for the source build) and the checksum file (for precompiled NIFs). Never priv/:
  # it may hold a locally built library.
  defp package do
    [
      licenses: ["Apache-2.0"],
      links: %{
        "GitHub" => @source_url,
        "Changelog" => "#{@source_url}/blob/v#{@version}/CHANGELOG.md"
      },
      files: [
        "lib",
        "mix",
        "mix.exs",
        "Cargo.toml",
        "Cargo.lock",
        "native/cloud_streams_core/Cargo.toml",
        "native/cloud_streams_core/src",
        "native/cloud_streams_nif/Cargo.toml",
        "native/cloud_streams_nif/src",
        "checksum-Elixir.CloudStreams.Native.exs",
        "guides",
        "README.md",
        "CHANGELOG.md",
        "NOTES.md",
        "LICENSE"
      ]
    ]
  end

  defp docs do
    [
      main: "readme",
      source_ref: "v#{@version}",
      extras: [
        "README.md",
        "guides/getting_started.md",
        "guides/objectstorex_streaming_guide.md",
        "guides/dynamo_streaming_guide.md",
        "guides/configuration.md",
        "guides/error_handling.md",
        "guides/distributed_systems.md",
        "guides/table_export_import.md",
        "guides/observability.md",
        "guides/architecture.md",
        "guides/releasing.md",
        "NOTES.md",
        "CHANGELOG.md"
      ],
      groups_for_extras: [
        Guides:
          ~r{guides/(getting_started|.*streaming_guide|configuration|error_handling|distributed_systems|table_export_import|observability)\.md},
        Internals: ["guides/architecture.md", "guides/releasing.md", "NOTES.md"]
      ],
      groups_for_modules: [
        ObjectStoreX: ~r/^ObjectStoreX/,
        Dynamo: ~r/^Dynamo/,
        Core: ~r/^CloudStreams/
      ]
    ]
  end
end
