//! Many replicas under load: three real `jitgate run` processes (the release build) against one Slack emulator
//! (one socket-mode connection each, envelopes handed out in turn as Slack does), the PagerDuty emulator, Redis
//! (one node, or with `--cluster` the local Redis Cluster) and the local DynamoDB/STS server. 200 requests from 20
//! people over about a minute, each approved — some by two approvers at once, some clicked twice, some with the
//! click's envelope delivered again to another replica — while `chat.postMessage` is answered 429 now and then.
//!
//! Invariants, each a non-zero exit when broken: no request executed twice, none lost (each has exactly one
//! `requested` and one `executed` audit entry and one reply in its thread), `jitgate audit verify` passes, every
//! injected 429 honoured (the same call again, no sooner than `Retry-After`), no audit append failed for good.
//! Figures: request → card and approve → rows (p50/p90/p99/max), audit append retries, moto's share.
//!
//! Run with `scripts/with-services.sh cargo bench --bench load` (add `-- --cluster` for Redis Cluster). Figures go
//! to `BENCHMARKS.md`; nothing here asserts a time.

mod checks;
mod traffic;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Parser;
use jitgate::audit::AuditLog;
use jitgate::clock::{SharedClock, SystemClock};
use jitgate_emulators::pagerduty::FakePagerDuty;
use jitgate_emulators::slack::{FakeSlack, User};
use jitgate_testkit as support;
use support::fleet::{Fleet, Shared};

use crate::traffic::Outcome;

/// Load on several replicas; exits non-zero if an invariant fails.
#[derive(Debug, Parser)]
struct Args {
    /// Redis Cluster (`JITGATE_TEST_REDIS_CLUSTER_URL`) instead of the single node (`JITGATE_TEST_REDIS_URL`).
    #[arg(long)]
    cluster: bool,
    #[arg(long, default_value_t = 3)]
    replicas: usize,
    #[arg(long, default_value_t = 200)]
    requests: usize,
    #[arg(long, default_value_t = 20)]
    users: usize,
    /// Seconds over which the requests are started, evenly spaced.
    #[arg(long, default_value_t = 60)]
    over: u64,
    /// One `chat.postMessage` in this many requests is answered 429 (Retry-After 1 s); 0 for none.
    #[arg(long, default_value_t = 25)]
    rate_limit_every: usize,
    /// `cargo bench` passes it to every benchmark.
    #[arg(long, hide = true)]
    bench: bool,
}

/// How long any one Slack step may take before the request counts as lost.
const SLACK_WAIT: Duration = Duration::from_secs(120);

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args).await {
        Ok(failures) if failures.is_empty() => {
            println!("\nload: every invariant held");
            ExitCode::SUCCESS
        }
        Ok(failures) => {
            eprintln!("\nload FAILED:");
            failures.iter().for_each(|f| eprintln!("  {f}"));
            ExitCode::FAILURE
        }
        Err(err) => {
            eprintln!("load FAILED before it could check anything: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Sets everything up, plays the load, and returns the broken invariants (empty when all held).
async fn run(args: &Args) -> anyhow::Result<Vec<String>> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let redis_url = if args.cluster {
        std::env::var("JITGATE_TEST_REDIS_CLUSTER_URL")
            .context("JITGATE_TEST_REDIS_CLUSTER_URL (run under scripts/with-services.sh)")?
    } else {
        support::redis_url()
    };
    let aws_endpoint = support::aws_endpoint();
    let run_id = support::unique("load");

    // The world: the stories' workspace and roster, plus the requesters (not on call).
    let config = jitgate_emulators::world::slack_config().with_wait_deadline(SLACK_WAIT).without_unread_check();
    let slack = FakeSlack::try_start(config).await?;
    let users: Vec<String> = (1..=args.users).map(|n| format!("U0LOAD{n:03}")).collect();
    for user in &users {
        let handle = user.to_lowercase();
        slack.add_user(User::new(user.as_str(), handle.as_str()).with_email(Some(&format!("{handle}@example.com"))));
    }
    let pagerduty = FakePagerDuty::start().await;
    jitgate_emulators::world::add_oncall_roster(&pagerduty);

    let aws = support::aws_config();
    let orders = format!("Orders-{run_id}");
    let dynamo = aws_sdk_dynamodb::Client::new(&aws);
    let customers = support::harness::CUSTOMERS;
    jitgate::aws::demo_table::create_demo_orders_table(&dynamo, &orders).await?;
    jitgate::aws::demo_table::seed_demo_orders(&dynamo, &orders, customers, support::harness::ORDERS_PER_CUSTOMER)
        .await?;
    let audit_table = format!("audit-{run_id}");
    let clock: SharedClock = std::sync::Arc::new(SystemClock);
    let audit = AuditLog::new(&aws, audit_table.clone(), clock);
    audit.ensure_table().await?;

    let binary = PathBuf::from(env!("CARGO_BIN_EXE_jitgate"));
    let runbooks = tempfile::Builder::new().prefix("jitgate-load-runbooks.").tempdir()?;
    write_runbooks(runbooks.path(), &orders)?;
    let shared = Shared {
        binary: &binary,
        runbooks: runbooks.path(),
        redis_url: &redis_url,
        redis_cluster: args.cluster,
        key_prefix: &run_id,
        audit_table: &audit_table,
        aws_endpoint: &aws_endpoint,
        link_secret: support::harness::LINK_SECRET,
    };
    let started = Instant::now();
    let fleet = Fleet::start(&shared, &slack, &pagerduty, args.replicas, Duration::from_secs(60)).await?;
    println!(
        "jitgate load: {} replicas ({}) ready in {:.1} s; Redis {}; {} requests from {} users over {} s",
        args.replicas,
        binary.display(),
        started.elapsed().as_secs_f64(),
        if args.cluster { "Cluster" } else { "single node" },
        args.requests,
        args.users,
        args.over
    );

    let load_started = Instant::now();
    let played = play(&slack, args, &users, customers, &run_id).await;
    let elapsed = load_started.elapsed();
    let mut fleet = fleet;
    let result = report(args, &slack, &fleet, &audit, played, elapsed).await;
    let stopped = fleet.stop(Duration::from_secs(30)).await;
    let mut failures = result?;
    if let Err(err) = stopped {
        failures.push(format!("stopping the replicas: {err:#}"));
    }
    if !failures.is_empty() {
        // Keep the configs and logs for a look at what went wrong.
        println!("replicas' configs and logs kept in {}", fleet.dir.keep().display());
    }
    Ok(failures)
}

/// Starts the requests evenly spaced over `args.over`, each in its own task; returns every outcome or error.
async fn play(
    slack: &FakeSlack,
    args: &Args,
    users: &[String],
    customers: u32,
    run_id: &str,
) -> Vec<Result<Outcome, String>> {
    let spacing = Duration::from_secs(args.over) / args.requests.max(1) as u32;
    let begin = tokio::time::Instant::now();
    let plays = (0..args.requests).map(|index| {
        let plan = traffic::plan(index, &users[index % users.len()], 1 + (index as u32) % customers, run_id);
        async move {
            // Pacing, not waiting for something: request `index` starts at its place in the minute.
            tokio::time::sleep_until(begin + spacing * index as u32).await;
            if args.rate_limit_every > 0 && index % args.rate_limit_every == args.rate_limit_every / 2 {
                slack.rate_limit_next("chat.postMessage", 1);
            }
            let token = plan.token.clone();
            // The emulator panics when a wait runs out; a panic is one lost request, not the end of the run.
            match futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(traffic::play(slack, plan))).await {
                Ok(Ok(outcome)) => Ok(outcome),
                Ok(Err(err)) => Err(format!("{token}: {err:#}")),
                Err(_) => Err(format!("{token}: a Slack step did not happen within {SLACK_WAIT:?}")),
            }
        }
    });
    futures::future::join_all(plays).await
}

/// Checks the invariants, prints the figures, returns the broken invariants.
async fn report(
    args: &Args,
    slack: &FakeSlack,
    fleet: &Fleet,
    audit: &AuditLog,
    played: Vec<Result<Outcome, String>>,
    elapsed: Duration,
) -> anyhow::Result<Vec<String>> {
    let mut failures = Vec::new();
    let mut outcomes = Vec::new();
    for result in played {
        match result {
            Ok(outcome) => outcomes.push(outcome),
            Err(err) => failures.push(format!("lost: {err}")),
        }
    }
    // Late duplicates would show up as more requests succeeded than were made: wait until the replicas have
    // counted every one (bounded), then read the audit trail and Slack.
    let succeeded = wait_for_succeeded(fleet, outcomes.len()).await?;
    let calls = slack.calls();
    let executions = checks::executions(audit, &outcomes, &calls).await?;
    let limits = checks::rate_limits(&calls, &outcomes);
    let (verified, verify_text) = fleet.audit_verify().await?;
    let scrapes = fleet.metrics().await?;
    let retries = checks::metric_sum(&scrapes, "jitgate_audit_append_retries_total", "");
    let append_failures = checks::metric_sum(&scrapes, "jitgate_audit_append_failures_total", "");
    let services: Vec<(&str, f64, f64)> = ["audit", "sts", "dynamodb", "redis", "slack", "pagerduty"]
        .into_iter()
        .map(|service| {
            let filter = format!("service=\"{service}\"");
            let count = checks::metric_sum(&scrapes, "jitgate_external_call_duration_seconds_count", &filter);
            let secs = checks::metric_sum(&scrapes, "jitgate_external_call_duration_seconds_sum", &filter);
            (service, count, secs)
        })
        .collect();

    let to_card: Vec<Duration> = outcomes.iter().map(|o| o.to_card).collect();
    let to_rows: Vec<Duration> = outcomes.iter().map(|o| o.to_rows).collect();
    let unhindered: Vec<&Outcome> = outcomes.iter().filter(|o| !limits.delayed.contains(&o.plan.token)).collect();
    println!(
        "\n{} requests played, {} completed, {succeeded} counted succeeded by the replicas",
        args.requests,
        outcomes.len()
    );
    println!("request → card    {}", checks::summary(&to_card));
    println!("approve → rows    {}", checks::summary(&to_rows));
    println!("  without the {} requests an injected 429 held up:", outcomes.len() - unhindered.len());
    println!("request → card    {}", checks::summary(&unhindered.iter().map(|o| o.to_card).collect::<Vec<_>>()));
    println!("approve → rows    {}", checks::summary(&unhindered.iter().map(|o| o.to_rows).collect::<Vec<_>>()));
    for approval in ["one click", "two approvers at once", "clicked twice", "redelivered"] {
        let rows: Vec<Duration> =
            outcomes.iter().filter(|o| o.plan.approval.name() == approval).map(|o| o.to_rows).collect();
        println!("  approve → rows, {approval:<22} {}", checks::summary(&rows));
    }
    println!("double executions       {}", executions.double.len());
    println!("lost requests           {}", executions.lost.len() + (args.requests - outcomes.len()));
    println!("audit verify            {} — {verify_text}", if verified { "passed" } else { "FAILED" });
    println!("audit append retries    {retries} (failures for good: {append_failures})");
    println!("Slack 429s              {} answered, {} honoured", limits.answered, limits.honoured);
    println!("calls made by the replicas, by service (audit, sts and dynamodb all go to moto, one request at a time):");
    for (service, count, secs) in &services {
        let mean = if *count > 0.0 { secs / count * 1000.0 } else { 0.0 };
        println!("  {service:<10} {count:>6} calls  {secs:>7.1} s in all  mean {mean:>6.1} ms");
    }
    let moto_busy: f64 =
        services.iter().filter(|(s, _, _)| ["audit", "sts", "dynamodb"].contains(s)).map(|s| s.2).sum();
    println!(
        "  moto answered for {moto_busy:.1} s of the {:.1} s the load took ({:.0} %)",
        elapsed.as_secs_f64(),
        100.0 * moto_busy / elapsed.as_secs_f64()
    );

    failures.extend(executions.double.iter().map(|d| format!("double execution: {d}")));
    failures.extend(executions.lost.iter().map(|l| format!("lost: {l}")));
    if !verified {
        failures.push(format!("jitgate audit verify failed: {verify_text}"));
    }
    failures.extend(limits.problems.iter().map(|p| format!("429 not honoured: {p}")));
    let expected_429s = if args.rate_limit_every == 0 { 0 } else { args.requests.div_ceil(args.rate_limit_every) };
    if limits.answered < expected_429s.min(1) {
        failures.push(format!("no injected 429 was answered ({expected_429s} injected)"));
    }
    if append_failures > 0.0 {
        failures.push(format!("{append_failures} audit appends failed for good"));
    }
    Ok(failures)
}

/// Sums `jitgate_requests_total{outcome="succeeded"}` over the replicas until it reaches `count` (or 30 s pass);
/// returns the last sum.
async fn wait_for_succeeded(fleet: &Fleet, count: usize) -> anyhow::Result<f64> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let sum = checks::metric_sum(&fleet.metrics().await?, "jitgate_requests_total", "outcome=\"succeeded\"");
        if sum >= count as f64 || Instant::now() > deadline {
            return Ok(sum);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The shipped runbooks, pointed at this run's own Orders table.
fn write_runbooks(dir: &Path, table: &str) -> anyhow::Result<()> {
    let shipped = support::repo_root().join("runbooks");
    for entry in std::fs::read_dir(&shipped).with_context(|| format!("reading {}", shipped.display()))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let text = std::fs::read_to_string(&path)?.replace("name: Orders\n", &format!("name: {table}\n"));
            std::fs::write(dir.join(path.file_name().context("a file name")?), text)?;
        }
    }
    Ok(())
}
