#!/usr/bin/env bash
# Runs a command with a private Redis and a private local DynamoDB/STS server (moto) on free loopback ports,
# then stops both, whatever the command's outcome. The command sees:
#   JITGATE_TEST_REDIS_URL    redis://127.0.0.1:PORT
#   JITGATE_TEST_AWS_ENDPOINT http://127.0.0.1:PORT (moto serving one request at a time, IAM checks off)
#   JITGATE_MOTO_SERVER       the moto_server program, for tests that need a server of their own
#   PATH                      with the tools venv's bin first (parliament, cfn-lint, kubernetes-validate, hadolint)
set -euo pipefail

TOOLS_DIR="${JITGATE_TOOLS_DIR:-$HOME/.cache/jitgate-tools}"
VENV="$TOOLS_DIR/venv"
RUN_DIR="$(mktemp -d -t jitgate-services.XXXXXX)"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

wait_for_port() { # port, name, log file
  for _ in $(seq 1 300); do
    if python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$1),0.2)" 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "$2 did not open port $1; its log:" >&2; cat "$3" >&2 || true; return 1
}

cleanup() {
  [ -f "$RUN_DIR/redis.pid" ] && kill "$(cat "$RUN_DIR/redis.pid")" 2>/dev/null || true
  [ -n "${MOTO_PID:-}" ] && kill "$MOTO_PID" 2>/dev/null || true
  rm -rf "$RUN_DIR"
}
trap cleanup EXIT

REDIS_PORT="$(free_port)"
redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no \
  --pidfile "$RUN_DIR/redis.pid" --logfile "$RUN_DIR/redis.log" --dir "$RUN_DIR"
wait_for_port "$REDIS_PORT" redis-server "$RUN_DIR/redis.log"

MOTO_PORT="$(free_port)"
# One request at a time, as DynamoDB's transactions need (see scripts/moto-serial.py).
"$VENV/bin/python" "$(dirname "$0")/moto-serial.py" "$MOTO_PORT" >"$RUN_DIR/moto.log" 2>&1 &
MOTO_PID=$!
wait_for_port "$MOTO_PORT" moto_server "$RUN_DIR/moto.log"

export JITGATE_TEST_REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
export JITGATE_TEST_AWS_ENDPOINT="http://127.0.0.1:$MOTO_PORT"
export JITGATE_MOTO_SERVER="$VENV/bin/moto_server"
export PATH="$VENV/bin:$PATH"
export AWS_EC2_METADATA_DISABLED=true

"$@"
