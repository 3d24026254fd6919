defmodule CloudStreams.Synthetic do
  @moduledoc """
  A byte stream produced inside the NIF with no network: `chunks` chunks of `chunk_size`
  bytes, optionally slow, failing or panicking. It exercises the pull-stream core in tests, in
  `make bench` and in `make demo`.

  Chunk `i` is filled with the byte `pattern_byte(i)`, so a consumer can check order and
  content cheaply.

      iex> CloudStreams.Synthetic.stream(chunks: 2, chunk_size: 3) |> Enum.to_list()
      [<<0, 0, 0>>, <<1, 1, 1>>]
  """

  alias CloudStreams.{Native, Options, PullStream}

  # Chunks are allocated whole (1 GiB at most); counts are u64 on the native side.
  @max_count 2 ** 63 - 1
  @schema [
    chunks: [type: {:in, 0..@max_count}, required: true, doc: "how many chunks."],
    chunk_size: [
      type: {:in, 1..1_073_741_824},
      default: 1_048_576,
      doc: "bytes per chunk (each is allocated whole)."
    ],
    delay: [
      type: {:in, 0..CloudStreams.Options.max_timeout()},
      default: 0,
      doc: "milliseconds to wait before producing each chunk."
    ],
    fail_after: [
      type: {:or_nil, {:in, 0..@max_count}},
      doc: "fail with a `:network` error after this many chunks."
    ],
    panic_after: [
      type: {:or_nil, {:in, 0..@max_count}},
      doc:
        "panic inside the native task after this many chunks; the stream raises an " <>
          "`:internal` error and the VM lives."
    ],
    prefetch_bytes: [
      type: {:in, 1..1_099_511_627_776},
      default: 8 * 1_048_576,
      doc: "bytes buffered ahead of the consumer (one chunk always fits)."
    ],
    prefetch: [type: {:in, 1..1_099_511_627_776}, deprecated: "use :prefetch_bytes"],
    timeout: [type: :timeout, default: 30_000, doc: "the longest wait for one chunk, in ms."]
  ]

  @doc """
  A lazy stream of synthetic chunks.

  Options:

  #{Options.docs(@schema)}

  Raises `ArgumentError` naming a bad option; the stream raises `CloudStreams.Error`.

      iex> CloudStreams.Synthetic.stream(chunks: 3, chunk_size: 1000) |> Enum.map(&byte_size/1)
      [1000, 1000, 1000]
  """
  @spec stream(keyword()) :: Enumerable.t()
  def stream(opts) do
    opts = Options.validate!(opts, @schema, "CloudStreams.Synthetic.stream/1")

    native_opts = %{
      chunks: opts.chunks,
      chunk_size: opts.chunk_size,
      delay_ms: opts.delay,
      fail_after: opts.fail_after,
      panic_after: opts.panic_after,
      prefetch: opts.prefetch || opts.prefetch_bytes
    }

    PullStream.new(fn -> Native.synthetic_stream(native_opts) end, timeout: opts.timeout)
  end

  @doc """
  The byte chunk `index` is filled with.

      iex> CloudStreams.Synthetic.pattern_byte(300)
      49
  """
  @spec pattern_byte(non_neg_integer()) :: byte()
  def pattern_byte(index) when is_integer(index) and index >= 0, do: rem(index, 251)
end
