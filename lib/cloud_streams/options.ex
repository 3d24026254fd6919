defmodule CloudStreams.Options do
  @moduledoc false
  # Validates keyword options up front, the way Req does: an unknown option or a bad value is
  # an ArgumentError that names the option, the function and what was expected.
  #
  # A schema is a keyword list of `name: {type, default}`; `default: :required` makes the option
  # mandatory. Types: :pos_integer, :non_neg_integer, :pos_number, :timeout, :boolean, :string, :atom,
  # {:in, values}, {:or_nil, type}, {:fun, arity}, :any.

  @spec validate!(term(), keyword(), String.t()) :: map()
  def validate!(opts, schema, function) do
    unless Keyword.keyword?(opts) do
      raise ArgumentError, "#{function} expects a keyword list of options, got: #{inspect(opts)}"
    end

    known = Keyword.keys(schema)

    case Enum.find(Keyword.keys(opts), &(&1 not in known)) do
      nil ->
        :ok

      unknown ->
        raise ArgumentError,
              "unknown option #{inspect(unknown)} for #{function}; " <>
                "known options: #{Enum.map_join(known, ", ", &inspect/1)}"
    end

    Map.new(schema, fn {name, {type, default}} ->
      case Keyword.fetch(opts, name) do
        {:ok, value} ->
          {name, check!(value, type, name, function)}

        :error when default == :required ->
          raise ArgumentError, "missing required option #{inspect(name)} for #{function}"

        :error ->
          {name, default}
      end
    end)
  end

  # Options whose values are never shown, even when they are wrong.
  @secrets [
    :secret_access_key,
    :session_token,
    :access_key,
    :access_key_id,
    :key,
    :client_secret,
    :service_account_key,
    :bearer_token,
    :sas_token,
    :token,
    :password
  ]

  defp check!(value, type, name, function) do
    if valid?(value, type) do
      value
    else
      shown =
        if name in @secrets, do: "(a value of the wrong type, not shown)", else: inspect(value)

      raise ArgumentError,
            "invalid value for option #{inspect(name)} of #{function}: " <>
              "expected #{describe(type)}, got: #{shown}"
    end
  end

  defp valid?(v, :pos_integer), do: is_integer(v) and v > 0
  defp valid?(v, :non_neg_integer), do: is_integer(v) and v >= 0
  defp valid?(v, :pos_number), do: is_number(v) and v > 0
  defp valid?(v, :timeout), do: v == :infinity or (is_integer(v) and v >= 0)
  defp valid?(v, :boolean), do: is_boolean(v)
  defp valid?(v, :string), do: is_binary(v)
  defp valid?(v, :atom), do: is_atom(v)
  defp valid?(v, {:in, values}), do: v in values
  defp valid?(v, {:or_nil, type}), do: is_nil(v) or valid?(v, type)
  defp valid?(v, {:fun, arity}), do: is_function(v, arity)
  defp valid?(_, :any), do: true

  defp describe(:pos_integer), do: "a positive integer"
  defp describe(:non_neg_integer), do: "a non-negative integer"
  defp describe(:pos_number), do: "a positive number"
  defp describe(:timeout), do: "a non-negative integer (milliseconds) or :infinity"
  defp describe(:boolean), do: "a boolean"
  defp describe(:string), do: "a string"
  defp describe(:atom), do: "an atom"
  defp describe({:in, values}), do: "one of #{Enum.map_join(values, ", ", &inspect/1)}"
  defp describe({:or_nil, type}), do: "nil or #{describe(type)}"
  defp describe({:fun, arity}), do: "a function of arity #{arity}"
  defp describe(:any), do: "any term"
end
