defmodule Mix.Tasks.CloudStreams.Import do
  @shortdoc "Loads a DynamoDB export from an object store into a table"
  @moduledoc """
  Writes every item of an export (DynamoDB's own export to S3, or one made by
  `mix cloud_streams.export`) into a table with `Dynamo.Table.Stream.import/4`: data files
  read, decompressed and decoded natively, then written with batch writes, with a progress
  bar.

      mix cloud_streams.import STORE_URL TABLE [switches]

  `STORE_URL` is any URL `ObjectStoreX.new/2` takes; the table must exist.

  ## Examples

      $ mix cloud_streams.import s3://backups/dynamo users_restored --prefix users/2026-12-01
      import: [###############...............] 50% 625,000 items, 6 files, 49.9 MiB, 18,300 items/s
      imported 1,250,113 items in 12 files (99.9 MiB)

      # an interrupted import continues from its progress record
      $ mix cloud_streams.import s3://backups/dynamo users_restored --prefix users/2026-12-01 --resume

  ## Switches

    * `--prefix P` - where the export is inside the store (default: its root).
    * `--export-id ID` - which export, when the prefix holds several (default: the newest
      complete one).
    * `--max-concurrency N`, `--max-write-capacity UNITS`, `--resume`, `--timeout MS` - as
      in `Dynamo.Table.Stream.import/4`.
    * `--no-progress-record` - write nothing to the store (one you may only read); the
      import then cannot be resumed.
    * `--endpoint URL`, `--region R`, `--profile P` - DynamoDB's connection (`Dynamo.Config`).
    * `--store-endpoint URL`, `--store-region R`, `--allow-http` - for S3-compatible stores.
  """
  use Mix.Task

  alias CloudStreams.CLI

  @task "cloud_streams.import"
  @switches [
    prefix: :string,
    export_id: :string,
    max_concurrency: :integer,
    max_write_capacity: :float,
    resume: :boolean,
    progress_record: :boolean,
    timeout: :integer
  ]

  @impl true
  @spec run([String.t()]) :: :ok
  def run(args) do
    {[url, table], opts, store_switches, dynamo} =
      CLI.parse!(@task, args, ["store_url", "table"], @switches)

    {prefix, opts} = Keyword.pop(opts, :prefix, "")
    CLI.start!()
    store = CLI.store!(@task, url, store_switches)
    bar = CLI.progress("import", &Map.get(&1, :total_items))
    opts = opts ++ CLI.dynamo_config(dynamo) ++ [on_progress: bar]

    case Dynamo.Table.Stream.import(store, prefix, table, opts) do
      {:ok, result} -> CLI.finish("imported", result)
      {:error, error} -> CLI.fail!(@task, table, error)
    end
  rescue
    error in ArgumentError -> Mix.raise("mix #{@task}: #{Exception.message(error)}")
  end
end
