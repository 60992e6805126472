//! End-to-end latency of the two moments a user waits for, measured through the whole stack — the real
//! socket-mode listener against the Slack emulator, the PagerDuty emulator, a real Redis and the local
//! DynamoDB/STS server — first on loopback, then with each outside call as slow as it is in production (the
//! emulators' latency knobs and a delaying proxy in front of DynamoDB/STS), printed beside its **floor**.
//!
//! - **request → card**: from `/jit query …` sent on the socket to the approval card landing in the channel;
//! - **approve → rows**: from the Approve click to the rows landing in the card's thread;
//! - **click → ack**: from a click sent to its ack on the socket (Slack wants it within 3 s);
//! - **acks under load**: 100 envelopes in flight, jitgate beside a bare socket-mode client with `TCP_NODELAY`.
//!
//! The floor is the longest chain of calls that must happen one after another, from the knobs (see
//! `BENCHMARKS.md`, "Floors"). Three cache conditions for the card: **warm** (the on-call roster is in the Redis
//! cache and every email → Slack id link is known), **roster stale** (the roster cache is deleted, so PagerDuty
//! is asked; links known) and **cold** (a replica's first request after it started: PagerDuty is asked and every
//! on-call person looked up in Slack). Approve → rows asks PagerDuty at every click whatever the cache holds.
//!
//! Run with `scripts/with-services.sh cargo bench --bench latency`. Figures go to `BENCHMARKS.md`; nothing here
//! asserts a time.

use jitgate_testkit as support;

use std::time::{Duration, Instant};

use jitgate::messages::APPROVE_ACTION;
use jitgate_emulators::slack::FakeSlack;
use support::gate::{AwsLatency, Gate};
use support::harness::{ALICE, BOB, Harness, ONCALL, Options};

const ROUNDS: usize = 15;
const WARM_UP: usize = 2;

/// Production-like round trips, per call.
const SLACK: Duration = Duration::from_millis(150);
const PAGERDUTY: Duration = Duration::from_millis(200);
const STS: Duration = Duration::from_millis(80);
const DYNAMODB: Duration = Duration::from_millis(10);

/// An audit append is two DynamoDB calls one after the other: read the chain's head, then the transaction
/// conditioned on it (`docs/design.md`, audit).
const AUDIT_APPEND: Duration = Duration::from_millis(2 * DYNAMODB.as_millis() as u64);

#[derive(Clone, Copy)]
enum Condition {
    Warm,
    RosterStale,
    /// A fresh replica's first request: no roster cached, no email → Slack id link known.
    Cold,
}

impl Condition {
    fn name(self) -> &'static str {
        match self {
            Condition::Warm => "warm",
            Condition::RosterStale => "roster stale",
            Condition::Cold => "cold: fresh replica",
        }
    }

    /// request → card: the request's checks, Redis and its `requested` audit entry run beside the roster (PagerDuty,
    /// then the Slack lookups of the on-call people, all at once); the card is posted after both.
    fn card_floor(self, real: bool) -> Duration {
        if !real {
            return Duration::ZERO;
        }
        let roster = match self {
            Condition::Warm => Duration::ZERO,
            Condition::RosterStale => PAGERDUTY,
            // The on-call people's `users.lookupByEmail` calls run at once, after PagerDuty answered.
            Condition::Cold => PAGERDUTY + SLACK,
        };
        AUDIT_APPEND.max(roster) + SLACK
    }
}

/// approve → rows: PagerDuty (asked at every decision) → the `approved` audit entry → AssumeRole → the query → the
/// `executed` audit entry (rows leave only once it is on the record) → `chat.postMessage` of the rows.
fn rows_floor(real: bool) -> Duration {
    if !real {
        return Duration::ZERO;
    }
    PAGERDUTY + AUDIT_APPEND + STS + DYNAMODB + AUDIT_APPEND + SLACK
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn summary(name: &str, mut samples: Vec<Duration>, floor: Duration) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    let ratio = |d: Duration| if floor.is_zero() { "   -".to_owned() } else { format!("{:.2}", ms(d) / ms(floor)) };
    println!(
        "  {name:<28} n={:<3} floor={:>5.0} ms  p50={:>6.1} ms ({}×)  p90={:>6.1} ms  p99={:>6.1} ms ({}×)  max={:>6.1} ms",
        samples.len(),
        ms(floor),
        ms(at(0.5)),
        ratio(at(0.5)),
        ms(at(0.9)),
        ms(at(0.99)),
        ratio(at(0.99)),
        ms(at(1.0)),
    );
}

/// One request, approved at once: (request → card, click → ack, approve → rows).
async fn one_round(h: &Harness, round: usize) -> (Duration, Duration, Duration) {
    let day = 1 + round % 28;
    let text = format!(
        "query orders-by-customer customer_id=C000002 from=2026-01-{day:02} until=2026-01-{:02} --reason \"bench {round}\"",
        day + 1
    );
    let started = Instant::now();
    let envelope = h.slash(ALICE, &text).await;
    envelope.ack().await.expect("acked");
    let message = h.slack.next_message_in(ONCALL).await;
    let to_card = started.elapsed();
    h.slack.next_ephemeral_for(ALICE).await;
    let card = support::harness::Card {
        ts: message.ts.clone(),
        id: message
            .buttons()
            .iter()
            .find_map(|b| b.value.as_deref().and_then(jitgate::messages::button_value).map(|(id, _)| id))
            .expect("the card carries its request id"),
        message,
    };

    let started = Instant::now();
    let envelope =
        h.slack.send_block_action(BOB, ONCALL, &card.ts, APPROVE_ACTION, &card.button_value(APPROVE_ACTION)).await;
    envelope.ack().await.expect("acked");
    let to_ack = started.elapsed();
    h.thread_reply(&card).await;
    let to_rows = started.elapsed();
    h.card_update_containing(&card, "ran:").await;
    h.dm_for(ALICE).await;
    (to_card, to_ack, to_rows)
}

async fn run(real: bool) {
    // The gate only forwards on loopback; with the knobs it answers each call no sooner than its latency.
    let latency = if real { AwsLatency { dynamodb: DYNAMODB, sts: STS } } else { AwsLatency::default() };
    let gate = Gate::delaying(&support::aws_endpoint(), latency).await;
    let h = Harness::start_with(Options {
        per_user_limit: 1000,
        aws_endpoint: Some(gate.endpoint.clone()),
        ..Options::default()
    })
    .await;
    if real {
        h.slack.set_latency(SLACK);
        h.pagerduty.set_latency(PAGERDUTY);
    }
    println!(
        "{}",
        if real {
            "with production latencies: Slack 150 ms a call, PagerDuty 200 ms, STS 80 ms, DynamoDB 10 ms"
        } else {
            "on loopback (no added latency)"
        }
    );
    let mut round = 0;
    let mut to_rows = Vec::new();
    let mut to_ack = Vec::new();
    let mut redis = redis::Client::open(support::redis_url())
        .expect("URL")
        .get_multiplexed_async_connection()
        .await
        .expect("Redis");
    for condition in [Condition::Warm, Condition::RosterStale] {
        let mut to_card = Vec::new();
        for i in 0..ROUNDS + WARM_UP {
            if let Condition::RosterStale = condition {
                // The cached roster is dropped, so PagerDuty is asked (the clock is not moved: STS credentials
                // are judged against it).
                let keys: Vec<String> = redis::cmd("KEYS")
                    .arg(format!("{}:{{oncall:*", h.key_prefix))
                    .query_async(&mut redis)
                    .await
                    .expect("KEYS");
                for key in keys {
                    let _: i64 = redis::cmd("DEL").arg(key).query_async(&mut redis).await.expect("DEL");
                }
            }
            let (card, ack, rows) = one_round(&h, round).await;
            round += 1;
            if i >= WARM_UP {
                to_card.push(card);
                to_ack.push(ack);
                to_rows.push(rows);
            }
        }
        summary(&format!("request → card ({})", condition.name()), to_card, condition.card_floor(real));
    }
    summary("approve → rows (all)", to_rows, rows_floor(real));
    summary("click → ack (all)", to_ack, Duration::ZERO);
    h.shutdown().await;
    if real {
        cold_cards(&gate).await;
    }
}

/// request → card on a replica that just started: each round starts a new one (its own key prefix, so no roster in
/// Redis, and an empty email → Slack id link cache), plays one request and stops it. Production latencies only.
async fn cold_cards(gate: &Gate) {
    let mut to_card = Vec::new();
    for round in 0..ROUNDS {
        let h = Harness::start_with(Options {
            per_user_limit: 1000,
            aws_endpoint: Some(gate.endpoint.clone()),
            ..Options::default()
        })
        .await;
        h.slack.set_latency(SLACK);
        h.pagerduty.set_latency(PAGERDUTY);
        let (card, _, _) = one_round(&h, round).await;
        to_card.push(card);
        h.shutdown().await;
    }
    summary(&format!("request → card ({})", Condition::Cold.name()), to_card, Condition::Cold.card_floor(true));
}

/// Envelopes sent at once, and how many times, for the ack comparison.
const IN_FLIGHT: usize = 100;
const ACK_ROUNDS: usize = 20;

/// Sends `IN_FLIGHT` `/jit help` envelopes at once, `ACK_ROUNDS` times; returns each ack's latency as the Slack
/// emulator measured it (from writing the envelope to its socket to reading the ack).
async fn acks_under_load(slack: &FakeSlack) -> Vec<Duration> {
    let mut latencies = Vec::new();
    for _ in 0..ACK_ROUNDS {
        let sent = futures::future::join_all(
            (0..IN_FLIGHT).map(|_| slack.send_slash_command(ALICE, support::harness::DEV, "/jit", "help")),
        )
        .await;
        for envelope in sent {
            latencies.push(envelope.ack().await.expect("acked").latency);
        }
    }
    latencies
}

/// The smallest socket-mode client there is, with Nagle's algorithm off: opens `connections` sockets and acks
/// every envelope at once with a bare `{"envelope_id": …}`. What jitgate's acks are compared with.
async fn bare_client(slack: &FakeSlack, connections: usize) {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let http = reqwest::Client::new();
    for _ in 0..connections {
        let opened: serde_json::Value = http
            .post(format!("{}/apps.connections.open", slack.api_base()))
            .bearer_auth(slack.app_token())
            .send()
            .await
            .expect("apps.connections.open")
            .bytes()
            .await
            .map(|body| serde_json::from_slice(&body).expect("its answer is JSON"))
            .expect("its answer");
        let url = opened["url"].as_str().expect("a WebSocket URL").to_owned();
        let (socket, _) =
            tokio_tungstenite::connect_async_with_config(url.as_str(), None, true).await.expect("connect");
        let (mut writer, mut reader) = socket.split();
        tokio::spawn(async move {
            while let Some(Ok(frame)) = reader.next().await {
                let Message::Text(text) = frame else { continue };
                let envelope: serde_json::Value = serde_json::from_str(text.as_str()).unwrap_or_default();
                if let Some(id) = envelope["envelope_id"].as_str() {
                    let ack = serde_json::json!({ "envelope_id": id }).to_string();
                    if writer.send(Message::Text(ack.into())).await.is_err() {
                        break;
                    }
                }
            }
        });
    }
    slack.wait_for_connections(connections).await;
}

/// Ack latency with `IN_FLIGHT` envelopes in flight: jitgate's socket-mode listener beside a bare Nagle-free client,
/// one after the other in the same run, each against its own Slack emulator with two connections.
async fn acks() {
    let h = Harness::start_with(Options { per_user_limit: 1000, ..Options::default() }).await;
    let jitgate = acks_under_load(&h.slack).await;
    h.shutdown().await;
    let bare = FakeSlack::start(jitgate_emulators::world::slack_config()).await;
    bare_client(&bare, 2).await;
    let baseline = acks_under_load(&bare).await;
    let p99 = |mut samples: Vec<Duration>| {
        samples.sort();
        samples[((samples.len() - 1) as f64 * 0.99).round() as usize]
    };
    let (ours, theirs) = (p99(jitgate.clone()), p99(baseline.clone()));
    println!("acks, {IN_FLIGHT} envelopes in flight × {ACK_ROUNDS} rounds, two connections each");
    summary("jitgate", jitgate, Duration::ZERO);
    summary("bare client (TCP_NODELAY)", baseline, Duration::ZERO);
    println!("  p99 jitgate / bare = {:.2}", ms(ours) / ms(theirs));
}

/// Redis commands the server has run so far (`INFO commandstats`), to count what one sweep costs.
async fn redis_commands(redis: &mut redis::aio::MultiplexedConnection) -> u64 {
    let info: String = redis::cmd("INFO").arg("commandstats").query_async(redis).await.expect("INFO");
    info.lines()
        .filter_map(|line| line.split("calls=").nth(1))
        .filter_map(|rest| rest.split(',').next()?.parse::<u64>().ok())
        .sum()
}

/// What one sweep costs (time, Redis commands) with nothing pending, then with `PENDING` pending requests of
/// which none is due: it should not grow with what is pending.
async fn sweep_cost() {
    const PENDING: usize = 10_000;
    const SWEEPS: u32 = 20;
    let h = Harness::start_with(Options::default()).await;
    let settings = jitgate::store::StoreSettings { key_prefix: h.key_prefix.clone(), ..Default::default() };
    let store = jitgate::store::RequestStore::connect(&support::redis_url(), settings).await.expect("Redis");
    let mut redis = redis::Client::open(support::redis_url())
        .expect("URL")
        .get_multiplexed_async_connection()
        .await
        .expect("Redis");
    println!("sweeping (one replica, nothing due), {SWEEPS} sweeps each");
    for pending in [0, PENDING] {
        let now = jitgate::clock::Clock::now(&*h.clock);
        for _ in 0..pending {
            // Escalating, so every index the sweeper reads (pending, reminders, escalation) lists all of them.
            let mut request = support::fixtures::pending_request(now, 1, Duration::from_secs(30 * 60));
            request.policy.escalation =
                Some(jitgate::runbook::Escalation { after: Duration::from_secs(10 * 60), max_level: 2 });
            store.create(&request).await.expect("created");
        }
        let commands_before = redis_commands(&mut redis).await;
        let started = Instant::now();
        for _ in 0..SWEEPS {
            h.sweep().await;
        }
        let took = started.elapsed() / SWEEPS;
        // Each INFO call counts itself once.
        let commands = (redis_commands(&mut redis).await - commands_before - 1) as f64 / f64::from(SWEEPS);
        println!("  {pending:>6} pending: {:>6.2} ms and {commands:.1} Redis commands per sweep", ms(took));
    }
    h.shutdown().await;
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // `cargo bench` passes --bench; `cargo test --bench latency` (make test) does not, and only checks that the
    // benchmark builds: with production latencies it takes minutes.
    if !std::env::args().any(|arg| arg == "--bench") {
        println!(
            "jitgate latency benchmark: built; run it with `scripts/with-services.sh cargo bench --bench latency`"
        );
        return;
    }
    sweep_cost().await;
    println!("jitgate end-to-end latency, {ROUNDS} requests per condition after {WARM_UP} warm-up, one replica");
    acks().await;
    run(false).await;
    run(true).await;
}
