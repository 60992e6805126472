//! The per-user limit on refusals appended to the audit trail one by one.
//!
//! A burst of malformed commands or refused clicks must not crowd the single audit chain that real requests and
//! approvals append to. Per user and fixed window, the first `max` refusals are appended as they come; further ones
//! are only counted here, and the count goes to the trail as one summary entry when the window is over: carried by
//! the user's next refusal after it, or collected by the sweeper ([`RequestStore::refusals_due`]). So every
//! refusal is accounted for in the trail, by count if not one by one.
//!
//! ```text
//! <prefix>:refusals:{U012AB3CD}   hash: start, appended, counted, first, last (ms) of the user's current window
//! <prefix>:refusals-due           sorted set: user → end of a window holding counted refusals (ms); for the sweeper
//! ```
//!
//! As in [`super::rate_limit`], time comes from the caller's clock, and each decision is one script.

use std::sync::LazyLock;

use redis::Script;
use time::OffsetDateTime;

use super::{RateLimit, RequestStore, StoreError, add_ms, unix_ms};
use crate::ids::SlackUserId;

/// Refusals of one user that were counted instead of appended, for the summary entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountedRefusals {
    pub user: SlackUserId,
    pub count: u64,
    /// The first and the last of them.
    pub first: OffsetDateTime,
    pub last: OffsetDateTime,
}

/// What [`RequestStore::count_refusal`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefusalCount {
    /// Append this refusal. `carried`: the refusals counted in the user's previous window, to be appended as one
    /// summary entry first.
    Append { carried: Option<CountedRefusals> },
    /// Counted, not to be appended: the user's window already holds `max` appended refusals. Its summary is due
    /// at `window_ends`.
    Counted { window_ends: OffsetDateTime },
}

/// KEYS[1] = the user's window; ARGV = now (ms), window (ms), max, key lifetime (ms).
/// Replies {1, count, first, last} to append (count > 0: the previous window's counted refusals, carried over);
/// {0, window end} when counted.
static COUNT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local max = tonumber(ARGV[3])
local h = redis.call('HMGET', KEYS[1], 'start', 'appended', 'counted', 'first', 'last')
local start = tonumber(h[1])
if start == nil or now >= start + window then
  local counted = tonumber(h[3]) or 0
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[1], 'start', now, 'appended', 1, 'counted', 0)
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
  if start ~= nil and counted > 0 then
    return {1, counted, tonumber(h[4]), tonumber(h[5])}
  end
  return {1, 0, 0, 0}
end
if (tonumber(h[2]) or 0) < max then
  redis.call('HINCRBY', KEYS[1], 'appended', 1)
  return {1, 0, 0, 0}
end
if (tonumber(h[3]) or 0) == 0 then
  redis.call('HSET', KEYS[1], 'first', now)
end
redis.call('HINCRBY', KEYS[1], 'counted', 1)
redis.call('HSET', KEYS[1], 'last', now)
return {0, start + window}
",
    )
});

/// KEYS[1] = the user's window; ARGV = now (ms), window (ms). Takes a finished window's counted refusals:
/// {1, count, first, last}, the window removed; {2, end, counted} while the window is still open; {0} when there
/// is none.
static TAKE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local h = redis.call('HMGET', KEYS[1], 'start', 'counted', 'first', 'last')
local start = tonumber(h[1])
if start == nil then
  return {0}
end
if now < start + window then
  return {2, start + window, tonumber(h[2]) or 0}
end
redis.call('DEL', KEYS[1])
return {1, tonumber(h[2]) or 0, tonumber(h[3]) or 0, tonumber(h[4]) or 0}
",
    )
});

impl RequestStore {
    /// Counts one refusal of `user` at `now` against `limit` and says whether to append it to the audit trail.
    pub async fn count_refusal(
        &self,
        user: &SlackUserId,
        limit: RateLimit,
        now: OffsetDateTime,
    ) -> Result<RefusalCount, StoreError> {
        let window_ms = window_ms(limit)?;
        let now_ms = unix_ms(now);
        // Long enough for the sweeper to collect the counts of a finished window after an outage.
        let lifetime_ms = add_ms(window_ms, self.settings.finished_retention);
        let mut invocation = COUNT.prepare_invoke();
        invocation.key(self.keys.refusals(user)).arg(now_ms).arg(window_ms).arg(limit.max).arg(lifetime_ms);
        let reply: Vec<i64> = self.invoke(invocation).await?;
        match reply.as_slice() {
            [1, count, first, last] => {
                let carried = (*count > 0).then(|| counted(user, *count, *first, *last));
                Ok(RefusalCount::Append { carried })
            }
            [0, window_end] => {
                // The sweeper's hint. Written after the count, so a failure here leaves the count to be carried
                // by the user's next refusal instead.
                let mut index = redis::cmd("ZADD");
                index.arg(self.keys.refusals_due()).arg(window_end).arg(user.as_str());
                let _: i64 = self.query(index).await?;
                Ok(RefusalCount::Counted { window_ends: from_ms(*window_end) })
            }
            other => Err(StoreError::Corrupt {
                what: format!("the refusal count of {user}"),
                detail: format!("unexpected reply {other:?}"),
            }),
        }
    }

    /// Up to `limit` users whose window with counted refusals ended at or before `now`. A hint, like the pending
    /// index: [`RequestStore::take_counted_refusals`] decides.
    pub async fn refusals_due(&self, now: OffsetDateTime, limit: usize) -> Result<Vec<SlackUserId>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut cmd = redis::cmd("ZRANGE");
        cmd.arg(self.keys.refusals_due()).arg("-inf").arg(unix_ms(now)).arg("BYSCORE").arg("LIMIT").arg(0).arg(limit);
        let members: Vec<String> = self.query(cmd).await?;
        Ok(members.iter().filter_map(|m| SlackUserId::parse(m)).collect())
    }

    /// Takes the refusals counted in `user`'s finished window (removing the window), or `None`. A window still
    /// open stays, and stays listed for the sweeper while it holds counted refusals.
    pub async fn take_counted_refusals(
        &self,
        user: &SlackUserId,
        limit: RateLimit,
        now: OffsetDateTime,
    ) -> Result<Option<CountedRefusals>, StoreError> {
        let mut invocation = TAKE.prepare_invoke();
        invocation.key(self.keys.refusals(user)).arg(unix_ms(now)).arg(window_ms(limit)?);
        let reply: Vec<i64> = self.invoke(invocation).await?;
        let taken = match reply.as_slice() {
            [2, window_end, count] if *count > 0 => {
                let mut index = redis::cmd("ZADD");
                index.arg(self.keys.refusals_due()).arg(window_end).arg(user.as_str());
                let _: i64 = self.query(index).await?;
                return Ok(None);
            }
            [1, count, first, last] if *count > 0 => Some(counted(user, *count, *first, *last)),
            [0] | [1, ..] | [2, ..] => None,
            other => {
                return Err(StoreError::Corrupt {
                    what: format!("the counted refusals of {user}"),
                    detail: format!("unexpected reply {other:?}"),
                });
            }
        };
        let mut cmd = redis::cmd("ZREM");
        cmd.arg(self.keys.refusals_due()).arg(user.as_str());
        let _: i64 = self.query(cmd).await?;
        Ok(taken)
    }

    /// How many refusals of `user` the current window has appended and counted (for operators and tests).
    pub async fn refusals_in_window(&self, user: &SlackUserId) -> Result<(u64, u64), StoreError> {
        let mut cmd = redis::cmd("HMGET");
        cmd.arg(self.keys.refusals(user)).arg("appended").arg("counted");
        let (appended, counted): (Option<u64>, Option<u64>) = self.query(cmd).await?;
        Ok((appended.unwrap_or(0), counted.unwrap_or(0)))
    }
}

fn window_ms(limit: RateLimit) -> Result<i64, StoreError> {
    let window_ms = i64::try_from(limit.window.as_millis()).unwrap_or(i64::MAX);
    if window_ms <= 0 {
        return Err(StoreError::InvalidSettings("the refusal window must be at least 1 ms".to_owned()));
    }
    Ok(window_ms)
}

fn counted(user: &SlackUserId, count: i64, first: i64, last: i64) -> CountedRefusals {
    CountedRefusals {
        user: user.clone(),
        count: u64::try_from(count).unwrap_or(0),
        first: from_ms(first),
        last: from_ms(last),
    }
}

fn from_ms(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}
