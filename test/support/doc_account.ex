defmodule DocAccount do
  @moduledoc false
  # The schema the doctests of Dynamo.Table use: two accounts in their own table. Each
  # doctest leaves the table as it found it, so they run in any order.
  use Dynamo.Schema

  item do
    table_name("cloud_streams_doc_accounts")

    field(:id, :string, partition_key: true)
    field(:owner, :string)
    field(:balance, :integer, default: 0)
  end

  def seed! do
    _ = Dynamo.Table.delete_table(__MODULE__)
    :ok = Dynamo.Table.create_table(__MODULE__)

    accounts = [
      struct(__MODULE__, id: "acc1", owner: "ann", balance: 100),
      struct(__MODULE__, id: "acc2", owner: "bob", balance: 50)
    ]

    {:ok, 2} = Dynamo.Table.batch_write_item(__MODULE__, accounts)
    :ok
  end
end

defmodule DocScratch do
  @moduledoc false
  # A table the doctests of Dynamo.Table.create_table/2 and delete_table/2 create and delete.
  use Dynamo.Schema

  item do
    table_name("cloud_streams_doc_scratch")

    field(:id, :string, partition_key: true)
  end
end
