defmodule ObjectStoreX.LocalStreamTest do
  use ObjectStoreX.StreamConformance,
    store: fn prefix ->
      root = Path.join([System.tmp_dir!(), "cloud_streams_stream_test", prefix])
      ObjectStoreX.new(:local, root: root, create_root: true)
    end
end
