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
end
