//! OpenTelemetry traces: the `tracing` spans jitgate already opens (the event, submit, approve, execute, and one per
//! external call) exported over OTLP/HTTP with protobuf bodies, configured by the standard `OTEL_*` variables.
//!
//! Off unless `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or `OTEL_EXPORTER_OTLP_ENDPOINT` is set (and neither
//! `OTEL_SDK_DISABLED=true` nor `OTEL_TRACES_EXPORTER=none`): with nothing set, no exporter, no thread and no span
//! bookkeeping beyond what the logs already do. The OpenTelemetry SDK reads the rest itself:
//! `OTEL_SERVICE_NAME` (default here `jitgate`), `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER`/`_ARG`,
//! `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_BSP_*`. Only `http/protobuf` is spoken; another
//! `OTEL_EXPORTER_OTLP_PROTOCOL` is reported once and ignored.
//!
//! The exporter posts through jitgate's own reqwest client (rustls with aws-lc-rs, see `src/tls.rs`) rather than
//! opentelemetry-http's, which would bring a second reqwest. The SDK exports from its own thread, outside any tokio
//! runtime, so each post is spawned on the runtime that started the exporter.

use std::sync::Mutex;
use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use tracing_opentelemetry::OpenTelemetryLayer;

/// How long one export may take; a collector that does not answer must not hold spans forever.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// The provider of the running process, kept to flush it at shutdown.
static PROVIDER: Mutex<Option<SdkTracerProvider>> = Mutex::new(None);

/// What the `OTEL_*` variables ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TraceExport {
    Off,
    /// On; the endpoint as configured (for the start-up log line).
    Otlp {
        endpoint: String,
    },
}

impl TraceExport {
    /// Reads the switch from `lookup` (the process environment in production, a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> TraceExport {
        let set = |name: &str| lookup(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        if set("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true"))
            || set("OTEL_TRACES_EXPORTER").is_some_and(|v| v.eq_ignore_ascii_case("none"))
        {
            return TraceExport::Off;
        }
        match set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").or_else(|| set("OTEL_EXPORTER_OTLP_ENDPOINT")) {
            Some(endpoint) => TraceExport::Otlp { endpoint },
            None => TraceExport::Off,
        }
    }
}

/// The `tracing` layer that turns spans into OpenTelemetry spans and exports them, when the environment asks for
/// it. Must be called inside a tokio runtime (exports run on it).
pub fn layer_from_env<S>() -> Option<OpenTelemetryLayer<S, SdkTracer>>
where
    S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
{
    let TraceExport::Otlp { endpoint } = TraceExport::from_lookup(|name| std::env::var(name).ok()) else {
        return None;
    };
    let runtime = tokio::runtime::Handle::try_current().ok()?;
    crate::tls::install_crypto_provider();
    for name in ["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"] {
        if let Ok(protocol) = std::env::var(name)
            && protocol.trim() != "http/protobuf"
        {
            eprintln!("jitgate: {name}={protocol} is not supported; traces are sent as http/protobuf");
        }
    }
    let client = match reqwest::Client::builder().timeout(EXPORT_TIMEOUT).connect_timeout(EXPORT_TIMEOUT).build() {
        Ok(client) => client,
        Err(e) => {
            eprintln!("jitgate: traces are off: cannot build the OTLP HTTP client: {e}");
            return None;
        }
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_http_client(OnTokio { client, runtime })
        .build();
    let exporter = match exporter {
        Ok(exporter) => exporter,
        Err(e) => {
            eprintln!("jitgate: traces are off: the OTLP exporter for {endpoint} cannot be built: {e}");
            return None;
        }
    };
    let mut resource = Resource::builder();
    if std::env::var("OTEL_SERVICE_NAME").map(|v| v.trim().is_empty()).unwrap_or(true) {
        resource = resource.with_service_name("jitgate");
    }
    let provider = SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource.build()).build();
    let tracer = provider.tracer("jitgate");
    *PROVIDER.lock().unwrap_or_else(|p| p.into_inner()) = Some(provider);
    Some(tracing_opentelemetry::layer().with_tracer(tracer))
}

/// Exports the spans still buffered and stops the exporter; a no-op when traces are off. Called when `jitgate run`
/// stops, so the last requests' spans are not lost.
pub async fn shutdown() {
    let Some(provider) = PROVIDER.lock().unwrap_or_else(|p| p.into_inner()).take() else {
        return;
    };
    // The SDK blocks until its export thread is done, and that thread's posts run on this runtime.
    let _ = tokio::task::spawn_blocking(move || provider.shutdown()).await;
}

/// Whether this process exports traces.
pub fn enabled() -> bool {
    PROVIDER.lock().unwrap_or_else(|p| p.into_inner()).is_some()
}

/// The trace id of the span `span` belongs to, as 32 hex digits; `None` when traces are off.
pub fn trace_id(span: &tracing::Span) -> Option<String> {
    use opentelemetry::trace::TraceContextExt as _;
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    let context = span.context();
    let span_context = context.span().span_context().clone();
    span_context.is_valid().then(|| span_context.trace_id().to_string())
}

/// Records the trace id into the span's declared `trace_id` field, so every JSON log line inside it names the
/// trace. A no-op when traces are off.
pub fn record_trace_id(span: &tracing::Span) {
    if let Some(id) = trace_id(span) {
        span.record("trace_id", id.as_str());
    }
}

/// The W3C `traceparent` of a span, to continue its trace in a later event (the approval click); `None` when
/// traces are off.
pub fn traceparent(span: &tracing::Span) -> Option<String> {
    use opentelemetry::trace::TraceContextExt as _;
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    let context = span.context();
    let sc = context.span().span_context().clone();
    sc.is_valid().then(|| format!("00-{}-{}-{:02x}", sc.trace_id(), sc.span_id(), sc.trace_flags().to_u8()))
}

/// Makes `span` a child of the span a `traceparent` names. A malformed value is ignored: a trace is a diagnostic,
/// never a reason to refuse or fail a request.
pub fn continue_trace(span: &tracing::Span, traceparent: &str) {
    use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState};
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    let parts: Vec<&str> = traceparent.split('-').collect();
    let [_, trace, parent, flags] = parts.as_slice() else { return };
    let (Ok(trace), Ok(parent), Ok(flags)) =
        (TraceId::from_hex(trace), SpanId::from_hex(parent), u8::from_str_radix(flags, 16))
    else {
        return;
    };
    let remote = SpanContext::new(trace, parent, TraceFlags::new(flags), true, TraceState::default());
    if remote.is_valid() {
        let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(remote));
    }
}

/// The span of one call to an outside service, a child of whatever request span is current: named
/// `<service> <operation>` in the trace (e.g. `slack chat.postMessage`, `redis script`, `sts AssumeRole`), with the
/// service, the operation and, once known, the result (`ok`/`error`) as attributes. The same names as the
/// `jitgate_external_calls_total` labels.
pub fn external_call_span(service: &'static str, operation: &str) -> tracing::Span {
    tracing::info_span!(
        "external_call",
        otel.name = %format_args!("{service} {operation}"),
        otel.kind = "client",
        service,
        operation = %operation,
        result = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
    )
}

/// Names the operation of an external call's span once it is known (the AWS SDK tells it only at the end).
pub fn record_call_operation(span: &tracing::Span, service: &str, operation: &str) {
    span.record("operation", operation);
    span.record("otel.name", format!("{service} {operation}").as_str());
}

/// Records how an external call ended on its span.
pub fn record_call_result(span: &tracing::Span, ok: bool) {
    span.record("result", if ok { "ok" } else { "error" });
    if !ok {
        span.record("otel.status_code", "error");
    }
}

/// reqwest on the tokio runtime, as the SDK's HTTP client.
#[derive(Debug)]
struct OnTokio {
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

#[async_trait::async_trait]
impl HttpClient for OnTokio {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let request = reqwest::Request::try_from(request.map(reqwest::Body::from))?;
        let client = self.client.clone();
        let sent = self.runtime.spawn(async move {
            let response = client.execute(request).await?;
            let status = response.status();
            let body = response.bytes().await?;
            Ok::<_, HttpError>(Response::builder().status(status).body(body)?)
        });
        sent.await?
    }
}

#[cfg(test)]
mod tests {
    use super::TraceExport;

    fn with(vars: &[(&str, &str)]) -> TraceExport {
        TraceExport::from_lookup(|name| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned()))
    }

    #[test]
    fn traces_are_off_unless_an_endpoint_is_set() {
        assert_eq!(with(&[]), TraceExport::Off);
        assert_eq!(with(&[("OTEL_SERVICE_NAME", "jitgate"), ("OTEL_EXPORTER_OTLP_ENDPOINT", " ")]), TraceExport::Off);
        assert_eq!(
            with(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")]),
            TraceExport::Otlp { endpoint: "http://collector:4318".into() }
        );
        // The traces-specific endpoint wins, as the specification says.
        assert_eq!(
            with(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
                ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://traces:4318/v1/traces")
            ]),
            TraceExport::Otlp { endpoint: "http://traces:4318/v1/traces".into() }
        );
    }

    #[test]
    fn the_standard_switches_turn_traces_off() {
        let endpoint = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318");
        assert_eq!(with(&[endpoint, ("OTEL_SDK_DISABLED", "true")]), TraceExport::Off);
        assert_eq!(with(&[endpoint, ("OTEL_TRACES_EXPORTER", "none")]), TraceExport::Off);
        assert_ne!(with(&[endpoint, ("OTEL_TRACES_EXPORTER", "otlp")]), TraceExport::Off);
    }
}
