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

  defexception kind: :internal,
               message: "object store error",
               path: nil,
               status: nil,
               retryable: false

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

  @doc """
  True when the same request may succeed if tried again: timeouts, connection failures,
  throttling and server errors (5xx). False for every other error and for any other term, so
  it can be called on whatever an `{:error, reason}` holds.

      iex> ObjectStoreX.Error.retryable?(%ObjectStoreX.Error{kind: :throttled, retryable: true})
      true
      iex> ObjectStoreX.Error.retryable?(:closed)
      false
  """
  @spec retryable?(term()) :: boolean()
  def retryable?(%__MODULE__{retryable: retryable}), do: retryable
  def retryable?(_other), do: false

  @doc false
  @spec from_native(map()) :: t()
  def from_native(%{kind: kind, message: message} = native) do
    %__MODULE__{
      kind: kind,
      # Native messages may quote a URL with its credentials.
      message: CloudStreams.Redact.text(message),
      path: Map.get(native, :path),
      status: Map.get(native, :status),
      retryable: Map.get(native, :retryable, false)
    }
  end

  @impl true
  def message(%__MODULE__{kind: kind, message: message}), do: "(#{kind}) #{message}"
end
