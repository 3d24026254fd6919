defmodule ObjectStoreX.S3StreamTest do
  use ObjectStoreX.StreamConformance,
    store: &CloudStreams.TestBed.s3_store/1
end
