//! Remembers which Slack member has an email, for hours, so building a roster does not wait on one
//! `users.lookupByEmail` per on-call person every time.
//!
//! Only the link between two identities is remembered, never who is on call: PagerDuty is asked for that as
//! before, and someone no longer on call is not on the roster whatever this cache holds. What it can make stale is
//! the account itself: an account deactivated within the TTL cannot click anyway (Slack signs it out), while a
//! member turned guest within the TTL still counts as a member until the entry expires — `docs/security.md` lists
//! that limit. Only [`DirectoryMatch::Member`] answers are kept: "no account" and excluded accounts are asked
//! again each time, so a new hire or a guest made member is seen at once, and those answers only ever refuse.
//! Per process, in memory: a replica that restarts asks Slack again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use time::OffsetDateTime;

use super::directory::{DirectoryMatch, SlackDirectory};
use crate::clock::SharedClock;
use crate::ids::SlackUserId;

/// How long an email → member link is trusted. Such links almost never change; hours keep Slack's rate limits
/// (Tier 4, ~100 a minute) far away and still pick up the rare change the same day.
pub const DEFAULT_TTL: Duration = Duration::from_secs(6 * 60 * 60);

/// More on-call people than any organisation has: past this many entries the cache starts again empty, so a flood
/// of distinct emails cannot grow memory without bound.
const MAX_ENTRIES: usize = 10_000;

/// A [`SlackDirectory`] that remembers members found by `inner`.
pub struct CachedDirectory {
    inner: Arc<dyn SlackDirectory>,
    clock: SharedClock,
    ttl: time::Duration,
    members: Mutex<HashMap<String, (SlackUserId, OffsetDateTime)>>,
}

impl CachedDirectory {
    pub fn new(inner: Arc<dyn SlackDirectory>, clock: SharedClock, ttl: Duration) -> CachedDirectory {
        let ttl = time::Duration::try_from(ttl).unwrap_or(time::Duration::ZERO);
        CachedDirectory { inner, clock, ttl, members: Mutex::new(HashMap::new()) }
    }

    fn remembered(&self, email: &str, now: OffsetDateTime) -> Option<SlackUserId> {
        let members = self.members.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let (user, found_at) = members.get(email)?;
        // A link "found in the future" (the clock moved back) is not trusted either.
        let age = now - *found_at;
        (!age.is_negative() && age < self.ttl).then(|| user.clone())
    }

    fn remember(&self, email: &str, user: SlackUserId, now: OffsetDateTime) {
        let mut members = self.members.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if members.len() >= MAX_ENTRIES && !members.contains_key(email) {
            members.clear();
        }
        members.insert(email.to_owned(), (user, now));
    }
}

#[async_trait]
impl SlackDirectory for CachedDirectory {
    async fn user_by_email(&self, email: &str) -> anyhow::Result<Option<SlackUserId>> {
        Ok(match self.match_email(email).await? {
            DirectoryMatch::Member(user) => Some(user),
            DirectoryMatch::NoAccount | DirectoryMatch::Excluded(..) => None,
        })
    }

    async fn match_email(&self, email: &str) -> anyhow::Result<DirectoryMatch> {
        let now = self.clock.now();
        if let Some(user) = self.remembered(email, now) {
            return Ok(DirectoryMatch::Member(user));
        }
        let found = self.inner.match_email(email).await?;
        if let DirectoryMatch::Member(user) = &found {
            self.remember(email, user.clone(), now);
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::clock::ManualClock;
    use crate::oncall::Exclusion;

    /// Answers from a fixed table and counts the questions.
    struct Counting {
        answers: HashMap<String, DirectoryMatch>,
        asked: AtomicUsize,
    }

    #[async_trait]
    impl SlackDirectory for Counting {
        async fn user_by_email(&self, _: &str) -> anyhow::Result<Option<SlackUserId>> {
            unreachable!("the cache asks match_email")
        }
        async fn match_email(&self, email: &str) -> anyhow::Result<DirectoryMatch> {
            self.asked.fetch_add(1, Ordering::Relaxed);
            Ok(self.answers.get(email).cloned().unwrap_or(DirectoryMatch::NoAccount))
        }
    }

    fn user(id: &str) -> SlackUserId {
        SlackUserId::parse(id).expect("a Slack user id")
    }

    #[tokio::test]
    async fn members_are_remembered_for_the_ttl_and_nothing_else_is() {
        let start = time::macros::datetime!(2026-11-30 12:00 UTC);
        let clock = ManualClock::new(start);
        let inner = Arc::new(Counting {
            answers: HashMap::from([
                ("tim@example.com".to_owned(), DirectoryMatch::Member(user("U0TIM"))),
                ("guest@example.com".to_owned(), DirectoryMatch::Excluded(user("U0GST"), Exclusion::Guest)),
            ]),
            asked: AtomicUsize::new(0),
        });
        let cache = CachedDirectory::new(inner.clone(), clock.clone(), Duration::from_secs(3600));
        let asked = || inner.asked.load(Ordering::Relaxed);

        assert_eq!(cache.match_email("tim@example.com").await.unwrap(), DirectoryMatch::Member(user("U0TIM")));
        assert_eq!(cache.match_email("tim@example.com").await.unwrap(), DirectoryMatch::Member(user("U0TIM")));
        assert_eq!(asked(), 1, "the member was remembered");

        for _ in 0..2 {
            assert!(matches!(cache.match_email("guest@example.com").await.unwrap(), DirectoryMatch::Excluded(..)));
            assert_eq!(cache.match_email("new@example.com").await.unwrap(), DirectoryMatch::NoAccount);
        }
        assert_eq!(asked(), 5, "refusing answers are asked again every time");

        clock.advance(time::Duration::hours(1));
        cache.match_email("tim@example.com").await.unwrap();
        assert_eq!(asked(), 6, "an entry as old as the TTL is asked again");

        clock.set(start);
        cache.match_email("tim@example.com").await.unwrap();
        assert_eq!(asked(), 7, "an entry from the future is not trusted");
    }
}
