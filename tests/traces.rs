//! OpenTelemetry traces of one whole request, received by an in-process OTLP/HTTP collector: one trace from the
//! slash command to the rows, a span per external call under the request's spans, and the trace id in the JSON log
//! lines. One test per binary: it installs the process-wide log subscriber (with the trace exporter) from the
//! environment, as `jitgate run` does.

use jitgate_testkit as support;

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use jitgate::cli::{LogFormat, init_logging};
use jitgate::messages::APPROVE_ACTION;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use prost::Message as _;
use support::harness::*;

/// Collects every log line in memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// One received span, flattened: its ids as hex, name, string attributes, and the service that sent it.
#[derive(Debug, Clone)]
struct Span {
    trace_id: String,
    span_id: String,
    parent: String,
    name: String,
    attributes: HashMap<String, String>,
    service: String,
}

fn text(attributes: &[KeyValue]) -> HashMap<String, String> {
    attributes
        .iter()
        .filter_map(|kv| match kv.value.as_ref()?.value.as_ref()? {
            AnyValue::StringValue(s) => Some((kv.key.clone(), s.clone())),
            AnyValue::IntValue(i) => Some((kv.key.clone(), i.to_string())),
            AnyValue::BoolValue(b) => Some((kv.key.clone(), b.to_string())),
            _ => None,
        })
        .collect()
}

/// The collector's one endpoint: `POST /v1/traces` with a protobuf `ExportTraceServiceRequest`, as OTLP/HTTP says.
async fn receive(State(spans): State<Arc<Mutex<Vec<Span>>>>, body: Bytes) -> axum::http::StatusCode {
    let Ok(request) = ExportTraceServiceRequest::decode(body) else { return axum::http::StatusCode::BAD_REQUEST };
    let mut spans = spans.lock().unwrap();
    for resource_spans in request.resource_spans {
        let resource = text(resource_spans.resource.as_ref().map(|r| r.attributes.as_slice()).unwrap_or_default());
        let service = resource.get("service.name").cloned().unwrap_or_default();
        for scope in resource_spans.scope_spans {
            for span in scope.spans {
                spans.push(Span {
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent: hex(&span.parent_span_id),
                    name: span.name.clone(),
                    attributes: text(&span.attributes),
                    service: service.clone(),
                });
            }
        }
    }
    axum::http::StatusCode::OK
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_request_is_one_trace_from_the_slash_command_to_the_rows() {
    let received = Arc::new(Mutex::new(Vec::<Span>::new()));
    let app = axum::Router::new().route("/v1/traces", post(receive)).with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}/v1/traces", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let logs = Captured::default();
    // SAFETY of the test: this binary has one test, so nothing else reads the environment concurrently.
    unsafe {
        std::env::set_var("RUST_LOG", "info");
        std::env::set_var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", &endpoint);
    }
    init_logging(LogFormat::Json, logs.clone());

    let h = Harness::start().await;
    let card = h
        .request(ALICE, "orders-by-customer customer_id=C000002 from=2026-01-02 until=2026-01-03 --reason \"INC-812\"")
        .await;
    h.click(BOB, &card, APPROVE_ACTION).await;
    h.card_update_containing(&card, "ran:").await;
    h.thread_reply(&card).await;
    h.dm_for(ALICE).await;
    h.shutdown().await;
    // Exports what is still buffered, as `jitgate run` does when it stops.
    jitgate::telemetry::traces::shutdown().await;

    let spans = received.lock().unwrap().clone();
    let id = card.id.to_string();
    let with_request = |name: &str| {
        spans
            .iter()
            .find(|s| s.name == name && s.attributes.get("request_id") == Some(&id))
            .unwrap_or_else(|| panic!("no `{name}` span with request_id {id} among {:#?}", names(&spans)))
            .clone()
    };
    let submit = with_request("submit");
    let execute = with_request("execute");
    let run = with_request("run");
    assert!(spans.iter().all(|s| s.service == "jitgate"), "service.name is jitgate by default");

    // One trace: the slash command's event is its root, and the run after the approval click continues it.
    let trace: Vec<&Span> = spans.iter().filter(|s| s.trace_id == submit.trace_id).collect();
    let by_id: HashMap<&str, &Span> = trace.iter().map(|s| (s.span_id.as_str(), *s)).collect();
    let root = by_id.get(submit.parent.as_str()).unwrap_or_else(|| panic!("submit's parent is not in its trace"));
    assert_eq!(root.name, "event");
    assert!(root.parent.is_empty(), "the slash command's event is the root: {root:?}");
    let approve = with_request("approve");
    assert_eq!(approve.trace_id, submit.trace_id, "the approval click joins the request's trace");
    assert_eq!(approve.parent, submit.span_id, "the approval continues from the submission");
    assert_eq!(run.trace_id, submit.trace_id, "the run after the click is in the request's trace");
    assert_eq!(run.parent, submit.span_id, "the run continues from the submission");
    assert_eq!(execute.parent, run.span_id);

    // Every span of the trace hangs from the root.
    for span in &trace {
        let mut at = *span;
        let mut hops = 0;
        while !at.parent.is_empty() {
            at = by_id.get(at.parent.as_str()).unwrap_or_else(|| panic!("{span:?} has a parent outside its trace"));
            hops += 1;
            assert!(hops < 50, "a cycle above {span:?}");
        }
        assert_eq!(at.span_id, root.span_id);
    }

    // A span per external call, with service, operation and result, under the request's spans.
    let calls: Vec<&&Span> = trace.iter().filter(|s| s.attributes.contains_key("service")).collect();
    for call in &calls {
        let (service, operation) = (&call.attributes["service"], &call.attributes["operation"]);
        assert_eq!(call.name, format!("{service} {operation}"));
        assert_eq!(call.attributes.get("result").map(String::as_str), Some("ok"), "{call:?}");
    }
    let under = |parent: &Span, service: &str, operation: &str| {
        calls.iter().any(|c| {
            c.attributes["service"] == service && c.attributes["operation"] == operation && {
                // The call is below `parent` somewhere.
                let mut at: &Span = c;
                loop {
                    if at.span_id == parent.span_id {
                        break true;
                    }
                    match by_id.get(at.parent.as_str()) {
                        Some(next) => at = next,
                        None => break false,
                    }
                }
            }
        })
    };
    assert!(under(&submit, "redis", "script"), "the request is stored: {:#?}", names(&trace));
    assert!(under(root, "slack", "chat.postMessage"), "the card is posted: {:#?}", names(&trace));
    assert!(under(&execute, "sts", "AssumeRole"), "credentials are assumed: {:#?}", names(&trace));
    assert!(under(&execute, "dynamodb", "Query"), "the query runs: {:#?}", names(&trace));
    assert!(under(&execute, "audit", "TransactWriteItems"), "the run is audited: {:#?}", names(&trace));
    assert!(under(&run, "slack", "chat.postMessage"), "the rows are posted: {:#?}", names(&trace));

    // The trace id in the JSON log lines of the request.
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    let about_request: Vec<&str> = text.lines().filter(|l| l.contains(&format!("\"request_id\":\"{id}\""))).collect();
    assert!(!about_request.is_empty(), "the request's lines:\n{text}");
    for line in about_request {
        assert!(line.contains(&format!("\"trace_id\":\"{}\"", submit.trace_id)), "no trace id in {line}");
    }
}

fn names(spans: &[impl std::borrow::Borrow<Span>]) -> Vec<String> {
    spans.iter().map(|s| s.borrow().name.clone()).collect()
}
