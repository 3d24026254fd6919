defmodule ObjectStoreX.Error do
  @moduledoc """
  Why an object-store operation failed.

    * `kind` - `:not_found`, `:already_exists`, `:precondition_failed`, `:not_modified`,
      `:permission_denied`, `:unauthenticated`, `:timeout`, `:network`, `:throttled`,
      `:server_error`, `:invalid_argument`, `:not_supported`, `:cancelled` or `:internal`
    * `message` - what happened, as the store or the client said it (never a secret)
    * `path` - the object concerned, when there is one
    * `status` - the HTTP status, when the store answered with one
    * `retryable` - true exactly for transient failures (see `retryable?/1`)

      iex> {:ok, store} = ObjectStoreX.new(:memory)
      iex> {:error, error} = ObjectStoreX.get(store, "missing.bin")
      iex> {error.kind, error.path, ObjectStoreX.Error.retryable?(error)}
      {:not_found, "missing.bin", false}
  """

  use CloudStreams.Exception, message: "object store error", fields: [path: nil, status: nil]

  @type kind ::
          :not_found
          | :already_exists
          | :precondition_failed
          | :not_modified
          | :permission_denied
          | :unauthenticated
          | :timeout
          | :network
          | :throttled
          | :server_error
          | :invalid_argument
          | :not_supported
          | :cancelled
          | :internal

  @type t :: %__MODULE__{
          kind: kind(),
          message: String.t(),
          path: String.t() | nil,
          status: non_neg_integer() | nil,
          retryable: boolean()
        }
end
