//! End-to-end latency of the two moments a user waits for, measured through the whole stack: the real socket-mode
//! listener against the Slack emulator, PagerDuty emulator, a real Redis and the local DynamoDB/STS server.
//!
//! - **request → card**: from `/jit query …` sent on the socket to the approval card landing in the channel
//!   (parse, rate limit, roster from PagerDuty + Slack lookups, Redis create, audit append, `chat.postMessage`);
//! - **approve → rows**: from the Approve click to the rows in the card's thread (roster re-check, CAS, audit,
//!   AssumeRole, the query, audit, card update, `chat.postMessage`);
//! - **ack**: from a click sent to its ack on the socket (Slack wants it within 3 s).
//!
//! Run with `scripts/with-services.sh cargo bench --bench latency`. Figures go to `BENCHMARKS.md`; nothing here
//! asserts a time.

use jitgate_testkit as support;

use std::time::{Duration, Instant};

use jitgate::messages::APPROVE_ACTION;
use support::harness::{ALICE, BOB, Harness, Options};

const ROUNDS: usize = 60;
const WARM_UP: usize = 5;

fn summary(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1000.0;
    println!(
        "{name:<18} n={:<4} p50={:>7.1} ms  p90={:>7.1} ms  p99={:>7.1} ms  max={:>7.1} ms",
        samples.len(),
        at(0.5),
        at(0.9),
        at(0.99),
        at(1.0)
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let h = Harness::start_with(Options { per_user_limit: 1000, ..Options::default() }).await;
    let (mut to_card, mut to_rows, mut to_ack) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..ROUNDS + WARM_UP {
        let day = 1 + round % 28;
        let text = format!(
            "orders-by-customer customer_id=C000002 from=2026-01-{day:02} until=2026-01-{:02} --reason \"bench {round}\"",
            day + 1
        );
        let started = Instant::now();
        let card = h.request(ALICE, &text).await;
        let card_latency = started.elapsed();

        let started = Instant::now();
        let envelope = h
            .slack
            .send_block_action(
                BOB,
                support::harness::ONCALL,
                &card.ts,
                APPROVE_ACTION,
                &card.button_value(APPROVE_ACTION),
            )
            .await;
        envelope.ack().await.expect("acked");
        let ack_latency = started.elapsed();
        h.card_update_containing(&card, "ran:").await;
        h.thread_reply(&card).await;
        let rows_latency = started.elapsed();
        h.dm_for(ALICE).await;
        // The card's "approved" update was read by card_update_containing; nothing else is left unread.
        if round >= WARM_UP {
            to_card.push(card_latency);
            to_rows.push(rows_latency);
            to_ack.push(ack_latency);
        }
    }
    println!("jitgate end-to-end latency, {ROUNDS} requests after {WARM_UP} warm-up, one replica");
    summary("request → card", to_card);
    summary("click → ack", to_ack);
    summary("approve → rows", to_rows);
    h.shutdown().await;
}
