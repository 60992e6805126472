//! Why an audit operation could not be done. Each message says what is wrong and what to do about it.
//!
//! A broken chain found by [`super::AuditLog::verify`] is not an error: it is the report's finding. These errors
//! are for operations that could not run (table missing, access denied, DynamoDB down) or that refuse to write on a
//! chain they can see is damaged.

/// An audit operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error(
        "audit table `{table}` does not exist: create it from the deployment template \
         (on a local stack, `AuditLog::ensure_table` creates it)"
    )]
    TableMissing { table: String },

    #[error("audit table `{table}` is not laid out as jitgate expects: {problem}")]
    TableSchema { table: String, problem: String },

    #[error("access denied: jitgate's own role may not call {operation} on audit table `{table}`")]
    AccessDenied { table: String, operation: &'static str },

    #[error("DynamoDB {operation} on audit table `{table}` failed: {detail}")]
    Dynamo { table: String, operation: &'static str, detail: String },

    #[error(
        "could not append to audit table `{table}` after {attempts} attempts: other writers appended first every time"
    )]
    Contention { table: String, attempts: u32 },

    /// The head is behind an entry that already exists: appending would need to overwrite it, which never happens.
    #[error(
        "audit table `{table}` is damaged: entry {entry_seq} exists but the head says the chain ends at {head_seq}; \
         nothing was overwritten. Run `jitgate audit verify`"
    )]
    HeadBehind { table: String, head_seq: u64, entry_seq: u64 },

    #[error("audit table `{table}` is damaged at {location}: {problem}. Run `jitgate audit verify`")]
    Corrupt { table: String, location: String, problem: String },

    #[error("audit event could not be recorded: {0}")]
    Encode(String),

    /// The checkpoint bucket could not be written or read, or disagrees with the table.
    #[error(transparent)]
    Anchor(#[from] super::anchor::AnchorError),
}
