defmodule Bench do
  @moduledoc false
  # Shared by the benchmarks: raw-Rust baselines run in the same `make bench`, repeated
  # timings, and peak-memory sampling.

  @raw_baseline Path.expand("../target/release/examples/raw_baseline", __DIR__)

  @doc """
  Runs the raw-Rust baseline program; returns its `key=value` output as a map of floats
  (`seconds`, `cpu`, `bytes` or `items`).
  """
  def raw_baseline!(args) do
    {out, 0} = System.cmd(@raw_baseline, args, stderr_to_stdout: true)
    parse_pairs(out)
  end

  @peers Path.expand("peers.py", __DIR__)

  @doc """
  Runs a Python peer (bench/peers.py) in the virtualenv bench/setup_peers.sh installs; returns
  its `key=value` output as a map of floats (`seconds`, `cpu`, `bytes` or `items`).
  """
  def peer!(args) do
    python =
      case :persistent_term.get({__MODULE__, :python}, nil) do
        nil ->
          {out, 0} = System.cmd(Path.expand("setup_peers.sh", __DIR__), [])
          python = out |> String.split("\n", trim: true) |> List.last()
          :persistent_term.put({__MODULE__, :python}, python)
          python

        python ->
          python
      end

    {out, status} = System.cmd(python, [@peers | args], stderr_to_stdout: true)
    if status != 0, do: raise("peers.py #{Enum.join(args, " ")} failed:\n#{out}")
    parse_pairs(out)
  end

  defp parse_pairs(out) do
    for pair <- String.split(out), [k, v] <- [String.split(pair, "=")], into: %{} do
      {String.to_atom(k), elem(Float.parse(v), 0)}
    end
  end

  @doc """
  Wall seconds and CPU seconds (user+system of this VM, every thread) taken by `fun`:
  `%{seconds:, cpu:, result:}`.
  """
  def measure(fun) do
    cpu = thread_cpu()
    {seconds, result} = time(fun)
    %{seconds: seconds, cpu: cpu_since(cpu), result: result}
  end

  # Run time of each thread of this VM in nanoseconds (/proc/self/task/*/schedstat, exact,
  # where /proc/self/stat counts in 10 ms ticks). A thread that exits during a measurement
  # loses its share: the VM's schedulers live as long as the VM, and tokio's idle threads
  # stay 10 s, longer than any gap between operations here.
  defp thread_cpu do
    for tid <- File.ls!("/proc/self/task"),
        {:ok, text} <- [File.read("/proc/self/task/#{tid}/schedstat")],
        into: %{} do
      {tid, text |> String.split() |> hd() |> String.to_integer()}
    end
  end

  defp cpu_since(before) do
    now = thread_cpu()
    Enum.sum(for {tid, ns} <- now, do: ns - Map.get(before, tid, 0)) / 1.0e9
  end

  @doc """
  Runs every side of a comparison `rounds` times, each round in a different order (so no
  side always meets another's leftovers). `sides` is `[{name, fun}]`, each fun returning
  `%{seconds:, cpu:}`; the first side is the baseline (raw Rust). Returns
  `[{name, [measurement]}]` in the order given.
  """
  def compare(sides, rounds) do
    names = Enum.map(sides, &elem(&1, 0))

    measured =
      for round <- 1..rounds, reduce: Map.new(names, &{&1, []}) do
        acc ->
          shift = rem(round - 1, length(sides))
          {first, last} = Enum.split(sides, shift)

          for {name, fun} <- last ++ first, reduce: acc do
            acc -> Map.update!(acc, name, &[fun.() | &1])
          end
      end

    Enum.map(names, &{&1, Enum.reverse(measured[&1])})
  end

  @doc """
  Prints one row per side of `compare/2`'s results: throughput (median, and the range over
  rounds), the ratio to the baseline (median throughput over median throughput, and the range
  of per-round ratios), and CPU seconds per `per_label` (median) with its ratio to the
  baseline's. `units` is the work of one run (bytes or items), `per` the units of one
  `per_label`; throughput is printed in units of `{scale, label}` per second. Records each
  non-baseline ratio for the chart.
  """
  def print_comparison(title, results, units, per, per_label, {scale, rate_label}) do
    [{baseline, base} | _] = results
    base_seconds = median(Enum.map(base, & &1.seconds))
    base_cpu = median(Enum.map(base, & &1.cpu))
    rate = fn seconds -> fmt(units / seconds / scale) end
    IO.puts("== #{title}, #{length(base)} rounds (baseline: #{baseline})")

    for {name, runs} <- results do
      seconds = Enum.map(runs, & &1.seconds)
      cpu = median(Enum.map(runs, & &1.cpu))
      ratios = Enum.zip_with(base, runs, fn b, r -> b.seconds / r.seconds end)
      ratio = base_seconds / median(seconds)
      if name != baseline, do: record("#{title}: #{name}", ratio, Enum.max(ratios))

      IO.puts(
        "  #{String.pad_trailing(name, 9)} #{rate.(median(seconds))} #{rate_label}" <>
          " (#{rate.(Enum.max(seconds))}-#{rate.(Enum.min(seconds))})" <>
          "  ratio #{fmt(ratio)} (#{fmt(Enum.min(ratios))}-#{fmt(Enum.max(ratios))})" <>
          "  CPU #{fmt(cpu / units * per, 3)} s/#{per_label} (#{fmt(cpu / base_cpu)}x raw)"
      )
    end
  end

  defp fmt(x, digits \\ 2), do: :erlang.float_to_binary(x / 1, decimals: digits)

  @doc "Rounds per comparison: CLOUD_STREAMS_BENCH_ROUNDS, else `default`."
  def rounds(default),
    do: String.to_integer(System.get_env("CLOUD_STREAMS_BENCH_ROUNDS", "#{default}"))

  @doc "False when CLOUD_STREAMS_BENCH_MEMORY=0: the slow-consumer memory rows are skipped."
  def memory_rows?, do: System.get_env("CLOUD_STREAMS_BENCH_MEMORY") != "0"

  @doc "Seconds taken by `fun`, and its result."
  def time(fun) do
    started = System.monotonic_time()
    result = fun.()

    {System.convert_time_unit(System.monotonic_time() - started, :native, :microsecond) / 1.0e6,
     result}
  end

  def median(values) do
    sorted = Enum.sort(values)
    Enum.at(sorted, div(length(sorted), 2))
  end

  @doc """
  Runs `fun` while sampling every 5 ms; returns `{result, peaks}` where peaks are growth over
  the start in BEAM memory (`:erlang.memory(:total)`, `:binary`) and OS resident memory.
  """
  def with_peak_memory(fun) do
    :erlang.garbage_collect()
    base = sample()
    parent = self()
    sampler = spawn_link(fn -> sample_loop(parent, base, %{total: 0, binary: 0, rss: 0}) end)
    result = fun.()
    send(sampler, :stop)

    receive do
      {:peaks, peaks} -> {result, peaks}
    end
  end

  defp sample_loop(parent, base, peaks) do
    now = sample()

    peaks =
      Map.merge(peaks, Map.new(now, fn {k, v} -> {k, v - base[k]} end), fn _, a, b ->
        max(a, b)
      end)

    receive do
      :stop -> send(parent, {:peaks, peaks})
    after
      5 -> sample_loop(parent, base, peaks)
    end
  end

  defp sample do
    %{total: :erlang.memory(:total), binary: :erlang.memory(:binary), rss: rss()}
  end

  defp rss do
    "/proc/self/status"
    |> File.read!()
    |> then(&Regex.run(~r/VmRSS:\s+(\d+) kB/, &1))
    |> then(fn [_, kb] -> String.to_integer(kb) * 1024 end)
  end

  @doc """
  Prints throughput and the ratio ours/raw for `results`, a list of `{raw_seconds,
  ours_seconds}` from alternating rounds: the median and the best round of each side (the
  best estimates the intrinsic cost on a noisy machine), and the spread.
  """
  def print_ratio(bytes, results, label \\ nil) do
    raw = Enum.map(results, &elem(&1, 0))
    ours = Enum.map(results, &elem(&1, 1))
    record(label, median(raw) / median(ours), Enum.min(raw) / Enum.min(ours))
    range = fn times -> "#{gbps(bytes, Enum.max(times))}-#{gbps(bytes, Enum.min(times))}" end

    IO.puts(
      "  median: ours #{gbps(bytes, median(ours))} GB/s, raw #{gbps(bytes, median(raw))} GB/s, " <>
        "ratio #{Float.round(median(raw) / median(ours), 2)}"
    )

    IO.puts(
      "  best:   ours #{gbps(bytes, Enum.min(ours))} GB/s, raw #{gbps(bytes, Enum.min(raw))} GB/s, " <>
        "ratio #{Float.round(Enum.min(raw) / Enum.min(ours), 2)}   (spread: ours #{range.(ours)}, raw #{range.(raw)} GB/s)"
    )
  end

  @doc "Keeps a ratio (median and best round) for the chart `write_chart/1` draws."
  def record(nil, _median, _best), do: :ok

  def record(label, median, best) do
    :persistent_term.put({__MODULE__, :results}, results() ++ [{label, median, best}])
  end

  def results, do: :persistent_term.get({__MODULE__, :results}, [])

  @doc """
  Draws the recorded ratios as horizontal bars (median, with the best round as a tick) into an
  SVG file, with the raw-Rust line at 1.0. No plotting library: hex is out of reach.
  """
  def write_chart(path) do
    rows = results()
    bar_height = 22
    left = 330
    scale = 160
    max_ratio = rows |> Enum.map(fn {_, m, b} -> max(m, b) end) |> Enum.max(fn -> 1.0 end)
    max_ratio = max(max_ratio, 1.2)
    width = max(left + round(max_ratio * scale) + 80, 660)
    height = 50 + length(rows) * (bar_height + 8)
    x = fn ratio -> left + round(ratio * scale) end

    bars =
      rows
      |> Enum.with_index()
      |> Enum.map(fn {{label, median, best}, i} ->
        y = 30 + i * (bar_height + 8)
        color = if median >= 0.9, do: "#2e7d32", else: "#ef6c00"

        """
        <text x="#{left - 8}" y="#{y + 15}" text-anchor="end">#{escape(label)}</text>
        <rect x="#{left}" y="#{y}" width="#{x.(median) - left}" height="#{bar_height}" fill="#{color}"/>
        <line x1="#{x.(best)}" y1="#{y - 2}" x2="#{x.(best)}" y2="#{y + bar_height + 2}" stroke="#000" stroke-width="2"/>
        <text x="#{max(x.(median), x.(best)) + 6}" y="#{y + 15}">#{Float.round(median, 2)}</text>
        """
      end)

    svg = """
    <svg xmlns="http://www.w3.org/2000/svg" width="#{width}" height="#{height}" font-family="sans-serif" font-size="13">
    <rect width="100%" height="100%" fill="#fff"/>
    <text x="10" y="18" font-weight="bold">ours / raw Rust, same run (bar: median, tick: best round; 1.0 = raw Rust)</text>
    #{Enum.join(bars)}
    <line x1="#{x.(1.0)}" y1="24" x2="#{x.(1.0)}" y2="#{height - 10}" stroke="#1565c0" stroke-dasharray="4 3"/>
    </svg>
    """

    File.write!(path, svg)
    IO.puts("(chart of #{length(rows)} ratios written to #{path})")
  end

  defp escape(text),
    do: text |> String.replace("&", "&amp;") |> String.replace("<", "&lt;")

  def mib(bytes), do: Float.round(bytes / 1_048_576, 1)
  def gbps(bytes, seconds), do: Float.round(bytes / seconds / 1.0e9, 2)
end
