//! What the load must not break, counted from what Slack saw and what the audit trail holds — never from jitgate's
//! own claims: each request's audit entries (exactly one `requested` and one `executed`), the result replies in each
//! card's thread, and every injected 429 answered by the same call again no sooner than its `Retry-After`.

use std::collections::HashMap;
use std::time::Duration;

use jitgate::audit::AuditLog;
use jitgate_emulators::slack::{ApiCall, CallOutcome};
use serde_json::Value;

use crate::traffic::Outcome;

/// Per-request counts from the audit trail and Slack.
#[derive(Debug, Default)]
pub struct Executions {
    /// Requests whose audit trail holds more than one `executed`, or whose thread got more than one reply.
    pub double: Vec<String>,
    /// Requests without exactly one `requested` and one `executed`.
    pub lost: Vec<String>,
}

pub async fn executions(audit: &AuditLog, outcomes: &[Outcome], calls: &[ApiCall]) -> anyhow::Result<Executions> {
    let mut replies: HashMap<&str, usize> = HashMap::new();
    for call in calls.iter().filter(|c| c.method == "chat.postMessage" && c.outcome == CallOutcome::Ok) {
        if let Some(thread) = call.params.get("thread_ts").and_then(Value::as_str) {
            *replies.entry(thread).or_default() += 1;
        }
    }
    let mut found = Executions::default();
    for outcome in outcomes {
        let entries = audit.entries_for(&outcome.id).await?;
        let count = |kind: &str| entries.iter().filter(|e| e.event.kind() == kind).count();
        let (requested, executed) = (count("requested"), count("executed"));
        let thread = replies.get(outcome.card_ts.as_str()).copied().unwrap_or(0);
        let name = format!("{} ({}, {})", outcome.id, outcome.plan.token, outcome.plan.approval.name());
        if executed > 1 || thread > 1 {
            found.double.push(format!("{name}: {executed} executed, {thread} thread replies"));
        }
        if requested != 1 || executed != 1 {
            let kinds: Vec<&str> = entries.iter().map(|e| e.event.kind()).collect();
            let reply: String = outcome.reply.chars().take(160).collect();
            found.lost.push(format!("{name}: audit {kinds:?}; thread reply {reply:?}"));
        }
    }
    Ok(found)
}

/// Injected 429s and how jitgate answered them.
#[derive(Debug, Default)]
pub struct RateLimits {
    pub answered: usize,
    /// Tried again with the same parameters, no sooner than `Retry-After`, and that retry worked.
    pub honoured: usize,
    pub problems: Vec<String>,
    /// Card timestamps (rows delayed) and tokens (card delayed) a 429 held up: the latency figures are given with
    /// and without them.
    pub delayed: Vec<String>,
}

pub fn rate_limits(calls: &[ApiCall], outcomes: &[Outcome]) -> RateLimits {
    let mut found = RateLimits::default();
    for (n, call) in calls.iter().enumerate() {
        let CallOutcome::RateLimited { retry_after_secs } = call.outcome else { continue };
        found.answered += 1;
        let wait = Duration::from_secs(retry_after_secs);
        let retry = calls[n + 1..].iter().find(|later| later.method == call.method && later.params == call.params);
        match retry {
            Some(retry) => {
                let waited = retry.at - call.at;
                if waited >= wait && retry.outcome == CallOutcome::Ok {
                    found.honoured += 1;
                } else {
                    found.problems.push(format!(
                        "{} answered 429 (Retry-After {retry_after_secs} s) was tried again after {waited} ({:?})",
                        call.method, retry.outcome
                    ));
                }
            }
            None => found.problems.push(format!("{} answered 429 was never tried again", call.method)),
        }
        let params = call.params.to_string();
        for outcome in outcomes {
            let thread = call.params.get("thread_ts").and_then(Value::as_str);
            if thread == Some(outcome.card_ts.as_str()) || params.contains(&outcome.plan.token) {
                found.delayed.push(outcome.plan.token.clone());
            }
        }
    }
    found
}

/// The sum of every sample of `metric` (any labels) whose labels contain `filter`, across the replicas' scrapes.
pub fn metric_sum(scrapes: &[String], metric: &str, filter: &str) -> f64 {
    scrapes
        .iter()
        .flat_map(|text| text.lines())
        .filter(|line| !line.starts_with('#'))
        .filter(|line| line.starts_with(&format!("{metric} ")) || line.starts_with(&format!("{metric}{{")))
        .filter(|line| line.contains(filter))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// `n=… p50 p90 p99 max` of `samples`, in milliseconds.
pub fn summary(samples: &[Duration]) -> String {
    if samples.is_empty() {
        return "n=0".to_owned();
    }
    let mut sorted = samples.to_vec();
    sorted.sort();
    let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize].as_secs_f64() * 1000.0;
    format!(
        "n={:<3} p50={:>7.1} ms  p90={:>7.1} ms  p99={:>7.1} ms  max={:>7.1} ms",
        sorted.len(),
        at(0.5),
        at(0.9),
        at(0.99),
        at(1.0)
    )
}
