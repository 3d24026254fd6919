#!/usr/bin/env bash
# Installs everything cloud_streams needs on a fresh Debian bookworm machine. Idempotent:
# what is already there is kept, so a second run takes a second.
#
#   - Erlang/OTP and Elixir from Debian (hex is not needed: the project has no hex dependency)
#   - Java (for DynamoDB Local), curl, python3-venv
#   - the emulators, cached in $CLOUD_STREAMS_CACHE (default ~/.cache/cloud_streams):
#       DynamoDB Local, the official jar inside the npm package amplify-dynamodb-simulator
#       moto (S3) and azure-storage-blob (to create the Azurite container), from PyPI
#       Azurite, from npm
set -euo pipefail
source "$(dirname "$0")/versions.sh"

log() { printf '[setup] %s\n' "$*"; }

sudo_if_needed() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# --- Debian packages -------------------------------------------------------------------------
missing=()
command -v erl >/dev/null || missing+=(erlang-nox)
[ -e /usr/lib/erlang/usr/include/erl_nif.h ] || missing+=(erlang-dev)
command -v elixir >/dev/null || missing+=(elixir)
command -v java >/dev/null || missing+=(openjdk-17-jre-headless)
command -v curl >/dev/null || missing+=(curl)
command -v npm >/dev/null || missing+=(npm)
python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  sudo_if_needed apt-get update -qq
  DEBIAN_FRONTEND=noninteractive sudo_if_needed apt-get install -y -qq "${missing[@]}" >/dev/null
fi

command -v cargo >/dev/null || {
  echo "[setup] cargo not found: install Rust (https://rustup.rs) first" >&2
  exit 1
}

mkdir -p "$CLOUD_STREAMS_CACHE"

# --- DynamoDB Local ----------------------------------------------------------------------------
if [ ! -f "$DYNAMODB_LOCAL_DIR/DynamoDBLocal.jar" ]; then
  log "fetching DynamoDB Local (amplify-dynamodb-simulator@$DYNAMODB_SIMULATOR_VERSION)"
  tmp=$(mktemp -d)
  # npm pack + untar: one tarball, instead of the hundreds of packages `npm install` pulls.
  (cd "$tmp" && npm pack --silent "amplify-dynamodb-simulator@$DYNAMODB_SIMULATOR_VERSION" >/dev/null &&
    tar xzf amplify-dynamodb-simulator-*.tgz)
  rm -rf "$DYNAMODB_LOCAL_DIR"
  mkdir -p "$(dirname "$DYNAMODB_LOCAL_DIR")"
  mv "$tmp/package/emulator" "$DYNAMODB_LOCAL_DIR"
  rm -rf "$tmp"
fi

# --- moto (S3) and the Azure SDK, in one virtualenv --------------------------------------------
if [ ! -x "$PY_VENV/bin/moto_server" ] || ! "$PY_VENV/bin/python" -c 'import azure.storage.blob' 2>/dev/null; then
  log "installing moto[server]==$MOTO_VERSION and azure-storage-blob==$AZURE_BLOB_VERSION"
  rm -rf "$PY_VENV"
  python3 -m venv "$PY_VENV"
  "$PY_VENV/bin/pip" install -q --disable-pip-version-check \
    "moto[server]==$MOTO_VERSION" "azure-storage-blob==$AZURE_BLOB_VERSION"
fi

# --- Azurite -----------------------------------------------------------------------------------
if [ ! -x "$AZURITE_DIR/node_modules/.bin/azurite-blob" ]; then
  log "installing azurite@$AZURITE_VERSION"
  rm -rf "$AZURITE_DIR"
  mkdir -p "$AZURITE_DIR"
  npm install --silent --no-audit --no-fund --prefix "$AZURITE_DIR" "azurite@$AZURITE_VERSION" >/dev/null
fi

log "ready: $(erl -noshell -eval 'io:format("OTP ~s", [erlang:system_info(otp_release)]), halt().'), $(elixir --version | tail -1), $(cargo --version)"
