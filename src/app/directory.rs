//! The Slack directory the on-call code needs, adapted from the Slack client here at the composition root, so
//! that neither `slack` nor `oncall` has to know the other.

use async_trait::async_trait;

use crate::ids::SlackUserId;
use crate::oncall::{DirectoryMatch, Exclusion, SlackDirectory};
use crate::slack::{SlackAccount, SlackWeb};

/// [`SlackDirectory`] over `users.lookupByEmail`.
#[derive(Debug, Clone)]
pub struct SlackWebDirectory(SlackWeb);

impl SlackWebDirectory {
    pub fn new(web: SlackWeb) -> SlackWebDirectory {
        SlackWebDirectory(web)
    }
}

#[async_trait]
impl SlackDirectory for SlackWebDirectory {
    async fn user_by_email(&self, email: &str) -> anyhow::Result<Option<SlackUserId>> {
        Ok(self.0.user_by_email(email).await?)
    }

    async fn match_email(&self, email: &str) -> anyhow::Result<DirectoryMatch> {
        let Some(account) = self.0.account_by_email(email).await? else { return Ok(DirectoryMatch::NoAccount) };
        Ok(match exclusion(&account) {
            Some(why) => DirectoryMatch::Excluded(account.id, why),
            None => DirectoryMatch::Member(account.id),
        })
    }
}

/// Why `account` may not approve, if it may not: only active, human, full members of the workspace approve.
fn exclusion(account: &SlackAccount) -> Option<Exclusion> {
    if account.deleted {
        Some(Exclusion::Deactivated)
    } else if account.is_bot || account.is_app_user {
        Some(Exclusion::Bot)
    } else if account.is_restricted || account.is_ultra_restricted {
        Some(Exclusion::Guest)
    } else {
        None
    }
}
