defmodule ObjectStoreX.AzureStreamTest do
  use ObjectStoreX.StreamConformance,
    moduletag: :azure,
    store: &CloudStreams.TestBed.azure_store/1
end
