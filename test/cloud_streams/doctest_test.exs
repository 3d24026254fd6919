defmodule CloudStreams.DoctestTest do
  use ExUnit.Case, async: false

  doctest CloudStreams
  doctest CloudStreams.Error
  doctest CloudStreams.PullStream
  doctest CloudStreams.Synthetic
  doctest CloudStreams.Telemetry
end
