defmodule CloudStreams.Exception do
  @moduledoc false
  # The one implementation behind CloudStreams.Error, ObjectStoreX.Error and Dynamo.Error:
  # the fields every error has (`kind`, `message`, `retryable`), `retryable?/1`, `message/1`
  # and `from_native/1`, which builds the struct from the error map the NIF returns
  # (native/cloud_streams_nif/src/errors.rs). `fields:` adds a library's own fields, each
  # filled from the map key of the same name when the map has it.
  #
  #     use CloudStreams.Exception, message: "object store error", fields: [path: nil, status: nil]
  #
  # A module may define `from_native/1` itself (it is overridable) and call `build/2`.

  # The kinds the core produces (cloud_streams_core::ErrorKind).
  @kinds [
    :not_found,
    :already_exists,
    :precondition_failed,
    :not_modified,
    :permission_denied,
    :unauthenticated,
    :timeout,
    :network,
    :throttled,
    :server_error,
    :invalid_argument,
    :not_supported,
    :cancelled,
    :internal
  ]

  @doc false
  def kinds, do: @kinds

  defmacro __using__(opts) do
    message = Keyword.fetch!(opts, :message)
    fields = Keyword.get(opts, :fields, [])

    quote do
      defexception [kind: :internal, message: unquote(message), retryable: false] ++
                     unquote(fields)

      @doc """
      True when the same request may succeed if tried again: timeouts, connection failures,
      throttling and server errors (5xx). False for every other error and for any other term,
      so it can be called on whatever an `{:error, reason}` holds.
      """
      @spec retryable?(term()) :: boolean()
      def retryable?(%__MODULE__{retryable: retryable}), do: retryable
      def retryable?(_other), do: false

      @doc false
      @spec from_native(map()) :: t()
      def from_native(native), do: CloudStreams.Exception.build(__MODULE__, native)

      @impl true
      def message(%__MODULE__{kind: kind, message: message}), do: "(#{kind}) #{message}"

      defoverridable from_native: 1
    end
  end

  @doc false
  # The struct of `module` from a native error map: every field the map has, retryable
  # false when it does not say.
  @spec build(module(), map()) :: Exception.t()
  def build(module, %{kind: kind, message: message} = native)
      when is_atom(kind) and is_binary(message) do
    fields = module.__struct__() |> Map.keys() |> List.delete(:__struct__)
    # Native messages may quote a URL with its credentials.
    struct(
      module,
      Map.take(native, fields) |> Map.put(:message, CloudStreams.Redact.text(message))
    )
  end
end
