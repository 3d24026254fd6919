defmodule Dynamo.DoctestTest do
  use ExUnit.Case, async: true

  doctest Dynamo.Codec
  doctest Dynamo.Error
end
