#!/usr/bin/env bash
# Starts and stops the test bed on 127.0.0.1: DynamoDB Local, moto (S3) and Azurite.
#
#   scripts/servers.sh start    start what is not running, wait until each answers,
#                               create the S3 bucket and the Azure container
#   scripts/servers.sh stop     stop what `start` started
#   scripts/servers.sh env      print the environment the tests read (eval it)
#
# Ports come from CLOUD_STREAMS_{DYNAMODB,S3,AZURE}_PORT (defaults 47100, 47101, 47102).
# Run scripts/setup.sh first. scripts/with_servers.sh wraps a command with start and stop.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/scripts/versions.sh"

RUN_DIR=${CLOUD_STREAMS_RUN_DIR:-$ROOT/.servers}
DYNAMODB_PORT=${CLOUD_STREAMS_DYNAMODB_PORT:-47100}
S3_PORT=${CLOUD_STREAMS_S3_PORT:-47101}
AZURE_PORT=${CLOUD_STREAMS_AZURE_PORT:-47102}
BUCKET=cloud-streams-test
CONTAINER=cloud-streams-test
# Azurite's well-known development account and key (public, documented by Microsoft).
AZURE_ACCOUNT=devstoreaccount1
AZURE_KEY='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='

log() { printf '[servers] %s\n' "$*" >&2; }

print_env() {
  cat <<ENV
export CLOUD_STREAMS_DYNAMODB_ENDPOINT=http://127.0.0.1:$DYNAMODB_PORT
export CLOUD_STREAMS_S3_ENDPOINT=http://127.0.0.1:$S3_PORT
export CLOUD_STREAMS_S3_BUCKET=$BUCKET
export CLOUD_STREAMS_AZURE_ENDPOINT=http://127.0.0.1:$AZURE_PORT/$AZURE_ACCOUNT
export CLOUD_STREAMS_AZURE_ACCOUNT=$AZURE_ACCOUNT
export CLOUD_STREAMS_AZURE_KEY='$AZURE_KEY'
export CLOUD_STREAMS_AZURE_CONTAINER=$CONTAINER
export AWS_ACCESS_KEY_ID=cloudstreamstest
export AWS_SECRET_ACCESS_KEY=cloudstreamstest
export AWS_REGION=us-east-1
export AWS_DEFAULT_REGION=us-east-1
ENV
}

http_code() { curl -s -o /dev/null -m 2 -w '%{http_code}' "$@" || true; }

# Each check succeeds only when the server answers its own protocol.
dynamodb_up() {
  [ "$(http_code -X POST "http://127.0.0.1:$DYNAMODB_PORT/" \
    -H 'Content-Type: application/x-amz-json-1.0' \
    -H 'X-Amz-Target: DynamoDB_20120810.ListTables' \
    -H 'Authorization: AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0' \
    -d '{}')" = 200 ]
}
s3_up() { [ "$(http_code "http://127.0.0.1:$S3_PORT/")" = 200 ]; }
azure_up() {
  local code
  code=$(http_code "http://127.0.0.1:$AZURE_PORT/$AZURE_ACCOUNT?comp=list")
  [ "$code" != 000 ] && [ -n "$code" ]
}

pid_alive() { [ -f "$RUN_DIR/$1.pid" ] && kill -0 "$(cat "$RUN_DIR/$1.pid")" 2>/dev/null; }

# start_one NAME CHECK COMMAND...: start COMMAND unless CHECK passes, then wait for CHECK.
start_one() {
  local name=$1 check=$2
  shift 2
  if $check; then
    pid_alive "$name" || log "$name already answers on its port (not started by this checkout)"
    return 0
  fi
  log "starting $name"
  nohup "$@" >"$RUN_DIR/$name.log" 2>&1 </dev/null &
  echo $! >"$RUN_DIR/$name.pid"
  local deadline=$((SECONDS + 90))
  until $check; do
    if ! pid_alive "$name"; then
      log "$name exited while starting; its log:"
      tail -n 30 "$RUN_DIR/$name.log" >&2
      return 1
    fi
    if [ $SECONDS -ge $deadline ]; then
      log "$name did not answer within 90 s; its log:"
      tail -n 30 "$RUN_DIR/$name.log" >&2
      return 1
    fi
    sleep 0.3
  done
}

start() {
  mkdir -p "$RUN_DIR"
  [ -f "$DYNAMODB_LOCAL_DIR/DynamoDBLocal.jar" ] || { log "run scripts/setup.sh first"; exit 1; }

  (cd "$DYNAMODB_LOCAL_DIR" && start_one dynamodb dynamodb_up \
    java -Xmx2g -Djava.library.path=DynamoDBLocal_lib -jar DynamoDBLocal.jar \
    -inMemory -port "$DYNAMODB_PORT")
  start_one s3 s3_up "$PY_VENV/bin/moto_server" -H 127.0.0.1 -p "$S3_PORT"
  start_one azurite azure_up "$AZURITE_DIR/node_modules/.bin/azurite-blob" \
    --blobHost 127.0.0.1 --blobPort "$AZURE_PORT" --inMemoryPersistence \
    --skipApiVersionCheck --loose --silent

  # The bucket and the container the tests use. Creating them again is harmless.
  curl -s -o /dev/null -m 5 -X PUT "http://127.0.0.1:$S3_PORT/$BUCKET"
  "$PY_VENV/bin/python" - "$AZURE_PORT" "$AZURE_ACCOUNT" "$AZURE_KEY" "$CONTAINER" <<'PY'
import sys
from azure.core.exceptions import ResourceExistsError
from azure.storage.blob import BlobServiceClient
port, account, key, container = sys.argv[1:]
url = f"http://127.0.0.1:{port}/{account}"
client = BlobServiceClient(account_url=url, credential={"account_name": account, "account_key": key})
try:
    client.create_container(container)
except ResourceExistsError:
    pass
PY
  # epmd, for the distribution tests (peer nodes), bound to loopback. One already running is
  # left alone; one we start is stopped by `stop`.
  if ! epmd -names >/dev/null 2>&1; then
    epmd -daemon -address 127.0.0.1 && touch "$RUN_DIR/epmd.ours"
  fi
  log "up: DynamoDB Local :$DYNAMODB_PORT, S3 (moto) :$S3_PORT, Azurite :$AZURE_PORT"
}

stop_one() {
  local name=$1 pid
  [ -f "$RUN_DIR/$name.pid" ] || return 0
  pid=$(cat "$RUN_DIR/$name.pid")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$RUN_DIR/$name.pid"
}

stop() {
  for name in dynamodb s3 azurite; do stop_one "$name"; done
  if [ -f "$RUN_DIR/epmd.ours" ]; then
    epmd -kill >/dev/null 2>&1 || true
    rm -f "$RUN_DIR/epmd.ours"
  fi
  log "stopped"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  env) print_env ;;
  *) echo "usage: $0 start|stop|env" >&2; exit 2 ;;
esac
