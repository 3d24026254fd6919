#!/usr/bin/env bash
# Installs the Python peers `make bench` measures next to raw Rust and cloud_streams: obstore
# (Python over the same object_store crate) and boto3, pinned, in a virtualenv of their own
# beside the test bed's (the emulators' environment is left as it is). Idempotent.
# Prints the virtualenv's python on its last line.
set -euo pipefail
source "$(dirname "$0")/../scripts/versions.sh"
OBSTORE_VERSION=0.12.1
BOTO3_VERSION=1.44.8
PEERS_VENV=$CLOUD_STREAMS_CACHE/venv-bench-peers-obstore-$OBSTORE_VERSION-boto3-$BOTO3_VERSION

if ! "$PEERS_VENV/bin/python" -c 'import obstore, boto3' 2>/dev/null; then
  echo "[bench] installing obstore==$OBSTORE_VERSION and boto3==$BOTO3_VERSION" >&2
  rm -rf "$PEERS_VENV"
  mkdir -p "$CLOUD_STREAMS_CACHE"
  python3 -m venv "$PEERS_VENV"
  "$PEERS_VENV/bin/pip" install -q --disable-pip-version-check \
    "obstore==$OBSTORE_VERSION" "boto3==$BOTO3_VERSION" >&2
fi
echo "$PEERS_VENV/bin/python"
