defmodule Mix.Tasks.CloudStreams.Export do
  @shortdoc "Exports a DynamoDB table to an object store (DynamoDB's export format)"
  @moduledoc """
  Copies a whole DynamoDB table to an object store with `Dynamo.Table.Stream.export/4`: a
  parallel scan whose pages are encoded, gzipped and uploaded natively, in the layout of
  DynamoDB's own export to S3, with a progress line.

      mix cloud_streams.export TABLE STORE_URL [switches]

  `STORE_URL` is any URL `ObjectStoreX.new/2` takes: `s3://bucket/backups`,
  `file:///var/backups`, `az://container`, `gs://bucket`. S3 credentials come from the
  `AWS_*` environment variables; DynamoDB's from the usual chain (or `--profile`).

  ## Examples

      $ mix cloud_streams.export users s3://backups/dynamo --prefix users/2026-12-01 --segments 8
      export: 1,204,000 items, 12 files, 96.3 MiB, 41,200 items/s
      exported 1,250,113 items in 12 files (99.9 MiB): users/2026-12-01/AWSDynamoDB/01764583200000-1a2b3c4d/manifest-summary.json

      # a stopped export continues where it stood
      $ mix cloud_streams.export users s3://backups/dynamo --prefix users/2026-12-01 --resume

  ## Switches

    * `--prefix P` - where the export goes inside the store (default: its root). Refused when
      it already holds an export, unless `--resume` or `--overwrite`.
    * `--segments N`, `--max-concurrency N`, `--page-size N`, `--filter-expression EXPR`,
      `--projection-expression EXPR`, `--consistent-read`, `--max-read-capacity UNITS` - the
      scan, as in `Dynamo.Table.Stream.parallel_scan/2` (expressions that need placeholder
      values are for the Elixir API).
    * `--format dynamodb_json|ndjson`, `--max-file-bytes N`, `--part-size N`, `--resume`,
      `--overwrite`, `--timeout MS` - as in `Dynamo.Table.Stream.export/4`.
    * `--endpoint URL`, `--region R`, `--profile P` - DynamoDB's connection (`Dynamo.Config`).
    * `--store-endpoint URL`, `--store-region R`, `--allow-http` - for S3-compatible stores.

  Exits non-zero with the error (naming the segment and the file) when the export fails; the
  export can then be resumed with `--resume`.
  """
  use Mix.Task

  alias CloudStreams.CLI

  @task "cloud_streams.export"
  @switches [
    prefix: :string,
    segments: :integer,
    max_concurrency: :integer,
    page_size: :integer,
    filter_expression: :string,
    projection_expression: :string,
    consistent_read: :boolean,
    max_read_capacity: :float,
    format: :string,
    max_file_bytes: :integer,
    part_size: :integer,
    resume: :boolean,
    overwrite: :boolean,
    timeout: :integer
  ]

  @impl true
  @spec run([String.t()]) :: :ok
  def run(args) do
    {[table, url], opts, store_switches, dynamo} =
      CLI.parse!(@task, args, ["table", "store_url"], @switches)

    {prefix, opts} = Keyword.pop(opts, :prefix, "")
    opts = Keyword.update(opts, :format, :dynamodb_json, &format!/1)
    CLI.start!()
    store = CLI.store!(@task, url, store_switches)

    opts =
      opts ++ CLI.dynamo_config(dynamo) ++ [on_progress: CLI.progress("export", fn _ -> nil end)]

    case Dynamo.Table.Stream.export(table, store, prefix, opts) do
      {:ok, result} -> CLI.finish("exported", result)
      {:error, error} -> CLI.fail!(@task, table, error)
    end
  rescue
    error in ArgumentError -> Mix.raise("mix #{@task}: #{Exception.message(error)}")
  end

  defp format!("dynamodb_json"), do: :dynamodb_json
  defp format!("ndjson"), do: :ndjson

  defp format!(other),
    do: Mix.raise("mix #{@task}: --format is dynamodb_json or ndjson, got: #{inspect(other)}")
end
