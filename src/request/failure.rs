//! Why a request ended as Failed, as data: stored on the record in Redis, recorded in the audit trail as its
//! [`FailureReason::code`] plus the text people read, and rendered into that text by `crate::messages` only.
//!
//! Records written before reasons were typed hold a plain string; it loads as [`FailureReason::Legacy`] and is shown
//! as it was. New records are written with a `code` tag, e.g. `{"code":"interrupted"}`.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::RequestState;

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum FailureReason {
    /// The audit trail could not record a step, so nothing went further (fail closed).
    AuditUnavailable,
    /// The query ran but its execution could not be audited, so its rows were withheld.
    AuditOfExecutionFailed,
    /// The replica running it stopped before it finished (found later by the sweeper); never re-run.
    Interrupted,
    /// This replica was shut down before the query finished; never re-run.
    InterruptedByShutdown,
    /// Approved, but never started: the replica stopped (or lost Redis) between the approval and the start, and
    /// the sweeper found it past its credentials' lifetime. Nothing ran; never run later.
    NeverStarted,
    /// The record changed between the approval and the start (an operator, the sweeper): never run then.
    ChangedWhileStarting { now: RequestState },
    /// The approval card could not be posted, so nobody could have approved it. `problem` is what Slack said.
    CardNotPosted { problem: String },
    /// The query's session policy could not be rendered when it was about to run.
    Unrunnable { problem: String },
    /// STS handed out credentials jitgate will not use (missing, or living longer than allowed): the setup is
    /// wrong, and operators are alerted.
    UnacceptableCredentials { detail: String },
    /// The approved operation is not the one the audit trail recorded as requested (or it already ran there): a
    /// record in Redis was changed or replayed. Never run; operators are alerted.
    NotWhatWasRequested { detail: String },
    /// The query ran, but its rows could not be written to the temporary file that holds a large result until it
    /// is delivered (a full or unwritable `TMPDIR`); none were delivered. `detail` is the operating system's error.
    ResultNotKept { detail: String },
    /// An AWS step failed.
    Aws { problem: AwsProblem },
    /// A reason stored before reasons were typed: its text, as it was shown then.
    #[serde(untagged)]
    Legacy(String),
}

impl FailureReason {
    /// The stable, snake_case code the audit trail records and operators search for.
    pub fn code(&self) -> &'static str {
        match self {
            FailureReason::AuditUnavailable => "audit_unavailable",
            FailureReason::AuditOfExecutionFailed => "audit_of_execution_failed",
            FailureReason::Interrupted => "interrupted",
            FailureReason::InterruptedByShutdown => "interrupted_by_shutdown",
            FailureReason::NeverStarted => "never_started",
            FailureReason::ChangedWhileStarting { .. } => "changed_while_starting",
            FailureReason::CardNotPosted { .. } => "card_not_posted",
            FailureReason::Unrunnable { .. } => "unrunnable",
            FailureReason::UnacceptableCredentials { .. } => "unacceptable_credentials",
            FailureReason::NotWhatWasRequested { .. } => "not_what_was_requested",
            FailureReason::ResultNotKept { .. } => "result_not_kept",
            FailureReason::Aws { problem } => problem.code(),
            FailureReason::Legacy(_) => "unclassified",
        }
    }
}

/// What went wrong in an AWS step, as far as the user is concerned (never a credential).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AwsProblem {
    /// IAM denied the call made with the temporary credentials.
    AccessDenied { service: String, operation: String },
    /// The service throttled the call and the retries did not get through.
    Throttled { service: String },
    /// DynamoDB rejected the query as malformed; `message` is its explanation.
    Invalid { message: String },
    /// The table or index does not exist in this account and region.
    NotFound { resource: String },
    /// The temporary credentials were past, or too close to, their expiry; nothing was called with them.
    CredentialsExpired {
        #[serde(with = "time::serde::rfc3339")]
        expired_at: OffsetDateTime,
    },
    /// The query no longer hashed to the approved fingerprint; it was not run.
    FingerprintMismatch,
    /// STS would not assume the runbook's role; `code` is STS's error code.
    AssumeRoleRefused { role_arn: String, code: String },
    /// The service did not answer within jitgate's timeouts; the call was given up and nothing runs later.
    TimedOut { service: String },
    /// The service could not be reached.
    Unreachable { service: String },
    /// A write's precondition did not hold: the item changed since the request; nothing was written.
    PreconditionFailed,
    /// Any other service error, with its code.
    Other { service: String, operation: String, code: String },
}

impl AwsProblem {
    pub fn code(&self) -> &'static str {
        match self {
            AwsProblem::AccessDenied { .. } => "aws_access_denied",
            AwsProblem::Throttled { .. } => "aws_throttled",
            AwsProblem::Invalid { .. } => "aws_invalid_query",
            AwsProblem::NotFound { .. } => "aws_not_found",
            AwsProblem::CredentialsExpired { .. } => "aws_credentials_expired",
            AwsProblem::FingerprintMismatch => "fingerprint_mismatch",
            AwsProblem::AssumeRoleRefused { .. } => "aws_assume_role_refused",
            AwsProblem::TimedOut { .. } => "aws_timed_out",
            AwsProblem::Unreachable { .. } => "aws_unreachable",
            AwsProblem::PreconditionFailed => "precondition_failed",
            AwsProblem::Other { .. } => "aws_error",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn typed_reasons_round_trip_under_their_code() {
        let reasons = [
            FailureReason::AuditUnavailable,
            FailureReason::InterruptedByShutdown,
            FailureReason::NeverStarted,
            FailureReason::ChangedWhileStarting { now: RequestState::Failed },
            FailureReason::CardNotPosted { problem: "channel_not_found".into() },
            FailureReason::ResultNotKept { detail: "No space left on device (os error 28)".into() },
            FailureReason::UnacceptableCredentials { detail: "they live 3600 s".into() },
            FailureReason::Aws { problem: AwsProblem::FingerprintMismatch },
            FailureReason::Aws { problem: AwsProblem::TimedOut { service: "STS".into() } },
            FailureReason::Aws {
                problem: AwsProblem::CredentialsExpired { expired_at: datetime!(2026-11-28 12:15:00 UTC) },
            },
        ];
        for reason in reasons {
            let json = serde_json::to_value(&reason).unwrap();
            let code = reason.code();
            let tag = json["code"].as_str().unwrap();
            assert!(code == tag || (tag == "aws" && code.contains(json["problem"]["kind"].as_str().unwrap())));
            assert_eq!(serde_json::from_value::<FailureReason>(json).unwrap(), reason);
        }
        let json = serde_json::to_string(&FailureReason::ChangedWhileStarting { now: RequestState::Failed }).unwrap();
        assert_eq!(json, r#"{"code":"changed_while_starting","now":"failed"}"#);
    }

    #[test]
    fn a_free_text_reason_of_an_older_version_loads_as_legacy() {
        let old = r#""the audit trail could not record this step, so nothing was run""#;
        let reason: FailureReason = serde_json::from_str(old).unwrap();
        assert_eq!(
            reason,
            FailureReason::Legacy("the audit trail could not record this step, so nothing was run".into())
        );
        assert_eq!(reason.code(), "unclassified");
        // And is written back the way it was read.
        assert_eq!(serde_json::to_string(&reason).unwrap(), old);
    }
}
