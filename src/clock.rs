//! Time as a dependency: production reads the system clock, tests move a manual one.
//!
//! Every decision that depends on "now" (approval expiry, credential expiry, audit timestamps) takes its time from
//! a [`Clock`], so expiry is tested by advancing a clock instead of sleeping.

use std::fmt::Debug;
use std::sync::{Arc, Mutex};

use time::{Duration, OffsetDateTime};

/// A source of the current time.
pub trait Clock: Send + Sync + Debug {
    fn now(&self) -> OffsetDateTime;
}

/// The clock every module receives.
pub type SharedClock = Arc<dyn Clock>;

/// The real wall clock (UTC).
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// A clock that only moves when told to.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<OffsetDateTime>,
}

impl ManualClock {
    pub fn new(start: OffsetDateTime) -> Arc<Self> {
        Arc::new(ManualClock { now: Mutex::new(start) })
    }

    /// Moves the clock forward (or back, with a negative duration).
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        *now += by;
    }

    pub fn set(&self, to: OffsetDateTime) {
        *self.now.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = to;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        *self.now.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = ManualClock::new(datetime!(2026-11-28 12:00 UTC));
        assert_eq!(clock.now(), datetime!(2026-11-28 12:00 UTC));
        clock.advance(Duration::minutes(31));
        assert_eq!(clock.now(), datetime!(2026-11-28 12:31 UTC));
    }
}
