//! Envelope de-duplication. Slack retries an envelope that was not acknowledged in time and may hand it to
//! another replica's socket, so the same button click can arrive twice; only the first delivery is handled.

use std::time::Duration;

use super::{RequestStore, StoreError};

impl RequestStore {
    /// True the first time `envelope_id` is seen within `ttl`, false for every later delivery of it.
    ///
    /// One `SET key 1 NX PX ttl`: atomic, so of any number of replicas receiving the same envelope exactly one
    /// gets true. The id is checked and escaped into the key (see the key scheme): an empty or overlong id is
    /// refused with [`StoreError::InvalidEnvelopeId`].
    pub async fn first_delivery(&self, envelope_id: &str, ttl: Duration) -> Result<bool, StoreError> {
        let key = self.keys.envelope(envelope_id)?;
        // PX 0 is an error in Redis; a sub-millisecond TTL means "the shortest there is".
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let mut cmd = redis::cmd("SET");
        cmd.arg(key).arg(1).arg("NX").arg("PX").arg(ttl_ms);
        // `SET … NX` answers OK when it set the key and nil when the key was already there.
        let reply: Option<String> = self.query(cmd).await?;
        Ok(reply.is_some())
    }
}
