defmodule SampleUsers do
  @moduledoc false
  # The users the tour (demo/tour.exs) writes: a schema of eight typed fields, defined at run
  # time for a given table. (The benchmark has its own, the table shape of its issue.)

  def define(module, table) do
    Module.create(
      module,
      quote do
        use Dynamo.Schema

        item do
          table_name(unquote(table))

          field(:id, :string, partition_key: true)
          field(:email, :string)
          field(:name, :string)
          field(:age, :integer)
          field(:score, :float)
          field(:active, :boolean)
          field(:tenant_id, :string)
          field(:created_at, :datetime)
        end
      end,
      Macro.Env.location(__ENV__)
    )

    module
  end

  def user(module, i) do
    struct(module,
      id: "user-#{i}",
      email: "user#{i}@example.com",
      name: "User Number #{i}",
      age: rem(i, 90),
      score: i / 7,
      active: rem(i, 3) == 0,
      tenant_id: "tenant-#{rem(i, 50)}",
      created_at: DateTime.add(~U[2026-11-22 10:00:00Z], i, :second)
    )
  end

  @doc "(Re)creates the table and writes `count` users, 1,000 per task, 4 tasks at once."
  def seed(module, count, on_progress \\ fn _written -> :ok end) do
    _ = Dynamo.Table.delete_table(module)
    :ok = Dynamo.Table.create_table(module)

    1..count
    |> Stream.map(&user(module, &1))
    |> Stream.chunk_every(1_000)
    |> Task.async_stream(&Dynamo.Table.batch_write_item(module, &1), timeout: :infinity)
    |> Enum.reduce(0, fn {:ok, {:ok, written}}, total ->
      on_progress.(total + written)
      total + written
    end)
  end
end
