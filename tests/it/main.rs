//! jitgate's integration tests, one binary for the whole bot: each module was once a test binary of its own,
//! and every one of them linked the whole dependency tree. They run against the real Redis and local
//! DynamoDB/STS server that `scripts/with-services.sh` starts, with the Slack and PagerDuty emulators, through
//! `jitgate_testkit`.
//!
//! Nothing here may depend on process-wide state only one test can own: the log test, which installs the global
//! `tracing` subscriber and sets `RUST_LOG`, stays a binary of its own (`tests/logs.rs`).

mod audit;
mod audit_anchor;
mod aws;
mod aws_timeouts;
mod cli;
mod combined;
mod engine;
mod gates;
mod harness;
mod healthcheck;
mod http;
mod iam_evaluator;
mod latency;
mod live_check;
mod manifests;
mod oncall;
mod prometheus_rules;
mod readme;
mod redis_cluster;
mod redis_tls;
mod robustness;
mod runbooks;
mod seed_demo;
mod shutdown;
mod slack_commands;
mod slack_flow;
mod slack_web;
mod store;
mod tamper;
mod trust_edges;
mod writes;
