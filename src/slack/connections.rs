//! The socket-mode WebSocket connections under slack-morphism's listener, opened with `TCP_NODELAY`.
//!
//! slack-morphism opens its WebSockets with Nagle's algorithm on and has no setting to turn it off. An ack is a
//! small write; with several envelopes in flight on one connection, Nagle holds each ack back until the previous
//! one is acknowledged by Slack's side, which delays its ACKs (up to 40 ms on Linux): p99 ack latency went from
//! 7–14 ms to 41–49 ms at 100 envelopes in flight. The library lets a connector supply the "clients manager" that
//! owns the connections ([`SlackSocketModeClientsManagerFactory`]), so [`NoDelayConnector`] wraps the usual hyper
//! connector (every Web API call is delegated to it unchanged) and supplies [`Connections`], which does what the
//! library's manager does — `apps.connections.open`, connect, hand every text frame to the library's listener
//! and send back the ack it returns, keep-alive pings, reconnect on `disconnect`, close or error — with two
//! differences: the socket has `TCP_NODELAY`, and a failed connect is retried after a jittered, growing backoff
//! (1 s doubling to 30 s) instead of a flat 30 s. Parsing envelopes, callbacks and acks stay the library's.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use futures::future::BoxFuture;
use futures::{SinkExt, StreamExt};
use rand::Rng;
use slack_morphism::api::SlackApiAppsConnectionOpenRequest;
use slack_morphism::clients_manager::{SlackSocketModeClientsManager, SlackSocketModeClientsManagerFactory};
use slack_morphism::errors::{SlackClientError, SlackClientSocketModeProtocolError};
use slack_morphism::multipart_form::FileMultipartData;
use slack_morphism::prelude::*;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

/// First wait after a failed connect; doubled after each further failure up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// What the connections report about their sockets, for tests and metrics.
#[derive(Debug, Default)]
pub struct SocketReport {
    /// Sockets opened so far.
    opened: AtomicUsize,
    /// Of those, how many had `TCP_NODELAY` when read back from the socket after connecting.
    nodelay: AtomicUsize,
    /// Woken at every socket counted.
    counted: tokio::sync::Notify,
}

impl SocketReport {
    /// Counts one socket just opened.
    fn record(&self, nodelay: bool) {
        if nodelay {
            self.nodelay.fetch_add(1, Ordering::Relaxed);
        }
        self.opened.fetch_add(1, Ordering::Relaxed);
        self.counted.notify_waiters();
    }

    /// Sockets opened so far, and how many of them had `TCP_NODELAY`.
    pub fn counts(&self) -> (usize, usize) {
        (self.opened.load(Ordering::Relaxed), self.nodelay.load(Ordering::Relaxed))
    }

    /// [`Self::counts`] once at least `count` sockets were opened.
    pub async fn opened_at_least(&self, count: usize) -> (usize, usize) {
        loop {
            // Registered before the counts are read, so a socket counted in between still wakes this.
            let counted = self.counted.notified();
            let mut counted = std::pin::pin!(counted);
            counted.as_mut().enable();
            let counts = self.counts();
            if counts.0 >= count {
                return counts;
            }
            counted.await;
        }
    }
}

/// slack-morphism's hyper connector, with [`Connections`] as its socket-mode clients manager.
#[derive(Clone)]
pub struct NoDelayConnector {
    inner: SlackClientHyperHttpsConnector,
    report: Arc<SocketReport>,
}

impl NoDelayConnector {
    pub fn new(inner: SlackClientHyperHttpsConnector) -> NoDelayConnector {
        NoDelayConnector { inner, report: Arc::new(SocketReport::default()) }
    }

    pub fn report(&self) -> Arc<SocketReport> {
        self.report.clone()
    }
}

// Every Web API call goes to the wrapped connector unchanged.
impl SlackClientHttpConnector for NoDelayConnector {
    fn http_get_uri<'a, RS>(
        &'a self,
        full_uri: url::Url,
        context: SlackClientApiCallContext<'a>,
    ) -> BoxFuture<'a, ClientResult<RS>>
    where
        RS: for<'de> serde::de::Deserialize<'de> + Send + 'a + 'a + Send,
    {
        self.inner.http_get_uri(full_uri, context)
    }

    fn http_get_with_client_secret<'a, RS>(
        &'a self,
        full_uri: url::Url,
        client_id: &'a SlackClientId,
        client_secret: &'a SlackClientSecret,
    ) -> BoxFuture<'a, ClientResult<RS>>
    where
        RS: for<'de> serde::de::Deserialize<'de> + Send + 'a + 'a + Send,
    {
        self.inner.http_get_with_client_secret(full_uri, client_id, client_secret)
    }

    fn http_post_uri<'a, RQ, RS>(
        &'a self,
        full_uri: url::Url,
        request_body: &'a RQ,
        context: SlackClientApiCallContext<'a>,
    ) -> BoxFuture<'a, ClientResult<RS>>
    where
        RQ: serde::ser::Serialize + Send + Sync,
        RS: for<'de> serde::de::Deserialize<'de> + Send + 'a + Send + 'a,
    {
        self.inner.http_post_uri(full_uri, request_body, context)
    }

    fn http_post_uri_multipart_form<'a, 'p, RS, PT, TS>(
        &'a self,
        full_uri: url::Url,
        file: Option<FileMultipartData<'p>>,
        params: &'p PT,
        context: SlackClientApiCallContext<'a>,
    ) -> BoxFuture<'a, ClientResult<RS>>
    where
        RS: for<'de> serde::de::Deserialize<'de> + Send + 'a + Send + 'a,
        PT: std::iter::IntoIterator<Item = (&'p str, Option<TS>)> + Clone,
        TS: AsRef<str> + 'p + Send,
    {
        self.inner.http_post_uri_multipart_form(full_uri, file, params, context)
    }

    fn http_post_uri_binary<'a, 'p, RS>(
        &'a self,
        full_uri: url::Url,
        content_type: String,
        data: &'a [u8],
        context: SlackClientApiCallContext<'a>,
    ) -> BoxFuture<'a, ClientResult<RS>>
    where
        RS: for<'de> serde::de::Deserialize<'de> + Send + 'a + Send + 'a,
    {
        self.inner.http_post_uri_binary(full_uri, content_type, data, context)
    }

    fn create_method_uri_path(&self, method_relative_uri: &str) -> ClientResult<url::Url> {
        self.inner.create_method_uri_path(method_relative_uri)
    }
}

impl SlackSocketModeClientsManagerFactory<NoDelayConnector> for NoDelayConnector {
    fn new_clients_manager(
        &self,
        environment: Arc<SlackClientEventsListenerEnvironment<NoDelayConnector>>,
    ) -> Arc<dyn SlackSocketModeClientsManager + Send + Sync> {
        Arc::new(Connections { environment, report: self.report.clone(), clients: Mutex::new(Vec::new()) })
    }
}

type Listener = Arc<dyn SlackSocketModeClientListener + Sync + Send>;
type Socket = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

/// One connection slot: its identity, and the token that stops its task.
struct Client {
    id: SlackSocketModeWssClientId,
    token: SlackApiToken,
    config: SlackClientSocketModeConfig,
    listener: Listener,
    stop: CancellationToken,
}

impl Client {
    fn successor(&self) -> Client {
        Client {
            id: self.id.new_reconnected_id(),
            token: self.token.clone(),
            config: self.config.clone(),
            listener: self.listener.clone(),
            stop: CancellationToken::new(),
        }
    }
}

/// The socket-mode connections of one listener.
pub struct Connections {
    environment: Arc<SlackClientEventsListenerEnvironment<NoDelayConnector>>,
    report: Arc<SocketReport>,
    clients: Mutex<Vec<Client>>,
}

impl Connections {
    fn clients(&self) -> std::sync::MutexGuard<'_, Vec<Client>> {
        self.clients.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `client`'s connection on its own task, after `wait` (the stagger between a token's connections).
    fn spawn(&self, client: &Client, wait: Duration) {
        let connection = Connection {
            id: client.id.clone(),
            token: client.token.clone(),
            config: client.config.clone(),
            listener: client.listener.clone(),
            environment: self.environment.clone(),
            report: self.report.clone(),
        };
        let stop = client.stop.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
            }
            connection.run(&stop).await;
        });
    }
}

#[async_trait]
impl SlackSocketModeClientsManager for Connections {
    async fn register_new_token(
        &self,
        config: &SlackClientSocketModeConfig,
        token: SlackApiToken,
        listener: Listener,
    ) -> ClientResult<()> {
        let mut clients = self.clients();
        let first = u32::try_from(clients.len()).unwrap_or(u32::MAX);
        for index in 0..config.max_connections_count {
            clients.push(Client {
                id: SlackSocketModeWssClientId::new(first.saturating_add(index), index, 0),
                token: token.clone(),
                config: config.clone(),
                listener: listener.clone(),
                stop: CancellationToken::new(),
            });
        }
        Ok(())
    }

    /// Called by the library's listener on a `disconnect` envelope (any reason, `warning` included: the new
    /// connection is opened before Slack closes the old one) and by a connection that closed or failed.
    async fn restart_client(&self, id: &SlackSocketModeWssClientId) {
        let mut clients = self.clients();
        let Some(index) = clients.iter().position(|c| c.id == *id) else { return };
        let old = clients.remove(index);
        old.stop.cancel();
        let new = old.successor();
        debug!(connection = %new.id.to_string(), "re-opening a socket-mode connection");
        self.spawn(&new, Duration::ZERO);
        clients.push(new);
    }

    async fn start(&self) {
        let clients = self.clients();
        for (index, client) in clients.iter().enumerate() {
            let stagger = Duration::from_secs(client.config.initial_backoff_in_seconds);
            self.spawn(client, stagger.saturating_mul(u32::try_from(index).unwrap_or(u32::MAX)));
        }
    }

    async fn shutdown(&self) {
        for client in self.clients().drain(..) {
            client.stop.cancel();
        }
    }

    async fn await_term_signals(&self) {
        // `jitgate run` handles signals itself and calls `shutdown`; this is only here for the trait.
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// One connection's task.
struct Connection {
    id: SlackSocketModeWssClientId,
    token: SlackApiToken,
    config: SlackClientSocketModeConfig,
    listener: Listener,
    environment: Arc<SlackClientEventsListenerEnvironment<NoDelayConnector>>,
    report: Arc<SocketReport>,
}

impl Connection {
    async fn run(&self, stop: &CancellationToken) {
        let mut backoff = FIRST_BACKOFF;
        let socket = loop {
            let attempt = tokio::select! {
                () = stop.cancelled() => return,
                attempt = self.connect() => attempt,
            };
            match attempt {
                Ok(socket) => break socket,
                Err(err) => {
                    // Full jitter: replicas that lost Slack together do not come back in step.
                    let wait = rand::rng().random_range(Duration::ZERO..=backoff);
                    warn!(connection = %self.id.to_string(), error = %err, retry_in = ?wait, "could not open a socket-mode connection");
                    tokio::select! {
                        () = stop.cancelled() => return,
                        () = tokio::time::sleep(wait) => {}
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        };
        if self.serve(socket, stop).await {
            self.listener.on_disconnect(&self.id).await;
        }
    }

    /// `apps.connections.open`, then the WebSocket with Nagle's algorithm off.
    async fn connect(&self) -> anyhow::Result<Socket> {
        let session = self.environment.client.open_session(&self.token);
        let opened = session
            .apps_connections_open(&SlackApiAppsConnectionOpenRequest::new())
            .await
            .map_err(|e| anyhow::anyhow!("apps.connections.open: {e}"))?;
        // The URL carries a one-time ticket: never logged.
        let url = opened.url.0.to_string();
        let (socket, _) = tokio_tungstenite::connect_async_with_config(url.as_str(), None, true)
            .await
            .map_err(|e| anyhow::anyhow!("connecting the WebSocket: {e}"))?;
        let tcp = match socket.get_ref() {
            MaybeTlsStream::Plain(tcp) => Some(tcp),
            MaybeTlsStream::Rustls(tls) => Some(tls.get_ref().0),
            _ => None,
        };
        self.report.record(tcp.and_then(|tcp| tcp.nodelay().ok()).unwrap_or(false));
        Ok(socket)
    }

    /// Reads frames until the connection ends; each text frame goes to the library's listener and its ack is sent
    /// back before the next frame is read (as the library does). True when the connection ended by itself (the
    /// caller then has it re-opened), false when stopped.
    async fn serve(&self, socket: Socket, stop: &CancellationToken) -> bool {
        let (mut writer, mut reader) = socket.split();
        let ping_every = Duration::from_secs(self.config.ping_interval_in_seconds.max(1));
        let give_up_after = Duration::from_secs(
            self.config.ping_interval_in_seconds.max(1).saturating_mul(self.config.ping_failure_threshold_times.max(1)),
        );
        let mut pings = tokio::time::interval_at(Instant::now() + ping_every, ping_every);
        let mut last_pong = Instant::now();
        loop {
            tokio::select! {
                () = stop.cancelled() => {
                    let _ = writer.close().await;
                    return false;
                }
                frame = reader.next() => match frame {
                    Some(Ok(Message::Text(body))) => {
                        if let Some(ack) = self.listener.on_message(&self.id, body.as_str().to_owned()).await
                            && let Err(err) = writer.send(Message::Text(ack.into())).await
                        {
                            warn!(connection = %self.id.to_string(), error = %err, "could not send an ack");
                            return true;
                        }
                    }
                    Some(Ok(Message::Pong(_))) => last_pong = Instant::now(),
                    // Pings are answered by tungstenite itself.
                    Some(Ok(Message::Ping(_) | Message::Frame(_))) => {}
                    Some(Ok(Message::Binary(_))) => {
                        let error = SlackClientError::SocketModeProtocolError(
                            SlackClientSocketModeProtocolError::new("unexpected binary frame".to_owned()),
                        );
                        self.listener.on_error(Box::new(error)).await;
                    }
                    Some(Ok(Message::Close(_))) | None => return true,
                    Some(Err(err)) => {
                        debug!(connection = %self.id.to_string(), error = %err, "socket-mode connection failed");
                        return true;
                    }
                },
                _ = pings.tick() => {
                    if last_pong.elapsed() > give_up_after {
                        warn!(connection = %self.id.to_string(), "no pong from Slack for too long; reconnecting");
                        let _ = writer.close().await;
                        return true;
                    }
                    let body: [u8; 5] = rand::random();
                    if writer.send(Message::Ping(body.to_vec().into())).await.is_err() {
                        return true;
                    }
                }
            }
        }
    }
}
