//! A gate in front of the local DynamoDB/STS server: a reverse proxy that forwards every call, except that while
//! it is closed it holds the calls signed with temporary STS credentials (access key `ASIA…`) — the approved
//! queries, not the bot's own audit and Redis-side work — until it is opened.
//! Shutdown tests use it to keep a query "running" for exactly as long as the story needs, without timers.
//!
//! The latency benchmark uses it open, with per-service delays ([`Gate::delaying`]): every DynamoDB call (the
//! audit table's included) and every STS call is answered as late as it would be from a real AWS region, so the
//! benchmark sees the critical path rather than loopback speed.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, Response, StatusCode, Uri};
use tokio::sync::{Notify, watch};

/// SigV4 names the signing key in `Authorization: AWS4-HMAC-SHA256 Credential=<access key>/…`; STS temporary
/// access keys start with `ASIA`, long-lived ones with `AKIA`.
fn signed_with_temporary_credentials(headers: &HeaderMap) -> bool {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|auth| auth.split("Credential=").nth(1))
        .is_some_and(|credential| credential.starts_with("ASIA"))
}

/// How long each call waits before it is forwarded, by the AWS service it is for.
#[derive(Debug, Clone, Copy, Default)]
pub struct AwsLatency {
    // Each is the whole round trip as the caller sees it, the server's work included.
    /// Calls with `X-Amz-Target: DynamoDB_…` (queries and the audit table).
    pub dynamodb: Duration,
    /// Every other call: STS (`Action=AssumeRole`, `GetCallerIdentity`) is the only other service jitgate calls.
    pub sts: Duration,
}

impl AwsLatency {
    fn for_call(&self, headers: &HeaderMap) -> Duration {
        let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or_default();
        if target.starts_with("DynamoDB_") { self.dynamodb } else { self.sts }
    }
}

struct Shared {
    upstream: String,
    latency: AwsLatency,
    open: watch::Receiver<bool>,
    /// Signalled each time a call starts waiting at the closed gate.
    held: Notify,
    client: reqwest::Client,
}

pub struct Gate {
    pub endpoint: String,
    open: watch::Sender<bool>,
    shared: Arc<Shared>,
}

impl Gate {
    /// A closed gate in front of `upstream`, listening on a free loopback port.
    pub async fn closed(upstream: &str) -> Gate {
        Gate::start(upstream, false, AwsLatency::default()).await
    }

    /// An open gate that delays each call by `latency` for its service before forwarding it.
    pub async fn delaying(upstream: &str, latency: AwsLatency) -> Gate {
        Gate::start(upstream, true, latency).await
    }

    async fn start(upstream: &str, open: bool, latency: AwsLatency) -> Gate {
        let (open, open_rx) = watch::channel(open);
        let shared = Arc::new(Shared {
            upstream: upstream.trim_end_matches('/').to_owned(),
            latency,
            open: open_rx,
            held: Notify::new(),
            client: reqwest::Client::new(),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the gate");
        let endpoint = format!("http://{}", listener.local_addr().expect("gate address"));
        let app = axum::Router::new().fallback(forward).with_state(shared.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Gate { endpoint, open, shared }
    }

    /// Waits until a held read is waiting at the gate.
    pub async fn wait_for_held_call(&self) {
        self.shared.held.notified().await;
    }

    /// Lets every held and later call through.
    pub fn open(&self) {
        self.open.send_replace(true);
    }
}

async fn forward(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response<Body> {
    if signed_with_temporary_credentials(&headers) {
        let mut open = shared.open.clone();
        if !*open.borrow() {
            shared.held.notify_one();
            // Held until opened; if the caller gives up (its future is dropped) this request is dropped with it.
            let _ = open.wait_for(|open| *open).await;
        }
    }
    // The call is answered no sooner than `latency` after it arrived: the local server's own time stands in for
    // AWS's, so it is not added on top.
    let answer_at = tokio::time::Instant::now() + shared.latency.for_call(&headers);
    let response = pass_on(&shared.client, &shared.upstream, method, &uri, &headers, body, "gate").await;
    tokio::time::sleep_until(answer_at).await;
    response
}

/// Sends the call on to `upstream` as it came (but for `host` and `content-length`) and returns upstream's answer,
/// or 502 naming `proxy` when upstream cannot be reached. Shared by the test kit's AWS proxies.
pub(crate) async fn pass_on(
    client: &reqwest::Client,
    upstream: &str,
    method: Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Bytes,
    proxy: &str,
) -> Response<Body> {
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let mut request = client.request(method, format!("{upstream}{path}")).body(body);
    for (name, value) in headers {
        if name != "host" && name != "content-length" {
            request = request.header(name, value);
        }
    }
    match request.send().await {
        Ok(upstream) => {
            let mut response = Response::builder().status(upstream.status());
            for (name, value) in upstream.headers() {
                if name != "content-length" && name != "transfer-encoding" {
                    response = response.header(name, value);
                }
            }
            let body = upstream.bytes().await.unwrap_or_default();
            response.body(Body::from(body)).expect("a response")
        }
        Err(err) => Response::builder()
            .status(StatusCode::BAD_GATEWAY)
            .body(Body::from(format!("{proxy} could not reach the upstream: {err}")))
            .expect("a response"),
    }
}
