//! The Redis cache of PagerDuty answers, so an approval click does not wait on PagerDuty every time.
//!
//! An optimisation only: any Redis failure reads as "nothing cached" and the caller asks PagerDuty. Freshness is
//! judged by the caller against the injected clock from the `as_of` stored in the entry; the Redis expiry only
//! clears entries nobody could use any more. Keys carry a hash tag so one entry lives in one cluster slot.
//!
//! Whoever can write to Redis must not be able to add an approver by editing a cached roster, so entries are sealed
//! ([`crate::seal`], purpose `Roster`) over their key and content: `<seal hex>\n<snapshot JSON>`. An entry whose seal
//! does not match is logged as a security event and read as "nothing cached", so PagerDuty is asked afresh.

use std::time::Duration;

use anyhow::Context;
use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::redis_connection::Connection;
use serde::{Deserialize, Serialize};

use super::directory::Exclusion;
use crate::request::{OnCallEntry, Roster, RosterSource};
use crate::seal::Sealer;

/// Bound on one cache command, so a hanging Redis costs little before the caller goes to PagerDuty.
const DEFAULT_OP_TIMEOUT: Duration = Duration::from_millis(500);

/// What PagerDuty said for one set of sources, already mapped to Slack users.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// `as_of` is when PagerDuty was asked.
    pub roster: Roster,
    /// On-call people without a Slack account that may approve, left out of `roster`.
    pub unmapped: Vec<UnmappedOnCall>,
}

/// Someone on call in PagerDuty who has no Slack account with their PagerDuty email, so cannot approve.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct UnmappedOnCall {
    pub pagerduty_user_id: String,
    pub name: String,
    pub email: String,
    /// Where they are on call.
    pub source: RosterSource,
    pub evidence: String,
    /// Set when a Slack account has their email but may not approve (a guest, a bot, deactivated); `None` when no
    /// account has it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub excluded: Option<Exclusion>,
}

impl UnmappedOnCall {
    pub(super) fn from_entry(id: &str, name: &str, email: &str, entry: OnCallEntry) -> UnmappedOnCall {
        UnmappedOnCall {
            pagerduty_user_id: id.to_owned(),
            name: name.to_owned(),
            email: email.to_owned(),
            source: entry.source,
            evidence: entry.evidence,
            excluded: None,
        }
    }
}

/// A Redis-backed cache of [`Snapshot`]s under one key prefix.
#[derive(Clone)]
pub struct RosterCache {
    connection: Connection,
    prefix: String,
    op_timeout: Duration,
    /// Seals entries; without one (tests of the cache alone) entries are plain JSON.
    sealer: Option<Sealer>,
}

impl std::fmt::Debug for RosterCache {
    // The connection's Debug could show the Redis URL, which may hold a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RosterCache").field("prefix", &self.prefix).finish_non_exhaustive()
    }
}

impl RosterCache {
    /// A cache in the (single-node) Redis at `redis_url`. Connects lazily, so a Redis that is down now does not stop start-up
    /// or roster building; it is retried on later use.
    pub fn new(redis_url: &str, key_prefix: &str) -> anyhow::Result<RosterCache> {
        // The URL may carry a password: keep it out of the error text.
        let client =
            redis::Client::open(redis_url).map_err(|_| anyhow::anyhow!("REDIS_URL is not a valid Redis URL"))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(DEFAULT_OP_TIMEOUT))
            .set_response_timeout(Some(DEFAULT_OP_TIMEOUT))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(200));
        let connection = ConnectionManager::new_lazy_with_config(client, config)
            .context("setting up the Redis connection of the on-call cache")?;
        Ok(RosterCache::with_connection(Connection::Single(connection), key_prefix))
    }

    /// A cache over an existing connection: `jitgate run` shares the request store's, which may be TLS or a
    /// Redis Cluster.
    pub fn with_connection(connection: Connection, key_prefix: &str) -> RosterCache {
        RosterCache { connection, prefix: key_prefix.to_owned(), op_timeout: DEFAULT_OP_TIMEOUT, sealer: None }
    }

    /// Seals every entry written and checks every entry read (what `jitgate run` does).
    pub fn with_sealer(mut self, sealer: Sealer) -> RosterCache {
        self.sealer = Some(sealer);
        self
    }

    fn sealed_bytes(key: &str, json: &str) -> Vec<u8> {
        [key.as_bytes(), b"\n", json.as_bytes()].concat()
    }

    /// The key of one set of sources: `<prefix>:{oncall:<hash>}`; the braces are the cluster hash tag.
    pub fn key(&self, sources_hash: &str) -> String {
        format!("{}:{{oncall:{sources_hash}}}", self.prefix)
    }

    /// The cached snapshot under `key`, `Ok(None)` when there is none or it cannot be read as one.
    pub async fn get(&self, key: &str) -> anyhow::Result<Option<Snapshot>> {
        let mut connection = self.connection.clone();
        let text: Option<String> = tokio::time::timeout(self.op_timeout, connection.get(key))
            .await
            .context("Redis did not answer in time")?
            .context("reading the on-call cache")?;
        let Some(text) = text else { return Ok(None) };
        let json = match &self.sealer {
            None => text.as_str(),
            Some(sealer) => {
                let verified = text
                    .split_once('\n')
                    .filter(|(seal, json)| sealer.verify(&Self::sealed_bytes(key, json), seal))
                    .map(|(_, json)| json);
                match verified {
                    Some(json) => json,
                    None => {
                        tracing::error!(
                            key,
                            "security: an on-call cache entry was changed outside jitgate; ignoring it"
                        );
                        return Ok(None);
                    }
                }
            }
        };
        match serde_json::from_str(json) {
            Ok(snapshot) => Ok(Some(snapshot)),
            Err(e) => {
                // An entry from another version of jitgate: ignore it, the next fetch overwrites it.
                tracing::warn!(key, "ignoring an unreadable on-call cache entry: {e}");
                Ok(None)
            }
        }
    }

    /// Stores `snapshot` under `key`, kept by Redis for `keep_for`.
    pub async fn put(&self, key: &str, snapshot: &Snapshot, keep_for: Duration) -> anyhow::Result<()> {
        let json = serde_json::to_string(snapshot).context("encoding the on-call snapshot")?;
        let text = match &self.sealer {
            Some(sealer) => format!("{}\n{json}", sealer.seal(&Self::sealed_bytes(key, &json))),
            None => json,
        };
        let millis = u64::try_from(keep_for.as_millis()).unwrap_or(u64::MAX).max(1);
        let mut connection = self.connection.clone();
        let () = tokio::time::timeout(self.op_timeout, connection.pset_ex(key, text, millis))
            .await
            .context("Redis did not answer in time")?
            .context("writing the on-call cache")?;
        Ok(())
    }
}
