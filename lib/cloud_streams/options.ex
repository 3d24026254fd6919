defmodule CloudStreams.Options do
  @moduledoc false
  # Validates keyword options up front, the way Req does: an unknown option or a bad value is
  # an ArgumentError that names the option, the function and what was expected.
  #
  # A schema is a keyword list of option specs in the shape of NimbleOptions:
  #
  #     [chunk_size: [type: {:in, 1..1_073_741_824}, default: 1_048_576, doc: "bytes per chunk"]]
  #
  # with `type:`, `default:`, `required:`, `doc:`, `keys:` (the schema of a nested keyword
  # list, validated into a map) and `deprecated:` (a message; the option still works and logs
  # a warning). The older `name: {type, default}` form (`default: :required` for a required
  # option) is still read. Types: :pos_integer, :non_neg_integer, {:in, first..last} (bounded
  # integers), {:in, values}, {:number, min, max}, :timeout (ms up to 2^32-1, what `receive`
  # takes, or :infinity), :boolean, :string (valid UTF-8, as the native side decodes it),
  # :atom, {:or_nil, type}, {:fun, arity}, :keyword_list, {:list, type}, :map, :any, and
  # {:custom, module, fun, args} (`apply(module, fun, [value | args])` returns `{:ok, value}`,
  # possibly normalised, or `{:error, what_was_expected}`).

  alias CloudStreams.Redact

  # The longest wait `receive ... after` accepts, in milliseconds.
  @max_timeout 4_294_967_295

  @doc false
  def max_timeout, do: @max_timeout

  @spec validate!(term(), keyword(), String.t()) :: map()
  def validate!(opts, schema, function) do
    unless Keyword.keyword?(opts) do
      raise ArgumentError,
            "#{function} expects a keyword list of options, got: #{Redact.inspect(opts)}"
    end

    specs = Map.new(schema, fn {name, spec} -> {name, normalize(spec)} end)
    known = Keyword.keys(schema)

    case Enum.find(Keyword.keys(opts), &(not Map.has_key?(specs, &1))) do
      nil -> :ok
      unknown -> raise ArgumentError, unknown_message(unknown, known, function)
    end

    Map.new(known, fn name ->
      spec = Map.fetch!(specs, name)

      case Keyword.fetch(opts, name) do
        {:ok, value} ->
          if spec[:deprecated], do: warn_deprecated(name, spec[:deprecated], function)
          {name, check!(value, spec, name, function)}

        :error ->
          if spec[:required] do
            raise ArgumentError, "missing required option #{inspect(name)} for #{function}"
          end

          {name, spec[:default]}
      end
    end)
  end

  @doc false
  # The option list for a function's @doc, from its schema: one bullet per documented or
  # deprecated option (options without `doc:` are internal or documented elsewhere).
  @spec docs(keyword()) :: String.t()
  def docs(schema) do
    for {name, spec} <- schema, spec = normalize(spec), spec[:doc] || spec[:deprecated] do
      line =
        if spec[:doc],
          do: "  * `#{inspect(name)}` - #{spec[:doc]}#{bound_doc(spec)}#{default_doc(spec)}",
          else: "  * `#{inspect(name)}` - deprecated: #{spec[:deprecated]}."

      nested = if spec[:keys], do: "\n" <> indent(docs(spec[:keys])), else: ""
      line <> nested
    end
    |> Enum.join("\n")
  end

  defp indent(text), do: text |> String.split("\n") |> Enum.map_join("\n", &("    " <> &1))

  # Every bounded option documents its bounds, whether or not its text says them.
  defp bound_doc(spec) do
    case spec[:type] do
      {:or_nil, type} ->
        bound_doc(type: type, doc: spec[:doc])

      {:in, %Range{first: first, last: last}} ->
        bounds(first, last, spec[:doc])

      {:number, min, max} ->
        bounds(min, max, spec[:doc])

      :timeout ->
        if spec[:doc] =~ "at most", do: "", else: " At most #{thousands(@max_timeout)} ms."

      _ ->
        ""
    end
  end

  defp bounds(min, max, doc) do
    if doc =~ "at most" or doc =~ "from #{min}",
      do: "",
      else: " From #{thousands(min)} to #{thousands(max)}."
  end

  defp thousands(n) when is_integer(n) do
    n
    |> Integer.to_string()
    |> String.reverse()
    |> String.replace(~r/(\d{3})(?=\d)/, "\\1,")
    |> String.reverse()
  end

  defp thousands(n), do: to_string(n)

  defp default_doc(spec) do
    cond do
      spec[:required] -> " Required."
      spec[:default] == nil -> ""
      true -> " Default: `#{inspect(spec[:default], limit: 5)}`."
    end
  end

  defp normalize({type, :required}), do: [type: type, required: true]
  defp normalize({type, default}), do: [type: type, default: default]
  defp normalize(spec) when is_list(spec), do: spec

  defp unknown_message(unknown, known, function) do
    suggestion =
      with true <- is_atom(unknown),
           {best, score} when score >= 0.8 <-
             known
             |> Enum.map(&{&1, String.jaro_distance(to_string(&1), to_string(unknown))})
             |> Enum.max_by(&elem(&1, 1), fn -> {nil, 0} end) do
        "did you mean #{inspect(best)}? "
      else
        _ -> ""
      end

    "unknown option #{Redact.inspect(unknown)} for #{function}; #{suggestion}" <>
      "known options: #{Enum.map_join(known, ", ", &inspect/1)}"
  end

  defp warn_deprecated(name, message, function) do
    IO.warn("option #{inspect(name)} of #{function} is deprecated: #{message}", [])
  end

  defp check!(value, spec, name, function) do
    result =
      if spec[:keys] do
        cond do
          is_nil(value) and match?({:or_nil, _}, spec[:type]) ->
            {:ok, nil}

          Keyword.keyword?(value) ->
            {:ok, validate!(value, spec[:keys], "option #{inspect(name)} of #{function}")}

          true ->
            {:error, describe(spec[:type])}
        end
      else
        cast(value, spec[:type])
      end

    case result do
      {:ok, value} ->
        value

      {:error, expected} ->
        shown =
          if Redact.secret?(name),
            do: "(a value of the wrong type, not shown)",
            else: Redact.inspect(value)

        raise ArgumentError,
              "invalid value for option #{inspect(name)} of #{function}: " <>
                "expected #{expected}, got: #{shown}"
    end
  end

  # `{:ok, value}` (a custom type may normalise it) or `{:error, what_was_expected}`.
  defp cast(nil, {:or_nil, _type}), do: {:ok, nil}

  defp cast(value, {:or_nil, type}) do
    with {:error, expected} <- cast(value, type), do: {:error, "nil or " <> expected}
  end

  defp cast(value, {:custom, module, fun, args}), do: apply(module, fun, [value | args])

  defp cast(value, {:list, type}) when is_list(value), do: cast_list(value, type, [])
  defp cast(_value, {:list, type}), do: {:error, describe({:list, type})}

  defp cast(value, type) do
    if valid?(value, type), do: {:ok, value}, else: {:error, describe(type)}
  end

  defp cast_list([], _type, acc), do: {:ok, Enum.reverse(acc)}

  defp cast_list([value | rest], type, acc) do
    case cast(value, type) do
      {:ok, value} -> cast_list(rest, type, [value | acc])
      {:error, expected} -> {:error, "a list of " <> expected}
    end
  end

  defp cast_list(_improper, type, _acc), do: {:error, describe({:list, type})}

  defp valid?(v, :pos_integer), do: is_integer(v) and v > 0
  defp valid?(v, :non_neg_integer), do: is_integer(v) and v >= 0
  defp valid?(v, {:number, min, max}), do: is_number(v) and v >= min and v <= max
  defp valid?(v, :timeout), do: v == :infinity or (is_integer(v) and v >= 0 and v <= @max_timeout)
  defp valid?(v, :boolean), do: is_boolean(v)
  defp valid?(v, :string), do: is_binary(v) and String.valid?(v)
  defp valid?(v, :atom), do: is_atom(v)
  defp valid?(v, {:in, values}), do: v in values
  defp valid?(v, {:fun, arity}), do: is_function(v, arity)
  defp valid?(v, :keyword_list), do: Keyword.keyword?(v)
  defp valid?(v, :map), do: is_map(v)
  defp valid?(_, :any), do: true

  defp describe(:pos_integer), do: "a positive integer"
  defp describe(:non_neg_integer), do: "a non-negative integer"

  defp describe({:in, %Range{first: first, last: last}}),
    do: "an integer from #{first} to #{last}"

  defp describe({:number, min, max}), do: "a number from #{min} to #{max}"
  defp describe(:timeout), do: "a timeout in ms (0 to #{@max_timeout}) or :infinity"
  defp describe(:boolean), do: "a boolean"
  defp describe(:string), do: "a string (valid UTF-8)"
  defp describe(:atom), do: "an atom"
  defp describe({:in, values}), do: "one of #{Enum.map_join(values, ", ", &inspect/1)}"
  defp describe({:or_nil, type}), do: "nil or #{describe(type)}"
  defp describe({:fun, arity}), do: "a function of arity #{arity}"
  defp describe(:keyword_list), do: "a keyword list"
  defp describe(:map), do: "a map"
  defp describe({:list, type}), do: "a list of #{describe(type)}"

  defp describe({:custom, module, fun, args}) do
    {:error, expected} = apply(module, fun, [make_ref() | args])
    expected
  end

  defp describe(:any), do: "any term"
end
