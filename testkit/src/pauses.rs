//! A [`Pause`] that records every wait a client asks for and returns at once: retry tests check the waits
//! (e.g. `Retry-After` honoured) without spending them.

use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use jitgate::pause::Pause;

#[derive(Debug, Default)]
pub struct RecordedPauses(Mutex<Vec<Duration>>);

#[async_trait]
impl Pause for RecordedPauses {
    async fn pause(&self, duration: Duration) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).push(duration);
    }
}

impl RecordedPauses {
    /// The waits asked for so far, in order.
    pub fn taken(&self) -> Vec<Duration> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}
