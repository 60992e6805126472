//! Memory of one `jitgate run` process (the release build, as users run it) against the Slack and PagerDuty
//! emulators, Redis and the local DynamoDB/STS server: its resident set when idle, and its peak while it delivers a
//! 10,000-row result — the rows read page by page, 20 shown inline, the full result rendered and uploaded as CSV and
//! JSON.
//!
//! Figures come from the kernel, not from sampling: `VmRSS` in `/proc/<pid>/status` is the resident set now,
//! `VmHWM` its peak, and writing `5` to `/proc/<pid>/clear_refs` starts a new peak. So each result's peak is
//! measured from the idle process just before its request. A 20-row result (inline only) is measured the same way,
//! as the cost of any request, beside the 10,000-row one.
//!
//! The process must also deliver correctly: every round checks that the CSV has a line per row and the JSON a row
//! per item, and exits non-zero otherwise.
//!
//! Run with `scripts/with-services.sh cargo bench --bench memory`. Figures go to `BENCHMARKS.md`; nothing here
//! asserts an amount.

use jitgate_testkit as support;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, ensure};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, PutRequest, ScalarAttributeType,
    WriteRequest,
};
use jitgate::audit::AuditLog;
use jitgate::clock::{SharedClock, SystemClock};
use jitgate::messages::{APPROVE_ACTION, button_value};
use jitgate_emulators::pagerduty::FakePagerDuty;
use jitgate_emulators::slack::FakeSlack;
use jitgate_emulators::world::{ALICE, BOB, DEV, ONCALL};
use support::fleet::{Fleet, Shared};

/// The large result, and the size of each of its items in DynamoDB (about: attribute names and values).
const LARGE: usize = 10_000;
const NOTE_BYTES: usize = 800;
/// A result that fits inline (no files): what any request costs.
const SMALL: usize = 20;
const ROUNDS: usize = 3;
const SLACK_WAIT: Duration = Duration::from_secs(180);

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("memory FAILED: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let run_id = support::unique("memory");
    let config = jitgate_emulators::world::slack_config().with_wait_deadline(SLACK_WAIT).without_unread_check();
    let slack = FakeSlack::try_start(config).await?;
    let pagerduty = FakePagerDuty::start().await;
    jitgate_emulators::world::add_oncall_roster(&pagerduty);

    let aws = support::aws_config();
    let table = format!("Rows-{run_id}");
    let seeding = Instant::now();
    seed(&aws, &table).await?;
    let seconds = seeding.elapsed().as_secs_f64();
    println!("seeded {table}: {LARGE} items of about {} bytes and {SMALL} more in {seconds:.1} s", NOTE_BYTES + 120);
    let audit_table = format!("audit-{run_id}");
    let clock: SharedClock = std::sync::Arc::new(SystemClock);
    AuditLog::new(&aws, audit_table.clone(), clock).ensure_table().await?;

    let binary = PathBuf::from(env!("CARGO_BIN_EXE_jitgate"));
    let runbooks = tempfile::Builder::new().prefix("jitgate-memory-runbooks.").tempdir()?;
    write_runbook(runbooks.path(), &table)?;
    let (redis_url, aws_endpoint) = (support::redis_url(), support::aws_endpoint());
    let shared = Shared {
        binary: &binary,
        runbooks: runbooks.path(),
        redis_url: &redis_url,
        redis_cluster: false,
        key_prefix: &run_id,
        audit_table: &audit_table,
        aws_endpoint: &aws_endpoint,
        link_secret: support::harness::LINK_SECRET,
    };
    let mut fleet = Fleet::start(&shared, &slack, &pagerduty, 1, Duration::from_secs(60)).await?;
    let pid = fleet.replicas[0].pid;
    let measured = measure(&slack, pid).await;
    let stopped = fleet.stop(Duration::from_secs(30)).await;
    if measured.is_err() {
        println!("the replica's config and log kept in {}", fleet.dir.keep().display());
    }
    measured?;
    stopped
}

/// Plays the requests and prints the figures.
async fn measure(slack: &FakeSlack, pid: u32) -> anyhow::Result<()> {
    let at_start = Memory::of(pid)?;
    println!("\njitgate run (pid {pid}), release build");
    println!("idle after start-up            RSS {} ({} of it heap and stacks)", mb(at_start.rss), mb(at_start.anon));
    // The first request sets up what stays for the process's life (AWS and HTTP clients, connection pools).
    deliver(slack, "small", SMALL).await?;
    let idle = Memory::of(pid)?;
    println!(
        "idle after a first request     RSS {} ({} heap and stacks; peak so far {})",
        mb(idle.rss),
        mb(idle.anon),
        mb(idle.peak)
    );
    println!("\n{:<24} {:>10} {:>12} {:>14} {:>10}", "result", "idle RSS", "peak RSS", "peak − idle", "uploaded");
    for round in 1..=ROUNDS {
        for (tenant, rows) in [("small", SMALL), ("large", LARGE)] {
            let before = Memory::of(pid)?;
            Memory::reset_peak(pid)?;
            let uploaded = deliver(slack, tenant, rows).await?;
            let after = Memory::of(pid)?;
            println!(
                "{:<24} {:>10} {:>12} {:>14} {:>10}",
                format!("{rows} rows (round {round})"),
                mb(before.rss),
                mb(after.peak),
                mb(after.peak.saturating_sub(before.rss)),
                if uploaded == 0 { "inline".to_owned() } else { mb(uploaded) },
            );
        }
    }
    let end = Memory::of(pid)?;
    println!("\nidle at the end                RSS {} ({} heap and stacks)", mb(end.rss), mb(end.anon));
    Ok(())
}

/// Requests `tenant`'s rows, approves, waits for them in the thread (and for the two files when they do not fit
/// inline), checks them, and returns the bytes uploaded.
async fn deliver(slack: &FakeSlack, tenant: &str, rows: usize) -> anyhow::Result<u64> {
    let token = support::unique("mem");
    let text = format!("query rows-by-tenant tenant={tenant} --reason \"{token}\"");
    let envelope = slack.send_slash_command(ALICE, DEV, "/jit", &text).await;
    envelope.ack().await.map_err(|e| anyhow!("the slash command was not acked: {e:?}"))?;
    let card = slack.next_message_in_containing(ONCALL, &token).await;
    let value = card
        .buttons()
        .iter()
        .find(|b| b.action_id == APPROVE_ACTION)
        .and_then(|b| b.value.clone())
        .with_context(|| format!("the card has no Approve button: {}", card.all_text()))?;
    let (id, _) = button_value(&value).context("the Approve button's value")?;
    let click = slack.send_block_action(BOB, ONCALL, &card.ts, APPROVE_ACTION, &value).await;
    click.ack().await.map_err(|e| anyhow!("the click was not acked: {e:?}"))?;
    let reply = slack.next_thread_reply(ONCALL, &card.ts).await.all_text();
    ensure!(reply.contains(&format!("{rows} rows")), "{id}: expected {rows} rows in the reply: {reply}");
    if rows <= jitgate::messages::INLINE_ROWS {
        return Ok(0);
    }
    let csv = slack.next_upload_in(ONCALL).await;
    let json = slack.next_upload_in(ONCALL).await;
    let csv_text = csv.text();
    ensure!(csv_text.lines().count() == rows + 1, "{id}: the CSV has {} lines", csv_text.lines().count());
    let items: serde_json::Value = serde_json::from_slice(json.content.as_deref().unwrap_or_default())?;
    ensure!(items.as_array().map(Vec::len) == Some(rows), "{id}: the JSON does not hold {rows} rows");
    Ok(csv.declared_length + json.declared_length)
}

/// The process's resident set now and its peak, in bytes; `anon` is the part of the resident set that is the
/// process's own memory (heap, stacks), the rest being mapped files (the binary's code) and shared memory.
struct Memory {
    rss: u64,
    peak: u64,
    anon: u64,
}

impl Memory {
    fn of(pid: u32) -> anyhow::Result<Memory> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).context("reading /proc/<pid>/status")?;
        let field = |name: &str| -> anyhow::Result<u64> {
            let line = status.lines().find(|l| l.starts_with(name)).with_context(|| format!("no {name}"))?;
            let kb: u64 = line.trim_start_matches(name).trim().trim_end_matches("kB").trim().parse()?;
            Ok(kb * 1024)
        };
        Ok(Memory { rss: field("VmRSS:")?, peak: field("VmHWM:")?, anon: field("RssAnon:")? })
    }

    /// Starts a new peak (`VmHWM`) from the current resident set.
    fn reset_peak(pid: u32) -> anyhow::Result<()> {
        std::fs::write(format!("/proc/{pid}/clear_refs"), "5").context("writing /proc/<pid>/clear_refs")
    }
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1_000_000.0)
}

/// A table keyed by tenant and sequence number: `large` with [`LARGE`] items, `small` with [`SMALL`].
async fn seed(aws: &aws_config::SdkConfig, table: &str) -> anyhow::Result<()> {
    let client = aws_sdk_dynamodb::Client::new(aws);
    let key = |name: &str, kind| KeySchemaElement::builder().attribute_name(name).key_type(kind).build();
    let attribute = |name: &str, kind| AttributeDefinition::builder().attribute_name(name).attribute_type(kind).build();
    client
        .create_table()
        .table_name(table)
        .key_schema(key("tenant", KeyType::Hash)?)
        .key_schema(key("seq", KeyType::Range)?)
        .attribute_definitions(attribute("tenant", ScalarAttributeType::S)?)
        .attribute_definitions(attribute("seq", ScalarAttributeType::N)?)
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .context("creating the table")?;
    let items = (0..LARGE).map(|n| ("large", n)).chain((0..SMALL).map(|n| ("small", n)));
    let items: Vec<_> = items.collect();
    for batch in items.chunks(25) {
        let writes = batch
            .iter()
            .map(|(tenant, n)| {
                let put = PutRequest::builder()
                    .item("tenant", AttributeValue::S((*tenant).to_owned()))
                    .item("seq", AttributeValue::N(n.to_string()))
                    .item("order_id", AttributeValue::S(format!("O{n:09}")))
                    .item("status", AttributeValue::S(["paid", "shipped", "refunded"][n % 3].to_owned()))
                    .item("total", AttributeValue::N(format!("{}.{:02}", n % 977, n % 100)))
                    .item("created_at", AttributeValue::S(format!("2026-11-{:02}T10:00:00Z", 1 + n % 28)))
                    .item("note", AttributeValue::S(note(*n)))
                    .build()?;
                Ok(WriteRequest::builder().put_request(put).build())
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let mut pending = Some(std::collections::HashMap::from([(table.to_owned(), writes)]));
        while let Some(requests) = pending.take().filter(|r| !r.is_empty()) {
            let output = client.batch_write_item().set_request_items(Some(requests)).send().await?;
            pending = output.unprocessed_items;
        }
    }
    Ok(())
}

/// Text of [`NOTE_BYTES`] that differs from item to item (no two rows compress alike).
fn note(n: usize) -> String {
    let mut text = String::with_capacity(NOTE_BYTES);
    let mut state = n as u64 * 2_654_435_761 + 1;
    while text.len() < NOTE_BYTES {
        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        text.push(char::from(b'a' + (state >> 59) as u8 % 26));
        if state.is_multiple_of(7) {
            text.push(' ');
        }
    }
    text
}

/// One runbook: every item of a tenant, up to 10,000.
fn write_runbook(dir: &Path, table: &str) -> anyhow::Result<()> {
    let text = format!(
        "id: rows-by-tenant\n\
         description: Every row of one tenant\n\
         table:\n  name: {table}\n  partition_key: tenant\n  sort_key: seq\n\
         operation: query\n\
         role_arn: arn:aws:iam::123456789012:role/jitgate-rows-read\n\
         parameters:\n  - name: tenant\n    type: string\n    enum: [small, large]\n    description: Tenant\n\
         key:\n  partition: {{ param: tenant }}\n\
         max_items: {LARGE}\n\
         approval:\n  approvers:\n    pagerduty_schedules: [{}]\n  required_approvals: 1\n  ttl: 30m\n",
        jitgate_emulators::world::SCHEDULE
    );
    std::fs::write(dir.join("rows-by-tenant.yaml"), text).context("writing the runbook")
}
