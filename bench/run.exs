# `make bench`: every benchmark, each with its raw-Rust baseline measured in the same run.
Code.require_file("support.exs", __DIR__)
Code.require_file("pull_stream_bench.exs", __DIR__)

Bench.PullStream.run()
