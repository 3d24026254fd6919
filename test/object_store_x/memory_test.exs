defmodule ObjectStoreX.MemoryTest do
  use ObjectStoreX.Conformance,
    store: &ObjectStoreX.new(:memory, prefix: &1),
    conditional_update: true,
    attributes: true
end
