defmodule ObjectStoreX.LocalTest do
  # object_store's local store has no conditional update and stores no content attributes;
  # the suite checks that both are refused with :not_supported.
  use ObjectStoreX.Conformance,
    store: fn prefix ->
      root = Path.join([System.tmp_dir!(), "cloud_streams_local_test", prefix])
      ObjectStoreX.new(:local, root: root, create_root: true)
    end
end
