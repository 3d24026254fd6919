defmodule Bench do
  @moduledoc false
  # Shared by the benchmarks: raw-Rust baselines run in the same `make bench`, repeated
  # timings, and peak-memory sampling.

  @raw_baseline Path.expand("../target/release/examples/raw_baseline", __DIR__)

  @doc "Runs the raw-Rust baseline program; returns its `key=value` output as a map of floats."
  def raw_baseline!(args) do
    {out, 0} = System.cmd(@raw_baseline, args, stderr_to_stdout: true)

    for pair <- String.split(out), [k, v] = String.split(pair, "="), into: %{} do
      {String.to_atom(k), elem(Float.parse(v), 0)}
    end
  end

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
  def print_ratio(bytes, results) do
    raw = Enum.map(results, &elem(&1, 0))
    ours = Enum.map(results, &elem(&1, 1))
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

  def mib(bytes), do: Float.round(bytes / 1_048_576, 1)
  def gbps(bytes, seconds), do: Float.round(bytes / seconds / 1.0e9, 2)
end
