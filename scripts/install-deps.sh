#!/usr/bin/env bash
# Installs what jitgate's tests and local stack need on a Debian/Ubuntu machine with Rust:
# redis-server and chromium (Debian packages; chromium renders the audit page headless in tests/http.rs) and, in a
# Python venv, the local DynamoDB/STS server (moto) and the IAM policy linter (parliament). Idempotent: a second
# run only checks.
set -euo pipefail

TOOLS_DIR="${JITGATE_TOOLS_DIR:-$HOME/.cache/jitgate-tools}"
MOTO_VERSION="5.2.5"
PARLIAMENT_VERSION="1.6.4"

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v redis-server >/dev/null 2>&1; then
  echo "installing redis-server…"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
fi

if [ ! -x /usr/bin/chromium ]; then
  echo "installing chromium…"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

# Installed versions, read by the venv's Python (pip itself takes a second or more to start).
versions() { "$TOOLS_DIR/venv/bin/python" -c 'import importlib.metadata as m
for name in ("moto", "parliament"):
    try: print(name, m.version(name))
    except m.PackageNotFoundError: print(name, "missing")' 2>/dev/null || true; }
if [ ! -x "$TOOLS_DIR/venv/bin/moto_server" ] || [ "$(versions)" != "$(printf 'moto %s\nparliament %s' "$MOTO_VERSION" "$PARLIAMENT_VERSION")" ]; then
  echo "installing moto $MOTO_VERSION and parliament into $TOOLS_DIR/venv…"
  mkdir -p "$TOOLS_DIR"
  python3 -m venv "$TOOLS_DIR/venv"
  "$TOOLS_DIR/venv/bin/pip" install -q --disable-pip-version-check \
    "moto[dynamodb]==$MOTO_VERSION" flask flask-cors "parliament==$PARLIAMENT_VERSION"
fi

echo "redis: $(redis-server --version | awk '{print $3}')  $(versions | awk '{printf "%s: %s  ", $1, $2}')"
