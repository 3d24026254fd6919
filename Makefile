# The two commands a fresh machine needs: `make demo` and `make test` (README.md).
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

.PHONY: setup test lint rust-test elixir-test demo bench

# These targets test the sources of this checkout: never a downloaded precompiled NIF.
export CLOUD_STREAMS_BUILD := 1

setup:
	scripts/setup.sh

lint:
	cargo fmt --all --check
	cargo clippy --workspace --all-targets --release -- -D warnings
	mix format --check-formatted

rust-test:
	cargo test --release -p cloud_streams_core

elixir-test:
	MIX_ENV=test mix compile --warnings-as-errors
	CLOUD_STREAMS_REQUIRE_SERVERS=1 scripts/with_servers.sh mix test

test: setup lint rust-test elixir-test

demo: setup
	mix compile
	scripts/with_servers.sh mix run demo/tour.exs

bench: setup
	mix compile
	cargo build --release -p cloud_streams_core --examples
	bench/setup_peers.sh >/dev/null && scripts/with_servers.sh mix run bench/run.exs
