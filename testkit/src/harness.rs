//! The whole bot, in-process, against the Slack and PagerDuty emulators, the local DynamoDB/STS server and a real
//! Redis. Steps read like the user's story: `request`, `click`, `next_card_update`, `thread_reply`, `audit_kinds`.
//!
//! Every world has its own Redis prefix, Orders table (named in its runbooks) and audit table, so tests run in
//! parallel. Time is a `ManualClock`; the sweeper is driven by `sweep()`, never by a timer.
//!
//! Everything the bot says in Slack must be read by a step: when the harness is dropped (or shut down), the Slack
//! emulator fails the test naming each output nobody read. A story that leaves output unread on purpose says so
//! with `h.slack.discard_unread()`.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use jitgate::app::{App, StartOptions};
use jitgate::audit::AuditLog;
use jitgate::aws::demo_table::{create_demo_orders_table, seed_demo_orders};
use jitgate::clock::{Clock as _, ManualClock, SharedClock};
use jitgate::config::{Config, Environment, Secrets};
use jitgate::ids::RequestId;
use jitgate::runbook::{RunbookDefaults, RunbookSet};
use jitgate_emulators::pagerduty::FakePagerDuty;
use jitgate_emulators::slack::{EnvelopeHandle, FakeSlack, Message, MessageUpdate};
use secrecy::SecretString;

// The world's names, for the stories.
pub use jitgate_emulators::world::{ALICE, BOB, CAROL, DEV, MALLORY, ONCALL, POLICY, SCHEDULE};
pub const CUSTOMERS: u32 = 4;
/// `JITGATE_LINK_SECRET` of every replica; it also keys the seals of records in Redis (see `jitgate::seal`).
pub const LINK_SECRET: &str = "test-link-secret-test-link-secret-test-link-secret-test-link-secret-";
pub const ORDERS_PER_CUSTOMER: u32 = 30;

/// A card as it was posted in the approval channel.
#[derive(Debug, Clone)]
pub struct Card {
    pub ts: String,
    pub id: RequestId,
    pub message: Message,
}

impl Card {
    /// The value of the card's button `action_id` as posted (Approve carries the request id and the fingerprint
    /// the card shows), which a click sends back.
    pub fn button_value(&self, action_id: &str) -> String {
        let buttons = self.message.buttons();
        let button = buttons.iter().find(|b| b.action_id == action_id);
        button.and_then(|b| b.value.clone()).unwrap_or_else(|| panic!("the card has no {action_id} button"))
    }
}

pub struct Options {
    pub replicas: usize,
    /// Where the bot's AWS calls go, when not straight to the local server (e.g. a [`crate::gate::Gate`]).
    pub aws_endpoint: Option<String>,
    /// `requests.shutdown_drain`.
    pub shutdown_drain: &'static str,
    /// `requests.per_user_limit` (benchmarks make more requests than a person would).
    pub per_user_limit: u32,
    /// Where the bot's Redis is, when not straight at the test server (e.g. a proxy that can be cut).
    pub redis_url: Option<String>,
    /// Config text added after the harness's own, e.g. an `[aws.timeouts.sts]` table.
    pub extra_config: &'static str,
    /// `redis.cluster`: `redis_url` is the seed list of a Redis Cluster.
    pub redis_cluster: bool,
    /// Runbooks beyond the shipped ones, as YAML texts (`name: Orders` is pointed at this world's table).
    pub extra_runbooks: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            replicas: 1,
            aws_endpoint: None,
            shutdown_drain: "30s",
            per_user_limit: 10,
            redis_url: None,
            extra_config: "",
            redis_cluster: false,
            extra_runbooks: Vec::new(),
        }
    }
}

pub struct Harness {
    pub slack: FakeSlack,
    pub pagerduty: FakePagerDuty,
    pub clock: Arc<ManualClock>,
    pub audit_table: String,
    /// This world's Orders table (the one its runbooks name).
    pub orders_table: String,
    /// `redis.key_prefix` of every replica: where a test that plays an attacker finds the records in Redis.
    pub key_prefix: String,
    pub apps: Vec<App>,
}

impl Harness {
    pub async fn start() -> Harness {
        Harness::start_with(Options::default()).await
    }

    pub async fn start_with(options: Options) -> Harness {
        let clock = ManualClock::new(crate::fixtures::wall_clock_now());
        let slack = FakeSlack::start(jitgate_emulators::world::slack_config()).await;
        let pagerduty = FakePagerDuty::start().await;
        pagerduty.set_now(clock.now());
        jitgate_emulators::world::add_oncall_roster(&pagerduty);
        jitgate_emulators::world::add_incidents(&pagerduty);

        let table = crate::unique("Orders");
        let aws = crate::aws_config();
        let dynamo = aws_sdk_dynamodb::Client::new(&aws);
        create_demo_orders_table(&dynamo, &table).await.expect("create Orders");
        seed_demo_orders(&dynamo, &table, CUSTOMERS, ORDERS_PER_CUSTOMER).await.expect("seed Orders");

        let audit_table = crate::unique("audit");
        let key_prefix = crate::unique("bot");
        let config_text = format!(
            "[aws]\nregion = \"{}\"\naudit_table = \"{audit_table}\"\n[redis]\nkey_prefix = \"{}\"\ncluster = {}\n\
             [requests]\nshutdown_drain = \"{}\"\nper_user_limit = {}\n\
             [slack]\napproval_channel = \"{ONCALL}\"\n[oncall]\nincident_notes_from = \"{}\"\n[break_glass]\nmention = \"<!here>\"\ndaily_limit = 1\n[http]\npublic_url = \"https://jitgate.test\"\nlisten = \"127.0.0.1:0\"\noperations_listen = \"127.0.0.1:0\"\n",
            crate::REGION,
            key_prefix,
            options.redis_cluster,
            options.shutdown_drain,
            options.per_user_limit,
            jitgate_emulators::world::NOTES_FROM,
        );
        let config_text = format!("{config_text}{}", options.extra_config);
        let config = Config::parse(Path::new("jitgate.toml"), &config_text, &Environment::default()).expect("config");
        let secrets = Secrets {
            redis_url: SecretString::from(options.redis_url.clone().unwrap_or_else(crate::redis_url)),
            slack_app_token: Some(SecretString::from(slack.app_token().to_owned())),
            slack_bot_token: Some(SecretString::from(slack.bot_token().to_owned())),
            slack_api_url: slack.api_base(),
            pagerduty_token: Some(SecretString::from(pagerduty.api_key().to_owned())),
            pagerduty_api_url: pagerduty.base_url(),
            link_secret: Some(SecretString::from(LINK_SECRET.to_owned())),
        };
        let bot_aws = match &options.aws_endpoint {
            Some(endpoint) => crate::aws_config_for(endpoint, "AKIAJITGATETESTS0001", "test-secret"),
            None => aws.clone(),
        };
        let mut apps = Vec::new();
        for _ in 0..options.replicas {
            let runbooks = runbooks_on(&table, &options.extra_runbooks);
            let start = StartOptions { background_sweeper: false, socket_stagger_seconds: 0 };
            let clock: SharedClock = clock.clone();
            let app =
                jitgate::app::start(&config, &secrets, runbooks, &bot_aws, clock, start).await.expect("start jitgate");
            apps.push(app);
        }
        slack.wait_for_connections(2 * options.replicas).await;
        // auth.test and the connections are the bot's start-up; the story starts after them.
        Harness { slack, pagerduty, clock, audit_table, orders_table: table, key_prefix, apps }
    }

    /// Runs one sweep (expiry and reminders) on the first replica.
    pub async fn sweep(&self) {
        self.apps[0].bot().sweep_once().await.expect("sweep");
    }

    /// `user` types `/jit <text>` in the dev channel; returns the envelope (its ack is checked by the caller).
    pub async fn slash(&self, user: &str, text: &str) -> EnvelopeHandle {
        self.slack.send_slash_command(user, DEV, "/jit", text).await
    }

    /// `user` asks for a query that goes straight to a card: the ack is bare, the requester is told it was
    /// submitted, and the card lands in the approval channel.
    pub async fn request(&self, user: &str, text: &str) -> Card {
        let envelope = self.slash(user, &format!("query {text}")).await;
        let ack = envelope.ack().await.expect("acked in time");
        assert!(ack_is_bare(&ack), "a query is answered after the ack, not in it: {ack:?}");
        let message = self.slack.next_message_in(ONCALL).await;
        let confirmation = self.slack.next_ephemeral_for(user).await;
        assert!(confirmation.all_text().contains("submitted"), "{}", confirmation.all_text());
        let id = message
            .buttons()
            .iter()
            .find_map(|b| b.value.as_deref().and_then(jitgate::messages::button_value).map(|(id, _)| id))
            .unwrap_or_else(|| panic!("the card has no request id: {}", message.all_text()));
        Card { ts: message.ts.clone(), id, message }
    }

    /// `user` clicks a button of the card and the click is acked in time.
    pub async fn click(&self, user: &str, card: &Card, action_id: &str) -> EnvelopeHandle {
        let value = card.button_value(action_id);
        let envelope = self.slack.send_block_action(user, ONCALL, &card.ts, action_id, &value).await;
        envelope.ack().await.expect("click acked in time");
        envelope
    }

    /// The next ephemeral shown to `user`, as text.
    pub async fn ephemeral_for(&self, user: &str) -> String {
        self.slack.next_ephemeral_for(user).await.all_text()
    }

    pub async fn next_card_update(&self, card: &Card) -> MessageUpdate {
        self.slack.next_update_of(ONCALL, &card.ts).await
    }

    /// Reads card updates until one contains `text`; returns it.
    pub async fn card_update_containing(&self, card: &Card, text: &str) -> MessageUpdate {
        loop {
            let update = self.next_card_update(card).await;
            if update.all_text().contains(text) {
                return update;
            }
        }
    }

    pub async fn thread_reply(&self, card: &Card) -> Message {
        self.slack.next_thread_reply(ONCALL, &card.ts).await
    }

    /// The DM (a message in the requester's IM channel) the bot sent to `user`.
    pub async fn dm_for(&self, user: &str) -> Message {
        self.slack.next_message_in(user).await
    }

    pub fn audit(&self) -> AuditLog {
        AuditLog::new(&crate::aws_config(), self.audit_table.clone(), self.clock.clone() as SharedClock)
    }

    /// Waits until the current refusal window of `user` has recorded at least `total` refusals, appended or counted,
    /// and returns `(appended, counted)`. A refusal answered in the ack is recorded by the task the ack spawned, which
    /// posts nothing afterwards, so there is no message to wait for: this polls Redis with a deadline.
    pub async fn refusals_recorded(&self, user: &str, total: u64) -> (u64, u64) {
        const POLL: std::time::Duration = std::time::Duration::from_millis(25);
        let store = self.apps[0].bot().engine().store().clone();
        let user = jitgate::ids::SlackUserId::parse(user).expect("a Slack user id");
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let (appended, counted) = store.refusals_in_window(&user).await.expect("refusal window");
            if appended + counted >= total {
                return (appended, counted);
            }
            assert!(tokio::time::Instant::now() < deadline, "{user}: only {appended} + {counted} of {total} recorded");
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until the audit trail holds at least `count` entries (refusals answered in the ack are audited by
    /// the task the ack spawned, so they land a moment later). Polls the table with a deadline.
    pub async fn audit_entries_at_least(&self, count: u64) -> jitgate::audit::VerifyReport {
        const POLL: std::time::Duration = std::time::Duration::from_millis(25);
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let report = self.audit().verify().await.expect("verify");
            if report.verified >= count || tokio::time::Instant::now() > deadline {
                return report;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The audit page a Slack link points at, fetched from this replica's HTTP server.
    pub async fn fetch_link(&self, link: &str) -> (u16, String) {
        let path = link.strip_prefix("https://jitgate.test").expect("a jitgate link");
        let url = format!("http://{}{path}", self.apps[0].http_addr());
        let response = reqwest::get(&url).await.expect("HTTP server answers");
        let status = response.status().as_u16();
        (status, response.text().await.unwrap_or_default())
    }

    /// `GET /metrics` of the first replica.
    pub async fn metrics(&self) -> String {
        let url = format!("http://{}/metrics", self.apps[0].operations_addr());
        reqwest::get(&url).await.expect("metrics").text().await.unwrap_or_default()
    }

    /// Waits until `/metrics` has a line starting with `prefix` (metrics recorded by a callback that runs beside
    /// the story, like a socket's `hello`, land a moment later); returns that line. Polls with a deadline.
    pub async fn metric_line(&self, prefix: &str) -> String {
        self.metric_line_where(prefix, |line| line.starts_with(prefix)).await
    }

    /// Waits until `/metrics` has exactly `line` (a client records a call just after the other side answered it,
    /// so a count can trail what the emulator has seen by a moment).
    pub async fn wait_for_metric(&self, line: &str) {
        self.metric_line_where(line, |l| l == line).await;
    }

    async fn metric_line_where(&self, what: &str, matches: impl Fn(&str) -> bool) -> String {
        const POLL: std::time::Duration = std::time::Duration::from_millis(25);
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let text = self.metrics().await;
            if let Some(line) = text.lines().find(|l| matches(l)) {
                return line.to_owned();
            }
            assert!(tokio::time::Instant::now() < deadline, "no metric line like {what:?} in:\n{text}");
            tokio::time::sleep(POLL).await;
        }
    }

    pub async fn audit_kinds(&self, id: &RequestId) -> Vec<&'static str> {
        self.audit().entries_for(id).await.expect("audit").iter().map(|e| e.event.kind()).collect()
    }

    pub async fn shutdown(self) {
        for app in self.apps {
            app.shutdown().await;
        }
    }
}

/// An ack with no message in it (no payload, or an empty one).
pub fn ack_is_bare(ack: &jitgate_emulators::slack::Ack) -> bool {
    match &ack.payload {
        None => true,
        Some(payload) => payload.as_object().is_some_and(|o| o.is_empty()),
    }
}

/// The shipped runbooks, pointed at this world's own Orders table.
pub fn shipped_runbooks_on(table: &str) -> RunbookSet {
    runbooks_on(table, &[])
}

/// The shipped runbooks and `extra` ones (YAML texts, each in a file named after its position), pointed at this
/// world's own Orders table.
pub fn runbooks_on(table: &str, extra: &[String]) -> RunbookSet {
    let dir = crate::repo_root().join("runbooks");
    let mut sources: BTreeMap<std::path::PathBuf, String> = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).expect("runbooks/") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let text =
                std::fs::read_to_string(&path).expect("read").replace("name: Orders\n", &format!("name: {table}\n"));
            sources.insert(path, text);
        }
    }
    for text in extra {
        let id = text.lines().find_map(|l| l.strip_prefix("id: ")).expect("an extra runbook has an id").trim();
        let text = text.replace("name: Orders\n", &format!("name: {table}\n"));
        sources.insert(dir.join(format!("{id}.yaml")), text);
    }
    RunbookSet::from_sources(sources.iter().map(|(p, t)| (p.as_path(), t.as_str())), &RunbookDefaults::default())
        .unwrap_or_else(|errors| panic!("shipped runbooks: {errors:?}"))
}
