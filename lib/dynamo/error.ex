defmodule Dynamo.Error do
  @moduledoc """
  Why a DynamoDB request failed.

    * `type` - `:conditional_check_failed`, `:resource_not_found`, `:resource_in_use`,
      `:throttled`, `:validation`, `:access_denied`, `:unauthenticated`, `:timeout`,
      `:network`, `:server_error`, `:invalid_argument`, `:internal`
    * `message` - what DynamoDB (or the client) said
    * `code` - DynamoDB's error code (`"ConditionalCheckFailedException"`, ...) or `nil`
    * `retryable` - true exactly for transient failures (see `retryable?/1`)

  No credential ever appears in an error.
  """

  defexception type: :internal, message: "DynamoDB error", code: nil, retryable: false

  @type type ::
          :conditional_check_failed
          | :resource_not_found
          | :resource_in_use
          | :throttled
          | :validation
          | :access_denied
          | :unauthenticated
          | :timeout
          | :network
          | :server_error
          | :invalid_argument
          | :internal

  @type t :: %__MODULE__{
          type: type(),
          message: String.t(),
          code: String.t() | nil,
          retryable: boolean()
        }

  @doc """
  True when the same request may succeed if tried again (throttling, timeouts, network
  failures, server errors); false otherwise, and for any term that is not a `Dynamo.Error`.

      iex> Dynamo.Error.retryable?(%Dynamo.Error{type: :throttled, retryable: true})
      true
      iex> Dynamo.Error.retryable?(:nope)
      false
  """
  @spec retryable?(term()) :: boolean()
  def retryable?(%__MODULE__{retryable: retryable}), do: retryable
  def retryable?(_), do: false

  @types %{
    "ConditionalCheckFailedException" => :conditional_check_failed,
    "ResourceNotFoundException" => :resource_not_found,
    "ResourceInUseException" => :resource_in_use,
    "ProvisionedThroughputExceededException" => :throttled,
    "ThrottlingException" => :throttled,
    "RequestLimitExceeded" => :throttled,
    "ValidationException" => :validation,
    "SerializationException" => :validation,
    "AccessDeniedException" => :access_denied
  }

  @doc false
  @spec from_native(map()) :: t()
  def from_native(%{kind: kind, message: message} = native) do
    code = Map.get(native, :code)
    type = Map.get(@types, code) || kind_type(kind)

    %__MODULE__{
      type: type,
      # Native messages may quote a URL with its credentials.
      message: CloudStreams.Redact.text(message),
      code: code,
      retryable: Map.get(native, :retryable, false)
    }
  end

  defp kind_type(:permission_denied), do: :access_denied
  defp kind_type(:not_found), do: :resource_not_found
  defp kind_type(:precondition_failed), do: :conditional_check_failed
  defp kind_type(kind), do: kind

  @impl true
  def message(%__MODULE__{type: type, message: message}), do: "(#{type}) #{message}"
end
