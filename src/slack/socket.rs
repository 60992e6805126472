//! Socket mode: slack-morphism's listener, translated into [`SlackEvent`]s. Transport only translates. The
//! WebSocket connections under the listener are [`super::connections`]' (with `TCP_NODELAY`).
//!
//! slack-morphism reads one connection's frames in order and sends each ack only when our callback returns, so
//! the callbacks stay short: translate, ask the handler for the ack (a pure, fast decision such as a parse error
//! or modal validation), spawn the real work, return. Hello, disconnect (every reason: the library reconnects
//! with a fresh `apps.connections.open` URL), pings and unknown envelope types are handled by the library.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::Context as _;
use async_trait::async_trait;
use hyper_rustls::HttpsConnectorBuilder;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use slack_morphism::prelude::*;
use tokio_util::task::TaskTracker;
use tracing::{debug, warn};

use super::SlackMessage;
use super::connections::{NoDelayConnector, SocketReport};
use super::event::{self, SlackEvent};
use crate::telemetry::Metrics;

/// What to put in the ack of an envelope.
#[derive(Debug, Clone, PartialEq)]
pub enum Ack {
    /// A bare ack: the answer comes later through the Web API.
    Empty,
    /// An ephemeral answer to a slash command, shown at once.
    Reply(SlackMessage),
    /// Modal validation errors, by block id (`response_action: errors`).
    ViewErrors(std::collections::BTreeMap<String, String>),
    /// Replace the submitted modal with this view (`response_action: update`).
    ViewUpdate(Value),
}

/// What handles events: a fast `ack` on the socket task, the real work in a spawned task.
#[async_trait]
pub trait EventHandler: Send + Sync + 'static {
    /// What the ack hands on to the work: the event, with whatever deciding the ack already worked out (a parsed
    /// command, a validated form), so nothing is worked out twice.
    type Work: Send + 'static;
    /// Decides the ack and the work that follows it. Runs before the ack is sent: no I/O here.
    fn ack(&self, event: SlackEvent) -> (Ack, Self::Work);
    /// Does the work, after the ack.
    async fn handle(&self, work: Self::Work);
}

/// A handler with its work type erased, as the plain-`fn` callbacks hold it: acks, and spawns the work on `tasks`.
trait Take: Send + Sync + 'static {
    fn take(self: Arc<Self>, event: SlackEvent, tasks: &TaskTracker) -> Ack;
}

impl<H: EventHandler> Take for H {
    fn take(self: Arc<Self>, event: SlackEvent, tasks: &TaskTracker) -> Ack {
        let (ack, work) = self.ack(event);
        tasks.spawn(async move { self.handle(work).await });
        ack
    }
}

/// Settings of the socket-mode connection.
#[derive(Debug, Clone)]
pub struct SocketSettings {
    /// Web API base, e.g. `https://slack.com/api` (no trailing slash: the library appends `/<method>`).
    pub api_base: String,
    pub app_token: SecretString,
    /// How many connections to keep open (Slack spreads envelopes over them).
    pub connections: u32,
    /// Seconds between opening successive connections (slack-morphism staggers them).
    pub stagger_seconds: u64,
    /// The workspace and app whose envelopes are acted on.
    pub origin: event::Origin,
}

/// The running listener.
pub struct SocketMode {
    listener: SlackClientSocketModeListener<NoDelayConnector>,
    events: Arc<AtomicUsize>,
    hellos: Arc<AtomicUsize>,
    sockets: Arc<SocketReport>,
}

impl SocketMode {
    /// Stops reading envelopes and closes the sockets.
    pub async fn shutdown(self) {
        self.listener.shutdown().await;
    }

    /// Events received so far (translated or not), for tests and metrics.
    pub fn events_received(&self) -> usize {
        self.events.load(Ordering::Relaxed)
    }

    /// WebSockets opened so far, and how many of them had `TCP_NODELAY` when read back from the socket.
    pub fn sockets_opened_with_nodelay(&self) -> (usize, usize) {
        self.sockets.counts()
    }

    /// [`Self::sockets_opened_with_nodelay`] once at least `count` WebSockets were opened.
    pub async fn sockets_opened_at_least(&self, count: usize) -> (usize, usize) {
        self.sockets.opened_at_least(count).await
    }

    /// Connections Slack has greeted with `hello` so far, first ones and re-opened ones alike. slack-morphism
    /// reports nothing else about its connections, so this is the only sign that one is really up.
    pub fn hellos(&self) -> Arc<AtomicUsize> {
        self.hellos.clone()
    }
}

/// State the plain-`fn` callbacks reach through slack-morphism's user state.
struct Shared {
    handler: Arc<dyn Take>,
    events: Arc<AtomicUsize>,
    /// Where the work after each ack runs, so a shutdown can wait for it.
    tasks: TaskTracker,
    hellos: Arc<AtomicUsize>,
    /// Connections opened at start; every `hello` beyond them is a re-opened connection.
    initial_connections: usize,
    metrics: Metrics,
    origin: event::Origin,
}

/// A Web API client for `api_base` that accepts `http://` too (a local Slack) and speaks HTTP/1 and HTTP/2.
pub fn slack_client(api_base: &str) -> Arc<SlackHyperClient> {
    Arc::new(SlackClient::new(hyper_connector(api_base)))
}

/// The socket-mode client: [`slack_client`]'s connector, opening its WebSockets with `TCP_NODELAY`.
type SocketClient = SlackClient<NoDelayConnector>;

fn hyper_connector(api_base: &str) -> SlackClientHyperHttpsConnector {
    crate::tls::install_crypto_provider();
    let tls = match HttpsConnectorBuilder::new().with_native_roots() {
        Ok(builder) => builder,
        // A container without a CA bundle can still reach a local, plain-http Slack.
        Err(_) => HttpsConnectorBuilder::new().with_tls_config(
            rustls::ClientConfig::builder()
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth(),
        ),
    };
    let https = tls.https_or_http().enable_http1().enable_http2().build();
    SlackClientHyperConnector::with_connector(https).with_slack_api_url(api_base.trim_end_matches('/'))
}

/// Connects and starts delivering events to `handler`; the work after each ack is spawned on `tasks`.
pub async fn start<H: EventHandler>(
    settings: &SocketSettings,
    handler: Arc<H>,
    tasks: TaskTracker,
    metrics: Metrics,
) -> anyhow::Result<SocketMode> {
    let connector = NoDelayConnector::new(hyper_connector(&settings.api_base));
    let sockets = connector.report();
    let client = Arc::new(SocketClient::new(connector));
    let events = Arc::new(AtomicUsize::new(0));
    let hellos = Arc::new(AtomicUsize::new(0));
    let callbacks = SlackSocketModeListenerCallbacks::new()
        // The event type is not exported by slack-morphism; only the fact that a hello arrived matters here.
        .with_hello_events(|_hello, _client, state| on_hello(state))
        .with_command_events(on_command)
        .with_interaction_events(on_interaction);
    let environment = Arc::new(
        SlackClientEventsListenerEnvironment::new(client).with_error_handler(on_error).with_user_state(Shared {
            handler,
            events: events.clone(),
            tasks,
            hellos: hellos.clone(),
            initial_connections: settings.connections as usize,
            metrics,
            origin: settings.origin.clone(),
        }),
    );
    let config = SlackClientSocketModeConfig::new()
        .with_max_connections_count(settings.connections)
        .with_initial_backoff_in_seconds(settings.stagger_seconds);
    let listener = SlackClientSocketModeListener::new(&config, environment, callbacks);
    let token = SlackApiToken::new(settings.app_token.expose_secret().to_owned().into());
    listener.listen_for(&token).await.map_err(|e| anyhow::anyhow!("{e}")).context("opening Slack socket mode")?;
    listener.start().await;
    Ok(SocketMode { listener, events, hellos, sockets })
}

async fn shared(state: &SlackClientEventsUserState) -> Option<(Arc<dyn Take>, Arc<AtomicUsize>, TaskTracker)> {
    let guard = state.read().await;
    guard.get_user_state::<Shared>().map(|s| (s.handler.clone(), s.events.clone(), s.tasks.clone()))
}

/// Whether the payload is for another workspace or app; if so it is logged, counted as a security alert and must
/// not be handed on. Slack sends this app's socket only this installation's envelopes, so one naming another is
/// either a Slack mistake or not from Slack: acting on it would let a user of another workspace request or
/// approve here.
async fn is_foreign(state: &SlackClientEventsUserState, payload: &Value) -> bool {
    let guard = state.read().await;
    let Some(shared) = guard.get_user_state::<Shared>() else { return true };
    match shared.origin.foreign(payload) {
        None => false,
        Some(names) => {
            shared.metrics.security_alert("foreign_envelope");
            warn!(names = %names, "envelope for another workspace or app; acked and ignored");
            true
        }
    }
}

/// Slack greets every new connection with `hello`: the first `connections` are the start, later ones re-opened
/// connections (after a `disconnect` envelope, a refresh or a dropped socket).
async fn on_hello(state: SlackClientEventsUserState) {
    let guard = state.read().await;
    let Some(shared) = guard.get_user_state::<Shared>() else { return };
    let seen = shared.hellos.fetch_add(1, Ordering::Relaxed) + 1;
    if seen > shared.initial_connections {
        shared.metrics.socket_reconnect();
        debug!(connections_opened = seen, "socket-mode connection re-opened");
    }
}

async fn on_command(
    event: SlackCommandEvent,
    _client: Arc<SocketClient>,
    state: SlackClientEventsUserState,
) -> UserCallbackResult<SlackCommandEventResponse> {
    let empty = SlackCommandEventResponse::new(SlackMessageContent::new());
    let Some((handler, events, tasks)) = shared(&state).await else { return Ok(empty) };
    events.fetch_add(1, Ordering::Relaxed);
    let Ok(json) = serde_json::to_value(&event) else { return Ok(empty) };
    if is_foreign(&state, &json).await {
        return Ok(empty);
    }
    let Some(event) = event::from_command(&json) else {
        warn!("slash command payload not understood; acked and ignored");
        return Ok(empty);
    };
    let ack = handler.take(event, &tasks);
    Ok(match ack {
        Ack::Reply(message) => SlackCommandEventResponse::new(SlackMessageContent::new().with_text(message.text))
            .with_response_type(SlackMessageResponseType::Ephemeral),
        Ack::Empty | Ack::ViewErrors(_) | Ack::ViewUpdate(_) => empty,
    })
}

async fn on_interaction(
    event: SlackInteractionEvent,
    _client: Arc<SocketClient>,
    state: SlackClientEventsUserState,
) -> UserCallbackResult<SlackInteractionResponse> {
    let Some((handler, events, tasks)) = shared(&state).await else { return Ok(SlackInteractionResponse::Empty) };
    events.fetch_add(1, Ordering::Relaxed);
    let Ok(json) = serde_json::to_value(&event) else { return Ok(SlackInteractionResponse::Empty) };
    if is_foreign(&state, &json).await {
        return Ok(SlackInteractionResponse::Empty);
    }
    let Some(event) = event::from_interaction(&json) else {
        debug!("interaction jitgate does not act on; acked and ignored");
        return Ok(SlackInteractionResponse::Empty);
    };
    let ack = handler.take(event, &tasks);
    Ok(match ack {
        Ack::ViewErrors(errors) => SlackInteractionResponse::ViewSubmission(SlackViewSubmissionResponse::Errors(
            SlackViewSubmissionErrorsResponse::new(errors.into_iter().collect()),
        )),
        Ack::ViewUpdate(view) => match serde_json::from_value::<SlackView>(view) {
            Ok(view) => SlackInteractionResponse::ViewSubmission(SlackViewSubmissionResponse::Update(
                SlackViewSubmissionUpdateResponse::new(view),
            )),
            Err(err) => {
                warn!(error = %err, "built a view slack-morphism cannot carry; acking without it");
                SlackInteractionResponse::Empty
            }
        },
        Ack::Empty | Ack::Reply(_) => SlackInteractionResponse::Empty,
    })
}

fn on_error(
    error: Box<dyn std::error::Error + Send + Sync>,
    _client: Arc<SocketClient>,
    _state: SlackClientEventsUserState,
) -> HttpStatusCode {
    warn!(error = %error, "socket-mode listener error");
    // Ack: Slack retrying an envelope we could not read would only fail again.
    HttpStatusCode::OK
}
