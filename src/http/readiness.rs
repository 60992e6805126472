//! `GET /readyz`: is this replica able to serve requests? One check per dependency, run concurrently, each bounded
//! in time so a hung dependency makes the probe answer "down" instead of hanging it.
//!
//! | check | up when |
//! |---|---|
//! | `redis` | `PING` answers `PONG` ([`RequestStore::ping`]) |
//! | `audit_table` | `DescribeTable` finds the audit table laid out as jitgate expects ([`AuditLog::check`]) |
//! | `slack_sockets` | at least one socket-mode connection is up, as told by the [`SocketCount`] the app passes |
//!
//! # The Slack seam
//!
//! slack-morphism does not expose how many socket-mode connections are open, so the app passes a [`SocketCount`]:
//! a closure answering "how many connections are up now". `app.rs` passes one counting the connections Slack has
//! greeted with `hello`, capped at the configured count (a listener keeps re-opening dropped ones by itself), and
//! 0 once shutdown starts.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

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

/// Runs every check concurrently.
pub async fn check_all(store: &RequestStore, audit: &AuditLog, sockets: &SocketCount) -> Readiness {
    let (redis, audit) = tokio::join!(
        bounded("redis", async { store.ping().await.map(|()| None).map_err(|e| e.to_string()) }),
        bounded("audit_table", async { audit.check().await.map(|()| None).map_err(|e| e.to_string()) }),
    );
    let connected = sockets();
    let slack = Check {
        name: "slack_sockets",
        up: connected > 0,
        detail: Some(if connected > 0 {
            format!("{connected} connected")
        } else {
            "no socket-mode connection is up".to_owned()
        }),
    };
    let checks = vec![redis, audit, slack];
    Readiness { ready: checks.iter().all(|c| c.up), checks }
}

async fn bounded(name: &'static str, check: impl Future<Output = Result<Option<String>, String>>) -> Check {
    match tokio::time::timeout(CHECK_TIMEOUT, check).await {
        Ok(Ok(detail)) => Check { name, up: true, detail },
        Ok(Err(error)) => Check { name, up: false, detail: Some(error) },
        Err(_) => Check { name, up: false, detail: Some(format!("no answer within {}s", CHECK_TIMEOUT.as_secs())) },
    }
}
