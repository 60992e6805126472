//! The Prometheus alert rules shipped in `manifests/prometheus/`: valid for Prometheus (`promtool check rules`),
//! raising each alert on the series its unit tests write and not otherwise (`promtool test rules`), and using only
//! metrics jitgate exports, with the labels it exports them with.
//!
//! promtool comes from Debian's `prometheus` package (`scripts/install-deps.sh test`). Outside CI a machine without
//! it skips the promtool steps with a line saying so; in CI (`CI=true`) its absence fails the test.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

use jitgate::telemetry::{METRIC_NAMES, Metrics};
use jitgate_testkit as support;

fn rules_dir() -> PathBuf {
    support::repo_root().join("manifests/prometheus")
}

fn read(name: &str) -> String {
    std::fs::read_to_string(rules_dir().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Whether promtool can be run; `false` (after saying so) only outside CI.
fn promtool_available() -> bool {
    match Command::new("promtool").arg("--version").output() {
        Ok(out) if out.status.success() => true,
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("promtool is not installed, and CI must check the alert rules: run `scripts/install-deps.sh test`")
        }
        _ => {
            eprintln!(
                "SKIPPED: promtool is not installed (`scripts/install-deps.sh test` installs it); rules not checked"
            );
            false
        }
    }
}

fn promtool(args: &[&str]) {
    let out = Command::new("promtool").args(args).current_dir(rules_dir()).output().expect("run promtool");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "promtool {}:\n{text}", args.join(" "));
}

#[test]
fn the_rules_are_valid_and_raise_each_alert_on_their_test_series() {
    if !promtool_available() {
        return;
    }
    promtool(&["check", "rules", "jitgate-rules.yaml"]);
    promtool(&["test", "rules", "jitgate-rules.test.yaml"]);
}

#[test]
fn every_alert_has_a_unit_test_and_every_metric_used_is_exported() {
    let rules = read("jitgate-rules.yaml");
    let tests = read("jitgate-rules.test.yaml");
    let alerts: Vec<&str> = rules.lines().filter_map(|l| l.trim().strip_prefix("- alert: ")).collect();
    for wanted in [
        "JitgateSlackSocketDown",
        "JitgateRequestsFailing",
        "JitgateSecurityAlert",
        "JitgateRunStuck",
        "JitgatePagerDutyUnreachable",
        "JitgateAuditAppendFailing",
    ] {
        assert!(alerts.contains(&wanted), "no {wanted} among {alerts:?}");
    }
    for alert in &alerts {
        assert!(tests.contains(&format!("alertname: {alert}\n")), "{alert} has no case in jitgate-rules.test.yaml");
    }

    let exported = |name: &str| {
        METRIC_NAMES
            .iter()
            .any(|m| name == *m || ["_bucket", "_sum", "_count"].iter().any(|suffix| name == format!("{m}{suffix}")))
    };
    let used = metric_names_in(&rules);
    assert!(used.len() >= 5, "{used:?}");
    for name in used.iter().chain(metric_names_in(&tests).iter()) {
        assert!(exported(name), "{name} is used by the rules but jitgate exports no such metric: {METRIC_NAMES:?}");
    }
}

/// The test series must look like what jitgate exports (a rule tested on a label jitgate does not set would pass
/// here and never fire in production): each, without the `instance` and `job` a scrape adds, is a series of a real
/// `/metrics` render.
#[test]
fn the_test_series_are_series_jitgate_exports() {
    let metrics = Metrics::new();
    metrics.register_runbooks(["orders-by-customer"]);
    for check in ["slack_sockets", "redis", "audit_table"] {
        metrics.ready(check, true);
    }
    metrics.external_call("pagerduty", "oncalls", true, 0.1);
    metrics.external_call("pagerduty", "oncalls", false, 0.1);
    let rendered: BTreeSet<String> = metrics
        .render()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' ').map(|(series, _)| series.to_owned()))
        .collect();
    let tests = read("jitgate-rules.test.yaml");
    let series: Vec<&str> =
        tests.lines().filter_map(|l| l.trim().strip_prefix("- series: '")).map(|s| s.trim_end_matches('\'')).collect();
    assert!(series.len() >= 10, "{series:?}");
    for one in series {
        let as_exported = without_scrape_labels(one);
        assert!(rendered.contains(&as_exported), "{one}: jitgate exports no {as_exported}; it exports {rendered:#?}");
    }
}

/// `name{a="1",instance="…",job="…"}` → `name{a="1"}` (`name` alone when no other label is left).
fn without_scrape_labels(series: &str) -> String {
    let Some((name, labels)) = series.split_once('{') else { return series.to_owned() };
    let kept: Vec<&str> = labels
        .trim_end_matches('}')
        .split(',')
        .filter(|label| !label.starts_with("instance=") && !label.starts_with("job="))
        .collect();
    if kept.is_empty() { name.to_owned() } else { format!("{name}{{{}}}", kept.join(",")) }
}

/// Every `jitgate_…` word in `text`.
fn metric_names_in(text: &str) -> BTreeSet<String> {
    let words = text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'));
    words.filter(|w| w.starts_with("jitgate_")).map(str::to_owned).collect()
}

/// A running jitgate exports what the rules read: its build, each readiness check as of the scrape, and every
/// runbook's outcomes and every security alert kind from 0 (so a first failure or alert is an increase).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_jitgate_exports_its_build_readiness_and_zeroed_counters() {
    let h = support::harness::Harness::start().await;
    let build = format!(
        r#"jitgate_build_info{{version="{}",git_sha="{}"}} 1"#,
        jitgate::build_info::VERSION,
        jitgate::build_info::GIT_SHA
    );
    h.wait_for_metric(&build).await;
    h.wait_for_metric(r#"jitgate_ready{check="slack_sockets"} 1"#).await;
    let metrics = h.metrics().await;
    for line in [
        r#"jitgate_requests_total{runbook="orders-by-customer",outcome="failed"} 0"#,
        r#"jitgate_security_alerts_total{kind="record_tampered"} 0"#,
        "jitgate_audit_append_failures_total 0",
    ] {
        assert!(metrics.lines().any(|l| l == line), "missing {line:?} in:\n{metrics}");
    }
    assert!(metrics.contains(r#"jitgate_ready{check="redis"}"#), "{metrics}");
    h.shutdown().await;
}
