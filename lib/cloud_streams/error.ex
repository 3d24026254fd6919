defmodule CloudStreams.Error do
  @moduledoc """
  An error from a cloud_streams stream that belongs to no store or table (the synthetic
  source, a stream timeout). `ObjectStoreX.Error` and `Dynamo.Error` play this part for their
  libraries.

  Fields: `kind` (an atom such as `:timeout`, `:network`, `:internal`), `message`,
  `retryable` (true exactly for transient failures), `status` (HTTP status or `nil`) and
  `path` (or `nil`). `CloudStreams.Cluster.Dispatcher` reports `:worker_crashed` (a worker kept
  crashing on an item) and `:no_workers` (no listed node can run a worker).

      iex> error = CloudStreams.Error.from_native(%{kind: :network, message: "reset", retryable: true})
      iex> {error.kind, CloudStreams.Error.retryable?(error)}
      {:network, true}
  """

  use CloudStreams.Exception, message: "internal error", fields: [status: nil, path: nil]

  @type t :: %__MODULE__{
          kind: atom(),
          message: String.t(),
          retryable: boolean(),
          status: non_neg_integer() | nil,
          path: String.t() | nil
        }
end
