defmodule Dynamo.Error do
  @moduledoc """
  Why a DynamoDB request failed.

    * `kind` - what a program branches on, with the vocabulary of `ObjectStoreX.Error`:
      `:not_found` (no such table), `:already_exists` (the table exists, an item a PartiQL
      `INSERT` would add exists), `:precondition_failed` (a condition expression failed),
      `:throttled` (throughput exceeded, a transaction conflict), `:invalid_argument`
      (DynamoDB refused the request as malformed), `:permission_denied`,
      `:unauthenticated`, `:timeout`, `:network`, `:server_error` or `:internal`
    * `code` - DynamoDB's error code (`"ConditionalCheckFailedException"`, ...) or `nil` when
      the request never got an answer
    * `message` - what DynamoDB (or the client) said
    * `retryable` - true exactly for transient failures (see `retryable?/1`)
    * `status` - the HTTP status of DynamoDB's answer, or `nil`
    * `cancellation_reasons` - for a cancelled transaction (`code:
      "TransactionCanceledException"`), one entry per action, in the order of the actions:
      `%{code: "ConditionalCheckFailed" | "TransactionConflict" | "None" | ..., kind: kind,
      message: text | nil}`; `nil` for other errors
    * `applied` - for `Dynamo.Table.batch_write_item/3`, how many requests were applied
      before it failed; `nil` for other errors
    * `type` - the name this field had before `kind`, kept as an alias:
      `:conditional_check_failed` for `:precondition_failed`, `:resource_not_found` for
      `:not_found`, `:resource_in_use` for `:already_exists`, `:access_denied` for
      `:permission_denied`, `:validation` for an `:invalid_argument` DynamoDB answered with,
      and the kind itself otherwise

  Every code-to-kind decision is made in one place, on the native side
  (`native/cloud_streams_core/src/dynamo/error.rs`). No credential ever appears in an error.

      iex> {:error, error} =
      ...>   Dynamo.Table.put_item(%DocAccount{id: "acc1"}, condition_expression: "attribute_not_exists(id)")
      iex> {error.kind, error.code, error.type, Dynamo.Error.retryable?(error)}
      {:precondition_failed, "ConditionalCheckFailedException", :conditional_check_failed, false}
      iex> Dynamo.Error.retryable?(%Dynamo.Error{kind: :throttled, retryable: true})
      true
      iex> Dynamo.Error.retryable?(:nope)
      false
  """

  use CloudStreams.Exception,
    message: "DynamoDB error",
    fields: [code: nil, status: nil, type: :internal, cancellation_reasons: nil, applied: nil]

  @type kind ::
          :not_found
          | :already_exists
          | :precondition_failed
          | :throttled
          | :invalid_argument
          | :permission_denied
          | :unauthenticated
          | :timeout
          | :network
          | :server_error
          | :cancelled
          | :internal

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
          | atom()

  @type cancellation_reason :: %{code: String.t(), kind: kind(), message: String.t() | nil}

  @type t :: %__MODULE__{
          kind: kind(),
          type: type(),
          message: String.t(),
          code: String.t() | nil,
          retryable: boolean(),
          status: non_neg_integer() | nil,
          cancellation_reasons: [cancellation_reason()] | nil,
          applied: non_neg_integer() | nil
        }

  @doc false
  @spec from_native(map()) :: t()
  def from_native(native) do
    error = CloudStreams.Exception.build(__MODULE__, native)
    %{error | type: type(error.kind, error.code)}
  end

  defp type(:precondition_failed, _code), do: :conditional_check_failed
  defp type(:not_found, _code), do: :resource_not_found
  defp type(:already_exists, _code), do: :resource_in_use
  defp type(:permission_denied, _code), do: :access_denied
  defp type(:invalid_argument, code) when is_binary(code), do: :validation
  defp type(kind, _code), do: kind
end
