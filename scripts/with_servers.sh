#!/usr/bin/env bash
# Runs a command with the test bed up and its environment set, and stops the servers when the
# command ends, however it ends.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
trap '"$here/servers.sh" stop' EXIT
trap 'exit 130' INT TERM
"$here/servers.sh" start
eval "$("$here/servers.sh" env)"
"$@"
