//! Who a PagerDuty user is in Slack: the lookup by email that links the two identities.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

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

    /// The Slack account with this email and whether it may approve. Only full members of the workspace may:
    /// a guest, a bot or app user, or a deactivated account is found but [`DirectoryMatch::Excluded`], so the
    /// person stays off the roster and the card says why. The default, for directories that only know members,
    /// reads every account [`user_by_email`](Self::user_by_email) finds as a member.
    async fn match_email(&self, email: &str) -> anyhow::Result<DirectoryMatch> {
        Ok(match self.user_by_email(email).await? {
            Some(user) => DirectoryMatch::Member(user),
            None => DirectoryMatch::NoAccount,
        })
    }
}

/// What the directory knows of an email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirectoryMatch {
    /// A full member of the workspace: may approve.
    Member(SlackUserId),
    /// No Slack account has this email.
    NoAccount,
    /// An account that must not approve, and why.
    Excluded(SlackUserId, Exclusion),
}

/// Why a Slack account found for an on-call person may not approve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Exclusion {
    /// Deactivated (`deleted`).
    Deactivated,
    /// A bot or an app's user (`is_bot`, `is_app_user`): not a person.
    Bot,
    /// A guest (`is_restricted`, `is_ultra_restricted`): outside the organisation's full members.
    Guest,
}

/// The form of an email used for matching: trimmed, lower-cased.
pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}
