//! jitgate's HTTP servers: the public one with the signed audit pages, and the operations one with health,
//! readiness and Prometheus metrics, on separate listeners so that the audit pages can be exposed through an
//! ingress while probes and metrics stay on a port only the cluster reaches (see `docs/operations.md`).
//!
//! | listener | route | answer |
//! |---|---|---|
//! | both | `GET /healthz` | `200 ok` while the process runs (touches no backend) |
//! | operations | `GET /readyz` | `200` or `503` with JSON naming each check and whether it is up (see [`readiness`]) |
//! | operations | `GET /metrics` | Prometheus text (see [`crate::telemetry`]) |
//! | public | `GET /audit/{request_id}?exp=…&sig=…` | the request's audit trail as HTML, for a link signed by [`AuditLinkSigner`] |
//!
//! Both are served by [`server::serve`], which bounds header reads, requests, connections and bodies.
//!
//! The audit route checks the link's signature before anything else: an unsigned, tampered, expired or other
//! request's link gets the same short 403 page, which says nothing about the request or even whether it exists.
//! Every response carries a Content-Security-Policy that forbids scripts and `Referrer-Policy: no-referrer`, so
//! the signed URL never leaks to the CloudTrail console (or anywhere else) through a `Referer` header.

pub mod audit_page;
pub mod html;

pub mod readiness;
pub mod server;

use std::future::Future;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::future::join_all;
use serde::Deserialize;
use tokio::net::TcpListener;
use tracing::{info, warn};

use self::audit_page::ReviewedEntry;
use self::html::{esc, page};
pub use self::readiness::{ReadinessMonitor, SocketCount};
pub use self::server::ServerLimits;
use crate::audit::{AuditLog, GENESIS_HASH};
use crate::clock::SharedClock;
use crate::ids::RequestId;
use crate::links::AuditLinkSigner;
pub use crate::telemetry::Metrics;

/// How often recorded histogram samples are folded into buckets while the server runs.
const METRICS_UPKEEP_EVERY: Duration = Duration::from_secs(10);

/// Everything the handlers need. Cheap to clone (every field is a handle).
#[derive(Clone)]
pub struct HttpState {
    pub audit: AuditLog,
    pub links: AuditLinkSigner,
    pub clock: SharedClock,
    pub metrics: Metrics,
    /// The last readiness checks, kept fresh in the background.
    pub readiness: ReadinessMonitor,
    /// AWS region of the runbooks' roles, for the CloudTrail link.
    pub region: String,
}

/// The public listener's routes (audit pages), with the security headers on every response.
pub fn public_router(state: HttpState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/audit/{request_id}", get(audit))
        .layer(axum::middleware::map_response(security_headers))
        .with_state(state)
}

/// The operations listener's routes (probes and metrics), with the same security headers.
pub fn operations_router(state: HttpState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .layer(axum::middleware::map_response(security_headers))
        .with_state(state)
}

/// Serves the public routes on `listener` until `shutdown` completes, then finishes the requests in flight.
pub async fn serve_public(
    listener: TcpListener,
    state: HttpState,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    server::serve(listener, public_router(state), limits, shutdown).await
}

/// Serves the operations routes on `listener` until `shutdown` completes; meanwhile folds histogram samples into
/// buckets and keeps the readiness checks fresh.
pub async fn serve_operations(
    listener: TcpListener,
    state: HttpState,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let metrics = state.metrics.clone();
    let upkeep = tokio::spawn(async move {
        let mut ticks = tokio::time::interval(METRICS_UPKEEP_EVERY);
        loop {
            ticks.tick().await;
            metrics.run_upkeep();
        }
    });
    let refresh = state.readiness.spawn_refresh(readiness::REFRESH_EVERY);
    let served = server::serve(listener, operations_router(state), limits, shutdown).await;
    upkeep.abort();
    refresh.abort();
    served
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(state): State<HttpState>) -> Response {
    let readiness = state.readiness.current();
    let status = if readiness.ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    if !readiness.ready {
        let down: Vec<&str> = readiness.checks.iter().filter(|c| !c.up).map(|c| c.name).collect();
        warn!(?down, "not ready");
    }
    (status, axum::Json(readiness)).into_response()
}

async fn metrics_text(State(state): State<HttpState>) -> Response {
    // Readiness as of this scrape, answered from memory (see `readiness`), so alerts can name what is down.
    for check in state.readiness.current().checks {
        state.metrics.ready(check.name, check.up);
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], state.metrics.render()).into_response()
}

/// The query of an audit link. Both are optional here so that a link without them is a 403, not a 400.
#[derive(Debug, Deserialize)]
struct LinkQuery {
    exp: Option<String>,
    sig: Option<String>,
}

async fn audit(
    State(state): State<HttpState>,
    Path(request_id): Path<String>,
    query: Result<Query<LinkQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let now = state.clock.now();
    // The signature is checked before anything is read, so an unsigned visitor cannot even learn whether a
    // request exists. Only the exact id text is accepted: the link was signed over it.
    let id = match RequestId::parse(&request_id) {
        Some(id) if id.as_str() == request_id => id,
        _ => return forbidden(),
    };
    let (exp, sig) = match &query {
        Ok(Query(q)) => (q.exp.as_deref(), q.sig.as_deref()),
        Err(_) => (None, None),
    };
    if let Err(refusal) = state.links.verify_query(&id, exp, sig, now) {
        // The id is not a secret (it is in the URL); the refusal kind goes to the log only.
        info!(request_id = %id, %refusal, "audit link refused");
        return forbidden();
    }

    let stored = match state.audit.stored_entries_for(&id).await {
        Ok(stored) => stored,
        Err(err) => {
            warn!(request_id = %id, error = %err, "audit page: audit table unreadable");
            return unavailable();
        }
    };
    if stored.is_empty() {
        return not_found(&id);
    }
    // The stored hash of each entry's predecessor in the chain, for the link check (entry 1 links to genesis).
    let predecessors = join_all(stored.iter().map(|entry| {
        let audit = &state.audit;
        let seq = entry.as_ref().ok().map(|e| e.seq);
        async move {
            match seq {
                Some(1) => Ok(Some(GENESIS_HASH.to_owned())),
                Some(seq) => audit.stored_hash(seq - 1).await,
                None => Ok(None),
            }
        }
    }))
    .await;
    let mut reviewed: Vec<ReviewedEntry> = Vec::with_capacity(stored.len());
    for (entry, predecessor) in stored.into_iter().zip(predecessors) {
        match predecessor {
            Ok(predecessor) => reviewed.push(audit_page::review(entry, predecessor.as_deref())),
            Err(err) => {
                warn!(request_id = %id, error = %err, "audit page: audit table unreadable");
                return unavailable();
            }
        }
    }
    if let Err(verdict) = audit_page::verdict(&reviewed) {
        warn!(request_id = %id, %verdict, "audit page: chain check failed");
    }
    html(StatusCode::OK, audit_page::render(&id, &state.region, now, &reviewed))
}

fn forbidden() -> Response {
    html(
        StatusCode::FORBIDDEN,
        page(
            "Link not valid · jitgate",
            "<h1>This link is not valid</h1><p>Audit links are signed and expire. Open the link again from the \
             request's thread in Slack; if it has expired, ask in the approval channel for the request's audit \
             trail.</p>",
        ),
    )
}

fn not_found(id: &RequestId) -> Response {
    html(
        StatusCode::NOT_FOUND,
        page(
            "No audit trail · jitgate",
            &format!(
                "<h1>No audit trail for {}</h1><p>The audit table holds no entries for this request.</p>",
                esc(id.as_str())
            ),
        ),
    )
}

fn unavailable() -> Response {
    html(
        StatusCode::SERVICE_UNAVAILABLE,
        page(
            "Audit trail unavailable · jitgate",
            "<h1>The audit trail cannot be read right now</h1><p>jitgate could not reach its audit table. Try \
             again in a minute; operators will find the reason in jitgate's log.</p>",
        ),
    )
}

fn html(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response()
}

/// Headers on every response. Pages carry request data and their URLs carry a signature: never cache them,
/// never send them as a referrer, never frame them, never run a script in them.
async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::CACHE_CONTROL, "no-store"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}
