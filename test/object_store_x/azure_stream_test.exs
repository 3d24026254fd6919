defmodule ObjectStoreX.AzureStreamTest do
  use ObjectStoreX.StreamConformance,
    store: &CloudStreams.TestBed.azure_store/1
end
