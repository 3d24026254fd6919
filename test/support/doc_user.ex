defmodule DocUser do
  @moduledoc false
  # The schema the doctests of Dynamo.Table.Stream read: three users in their own table.
  use Dynamo.Schema

  item do
    table_name("cloud_streams_doc_users")

    field(:id, :string, partition_key: true)
    field(:email, :string)
    field(:active, :boolean, default: true)
  end

  def seed! do
    _ = Dynamo.Table.delete_table(__MODULE__)
    :ok = Dynamo.Table.create_table(__MODULE__)

    users =
      for {id, email} <- [
            {"u1", "a@example.com"},
            {"u2", "b@example.com"},
            {"u3", "c@example.com"}
          ],
          do: struct(__MODULE__, id: id, email: email)

    {:ok, 3} = Dynamo.Table.batch_write_item(__MODULE__, users)
    :ok
  end
end
