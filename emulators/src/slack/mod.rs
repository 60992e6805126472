//! A local Slack for tests and the demo: the Web API (`/api/<method>`) and socket mode over a real WebSocket,
//! faithful to the wire formats in `samples/slack/`, recording everything the bot does so a test can
//! read it like a story and fail on anything it did not expect.
//!
//! ```no_run
//! # async fn demo() {
//! use jitgate_emulators::slack::{Channel, FakeSlack, SlackConfig, User};
//! let slack = FakeSlack::start(
//!     SlackConfig::default()
//!         .with_user(User::new("U0ALICE", "alice"))
//!         .with_channel(Channel::public("C0ONCALL", "oncall")),
//! )
//! .await;
//! // … point the bot at slack.api_url() with slack.bot_token() / slack.app_token() …
//! slack.wait_for_connections(1).await;
//! let command = slack.send_slash_command("U0ALICE", "#oncall", "/jit", "help").await;
//! command.ack().await.expect("acked in time");
//! let reply = slack.next_ephemeral_for("U0ALICE").await;
//! assert!(reply.all_text().contains("query"));
//! # }
//! // Dropping `slack` here fails the test if the bot produced anything the test did not read.
//! ```

mod config;
mod driver;
mod ids;
mod inspect;
mod records;
mod socket;
mod state;
mod web;

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use axum::serve::ListenerExt as _;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use config::{BotIdentity, Channel, SlackConfig, SocketModeConfig, Team, User};
pub use driver::Elsewhere;
pub use inspect::unread_failure;
pub use records::{
    ApiCall, Button, CallOutcome, Ephemeral, EphemeralSource, Message, MessageUpdate, OpenedView, UploadedFile,
    ViewUpdate,
};
pub use socket::{Ack, AckError, ConnectionId, Delivery, EnvelopeHandle};
/// The strict Block Kit check the fake applies to every message and view; also for unit tests of payloads.
pub use web::blocks as block_kit;
pub use web::{MAX_MESSAGE_BLOCKS, MAX_MODAL_BLOCKS, MAX_TOTAL_BLOCK_TEXT, RESPONSE_URL_METHOD, method_names};

use socket::{Outbound, disconnect_frame};
use state::{Fault, Shared};

/// The running fake. Dropping it stops the server and closes every socket, then fails the test (panics) if the bot
/// produced output the test did not read: a message, update, ephemeral, upload or modal, an ack's reply, or a
/// protocol finding. Every test that owns a fake gets the check; none has to remember to ask for it.
pub struct FakeSlack {
    shared: Arc<Shared>,
    addr: SocketAddr,
    server: JoinHandle<()>,
}

impl Drop for FakeSlack {
    fn drop(&mut self) {
        self.shared.shutdown.send_replace(true);
        self.server.abort();
        // Not while unwinding: the test has already failed, and a second panic would abort the process and hide
        // the first failure.
        if self.shared.config.check_unread_on_drop
            && !std::thread::panicking()
            && let Some(failure) = unread_failure(&self.unread())
        {
            panic!("{failure}");
        }
    }
}

impl FakeSlack {
    /// Starts the fake on `config.bind` (a free port on 127.0.0.1 by default). Panics if it cannot bind; use
    /// [`try_start`](Self::try_start) to handle that.
    pub async fn start(config: SlackConfig) -> FakeSlack {
        match Self::try_start(config).await {
            Ok(fake) => fake,
            Err(error) => panic!("fake Slack failed to start: {error:#}"),
        }
    }

    /// Starts the fake, reporting bind failures.
    pub async fn try_start(config: SlackConfig) -> anyhow::Result<FakeSlack> {
        let listener =
            TcpListener::bind(config.bind).await.with_context(|| format!("binding fake Slack to {}", config.bind))?;
        let addr = listener.local_addr().context("reading the fake Slack's address")?;
        let shared = Arc::new(Shared::new(config, format!("http://{addr}")));
        let app = web::routes().merge(socket::routes()).with_state(shared.clone());
        // Without TCP_NODELAY small WebSocket frames wait on Nagle's algorithm and acks look slow.
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let server = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                tracing::error!(%error, "fake Slack server stopped");
            }
        });
        tracing::info!(%addr, "fake Slack listening");
        Ok(FakeSlack { shared, addr, server })
    }

    /// The Web API base URL with a trailing slash: `http://127.0.0.1:PORT/api/`. Clients that append
    /// `/<method>` (slack-morphism) work with it too, as the fake accepts `/api//<method>`; prefer
    /// [`api_base`](Self::api_base) for them.
    pub fn api_url(&self) -> String {
        format!("{}/api/", self.shared.base_url)
    }

    /// The Web API base URL without trailing slash, the form of `https://slack.com/api`:
    /// `http://127.0.0.1:PORT/api`.
    pub fn api_base(&self) -> String {
        format!("{}/api", self.shared.base_url)
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> &str {
        &self.shared.base_url
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The bot token the Web API accepts.
    pub fn bot_token(&self) -> &str {
        &self.shared.config.bot_token
    }

    /// The app-level token `apps.connections.open` accepts.
    pub fn app_token(&self) -> &str {
        &self.shared.config.app_token
    }

    /// The configuration the fake started with.
    pub fn config(&self) -> &SlackConfig {
        &self.shared.config
    }

    /// Adds a user while running.
    pub fn add_user(&self, user: User) {
        self.shared.mutate(|state| {
            state.users.retain(|u| u.id != user.id);
            state.users.push(user);
        });
    }

    /// Adds (or replaces) a channel while running.
    pub fn add_channel(&self, channel: Channel) {
        self.shared.mutate(|state| {
            state.channels.retain(|c| c.id != channel.id);
            state.channels.push(channel);
        });
    }

    /// Invites the bot to, or removes it from, a channel.
    pub fn set_bot_member(&self, channel: &str, member: bool) {
        let found = self.shared.mutate(|state| {
            let id = state.channel(channel).map(|c| c.id.clone());
            state.channels.iter_mut().filter(|c| Some(&c.id) == id.as_ref()).for_each(|c| c.bot_is_member = member);
            id.is_some()
        });
        assert!(found, "fake Slack: no channel {channel:?}");
    }

    /// The next call to `method` answers `{"ok": false, "error": <error_code>}` (after the token check).
    /// Several calls queue up in order.
    pub fn fail_next(&self, method: &str, error_code: &str) {
        self.push_fault(method, Fault::Error(error_code.to_owned()));
    }

    /// The next call to `method` answers HTTP 429 with `Retry-After: <retry_after_secs>` and
    /// `{"ok": false, "error": "ratelimited"}`.
    pub fn rate_limit_next(&self, method: &str, retry_after_secs: u64) {
        self.push_fault(method, Fault::RateLimit(retry_after_secs));
    }

    /// Holds the next call to `method` until the returned handle is released (or dropped), then answers it as
    /// usual: its effect (a message posted, a card updated) only happens then. For stories about what must or
    /// must not wait for a slow call.
    pub fn hold_next(&self, method: &str) -> HeldCall {
        let (release, held) = tokio::sync::watch::channel(false);
        self.push_fault(method, Fault::Hold(held));
        HeldCall { release }
    }

    /// Answers every later Web API call (upload URLs and `response_url`s included) `latency` after it arrives,
    /// as a real Slack does over the internet. The socket-mode WebSocket is not delayed: it is one long-lived
    /// connection whose frames cost what the network costs, not a call.
    pub fn set_latency(&self, latency: std::time::Duration) {
        self.shared.mutate(|state| state.latency = latency);
    }

    fn push_fault(&self, method: &str, fault: Fault) {
        assert!(method_names().any(|m| m == method), "fake Slack does not implement {method:?}; cannot inject a fault");
        self.shared.mutate(|state| state.faults.entry(method.to_owned()).or_default().push_back(fault));
    }

    /// Number of open socket-mode connections (not counting ones being disconnected).
    pub fn connections(&self) -> usize {
        self.shared.with(|state| state.open_connections().len())
    }

    /// Ids of the open socket-mode connections, oldest first.
    pub fn connection_ids(&self) -> Vec<ConnectionId> {
        self.shared.with(|state| state.open_connections())
    }

    /// Waits until at least `count` socket-mode connections are open; returns their ids.
    pub async fn wait_for_connections(&self, count: usize) -> Vec<ConnectionId> {
        self.shared
            .wait_for(
                || format!("{count} open socket-mode connection(s)"),
                |state| {
                    let open = state.open_connections();
                    (open.len() >= count).then_some(open)
                },
            )
            .await
    }

    /// Sends `{"type":"disconnect","reason":<reason>,"debug_info":{"host":…}}` to the oldest open connection
    /// and closes it, except for `reason = "warning"`, which Slack sends about 10 s before closing and
    /// which therefore leaves the socket open. Returns the connection. Panics when none is open.
    pub fn disconnect(&self, reason: &str) -> ConnectionId {
        let Some(oldest) = self.connection_ids().first().copied() else {
            panic!("fake Slack: disconnect({reason:?}) with no open socket-mode connection")
        };
        self.disconnect_connection(oldest, reason);
        oldest
    }

    /// [`disconnect`](Self::disconnect) for a given connection.
    pub fn disconnect_connection(&self, connection: ConnectionId, reason: &str) {
        let sent = self.shared.mutate(|state| {
            let Some(conn) = state.connections.get_mut(&connection) else { return false };
            let _ = conn.outbound.send(Outbound::Text(disconnect_frame(reason, &conn.host).to_string()));
            if reason != "warning" {
                conn.closing = true;
                let _ = conn.outbound.send(Outbound::Close);
            }
            true
        });
        assert!(sent, "fake Slack: {connection} is not open");
    }

    /// Closes a connection without a `disconnect` message, like a network failure or server restart.
    pub fn drop_connection(&self, connection: ConnectionId) {
        let closed = self.shared.mutate(|state| {
            let Some(conn) = state.connections.get_mut(&connection) else { return false };
            conn.closing = true;
            let _ = conn.outbound.send(Outbound::Close);
            true
        });
        assert!(closed, "fake Slack: {connection} is not open");
    }

    /// Waits until `connection` is fully closed.
    pub async fn wait_for_closed(&self, connection: ConnectionId) {
        self.shared
            .wait_for(
                || format!("{connection} to close"),
                |state| (!state.connections.contains_key(&connection)).then_some(()),
            )
            .await
    }

    /// Sends the identical envelope (same `envelope_id`, same bytes) once more, to a connection other than
    /// the one that got it last when another one is open — what a replica sees when Slack delivers twice.
    pub fn send_duplicate(&self, envelope: &EnvelopeHandle) -> ConnectionId {
        let envelope_id = envelope.envelope_id().to_owned();
        let target = envelope.shared().mutate(|state| {
            let last = state.envelopes.iter().find(|e| e.envelope_id == envelope_id)?.deliveries.last()?.connection;
            let open = state.open_connections();
            let target = open.iter().copied().find(|c| *c != last).or(open.first().copied())?;
            socket::send_to(state, &envelope_id, target, 0, true);
            Some(target)
        });
        match target {
            Some(connection) => connection,
            None => panic!("fake Slack: no open connection to send a duplicate of {}", envelope.summary()),
        }
    }
}

/// A call held by [`FakeSlack::hold_next`]; released by [`HeldCall::release`] or when dropped.
#[derive(Debug)]
pub struct HeldCall {
    release: tokio::sync::watch::Sender<bool>,
}

impl HeldCall {
    /// Lets the held call (or the one still to come) through.
    pub fn release(self) {
        self.release.send_replace(true);
    }
}
