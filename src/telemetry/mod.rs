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
//! | `jitgate_security_alerts_total` | counter | `kind` | fail-safe alerts: `unacceptable_credentials`, `stuck_run`, `foreign_envelope`, `break_glass_unreviewed`, `not_what_was_shown` |
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
        });
        metrics
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

    /// A fail-safe alert was raised; `kind` is one of a fixed set (`unacceptable_credentials`, `stuck_run`,
    /// `foreign_envelope`, `break_glass_unreviewed`, `not_what_was_shown`).
    pub fn security_alert(&self, kind: &'static str) {
        self.record(|| counter!(SECURITY_ALERTS_TOTAL, "kind" => kind).increment(1));
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
    fn two_handles_do_not_share_values() {
        let (a, b) = (Metrics::new(), Metrics::new());
        a.socket_reconnect();
        assert!(a.render().contains("jitgate_slack_socket_reconnects_total 1"));
        assert!(!b.render().contains("jitgate_slack_socket_reconnects_total"));
    }
}
