defmodule CloudStreams.Native do
  @moduledoc false
  # NIF stubs only (DESIGN §1). The library is built by the `:cloud_streams_native` compiler.

  @on_load :load_nif

  @doc false
  def load_nif do
    path = :filename.join(:code.priv_dir(:cloud_streams), ~c"native/libcloud_streams_nif")

    case :erlang.load_nif(path, 0) do
      :ok ->
        :ok

      {:error, {reason, text}} ->
        IO.warn("cloud_streams: cannot load its NIF from #{path}.so (#{reason}): #{text}")
        {:error, reason}
    end
  end

  # Pull streams (native/cloud_streams_nif/src/stream.rs)
  def stream_pull(_stream, _tag), do: :erlang.nif_error(:nif_not_loaded)
  def stream_disarm(_stream), do: :erlang.nif_error(:nif_not_loaded)
  def stream_close(_stream), do: :erlang.nif_error(:nif_not_loaded)
  def stats, do: :erlang.nif_error(:nif_not_loaded)

  # The synthetic source (native/cloud_streams_nif/src/synthetic.rs)
  def synthetic_stream(_opts), do: :erlang.nif_error(:nif_not_loaded)
  def synthetic_nif_panic, do: :erlang.nif_error(:nif_not_loaded)
end
