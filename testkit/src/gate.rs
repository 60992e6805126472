//! A gate in front of the local DynamoDB/STS server: a reverse proxy that forwards every call, except that while
//! it is closed it holds the calls signed with temporary STS credentials (access key `ASIA…`) — the approved
//! queries, not the bot's own audit and Redis-side work — until it is opened.
//! Shutdown tests use it to keep a query "running" for exactly as long as the story needs, without timers.

use std::sync::Arc;

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

struct Shared {
    upstream: String,
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
        let (open, open_rx) = watch::channel(false);
        let shared = Arc::new(Shared {
            upstream: upstream.trim_end_matches('/').to_owned(),
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
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let mut request = shared.client.request(method, format!("{}{path}", shared.upstream)).body(body);
    for (name, value) in &headers {
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
            .body(Body::from(format!("gate could not reach the upstream: {err}")))
            .expect("a response"),
    }
}
