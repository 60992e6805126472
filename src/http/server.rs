//! The accept loop behind both HTTP listeners, with the limits a server on an untrusted network needs.
//!
//! `axum::serve` sets no timer on hyper, so hyper's header-read timeout never fires, and it accepts connections
//! without bound: a client that sends half a request holds its socket forever, and a few hundred of them exhaust
//! the file descriptors until the liveness probe fails. This loop serves HTTP/1 only (TLS and HTTP/2 end at the
//! ingress in front of jitgate) with:
//!
//! - a **header-read timeout** (hyper's, which needs the timer `axum::serve` leaves out): a connection that has not
//!   delivered a complete request head within [`ServerLimits::header_read_timeout`] of opening, or of its previous
//!   response, is closed, whether it sent nothing, a trickle, or went idle after a request;
//! - a **connection limit**: at most [`ServerLimits::max_connections`] open at once; past it the loop stops
//!   accepting (new clients wait in the kernel's backlog) until a connection closes;
//! - a **request timeout** (408) and a **concurrency limit** on requests being handled, shared by every
//!   connection, so slow backends cannot pile up work without bound;
//! - a **body size limit** (413): every route is a GET, so a body has no business being large.
//!
//! Shutdown stops accepting at once and lets requests in flight finish (graceful), as `axum::serve` did.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceBuilder;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tracing::{debug, info, warn};

/// How long to wait before accepting again after `accept` itself failed (out of file descriptors, typically):
/// retrying at once would spin on the same error.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(100);

/// Limits of one listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    /// A connection must deliver a complete request head within this time of opening (or of its previous response).
    pub header_read_timeout: Duration,
    /// Longest time one request may take to be answered; past it the client gets 408.
    pub request_timeout: Duration,
    /// Connections open at once.
    pub max_connections: usize,
    /// Requests being handled at once, over all connections.
    pub max_concurrent_requests: usize,
    /// Largest request body accepted.
    pub max_body_bytes: usize,
}

impl ServerLimits {
    /// Limits for the public listener (audit pages), from `[http]`.
    pub fn public(header_read_timeout: Duration, request_timeout: Duration, max_connections: usize) -> Self {
        ServerLimits {
            header_read_timeout,
            request_timeout,
            max_connections,
            max_concurrent_requests: (max_connections / 4).max(1),
            max_body_bytes: 16 * 1024,
        }
    }

    /// Limits for the operations listener (probes and the Prometheus scraper): few clients, all of them ours.
    pub fn operations(header_read_timeout: Duration, request_timeout: Duration) -> Self {
        ServerLimits {
            header_read_timeout,
            request_timeout,
            max_connections: 64,
            max_concurrent_requests: 16,
            max_body_bytes: 16 * 1024,
        }
    }
}

/// Serves `router` on `listener` within `limits` until `shutdown` completes, then lets the requests in flight
/// finish and returns.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    if let Ok(addr) = listener.local_addr() {
        info!(%addr, max_connections = limits.max_connections, "HTTP listener open");
    }
    let service = ServiceBuilder::new()
        .layer(RequestBodyLimitLayer::new(limits.max_body_bytes))
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, limits.request_timeout))
        .layer(GlobalConcurrencyLimitLayer::new(limits.max_concurrent_requests))
        .service(router);
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            () = &mut shutdown => break,
            permit = connections.clone().acquire_owned() => permit.expect("the connection semaphore is never closed"),
        };
        let stream = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(err) => {
                    warn!(error = %err, "accepting a connection failed");
                    tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let hyper_service = TowerToHyperService::new(service.clone());
        let watcher = graceful.watcher();
        let header_read_timeout = limits.header_read_timeout;
        tokio::spawn(async move {
            let _permit = permit;
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_read_timeout)
                .serve_connection(TokioIo::new(stream), hyper_service);
            if let Err(err) = watcher.watch(connection).await {
                debug!(error = %err, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    //! The limits against a real socket: raw TCP clients that misbehave the way slow-loris and flood clients do.

    use std::time::Duration;

    use axum::Router;
    use axum::routing::{get, post};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};
    use tokio::sync::oneshot;

    use super::{ServerLimits, serve};

    /// Long enough that a test's own steps never trip it, short enough that waiting for it is quick.
    const HEADER_READ: Duration = Duration::from_millis(500);
    /// How long a test waits for something that must happen: a bound on a hang, not a measurement.
    const PATIENCE: Duration = Duration::from_secs(20);

    struct TestServer {
        addr: std::net::SocketAddr,
        stop: Option<oneshot::Sender<()>>,
        task: tokio::task::JoinHandle<std::io::Result<()>>,
    }

    impl TestServer {
        async fn start(limits: ServerLimits) -> TestServer {
            let router = Router::new()
                .route("/ok", get(|| async { "ok" }))
                .route("/never", get(std::future::pending::<&'static str>))
                .route("/echo", post(|body: String| async move { body.len().to_string() }));
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let addr = listener.local_addr().expect("addr");
            let (stop, stopped) = oneshot::channel::<()>();
            let task = tokio::spawn(serve(listener, router, limits, async {
                let _ = stopped.await;
            }));
            TestServer { addr, stop: Some(stop), task }
        }

        async fn stop(mut self) {
            let _ = self.stop.take().expect("running").send(());
            tokio::time::timeout(PATIENCE, self.task).await.expect("stops").expect("task").expect("clean");
        }
    }

    fn limits(max_connections: usize) -> ServerLimits {
        ServerLimits {
            header_read_timeout: HEADER_READ,
            request_timeout: Duration::from_millis(300),
            max_connections,
            max_concurrent_requests: 8,
            max_body_bytes: 1024,
        }
    }

    /// Sends `request` as is and reads until the server closes; the status code of what came back, if any.
    async fn exchange(addr: std::net::SocketAddr, request: &[u8]) -> Option<u16> {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        stream.write_all(request).await.expect("write");
        let mut answer = Vec::new();
        tokio::time::timeout(PATIENCE, stream.read_to_end(&mut answer)).await.expect("closed in time").ok();
        let text = String::from_utf8_lossy(&answer);
        text.strip_prefix("HTTP/1.1 ").and_then(|rest| rest.get(..3)).and_then(|code| code.parse().ok())
    }

    /// Waits until the server closes `stream`; true when it did so without answering anything.
    async fn closed_silently(mut stream: TcpStream) -> bool {
        let mut answer = Vec::new();
        let read = tokio::time::timeout(PATIENCE, stream.read_to_end(&mut answer)).await.expect("closed in time");
        read.is_err() || answer.is_empty()
    }

    #[tokio::test]
    async fn a_connection_that_sends_nothing_is_closed() {
        let server = TestServer::start(limits(16)).await;
        let silent = TcpStream::connect(server.addr).await.expect("connect");
        assert!(closed_silently(silent).await);
        server.stop().await;
    }

    #[tokio::test]
    async fn a_connection_that_sends_half_a_head_is_closed() {
        let server = TestServer::start(limits(16)).await;
        let mut slow = TcpStream::connect(server.addr).await.expect("connect");
        slow.write_all(b"GET /ok HTTP/1.1\r\nHost: jitgate\r\nX-Slow: ").await.expect("write");
        let mut answer = Vec::new();
        tokio::time::timeout(PATIENCE, slow.read_to_end(&mut answer)).await.expect("closed in time").ok();
        // hyper answers an unfinished head with 408 or nothing; either way nothing was routed and the socket is gone.
        let text = String::from_utf8_lossy(&answer);
        assert!(answer.is_empty() || text.starts_with("HTTP/1.1 408"), "{text}");
        server.stop().await;
    }

    #[tokio::test]
    async fn an_idle_kept_alive_connection_is_closed() {
        let server = TestServer::start(limits(16)).await;
        let mut stream = TcpStream::connect(server.addr).await.expect("connect");
        stream.write_all(b"GET /ok HTTP/1.1\r\nHost: jitgate\r\n\r\n").await.expect("write");
        let mut first = [0u8; 12];
        stream.read_exact(&mut first).await.expect("an answer");
        assert_eq!(&first, b"HTTP/1.1 200");
        // Nothing more is sent: the connection must not be held open forever.
        let mut rest = Vec::new();
        tokio::time::timeout(PATIENCE, stream.read_to_end(&mut rest)).await.expect("closed in time").ok();
        server.stop().await;
    }

    #[tokio::test]
    async fn a_request_that_takes_too_long_gets_408() {
        let server = TestServer::start(limits(16)).await;
        let status = exchange(server.addr, b"GET /never HTTP/1.1\r\nHost: jitgate\r\nConnection: close\r\n\r\n").await;
        assert_eq!(status, Some(408));
        server.stop().await;
    }

    #[tokio::test]
    async fn a_body_over_the_limit_gets_413_and_one_within_it_is_served() {
        let server = TestServer::start(limits(16)).await;
        let big =
            format!("POST /echo HTTP/1.1\r\nHost: jitgate\r\nConnection: close\r\nContent-Length: {}\r\n\r\n", 4096);
        assert_eq!(exchange(server.addr, big.as_bytes()).await, Some(413));
        let small = b"POST /echo HTTP/1.1\r\nHost: jitgate\r\nConnection: close\r\nContent-Length: 5\r\n\r\nhello";
        assert_eq!(exchange(server.addr, small).await, Some(200));
        server.stop().await;
    }

    #[tokio::test]
    async fn past_the_connection_limit_a_client_waits_until_a_connection_closes() {
        const LIMIT: usize = 4;
        let server = TestServer::start(limits(LIMIT)).await;
        // LIMIT connections that send nothing hold every slot until the header-read timeout closes them.
        let mut holders = Vec::new();
        for _ in 0..LIMIT {
            holders.push(TcpStream::connect(server.addr).await.expect("connect"));
        }
        let (events, mut order) = tokio::sync::mpsc::unbounded_channel::<&'static str>();
        for holder in holders {
            let events = events.clone();
            tokio::spawn(async move {
                assert!(closed_silently(holder).await);
                let _ = events.send("a holder was closed");
            });
        }
        let addr = server.addr;
        let answered = events.clone();
        tokio::spawn(async move {
            let status = exchange(addr, b"GET /ok HTTP/1.1\r\nHost: jitgate\r\nConnection: close\r\n\r\n").await;
            assert_eq!(status, Some(200));
            let _ = answered.send("the extra client was answered");
        });
        drop(events);
        // The extra client is served, but only once a slot was freed: never before the first holder closed.
        let first = tokio::time::timeout(PATIENCE, order.recv()).await.expect("something happens");
        assert_eq!(first, Some("a holder was closed"));
        let mut rest = Vec::new();
        while rest.len() < LIMIT {
            rest.push(tokio::time::timeout(PATIENCE, order.recv()).await.expect("every event").expect("open"));
        }
        assert!(rest.contains(&"the extra client was answered"), "{rest:?}");
        server.stop().await;
    }
}
