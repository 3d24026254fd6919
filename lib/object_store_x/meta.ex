defmodule ObjectStoreX.Meta do
  @moduledoc """
  What a store knows about an object: `location` (its path), `size` in bytes,
  `last_modified` (a UTC `DateTime`), `etag` and `version` (`nil` where the store does not
  know them).

      iex> {:ok, store} = ObjectStoreX.new(:memory)
      iex> :ok = ObjectStoreX.put(store, "a.txt", "hello")
      iex> {:ok, %ObjectStoreX.Meta{location: "a.txt", size: 5}} = ObjectStoreX.head(store, "a.txt")
  """

  defstruct [:location, :size, :last_modified, :etag, :version]

  @type t :: %__MODULE__{
          location: String.t(),
          size: non_neg_integer(),
          last_modified: DateTime.t(),
          etag: String.t() | nil,
          version: String.t() | nil
        }
end
