defmodule ClusterUser do
  @moduledoc false
  # The schema of test/distributed_test.exs: in test/support so peer nodes can load it.
  use Dynamo.Schema

  item do
    table_name("cloud_streams_cluster_users")

    field(:id, :string, partition_key: true)
    field(:n, :integer)
  end
end
