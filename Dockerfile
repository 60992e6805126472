# syntax=docker/dockerfile:1
# jitgate's container image: a release build on the official Rust image, run on Debian slim as a non-root user.
#
#   docker build -t jitgate --build-arg JITGATE_GIT_SHA="$(git rev-parse HEAD)" .
#   docker run --env-file .env jitgate                     # `jitgate run` with /etc/jitgate/jitgate.toml
#   docker run jitgate check                               # validate the baked-in config and runbooks
#
# The config and runbooks baked in are defaults: mount your own over /etc/jitgate (docker-compose.yml and the
# Kubernetes manifests in manifests/k8s do). Secrets come only from the environment. tests/it/manifests.rs lints this
# file with hadolint and checks the config laid out as below with `jitgate check`.

# The toolchain the project builds with (rustc 1.95.0; rust-version in Cargo.toml is the minimum). Debian bookworm, so
# the binary's glibc matches the runtime stage.
FROM rust:1.95.0-bookworm AS builder
WORKDIR /src
COPY Cargo.toml Cargo.lock build.rs ./
# The commit shown by `jitgate --version` and in jitgate_build_info: the build context has no .git, so build.rs
# takes it from this variable ("unknown" when it is not given).
ARG JITGATE_GIT_SHA=""
# The other workspace members: cargo loads every member's manifest, even to build one package.
COPY emulators emulators
COPY testkit testkit
COPY demo demo
COPY src src
# Cargo.toml declares the latency benchmark as a target: cargo refuses a manifest whose target file is missing.
COPY benches benches
# --locked: build exactly the dependency versions in Cargo.lock. The cache mounts keep the registry and compiled
# dependencies between builds; the binary is copied out of the cached target dir.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p jitgate \
    && install -m 0755 target/release/jitgate /usr/local/bin/jitgate

FROM debian:bookworm-slim AS runtime
# ca-certificates only: Slack, PagerDuty and AWS are reached over TLS. Versions are not pinned so that a rebuild
# picks up Debian's security updates (the archive drops superseded versions, so pins would break rebuilds).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
# A fixed numeric UID/GID: Kubernetes' runAsNonRoot can only verify a numeric user, and manifests/k8s runs as 10001.
RUN groupadd --system --gid 10001 jitgate \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin jitgate
COPY --from=builder /usr/local/bin/jitgate /usr/local/bin/jitgate
COPY runbooks /etc/jitgate/runbooks
COPY deploy/jitgate.toml /etc/jitgate/jitgate.toml
ENV JITGATE_CONFIG=/etc/jitgate/jitgate.toml
USER 10001:10001
# http.listen in the config: the signed audit pages; http.operations_listen: /healthz, /readyz and /metrics.
EXPOSE 8080 9090
# The image has no curl: jitgate probes its own /healthz (the URL comes from http.listen in the config).
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 CMD ["jitgate", "healthcheck"]
ENTRYPOINT ["jitgate"]
CMD ["run"]
