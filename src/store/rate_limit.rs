//! The per-user limit on new requests: a sliding window kept in one sorted set per user.
//!
//! Time comes from the caller's clock, not from Redis `TIME`, so every replica and every test decides with the
//! same "now" the rest of jitgate uses.

use std::sync::LazyLock;
use std::time::Duration;

use rand::Rng;
use redis::Script;
use time::OffsetDateTime;

use super::{RequestStore, StoreError, unix_ms};
use crate::ids::SlackUserId;

/// At most `max` new requests per user in any `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub max: u32,
    pub window: Duration,
}

/// What [`RequestStore::admit_new_request`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Counted against the user's window; go ahead.
    Admitted,
    /// Over the limit; the next request would be admitted after `retry_after`.
    Limited { retry_after: Duration },
}

/// KEYS[1] = the user's sorted set; ARGV = now (ms), window (ms), max, a unique member.
/// An admission at time t counts while now < t + window. Replies {1, 0} when admitted, {0, retry_after_ms} when
/// not. The key expires one window after the last admission, when nothing in it counts any more; that expiry runs
/// on Redis's clock and only collects garbage: which admissions count is decided by the scores alone.
static ADMIT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local max = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < max then
  redis.call('ZADD', KEYS[1], now, ARGV[4])
  redis.call('PEXPIRE', KEYS[1], window)
  return {1, 0}
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if oldest[2] == nil then
  return {0, window}
end
return {0, tonumber(oldest[2]) + window - now}
",
    )
});

impl RequestStore {
    /// Counts one new request by `user` at `now` if that keeps them within `limit`; otherwise says how long until
    /// they may ask again. Check and count are one script, so concurrent requests cannot both slip under the limit.
    pub async fn admit_new_request(
        &self,
        user: &SlackUserId,
        limit: RateLimit,
        now: OffsetDateTime,
    ) -> Result<Admission, StoreError> {
        let window_ms = i64::try_from(limit.window.as_millis()).unwrap_or(i64::MAX);
        if window_ms <= 0 {
            return Err(StoreError::InvalidSettings("the rate limit window must be at least 1 ms".to_owned()));
        }
        let now_ms = unix_ms(now);
        // Two requests in the same millisecond must be two members of the set, not one.
        let member = format!("{now_ms}:{:016x}", rand::rng().random::<u64>());
        let mut invocation = ADMIT.prepare_invoke();
        invocation.key(self.keys.rate_limit(user)).arg(now_ms).arg(window_ms).arg(limit.max).arg(member);
        let (admitted, retry_after_ms): (i64, i64) = self.invoke(invocation).await?;
        if admitted == 1 {
            Ok(Admission::Admitted)
        } else {
            // Never below 1 ms: "retry after 0" would invite a busy loop.
            let retry_after = Duration::from_millis(u64::try_from(retry_after_ms).unwrap_or(0).max(1));
            Ok(Admission::Limited { retry_after })
        }
    }
}
