//! The Slack directory the on-call code needs, adapted from the Slack client here at the composition root, so
//! that neither `slack` nor `oncall` has to know the other.

use async_trait::async_trait;

use crate::ids::SlackUserId;
use crate::oncall::SlackDirectory;
use crate::slack::SlackWeb;

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
}
