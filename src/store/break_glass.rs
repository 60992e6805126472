//! Break-glass bookkeeping: how many times each person used it on a UTC day (checked and counted atomically, so
//! concurrent uses cannot both slip under the limit), and which break-glass runs still await review (a hint for
//! the sweeper, ordered by when the review is due).

use std::sync::LazyLock;

use redis::Script;
use time::OffsetDateTime;

use super::{RequestStore, StoreError, unix_ms};
use crate::ids::{RequestId, SlackUserId};

/// What [`RequestStore::count_break_glass`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakGlassAdmission {
    /// Counted: this is the user's `used`-th break-glass of the day.
    Counted { used: u32 },
    /// The user already used `limit` today; nothing was counted.
    OverLimit,
}

/// KEYS[1] = the user's counter for the day; ARGV = limit, expiry (s). Counts and replies the new count, or 0
/// when the limit is reached. The counter expires two days later (only garbage collection).
static COUNT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local used = tonumber(redis.call('GET', KEYS[1]) or '0')
if used >= tonumber(ARGV[1]) then
  return 0
end
used = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
return used
",
    )
});

/// Two days, so a counter outlives its day in every time zone and is then collected.
const COUNTER_LIFETIME_SECS: u64 = 2 * 24 * 3600;

impl RequestStore {
    /// Counts one break-glass use by `user` on the UTC day of `now` if they used it fewer than `limit` times that
    /// day. Check and count are one script.
    pub async fn count_break_glass(
        &self,
        user: &SlackUserId,
        limit: u32,
        now: OffsetDateTime,
    ) -> Result<BreakGlassAdmission, StoreError> {
        let day = now.to_offset(time::UtcOffset::UTC).date().to_string();
        let mut invocation = COUNT.prepare_invoke();
        invocation.key(self.keys.break_glass_uses(user, &day)).arg(limit).arg(COUNTER_LIFETIME_SECS);
        let used: u32 = self.invoke(invocation).await?;
        Ok(if used == 0 { BreakGlassAdmission::OverLimit } else { BreakGlassAdmission::Counted { used } })
    }

    /// Remembers that the break-glass run `id` awaits review, due at `due`.
    pub async fn await_review(&self, id: &RequestId, due: OffsetDateTime) -> Result<(), StoreError> {
        let mut cmd = redis::cmd("ZADD");
        cmd.arg(self.keys.break_glass_unreviewed()).arg(unix_ms(due)).arg(id.as_str());
        let _: i64 = self.query(cmd).await?;
        Ok(())
    }

    /// Break-glass runs whose review was due before `now`, oldest first.
    pub async fn reviews_overdue(&self, now: OffsetDateTime, limit: usize) -> Result<Vec<RequestId>, StoreError> {
        self.due_in(self.keys.break_glass_unreviewed(), now, limit).await
    }

    /// Forgets a break-glass run: reviewed, or alerted on.
    pub async fn forget_review(&self, id: &RequestId) -> Result<(), StoreError> {
        self.forget_in(self.keys.break_glass_unreviewed(), id).await
    }
}
