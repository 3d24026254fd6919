defmodule CloudStreams.CLI do
  @moduledoc false
  # What `mix cloud_streams.export` and `mix cloud_streams.import` share: switches turned into
  # the library's options (unknown ones refused with a suggestion), the store and DynamoDB
  # configuration from the command line, and the progress line.

  @store_switches [store_endpoint: :string, store_region: :string, allow_http: :boolean]
  @dynamo_switches [endpoint: :string, region: :string, profile: :string]

  @doc """
  Parses `args` with `switches` (plus the store and DynamoDB switches every task takes) and
  `positional` names. Returns `{positional_values, library_opts, store, dynamo_config}`.
  Raises `Mix.Error` naming the task on anything it cannot take.
  """
  @spec parse!(String.t(), [String.t()], [String.t()], keyword()) ::
          {[String.t()], keyword(), keyword(), keyword()}
  def parse!(task, args, positional, switches) do
    all = switches ++ @store_switches ++ @dynamo_switches

    {parsed, rest, invalid} = OptionParser.parse(args, strict: all)

    for {switch, value} <- invalid do
      name = String.trim_leading(switch, "-") |> String.replace("-", "_")

      case Enum.find(all, fn {known, _} -> Atom.to_string(known) == name end) do
        {_, type} ->
          Mix.raise("mix #{task}: #{switch} expects #{article(type)}, got: #{inspect(value)}")

        nil ->
          Mix.raise("mix #{task}: unknown switch #{switch}#{suggest(name, all)}")
      end
    end

    if length(rest) != length(positional) do
      Mix.raise(
        "mix #{task} expects #{Enum.map_join(positional, " ", &String.upcase/1)}, got: " <>
          inspect(rest) <> " (mix help #{task})"
      )
    end

    {library, parsed} = Keyword.split(parsed, Keyword.keys(switches))
    {store, dynamo} = Keyword.split(parsed, Keyword.keys(@store_switches))
    {rest, library, store, dynamo}
  end

  defp article(:integer), do: "an integer"
  defp article(:float), do: "a number"
  defp article(type), do: "a #{type}"

  defp suggest(name, known) do
    {best, score} =
      known
      |> Enum.map(fn {switch, _} ->
        {switch, String.jaro_distance(name, Atom.to_string(switch))}
      end)
      |> Enum.max_by(&elem(&1, 1))

    if score > 0.8, do: "; did you mean --#{String.replace("#{best}", "_", "-")}?", else: ""
  end

  @doc """
  The store a URL names (`ObjectStoreX.new/2`), S3 credentials from the environment. The URL's
  path is the store's prefix.
  """
  @spec store!(String.t(), String.t(), keyword()) :: ObjectStoreX.Store.t()
  def store!(task, url, switches) do
    opts =
      case URI.parse(url).scheme do
        s when s in ["s3", "s3a"] ->
          [from_env: true] ++
            Enum.flat_map(switches, fn
              {:store_endpoint, endpoint} -> [endpoint: endpoint]
              {:store_region, region} -> [region: region]
              {:allow_http, allow?} -> [allow_http: allow?]
            end)

        _ ->
          if switches != [] do
            Mix.raise(
              "mix #{task}: --store-endpoint, --store-region and --allow-http apply to s3:// " <>
                "URLs only, got: #{url}"
            )
          end

          []
      end

    case ObjectStoreX.new(url, opts) do
      {:ok, store} -> store
      {:error, error} -> Mix.raise("mix #{task}: #{Exception.message(error)}")
    end
  rescue
    error in ArgumentError -> Mix.raise("mix #{task}: #{Exception.message(error)}")
  end

  @doc "The `:config` option (see `Dynamo.Config`) from the DynamoDB switches."
  @spec dynamo_config(keyword()) :: keyword()
  def dynamo_config([]), do: []
  def dynamo_config(switches), do: [config: switches]

  @doc """
  Starts the library (not the caller's application: a task run against a production
  table should not start its consumers).
  """
  @spec start!() :: :ok
  def start! do
    Mix.Task.run("app.config")

    case Application.ensure_all_started(:cloud_streams) do
      {:ok, _} -> :ok
      {:error, reason} -> Mix.raise("cannot start :cloud_streams: #{inspect(reason)}")
    end
  end

  @doc """
  An `on_progress` function printing one line: redrawn in place on a terminal, else at most
  once every 5 s. `total` is the item count when known (a progress bar), else `nil`.
  """
  @spec progress(String.t(), (map() -> non_neg_integer() | nil)) :: (map() -> :ok)
  def progress(verb, total_of) do
    started = System.monotonic_time(:millisecond)
    # The line goes to stderr: redrawn in place only when stderr is a terminal.
    tty? = match?({:ok, _}, :io.columns(:standard_error))
    # When the last line was printed: the first report prints at once.
    last = :counters.new(1, [])
    :counters.put(last, 1, started - 5_000)

    fn progress ->
      now = System.monotonic_time(:millisecond)

      if tty? or now - :counters.get(last, 1) >= 5_000 do
        :counters.put(last, 1, now)
        line = line(verb, progress, total_of.(progress), max(now - started, 1))
        if tty?, do: IO.write(:stderr, "\r" <> line), else: IO.puts(:stderr, line)
      end

      :ok
    end
  end

  @doc "Ends the progress line and prints the result."
  @spec finish(String.t(), map()) :: :ok
  def finish(verb, result) do
    if match?({:ok, _}, :io.columns(:standard_error)), do: IO.write(:stderr, "\n")

    Mix.shell().info(
      "#{verb} #{format_int(result.items)} items in #{format_int(result.files)} files " <>
        "(#{mib(result.bytes)} MiB)" <>
        if(result[:manifest], do: ": #{result.manifest}", else: "")
    )
  end

  defp line(verb, progress, total, elapsed_ms) do
    items = Map.get(progress, :items, 0)
    rate = div(items * 1000, elapsed_ms)

    bar =
      case total do
        total when is_integer(total) and total > 0 ->
          done = min(round(items / total * 30), 30)

          "[#{String.duplicate("#", done)}#{String.duplicate(".", 30 - done)}] " <>
            "#{min(div(items * 100, total), 100)}% "

        _ ->
          ""
      end

    "#{verb}: #{bar}#{format_int(items)} items, #{format_int(Map.get(progress, :files, 0))} " <>
      "files, #{mib(Map.get(progress, :bytes, 0))} MiB, #{format_int(rate)} items/s"
  end

  defp mib(bytes), do: :erlang.float_to_binary(bytes / 1_048_576, decimals: 1)

  defp format_int(n) do
    n
    |> Integer.to_string()
    |> String.reverse()
    |> String.replace(~r/(\d{3})(?=\d)/, "\\1,")
    |> String.reverse()
  end

  @doc "Raises `Mix.Error` for a failed export or import of `table`."
  @spec fail!(String.t(), String.t(), Exception.t()) :: no_return()
  def fail!(task, table, error) do
    if match?({:ok, _}, :io.columns(:standard_error)), do: IO.write(:stderr, "\n")
    Mix.raise("mix #{task} failed (table #{table}): #{Exception.message(error)}")
  end
end
