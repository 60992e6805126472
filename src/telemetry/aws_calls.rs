//! Counts and times every AWS call of a client into [`Metrics`]: one SDK interceptor, attached to the STS client,
//! the executor's per-query DynamoDB clients and the audit log's client. The operation name comes from the SDK's
//! own metadata (`AssumeRole`, `Query`, `TransactWriteItems`, …), so every call is seen, retries included in its
//! duration, without wrapping each call site. The same interceptor opens each call's trace span.

use std::time::Instant;

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeSerializationInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};

use super::Metrics;

/// Records `jitgate_external_calls_total` and `jitgate_external_call_duration_seconds` under `service`.
#[derive(Debug, Clone)]
pub struct CallMetrics {
    metrics: Metrics,
    service: &'static str,
}

impl CallMetrics {
    /// `service` is the label value: `sts`, `dynamodb` (approved queries) or `audit` (the audit table).
    pub fn new(metrics: Metrics, service: &'static str) -> CallMetrics {
        CallMetrics { metrics, service }
    }
}

/// When the current operation started; kept in the operation's own config bag.
#[derive(Debug, Clone, Copy)]
struct Started(Instant);

impl Storable for Started {
    type Storer = StoreReplace<Self>;
}

/// The operation's trace span, opened before it is sent and closed when its config bag is dropped at its end.
#[derive(Debug, Clone)]
struct CallSpan(tracing::Span);

impl Storable for CallSpan {
    type Storer = StoreReplace<Self>;
}

impl Intercept for CallMetrics {
    fn name(&self) -> &'static str {
        "jitgate-call-metrics"
    }

    fn read_before_execution(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        cfg.interceptor_state().store_put(Started(Instant::now()));
        // The operation's future runs inside the caller's span (execute, the audit append), so this is its child.
        // The operation's name is not in the bag yet at this point; it is recorded when the call ends.
        cfg.interceptor_state().store_put(CallSpan(super::traces::external_call_span(self.service, "unknown")));
        Ok(())
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let seconds = cfg.load::<Started>().map(|s| s.0.elapsed().as_secs_f64()).unwrap_or_default();
        let operation = cfg.load::<Metadata>().map(|m| m.name().to_owned()).unwrap_or_else(|| "unknown".to_owned());
        let ok = matches!(context.output_or_error(), Some(Ok(_)));
        if let Some(span) = cfg.load::<CallSpan>() {
            super::traces::record_call_operation(&span.0, self.service, &operation);
            super::traces::record_call_result(&span.0, ok);
        }
        self.metrics.external_call(self.service, &operation, ok, seconds);
        Ok(())
    }
}
