//! Redis: access-request records with TTLs, atomic state transitions, envelope de-duplication and the
//! per-user limits on new requests and on refusals appended to the audit trail one by one.
//!
//! Every state change is one Lua script doing compare-and-set on the stored state and version, so any number of
//! replicas can race on the same request and exactly one write lands; the others get
//! [`Transition::Conflict`] with the record as it now is ("someone else already did it" is a normal outcome).
//! Keys are hash-tagged per request (see [`keys`]), so every script touches one slot and runs on Redis Cluster.
//!
//! The connection is a [`ConnectionManager`]: it reconnects by itself after Redis restarts. Connection attempts,
//! replies and each whole operation are bounded by timeouts, so a dead Redis gives [`StoreError::Unavailable`]
//! within seconds instead of a hang. Nothing here retries a write: after a broken connection its outcome is
//! unknown and only the caller, by loading the record again, can decide what to do.
//!
//! Needs Redis 6.2 or later (`ZADD … LT`, `ZRANGE … BYSCORE`).

mod break_glass;
mod dedup;
mod error;
mod keys;
mod rate_limit;
mod refusal_limit;
mod requests;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{FromRedisValue, RedisResult};
use secrecy::{ExposeSecret, SecretString};

pub use break_glass::BreakGlassAdmission;
pub use error::StoreError;
pub use keys::MAX_ENVELOPE_ID_LEN;
pub use rate_limit::{Admission, RateLimit};
pub use refusal_limit::{CountedRefusals, RefusalCount};
pub use requests::{Created, Transition};

use keys::Keys;

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
        }
    }
}

/// Shortest backoff between reconnect attempts; the longest is [`MAX_RECONNECT_DELAY`].
const MIN_RECONNECT_DELAY: Duration = Duration::from_millis(100);
const MAX_RECONNECT_DELAY: Duration = Duration::from_secs(1);

/// The Redis-backed store of access requests. Cheap to clone: clones share one connection.
#[derive(Clone)]
pub struct RequestStore {
    conn: ConnectionManager,
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
    /// Connects to Redis at `url` and checks it answers. Fails with [`StoreError::Unavailable`] when it cannot be
    /// reached within the configured timeouts, and with [`StoreError::InvalidSettings`] for a bad setting.
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
        // The client's parse errors are fixed texts, but the URL may hold a password: never echo it.
        let client = redis::Client::open(url).map_err(|err| StoreError::InvalidUrl(err.to_string()))?;
        let info = client.get_connection_info();
        let endpoint: Arc<str> = info.addr().to_string().into();
        let password = info.redis_settings().password().map(|p| Arc::new(SecretString::from(p.to_owned())));

        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(settings.connect_timeout))
            .set_response_timeout(Some(settings.response_timeout))
            .set_number_of_retries(settings.reconnect_attempts)
            .set_min_delay(MIN_RECONNECT_DELAY)
            .set_max_delay(MAX_RECONNECT_DELAY);
        let secret = password.as_ref().map(|p| p.expose_secret());
        let conn =
            match tokio::time::timeout(settings.operation_timeout, ConnectionManager::new_with_config(client, config))
                .await
            {
                Ok(Ok(conn)) => conn,
                Ok(Err(err)) => return Err(error::classify(&endpoint, secret, &err)),
                Err(_) => return Err(timed_out(&endpoint, settings.operation_timeout)),
            };
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
        let outcome = tokio::time::timeout(self.settings.operation_timeout, operation).await;
        if let Some(metrics) = &self.metrics {
            let ok = matches!(outcome, Ok(Ok(_)));
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
