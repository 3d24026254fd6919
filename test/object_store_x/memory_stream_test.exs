defmodule ObjectStoreX.MemoryStreamTest do
  use ObjectStoreX.StreamConformance,
    store: &ObjectStoreX.new(:memory, prefix: &1)
end
