defmodule Dynamo.Schema do
  @moduledoc """
  Declares a DynamoDB item type: its table, its keys and its typed fields, and defines the
  struct.

      defmodule User do
        use Dynamo.Schema

        item do
          table_name "users"

          field :id, :string, partition_key: true
          field :email, :string
          field :age, :integer, default: 0
          field :score, :float
          field :active, :boolean, default: true
          field :tags, :string_set
          field :created_at, :datetime
        end
      end

  Types: `:string`, `:integer`, `:float`, `:number`, `:boolean`, `:binary`, `:map`, `:list`,
  `:string_set`, `:number_set`, `:binary_set`, `:datetime` (stored as an ISO 8601 string),
  and `:any` (the natural mapping of `Dynamo.Codec`, the default). Options: `:default`,
  `:partition_key`, `:sort_key`. A value is stored as itself: a `:map`, `:list` or `:any`
  field holding `%{"S" => "small"}` reads back `%{"S" => "small"}`.

  Keys are the attributes themselves: `id` above is stored as the attribute `id`, with no
  prefix or composite string. Attributes a stored item has and the schema does not declare
  are kept, decoded, in the struct's `__extra__` map (and written back by `put_item`);
  declared fields missing from an item take their default.
  """

  @types [
    :string,
    :integer,
    :float,
    :number,
    :boolean,
    :binary,
    :map,
    :list,
    :string_set,
    :number_set,
    :binary_set,
    :datetime,
    :any
  ]

  @doc false
  def types, do: @types

  defmacro __using__(_opts) do
    quote do
      import Dynamo.Schema, only: [item: 1]
      Module.register_attribute(__MODULE__, :dynamo_fields, accumulate: true)
      Module.put_attribute(__MODULE__, :dynamo_table, nil)
      @before_compile Dynamo.Schema
    end
  end

  @doc "The block declaring the table and fields."
  defmacro item(do: block) do
    quote do
      import Dynamo.Schema, only: [table_name: 1, field: 1, field: 2, field: 3]
      unquote(block)
    end
  end

  @doc "The table's name."
  defmacro table_name(name) do
    quote do: Module.put_attribute(__MODULE__, :dynamo_table, unquote(name))
  end

  @doc "A field: `field :name, type, opts` (type and options optional)."
  defmacro field(name, type_or_opts \\ :any, opts \\ []) do
    quote do
      Dynamo.Schema.__field__(__MODULE__, unquote(name), unquote(type_or_opts), unquote(opts))
    end
  end

  @doc false
  def __field__(module, name, type_or_opts, opts) do
    {type, opts} = if is_list(type_or_opts), do: {:any, type_or_opts}, else: {type_or_opts, opts}

    unless is_atom(name),
      do: raise(ArgumentError, "field names must be atoms, got: #{inspect(name)}")

    unless type in @types do
      raise ArgumentError,
            "unknown type #{inspect(type)} for field #{inspect(name)} of #{inspect(module)}; " <>
              "known types: #{Enum.map_join(@types, ", ", &inspect/1)}"
    end

    for {key, _} <- opts, key not in [:default, :partition_key, :sort_key] do
      raise ArgumentError,
            "unknown option #{inspect(key)} for field #{inspect(name)} of #{inspect(module)}"
    end

    Module.put_attribute(module, :dynamo_fields, {name, type, opts})
  end

  defmacro __before_compile__(env) do
    fields = env.module |> Module.get_attribute(:dynamo_fields) |> Enum.reverse()
    table = Module.get_attribute(env.module, :dynamo_table)
    name = inspect(env.module)

    unless is_binary(table),
      do: raise(ArgumentError, "#{name}: declare table_name \"...\" in its item block")

    keys = fn flag -> for {field, _, opts} <- fields, opts[flag], do: field end

    partition =
      case keys.(:partition_key) do
        [key] ->
          key

        other ->
          raise ArgumentError,
                "#{name} needs exactly one partition_key field, got: #{inspect(other)}"
      end

    sort =
      case keys.(:sort_key) do
        [] ->
          nil

        [key] ->
          key

        other ->
          raise ArgumentError, "#{name} can have one sort_key field, got: #{inspect(other)}"
      end

    defaults = for {field, _, opts} <- fields, do: {field, opts[:default]}
    types = Map.new(fields, fn {field, type, _} -> {field, type} end)
    decoders = Map.new(fields, fn {field, type, _} -> {Atom.to_string(field), {field, type}} end)

    quote do
      defstruct unquote(Macro.escape(defaults)) ++ [__extra__: %{}]

      @doc false
      def __dynamo__(:table), do: unquote(table)
      def __dynamo__(:partition_key), do: unquote(partition)
      def __dynamo__(:sort_key), do: unquote(sort)
      def __dynamo__(:types), do: unquote(Macro.escape(types))
      def __dynamo__(:decoders), do: unquote(Macro.escape(decoders))
      def __dynamo__(:fields), do: unquote(Enum.map(fields, &elem(&1, 0)))
    end
  end

  @doc "The item (`%{name => tagged value}`) for a struct of a schema."
  @spec to_item(struct()) :: map()
  def to_item(%schema{} = struct) do
    types = schema.__dynamo__(:types)

    for key <- key_fields(schema), is_nil(Map.get(struct, key)) do
      raise ArgumentError,
            "#{inspect(schema)} item has no value for its key field #{inspect(key)}"
    end

    extra = Dynamo.Codec.encode_attributes(struct.__extra__)

    Enum.reduce(types, extra, fn {field, type}, item ->
      case Map.fetch!(struct, field) do
        nil -> item
        value -> Map.put(item, Atom.to_string(field), encode!(schema, field, type, value))
      end
    end)
  end

  @doc "The struct for an item read from DynamoDB."
  @spec from_item(module(), map()) :: struct()
  def from_item(schema, item) do
    # Scans decode every item through here: one map lookup per attribute, one merge per item.
    decoders = schema.__dynamo__(:decoders)

    {fields, extra} =
      :maps.fold(
        fn name, value, {fields, extra} ->
          case decoders do
            %{^name => {field, type}} -> {[{field, decode(type, value)} | fields], extra}
            %{} -> {fields, Map.put(extra, name, Dynamo.Codec.decode(value))}
          end
        end,
        {[], %{}},
        item
      )

    schema.__struct__()
    |> Map.merge(:maps.from_list(fields))
    |> Map.put(:__extra__, extra)
  end

  @doc false
  # What the native side needs to build the structs of `schema` (native/.../dynamo/structs.rs):
  # each declared attribute's field and type, and the default struct (its keys and the
  # defaults of missing fields). Made once per stream.
  @spec native_plan(module()) :: {[{String.t(), atom(), atom()}], struct()}
  def native_plan(schema) do
    fields = for {name, {field, type}} <- schema.__dynamo__(:decoders), do: {name, field, type}
    {fields, schema.__struct__()}
  end

  @doc false
  # A page's items as the native side built them (native_plan/1): a list of complete structs,
  # handed on as it is, or `{:unfinished, items}` when some items need finish/2.
  @spec finish_items(module(), [struct()] | {:unfinished, list()}) :: [struct()]
  def finish_items(_schema, structs) when is_list(structs), do: structs
  def finish_items(schema, {:unfinished, items}), do: Enum.map(items, &finish(schema, &1))

  @doc false
  # An item as the native side built it (native_plan/1): a complete struct, or
  # `{struct, pending, extra}` when some values have no fast form there: `pending` holds
  # declared fields as tagged values, `extra` undeclared attributes, both finished here.
  @spec finish(module(), struct() | {struct(), list(), list()}) :: struct()
  def finish(_schema, %_{} = struct), do: struct

  def finish(schema, {struct, pending, extra}) do
    types = schema.__dynamo__(:types)

    struct =
      Enum.reduce(pending, struct, fn {field, value}, acc ->
        Map.put(acc, field, decode(Map.fetch!(types, field), value))
      end)

    case extra do
      [] ->
        struct

      extra ->
        decoded = Map.new(extra, fn {n, v} -> {n, Dynamo.Codec.decode(v)} end)
        %{struct | __extra__: Map.merge(struct.__extra__, decoded)}
    end
  end

  @doc false
  # Every public function taking a schema checks it here first, so a module that is not a
  # schema is an ArgumentError naming the function, not an UndefinedFunctionError.
  # function_exported?/3 does not load modules: in interactive mode a schema not called yet
  # would be rejected, so it is loaded first.
  @spec schema!(term(), String.t()) :: module()
  def schema!(schema, function) do
    unless is_atom(schema) and not is_nil(schema) and Code.ensure_loaded?(schema) and
             function_exported?(schema, :__dynamo__, 1) do
      raise ArgumentError,
            "#{function} expects a Dynamo.Schema module, got: #{CloudStreams.Redact.inspect(schema)}"
    end

    schema
  end

  @doc "The key item for `key` (a keyword list or map of the key fields)."
  @spec key_item(module(), keyword() | map()) :: map()
  def key_item(schema, key) when is_list(key) or is_map(key) do
    unless (is_map(key) and not is_struct(key)) or Keyword.keyword?(key) do
      raise ArgumentError,
            "a key of #{inspect(schema)} is a keyword list or map, got: #{inspect(key)}"
    end

    types = schema.__dynamo__(:types)
    key = Map.new(key)
    wanted = key_fields(schema)

    case Map.keys(key) -- wanted do
      [] ->
        :ok

      extra ->
        raise ArgumentError,
              "#{inspect(extra)} are not key fields of #{inspect(schema)} (keys: #{inspect(wanted)})"
    end

    Map.new(wanted, fn field ->
      value =
        Map.get(key, field) ||
          raise ArgumentError, "missing key field #{inspect(field)} for #{inspect(schema)}"

      {Atom.to_string(field), encode!(schema, field, Map.fetch!(types, field), value)}
    end)
  end

  def key_item(schema, key),
    do:
      raise(
        ArgumentError,
        "a key of #{inspect(schema)} is a keyword list or map, got: #{inspect(key)}"
      )

  @doc false
  def key_fields(schema),
    do: Enum.reject([schema.__dynamo__(:partition_key), schema.__dynamo__(:sort_key)], &is_nil/1)

  @doc false
  def encode!(schema, field, type, value) do
    encode_typed(type, value)
  rescue
    e in [ArgumentError, FunctionClauseError] ->
      reraise ArgumentError,
              "field #{inspect(field)} of #{inspect(schema)} (#{inspect(type)}) cannot hold #{inspect(value)}" <>
                if(is_exception(e, ArgumentError), do: ": " <> Exception.message(e), else: ""),
              __STACKTRACE__
  end

  defp encode_typed(:string, v) when is_binary(v) do
    if String.valid?(v), do: {:s, v}, else: raise(ArgumentError, "strings must be valid UTF-8")
  end

  defp encode_typed(:integer, v) when is_integer(v), do: {:n, Integer.to_string(v)}
  defp encode_typed(:float, v) when is_number(v), do: {:n, Float.to_string(v * 1.0)}
  defp encode_typed(:number, v) when is_number(v), do: Dynamo.Codec.encode(v)
  defp encode_typed(:boolean, v) when is_boolean(v), do: {:bool, v}
  defp encode_typed(:binary, v) when is_binary(v), do: {:b, v}
  defp encode_typed(:map, v) when is_map(v), do: Dynamo.Codec.encode(v)
  defp encode_typed(:list, v) when is_list(v), do: Dynamo.Codec.encode(v)

  defp encode_typed(:string_set, v),
    do: {:ss, v |> Enum.to_list() |> non_empty!() |> Enum.map(&utf8!/1)}

  defp encode_typed(:number_set, v),
    do:
      {:ns,
       v
       |> Enum.to_list()
       |> non_empty!()
       |> Enum.map(&(&1 |> number!() |> Dynamo.Codec.encode() |> elem(1)))}

  defp encode_typed(:binary_set, v),
    do: {:bs, v |> Enum.to_list() |> non_empty!() |> Enum.map(&string!/1)}

  defp encode_typed(:datetime, %DateTime{} = v), do: {:s, DateTime.to_iso8601(v)}
  defp encode_typed(:any, v), do: Dynamo.Codec.encode(v)

  defp non_empty!([]), do: raise(ArgumentError, "DynamoDB cannot store an empty set")
  defp non_empty!(list), do: list
  defp string!(v) when is_binary(v), do: v

  defp utf8!(v) when is_binary(v),
    do: if(String.valid?(v), do: v, else: raise(ArgumentError, "strings must be valid UTF-8"))

  defp number!(v) when is_number(v), do: v

  defp decode(:string, {:s, v}), do: v
  defp decode(:integer, {:n, v}), do: Dynamo.Codec.number(v)
  # Parsed from the digits: converting a big integer to a float is not correctly rounded in
  # Erlang, and DynamoDB returns 2.4e19 as "24000000000000000000".
  defp decode(:float, {:n, v}) do
    {float, ""} = Float.parse(v)
    float
  end

  defp decode(:datetime, {:s, v}) do
    case DateTime.from_iso8601(v) do
      {:ok, at, _offset} -> at
      {:error, _} -> v
    end
  end

  defp decode(_type, value), do: Dynamo.Codec.decode(value)
end
