defmodule Dynamo.DoctestTest do
  use ExUnit.Case, async: false
  @moduletag :dynamodb

  setup_all do
    DocUser.seed!()
    DocAccount.seed!()

    on_exit(fn ->
      Dynamo.Table.delete_table(DocUser)
      Dynamo.Table.delete_table(DocAccount)
    end)
  end

  doctest Dynamo.Codec
  doctest Dynamo.Error
  doctest Dynamo.Table
  doctest Dynamo.Table.Stream
end
