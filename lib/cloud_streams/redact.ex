defmodule CloudStreams.Redact do
  @moduledoc false
  # The one place secrets are hidden before a value is shown: in ArgumentError messages, in
  # error structs built from native errors and in `inspect` of stores. Values of secret
  # options (keys, tokens, passwords) become "**redacted**", at any depth of keyword lists,
  # maps and tuples; URLs lose the password of their user info and the values of signature
  # and token query parameters.

  @redacted "**redacted**"

  @secret_names ~w(secret_access_key session_token access_key access_key_id key client_secret
                   service_account_key bearer_token sas_token token password secret
                   aws_secret_access_key aws_session_token aws_access_key_id
                   azure_storage_account_key azure_storage_sas_key azure_storage_token
                   azure_storage_access_key google_service_account_key google_bearer_token
                   proxy_url credentials authorization config)

  @secret_query ~w(sig signature x-amz-signature x-amz-security-token x-amz-credential
                   x-goog-signature x-goog-credential token access_token sas password secret key)

  @doc false
  # True for option names whose values are never shown.
  @spec secret?(term()) :: boolean()
  def secret?(name) when is_atom(name) and not is_nil(name), do: secret?(Atom.to_string(name))
  def secret?(name) when is_binary(name), do: String.downcase(name) in @secret_names
  def secret?(_name), do: false

  @doc false
  @spec inspect(term()) :: String.t()
  def inspect(term), do: Kernel.inspect(redact(term), limit: 50, printable_limit: 200)

  @doc false
  # `term` with every secret replaced, for showing.
  @spec redact(term()) :: term()
  def redact(term) when is_binary(term), do: text(term)

  def redact(term) when is_list(term) do
    if Enum.all?(term, &match?({_, _}, &1)),
      do: Enum.map(term, &pair/1),
      else: Enum.map(term, &redact/1)
  rescue
    # An improper list: not walked, so not shown.
    _ -> @redacted
  end

  def redact(%_{} = struct), do: struct

  def redact(term) when is_map(term), do: Map.new(term, &pair/1)
  def redact({key, value}), do: pair({key, value})

  def redact(term) when is_tuple(term),
    do: term |> Tuple.to_list() |> Enum.map(&redact/1) |> List.to_tuple()

  def redact(term), do: term

  defp pair({key, value}) do
    if secret?(key), do: {key, @redacted}, else: {key, redact(value)}
  end

  @doc false
  # A message or URL with the passwords of URLs and secret query values replaced.
  @spec text(String.t()) :: String.t()
  def text(string) when is_binary(string) do
    if String.valid?(string) do
      string
      |> String.replace(~r{(://[^/\s:@]*):[^/\s@]*@}, "\\1:#{@redacted}@")
      |> String.replace(~r{([?&;])([^=&\s]+)=([^&\s"']*)}, fn whole ->
        [_, sep, name, _value] = Regex.run(~r{^([?&;])([^=&\s]+)=(.*)$}s, whole)

        if String.downcase(name) in @secret_query,
          do: "#{sep}#{name}=#{@redacted}",
          else: whole
      end)
    else
      string
    end
  end
end
