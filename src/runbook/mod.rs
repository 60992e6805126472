//! Query runbooks: loading and strict validation, rendering parameters into an exact DynamoDB request with its
//! fingerprint, and the per-query IAM session policy. Pure: the loader reads files, nothing else does I/O.
//!
//! ```text
//! runbooks/*.yaml ──load_dir──▶ RunbookSet ──get(id)──▶ Runbook ──render(args, region)──▶ RenderedQuery
//!                                                                                       ├─ fingerprint()
//!                                                                                       ├─ summary()
//!                                                                                       └─ session_policy()
//! ```

mod approval;
mod error;
mod gates;
mod load;
mod model;
mod param;
mod policy;
mod query;
mod render;
mod schema;
mod similar;
mod unmask;
mod validate;
mod write;

pub use approval::{ApprovalPolicy, ApproverSources};
pub use error::RunbookError;
pub use gates::{Escalation, IncidentGate, MAX_ESCALATION_LEVEL};
pub use load::RunbookSet;
pub use model::{CompareOp, Comparison, Condition, KeyCondition, KeySchema, RoleArn, Runbook};
pub use param::{MAX_VALUE_CHARS, ParamKind, Parameter, Pattern, StringRule};
pub use policy::{MAX_SESSION_POLICY_CHARS, PolicyError, SessionPolicy, session_policy};
pub use query::{BoundValue, Fingerprint, KeyValue, Operation, RenderedQuery, RenderedUpdate, UPDATE_RETURN_VALUES};
pub use render::ParamError;
pub use unmask::UnmaskError;
pub use validate::{
    MAX_ITEMS_LIMIT, MAX_REQUIRED_APPROVALS, MAX_TTL, MIN_TTL, RunbookDefaults, WRITE_DEFAULT_APPROVALS,
};
pub use write::{Assignment, Operand, Precondition, UpdateSpec};
