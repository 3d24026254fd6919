defmodule CloudStreams.S3Uploads do
  @moduledoc false
  # The multipart uploads in progress on the test bed's S3 (moto), read with S3's own
  # ListMultipartUploads request (`GET /bucket?uploads&prefix=...`): what an aborted upload
  # must not leave behind.

  @doc "`[{key, upload_id}]` of the uploads in progress under `prefix`."
  def open(
        base_url \\ System.fetch_env!("CLOUD_STREAMS_S3_ENDPOINT"),
        bucket \\ System.fetch_env!("CLOUD_STREAMS_S3_BUCKET"),
        prefix
      ) do
    {:ok, _} = Application.ensure_all_started(:inets)
    url = "#{base_url}/#{bucket}?uploads&prefix=#{prefix}"

    {:ok, {{_, 200, _}, _, body}} =
      :httpc.request(:get, {to_charlist(url), []}, [], body_format: :binary)

    for [upload] <- Regex.scan(~r/<Upload>.*?<\/Upload>/s, body) do
      [_, key] = Regex.run(~r/<Key>([^<]*)<\/Key>/, upload)
      [_, id] = Regex.run(~r/<UploadId>([^<]*)<\/UploadId>/, upload)
      {key, id}
    end
  end
end
