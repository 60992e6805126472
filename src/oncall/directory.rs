//! Who a PagerDuty user is in Slack: the lookup by email that links the two identities.

use async_trait::async_trait;

use crate::ids::SlackUserId;

/// Finds Slack accounts by email. The composition root adapts the Slack client to it (`users.lookupByEmail`).
#[async_trait]
pub trait SlackDirectory: Send + Sync {
    /// The Slack user whose account has this email, or `None` when there is none.
    ///
    /// `email` arrives trimmed and lower-cased: emails are matched case-insensitively, so an implementation over
    /// stored addresses must compare them the same way. An `Err` means the lookup itself failed (Slack down),
    /// which is different from "no such account".
    async fn user_by_email(&self, email: &str) -> anyhow::Result<Option<SlackUserId>>;
}

/// The form of an email used for matching: trimmed, lower-cased.
pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}
