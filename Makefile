# The commands a newcomer needs. See README.md.
.PHONY: test deps check demo dev

deps:
	scripts/install-deps.sh

# The whole test suite, exactly as CI runs it: formatting, lints, then every test against a private
# Redis and local DynamoDB/STS server.
test: deps
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	scripts/with-services.sh cargo test --workspace --all-targets

check:
	cargo run --quiet -- --config jitgate.example.toml check

# jitgate's main job with no Slack workspace and no AWS account: a private Redis and local DynamoDB/STS with the
# demo Orders table, the Slack and PagerDuty emulators, the real `jitgate run`, and a request → refusal →
# approval → results story printed as text. Exits non-zero, naming the step, if anything goes wrong.
# `make demo DEMO_ARGS=--keep-running` leaves it all running afterwards, to open the audit page.
demo: deps
	scripts/local-stack.sh demo $(DEMO_ARGS)

# The same local Redis and DynamoDB/STS, with jitgate connected to your own Slack workspace: settings from .env
# (start from .env.example). Ctrl-C stops everything.
dev: deps
	scripts/local-stack.sh dev
