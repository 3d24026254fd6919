defmodule Dynamo.StreamingGuideTest.Helpers do
  @moduledoc false
  # The placeholders the guide's examples call, defined as a reader would.
  def transform_user(user), do: %{user | email: String.downcase(user.email)}
  def batch_process(users), do: length(users)
  def process_user(user), do: user.id
  def slow_process(user), do: user.id
  def send_premium_email(user), do: {:premium, user.id}
  def send_regular_email(user), do: {:regular, user.id}
end

defmodule Dynamo.StreamingGuideTest do
  # Every Elixir block of guides/dynamo_streaming_guide.md, run as written against DynamoDB
  # Local in a scratch working directory, except those that need a hex package. The first
  # block defines the `User` schema every other block reads; blocks that define a module are
  # followed by a call of that module (see `drive/2`).
  use ExUnit.Case, async: false
  @moduletag :dynamodb

  import CloudStreams.NativeHelpers, only: [wait_until: 1]

  import ExUnit.CaptureIO

  @compile {:no_warn_undefined,
            [User, UserConsumer, UserExporter, AnalyticsProcessor, ConditionalProcessor]}
  alias CloudStreams.Guide

  @guide Path.expand("../../guides/dynamo_streaming_guide.md", __DIR__)
  @external_resource @guide
  @users 150

  setup_all do
    [schema | _] = Guide.blocks(@guide)
    capture_io(fn -> Guide.run!(schema, [], __MODULE__.Helpers, @guide) end)
    _ = Dynamo.Table.delete_table(User)
    :ok = Dynamo.Table.create_table(User)

    users =
      for i <- 1..@users do
        struct(User,
          id: "user-#{i}",
          email: "User#{i}@Example.com",
          name: "User #{i}",
          age: rem(i, 60),
          active: rem(i, 2) == 0,
          premium: rem(i, 5) == 0,
          tenant_id: "t#{rem(i, 3)}",
          status: Enum.at(["new", "active", "gone"], rem(i, 3)),
          created_at: DateTime.add(~U[2026-01-01 00:00:00Z], i, :second)
        )
      end

    {:ok, @users} = Dynamo.Table.batch_write_item(User, users)
    on_exit(fn -> Dynamo.Table.delete_table(User) end)
    :ok
  end

  setup do
    work = Path.join(System.tmp_dir!(), "dynamo-guide-#{System.unique_integer([:positive])}")
    File.mkdir_p!(work)
    previous = File.cwd!()
    File.cd!(work)
    consumer = spawn(fn -> Process.sleep(:infinity) end)

    on_exit(fn ->
      File.cd!(previous)
      File.rm_rf!(work)
      Process.exit(consumer, :kill)
    end)

    {:ok, binding: [consumer_pid: consumer]}
  end

  test "the guide's schema block defines User, keyed by id, in the table users" do
    assert User.__dynamo__(:table) == "users"
    assert User.__dynamo__(:partition_key) == :id
  end

  # What to call after a block that defines a module, and what must then hold.
  defp drive(UserConsumer, _context) do
    {:ok, pid} = UserConsumer.start_link([])
    {:ok, _} = Dynamo.Table.Stream.scan_to_process(User, pid)
    wait_until(fn -> :sys.get_state(pid).count == @users end)
  end

  defp drive(UserExporter, _context) do
    UserExporter.export_to_csv("users.csv")
    [header | lines] = "users.csv" |> File.read!() |> String.split("\n", trim: true)
    assert header == "id,email,name,created_at"
    assert length(lines) == @users
    assert Enum.any?(lines, &String.starts_with?(&1, "user-7,User7@Example.com,User 7,2026-"))
  end

  defp drive(AnalyticsProcessor, _context) do
    {:ok, pid} = AnalyticsProcessor.start_link([])
    {:ok, _} = AnalyticsProcessor.start_scan()
    wait_until(fn -> :sys.get_state(pid).total == @users end)
    state = :sys.get_state(pid)
    assert state.by_tenant |> Map.values() |> Enum.sum() == @users
    assert Map.keys(state.by_status) |> Enum.sort() == ["active", "gone", "new"]
    GenServer.stop(pid)
  end

  defp drive(ConditionalProcessor, _context) do
    assert ConditionalProcessor.process_users() == :ok
  end

  for block <- tl(Guide.blocks(@guide)) do
    @tag timeout: 120_000
    if block.needs_hex? do
      @tag :skip
    end

    test "line #{block.line} (#{block.heading})", context do
      block = unquote(Macro.escape(block))

      Guide.run_and_drive!(
        block,
        context.binding,
        __MODULE__.Helpers,
        @guide,
        &drive(&1, context)
      )
    end
  end
end
