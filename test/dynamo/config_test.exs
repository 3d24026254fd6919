defmodule Dynamo.ConfigTest do
  # Credentials from the standard AWS chain (environment variables), and bad configuration.
  # Named profiles are passed to aws-config but not tested here (see NOTES.md).
  use ExUnit.Case, async: false
  @moduletag :dynamodb

  alias Dynamo.Table

  defmodule Thing do
    use Dynamo.Schema

    item do
      table_name("cloud_streams_config_test")
      field(:id, :string, partition_key: true)
    end
  end

  setup_all do
    _ = Table.delete_table(Thing)
    :ok = Table.create_table(Thing)
    on_exit(fn -> Table.delete_table(Thing) end)
    :ok
  end

  test "with no explicit keys, credentials come from AWS_* variables" do
    # scripts/with_servers.sh exports AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.
    assert System.get_env("AWS_ACCESS_KEY_ID")
    config = [access_key_id: nil, secret_access_key: nil]
    assert :ok = Table.put_item(%Thing{id: "from-env"}, config: config)
    assert {:ok, %Thing{id: "from-env"}} = Table.get_item(Thing, [id: "from-env"], config: config)
  end

  test "bad configuration raises ArgumentError naming the option" do
    assert_raise ArgumentError, ~r/unknown option :regoin for Dynamo configuration/, fn ->
      Table.get_item(Thing, [id: "x"], config: [regoin: "x"])
    end

    assert_raise ArgumentError, ~r/option :max_attempts/, fn ->
      Table.get_item(Thing, [id: "x"], config: [max_attempts: 0])
    end
  end

  test "half a key pair, a malformed endpoint and secrets of the wrong type are refused clearly" do
    assert_raise ArgumentError,
                 ~r/:access_key_id and :secret_access_key go together, got only :access_key_id/,
                 fn ->
                   Dynamo.Config.native(access_key_id: "only-this", secret_access_key: nil)
                 end

    assert_raise ArgumentError, ~r/:endpoint .* expected an http\(s\) URL/, fn ->
      Dynamo.Config.native(endpoint: "not a url")
    end

    error =
      assert_raise ArgumentError, fn ->
        Dynamo.Config.native(access_key_id: "a", secret_access_key: ~c"hunter2-secret")
      end

    assert error.message =~ ":secret_access_key"
    refute error.message =~ "hunter2"
  end
end
