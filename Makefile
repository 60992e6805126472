# The commands a newcomer needs. See README.md.
.PHONY: test deps deps-demo check demo dev self-contained

# Everything the tests need (Redis, moto, Chromium, the deployment validators); deps-demo only the local stack's.
deps:
	scripts/install-deps.sh test

deps-demo:
	scripts/install-deps.sh demo

# A clone on its own must build and pass: no tracked file may refer to a path outside the repository.
self-contained:
	scripts/check-self-contained.py

# The whole test suite, exactly as CI runs it: the dependency policy (deny.toml), formatting, lints, then every test against a private
# Redis and local DynamoDB/STS server. `--tests --bench latency` rather than `--all-targets`: the same targets, except
# that those with `test = false` (jitgate's thin main.rs, the test kit) get no test binary of their own to link; the
# latency benchmark is built (so it keeps compiling) but not run. The load and memory benchmarks (benches/load/,
# benches/memory.rs) are left out: `cargo test` runs a `harness = false` target, and they play a minute of load or
# start a release `jitgate run`; clippy above keeps them compiling.
test: deps self-contained
	scripts/cargo-deny.sh
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	scripts/with-services.sh cargo test --workspace --tests --bench latency

check:
	cargo run --quiet -- --config jitgate.example.toml check

# jitgate's main job with no Slack workspace and no AWS account: a private Redis and local DynamoDB/STS with the
# demo Orders table, the Slack and PagerDuty emulators, the real `jitgate run`, and a request → refusal →
# approval → results story printed as text. Exits non-zero, naming the step, if anything goes wrong.
# `make demo DEMO_ARGS=--keep-running` leaves it all running afterwards, to open the audit page.
demo: deps-demo
	scripts/local-stack.sh demo $(DEMO_ARGS)

# The same local Redis and DynamoDB/STS, with jitgate connected to your own Slack workspace: settings from .env
# (start from .env.example). Ctrl-C stops everything.
dev: deps-demo
	scripts/local-stack.sh dev
