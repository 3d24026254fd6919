defmodule Dynamo.ResumableScanTest do
  # The guide's "Need to resume after failure" example (ResumableScan), run against DynamoDB
  # Local. Jason is a hex package and unreachable here, so the checkpoint is stored with
  # :erlang.term_to_binary/1; the guide keeps Jason for users. last_evaluated_key is a
  # string-keyed DynamoDB JSON map either way.
  use ExUnit.Case, async: false
  @moduletag :dynamodb

  alias Dynamo.Table

  defmodule User do
    use Dynamo.Schema

    item do
      table_name("cloud_streams_resumable_scan_test")
      field(:id, :string, partition_key: true)
      field(:email, :string)
      field(:active, :boolean, default: true)
    end
  end

  defmodule ResumableScan do
    def scan_with_checkpoint(checkpoint_file) do
      last_key = load_checkpoint(checkpoint_file)

      scan_page(last_key, checkpoint_file)
    end

    defp scan_page(last_key, checkpoint_file) do
      opts = if last_key, do: [exclusive_start_key: last_key], else: []

      case Dynamo.Table.scan(User, opts ++ [limit: 1000]) do
        {:ok, %{items: items, last_evaluated_key: next_key}} ->
          # Process items
          Enum.each(items, &process_user/1)

          # Save checkpoint
          if next_key do
            save_checkpoint(checkpoint_file, next_key)
            scan_page(next_key, checkpoint_file)
          end

        {:error, error} ->
          IO.puts("Error: #{inspect(error)}")
      end
    end

    # The test's stand-in for the guide's process_user/1: it records each user, and stops the
    # scan (as a crash would) when told to.
    defp process_user(user) do
      send(self(), {:processed, user.id})
      if Process.get(:crash_at) == user.id, do: raise("crashed at #{user.id}")
    end

    defp load_checkpoint(file) do
      case File.read(file) do
        {:ok, content} -> :erlang.binary_to_term(content)
        _ -> nil
      end
    end

    defp save_checkpoint(file, key) do
      File.write!(file, :erlang.term_to_binary(key))
    end
  end

  setup_all do
    _ = Table.delete_table(User)
    :ok = Table.create_table(User)

    {:ok, 2500} =
      Table.batch_write_item(User, for(i <- 1..2500, do: %User{id: "u#{i}", email: "u#{i}@x"}))

    on_exit(fn -> Table.delete_table(User) end)
    :ok
  end

  defp processed(acc \\ []) do
    receive do
      {:processed, id} -> processed([id | acc])
    after
      0 -> acc
    end
  end

  @tag :tmp_dir
  test "a scan stopped by a crash resumes from its checkpoint", %{tmp_dir: dir} do
    checkpoint = Path.join(dir, "checkpoint")

    # The first run crashes on the 1,500th user, in the second page.
    {:ok, %{items: first_page, last_evaluated_key: after_first}} = Table.scan(User, limit: 1000)
    {:ok, %{items: second_page}} = Table.scan(User, limit: 1000, exclusive_start_key: after_first)
    Process.put(:crash_at, Enum.at(second_page, 499).id)

    assert_raise RuntimeError, ~r/crashed at/, fn ->
      ResumableScan.scan_with_checkpoint(checkpoint)
    end

    before_crash = processed()
    assert length(before_crash) == 1500

    # The checkpoint is the key after the first page: a string-keyed DynamoDB JSON map.
    assert %{"id" => %{"S" => _}} = :erlang.binary_to_term(File.read!(checkpoint))

    # The second run starts from the checkpoint: the second page again, then the rest.
    Process.delete(:crash_at)
    ResumableScan.scan_with_checkpoint(checkpoint)
    after_resume = processed()

    assert length(after_resume) == 1500
    first_ids = MapSet.new(first_page, & &1.id)
    assert MapSet.disjoint?(first_ids, MapSet.new(after_resume))
    assert MapSet.new(before_crash ++ after_resume) == MapSet.new(for i <- 1..2500, do: "u#{i}")
  end
end
