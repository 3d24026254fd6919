defmodule ObjectStoreX.S3Test do
  # Against the S3 emulator (moto) started by scripts/with_servers.sh.
  use ObjectStoreX.Conformance,
    moduletag: :s3,
    store: &CloudStreams.TestBed.s3_store/1,
    signed_urls: true,
    conditional_update: true,
    attributes: true
end
