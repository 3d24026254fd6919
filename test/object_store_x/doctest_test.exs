defmodule ObjectStoreX.DoctestTest do
  use ExUnit.Case, async: true

  doctest ObjectStoreX
  doctest ObjectStoreX.Error
  doctest ObjectStoreX.Meta
  doctest ObjectStoreX.Store
  doctest ObjectStoreX.Stream
  doctest ObjectStoreX.Transfer
end
