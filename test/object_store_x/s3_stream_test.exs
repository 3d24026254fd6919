defmodule ObjectStoreX.S3StreamTest do
  use ObjectStoreX.StreamConformance,
    moduletag: :s3,
    store: &CloudStreams.TestBed.s3_store/1
end
