//! `jitgate run`: builds every client from the validated config and the environment, starts the socket-mode
//! listener and the sweeper, and stops them when the shutdown signal fires.
//!
//! Shutdown drains: the sockets close first (Slack then delivers new envelopes to the other replicas), the work
//! already taken — above all queries running with temporary credentials — gets `requests.shutdown_drain` to
//! finish, and whatever still runs after that is failed as interrupted (audited, card updated), never re-run.
//!
//! Tests start the same [`App`] in-process against the Slack and PagerDuty emulators, the local DynamoDB/STS server
//! and a real Redis, with an injected clock and the background sweeper off (they call [`Bot::sweep_once`]).

mod directory;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Arc;

use anyhow::Context as _;
use aws_config::SdkConfig;
use secrecy::ExposeSecret;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

use crate::audit::AuditLog;
use crate::aws::{Executor, StsBroker};
use crate::bot::{Bot, BotSettings};
use crate::clock::SharedClock;
use crate::config::{AwsClient, CallTimeouts, Config, Secrets};
use crate::engine::{Engine, EngineSettings};
use crate::http::{self, HttpState, Metrics};
use crate::ids::SlackUserId;
use crate::links::AuditLinkSigner;
use crate::oncall::{
    CachedDirectory, PagerDutyClient, PagerDutySettings, RosterCache, RosterProvider, RosterSettings, SlackDirectory,
};
use crate::runbook::RunbookSet;
use crate::seal::{SealPurpose, Sealer};
use crate::slack::event::{Origin, app_id_of_app_token};
use crate::slack::socket::{self, SocketMode, SocketSettings};
use crate::slack::{SlackWeb, WebSettings};
use crate::store::{RateLimit, RequestStore, StoreSettings};
use std::sync::atomic::{AtomicBool, Ordering};

pub use directory::SlackWebDirectory;

/// How the app is started beyond its config.
#[derive(Debug, Clone)]
pub struct StartOptions {
    /// Run the sweeper every `slack.sweep_interval` (production); tests drive it themselves.
    pub background_sweeper: bool,
    /// Seconds between opening successive socket connections (Slack's rate limit on `apps.connections.open`).
    pub socket_stagger_seconds: u64,
}

impl Default for StartOptions {
    fn default() -> Self {
        StartOptions { background_sweeper: true, socket_stagger_seconds: 5 }
    }
}

/// What a shutdown did, for the log and for tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShutdownOutcome {
    /// Every task taken before the sockets closed finished within the drain deadline.
    Drained,
    /// The deadline passed: running queries were interrupted, and their failure recorded.
    Interrupted,
    /// Even the clean-up after interrupting did not end in time; the sweeper of another replica will fail what is
    /// left Running (see `Engine::fail_stuck`).
    Abandoned,
}

/// How long interrupted runs get to record their failure (Redis, audit, card) after the drain deadline.
pub const INTERRUPT_CLEANUP: Duration = Duration::from_secs(15);

/// A running jitgate.
pub struct App {
    bot: Arc<Bot>,
    socket: SocketMode,
    /// The work spawned after each ack.
    tasks: TaskTracker,
    drain: Duration,
    sweeper: Option<JoinHandle<()>>,
    /// Writes checkpoints of the audit chain's head (`[audit] checkpoint_bucket`); stopped with the sweeper.
    checkpointer: Option<JoinHandle<()>>,
    stop_sweeper: CancellationToken,
    http: JoinHandle<std::io::Result<()>>,
    http_addr: std::net::SocketAddr,
    operations_addr: std::net::SocketAddr,
    stop_http: tokio::sync::watch::Sender<bool>,
    /// False once shutdown starts: readiness then reports no socket (see `http::readiness`).
    sockets_up: Arc<AtomicBool>,
}

impl App {
    /// Where the public listener (audit pages, `/healthz`) listens.
    pub fn http_addr(&self) -> std::net::SocketAddr {
        self.http_addr
    }

    /// Where the operations listener (`/healthz`, `/readyz`, `/metrics`) listens.
    pub fn operations_addr(&self) -> std::net::SocketAddr {
        self.operations_addr
    }

    pub fn bot(&self) -> &Arc<Bot> {
        &self.bot
    }

    /// Envelopes received over the socket so far.
    pub fn events_received(&self) -> usize {
        self.socket.events_received()
    }

    /// Socket-mode WebSockets opened so far, and how many of them had `TCP_NODELAY` read back from the socket.
    pub fn sockets_opened_with_nodelay(&self) -> (usize, usize) {
        self.socket.sockets_opened_with_nodelay()
    }

    /// [`Self::sockets_opened_with_nodelay`] once at least `count` WebSockets were opened.
    pub async fn sockets_opened_at_least(&self, count: usize) -> (usize, usize) {
        self.socket.sockets_opened_at_least(count).await
    }

    /// Stops taking envelopes, lets taken work finish within `requests.shutdown_drain`, interrupts what is left,
    /// then stops the sweeper and the HTTP server (which answers `/readyz` with 503 meanwhile).
    pub async fn shutdown(self) -> ShutdownOutcome {
        self.sockets_up.store(false, Ordering::Relaxed);
        // Closing the sockets is how a replica stops taking envelopes: Slack sends them to the open ones.
        self.socket.shutdown().await;
        info!(drain = ?self.drain, "sockets closed; waiting for the work in progress");
        self.stop_sweeper.cancel();
        self.tasks.close();
        let outcome = if tokio::time::timeout(self.drain, self.tasks.wait()).await.is_ok() {
            ShutdownOutcome::Drained
        } else {
            warn!("drain deadline reached; interrupting the queries still running");
            self.bot.engine().interrupt_running();
            if tokio::time::timeout(INTERRUPT_CLEANUP, self.tasks.wait()).await.is_ok() {
                ShutdownOutcome::Interrupted
            } else {
                error!("interrupted work did not finish recording its failure; the sweeper will fail it later");
                ShutdownOutcome::Abandoned
            }
        };
        if let Some(mut sweeper) = self.sweeper {
            // A sweep pass that started before the signal is finished, not cut in half; a stuck one is dropped.
            if tokio::time::timeout(INTERRUPT_CLEANUP, &mut sweeper).await.is_err() {
                sweeper.abort();
            }
        }
        if let Some(mut checkpointer) = self.checkpointer
            && tokio::time::timeout(INTERRUPT_CLEANUP, &mut checkpointer).await.is_err()
        {
            checkpointer.abort();
        }
        let _ = self.stop_http.send(true);
        match self.http.await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => warn!(error = %err, "the HTTP server stopped with an error"),
            Err(err) => warn!(error = %err, "the HTTP server task failed"),
        }
        info!(outcome = ?outcome, "stopped");
        outcome
    }
}

/// Builds everything and connects to Slack.
pub async fn start(
    config: &Config,
    secrets: &Secrets,
    runbooks: RunbookSet,
    sdk: &SdkConfig,
    clock: SharedClock,
    options: StartOptions,
) -> anyhow::Result<App> {
    // One crypto provider for every TLS client built below (Redis, Slack, PagerDuty, OTLP).
    crate::tls::install_crypto_provider();
    // The same checks as `jitgate check --secrets`, before anything is connected.
    let approval_channel = config.approval_channel_for_run()?.to_owned();
    crate::result_rows::check_temp_dir()?;
    let needed = secrets.require_for_run(pagerduty_required(config, &runbooks)).map_err(missing_secrets)?;
    let (app_token, bot_token) = (&needed.slack_app_token, &needed.slack_bot_token);
    let links = AuditLinkSigner::new(needed.link_secret.clone(), config.http.audit_link_ttl);
    let metrics = Metrics::new();
    metrics.register_runbooks(runbooks.iter().map(|r| r.id().as_str()));
    let runbooks = Arc::new(runbooks);

    let store_settings = StoreSettings {
        key_prefix: config.redis.key_prefix.clone(),
        pending_grace: config.redis.pending_grace,
        finished_retention: config.redis.finished_retention,
        connect_timeout: config.redis.timeout,
        response_timeout: config.redis.timeout,
        operation_timeout: config.redis.timeout * 2,
        cluster: config.redis.cluster,
        ca_file: config.redis.ca_file.clone(),
        ..StoreSettings::default()
    };
    let redis_url = secrets.redis_url.expose_secret();
    let store = RequestStore::connect(redis_url, store_settings)
        .await
        .context("connecting to Redis (REDIS_URL)")?
        .with_metrics(metrics.clone());
    // Each AWS client with its own `[aws.timeouts]`, so a silent STS, DynamoDB or audit table fails the request in
    // bounded time instead of holding it (and its Slack user) forever.
    let sdk_for = |client| with_timeouts(sdk, config.aws.timeouts.of(client));
    let audit = AuditLog::new(&sdk_for(AwsClient::Audit), config.aws.audit_table.clone(), clock.clone())
        .with_metrics(metrics.clone());
    audit.ensure_table().await.context("checking the audit table")?;
    let engine = Arc::new(Engine::new(
        runbooks.clone(),
        store,
        StsBroker::new(&sdk_for(AwsClient::Sts)).with_clock(clock.clone()).with_metrics(metrics.clone()),
        Executor::new(sdk_for(AwsClient::DynamoDb), clock.clone()).with_metrics(metrics.clone()),
        audit,
        clock.clone(),
        EngineSettings {
            region: config.region().to_owned(),
            rate_limit: RateLimit { max: config.requests.per_user_limit, window: config.requests.per_user_window },
            // Keyed from the link secret, which Redis never sees (see `crate::seal`).
            sealer: Sealer::derive(&needed.link_secret, SealPurpose::Request),
        },
    ));

    let slack =
        SlackWeb::new(&secrets.slack_api_url, bot_token.clone(), WebSettings::default())?.with_metrics(metrics.clone());
    let identity = slack.auth_test().await.context("checking SLACK_BOT_TOKEN with auth.test")?;
    info!(bot_user = %identity.user_id, team = ?identity.team, "connected to Slack");
    check_approval_channel(&slack, &approval_channel).await?;

    let roster = roster_provider(
        config,
        secrets,
        &runbooks,
        // Email → member links are kept for hours; who is on call is still asked of PagerDuty (see directory_cache).
        Arc::new(CachedDirectory::new(
            Arc::new(SlackWebDirectory::new(slack.clone())),
            clock.clone(),
            crate::oncall::directory_cache::DEFAULT_TTL,
        )),
        clock.clone(),
        &metrics,
        // The store's connection: the same Redis, reached the same way (TLS, cluster routing). Sealed under a key
        // Redis never sees, so an edited cache entry cannot add an approver.
        RosterCache::with_connection(engine.store().connection(), &config.redis.key_prefix)
            .with_sealer(Sealer::derive(&needed.link_secret, SealPurpose::Roster)),
    )?;
    let bot = Arc::new(Bot::new(
        engine.clone(),
        slack,
        roster,
        BotSettings {
            approval_channel,
            public_url: config.http.public_url.clone(),
            links: links.clone(),
            metrics: metrics.clone(),
            incident_notes_from: config.oncall.incident_notes_from.clone(),
            break_glass: crate::engine::BreakGlassSettings {
                daily_limit: config.break_glass.daily_limit,
                review_within: config.break_glass.review_within,
            },
            break_glass_mention: config.break_glass.mention.clone(),
        },
        clock.clone(),
    ));
    let socket_settings = SocketSettings {
        api_base: secrets.slack_api_url.clone(),
        app_token: app_token.clone(),
        connections: config.slack.connections,
        stagger_seconds: options.socket_stagger_seconds,
        origin: Origin { team_id: identity.team_id.clone(), app_id: app_id_of_app_token(app_token.expose_secret()) },
    };
    if socket_settings.origin.app_id.is_none() {
        warn!("SLACK_APP_TOKEN does not name its app (xapp-1-A…-…): envelopes are checked for the workspace only");
    }
    let tasks = TaskTracker::new();
    let socket = socket::start(&socket_settings, bot.clone(), tasks.clone(), metrics.clone()).await?;
    // slack-morphism does not report its live connections, only Slack's `hello` on each new one, and it keeps
    // re-opening dropped ones by itself: readiness counts greeted connections, up to the configured number, from
    // the first hello until shutdown.
    let sockets_up = Arc::new(AtomicBool::new(true));
    let (listening, hellos, configured) = (sockets_up.clone(), socket.hellos(), config.slack.connections as usize);
    let sockets_seen = move || {
        if listening.load(Ordering::Relaxed) { hellos.load(Ordering::Relaxed).min(configured) } else { 0 }
    };
    let readiness = http::ReadinessMonitor::new(engine.store().clone(), engine.audit().clone(), Arc::new(sockets_seen));
    let clock_for_anchor = clock.clone();
    let state = HttpState {
        audit: engine.audit().clone(),
        links,
        clock,
        metrics,
        readiness,
        region: config.region().to_owned(),
    };
    let bind = |addr: std::net::SocketAddr, key: &'static str| async move {
        tokio::net::TcpListener::bind(addr).await.with_context(|| format!("binding the HTTP server to {addr} ({key})"))
    };
    let public = bind(config.http.listen, "http.listen").await?;
    let operations = bind(config.http.operations_listen, "http.operations_listen").await?;
    let http_addr = public.local_addr().context("reading the HTTP server's address")?;
    let operations_addr = operations.local_addr().context("reading the operations listener's address")?;
    let (header_read, request) = (config.http.header_read_timeout, config.http.request_timeout);
    let (stop_http, stopped) = tokio::sync::watch::channel(false);
    let until_stopped = |mut stopped: tokio::sync::watch::Receiver<bool>| async move {
        let _ = stopped.wait_for(|stop| *stop).await;
    };
    let http = tokio::spawn({
        let limits = http::ServerLimits::public(header_read, request, config.http.max_connections);
        let (state, stopped) = (state.clone(), stopped.clone());
        async move {
            let ops = http::serve_operations(
                operations,
                state.clone(),
                http::ServerLimits::operations(header_read, request),
                until_stopped(stopped.clone()),
            );
            let public = http::serve_public(public, state, limits, until_stopped(stopped));
            let (ops, public) = tokio::join!(ops, public);
            ops.and(public)
        }
    });
    let stop_sweeper = CancellationToken::new();
    let checkpointer = match (&config.audit.checkpoint_bucket, options.background_sweeper) {
        (Some(bucket), true) => {
            let anchor = crate::audit::Anchor::new(
                &sdk_for(AwsClient::General),
                bucket.clone(),
                config.audit.checkpoint_retention,
                clock_for_anchor,
            );
            let checkpointer = crate::audit::Checkpointer::new(engine.audit().clone(), anchor);
            Some(tokio::spawn(checkpoints(checkpointer, config.audit.checkpoint_every, stop_sweeper.clone())))
        }
        _ => None,
    };
    let sweeper = options.background_sweeper.then(|| {
        let bot = bot.clone();
        tokio::spawn(every(config.slack.sweep_interval, stop_sweeper.clone(), move || {
            let bot = bot.clone();
            async move {
                if let Err(err) = bot.sweep_once().await {
                    warn!(error = format!("{err:#}"), "sweep failed; will retry");
                }
            }
        }))
    });
    Ok(App {
        bot,
        socket,
        tasks,
        drain: config.requests.shutdown_drain,
        sweeper,
        checkpointer,
        stop_sweeper,
        http,
        http_addr,
        operations_addr,
        stop_http,
        sockets_up,
    })
}

/// The SDK's connect timeout when the configuration sets none (the SDK's own default).
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_millis(3100);

/// `sdk` with `timeouts` as the operation and attempt timeouts of every client built from it; its connect and
/// read timeouts are kept.
pub fn with_timeouts(sdk: &SdkConfig, timeouts: CallTimeouts) -> SdkConfig {
    let current = sdk.timeout_config();
    let mut bounds = aws_smithy_types::timeout::TimeoutConfig::builder()
        .operation_timeout(timeouts.operation)
        .operation_attempt_timeout(timeouts.attempt)
        .connect_timeout(current.and_then(|t| t.connect_timeout()).unwrap_or(DEFAULT_CONNECT_TIMEOUT));
    if let Some(read) = current.and_then(|t| t.read_timeout()) {
        bounds = bounds.read_timeout(read);
    }
    sdk.to_builder().timeout_config(bounds.build()).build()
}

/// Checkpoints the audit chain's head every `every` until `stop`, on every replica: replicas writing the same head
/// write the same object, which is accepted. A failed write is logged and tried again on the next tick; a table
/// that no longer holds the hash of the last checkpoint is never anchored (see `audit::Checkpointer::tick`).
async fn checkpoints(checkpointer: crate::audit::Checkpointer, interval: Duration, stop: CancellationToken) {
    let checkpointer = Arc::new(tokio::sync::Mutex::new(checkpointer));
    every(interval, stop, move || {
        let checkpointer = checkpointer.clone();
        async move {
            if let Err(err) = checkpointer.lock().await.tick().await {
                error!(error = %err, "could not checkpoint the audit chain; will retry");
            }
        }
    })
    .await
}

/// Runs `work` at once and then every `interval` until `stop`. A pass that started is finished, not cut in half
/// (shutdown waits for it, see `App::shutdown`); ticks missed while a pass ran are not made up.
async fn every<F, Fut>(interval: Duration, stop: CancellationToken, mut work: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = ticks.tick() => {}
        }
        work().await;
    }
}

fn roster_provider(
    config: &Config,
    secrets: &Secrets,
    runbooks: &RunbookSet,
    directory: Arc<dyn SlackDirectory>,
    clock: SharedClock,
    metrics: &Metrics,
    cache: RosterCache,
) -> anyhow::Result<RosterProvider> {
    let static_roster: BTreeMap<String, BTreeSet<SlackUserId>> = config
        .oncall
        .static_roster
        .iter()
        .map(|(schedule, users)| (schedule.clone(), users.iter().filter_map(|u| SlackUserId::parse(u)).collect()))
        .collect();
    // Without a token no runbook needs PagerDuty: `start` has refused to start otherwise (`pagerduty_required`).
    debug_assert!(secrets.pagerduty_token.is_some() || !pagerduty_required(config, runbooks));
    let pagerduty = match &secrets.pagerduty_token {
        Some(token) => Some(
            PagerDutyClient::new(&secrets.pagerduty_api_url, token.clone(), PagerDutySettings::default())?
                .with_metrics(metrics.clone()),
        ),
        None => None,
    };
    RosterProvider::new(
        pagerduty,
        directory,
        cache,
        clock,
        RosterSettings {
            cache_ttl: config.oncall.cache_ttl,
            max_staleness: config.oncall.max_staleness,
            max_escalation_level: config.oncall.max_escalation_level,
            static_roster,
        },
    )
}

/// Runs until `shutdown` completes.
pub async fn run(
    config: &Config,
    secrets: &Secrets,
    runbooks: RunbookSet,
    sdk: &SdkConfig,
    clock: SharedClock,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let app = start(config, secrets, runbooks, sdk, clock, StartOptions::default()).await?;
    info!("jitgate is running");
    shutdown.await;
    info!("shutting down");
    app.shutdown().await;
    Ok(())
}

/// Whether `jitgate run` needs PagerDuty: as soon as one runbook names a schedule that `[oncall.static_roster]`
/// does not cover, or any escalation policy. Without the token those runbooks could never be approved, so `run`
/// refuses to start and `jitgate check --secrets` refuses the setup (see `Secrets::require_for_run`).
pub fn pagerduty_required(config: &Config, runbooks: &RunbookSet) -> bool {
    runbooks.iter().any(|r| {
        let approvers = &r.approval().approvers;
        !approvers.pagerduty_escalation_policies.is_empty()
            || approvers.pagerduty_schedules.iter().any(|s| !config.oncall.static_roster.contains_key(s))
    })
}

/// All of the environment's problems in one error, one per line, each naming the variable and the fix.
fn missing_secrets(errors: Vec<crate::config::EnvError>) -> anyhow::Error {
    let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
    anyhow::anyhow!("{}", lines.join("\n"))
}

/// Start-up check of the approval channel with `conversations.info` (what the `channels:read` and `groups:read`
/// scopes are for).
///
/// Fail closed on what Slack says for certain: a channel that does not exist (or is private without the bot),
/// one the bot is not in, or an archived one can never receive a card, so every request would fail; jitgate
/// refuses to start with the fix, and in a rolling deploy the new replica never turns ready while the old ones
/// keep serving. When Slack gives no answer about the channel (unreachable, rate limited, an error code such as
/// `missing_scope`), that says nothing about the channel: jitgate logs a warning and starts, so a Slack hiccup
/// between `auth.test` and this call cannot keep replicas restarting; a card posted into a bad channel later
/// fails with its own message naming the fix.
async fn check_approval_channel(slack: &SlackWeb, channel: &str) -> anyhow::Result<()> {
    use crate::live_check::ApprovalChannel;
    let status = ApprovalChannel::check(slack, channel).await;
    match &status {
        ApprovalChannel::Ready(_) => info!(channel, "approval channel: {}", status.describe(channel)),
        ApprovalChannel::Unknown(_) => {
            warn!(channel, "approval channel not checked, starting anyway: {}", status.describe(channel))
        }
        ApprovalChannel::NotFound | ApprovalChannel::NotMember(_) | ApprovalChannel::Archived(_) => {
            anyhow::bail!("approval channel: {}", status.describe(channel))
        }
    }
    Ok(())
}
