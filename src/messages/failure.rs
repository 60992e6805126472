//! Why a request failed, in the user's words: the one rendering of a [`FailureReason`], used on the card, in the
//! thread, in the requester's DM, in alerts and as the text next to the code in the audit trail.

use time::OffsetDateTime;

use crate::request::{AwsProblem, FailureReason};

/// The reason shown when a run was cut short by its replica stopping.
const INTERRUPTED: &str = "interrupted: the jitgate replica running it stopped before it finished; nothing is re-run automatically, ask again if still needed";

/// The reason shown when this replica was shut down before a query it was running finished.
const INTERRUPTED_BY_SHUTDOWN: &str = "interrupted: jitgate was shut down before the query finished; no rows were delivered and nothing is re-run automatically, ask again if still needed";

/// The reason shown when an approved request was never started.
const NEVER_STARTED: &str = "approved, but never started: the jitgate replica handling it stopped before starting the query; nothing was run and nothing is run later, ask again if still needed";

/// What happened and what to do, without internal detail or secrets. Not escaped: callers escape for mrkdwn.
pub fn failure_reason(reason: &FailureReason) -> String {
    match reason {
        FailureReason::AuditUnavailable => "the audit trail could not record this step, so nothing was run".to_owned(),
        FailureReason::AuditOfExecutionFailed => {
            "the audit trail could not record the execution, so its results are withheld".to_owned()
        }
        FailureReason::Interrupted => INTERRUPTED.to_owned(),
        FailureReason::InterruptedByShutdown => INTERRUPTED_BY_SHUTDOWN.to_owned(),
        FailureReason::NeverStarted => NEVER_STARTED.to_owned(),
        FailureReason::ChangedWhileStarting { now } => {
            format!("the request changed while starting (now {})", now.as_str())
        }
        FailureReason::CardNotPosted { problem } => format!("the approval card could not be posted: {problem}"),
        FailureReason::Unrunnable { problem } => problem.clone(),
        FailureReason::UnacceptableCredentials { detail } => {
            format!("AWS STS returned credentials jitgate will not use ({detail}). Nothing was run.")
        }
        FailureReason::NotWhatWasRequested { .. } => "the approved operation is not the one recorded when the request \
             was made (its stored record was changed outside jitgate). Nothing was run; operators have been alerted. \
             Ask again if you still need it."
            .to_owned(),
        FailureReason::ResultNotKept { detail } => format!(
            "the query ran, but jitgate could not keep its result to deliver it (writing its temporary file failed: \
             {detail}), so no rows were delivered. Ask jitgate's operators to check the space in its temporary \
             directory, then submit the request again."
        ),
        FailureReason::Aws { problem } => aws_problem(problem),
        FailureReason::Legacy(text) => text.clone(),
    }
}

fn aws_problem(problem: &AwsProblem) -> String {
    match problem {
        AwsProblem::AccessDenied { service, operation } => format!(
            "AWS access denied: the runbook's role may not call {service} {operation}. Nothing was read. \
             Ask the runbook's owners to check the role's IAM policy."
        ),
        AwsProblem::Throttled { service } => {
            format!("{service} is throttling requests right now, so the query did not complete. Try again in a minute.")
        }
        AwsProblem::Invalid { message } => {
            format!("DynamoDB rejected the query as invalid: {message}. The runbook needs fixing.")
        }
        AwsProblem::NotFound { resource } => format!(
            "DynamoDB {resource} was not found in this account and region. Check the runbook's table and index."
        ),
        AwsProblem::CredentialsExpired { expired_at } => format!(
            "The temporary AWS credentials for this request expired or were about to (at {}), so the query \
             was not run and nothing was read. Submit the request again.",
            rfc3339(*expired_at)
        ),
        AwsProblem::FingerprintMismatch => "The query about to run is not the one that was approved \
             (fingerprint mismatch), so it was not run. Submit the request again."
            .to_owned(),
        AwsProblem::AssumeRoleRefused { role_arn, code } => format!(
            "AWS STS refused to let jitgate assume the role {role_arn} ({code}). Nothing was run. Ask the \
             runbook's owners to check the role's trust policy and jitgate's permission to assume it."
        ),
        AwsProblem::TimedOut { service } => format!(
            "AWS {service} did not answer in time, so jitgate gave up on it. Nothing was delivered, and nothing from \
             this request runs later. Submit the request again; if it keeps happening, ask jitgate's operators to \
             check its network path to AWS."
        ),
        AwsProblem::Unreachable { service } => {
            format!("jitgate could not reach AWS {service} (network error or timeout). Nothing was read. Try again.")
        }
        AwsProblem::PreconditionFailed => "the item changed since the request; nothing was written. Its \
             precondition no longer holds: look at the item again (a read runbook) and ask again if the write is \
             still needed."
            .to_owned(),
        AwsProblem::Other { service, operation, code } => {
            format!("AWS {service} {operation} failed with error {code}. Nothing was delivered.")
        }
    }
}

/// RFC 3339 in UTC, to the second: what a person compares with a clock.
fn rfc3339(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC).replace_nanosecond(0).unwrap_or(at);
    at.format(&time::format_description::well_known::Rfc3339).unwrap_or_else(|_| at.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn aws(problem: AwsProblem) -> String {
        failure_reason(&FailureReason::Aws { problem })
    }

    #[test]
    fn aws_failures_say_what_happened() {
        let denied = aws(AwsProblem::AccessDenied { service: "DynamoDB".into(), operation: "GetItem".into() });
        assert!(denied.contains("access denied"), "{denied}");
        let expired = aws(AwsProblem::CredentialsExpired { expired_at: datetime!(2026-11-28 12:15:00.25 UTC) });
        assert!(expired.contains("(at 2026-11-28T12:15:00Z)"), "{expired}");
        let other = aws(AwsProblem::Other {
            service: "DynamoDB".into(),
            operation: "Query".into(),
            code: "InternalServerError".into(),
        });
        assert!(other.contains("InternalServerError"), "{other}");
        let timed_out = aws(AwsProblem::TimedOut { service: "DynamoDB".into() });
        assert!(timed_out.starts_with("AWS DynamoDB did not answer in time"), "{timed_out}");
        assert!(timed_out.contains("Submit the request again"), "{timed_out}");
    }

    #[test]
    fn every_reason_keeps_the_text_it_had_as_a_string() {
        let cases = [
            (FailureReason::AuditUnavailable, "the audit trail could not record this step, so nothing was run"),
            (
                FailureReason::AuditOfExecutionFailed,
                "the audit trail could not record the execution, so its results are withheld",
            ),
            (
                FailureReason::ChangedWhileStarting { now: crate::request::RequestState::Failed },
                "the request changed while starting (now failed)",
            ),
            (
                FailureReason::CardNotPosted { problem: "channel_not_found".into() },
                "the approval card could not be posted: channel_not_found",
            ),
            (FailureReason::Legacy("as it was".into()), "as it was"),
        ];
        for (reason, text) in cases {
            assert_eq!(failure_reason(&reason), text);
        }
        assert!(
            failure_reason(&FailureReason::InterruptedByShutdown).starts_with("interrupted: jitgate was shut down")
        );
        assert!(failure_reason(&FailureReason::Interrupted).starts_with("interrupted: the jitgate replica"));
    }
}
