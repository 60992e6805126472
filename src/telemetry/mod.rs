//! Prometheus metrics: a [`Metrics`] handle with one named method per measurement, rendered at `GET /metrics`.
//!
//! | name | type | labels | what |
//! |---|---|---|---|
//! | `jitgate_requests_total` | counter | `runbook`, `outcome` | requests that reached an end (`succeeded`, `failed`, `denied`, `expired`, `cancelled`, …) |
//! | `jitgate_decision_latency_seconds` | histogram | | from a request to its approval or denial |
//! | `jitgate_execution_latency_seconds` | histogram | | from the last approval to the rows being delivered |
//! | `jitgate_pending_requests` | gauge | | requests waiting for approval, as last counted |
//! | `jitgate_external_calls_total` | counter | `service`, `op`, `result` (`ok`/`error`) | calls to `slack`, `pagerduty`, `sts`, `dynamodb` (approved queries), `audit` (the audit table), `redis` |
//! | `jitgate_external_call_duration_seconds` | histogram | `service`, `op` | how long those calls took |
//! | `jitgate_slack_socket_reconnects_total` | counter | | socket-mode connections re-opened |
//! | `jitgate_security_alerts_total` | counter | `kind` | fail-safe alerts, each kind from 0: `unacceptable_credentials`, `not_what_was_requested`, `not_what_was_shown`, `record_tampered`, `stuck_run`, `foreign_envelope`, `break_glass_unreviewed` |
//! | `jitgate_audit_append_failures_total` | counter | | audit entries that could not be appended (after the retries): the step they record failed closed |
//! | `jitgate_ready` | gauge | `check` (`redis`, `audit_table`, `slack_sockets`) | 1 when the `/readyz` check is up, 0 when down, as of the scrape |
//! | `jitgate_build_info` | gauge | `version`, `git_sha` | always 1: which build is running |
//!
//! The alert rules in `manifests/prometheus/jitgate-rules.yaml` use these names ([`METRIC_NAMES`]; a test checks
//! that every name the rules use is one of them).
//!
//! Each [`Metrics`] owns its own recorder and records into it through `metrics::with_local_recorder`, so nothing
//! depends on the process-wide recorder: a process makes one `Metrics` and clones it to every component, and tests
//! make as many as they like without clashing. Label values must come from small fixed sets (runbook ids, the
//! outcome names above, service and operation names), never from user input: each distinct value is a new series.
//!
//! [`CallMetrics`] is the AWS SDK interceptor that feeds the `external_call` series for the STS client, the
//! executor's DynamoDB clients and the audit table's client; it lives here so those clients share it without
//! knowing each other.

mod aws_calls;
pub mod traces;

use std::sync::Arc;

use metrics::{Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder};

pub use aws_calls::CallMetrics;

pub const REQUESTS_TOTAL: &str = "jitgate_requests_total";
pub const DECISION_LATENCY: &str = "jitgate_decision_latency_seconds";
pub const EXECUTION_LATENCY: &str = "jitgate_execution_latency_seconds";
pub const PENDING_REQUESTS: &str = "jitgate_pending_requests";
pub const EXTERNAL_CALLS_TOTAL: &str = "jitgate_external_calls_total";
pub const EXTERNAL_CALL_DURATION: &str = "jitgate_external_call_duration_seconds";
pub const SOCKET_RECONNECTS_TOTAL: &str = "jitgate_slack_socket_reconnects_total";
pub const SECURITY_ALERTS_TOTAL: &str = "jitgate_security_alerts_total";
pub const AUDIT_APPEND_FAILURES_TOTAL: &str = "jitgate_audit_append_failures_total";
pub const AUDIT_APPEND_RETRIES_TOTAL: &str = "jitgate_audit_append_retries_total";
pub const READY: &str = "jitgate_ready";
pub const BUILD_INFO: &str = "jitgate_build_info";

/// Every `outcome` of `jitgate_requests_total`: the final states of a request.
pub const REQUEST_OUTCOMES: [&str; 5] = ["succeeded", "failed", "denied", "expired", "cancelled"];

/// Every `kind` of `jitgate_security_alerts_total`. Each is exported from start at 0, so the first alert of a
/// replica is an increase Prometheus can see (a series born at 1 has no increase to alert on).
pub const SECURITY_ALERT_KINDS: [&str; 7] = [
    "unacceptable_credentials",
    "not_what_was_requested",
    "not_what_was_shown",
    "record_tampered",
    "stuck_run",
    "foreign_envelope",
    "break_glass_unreviewed",
];

/// Every metric jitgate exports, as named at `/metrics` (histograms add `_bucket`, `_sum` and `_count`).
pub const METRIC_NAMES: [&str; 11] = [
    REQUESTS_TOTAL,
    DECISION_LATENCY,
    EXECUTION_LATENCY,
    PENDING_REQUESTS,
    EXTERNAL_CALLS_TOTAL,
    EXTERNAL_CALL_DURATION,
    SOCKET_RECONNECTS_TOTAL,
    SECURITY_ALERTS_TOTAL,
    AUDIT_APPEND_FAILURES_TOTAL,
    READY,
    BUILD_INFO,
];

/// Histogram buckets in seconds: external calls take milliseconds, a human decision takes minutes.
const BUCKETS: &[f64] = &[0.005, 0.025, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0];

/// The metrics of one jitgate process. Cheap to clone: clones share one recorder.
#[derive(Clone)]
pub struct Metrics {
    recorder: Arc<PrometheusRecorder>,
    handle: PrometheusHandle,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// A fresh recorder with every metric described (so `# HELP` lines appear once a value is recorded).
    pub fn new() -> Metrics {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), BUCKETS)
            // Only fails for an empty bucket list; the constant is not empty.
            .unwrap_or_else(|_| PrometheusBuilder::new())
            .build_recorder();
        let handle = recorder.handle();
        let metrics = Metrics { recorder: Arc::new(recorder), handle };
        metrics.record(|| {
            describe_counter!(REQUESTS_TOTAL, "Requests that reached an end, by runbook and outcome");
            describe_histogram!(DECISION_LATENCY, Unit::Seconds, "From a request to its approval or denial");
            describe_histogram!(EXECUTION_LATENCY, Unit::Seconds, "From the last approval to the rows delivered");
            describe_gauge!(PENDING_REQUESTS, "Requests waiting for approval");
            describe_counter!(EXTERNAL_CALLS_TOTAL, "Calls to Slack, PagerDuty, STS, DynamoDB and Redis");
            describe_histogram!(EXTERNAL_CALL_DURATION, Unit::Seconds, "Duration of calls to other services");
            describe_counter!(SOCKET_RECONNECTS_TOTAL, "Slack socket-mode connections re-opened");
            describe_counter!(
                SECURITY_ALERTS_TOTAL,
                "Fail-safe alerts raised (credentials jitgate does not accept, runs left holding credentials)"
            );
            describe_counter!(AUDIT_APPEND_FAILURES_TOTAL, "Audit entries that could not be appended");
            describe_counter!(
                AUDIT_APPEND_RETRIES_TOTAL,
                "Audit appends tried again because another writer took the chain's next entry first"
            );
            describe_gauge!(READY, "1 when the readiness check is up, 0 when down");
            describe_gauge!(BUILD_INFO, "The running build: its version and git commit");
            let (version, git_sha) = (crate::build_info::VERSION, crate::build_info::GIT_SHA);
            gauge!(BUILD_INFO, "version" => version, "git_sha" => git_sha).set(1.0);
            // Counted from zero, so an alert on its increase fires on the first failure of a fresh replica.
            counter!(AUDIT_APPEND_FAILURES_TOTAL).absolute(0);
            counter!(AUDIT_APPEND_RETRIES_TOTAL).absolute(0);
            for kind in SECURITY_ALERT_KINDS {
                counter!(SECURITY_ALERTS_TOTAL, "kind" => kind).absolute(0);
            }
        });
        metrics
    }

    /// Exports every outcome of each of `runbooks` at 0, so the first failure of a runbook is an increase that
    /// Prometheus (and the alert on failures) can see: a series born at 1 has none.
    pub fn register_runbooks<'a>(&self, runbooks: impl IntoIterator<Item = &'a str>) {
        for runbook in runbooks {
            for outcome in REQUEST_OUTCOMES {
                let runbook = runbook.to_owned();
                self.record(|| counter!(REQUESTS_TOTAL, "runbook" => runbook, "outcome" => outcome).absolute(0));
            }
        }
    }

    /// A request reached an end: `outcome` is one of `succeeded`, `failed`, `denied`, `expired`, `cancelled`.
    pub fn request_outcome(&self, runbook: &str, outcome: &str) {
        let (runbook, outcome) = (runbook.to_owned(), outcome.to_owned());
        self.record(|| counter!(REQUESTS_TOTAL, "runbook" => runbook, "outcome" => outcome).increment(1));
    }

    /// Seconds from a request to its approval or denial.
    pub fn decision_latency(&self, secs: f64) {
        self.record(|| histogram!(DECISION_LATENCY).record(secs));
    }

    /// Seconds from the last approval to the rows being delivered.
    pub fn execution_latency(&self, secs: f64) {
        self.record(|| histogram!(EXECUTION_LATENCY).record(secs));
    }

    /// Requests waiting for approval now.
    pub fn pending(&self, n: usize) {
        self.record(|| gauge!(PENDING_REQUESTS).set(n as f64));
    }

    /// One call to another service (`service` e.g. `slack`, `op` e.g. `chat.postMessage`), whether it worked and
    /// how long it took.
    pub fn external_call(&self, service: &str, op: &str, ok: bool, secs: f64) {
        let (service, op) = (service.to_owned(), op.to_owned());
        let result = if ok { "ok" } else { "error" };
        self.record(|| {
            counter!(EXTERNAL_CALLS_TOTAL, "service" => service.clone(), "op" => op.clone(), "result" => result)
                .increment(1);
            histogram!(EXTERNAL_CALL_DURATION, "service" => service, "op" => op).record(secs);
        });
    }

    /// A fail-safe alert was raised; `kind` is one of [`SECURITY_ALERT_KINDS`].
    pub fn security_alert(&self, kind: &'static str) {
        self.record(|| counter!(SECURITY_ALERTS_TOTAL, "kind" => kind).increment(1));
    }

    /// An audit entry could not be appended, after the append's own retries.
    pub fn audit_append_failure(&self) {
        self.record(|| counter!(AUDIT_APPEND_FAILURES_TOTAL).increment(1));
    }

    /// An audit append lost the race for the chain's next entry and is tried again.
    pub fn audit_append_retry(&self) {
        self.record(|| counter!(AUDIT_APPEND_RETRIES_TOTAL).increment(1));
    }

    /// A readiness check (`redis`, `audit_table`, `slack_sockets`) is up or down.
    pub fn ready(&self, check: &'static str, up: bool) {
        self.record(|| gauge!(READY, "check" => check).set(if up { 1.0 } else { 0.0 }));
    }

    /// A Slack socket-mode connection was re-opened.
    pub fn socket_reconnect(&self) {
        self.record(|| counter!(SOCKET_RECONNECTS_TOTAL).increment(1));
    }

    /// Everything recorded so far in the Prometheus text format.
    pub fn render(&self) -> String {
        self.handle.render()
    }

    /// Folds recorded histogram samples into their buckets. Rendering does this too; calling it now and then keeps
    /// memory flat when nothing scrapes for a long time.
    pub fn run_upkeep(&self) {
        self.handle.run_upkeep();
    }

    fn record(&self, f: impl FnOnce()) {
        metrics::with_local_recorder(self.recorder.as_ref(), f);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_values_show_up_under_their_documented_names() {
        let metrics = Metrics::new();
        metrics.request_outcome("orders-by-customer", "succeeded");
        metrics.request_outcome("orders-by-customer", "succeeded");
        metrics.request_outcome("order-by-id", "denied");
        metrics.decision_latency(42.0);
        metrics.execution_latency(0.3);
        metrics.pending(3);
        metrics.external_call("slack", "chat.postMessage", true, 0.02);
        metrics.external_call("sts", "AssumeRole", false, 1.5);
        metrics.socket_reconnect();
        let text = metrics.render();
        for line in [
            r#"jitgate_requests_total{runbook="orders-by-customer",outcome="succeeded"} 2"#,
            r#"jitgate_requests_total{runbook="order-by-id",outcome="denied"} 1"#,
            "jitgate_decision_latency_seconds_count 1",
            "jitgate_decision_latency_seconds_sum 42",
            "jitgate_execution_latency_seconds_count 1",
            "jitgate_pending_requests 3",
            r#"jitgate_external_calls_total{service="slack",op="chat.postMessage",result="ok"} 1"#,
            r#"jitgate_external_calls_total{service="sts",op="AssumeRole",result="error"} 1"#,
            r#"jitgate_external_call_duration_seconds_bucket{service="sts",op="AssumeRole",le="2.5"} 1"#,
            "jitgate_slack_socket_reconnects_total 1",
            "# HELP jitgate_requests_total Requests that reached an end, by runbook and outcome",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in:\n{text}");
        }
    }

    #[test]
    fn every_listed_metric_is_exported_with_its_labels() {
        let metrics = Metrics::new();
        metrics.register_runbooks(["orders-by-customer"]);
        metrics.request_outcome("orders-by-customer", "failed");
        metrics.decision_latency(1.0);
        metrics.execution_latency(1.0);
        metrics.pending(0);
        metrics.external_call("pagerduty", "oncalls", false, 0.1);
        metrics.socket_reconnect();
        metrics.security_alert("stuck_run");
        metrics.audit_append_failure();
        metrics.ready("slack_sockets", false);
        let text = metrics.render();
        for name in METRIC_NAMES {
            let exported = text.lines().any(|line| {
                let series = line.split(['{', ' ']).next().unwrap_or_default();
                [name.to_owned(), format!("{name}_count")].contains(&series.to_owned())
            });
            assert!(exported, "{name} is not exported:\n{text}");
        }
        let build = format!(
            r#"jitgate_build_info{{version="{}",git_sha="{}"}} 1"#,
            crate::build_info::VERSION,
            crate::build_info::GIT_SHA
        );
        assert!(text.lines().any(|l| l == build), "missing {build:?} in:\n{text}");
        assert!(text.lines().any(|l| l == "jitgate_audit_append_failures_total 1"), "{text}");
        let expired = r#"jitgate_requests_total{runbook="orders-by-customer",outcome="expired"} 0"#;
        assert!(text.lines().any(|l| l == expired), "{text}");
        assert!(text.lines().any(|l| l == r#"jitgate_ready{check="slack_sockets"} 0"#), "{text}");
        assert!(text.lines().any(|l| l == r#"jitgate_security_alerts_total{kind="stuck_run"} 1"#), "{text}");
        assert!(text.lines().any(|l| l == r#"jitgate_security_alerts_total{kind="foreign_envelope"} 0"#), "{text}");
    }

    #[test]
    fn two_handles_do_not_share_values() {
        let (a, b) = (Metrics::new(), Metrics::new());
        a.socket_reconnect();
        assert!(a.render().contains("jitgate_slack_socket_reconnects_total 1"));
        assert!(!b.render().contains("jitgate_slack_socket_reconnects_total"));
    }
}
