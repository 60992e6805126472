//! Temporary credentials from `sts:AssumeRole`, held so that their secrets cannot leak by accident.
//!
//! The access key id, secret access key and session token are [`SecretString`]s: their `Debug` is redacted and
//! reading them needs an explicit `expose_secret()`. The type is deliberately not `Clone`: the executor takes it by
//! value and drops it when its run ends, so a set of credentials serves exactly one query.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use time::OffsetDateTime;

/// Credentials for one query, valid until `expiration`.
pub struct TemporaryCredentials {
    access_key_id: SecretString,
    secret_access_key: SecretString,
    session_token: SecretString,
    expiration: OffsetDateTime,
    assumed_role_id: String,
    assumed_role_arn: String,
}

impl TemporaryCredentials {
    /// Assembles credentials. Normally only the STS broker calls this; tests build their own.
    pub fn new(
        access_key_id: SecretString,
        secret_access_key: SecretString,
        session_token: SecretString,
        expiration: OffsetDateTime,
        assumed_role_id: String,
        assumed_role_arn: String,
    ) -> Self {
        TemporaryCredentials {
            access_key_id,
            secret_access_key,
            session_token,
            expiration,
            assumed_role_id,
            assumed_role_arn,
        }
    }

    pub fn access_key_id(&self) -> &SecretString {
        &self.access_key_id
    }

    pub fn secret_access_key(&self) -> &SecretString {
        &self.secret_access_key
    }

    pub fn session_token(&self) -> &SecretString {
        &self.session_token
    }

    /// When STS says these credentials stop working.
    pub fn expiration(&self) -> OffsetDateTime {
        self.expiration
    }

    /// `AssumedRoleId` from STS, `<role id>:<session name>`; it appears in CloudTrail.
    pub fn assumed_role_id(&self) -> &str {
        &self.assumed_role_id
    }

    /// The ARN of the assumed-role session.
    pub fn assumed_role_arn(&self) -> &str {
        &self.assumed_role_arn
    }

    /// What the audit trail records about these credentials: identifiers and expiry, no secret.
    pub fn summary(&self) -> CredentialSummary {
        CredentialSummary {
            // The access key id is an identifier that CloudTrail logs in clear; it is not a secret on its own, and
            // the audit needs it to link an execution to its CloudTrail events.
            access_key_id: self.access_key_id.expose_secret().to_owned(),
            assumed_role_id: self.assumed_role_id.clone(),
            assumed_role_arn: self.assumed_role_arn.clone(),
            expiration: self.expiration,
        }
    }
}

impl fmt::Debug for TemporaryCredentials {
    // Written by hand so that adding a field can never put a secret into a log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TemporaryCredentials")
            .field("access_key_id", &"[REDACTED]")
            .field("secret_access_key", &"[REDACTED]")
            .field("session_token", &"[REDACTED]")
            .field("expiration", &self.expiration)
            .field("assumed_role_id", &self.assumed_role_id)
            .field("assumed_role_arn", &self.assumed_role_arn)
            .finish()
    }
}

/// The non-secret facts about a set of temporary credentials, for the audit trail.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CredentialSummary {
    pub access_key_id: String,
    pub assumed_role_id: String,
    pub assumed_role_arn: String,
    #[serde(with = "time::serde::rfc3339")]
    pub expiration: OffsetDateTime,
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn debug_and_summary_never_show_the_secret_or_token() {
        let creds = TemporaryCredentials::new(
            SecretString::from("ASIAKEYID"),
            SecretString::from("very-secret-key"),
            SecretString::from("session-token-value"),
            datetime!(2026-11-28 12:15 UTC),
            "AROAEXAMPLE:jit-JIT-7Q2M4X".into(),
            "arn:aws:sts::123456789012:assumed-role/r/jit-JIT-7Q2M4X".into(),
        );
        let debug = format!("{creds:?} {creds:#?}");
        for secret in ["ASIAKEYID", "very-secret-key", "session-token-value"] {
            assert!(!debug.contains(secret), "Debug leaked {secret}: {debug}");
        }
        assert!(debug.contains("AROAEXAMPLE:jit-JIT-7Q2M4X"), "identifiers stay visible: {debug}");
        let summary = serde_json::to_string(&creds.summary()).unwrap();
        assert!(!summary.contains("very-secret-key") && !summary.contains("session-token-value"), "{summary}");
        assert!(summary.contains("ASIAKEYID"), "the audit keeps the access key id: {summary}");
    }
}
