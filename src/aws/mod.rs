//! The AWS layer: the STS credential broker and the DynamoDB executor.
//!
//! Every client is built from an injected `aws_config::SdkConfig` (production: the standard SDK chain; tests: the
//! local moto server). The bot's own identity is used for exactly one call, `sts:AssumeRole`; every DynamoDB call
//! is signed with the short-lived credentials that call returned, and with nothing else.
//!
//! - [`sts`]: `AssumeRole` with the per-query session policy, 900 s lifetime, `SourceIdentity` and session tags.
//! - [`credentials`]: the temporary credentials, whose secrets never reach a log.
//! - [`executor`]: runs one [`ApprovedQuery`](crate::request::ApprovedQuery): fingerprint and expiry checks,
//!   pagination up to the cap, masking, consumed capacity and the SHA-256 of what was delivered.
//! - [`value`]: DynamoDB `AttributeValue` → the domain's display-oriented [`Value`], masking on the way.
//! - [`error`]: [`AwsFailure`], the failures a caller branches on, each with a message fit for Slack.
//! - [`demo_table`]: the demo `Orders` table and its deterministic seed data (test and demo support only).

pub mod credentials;
pub mod demo_table;
pub mod error;
pub mod executor;
pub mod sts;
pub mod value;

pub use credentials::{CredentialSummary, TemporaryCredentials};
pub use error::AwsFailure;
pub use executor::Executor;
// What a run delivers is the domain's; re-exported because it is what the executor returns.
pub use crate::request::result::ExecutionResult;
pub use sts::{AssumeRoleRequest, StsBroker};
pub use value::{Row, Value};
