//! `GET /readyz`: is this replica able to serve requests? One check per dependency, each bounded in time so a hung
//! dependency counts as down instead of hanging the probe.
//!
//! | check | up when |
//! |---|---|
//! | `redis` | `PING` answers `PONG` ([`RequestStore::ping`]) |
//! | `audit_table` | `DescribeTable` finds the audit table laid out as jitgate expects ([`AuditLog::check`]) |
//! | `slack_sockets` | at least one socket-mode connection is up, as told by the [`SocketCount`] the app passes |
//!
//! # Answered from memory
//!
//! A probe never reaches Redis or DynamoDB itself: a [`ReadinessMonitor`] checks them in the background every
//! [`REFRESH_EVERY`] and `/readyz` answers from its last result. Otherwise every probe (or anyone who can reach
//! the port, many times a second) would cost a `PING` and a `DescribeTable`. A result older than [`STALE_AFTER`]
//! (the monitor itself is stuck) counts as down, and so does "not checked yet" right after start.
//!
//! # The Slack seam
//!
//! slack-morphism does not expose how many socket-mode connections are open, so the app passes a [`SocketCount`]:
//! a closure answering "how many connections are up now". `app.rs` passes one counting the connections Slack has
//! greeted with `hello`, capped at the configured count (a listener keeps re-opening dropped ones by itself), and
//! 0 once shutdown starts. It costs nothing, so it is read at each probe.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::audit::AuditLog;
use crate::store::RequestStore;

/// How many Slack socket-mode connections are up right now.
pub type SocketCount = Arc<dyn Fn() -> usize + Send + Sync>;

/// Longest one check may take before it counts as down.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(3);

/// The `/readyz` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Readiness {
    /// True when every check is up.
    pub ready: bool,
    pub checks: Vec<Check>,
}

/// One dependency's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub up: bool,
    /// Why it is down, or a fact about it when up (e.g. `2 connected`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// The backend checks, run concurrently.
async fn check_backends(store: &RequestStore, audit: &AuditLog) -> Vec<Check> {
    let (redis, audit) = tokio::join!(
        bounded("redis", async { store.ping().await.map(|()| None).map_err(|e| e.to_string()) }),
        bounded("audit_table", async { audit.check().await.map(|()| None).map_err(|e| e.to_string()) }),
    );
    vec![redis, audit]
}

fn sockets_check(sockets: &SocketCount) -> Check {
    let connected = sockets();
    Check {
        name: "slack_sockets",
        up: connected > 0,
        detail: Some(if connected > 0 {
            format!("{connected} connected")
        } else {
            "no socket-mode connection is up".to_owned()
        }),
    }
}

/// How often the monitor re-checks Redis and the audit table.
pub const REFRESH_EVERY: Duration = Duration::from_secs(5);
/// A backend result older than this counts as down: the monitor has stopped refreshing.
pub const STALE_AFTER: Duration = Duration::from_secs(30);

/// The last backend checks, and when they finished.
struct Snapshot {
    checks: Vec<Check>,
    at: Instant,
}

/// Keeps the backend checks fresh in the background; `/readyz` reads [`ReadinessMonitor::current`]. Cheap to
/// clone; the background task stops when the last clone is dropped or [`ReadinessMonitor::stop`] is called.
#[derive(Clone)]
pub struct ReadinessMonitor {
    inner: Arc<MonitorInner>,
}

struct MonitorInner {
    store: RequestStore,
    audit: AuditLog,
    sockets: SocketCount,
    last: Mutex<Option<Snapshot>>,
    stop: CancellationToken,
}

impl Drop for MonitorInner {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl ReadinessMonitor {
    /// A monitor that has not checked anything yet (see [`ReadinessMonitor::spawn_refresh`]).
    pub fn new(store: RequestStore, audit: AuditLog, sockets: SocketCount) -> ReadinessMonitor {
        let inner = MonitorInner { store, audit, sockets, last: Mutex::new(None), stop: CancellationToken::new() };
        ReadinessMonitor { inner: Arc::new(inner) }
    }

    /// Checks the backends now and keeps the result.
    pub async fn refresh(&self) {
        let checks = check_backends(&self.inner.store, &self.inner.audit).await;
        *self.inner.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(Snapshot { checks, at: Instant::now() });
    }

    /// Refreshes at once, then every `every`, until [`ReadinessMonitor::stop`] or the last clone is dropped.
    pub fn spawn_refresh(&self, every: Duration) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(&self.inner);
        let stop = self.inner.stop.clone();
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    _ = ticks.tick() => {}
                }
                // Holding only a weak handle between passes lets the monitor go away with its last user.
                let Some(inner) = weak.upgrade() else { return };
                ReadinessMonitor { inner }.refresh().await;
            }
        })
    }

    /// Stops the background refresh.
    pub fn stop(&self) {
        self.inner.stop.cancel();
    }

    /// The answer to a probe: the last backend checks (down when missing or stale) and the sockets now.
    pub fn current(&self) -> Readiness {
        self.current_at(Instant::now())
    }

    /// [`ReadinessMonitor::current`] as it would be at `now` (tests look past [`STALE_AFTER`] without waiting).
    pub fn current_at(&self, now: Instant) -> Readiness {
        let mut checks = match &*self.inner.last.lock().unwrap_or_else(|e| e.into_inner()) {
            None => ["redis", "audit_table"]
                .map(|name| Check { name, up: false, detail: Some("not checked yet".to_owned()) })
                .to_vec(),
            Some(snapshot) if now.saturating_duration_since(snapshot.at) > STALE_AFTER => {
                let age = now.saturating_duration_since(snapshot.at).as_secs();
                let stale =
                    |c: &Check| Check { name: c.name, up: false, detail: Some(format!("last checked {age}s ago")) };
                snapshot.checks.iter().map(stale).collect()
            }
            Some(snapshot) => snapshot.checks.clone(),
        };
        checks.push(sockets_check(&self.inner.sockets));
        Readiness { ready: checks.iter().all(|c| c.up), checks }
    }
}

async fn bounded(name: &'static str, check: impl Future<Output = Result<Option<String>, String>>) -> Check {
    match tokio::time::timeout(CHECK_TIMEOUT, check).await {
        Ok(Ok(detail)) => Check { name, up: true, detail },
        Ok(Err(error)) => Check { name, up: false, detail: Some(error) },
        Err(_) => Check { name, up: false, detail: Some(format!("no answer within {}s", CHECK_TIMEOUT.as_secs())) },
    }
}
