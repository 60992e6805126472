# The two commands a newcomer needs. See README.md.
.PHONY: test deps check

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
