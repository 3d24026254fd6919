defmodule CloudStreams.DynamoDBWire do
  @moduledoc false
  # DynamoDB's JSON protocol spoken directly over HTTP: `POST /` with
  # `X-Amz-Target: DynamoDB_20120810.<Operation>` and a JSON body, as the AWS SDKs send it.
  # DynamoDB Local and moto read the credential scope of the Authorization header (the access
  # key and region pick DynamoDB Local's database) but do not verify the signature. Tests use
  # it to write and read items with exact numbers, independently of the library, and to call
  # operations the library does not wrap (moto's ImportTable).

  alias CloudStreams.TestJSON

  @doc "One request. `{:ok, body}` on 200, else `{:error, status, body}`."
  def request(endpoint, operation, body, access_key \\ "cloudstreamstest") do
    {:ok, _} = Application.ensure_all_started(:inets)
    date = Calendar.strftime(DateTime.utc_now(), "%Y%m%d")

    headers = [
      {~c"x-amz-target", ~c"DynamoDB_20120810.#{operation}"},
      {~c"x-amz-date", to_charlist(Calendar.strftime(DateTime.utc_now(), "%Y%m%dT%H%M%SZ"))},
      {~c"authorization",
       ~c"AWS4-HMAC-SHA256 Credential=#{access_key}/#{date}/us-east-1/dynamodb/aws4_request, " ++
         ~c"SignedHeaders=host;x-amz-date;x-amz-target, Signature=#{String.duplicate("0", 64)}"}
    ]

    request =
      {to_charlist(endpoint), headers, ~c"application/x-amz-json-1.0", TestJSON.encode!(body)}

    {:ok, {{_, status, _}, _, response}} =
      :httpc.request(:post, request, [timeout: 30_000], body_format: :binary)

    decoded = TestJSON.decode!(response)
    if status == 200, do: {:ok, decoded}, else: {:error, status, decoded}
  end

  @doc "Puts DynamoDB JSON items, 25 per BatchWriteItem, sending unprocessed items again."
  def batch_put(endpoint, table, items) do
    for batch <- Enum.chunk_every(items, 25) do
      put_all(endpoint, table, Enum.map(batch, &%{"PutRequest" => %{"Item" => &1}}), 20)
    end

    :ok
  end

  defp put_all(_endpoint, _table, [], _attempts), do: :ok

  defp put_all(endpoint, table, requests, attempts) when attempts > 0 do
    {:ok, response} =
      request(endpoint, "BatchWriteItem", %{"RequestItems" => %{table => requests}})

    left = get_in(response, ["UnprocessedItems", table]) || []
    if left != [], do: Process.sleep(50)
    put_all(endpoint, table, left, attempts - 1)
  end

  @doc "Every item of a table, as DynamoDB JSON maps (numbers as DynamoDB's exact strings)."
  def scan_all(endpoint, table, start \\ nil, acc \\ []) do
    body = %{"TableName" => table}
    body = if start, do: Map.put(body, "ExclusiveStartKey", start), else: body
    {:ok, page} = request(endpoint, "Scan", body)
    acc = acc ++ page["Items"]

    case page["LastEvaluatedKey"] do
      nil -> acc
      key -> scan_all(endpoint, table, key, acc)
    end
  end
end
