//! Redis: access-request records with TTLs, atomic state transitions, envelope de-duplication and the
//! per-user limits on new requests and on refusals appended to the audit trail one by one.
//!
//! Every state change is one Lua script doing compare-and-set on the stored state and version, so any number of
//! replicas can race on the same request and exactly one write lands; the others get
//! [`Transition::Conflict`] with the record as it now is ("someone else already did it" is a normal outcome).
//! Keys are hash-tagged per request (see [`keys`]), so every script touches one slot and runs on Redis Cluster.
//!
//! The connection (see [`connection`]) is one node or a Redis Cluster, over TCP or TLS; either reconnects by itself
//! after Redis restarts or fails over. Connection attempts,
//! replies and each whole operation are bounded by timeouts, so a dead Redis gives [`StoreError::Unavailable`]
//! within seconds instead of a hang. Nothing here retries a write: after a broken connection its outcome is
//! unknown and only the caller, by loading the record again, can decide what to do.
//!
//! Needs Redis 6.2 or later (`ZADD … LT`, `ZRANGE … BYSCORE`).

mod break_glass;
mod connection;
mod dedup;
mod error;
mod keys;
mod rate_limit;
mod refusal_limit;
mod requests;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use redis::{FromRedisValue, RedisResult};
use secrecy::{ExposeSecret, SecretString};

pub use break_glass::BreakGlassAdmission;
pub use error::StoreError;
pub use keys::MAX_ENVELOPE_ID_LEN;
pub use rate_limit::{Admission, RateLimit};
pub use refusal_limit::{CountedRefusals, RefusalCount};
pub use requests::{Created, Transition};

use keys::Keys;
use tracing::Instrument as _;

/// How the store names its keys, how long records live, and how long it waits for Redis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreSettings {
    /// Start of every key, e.g. `jitgate`. Letters, digits and `-_.:` only; lets several deployments (or tests)
    /// share one Redis.
    pub key_prefix: String,
    /// How long a pending record outlives its approval window (`expires_at`). During the grace the sweeper can
    /// still find the record, turn its Slack card into "Expired" and audit the expiry; only after it does Redis
    /// drop the key. It should cover the longest outage after which expiries must still be reported.
    pub pending_grace: Duration,
    /// How long an approved or running record is kept after it entered that state. Generous: an execution
    /// takes minutes, and the record must not vanish under it.
    pub active_retention: Duration,
    /// How long a finished record (succeeded, failed, denied, expired, cancelled) is kept after it finished,
    /// for late button clicks and look-ups. The audit trail, not Redis, is the permanent record.
    pub finished_retention: Duration,
    /// Bound on one TCP connect (and Redis handshake) attempt.
    pub connect_timeout: Duration,
    /// Bound on waiting for the reply to one command.
    pub response_timeout: Duration,
    /// Bound on one whole store operation, including waiting for a reconnect in progress.
    pub operation_timeout: Duration,
    /// How many times a lost connection is retried (with short exponential backoff) before an operation fails.
    pub reconnect_attempts: usize,
    /// The URL lists the seed nodes of a Redis Cluster (comma-separated) rather than one Redis.
    pub cluster: bool,
    /// CA certificates (PEM) to trust for `rediss://` instead of the OS roots, for a private CA.
    pub ca_file: Option<std::path::PathBuf>,
}

impl Default for StoreSettings {
    fn default() -> Self {
        StoreSettings {
            key_prefix: "jitgate".to_owned(),
            pending_grace: Duration::from_secs(24 * 60 * 60),
            active_retention: Duration::from_secs(24 * 60 * 60),
            finished_retention: Duration::from_secs(7 * 24 * 60 * 60),
            connect_timeout: Duration::from_secs(2),
            response_timeout: Duration::from_secs(2),
            operation_timeout: Duration::from_secs(5),
            reconnect_attempts: 2,
            cluster: false,
            ca_file: None,
        }
    }
}

/// Shortest backoff between reconnect attempts; the longest is [`MAX_RECONNECT_DELAY`].
const MIN_RECONNECT_DELAY: Duration = Duration::from_millis(100);
const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(1);

/// The Redis-backed store of access requests. Cheap to clone: clones share one connection.
#[derive(Clone)]
pub struct RequestStore {
    conn: crate::redis_connection::Connection,
    keys: Keys,
    settings: Arc<StoreSettings>,
    /// `host:port` (or socket path) for messages; never the URL, which may carry a password.
    endpoint: Arc<str>,
    /// Kept only to scrub it from error messages.
    password: Option<Arc<SecretString>>,
    /// Where each command is counted and timed (`service="redis"`, `op` = the command, `pipeline` or `script`).
    metrics: Option<crate::telemetry::Metrics>,
}

impl std::fmt::Debug for RequestStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestStore")
            .field("endpoint", &self.endpoint)
            .field("key_prefix", &self.settings.key_prefix)
            .finish_non_exhaustive()
    }
}

impl RequestStore {
    /// Connects to Redis at `url` (with `settings.cluster`, one or more comma-separated seed nodes of a cluster) and
    /// checks it answers. Fails with [`StoreError::Unavailable`] when it cannot be reached within the configured
    /// timeouts, [`StoreError::UntrustedCertificate`] or [`StoreError::AuthenticationFailed`] when TLS or the
    /// credentials in the URL are refused, and [`StoreError::InvalidSettings`] for a bad setting.
    pub async fn connect(url: &str, settings: StoreSettings) -> Result<RequestStore, StoreError> {
        let keys = Keys::new(&settings.key_prefix)?;
        for (name, value) in [
            ("pending_grace", settings.pending_grace),
            ("active_retention", settings.active_retention),
            ("finished_retention", settings.finished_retention),
            ("connect_timeout", settings.connect_timeout),
            ("response_timeout", settings.response_timeout),
            ("operation_timeout", settings.operation_timeout),
        ] {
            if value.is_zero() {
                return Err(StoreError::InvalidSettings(format!("{name} must be longer than zero")));
            }
        }
        let connection::Opened { conn, endpoint, password } = connection::open(url, &settings).await?;
        let store = RequestStore { conn, keys, settings: Arc::new(settings), endpoint, password, metrics: None };
        store.ping().await?;
        Ok(store)
    }

    /// Checks that Redis answers, for readiness probes.
    pub async fn ping(&self) -> Result<(), StoreError> {
        let reply: String = self.query(redis::cmd("PING")).await?;
        if reply == "PONG" {
            Ok(())
        } else {
            Err(StoreError::Corrupt { what: "a PING reply".to_owned(), detail: format!("got {reply:?}") })
        }
    }

    /// Counts and times every Redis operation in `metrics`.
    pub fn with_metrics(mut self, metrics: crate::telemetry::Metrics) -> RequestStore {
        self.metrics = Some(metrics);
        self
    }

    /// A clone of the store's connection, for another Redis client of the same Redis (the on-call cache).
    pub fn connection(&self) -> crate::redis_connection::Connection {
        self.conn.clone()
    }

    /// The settings this store was opened with.
    pub fn settings(&self) -> &StoreSettings {
        &self.settings
    }

    /// Runs one command within the operation timeout.
    async fn query<T: FromRedisValue>(&self, cmd: redis::Cmd) -> Result<T, StoreError> {
        let mut conn = self.conn.clone();
        // Commands are built in this module from fixed names, so the name is a bounded label value.
        let op = match cmd.args_iter().next() {
            Some(redis::Arg::Simple(name)) => String::from_utf8_lossy(name).to_ascii_uppercase(),
            _ => "command".to_owned(),
        };
        self.bounded(&op, async move { cmd.query_async(&mut conn).await }).await
    }

    /// Runs a pipeline within the operation timeout.
    async fn query_pipe<T: FromRedisValue>(&self, pipe: redis::Pipeline) -> Result<T, StoreError> {
        let mut conn = self.conn.clone();
        self.bounded("pipeline", async move { pipe.query_async(&mut conn).await }).await
    }

    /// Runs one script within the operation timeout.
    async fn invoke<T: FromRedisValue>(&self, invocation: redis::ScriptInvocation<'_>) -> Result<T, StoreError> {
        let mut conn = self.conn.clone();
        self.bounded("script", async move { invocation.invoke_async(&mut conn).await }).await
    }

    /// Bounds an operation by `operation_timeout` and translates its error. The client's own timeouts cover one
    /// connect or one reply; this also covers waiting out a reconnect with backoff.
    async fn bounded<T>(&self, op: &str, operation: impl Future<Output = RedisResult<T>>) -> Result<T, StoreError> {
        let started = std::time::Instant::now();
        let span = crate::telemetry::traces::external_call_span("redis", op);
        let outcome = tokio::time::timeout(self.settings.operation_timeout, operation).instrument(span.clone()).await;
        let ok = matches!(outcome, Ok(Ok(_)));
        crate::telemetry::traces::record_call_result(&span, ok);
        if let Some(metrics) = &self.metrics {
            metrics.external_call("redis", op, ok, started.elapsed().as_secs_f64());
        }
        match outcome {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(err)) => {
                Err(error::classify(&self.endpoint, self.password.as_ref().map(|p| p.expose_secret()), &err))
            }
            Err(_) => Err(timed_out(&self.endpoint, self.settings.operation_timeout)),
        }
    }
}

fn timed_out(endpoint: &str, after: Duration) -> StoreError {
    StoreError::Unavailable { endpoint: endpoint.to_owned(), detail: format!("no answer within {after:?}") }
}

/// Milliseconds since the Unix epoch, saturating instead of overflowing on absurd dates.
fn unix_ms(at: time::OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(if at.unix_timestamp() < 0 {
        i64::MIN
    } else {
        i64::MAX
    })
}

/// `base_ms` plus `span`, saturating.
fn add_ms(base_ms: i64, span: Duration) -> i64 {
    base_ms.saturating_add(i64::try_from(span.as_millis()).unwrap_or(i64::MAX))
}

/// Redis Cluster runs a script only when all its keys are in one hash slot (`CROSSSLOT` otherwise), and a key a
/// script builds itself (instead of receiving in KEYS) may live on another node. Every script here takes exactly
/// one key, so it runs on one slot by construction; this test keeps it so.
#[cfg(test)]
mod cluster_slots {
    /// The source of every module of the store that may hold a script.
    const SOURCES: [(&str, &str); 7] = [
        ("break_glass.rs", include_str!("break_glass.rs")),
        ("dedup.rs", include_str!("dedup.rs")),
        ("keys.rs", include_str!("keys.rs")),
        ("mod.rs", include_str!("mod.rs")),
        ("rate_limit.rs", include_str!("rate_limit.rs")),
        ("refusal_limit.rs", include_str!("refusal_limit.rs")),
        ("requests.rs", include_str!("requests.rs")),
    ];

    /// The Lua bodies of `Script::new(r"…")` in `source`.
    fn scripts(source: &str) -> Vec<&str> {
        let opening = concat!("Script::new(\n", "        r\"");
        source
            .match_indices(opening)
            .map(|(at, _)| {
                let body = &source[at + opening.len()..];
                &body[..body.find("\",\n").expect("a script ends with a quote and a comma")]
            })
            .collect()
    }

    #[test]
    fn every_script_touches_only_its_one_key() {
        let mut found = 0;
        for (file, source) in SOURCES {
            for script in scripts(source) {
                found += 1;
                for (at, _) in script.match_indices("redis.call(") {
                    let call = &script[at..];
                    let call = &call[..call.find(')').expect("a closed call")];
                    let mut args = call.split(',').map(str::trim);
                    let command = args.next().unwrap_or_default();
                    let key = args.next().unwrap_or_default();
                    assert_eq!(key, "KEYS[1]", "{file}: `{call})` names a key the caller did not pass as KEYS[1]");
                    assert!(!command.contains("..") && !call.contains("KEYS[2]"), "{file}: `{call})`");
                }
                assert!(!script.contains("KEYS[2]"), "{file}: a script with several keys must keep them in one slot");
                assert!(!script.contains("redis.pcall"), "{file}: scan pcall too if a script ever uses it");
            }
        }
        // Six scripts today (create, transition, admit, refusal count and take, break-glass count): the scan must
        // see them.
        assert!(found >= 6, "found only {found} scripts: the scan no longer matches how scripts are written");
    }

    /// A new module with a script must be scanned too: every module that mentions `Script::new` is in SOURCES.
    #[test]
    fn every_module_with_a_script_is_scanned() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/store");
        for entry in std::fs::read_dir(&dir).expect("src/store") {
            let path = entry.expect("entry").path();
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
            if text.contains(concat!("Script::", "new(")) {
                assert!(SOURCES.iter().any(|(file, _)| *file == name), "{name} has a script but is not scanned");
            }
        }
    }

    /// The slot Redis Cluster gives `key`: CRC16 (XMODEM) of its hash tag, or of all of it, modulo 16384.
    fn slot(key: &str) -> u16 {
        let hashed = match key.find('{') {
            Some(open) => match key[open + 1..].find('}') {
                Some(len) if len > 0 => &key[open + 1..open + 1 + len],
                _ => key,
            },
            None => key,
        };
        let mut crc: u16 = 0;
        for byte in hashed.bytes() {
            crc ^= u16::from(byte) << 8;
            for _ in 0..8 {
                crc = if crc & 0x8000 != 0 { (crc << 1) ^ 0x1021 } else { crc << 1 };
            }
        }
        crc % 16384
    }

    #[test]
    fn the_keys_scripts_receive_are_hash_tagged_to_one_slot_each() {
        let keys = super::Keys::new("jitgate").expect("prefix");
        let id = crate::ids::RequestId::parse("JIT-7Q2M4X").expect("id");
        let user = crate::ids::SlackUserId::parse("U012AB3CD").expect("user");
        // Keys that share a tag share a slot, whatever the rest of the key says.
        assert_eq!(slot("foo"), 12182, "CLUSTER KEYSLOT foo, from the Redis Cluster specification");
        assert_eq!(slot("{user1000}.following"), slot("{user1000}.followers"));
        assert_eq!(slot(&keys.request(&id)), slot("{JIT-7Q2M4X}"));
        let day = "2026-11-30";
        let per_user = [keys.rate_limit(&user), keys.refusals(&user), keys.user_requests(&user)];
        for key in per_user.into_iter().chain([keys.break_glass_uses(&user, day)]) {
            assert_eq!(slot(&key), slot("{U012AB3CD}"), "{key}");
        }
    }
}
