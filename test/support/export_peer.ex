defmodule CloudStreams.ExportPeer do
  @moduledoc false
  # Runs a table export on a `:peer` node (test/dynamo/export_test.exs), so that a test can
  # kill the whole VM in the middle of it. In test/support so that peers load it.

  @doc """
  Starts `run/5` in a process of its own on this node and returns `:ok`.
  """
  def start(store, table, prefix, opts, reply_to) do
    spawn(__MODULE__, :run, [store, table, prefix, opts, reply_to])
    :ok
  end

  @doc """
  Runs `Dynamo.Table.Stream.export/4` of `table` to the store `ObjectStoreX.new/2` builds
  from `{backend, store_opts}`.
  Progress reports go to `reply_to` as `{:export_progress, node(), progress}`, the result
  (or what was raised) as `{:export_result, node(), result}`.
  """
  def run({backend, store_opts}, table, prefix, opts, reply_to) do
    result =
      try do
        {:ok, store} = ObjectStoreX.new(backend, store_opts)
        report = &send(reply_to, {:export_progress, node(), &1})
        Dynamo.Table.Stream.export(table, store, prefix, [on_progress: report] ++ opts)
      catch
        kind, reason -> {kind, reason}
      end

    send(reply_to, {:export_result, node(), result})
    result
  end
end
