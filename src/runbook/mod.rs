//! Query runbooks: loading and strict validation, rendering parameters into an exact DynamoDB request with its
//! fingerprint, and the per-query IAM session policy. Pure: the loader reads files, nothing else does I/O.

mod approval;
mod query;

pub use approval::{ApprovalPolicy, ApproverSources};
pub use query::{BoundValue, Fingerprint, KeyValue, Operation, RenderedQuery};
