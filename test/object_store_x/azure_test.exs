defmodule ObjectStoreX.AzureTest do
  # Against Azurite started by scripts/with_servers.sh.
  use ObjectStoreX.Conformance,
    moduletag: :azure,
    store: &CloudStreams.TestBed.azure_store/1,
    signed_urls: true,
    conditional_update: true,
    attributes: true
end
