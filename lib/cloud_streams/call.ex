defmodule CloudStreams.Call do
  @moduledoc false
  # Operations that run on the tokio runtime answer by message (DESIGN §2): the NIF returns
  # :ok at once and the result arrives as {tag, result}. The native side always answers, even
  # when it panics, so the wait needs no timeout of its own: the store's request timeouts and
  # retry budget bound it.

  @spec await((reference() -> :ok)) :: {:ok, term()} | {:error, map()}
  def await(start) do
    tag = make_ref()
    :ok = start.(tag)

    receive do
      {^tag, result} -> result
    end
  end

  @doc """
  Like `await/1`, with the error map turned into an exception struct by `to_error`, inside the
  `CloudStreams.Telemetry.request/2` span of `request` (`nil`: no span).
  """
  @spec await(
          (reference() -> :ok),
          (map() -> Exception.t()),
          CloudStreams.Telemetry.request() | nil
        ) ::
          {:ok, term()} | {:error, Exception.t()}
  def await(start, to_error, request \\ nil) do
    CloudStreams.Telemetry.request(request, fn ->
      case await(start) do
        {:ok, value} -> {:ok, value}
        {:error, native} -> {:error, to_error.(native)}
      end
    end)
  end
end
