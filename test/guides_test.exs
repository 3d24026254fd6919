defmodule CloudStreams.GuidesTest.Helpers do
  @moduledoc false
  # The placeholders the guides' examples call, defined as a reader would.
  def process_user(user), do: user
  def process_chunk(chunk), do: byte_size(chunk)
end

defmodule CloudStreams.GuidesTest do
  # Every Elixir block of the guides below runs, in order, like the cells of one session per
  # guide (a block sees the variables and modules of the blocks before it), in a scratch
  # working directory, against the test bed (local disk, moto, Azurite, DynamoDB Local).
  # Blocks that need a hex package say so and are skipped. The two streaming guides have
  # their own tests (test/object_store_x/streaming_guide_test.exs,
  # test/dynamo/streaming_guide_test.exs).
  use ExUnit.Case, async: false
  @moduletag dynamodb: true, s3: true, azure: true

  import ExUnit.CaptureIO
  alias CloudStreams.Guide

  @guides ~w(getting_started configuration error_handling distributed_systems observability table_export_import)

  for name <- @guides do
    path = Path.expand("../guides/#{name}.md", __DIR__)
    @external_resource path

    @tag timeout: 300_000
    @tag :tmp_dir
    test "every block of guides/#{name}.md runs", %{tmp_dir: dir} do
      path = unquote(path)
      previous = File.cwd!()
      File.cd!(dir)

      try do
        blocks = path |> Guide.blocks() |> Enum.reject(& &1.needs_hex?)
        assert blocks != [], "#{path} has no runnable block"

        capture_io(fn ->
          Enum.reduce(blocks, Guide.new_session(__MODULE__.Helpers, path), fn block, session ->
            try do
              Guide.run_in_session!(block, session, path)
            rescue
              error ->
                reraise "#{Path.basename(path)}:#{block.line} (#{block.heading}): " <>
                          Exception.message(error),
                        __STACKTRACE__
            end
          end)
        end)
      after
        File.cd!(previous)
      end
    end
  end
end
