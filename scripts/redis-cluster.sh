#!/usr/bin/env bash
# A local Redis Cluster of 3 masters with 1 replica each, on free loopback ports, for the tests.
#   scripts/redis-cluster.sh start DIR   starts it with its files in DIR (which must exist) and prints the seed list
#                                        (redis://127.0.0.1:P1,…,redis://127.0.0.1:P6) once every node reports
#                                        cluster_state:ok and every replica is in sync with its master
#   scripts/redis-cluster.sh stop DIR    stops every node started in DIR and waits until each is gone
# Nodes time out after 1 s (cluster-node-timeout), so a killed master is replaced within a few seconds.
# Every wait is a bounded poll (about 30 s), never a fixed sleep.
set -euo pipefail

# A free port whose cluster bus port (port + 10000) is free too and still a valid port.
free_port() {
  python3 - <<'PY'
import random, socket
for _ in range(1000):
    port = random.randint(20000, 55000)
    socks = []
    try:
        for p in (port, port + 10000):
            s = socket.socket(); socks.append(s); s.bind(("127.0.0.1", p))
    except OSError:
        continue
    finally:
        for s in socks: s.close()
    print(port); break
PY
}

# Polls `cmd…` every 50 ms until it succeeds, for at most 30 s; then prints `what` and fails.
poll() { # what, cmd…
  local what="$1"; shift
  for _ in $(seq 1 600); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.05
  done
  echo "redis-cluster: $what did not happen within 30 s" >&2
  return 1
}

state_ok() { redis-cli -p "$1" cluster info | grep -q '^cluster_state:ok'; }
# A replica counts once its link to the master is up and the initial sync is done; a master always counts.
in_sync() {
  local info; info="$(redis-cli -p "$1" info replication)"
  grep -q '^role:master' <<<"$info" || grep -q '^master_link_status:up' <<<"$info"
}
# Every node must know all 6 nodes (gossip reaches them a moment after `--cluster create`).
knows_all() { [ "$(redis-cli -p "$1" cluster nodes | grep -c -v fail)" -ge 6 ]; }

start() {
  local dir="$1" ports=() port
  for _ in 1 2 3 4 5 6; do
    port="$(free_port)"
    # Two picks in one run may coincide; pick again.
    while [[ " ${ports[*]} " == *" $port "* ]]; do port="$(free_port)"; done
    ports+=("$port")
    redis-server --daemonize yes --bind 127.0.0.1 --port "$port" --save "" --appendonly no \
      --cluster-enabled yes --cluster-config-file "$dir/nodes-$port.conf" --cluster-node-timeout 1000 \
      --pidfile "$dir/redis-$port.pid" --logfile "$dir/redis-$port.log" --dir "$dir"
  done
  for port in "${ports[@]}"; do
    poll "redis-server on port $port answering" redis-cli -p "$port" ping
  done
  local nodes=()
  for port in "${ports[@]}"; do nodes+=("127.0.0.1:$port"); done
  redis-cli --cluster create "${nodes[@]}" --cluster-replicas 1 --cluster-yes >"$dir/create.log" 2>&1 \
    || { echo "redis-cluster: --cluster create failed:" >&2; cat "$dir/create.log" >&2; return 1; }
  for port in "${ports[@]}"; do
    poll "cluster_state:ok on port $port" state_ok "$port"
    poll "port $port seeing all 6 nodes" knows_all "$port"
    poll "port $port in sync with its master" in_sync "$port"
  done
  local urls=()
  for port in "${ports[@]}"; do urls+=("redis://127.0.0.1:$port"); done
  (IFS=,; echo "${urls[*]}")
}

stop() {
  local dir="$1" pidfile pid
  for pidfile in "$dir"/redis-*.pid; do
    [ -f "$pidfile" ] || continue
    pid="$(cat "$pidfile")"
    kill "$pid" 2>/dev/null || continue
    for _ in $(seq 1 200); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.05
    done
    kill -9 "$pid" 2>/dev/null || true
  done
}

case "${1:-}" in
  start) start "$2" ;;
  stop) stop "$2" ;;
  *) echo "usage: $0 start|stop DIR" >&2; exit 2 ;;
esac
