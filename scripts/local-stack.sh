#!/usr/bin/env bash
# The local stack behind `make demo` and `make dev`: a private Redis and local DynamoDB/STS server (started and
# stopped by scripts/with-services.sh), the demo Orders table created and seeded in it (`jitgate seed-demo`), then
#   demo [ARGS…]  the jitgate-demo program: the real `jitgate run` against the Slack and PagerDuty emulators, playing
#                 a request → approval → results story (ARGS go to it, e.g. --keep-running)
#   dev           `jitgate run` connected to your own Slack workspace, with the tokens and ids from .env
#                 (see .env.example); Ctrl-C stops it and the services.
# Everything it starts is stopped when it ends, however it ends.
set -euo pipefail
cd "$(dirname "$0")/.."

MODE="${1:-}"
case "$MODE" in
  demo | dev) ;;
  *) echo "usage: $0 demo [jitgate-demo args…] | dev" >&2; exit 2 ;;
esac

# dev: settings from .env, checked before anything starts. The config is jitgate.dev.toml plus what only your
# workspace knows.
if [ "$MODE" = dev ]; then
  if [ ! -f .env ]; then
    echo "make dev needs a .env file with your Slack app's tokens: cp .env.example .env, then fill it in" \
      "(each variable says where its value comes from)." >&2
    exit 2
  fi
  set -a
  # shellcheck disable=SC1091
  . ./.env
  set +a
  CHANNEL="${JITGATE_DEV_APPROVAL_CHANNEL:-}"
  APPROVERS="${JITGATE_DEV_APPROVERS:-}"
  PORT="${JITGATE_DEV_HTTP_PORT:-8080}"
  if ! [[ "$CHANNEL" =~ ^[CG][A-Z0-9]{2,}$ ]]; then
    echo ".env: JITGATE_DEV_APPROVAL_CHANNEL must be the id (C… or G…) of the channel for approval cards, not" \
      "'${CHANNEL}' (channel details → About, at the bottom)" >&2
    exit 2
  fi
  ROSTER=""
  if [ -n "$APPROVERS" ]; then
    IFS=', ' read -r -a IDS <<<"$APPROVERS"
    for id in "${IDS[@]}"; do
      [ -z "$id" ] && continue
      if ! [[ "$id" =~ ^[UW][A-Z0-9]{2,}$ ]]; then
        echo ".env: JITGATE_DEV_APPROVERS holds '$id', which is not a Slack user id (U…; profile → ⋮ → Copy member ID)" >&2
        exit 2
      fi
      ROSTER="${ROSTER:+$ROSTER, }\"$id\""
    done
  elif [ -z "${PAGERDUTY_API_TOKEN:-}" ]; then
    echo ".env: set JITGATE_DEV_APPROVERS (who may approve) or PAGERDUTY_API_TOKEN; see .env.example" >&2
    exit 2
  fi
  if ! [[ "$PORT" =~ ^[0-9]+$ ]]; then
    echo ".env: JITGATE_DEV_HTTP_PORT must be a port number, not '$PORT'" >&2
    exit 2
  fi
fi

# First pass: build (before the services start, so they do not wait on the compiler), then start the services
# and run this script again under them.
if [ -z "${JITGATE_TEST_REDIS_URL:-}" ]; then
  cargo build --quiet --workspace --bins
  exec scripts/with-services.sh "$0" "$@"
fi
shift
# The binaries just built, in cargo's target folder (wherever CARGO_TARGET_DIR or a cargo config puts it).
BIN="$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')/debug"

# jitgate and seed-demo find Redis and DynamoDB/STS through the standard variables. The local server takes any
# credentials; nothing from ~/.aws or the caller's environment may point them at a real account.
unset AWS_PROFILE AWS_SESSION_TOKEN AWS_ENDPOINT_URL_DYNAMODB AWS_ENDPOINT_URL_STS AWS_IGNORE_CONFIGURED_ENDPOINT_URLS
export REDIS_URL="$JITGATE_TEST_REDIS_URL"
export AWS_ENDPOINT_URL="$JITGATE_TEST_AWS_ENDPOINT"
export AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=AKIAJITGATELOCAL0001 AWS_SECRET_ACCESS_KEY=local-stack-secret
export AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null

"$BIN/jitgate" --config jitgate.example.toml seed-demo

if [ "$MODE" = demo ]; then
  "$BIN/jitgate-demo" --jitgate "$BIN/jitgate" "$@"
  exit
fi

CONFIG_DIR="$(mktemp -d -t jitgate-dev.XXXXXX)"
trap 'rm -rf "$CONFIG_DIR"' EXIT
# The config's runbook folder is relative to the config file.
ln -s "$PWD/runbooks" "$CONFIG_DIR/runbooks"
{
  cat jitgate.dev.toml
  printf '\n# From .env\n[slack]\napproval_channel = "%s"\n\n' "$CHANNEL"
  printf '[http]\npublic_url = "http://127.0.0.1:%s"\nlisten = "127.0.0.1:%s"\n' "$PORT" "$PORT"
  if [ -n "$ROSTER" ]; then printf '\n[oncall.static_roster]\nPORDERS1 = [%s]\n' "$ROSTER"; fi
} >"$CONFIG_DIR/jitgate.toml"

"$BIN/jitgate" --config "$CONFIG_DIR/jitgate.toml" check --secrets
echo "jitgate dev: Redis $REDIS_URL, local DynamoDB/STS $AWS_ENDPOINT_URL, audit pages on http://127.0.0.1:$PORT."
echo "Type /jit help in Slack; Ctrl-C stops jitgate, Redis and DynamoDB/STS."
"$BIN/jitgate" --config "$CONFIG_DIR/jitgate.toml" run
