//! jitgate: just-in-time, on-call-approved, audited DynamoDB queries from Slack.
//!
//! Dependencies point inward: `store`, `aws` and `audit` know nothing of each other; `request`, `runbook` do no
//! I/O beyond reading runbook files. See `docs/design.md` for the flow.

pub mod app;
pub mod audit;
pub mod aws;
pub mod bot;
pub mod cli;
pub mod clock;
pub mod command;
pub mod config;
pub mod engine;
pub mod http;
pub mod ids;
pub mod links;
pub mod live_check;
pub mod messages;
pub mod oncall;
pub mod pause;
pub mod request;
pub mod runbook;
pub mod slack;
pub mod store;
pub mod telemetry;
