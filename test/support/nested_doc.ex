defmodule NestedDoc do
  @moduledoc false
  # A schema with an untyped field, compiled with the test support so peer VMs know it too
  # (test/dynamo/nesting_test.exs).
  use Dynamo.Schema

  item do
    table_name("cloud_streams_nesting_test")

    field(:id, :string, partition_key: true)
    field(:value)
  end
end
