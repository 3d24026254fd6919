defmodule CloudStreams.Error do
  @moduledoc """
  An error from a cloud_streams stream that belongs to no store or table (the synthetic
  source, a stream timeout). `ObjectStoreX.Error` and `Dynamo.Error` play this part for their
  libraries.

  Fields: `kind` (an atom such as `:timeout`, `:network`, `:internal`), `message`,
  `retryable` (true exactly for transient failures), `status` (HTTP status or `nil`) and
  `path` (or `nil`).

      iex> error = CloudStreams.Error.from_native(%{kind: :network, message: "reset", retryable: true})
      iex> {error.kind, CloudStreams.Error.retryable?(error)}
      {:network, true}
  """

  defexception kind: :internal,
               message: "internal error",
               retryable: false,
               status: nil,
               path: nil

  @type t :: %__MODULE__{
          kind: atom(),
          message: String.t(),
          retryable: boolean(),
          status: non_neg_integer() | nil,
          path: String.t() | nil
        }

  @doc "Builds the exception from the error map the NIF returns."
  @spec from_native(map()) :: t()
  def from_native(%{kind: kind, message: message} = native) do
    %__MODULE__{
      kind: kind,
      # Native messages may quote a URL with its credentials.
      message: CloudStreams.Redact.text(message),
      retryable: Map.get(native, :retryable, false),
      status: Map.get(native, :status),
      path: Map.get(native, :path)
    }
  end

  @doc "True when trying again as is may succeed (timeouts, network failures, throttling, 5xx)."
  @spec retryable?(t()) :: boolean()
  def retryable?(%__MODULE__{retryable: retryable}), do: retryable
  def retryable?(_other), do: false

  @impl true
  def message(%__MODULE__{kind: kind, message: message}), do: "(#{kind}) #{message}"
end
