defmodule ObjectStoreX.Store do
  @moduledoc """
  An opaque handle on a configured store, made by `ObjectStoreX.new/2`. Share it freely
  between processes: every operation on it runs on the native runtime.

  `inspect/1` shows the backend, the bucket or root and the prefix, never a credential:

      iex> {:ok, store} = ObjectStoreX.new(:memory, prefix: "tmp")
      iex> inspect(store)
      "#ObjectStoreX.Store<memory://tmp>"
  """

  @enforce_keys [:backend, :resource]
  defstruct [:backend, :name, :prefix, :resource]

  @type backend :: :memory | :local | :s3 | :gcs | :azure | :http
  @type t :: %__MODULE__{
          backend: backend(),
          name: String.t() | nil,
          prefix: String.t() | nil,
          resource: reference()
        }

  @doc false
  # Every function taking a store checks it here, so another value is an ArgumentError
  # naming the function rather than a FunctionClauseError.
  @spec check!(term(), String.t()) :: :ok
  def check!(%__MODULE__{}, _function), do: :ok

  def check!(other, function) do
    raise ArgumentError,
          "#{function} expects a store made by ObjectStoreX.new/2, got: #{CloudStreams.Redact.inspect(other)}"
  end

  defimpl Inspect do
    def inspect(%{backend: backend, name: name, prefix: prefix}, _opts) do
      scheme = Atom.to_string(backend)
      location = [name, prefix] |> Enum.reject(&(&1 in [nil, ""])) |> Enum.join("/")
      "#ObjectStoreX.Store<#{scheme}://#{location}>"
    end
  end
end
