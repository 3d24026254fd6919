defmodule CloudStreams.ExceptionTest do
  # CloudStreams.Error, ObjectStoreX.Error and Dynamo.Error share one implementation
  # (CloudStreams.Exception): the same fields from the NIF's error map
  # (native/cloud_streams_nif/src/errors.rs), the same retryable?/1 and message/1.
  use ExUnit.Case, async: true

  @modules [CloudStreams.Error, ObjectStoreX.Error, Dynamo.Error]

  # The map every native error becomes.
  defp native(kind, extra \\ %{}) do
    Map.merge(
      %{
        kind: kind,
        message: "what happened",
        retryable: kind in [:timeout, :network, :throttled, :server_error],
        status: 503,
        path: "a/b",
        code: "SomeCode",
        cancellation_reasons: nil,
        applied: nil
      },
      extra
    )
  end

  test "every module builds the same kind, message and retryable from a native error" do
    for module <- @modules, kind <- CloudStreams.Exception.kinds() do
      error = module.from_native(native(kind))
      assert %{__struct__: ^module, kind: ^kind, message: "what happened"} = error
      assert module.retryable?(error) == kind in [:timeout, :network, :throttled, :server_error]
      assert Exception.message(error) == "(#{kind}) what happened"
      refute module.retryable?({:error, error})
    end
  end

  test "each keeps its own fields, and only those" do
    assert %CloudStreams.Error{status: 503, path: "a/b"} =
             error = CloudStreams.Error.from_native(native(:network))

    refute Map.has_key?(error, :code)

    assert %ObjectStoreX.Error{status: 503, path: "a/b"} =
             error = ObjectStoreX.Error.from_native(native(:not_found))

    refute Map.has_key?(error, :code)

    reasons = [%{code: "ConditionalCheckFailed", kind: :precondition_failed, message: nil}]

    assert %Dynamo.Error{
             code: "SomeCode",
             status: 503,
             cancellation_reasons: ^reasons,
             applied: 3
           } =
             error =
             Dynamo.Error.from_native(
               native(:precondition_failed, %{cancellation_reasons: reasons, applied: 3})
             )

    refute Map.has_key?(error, :path)
  end

  test "a map without optional keys still builds; retryable defaults to false" do
    for module <- @modules do
      error = module.from_native(%{kind: :throttled, message: "slow down"})
      assert %{kind: :throttled, retryable: false} = error
    end
  end

  test "Dynamo.Error keeps type as an alias of kind" do
    alias_of = fn kind, code -> Dynamo.Error.from_native(native(kind, %{code: code})).type end

    assert alias_of.(:precondition_failed, "ConditionalCheckFailedException") ==
             :conditional_check_failed

    assert alias_of.(:not_found, "ResourceNotFoundException") == :resource_not_found
    assert alias_of.(:already_exists, "ResourceInUseException") == :resource_in_use
    assert alias_of.(:permission_denied, "AccessDeniedException") == :access_denied
    assert alias_of.(:invalid_argument, "ValidationException") == :validation
    # Refused before DynamoDB answered: no code, the kind itself.
    assert alias_of.(:invalid_argument, nil) == :invalid_argument
    assert alias_of.(:throttled, "ThrottlingException") == :throttled
    assert alias_of.(:timeout, nil) == :timeout
  end
end
