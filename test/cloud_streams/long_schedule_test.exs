defmodule CloudStreams.LongScheduleTest do
  # No NIF call of CloudStreams.Native keeps a normal scheduler for 1 ms or more while
  # downloads, listings and scans stream at full speed (issue 17, item 4). The VM reports every
  # process that runs uninterrupted for at least the `long_schedule` time
  # (`:erlang.system_monitor/2`, erts "System Monitoring"), naming the functions it was
  # scheduled in and out at; each NIF call is also timed in scheduler CPU time (see below).
  use ExUnit.Case, async: false
  @moduletag :dynamodb
  @moduletag :s3

  # The NIFs that open a stream run on dirty CPU schedulers (`schedule = "DirtyCpu"` in
  # native/cloud_streams_nif/src/store/streams.rs, dynamo/stream.rs, dynamo/statement_stream.rs):
  # not the normal schedulers this test is about.
  @dirty_nifs [
    :store_download_stream,
    :store_list_stream,
    :store_upload_start,
    :dynamo_read_stream,
    :dynamo_statement_stream,
    :dynamo_export,
    :dynamo_export_stream
  ]

  alias CloudStreams.TestBed
  alias Dynamo.Table
  alias ObjectStoreX.Stream, as: OStream

  @mib 1_048_576
  @items 10_000
  @listed 5_000

  defmodule Item do
    use Dynamo.Schema

    # The benchmark's item shape (bench/dynamo_bench.exs): ~200 bytes in 7 attributes.
    item do
      table_name("cloud_streams_long_schedule_items")
      field(:id, :string, partition_key: true)
      field(:email, :string)
      field(:name, :string)
      field(:age, :integer)
      field(:active, :boolean)
      field(:tenant_id, :string)
      field(:created_at, :string)
    end
  end

  @moduletag timeout: 300_000

  setup_all do
    root = Path.join(System.tmp_dir!(), "cloud_streams_long_schedule_#{System.unique_integer()}")
    File.mkdir_p!(Path.join(root, "listed"))
    File.write!(Path.join(root, "big.bin"), :binary.copy(<<7>>, 128 * @mib))

    for i <- 1..@listed,
        do:
          File.write!(Path.join(root, "listed/object-#{String.pad_leading("#{i}", 5, "0")}"), "x")

    {:ok, local} = ObjectStoreX.new(:local, root: root)
    {:ok, s3} = TestBed.s3_store("long_schedule")
    :ok = ObjectStoreX.put(s3, "big.bin", :binary.copy(<<7>>, 64 * @mib))

    _ = Table.delete_table(Item)
    :ok = Table.create_table(Item)

    1..@items
    |> Stream.map(fn i ->
      %Item{
        id: "user-#{i}",
        email: "user#{i}@example.com",
        name: String.pad_trailing("User Number #{i}", 70, "."),
        age: rem(i, 90),
        active: rem(i, 3) == 0,
        tenant_id: "tenant-#{rem(i, 50)}",
        created_at: "2026-11-22T10:00:#{String.pad_leading("#{rem(i, 60)}", 2, "0")}Z"
      }
    end)
    |> Stream.chunk_every(1_000)
    |> Task.async_stream(&Table.batch_write_item(Item, &1), timeout: 60_000)
    |> Stream.run()

    on_exit(fn ->
      File.rm_rf!(root)
      Table.delete_table(Item)
      ObjectStoreX.delete(s3, "big.bin")
    end)

    %{local: local, s3: s3}
  end

  test "no NIF call runs 1 ms or more on a normal scheduler while streams run at full speed",
       %{local: local, s3: s3} do
    workloads = [
      {"local download", fn -> OStream.download(local, "big.bin") |> count_bytes() end},
      {"S3 download", fn -> OStream.download(s3, "big.bin") |> count_bytes() end},
      {"local listing",
       fn -> OStream.list_stream(local, prefix: "listed", prefetch: 4) |> Enum.count() end},
      {"scan, 1 segment",
       fn -> Table.Stream.scan(Item, page_size: 500, prefetch_pages: 4) |> Enum.count() end},
      {"parallel_scan, 8 segments",
       fn ->
         Table.Stream.parallel_scan(Item, segments: 8, page_size: 500, prefetch_pages: 4)
         |> Enum.count()
       end},
      # Stopped while the buffer is full: closing frees every buffered page.
      {"parallel_scan stopped early",
       fn ->
         Table.Stream.parallel_scan(Item, segments: 8, page_size: 500, prefetch_pages: 8)
         |> Stream.each(fn _ -> Process.sleep(300) end)
         |> Enum.take(2)
       end}
    ]

    native_functions = CloudStreams.Native.module_info(:exports) |> MapSet.new()
    tracer = spawn_link(fn -> trace_loop(%{}, %{}) end)
    previous = :erlang.system_monitor(self(), long_schedule: 1)
    # Every NIF call of this process and of those it spawns is timed from its call to its
    # return in CPU time of the scheduler thread that ran it (`cpu_timestamp`: a process never
    # leaves its scheduler during a NIF call). Wall time would count the time the OS gives
    # other programs on a loaded machine; and long_schedule events name the Elixir function
    # around a NIF, never the NIF (seen with a NIF made to spin for 3 ms), so they alone cannot
    # say which call was long.
    :erlang.trace(:all, true, [:cpu_timestamp])
    :erlang.trace(self(), true, [:call, :timestamp, :set_on_spawn, {:tracer, tracer}])
    :erlang.trace_pattern({CloudStreams.Native, :_, :_}, [{:_, [], [{:return_trace}]}], [:local])

    try do
      # Each workload runs on its own a few times, then all at once.
      for {name, work} <- workloads, _ <- 1..3, do: {name, work.()}

      workloads
      |> Enum.map(fn {_name, work} -> Task.async(fn -> for _ <- 1..3, do: work.() end) end)
      |> Task.await_many(240_000)
    after
      restore(previous)
      :erlang.trace(self(), false, [:all])
      :erlang.trace(:all, false, [:cpu_timestamp])
      :erlang.trace_pattern({CloudStreams.Native, :_, :_}, false, [:local])
    end

    events = collect_events([])
    send(tracer, {:report, self()})

    calls =
      receive do
        {:calls, calls} -> calls
      after
        10_000 -> flunk("the tracer did not report")
      end

    native =
      for {pid, info} <- events,
          {:ok, {CloudStreams.Native, f, a}} <- [location(info)],
          MapSet.member?(native_functions, {f, a}),
          do: {Keyword.fetch!(info, :timeout), {f, a}, pid}

    longest_other =
      events |> Enum.map(fn {_, info} -> info[:timeout] end) |> Enum.max(fn -> 0 end)

    IO.puts(
      "\n  long_schedule (>= 1 ms) events: #{length(events)} in all (longest #{longest_other} ms, " <>
        "none of them in a NIF: #{native == []})"
    )

    for {{f, a, kind}, %{count: count, max: max}} <- Enum.sort(calls) do
      IO.puts(
        "  #{f}/#{a} returning #{kind}: #{count} calls, longest #{Float.round(max / 1000, 3)} ms"
      )
    end

    assert native == []
    assert Enum.any?(calls, &match?({{:stream_pull, 2, _}, _}, &1))

    long =
      for {{f, _, _} = fa, %{max: max}} <- calls, max >= 1000, f not in @dirty_nifs, do: {fa, max}

    assert long == []
  end

  # What a pull returned, so the report says which stream a long call served.
  defp kind({:item, chunk}) when is_binary(chunk), do: "a chunk"
  defp kind({:item, {_segment, items, _key}}) when is_list(items), do: "a scan page"
  defp kind({:item, metas}) when is_list(metas), do: "a listing page"
  defp kind(:pending), do: ":pending"
  defp kind(other) when is_atom(other), do: inspect(other)
  defp kind(_), do: "other"

  defp micros({mega, sec, micro}), do: (mega * 1_000_000 + sec) * 1_000_000 + micro

  # Per NIF: the number of calls and the longest one, in microseconds.
  defp trace_loop(open, calls) do
    receive do
      {:trace_ts, pid, :call, {CloudStreams.Native, f, args}, ts} ->
        trace_loop(Map.put(open, pid, {{f, length(args)}, ts}), calls)

      {:trace_ts, pid, :return_from, {CloudStreams.Native, f, a}, result, ts} ->
        case Map.pop(open, pid) do
          {{{^f, ^a}, started}, open} ->
            us = micros(ts) - micros(started)

            calls =
              Map.update(calls, {f, a, kind(result)}, %{count: 1, max: us}, fn c ->
                %{count: c.count + 1, max: max(c.max, us)}
              end)

            trace_loop(open, calls)

          _ ->
            trace_loop(open, calls)
        end

      {:report, to} ->
        send(to, {:calls, calls})

      _other ->
        trace_loop(open, calls)
    end
  end

  defp count_bytes(chunks), do: Enum.reduce(chunks, 0, &(byte_size(&1) + &2))

  # The function the process was in when it was scheduled out (or, failing that, in).
  defp location(info) do
    case {info[:out], info[:in]} do
      {{_, _, _} = mfa, _} -> {:ok, mfa}
      {_, {_, _, _} = mfa} -> {:ok, mfa}
      _ -> :error
    end
  end

  defp collect_events(acc) do
    receive do
      {:monitor, pid, :long_schedule, info} when is_pid(pid) ->
        collect_events([{pid, info} | acc])

      {:monitor, _port, :long_schedule, _info} ->
        collect_events(acc)
    after
      0 -> Enum.reverse(acc)
    end
  end

  defp restore(:undefined), do: :erlang.system_monitor(:undefined)
  defp restore({pid, options}), do: :erlang.system_monitor(pid, options)
end
