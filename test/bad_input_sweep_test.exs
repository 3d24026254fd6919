defmodule CloudStreams.BadInputSweepTest do
  # The generated bad-input sweep (CloudStreams.BadInputSweep) over every public function, in
  # a child VM: a VM crash, a hang, or an exception other than ArgumentError and our error
  # structs fails the test, naming the call. Needs no emulator.
  use ExUnit.Case, async: false

  @moduletag timeout: 300_000

  test "no bad input crashes the VM, hangs, or raises anything but ArgumentError and our errors" do
    dir =
      Path.join(
        System.tmp_dir!(),
        "cs_sweep_#{System.pid()}_#{System.unique_integer([:positive])}"
      )

    File.mkdir_p!(dir)
    on_exit(fn -> File.rm_rf!(dir) end)
    progress = Path.join(dir, "progress.log")

    paths = Enum.flat_map(:code.get_path(), &[~c"-pa", &1])
    # Standard I/O carries the control connection: the child needs no distribution.
    {:ok, peer, _node} = :peer.start_link(%{connection: :standard_io, args: paths})

    result =
      try do
        :peer.call(peer, CloudStreams.BadInputSweep, :run, [progress, dir], 240_000)
      catch
        kind, reason ->
          last = progress |> File.read!() |> String.split("\n", trim: true) |> List.last()
          flunk("the child VM was lost (#{inspect(kind)}, #{inspect(reason)}) during: #{last}")
      end

    :peer.stop(peer)

    IO.puts(
      "\nbad-input sweep: #{result.tried} tried, #{result.passed} passed, " <>
        "#{length(result.failures)} failed"
    )

    # One example per kind of failure: the same reason in the same function and option.
    report =
      result.failures
      |> Enum.group_by(fn {label, reason} ->
        {label |> String.split(" = ") |> hd() |> String.split(": ") |> hd(), kind(reason)}
      end)
      |> Enum.map_join("\n\n", fn {_, [{label, reason} | _] = all} ->
        "#{length(all)}x like #{label}\n  #{inspect(reason, printable_limit: 1500)}"
      end)

    assert result.failures == [], "#{length(result.failures)} calls failed:\n\n" <> report
  end

  defp kind({tag, text}) when is_binary(text), do: {tag, text |> String.split("\n") |> hd()}
  defp kind(other), do: other |> inspect() |> String.slice(0, 80)
end
