defmodule CloudStreams.BadInputSweep do
  @moduledoc false
  # The generated bad-input sweep of test/bad_input_sweep_test.exs, run inside a child VM so
  # that a crash of the VM is seen (and named) instead of ending the test run.
  #
  # Every public function is called with each value of `bad_values/0` in each of its options
  # (the option names are read from the function itself: the "known options" of its
  # unknown-option error, so a new option is swept without editing this file), as its whole
  # option list, in the nested option lists (:client, :retry, Dynamo's :config) and in its
  # positional arguments. A call passes when it returns (anything) or raises ArgumentError or
  # one of our error structs within @bound ms. Anything else is a failure: another exception,
  # an exit, a hang. Before each call its label is written (unbuffered) to a progress file, so
  # the parent can name the call that took the VM down.
  #
  # Dynamo calls go to a closed port with one attempt: they are refused after validation and
  # encoding, which is what the sweep is about, so no emulator is needed.

  @bound 5_000

  @passing [ArgumentError, ObjectStoreX.Error, Dynamo.Error, CloudStreams.Error]

  @doc "Runs the sweep; returns `%{tried:, passed:, failures: [{label, reason}]}`."
  def run(progress_path, dir) do
    File.cd!(dir)
    {:ok, _} = Application.ensure_all_started(:cloud_streams)

    Application.put_env(:cloud_streams, :dynamo,
      endpoint: "http://127.0.0.1:1",
      region: "us-east-1",
      access_key_id: "AKIDSWEEP",
      secret_access_key: "sweep",
      max_attempts: 1
    )

    {:ok, progress} = :file.open(String.to_charlist(progress_path), [:write, :raw])
    # Crash reports of any process (a scanner task, a producer) count as failures of the call.
    :ets.new(:sweep_log, [:named_table, :public, :bag])
    :ok = :logger.add_handler(:sweep, __MODULE__, %{level: :error})

    results =
      for {label, fun} <- cases(dir) do
        :ok = :file.write(progress, [label, ?\n])
        {label, run_case(fun)}
      end

    :file.close(progress)
    failures = for {label, result} <- results, result != :passed, do: {label, result}
    %{tried: length(results), passed: length(results) - length(failures), failures: failures}
  end

  @doc false
  # A :logger handler: errors logged while a call runs are kept for it.
  def log(%{level: level} = event, _config)
      when level in [:error, :critical, :alert, :emergency] do
    :ets.insert(:sweep_log, {:event, event})
  end

  def log(_event, _config), do: :ok

  defp run_case(fun) do
    :ets.delete_all_objects(:sweep_log)

    case run_isolated(fun) do
      :passed ->
        case :ets.lookup(:sweep_log, :event) do
          [] -> :passed
          [{:event, event} | _] -> {:logged_error, logged(event)}
        end

      failed ->
        failed
    end
  end

  defp logged(%{msg: {:report, report}}), do: inspect(report, limit: 12, printable_limit: 1500)

  defp logged(%{msg: {:string, text}}),
    do: text |> IO.chardata_to_string() |> String.slice(0, 1500)

  defp logged(%{msg: {format, args}}),
    do: format |> :io_lib.format(args) |> IO.chardata_to_string() |> String.slice(0, 1500)

  defp run_isolated(fun) do
    {pid, ref} =
      spawn_monitor(fn ->
        # Linked processes a call starts (a Producer) report their exit instead of killing us.
        Process.flag(:trap_exit, true)

        result =
          try do
            _ = fun.()
            :passed
          rescue
            # A NIF's badarg also arrives as an ArgumentError, with this generic message: it
            # means the value reached the native side undecoded.
            e in ArgumentError ->
              if e.message == "argument error",
                do: {:native_badarg, format(e, __STACKTRACE__)},
                else: :passed

            e ->
              if e.__struct__ in @passing,
                do: :passed,
                else: {:exception, format(e, __STACKTRACE__)}
          catch
            :exit, reason -> {:exit, inspect(reason, limit: 8, printable_limit: 300)}
            kind, reason -> {kind, inspect(reason, limit: 8, printable_limit: 300)}
          end

        exit({:shutdown, {:sweep_result, result}})
      end)

    receive do
      {:DOWN, ^ref, :process, ^pid, {:shutdown, {:sweep_result, result}}} -> result
      {:DOWN, ^ref, :process, ^pid, other} -> {:died, inspect(other, limit: 8)}
    after
      @bound ->
        Process.exit(pid, :kill)

        receive do
          {:DOWN, ^ref, :process, ^pid, _} -> :hang
        end
    end
  end

  defp format(exception, stacktrace) do
    Exception.format(:error, exception, Enum.take(stacktrace, 4)) |> String.slice(0, 1500)
  end

  @doc false
  def bad_values do
    deep = Enum.reduce(1..5_000, "leaf", fn _, acc -> [acc] end)
    deep_map = Enum.reduce(1..5_000, "leaf", fn _, acc -> %{"k" => acc} end)

    [
      nil,
      true,
      -1,
      0,
      2 ** 31,
      2 ** 32,
      2 ** 35,
      2 ** 63,
      2 ** 64,
      1_000_000,
      1_073_741_824,
      1.0e-300,
      1.5,
      1.0e300,
      :atom,
      "",
      "text",
      <<255, 254>>,
      ~c"chars",
      [],
      [1, 2],
      [bogus: 1],
      %{},
      %{"k" => <<255>>},
      %{1 => 2},
      {:tuple},
      {1, 2},
      {:offset, 2 ** 64},
      1..2,
      self(),
      make_ref(),
      &Function.identity/1,
      fn _, _ -> :ok end,
      {:deep, deep},
      {:deep, deep_map}
    ]
  end

  # Values nested thousands of levels deep would reach native recursion: the codecs refuse
  # them past DynamoDB's 32 levels first.
  defp values(_kind), do: for(v <- bad_values(), do: unwrap(v))

  defp unwrap({:deep, v}), do: v
  defp unwrap(v), do: v

  defp short(value), do: inspect(value, limit: 4, printable_limit: 40, structs: false)

  # --- the cases ---------------------------------------------------------------------------

  defp cases(dir) do
    {:ok, memory} = ObjectStoreX.new(:memory)
    local_root = Path.join(dir, "local_root")
    {:ok, local} = ObjectStoreX.new(:local, root: local_root, create_root: true)

    for store <- [memory, local] do
      :ok = ObjectStoreX.put(store, "f", "0123456789")
    end

    dest = fn -> Path.join(dir, "dl_#{System.unique_integer([:positive])}") end
    take = fn stream -> Enum.take(stream, 2) end

    store_functions =
      for {store_name, store} <- [memory: memory, local: local] do
        [
          {"ObjectStoreX.put/4 (#{store_name})", &ObjectStoreX.put(store, "p", "x", &1)},
          {"ObjectStoreX.get/3 (#{store_name})", &ObjectStoreX.get(store, "f", &1)},
          {"ObjectStoreX.get!/3 (#{store_name})", &ObjectStoreX.get!(store, "f", &1)},
          {"ObjectStoreX.list/2 (#{store_name})", &ObjectStoreX.list(store, &1)},
          {"ObjectStoreX.list_with_delimiter/2 (#{store_name})",
           &ObjectStoreX.list_with_delimiter(store, &1)},
          {"ObjectStoreX.signed_url/3 (#{store_name})", &ObjectStoreX.signed_url(store, "f", &1)},
          {"Dynamo.Table.Stream.import/4 (#{store_name})",
           &Dynamo.Table.Stream.import(store, "backups", "cloud_streams_sweep", &1)},
          {"Dynamo.Table.Stream.read_export/3 (#{store_name})",
           &take.(Dynamo.Table.Stream.read_export(store, "backups", &1))},
          {"ObjectStoreX.Stream.download/3 (#{store_name})",
           &take.(ObjectStoreX.Stream.download(store, "f", &1))},
          {"ObjectStoreX.Stream.download_file/4 (#{store_name})",
           &ObjectStoreX.Stream.download_file(store, "f", dest.(), &1)},
          {"ObjectStoreX.Stream.upload/4 (#{store_name})",
           &ObjectStoreX.Stream.upload(["x"], store, "u", &1)},
          {"ObjectStoreX.Stream.upload_sink/3 (#{store_name})",
           &Enum.into(["x"], ObjectStoreX.Stream.upload_sink(store, "u", &1))},
          {"ObjectStoreX.Stream.list_stream/2 (#{store_name})",
           &take.(ObjectStoreX.Stream.list_stream(store, &1))}
        ]
      end
      |> List.flatten()

    new_functions =
      for backend <- ObjectStoreX.Config.backends() do
        base =
          case backend do
            :local -> [root: local_root]
            :http -> [url: "http://127.0.0.1:1"]
            _ -> []
          end

        {"ObjectStoreX.new/2 (#{inspect(backend)})",
         &ObjectStoreX.new(backend, with_base(base, &1))}
      end

    dynamo_functions = [
      {"Dynamo.Table.put_item/2", &Dynamo.Table.put_item(%DocUser{id: "u"}, &1)},
      {"Dynamo.Table.get_item/3", &Dynamo.Table.get_item(DocUser, [id: "u"], &1)},
      {"Dynamo.Table.delete_item/3", &Dynamo.Table.delete_item(DocUser, [id: "u"], &1)},
      {"Dynamo.Table.update_item/3",
       &Dynamo.Table.update_item(DocUser, [id: "u"], with_base([set: [email: "e"]], &1))},
      {"Dynamo.Table.scan/2", &Dynamo.Table.scan(DocUser, &1)},
      {"Dynamo.Table.query/2",
       &Dynamo.Table.query(DocUser, with_base([key_condition_expression: "id = :id"], &1))},
      {"Dynamo.Table.batch_write_item/3",
       &Dynamo.Table.batch_write_item(DocUser, [%DocUser{id: "u"}], &1)},
      {"Dynamo.Table.batch_get_item/3", &Dynamo.Table.batch_get_item(DocUser, [[id: "u"]], &1)},
      {"Dynamo.Table.create_table/2", &Dynamo.Table.create_table(DocUser, &1)},
      {"Dynamo.Table.delete_table/2", &Dynamo.Table.delete_table(DocUser, &1)},
      {"Dynamo.Table.parallel_scan/2", &Dynamo.Table.parallel_scan(DocUser, &1)},
      {"Dynamo.Table.Stream.scan/2", &take.(Dynamo.Table.Stream.scan(DocUser, &1))},
      {"Dynamo.Table.Stream.parallel_scan/2",
       &take.(Dynamo.Table.Stream.parallel_scan(DocUser, &1))},
      {"Dynamo.Table.Stream.query/2",
       &take.(
         Dynamo.Table.Stream.query(
           DocUser,
           with_base([key_condition_expression: "id = :id"], &1)
         )
       )},
      {"Dynamo.Table.Stream.scan_to_process/3",
       &scanned(Dynamo.Table.Stream.scan_to_process(DocUser, self(), &1))},
      {"Dynamo.Table.Stream.Producer.start_link/1",
       &started(Dynamo.Table.Stream.Producer.start_link(with_base([schema: DocUser], &1)))},
      {"Dynamo.Table.transact_write_items/2",
       &Dynamo.Table.transact_write_items([{:put, %DocUser{id: "u"}}], &1)},
      {"Dynamo.Table.transact_get_items/2",
       &Dynamo.Table.transact_get_items([{DocUser, [id: "u"]}], &1)},
      {"Dynamo.Table.execute_statement/3",
       &Dynamo.Table.execute_statement(DocUser, ~s(SELECT * FROM "cloud_streams_doc_users"), &1)},
      {"Dynamo.Table.batch_execute_statement/2",
       &Dynamo.Table.batch_execute_statement(
         [{DocUser, ~s(SELECT * FROM "cloud_streams_doc_users" WHERE id = ?), ["u"]}],
         &1
       )},
      {"Dynamo.Table.Stream.execute_statement/3",
       &take.(
         Dynamo.Table.Stream.execute_statement(
           DocUser,
           ~s(SELECT * FROM "cloud_streams_doc_users"),
           &1
         )
       )}
    ]

    other_functions = [
      {"ObjectStoreX.Transfer.copy_many/4",
       &ObjectStoreX.Transfer.copy_many({:memory, []}, {:memory, []}, ["a"], &1)},
      {"CloudStreams.Synthetic.stream/1",
       &take.(CloudStreams.Synthetic.stream(with_base([chunks: 1, timeout: 1_000], &1)))}
    ]

    option_cases(store_functions ++ new_functions ++ other_functions, :store) ++
      option_cases(dynamo_functions, :dynamo) ++
      nested_cases(new_functions, [:client, :retry], :store) ++
      nested_cases(dynamo_functions, [:config], :dynamo) ++
      positional_cases(memory, local, dest)
  end

  # `base` with the swept options over it; a swept value that is not a keyword list is passed
  # alone, as the whole option list.
  defp with_base(base, opts) do
    if Keyword.keyword?(opts), do: Keyword.merge(base, opts), else: opts
  end

  # A scanner ends when its scan does (an error is a message to us, not a crash).
  defp scanned({:ok, scanner}) do
    ref = Process.monitor(scanner)

    receive do
      {:DOWN, ^ref, _, _, reason} when reason in [:normal, :noproc] -> :ok
      {:DOWN, ^ref, _, _, reason} -> exit({:scanner_crashed, reason})
    after
      4_000 -> Process.exit(scanner, :kill)
    end
  end

  defp scanned(other), do: other

  defp started({:ok, pid}), do: GenServer.stop(pid)
  defp started(other), do: exit({:producer_not_started, other})

  # Each option of each function with each value, and each value as the whole option list.
  defp option_cases(functions, kind) do
    for {label, call} <- functions,
        value <- values(kind),
        {case_label, opts} <-
          [{"opts = #{short(value)}", value}] ++ per_option(label, call, value) do
      {"#{label} #{case_label}", fn -> call.(opts) end}
    end
  end

  defp per_option(_label, call, value) do
    for name <- option_names(call), do: {"#{name}: #{short(value)}", [{name, value}]}
  end

  defp nested_cases(functions, parents, kind) do
    for {label, call} <- functions,
        parent <- parents,
        parent in option_names(call),
        name <- option_names(&call.([{parent, &1}])),
        value <- values(kind) do
      {"#{label} #{parent}: [#{name}: #{short(value)}]",
       fn -> call.([{parent, [{name, value}]}]) end}
    end
  end

  @doc false
  # The options a function knows, from its own unknown-option error.
  def option_names(call) do
    call.(__sweep_unknown__: 1)
    raise "no unknown-option error"
  rescue
    e in ArgumentError ->
      case Regex.run(~r/known options: (.*)$/, Exception.message(e)) do
        [_, names] ->
          names
          |> String.split(", ")
          |> Enum.map(&(&1 |> String.trim_leading(":") |> String.to_atom()))

        nil ->
          raise "no option list in: #{Exception.message(e)}"
      end
  end

  defp positional_cases(memory, local, dest) do
    store_values = values(:store)
    dynamo_values = values(:dynamo)

    store_calls =
      for store <- [memory, local],
          {label, call} <- [
            {"ObjectStoreX.put/4 path", &ObjectStoreX.put(store, &1, "x")},
            {"ObjectStoreX.put/4 data", &ObjectStoreX.put(store, "p", &1)},
            {"ObjectStoreX.get/3 path", &ObjectStoreX.get(store, &1)},
            {"ObjectStoreX.head/2 path", &ObjectStoreX.head(store, &1)},
            {"ObjectStoreX.get_ranges/3 ranges", &ObjectStoreX.get_ranges(store, "f", &1)},
            {"ObjectStoreX.get_ranges/3 range", &ObjectStoreX.get_ranges(store, "f", [&1])},
            {"ObjectStoreX.delete/2 path", &ObjectStoreX.delete(store, &1)},
            {"ObjectStoreX.delete_many/2 paths", &ObjectStoreX.delete_many(store, &1)},
            {"ObjectStoreX.delete_many/2 path", &ObjectStoreX.delete_many(store, [&1])},
            {"ObjectStoreX.copy/3 from", &ObjectStoreX.copy(store, &1, "c")},
            {"ObjectStoreX.copy/3 to", &ObjectStoreX.copy(store, "f", &1)},
            {"ObjectStoreX.rename/3 to", &ObjectStoreX.rename(store, "nope", &1)},
            {"ObjectStoreX.copy_if_not_exists/3 to",
             &ObjectStoreX.copy_if_not_exists(store, "f", &1)},
            {"ObjectStoreX.rename_if_not_exists/3 to",
             &ObjectStoreX.rename_if_not_exists(store, "nope", &1)},
            {"ObjectStoreX.signed_url/3 path", &ObjectStoreX.signed_url(store, &1)},
            {"ObjectStoreX.Stream.download/3 path",
             &Enum.take(ObjectStoreX.Stream.download(store, &1), 1)},
            {"ObjectStoreX.Stream.download_file/4 path",
             &ObjectStoreX.Stream.download_file(store, &1, dest.())},
            {"ObjectStoreX.Stream.download_file/4 local_path",
             &ObjectStoreX.Stream.download_file(store, "f", local_path(&1))},
            {"ObjectStoreX.Stream.upload/4 enumerable",
             &ObjectStoreX.Stream.upload(&1, store, "u")},
            {"ObjectStoreX.Stream.upload/4 chunk", &ObjectStoreX.Stream.upload([&1], store, "u")},
            {"ObjectStoreX.Stream.upload/4 path", &ObjectStoreX.Stream.upload(["x"], store, &1)},
            {"ObjectStoreX.Stream.upload_sink/3 chunk",
             &Enum.into([&1], ObjectStoreX.Stream.upload_sink(store, "u"))}
          ],
          value <- store_values do
        {"#{label} = #{short(value)} (#{inspect(store)})", fn -> call.(value) end}
      end

    store_arg_calls =
      for {label, call} <- [
            {"ObjectStoreX.new/2 backend", &ObjectStoreX.new(&1)},
            {"ObjectStoreX.get/3 store", &ObjectStoreX.get(&1, "f")},
            {"ObjectStoreX.Stream.list_stream/2 store", &ObjectStoreX.Stream.list_stream(&1)}
          ],
          value <- store_values do
        {"#{label} = #{short(value)}", fn -> call.(value) end}
      end

    schemas = [Enum, String, :not_a_module, DocUser.Missing, "DocUser"]

    dynamo_calls =
      for {label, call} <- [
            {"Dynamo.Table.get_item/3 schema", &Dynamo.Table.get_item(&1, id: "u")},
            {"Dynamo.Table.get_item/3 key", &Dynamo.Table.get_item(DocUser, &1)},
            {"Dynamo.Table.get_item/3 key value", &Dynamo.Table.get_item(DocUser, id: &1)},
            {"Dynamo.Table.delete_item/3 schema", &Dynamo.Table.delete_item(&1, id: "u")},
            {"Dynamo.Table.update_item/3 schema",
             &Dynamo.Table.update_item(&1, [id: "u"], set: [email: "e"])},
            {"Dynamo.Table.update_item/3 opts",
             &Dynamo.Table.update_item(DocUser, [id: "u"], &1)},
            {"Dynamo.Table.update_item/3 set value",
             &Dynamo.Table.update_item(DocUser, [id: "u"], set: [email: &1])},
            {"Dynamo.Table.put_item/2 struct", &Dynamo.Table.put_item(&1)},
            {"Dynamo.Table.put_item/2 field",
             &Dynamo.Table.put_item(%DocUser{id: "u", email: &1})},
            {"Dynamo.Table.put_item/2 key field", &Dynamo.Table.put_item(%DocUser{id: &1})},
            {"Dynamo.Table.scan/2 schema", &Dynamo.Table.scan(&1)},
            {"Dynamo.Table.query/2 schema",
             &Dynamo.Table.query(&1, key_condition_expression: "id = :id")},
            {"Dynamo.Table.batch_write_item/3 schema", &Dynamo.Table.batch_write_item(&1, [])},
            {"Dynamo.Table.batch_write_item/3 requests",
             &Dynamo.Table.batch_write_item(DocUser, &1)},
            {"Dynamo.Table.batch_write_item/3 request",
             &Dynamo.Table.batch_write_item(DocUser, [&1])},
            {"Dynamo.Table.batch_get_item/3 schema", &Dynamo.Table.batch_get_item(&1, [])},
            {"Dynamo.Table.batch_get_item/3 keys", &Dynamo.Table.batch_get_item(DocUser, &1)},
            {"Dynamo.Table.batch_get_item/3 key", &Dynamo.Table.batch_get_item(DocUser, [&1])},
            {"Dynamo.Table.create_table/2 schema", &Dynamo.Table.create_table(&1)},
            {"Dynamo.Table.delete_table/2 schema", &Dynamo.Table.delete_table(&1)},
            {"Dynamo.Table.parallel_scan/2 schema", &Dynamo.Table.parallel_scan(&1)},
            {"Dynamo.Table.Stream.scan/2 schema", &Enum.take(Dynamo.Table.Stream.scan(&1), 1)},
            {"Dynamo.Table.Stream.parallel_scan/2 schema",
             &Enum.take(Dynamo.Table.Stream.parallel_scan(&1), 1)},
            {"Dynamo.Table.Stream.query/2 schema",
             &Enum.take(Dynamo.Table.Stream.query(&1, key_condition_expression: "id = :id"), 1)},
            {"Dynamo.Table.Stream.scan_to_process/3 schema",
             &scanned(Dynamo.Table.Stream.scan_to_process(&1, self()))},
            {"Dynamo.Table.Stream.scan_to_process/3 pid",
             &scanned(Dynamo.Table.Stream.scan_to_process(DocUser, &1))},
            {"Dynamo.Table.Stream.Producer.start_link/1 schema",
             &started(Dynamo.Table.Stream.Producer.start_link(schema: &1))}
          ],
          value <- schemas ++ dynamo_values do
        {"#{label} = #{short(value)}", fn -> call.(value) end}
      end

    store_calls ++ store_arg_calls ++ dynamo_calls
  end

  # A local path argument that stays inside the sweep's directory when it is a string.
  defp local_path(value) when is_binary(value), do: "dl_" <> value
  defp local_path(value), do: value
end
