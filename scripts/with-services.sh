#!/usr/bin/env bash
# Runs a command with a private Redis and a private local DynamoDB/STS server (moto) on free loopback ports,
# then stops both, whatever the command's outcome. The command sees:
#   JITGATE_TEST_REDIS_URL    redis://127.0.0.1:PORT
#   JITGATE_TEST_REDIS_CLUSTER_URL  the seed list of a Redis Cluster (3 masters, 1 replica each) shared by the
#                             cluster tests that do not fail it over (scripts/redis-cluster.sh)
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

# Stops a process and waits (up to 10 s, then SIGKILL) until it is gone, so it no longer writes into RUN_DIR.
# redis-server daemonizes, so it is not our child and `wait` cannot be used for it.
stop_and_wait() { # pid
  kill "$1" 2>/dev/null || return 0
  for _ in $(seq 1 200); do
    kill -0 "$1" 2>/dev/null || return 0
    sleep 0.05
  done
  kill -9 "$1" 2>/dev/null || true
}

# Runs on exit whatever happened, and never changes the command's exit status: a clean-up problem is only reported.
cleanup() {
  local status=$?
  set +e
  [ -f "$RUN_DIR/redis.pid" ] && stop_and_wait "$(cat "$RUN_DIR/redis.pid")"
  [ -n "${MOTO_PID:-}" ] && stop_and_wait "$MOTO_PID"
  [ -d "$RUN_DIR/cluster" ] && "$(dirname "$0")/redis-cluster.sh" stop "$RUN_DIR/cluster"
  rm -rf "$RUN_DIR" 2>/dev/null || echo "note: could not remove $RUN_DIR; leaving it" >&2
  exit "$status"
}
trap cleanup EXIT

REDIS_PORT="$(free_port)"
redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no \
  --pidfile "$RUN_DIR/redis.pid" --logfile "$RUN_DIR/redis.log" --dir "$RUN_DIR"
wait_for_port "$REDIS_PORT" redis-server "$RUN_DIR/redis.log"

mkdir "$RUN_DIR/cluster"
JITGATE_TEST_REDIS_CLUSTER_URL="$("$(dirname "$0")/redis-cluster.sh" start "$RUN_DIR/cluster")"

MOTO_PORT="$(free_port)"
# One request at a time, as DynamoDB's transactions need (see scripts/moto-serial.py).
"$VENV/bin/python" "$(dirname "$0")/moto-serial.py" "$MOTO_PORT" >"$RUN_DIR/moto.log" 2>&1 &
MOTO_PID=$!
wait_for_port "$MOTO_PORT" moto_server "$RUN_DIR/moto.log"

export JITGATE_TEST_REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
export JITGATE_TEST_REDIS_CLUSTER_URL
export JITGATE_TEST_AWS_ENDPOINT="http://127.0.0.1:$MOTO_PORT"
export JITGATE_MOTO_SERVER="$VENV/bin/moto_server"
export PATH="$VENV/bin:$PATH"
export AWS_EC2_METADATA_DISABLED=true

"$@"
