defmodule CloudStreams.ImportPeer do
  @moduledoc false
  # Starts an import on a peer node for Dynamo.ImportTest (in test/support, so peers load
  # it): the store is made there (a store's native resource cannot cross nodes), and `test`
  # hears of each progress report as `{:peer_progress, totals}`.

  def start(root, prefix, table, test) do
    spawn(fn ->
      store = ObjectStoreX.new!(:local, root: root)

      Dynamo.Table.Stream.import(store, prefix, table,
        max_concurrency: 1,
        on_progress: &send(test, {:peer_progress, &1})
      )
    end)
  end
end
