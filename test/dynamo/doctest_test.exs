defmodule Dynamo.DoctestTest do
  use ExUnit.Case, async: false
  @moduletag :dynamodb

  setup_all do
    DocUser.seed!()
    on_exit(fn -> Dynamo.Table.delete_table(DocUser) end)
  end

  doctest Dynamo.Codec
  doctest Dynamo.Error
  doctest Dynamo.Table.Stream
end
