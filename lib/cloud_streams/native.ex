defmodule CloudStreams.Native do
  @moduledoc false
  # NIF stubs only (architecture §1). The library is built by the `:cloud_streams_native` compiler.

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

  # Object stores (native/cloud_streams_nif/src/store/mod.rs); operations answer {tag, result}
  def store_new(_config), do: :erlang.nif_error(:nif_not_loaded)
  def store_get(_store, _path, _opts, _tag), do: :erlang.nif_error(:nif_not_loaded)
  def store_head(_store, _path, _tag), do: :erlang.nif_error(:nif_not_loaded)
  def store_put(_store, _path, _data, _opts, _tag), do: :erlang.nif_error(:nif_not_loaded)
  def store_delete(_store, _path, _tag), do: :erlang.nif_error(:nif_not_loaded)
  def store_delete_many(_store, _paths, _tag), do: :erlang.nif_error(:nif_not_loaded)

  def store_transfer(_store, _copy_or_rename, _from, _to, _if_not_exists, _tag),
    do: :erlang.nif_error(:nif_not_loaded)

  def store_list(_store, _prefix, _offset, _tag), do: :erlang.nif_error(:nif_not_loaded)
  def store_list_with_delimiter(_store, _prefix, _tag), do: :erlang.nif_error(:nif_not_loaded)
  def store_get_ranges(_store, _path, _ranges, _tag), do: :erlang.nif_error(:nif_not_loaded)

  def store_signed_url(_store, _method, _path, _expires_in, _tag),
    do: :erlang.nif_error(:nif_not_loaded)

  # Object-store streams (native/cloud_streams_nif/src/store/streams.rs)
  def store_download_stream(_store, _path, _range, _chunk_size, _prefetch),
    do: :erlang.nif_error(:nif_not_loaded)

  def store_list_stream(_store, _prefix, _offset, _page_size, _prefetch_pages),
    do: :erlang.nif_error(:nif_not_loaded)

  def store_upload_start(_store, _path, _part_size, _max_concurrency, _opts),
    do: :erlang.nif_error(:nif_not_loaded)

  def store_upload_write(_upload, _data, _tag), do: :erlang.nif_error(:nif_not_loaded)
  def store_upload_finish(_upload, _tag), do: :erlang.nif_error(:nif_not_loaded)
  def store_upload_abort(_upload, _tag), do: :erlang.nif_error(:nif_not_loaded)
  def store_upload_cancel(_upload), do: :erlang.nif_error(:nif_not_loaded)

  def store_download_file(_store, _path, _dest, _part, _concurrency, _resume, _progress, _tag),
    do: :erlang.nif_error(:nif_not_loaded)

  # DynamoDB (native/cloud_streams_nif/src/dynamo/mod.rs); operations answer {tag, result}
  def dynamo_put_item(_config, _table, _item, _expressions, _tag),
    do: :erlang.nif_error(:nif_not_loaded)

  def dynamo_get_item(_config, _table, _key, _consistent, _projection, _names, _tag),
    do: :erlang.nif_error(:nif_not_loaded)

  def dynamo_delete_item(_config, _table, _key, _expressions, _tag),
    do: :erlang.nif_error(:nif_not_loaded)

  def dynamo_update_item(_config, _table, _key, _update, _expressions, _tag),
    do: :erlang.nif_error(:nif_not_loaded)

  def dynamo_read_page(_config, _scan_or_query, _read, _tag),
    do: :erlang.nif_error(:nif_not_loaded)

  def dynamo_batch_write(_config, _table, _puts, _deletes, _tag),
    do: :erlang.nif_error(:nif_not_loaded)

  def dynamo_batch_get(_config, _table, _keys, _consistent, _tag),
    do: :erlang.nif_error(:nif_not_loaded)

  def dynamo_create_table(_config, _table, _partition, _sort, _indexes, _tag),
    do: :erlang.nif_error(:nif_not_loaded)

  def dynamo_delete_table(_config, _table, _tag), do: :erlang.nif_error(:nif_not_loaded)

  # Transactions and PartiQL (native/cloud_streams_nif/src/dynamo/mod.rs)
  def dynamo_transact_write(_config, _actions, _token, _tag),
    do: :erlang.nif_error(:nif_not_loaded)

  def dynamo_transact_get(_config, _gets, _tag), do: :erlang.nif_error(:nif_not_loaded)

  def dynamo_execute_statement(_config, _statement, _tag),
    do: :erlang.nif_error(:nif_not_loaded)

  def dynamo_batch_execute_statement(_config, _statements, _tag),
    do: :erlang.nif_error(:nif_not_loaded)

  # native/cloud_streams_nif/src/dynamo/statement_stream.rs
  def dynamo_statement_stream(_config, _statement, _prefetch, _fields),
    do: :erlang.nif_error(:nif_not_loaded)

  # Scans and queries as pull streams (native/cloud_streams_nif/src/dynamo/stream.rs)
  def dynamo_read_stream(_config, _op, _read, _total, _segs, _conc, _prefetch, _cap, _fields),
    do: :erlang.nif_error(:nif_not_loaded)

  # Table export (native/cloud_streams_nif/src/dynamo/export.rs)
  def dynamo_export(_config, _read, _store, _opts, _tag), do: :erlang.nif_error(:nif_not_loaded)
  # Table import and reading exports (native/cloud_streams_nif/src/dynamo/import.rs)
  def dynamo_import(_config, _store, _request, _tag), do: :erlang.nif_error(:nif_not_loaded)

  def dynamo_export_stream(_store, _prefix, _export_id, _page_size, _prefetch, _fields),
    do: :erlang.nif_error(:nif_not_loaded)

  # Spawned tasks (native/cloud_streams_nif/src/task.rs)
  def task_release(_task), do: :erlang.nif_error(:nif_not_loaded)

  # The synthetic source (native/cloud_streams_nif/src/synthetic.rs)
  def synthetic_stream(_opts), do: :erlang.nif_error(:nif_not_loaded)
  def synthetic_nif_panic, do: :erlang.nif_error(:nif_not_loaded)
end
