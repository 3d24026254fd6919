defmodule CloudStreams do
  @moduledoc """
  Memory-bounded, fast, cancellable streaming between the BEAM and object stores or DynamoDB,
  on a Rust core.

  The libraries are `ObjectStoreX` and `Dynamo`; this module holds what they share.
  """

  @typedoc "Live counters of the native core."
  @type stats :: %{
          live_tasks: non_neg_integer(),
          open_streams: non_neg_integer(),
          buffered_bytes: non_neg_integer(),
          buffered_items: non_neg_integer()
        }

  @doc """
  Live counters of the native core: native tasks running (streams, their segment readers and
  hand-offs, upload actors, downloads to files, requests in flight), stream handles open, and
  bytes and items buffered ahead of consumers. Useful in tests and dashboards to prove
  nothing leaks.

      iex> %{live_tasks: tasks} = CloudStreams.stats()
      iex> is_integer(tasks)
      true
  """
  @spec stats() :: stats()
  def stats, do: CloudStreams.Native.stats()
end
