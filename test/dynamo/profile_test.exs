defmodule Dynamo.ProfileTest do
  # Credentials from a named profile of the shared AWS files. The native side reads the OS
  # environment of the VM as it started (System.put_env/2 does not reach it), and the test
  # bed's AWS_* keys would win over any profile, so this runs in a peer VM started with its
  # own environment. DynamoDB Local keeps one database per access key: an item the peer
  # writes is found with the profile's key and not with the test bed's.
  use ExUnit.Case, async: false
  @moduletag :dynamodb

  @moduletag :tmp_dir

  setup %{tmp_dir: dir} do
    credentials = Path.join(dir, "credentials")
    config = Path.join(dir, "config")

    File.write!(credentials, """
    [cloudstreamsprofile]
    aws_access_key_id = cloudstreamsprofile
    aws_secret_access_key = cloudstreamsprofile
    """)

    File.write!(config, """
    [profile cloudstreamsprofile]
    region = us-east-1
    """)

    env = [
      {~c"AWS_SHARED_CREDENTIALS_FILE", String.to_charlist(credentials)},
      {~c"AWS_CONFIG_FILE", String.to_charlist(config)},
      {~c"AWS_ACCESS_KEY_ID", false},
      {~c"AWS_SECRET_ACCESS_KEY", false},
      {~c"AWS_SESSION_TOKEN", false},
      {~c"AWS_PROFILE", false},
      # No instance metadata lookups from a test machine.
      {~c"AWS_EC2_METADATA_DISABLED", ~c"true"}
    ]

    paths = Enum.flat_map(:code.get_path(), &[~c"-pa", &1])
    {:ok, peer, _node} = :peer.start_link(%{connection: :standard_io, args: paths, env: env})
    on_exit(fn -> catch_exit(:peer.stop(peer)) end)
    {:ok, _} = :peer.call(peer, Application, :ensure_all_started, [:cloud_streams])
    endpoint = System.fetch_env!("CLOUD_STREAMS_DYNAMODB_ENDPOINT")
    {:ok, peer: peer, endpoint: endpoint}
  end

  test "profile: reads the named profile's keys", %{peer: peer, endpoint: endpoint} do
    config = [endpoint: endpoint, region: "us-east-1", profile: "cloudstreamsprofile"]
    # DocUser's table, in the profile key's own database.
    _ = :peer.call(peer, Dynamo.Table, :delete_table, [DocUser, [config: config]])
    assert :ok = :peer.call(peer, Dynamo.Table, :create_table, [DocUser, [config: config]])
    item = struct(DocUser, id: "from-profile", email: "p@example.com")
    assert :ok = :peer.call(peer, Dynamo.Table, :put_item, [item, [config: config]])

    as_profile = [
      endpoint: endpoint,
      access_key_id: "cloudstreamsprofile",
      secret_access_key: "x"
    ]

    assert {:ok, %DocUser{email: "p@example.com"}} =
             Dynamo.Table.get_item(DocUser, [id: "from-profile"], config: as_profile)

    # The test bed's key has its own database, where the item is not.
    assert match?({:ok, nil}, Dynamo.Table.get_item(DocUser, id: "from-profile")) or
             match?(
               {:error, %Dynamo.Error{type: :resource_not_found}},
               Dynamo.Table.get_item(DocUser, id: "from-profile")
             )

    Dynamo.Table.delete_table(DocUser, config: as_profile)
  end

  test "a profile that does not exist is :unauthenticated, not retryable", %{
    peer: peer,
    endpoint: endpoint
  } do
    config = [endpoint: endpoint, region: "us-east-1", profile: "nosuchprofile", max_attempts: 1]

    assert {:error, %Dynamo.Error{type: :unauthenticated, retryable: false}} =
             :peer.call(peer, Dynamo.Table, :get_item, [DocUser, [id: "x"], [config: config]])
  end
end
