//! `jitgate-demo`: jitgate's main job, end to end, with no Slack workspace and no AWS account. It hosts a Slack
//! workspace and a PagerDuty account in the emulators the tests use, starts the real `jitgate run` against them and
//! the Redis and local DynamoDB/STS that `make demo` started (with the `Orders` table from `jitgate seed-demo`),
//! plays a request → refusal → approval → results story through the emulators' wire formats, prints the
//! conversation, opens the audit page, runs `jitgate audit verify`, and stops jitgate with SIGTERM.
//!
//! Exit status 0 when every step went as the story says; 1 with the failed step, the reason and the tail of
//! jitgate's log otherwise; 130 when interrupted. jitgate is stopped on every way out.

mod jitgate;
mod render;
mod story;
mod world;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use clap::Parser;
use jitgate_emulators::pagerduty::FakePagerDuty;
use jitgate_emulators::slack::FakeSlack;

use crate::jitgate::{Jitgate, Running, Services};
use crate::story::{Failure, Transcript, step};

/// How long the emulators' waits (for a message, an update, an ephemeral) may take before the step fails.
const SLACK_WAIT: Duration = Duration::from_secs(30);
/// How long jitgate may take to connect and answer `/readyz`.
const START_DEADLINE: Duration = Duration::from_secs(60);
/// How long jitgate may take to shut down after SIGTERM.
const STOP_DEADLINE: Duration = Duration::from_secs(15);
/// Lines of jitgate's log shown when a step fails.
const LOG_TAIL: usize = 40;
/// The "step" of a failure that is Ctrl-C or SIGTERM.
const INTERRUPTED: &str = "interrupted";

/// Plays jitgate's request → approval → results story against local emulators (run it with `make demo`).
#[derive(Debug, Parser)]
#[command(name = "jitgate-demo", version, about)]
struct Args {
    /// The jitgate binary [default: `jitgate` next to this program].
    #[arg(long, value_name = "PATH")]
    jitgate: Option<PathBuf>,
    /// The runbooks jitgate serves.
    #[arg(long, value_name = "DIR", default_value = "runbooks")]
    runbooks: PathBuf,
    /// The demo's own runbooks, served beside those (an incident-gated one and a break-glass one).
    #[arg(long, value_name = "DIR", default_value = "demo/runbooks")]
    demo_runbooks: PathBuf,
    /// After the story, keep jitgate and the emulators running (to open the audit page) until Ctrl-C.
    #[arg(long)]
    keep_running: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    quiet_story_panics();
    let started = Instant::now();
    let binary = match args.jitgate.clone().map(Ok).unwrap_or_else(next_to_this_program) {
        Ok(binary) => binary,
        Err(err) => return setup_failed(&err),
    };
    let services = match Services::from_env() {
        Ok(services) => services,
        Err(err) => return setup_failed(&err),
    };
    let slack = match world::slack(SLACK_WAIT).await {
        Ok(slack) => slack,
        Err(err) => return setup_failed(&err),
    };
    let pagerduty = world::pagerduty().await;
    let jitgate = match Jitgate::prepare(&binary, &[&args.runbooks, &args.demo_runbooks], &services, &slack, &pagerduty)
    {
        Ok(jitgate) => jitgate,
        Err(err) => return setup_failed(&err),
    };
    println!("jitgate demo: the real `jitgate run` against local emulators, Redis and DynamoDB/STS");
    println!("  Slack emulator      {}", slack.api_base());
    println!("  PagerDuty emulator  {}", pagerduty.base_url());
    println!("  Redis               {}", services.redis_url);
    println!("  DynamoDB/STS        {} (table Orders from `jitgate seed-demo`)", services.aws_endpoint);
    println!("  jitgate             {} run, HTTP on {}", binary.display(), jitgate.base_url);
    println!("  jitgate's log       {} (kept if a step fails)", jitgate.log_path().display());
    println!("{}", world::summary());

    let out = Transcript { names: world::names(&slack) };
    let mut running: Option<Running> = None;
    let outcome = tokio::select! {
        outcome = play(&jitgate, &slack, &pagerduty, &out, &mut running) => outcome,
        signal = interrupted() => Err(Failure { step: INTERRUPTED.into(), reason: format!("{signal} received") }),
    };
    let outcome = match outcome {
        Ok(()) if args.keep_running => {
            println!("\njitgate keeps running at {}; Ctrl-C stops it.", jitgate.base_url);
            interrupted().await;
            Ok(())
        }
        other => other,
    };
    let stopped = match running.take() {
        Some(running) => step("jitgate stops on SIGTERM", async {
            let status = running.stop(STOP_DEADLINE).await?;
            ensure!(status.success(), "jitgate exited with {status} when stopped");
            Ok(status)
        })
        .await
        .map(|status| println!("jitgate stopped ({status})")),
        None => Ok(()),
    };
    let failures: Vec<Failure> = [outcome.err(), stopped.err()].into_iter().flatten().collect();
    if failures.is_empty() {
        println!("demo passed in {:.1}s", started.elapsed().as_secs_f64());
        return ExitCode::SUCCESS;
    }
    for failure in &failures {
        let reason = failure.reason.replace('\n', "\n  ");
        match failure.step.as_str() {
            INTERRUPTED => eprintln!("\ndemo INTERRUPTED ({reason}); everything it started is stopped"),
            step => eprintln!("\ndemo FAILED at step \"{step}\":\n  {reason}"),
        }
    }
    eprintln!("\nlast {LOG_TAIL} lines of jitgate's log:\n{}", jitgate.log_tail(LOG_TAIL));
    eprintln!("\njitgate's config and full log are kept in {}", jitgate.keep_files().display());
    if failures.iter().any(|f| f.step == INTERRUPTED) { ExitCode::from(130) } else { ExitCode::FAILURE }
}

/// Starts jitgate, plays the story, then checks the audit page and the audit chain. `running` holds jitgate for
/// the caller to stop, whatever happens here.
async fn play(
    jitgate: &Jitgate,
    slack: &FakeSlack,
    pagerduty: &FakePagerDuty,
    out: &Transcript,
    running: &mut Option<Running>,
) -> Result<(), Failure> {
    step("jitgate starts and connects", async {
        let child = running.insert(jitgate.start()?);
        let took = jitgate.wait_until_ready(child, slack, START_DEADLINE).await?;
        println!(
            "jitgate (pid {}) is connected: socket-mode connection(s) open: {}, /readyz 200, after {:.1}s\n",
            child.pid,
            slack.connections(),
            took.as_secs_f64()
        );
        Ok(())
    })
    .await?;
    let outcome = story::play(slack, pagerduty, out, &jitgate.base_url).await?;
    println!();
    step("the audit page opens", async {
        let response = reqwest::get(&outcome.audit_link).await.context("fetching the audit page")?;
        let status = response.status();
        let page = response.text().await.unwrap_or_default();
        ensure!(status.is_success(), "the audit page answered {status}: {page}");
        ensure!(page.contains(&outcome.request_id), "the audit page does not show {}", outcome.request_id);
        println!("audit page: {} → {status}", outcome.audit_link);
        Ok(())
    })
    .await?;
    step("jitgate audit verify", async {
        let (status, text) = jitgate.run_command(&["audit", "verify"], START_DEADLINE).await?;
        ensure!(status.success(), "`jitgate audit verify` exited with {status}:\n{text}");
        println!("jitgate audit verify: {}", text.trim());
        Ok(())
    })
    .await
}

/// `jitgate` in the folder this program is in: cargo builds both into the same target folder.
fn next_to_this_program() -> anyhow::Result<PathBuf> {
    let me = std::env::current_exe().context("finding this program's path")?;
    Ok(me.with_file_name(format!("jitgate{}", std::env::consts::EXE_SUFFIX)))
}

fn setup_failed(err: &anyhow::Error) -> ExitCode {
    eprintln!("demo FAILED before the story started: {err:#}");
    ExitCode::FAILURE
}

/// Completes on Ctrl-C or SIGTERM; names which.
async fn interrupted() -> &'static str {
    let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) else {
        let _ = tokio::signal::ctrl_c().await;
        return "Ctrl-C";
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "Ctrl-C",
        _ = term.recv() => "SIGTERM",
    }
}

/// The story runs on the main thread and reports its panics as step failures; the default hook would print each
/// one a second time. Panics anywhere else (the emulators' server tasks) are still printed.
fn quiet_story_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if std::thread::current().name() != Some("main") {
            default(info);
        }
    }));
}
