//! A proxy in front of the local DynamoDB/STS server that can stop answering: it forwards every call until a test
//! silences one kind ([`Calls`]); from then on a call of that kind is accepted (the TCP connection and the whole
//! HTTP request are read) and never answered, and never forwarded either, as behind a network path that drops
//! replies. [`SilentProxy::let_through`] ends the silence: later calls are forwarded again, the swallowed ones never
//! are. It counts what it swallowed and what it forwarded, so a test can show that a given call never reached the
//! server. The timeout tests use it to give jitgate's AWS clients a server that never answers.

use std::sync::Arc;
use std::sync::Mutex;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, Response, Uri};
use tokio::sync::Notify;

/// The kinds of call a test can silence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Calls {
    /// STS `AssumeRole` (the bot's one call with its own identity before a query).
    AssumeRole,
    /// Calls signed with temporary credentials (access key `ASIA…`): the approved queries.
    Queries,
    /// `TransactWriteItems` signed with the bot's own credentials: audit appends.
    AuditAppends,
}

impl Calls {
    fn matches(self, headers: &HeaderMap, body: &[u8]) -> bool {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        let temporary = header("authorization")
            .split("Credential=")
            .nth(1)
            .is_some_and(|credential| credential.starts_with("ASIA"));
        match self {
            // STS speaks the query protocol (`Action=AssumeRole` in a form body); a JSON-protocol STS names it in
            // the target header.
            Calls::AssumeRole => {
                String::from_utf8_lossy(body).contains("Action=AssumeRole")
                    || header("x-amz-target").ends_with("AssumeRole")
            }
            Calls::Queries => temporary,
            Calls::AuditAppends => !temporary && header("x-amz-target").ends_with(".TransactWriteItems"),
        }
    }
}

const KINDS: [Calls; 3] = [Calls::AssumeRole, Calls::Queries, Calls::AuditAppends];

#[derive(Default)]
struct Counts {
    silenced: Option<Calls>,
    swallowed: Vec<Calls>,
    forwarded: Vec<Calls>,
}

struct Shared {
    upstream: String,
    counts: Mutex<Counts>,
    /// Signalled each time a call is swallowed.
    swallowed: Notify,
    client: reqwest::Client,
}

impl Shared {
    /// Records a call of `kind`: swallowed (true) while its kind is silenced, else forwarded.
    fn swallow_or_count(&self, kind: Option<Calls>) -> bool {
        let mut counts = self.counts.lock().expect("counts");
        let silenced = kind.is_some() && kind == counts.silenced;
        if silenced {
            counts.swallowed.extend(kind);
        } else {
            counts.forwarded.extend(kind);
        }
        silenced
    }
}

pub struct SilentProxy {
    pub endpoint: String,
    shared: Arc<Shared>,
}

impl SilentProxy {
    /// A proxy forwarding everything to `upstream`, listening on a free loopback port.
    pub async fn start(upstream: &str) -> SilentProxy {
        let shared = Arc::new(Shared {
            upstream: upstream.trim_end_matches('/').to_owned(),
            counts: Mutex::default(),
            swallowed: Notify::new(),
            client: reqwest::Client::new(),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind the silent proxy");
        let endpoint = format!("http://{}", listener.local_addr().expect("proxy address"));
        let app = axum::Router::new().fallback(forward).with_state(shared.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        SilentProxy { endpoint, shared }
    }

    /// From now on, calls of kind `calls` are read and never answered nor forwarded.
    pub fn silence(&self, calls: Calls) {
        self.shared.counts.lock().expect("counts").silenced = Some(calls);
    }

    /// Ends the silence: later calls are forwarded; the swallowed ones stay swallowed.
    pub fn let_through(&self) {
        self.shared.counts.lock().expect("counts").silenced = None;
    }

    /// How many calls of kind `calls` were swallowed so far.
    pub fn swallowed(&self, calls: Calls) -> usize {
        self.shared.counts.lock().expect("counts").swallowed.iter().filter(|c| **c == calls).count()
    }

    /// How many calls of kind `calls` reached the server so far.
    pub fn forwarded(&self, calls: Calls) -> usize {
        self.shared.counts.lock().expect("counts").forwarded.iter().filter(|c| **c == calls).count()
    }

    /// Waits until at least `n` calls of kind `calls` have been swallowed (bounded by the caller's test timeout;
    /// each swallowed call wakes it).
    pub async fn wait_for_swallowed(&self, calls: Calls, n: usize) {
        loop {
            let notified = self.shared.swallowed.notified();
            if self.swallowed(calls) >= n {
                return;
            }
            notified.await;
        }
    }
}

async fn forward(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response<Body> {
    let kind = KINDS.into_iter().find(|kind| kind.matches(&headers, &body));
    if shared.swallow_or_count(kind) {
        shared.swallowed.notify_waiters();
        // Never answered: the caller gives up (its timeout) or waits forever (no timeout).
        return std::future::pending().await;
    }
    crate::gate::pass_on(&shared.client, &shared.upstream, method, &uri, &headers, body, "the silent proxy").await
}
