//! [`AwsFailure`]: every way an STS or DynamoDB step can fail, as a caller branches on it, and the
//! [`FailureReason`] the request records for each (the messages module renders the text a Slack user reads).
//!
//! The SDK reports a service error as a code and a message parsed from the body. Some servers (moto, and AWS for
//! some signature failures) answer a denial with an XML body the JSON protocol cannot parse, so the code is
//! missing: the HTTP status (403) is then what tells us it was a denial. Nothing here holds a credential, and the
//! messages never include one.

// The service crates re-export the same smithy types; DynamoDB's re-exports serve STS errors too.
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use time::OffsetDateTime;

use crate::request::{AwsProblem, FailureReason};
use crate::runbook::Fingerprint;

/// A failure of the AWS layer. Nothing was returned to the user when one of these is raised.
#[derive(Debug, thiserror::Error)]
pub enum AwsFailure {
    /// IAM denied the call made with the temporary credentials.
    #[error("access denied: {service} {operation} ({})", code.as_deref().unwrap_or("HTTP 403"))]
    AccessDenied { service: &'static str, operation: &'static str, code: Option<String> },
    /// The service throttled the call and the SDK's retries did not get through.
    #[error("throttled: {service} {operation} ({code})")]
    Throttled { service: &'static str, operation: &'static str, code: String },
    /// DynamoDB rejected the request as malformed; its message says why.
    #[error("DynamoDB validation error: {message}")]
    Validation { message: String },
    /// The table or index does not exist (in this account and region).
    #[error("not found: {resource} ({message})")]
    NotFound { resource: String, message: String },
    /// The temporary credentials are past, or too close to, their expiry; no call was made with them.
    #[error("temporary credentials expired at {expired_at}")]
    CredentialsExpired { expired_at: OffsetDateTime },
    /// The query no longer hashes to the fingerprint the approvers saw; it was not run.
    #[error("query fingerprint {actual} does not match the approved {approved}")]
    FingerprintMismatch { approved: Fingerprint, actual: Fingerprint },
    /// STS would not assume the runbook's role (trust policy, permissions, unknown role, bad parameters).
    /// `code` is STS's error code, or `HTTP <status>` when the body carried none.
    #[error("STS refused to assume {role_arn}: {code}: {}", message.as_deref().unwrap_or("no message"))]
    AssumeRoleRefused { role_arn: String, code: String, message: Option<String> },
    /// STS answered, but with credentials jitgate will not use (missing, or living longer than allowed).
    #[error("unacceptable credentials from STS: {reason}")]
    UnacceptableCredentials { reason: String },
    /// The service did not answer within jitgate's `[aws.timeouts]`: the call was given up, and nothing it might
    /// have returned is used.
    #[error("{service} {operation} did not answer in time: {detail}")]
    TimedOut { service: &'static str, operation: &'static str, detail: String },
    /// The service could not be reached.
    #[error("could not reach {service} for {operation}: {detail}")]
    Unreachable { service: &'static str, operation: &'static str, detail: String },
    /// A write's precondition did not hold (`ConditionalCheckFailedException`): the item changed since the
    /// request, and DynamoDB wrote nothing.
    #[error("the write's precondition failed: the item changed since the request; nothing was written")]
    PreconditionFailed,
    /// The query ran, but its rows could not be written to the temporary file a large result waits in until it
    /// is delivered; none are delivered.
    #[error("the result could not be kept for delivery: {detail}")]
    ResultNotKept { detail: String },
    /// Any other service error, with its code.
    #[error("{service} {operation} failed: {code}: {}", message.as_deref().unwrap_or(""))]
    Other { service: &'static str, operation: &'static str, code: String, message: Option<String> },
}

impl AwsFailure {
    /// Why the request failed, as the domain records it; the messages module turns it into what the user reads. It
    /// carries nothing internal beyond what the user needs to act on, and never a credential.
    pub fn reason(&self) -> FailureReason {
        let owned = |s: &str| s.to_owned();
        let problem = match self {
            AwsFailure::AccessDenied { service, operation, .. } => {
                AwsProblem::AccessDenied { service: owned(service), operation: owned(operation) }
            }
            AwsFailure::Throttled { service, .. } => AwsProblem::Throttled { service: owned(service) },
            AwsFailure::Validation { message } => AwsProblem::Invalid { message: message.clone() },
            AwsFailure::NotFound { resource, .. } => AwsProblem::NotFound { resource: resource.clone() },
            AwsFailure::CredentialsExpired { expired_at } => AwsProblem::CredentialsExpired { expired_at: *expired_at },
            AwsFailure::FingerprintMismatch { .. } => AwsProblem::FingerprintMismatch,
            AwsFailure::AssumeRoleRefused { role_arn, code, .. } => {
                AwsProblem::AssumeRoleRefused { role_arn: role_arn.clone(), code: code.clone() }
            }
            AwsFailure::UnacceptableCredentials { reason } => {
                return FailureReason::UnacceptableCredentials { detail: reason.clone() };
            }
            AwsFailure::ResultNotKept { detail } => {
                return FailureReason::ResultNotKept { detail: detail.clone() };
            }
            AwsFailure::TimedOut { service, .. } => AwsProblem::TimedOut { service: owned(service) },
            AwsFailure::Unreachable { service, .. } => AwsProblem::Unreachable { service: owned(service) },
            AwsFailure::PreconditionFailed => AwsProblem::PreconditionFailed,
            AwsFailure::Other { service, operation, code, .. } => {
                AwsProblem::Other { service: owned(service), operation: owned(operation), code: code.clone() }
            }
        };
        FailureReason::Aws { problem }
    }
}

/// What an SDK error says, reduced to what we classify on.
#[derive(Debug)]
pub(crate) enum ErrorFacts {
    /// The service answered with an error.
    Service { status: u16, code: Option<String>, message: Option<String> },
    /// No answer within the configured operation or attempt timeout (or the connector's read timeout).
    TimedOut { detail: String },
    /// No usable answer: connection, construction or unparseable response.
    Transport { detail: String },
}

impl ErrorFacts {
    pub(crate) fn of<E>(err: &SdkError<E>) -> ErrorFacts
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        match err {
            SdkError::ServiceError(_) => ErrorFacts::Service {
                status: err.raw_response().map(|r| r.status().as_u16()).unwrap_or(0),
                code: err.code().map(str::to_owned),
                message: err.message().map(str::to_owned),
            },
            // A response we could not parse: a denial rendered as XML still carries its status.
            SdkError::ResponseError(_) if err.raw_response().is_some_and(|r| r.status().as_u16() >= 400) => {
                ErrorFacts::Service {
                    status: err.raw_response().map(|r| r.status().as_u16()).unwrap_or(0),
                    code: None,
                    message: None,
                }
            }
            SdkError::TimeoutError(_) => ErrorFacts::TimedOut { detail: DisplayErrorContext(err).to_string() },
            SdkError::DispatchFailure(failure) if failure.is_timeout() => {
                ErrorFacts::TimedOut { detail: DisplayErrorContext(err).to_string() }
            }
            _ => ErrorFacts::Transport { detail: DisplayErrorContext(err).to_string() },
        }
    }
}

/// Error codes that mean "the caller may not do this" (besides any HTTP 403).
pub(crate) fn is_denial_code(code: &str) -> bool {
    matches!(
        code,
        "AccessDeniedException"
            | "AccessDenied"
            | "UnrecognizedClientException"
            | "InvalidClientTokenId"
            | "InvalidSignatureException"
            | "SignatureDoesNotMatch"
            | "MissingAuthenticationTokenException"
    )
}

/// Error codes that mean "slow down".
pub(crate) fn is_throttling_code(code: &str) -> bool {
    matches!(
        code,
        "ThrottlingException"
            | "Throttling"
            | "ProvisionedThroughputExceededException"
            | "RequestLimitExceeded"
            | "TooManyRequestsException"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn failures_become_the_reasons_requests_record() {
        let denied = AwsFailure::AccessDenied { service: "DynamoDB", operation: "GetItem", code: None };
        assert!(denied.to_string().contains("HTTP 403"));
        assert_eq!(denied.reason().code(), "aws_access_denied");
        let expired = AwsFailure::CredentialsExpired { expired_at: datetime!(2026-11-28 12:15:00.25 UTC) };
        let FailureReason::Aws { problem: AwsProblem::CredentialsExpired { expired_at } } = expired.reason() else {
            panic!("{:?}", expired.reason())
        };
        assert_eq!(expired_at, datetime!(2026-11-28 12:15:00.25 UTC));
        let unacceptable = AwsFailure::UnacceptableCredentials { reason: "they live 3600 s".into() };
        assert_eq!(unacceptable.reason(), FailureReason::UnacceptableCredentials { detail: "they live 3600 s".into() });
    }
}
