//! The operator HTTP server as an operator and an auditor meet it: the real server on a free port, a real Redis
//! and a real audit table in the local DynamoDB, requests over HTTP. Health and readiness (up, then Redis gone and
//! no Slack socket), the signed audit page of a request that ran (and every kind of bad link refused without a
//! word about the request), an entry edited in the table named on the page, markup in a reason escaped, metrics,
//! and the page rendered by a real headless browser.

use jitgate_testkit as support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use jitgate::audit::{AuditEntry, AuditEvent, AuditLog, CredentialEvidence};
use jitgate::clock::{Clock, ManualClock, SharedClock};
use jitgate::http::{HttpState, Metrics, ReadinessMonitor, ServerLimits};
use jitgate::ids::{RequestId, SlackUserId};
use jitgate::links::AuditLinkSigner;
use jitgate::request::{AccessRequest, ExecutionSummary, NewRequest, OnCallEntry, RosterSource};
use jitgate::store::{RequestStore, StoreSettings};
use secrecy::SecretString;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use support::fixtures;
use support::redis_proxy::RedisProxy;

const SESSION_POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"dynamodb:Query","Resource":"arn:aws:dynamodb:us-east-1:123456789012:table/Orders","Condition":{"ForAllValues:StringEquals":{"dynamodb:LeadingKeys":["C000042"]}}}]}"#;
const LINK_TTL: Duration = Duration::from_secs(30 * 24 * 3600);
/// Short, so the slow-client tests see connections closed quickly; real clients send their head at once.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(2);

/// A running server and the handles a test needs to drive it.
struct Server {
    /// The public listener (audit pages).
    base: String,
    /// The operations listener (probes, metrics).
    ops: String,
    readiness: ReadinessMonitor,
    clock: Arc<ManualClock>,
    audit: AuditLog,
    links: AuditLinkSigner,
    metrics: Metrics,
    sockets: Arc<AtomicUsize>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl Server {
    /// Starts the server on 127.0.0.1:0 with its own audit table, talking to Redis at `redis_url`.
    async fn start_with_redis(redis_url: &str) -> Server {
        let clock = ManualClock::new(fixtures::wall_clock_now());
        let shared: SharedClock = clock.clone();
        let settings = StoreSettings {
            key_prefix: support::unique("http"),
            // A store whose Redis goes away should say so quickly, not after a long reconnect dance.
            reconnect_attempts: 0,
            ..StoreSettings::default()
        };
        let store = RequestStore::connect(redis_url, settings).await.expect("connect to Redis");
        let audit = AuditLog::new(&support::aws_config(), support::unique("http-audit"), shared.clone());
        audit.ensure_table().await.expect("audit table");
        let links = AuditLinkSigner::new(SecretString::from("0123456789abcdef".repeat(4)), LINK_TTL);
        let metrics = Metrics::new();
        let sockets = Arc::new(AtomicUsize::new(2));
        let count = sockets.clone();
        let readiness = ReadinessMonitor::new(store, audit.clone(), Arc::new(move || count.load(Ordering::SeqCst)));
        let state = HttpState {
            audit: audit.clone(),
            links: links.clone(),
            clock: shared,
            metrics: metrics.clone(),
            readiness: readiness.clone(),
            region: support::REGION.to_owned(),
        };
        let (public, base) = bind().await;
        let (operations, ops) = bind().await;
        let (stop, stopped) = oneshot::channel::<()>();
        let (stop_ops, stopped_ops) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let public = jitgate::http::serve_public(public, state.clone(), limits(), async {
                let _ = stopped.await;
                let _ = stop_ops.send(());
            });
            let ops = jitgate::http::serve_operations(operations, state, limits(), async {
                let _ = stopped_ops.await;
            });
            let (public, ops) = tokio::join!(public, ops);
            public.and(ops)
        });
        // The operations server refreshes readiness in the background; the first check is awaited here so a
        // test's first probe does not race it.
        readiness.refresh().await;
        Server { base, ops, readiness, clock, audit, links, metrics, sockets, stop: Some(stop), task: Some(task) }
    }

    async fn start() -> Server {
        Server::start_with_redis(&support::redis_url()).await
    }

    /// The signed audit link of `id` as the bot would post it now.
    fn link(&self, id: &RequestId) -> String {
        self.links.link(&self.base, id, self.clock.now())
    }

    async fn get(&self, url: &str) -> (u16, String) {
        let response = reqwest::get(url).await.expect("request");
        let status = response.status().as_u16();
        (status, response.text().await.expect("body"))
    }

    /// Stops the server and waits for it to finish (graceful shutdown returns cleanly).
    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("server task").expect("server stopped cleanly");
        }
    }
}

/// A listener on a free loopback port, and its base URL.
async fn bind() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("local addr"));
    (listener, base)
}

/// The limits `jitgate run` uses by default, with a short header-read timeout for the slow-client tests.
fn limits() -> ServerLimits {
    ServerLimits::public(HEADER_READ_TIMEOUT, Duration::from_secs(30), 1024)
}

fn user(id: &str) -> SlackUserId {
    fixtures::user(id)
}

fn request_with_reason(reason: &str, now: time::OffsetDateTime) -> AccessRequest {
    AccessRequest::create(
        NewRequest {
            id: RequestId::generate(),
            requester: fixtures::requester(),
            reason: Some(reason.to_owned()),
            query: fixtures::rendered_query(),
            policy: fixtures::policy(1, Duration::from_secs(30 * 60)),
            incident: None,
        },
        now,
    )
    .expect("request")
}

/// Requested, approved by the on-call engineer, executed: the three entries of a request that ran.
async fn story(server: &Server, request: &AccessRequest) -> Vec<AuditEntry> {
    let mut entries = vec![server.audit.append(AuditEvent::requested(request)).await.expect("requested")];
    server.clock.advance(time::Duration::minutes(2));
    entries.push(
        server
            .audit
            .append(AuditEvent::Approved {
                request: request.id.clone(),
                approver: user("UONCALL"),
                evidence: OnCallEntry {
                    source: RosterSource::Schedule(fixtures::SCHEDULE.to_owned()),
                    evidence: "PagerDuty schedule PSCHED1 (Primary DB on-call), level 1".to_owned(),
                    until: None,
                },
                approvals: 1,
                required: 1,
            })
            .await
            .expect("approved"),
    );
    server.clock.advance(time::Duration::seconds(3));
    let now = server.clock.now();
    entries.push(
        server
            .audit
            .append(AuditEvent::Executed {
                request: request.id.clone(),
                fingerprint: request.fingerprint.clone(),
                summary: ExecutionSummary {
                    row_count: 17,
                    truncated: false,
                    consumed_capacity: 0.5,
                    result_sha256: "9f".repeat(32),
                    write: None,
                    unmasked: vec![],
                },
                credentials: CredentialEvidence {
                    assumed_role_id: format!("AROAJITGATEEXAMPLE:jit-{}", request.id),
                    access_key_id: "ASIAJITGATEEXAMPLE01".to_owned(),
                    expires_at: now + time::Duration::minutes(15),
                    session_policy: SESSION_POLICY.to_owned(),
                },
            })
            .await
            .expect("executed"),
    );
    entries
}

/// `url` with its query replaced.
fn with_query(url: &str, query: &str) -> String {
    format!("{}?{query}", url.split_once('?').map_or(url, |(path, _)| path))
}

#[tokio::test]
async fn healthz_answers_ok() {
    let server = Server::start().await;
    assert_eq!(server.get(&format!("{}/healthz", server.base)).await, (200, "ok".to_owned()));
    server.stop().await;
}

#[tokio::test]
async fn the_audit_page_of_a_request_that_ran_shows_its_whole_story_verified() {
    let server = Server::start().await;
    let request = fixtures::pending_request(server.clock.now(), 1, Duration::from_secs(30 * 60));
    story(&server, &request).await;

    let (status, page) = server.get(&server.link(&request.id)).await;
    assert_eq!(status, 200, "{page}");
    for expected in [
        request.id.as_str(),
        "UREQ",                                                     // requester
        "INC-812 customer reports missing order",                   // reason
        "orders-by-customer",                                       // runbook
        "Query Orders where customer_id = &quot;C000042&quot;",     // the rendered query's summary, escaped
        "#pk = :pk",                                                // the exact expression
        ":pk = &quot;C000042&quot; (S)",                            // and its bound value
        "UONCALL",                                                  // the approver
        "PagerDuty schedule PSCHED1 (Primary DB on-call), level 1", // with the on-call evidence
        "<th>Rows returned</th><td>17</td>",
        &format!("AROAJITGATEEXAMPLE:jit-{}", request.id),
        "ASIAJITGATEEXAMPLE01",
        &"9f".repeat(32),
        "&quot;dynamodb:LeadingKeys&quot;: [", // the session policy, pretty-printed
        "hashes verified",
        &format!("https://console.aws.amazon.com/cloudtrail/home?region=us-east-1#/events?Username=jit-{}", request.id),
    ] {
        assert!(page.contains(expected), "the page should show {expected:?}:\n{page}");
    }
    assert!(!page.contains("failed the check"), "{page}");
    server.stop().await;
}

#[tokio::test]
async fn bad_links_get_403_and_learn_nothing_about_the_request() {
    let server = Server::start().await;
    let request = fixtures::pending_request(server.clock.now(), 1, Duration::from_secs(30 * 60));
    let other = fixtures::pending_request(server.clock.now(), 1, Duration::from_secs(30 * 60));
    story(&server, &request).await;
    let good = server.link(&request.id);
    let (exp_sig, sig) = {
        let query = good.split_once('?').expect("query").1;
        (query.to_owned(), query.split("sig=").nth(1).expect("sig").to_owned())
    };
    let flipped = format!("{}{}", if sig.starts_with('0') { '1' } else { '0' }, &sig[1..]);
    let exp = exp_sig.split('&').next().expect("exp").to_owned();
    let other_query = server.link(&other.id).split_once('?').expect("query").1.to_owned();

    let bad_links = [
        ("unsigned", with_query(&good, "")),
        ("no sig", with_query(&good, &exp)),
        ("tampered sig", with_query(&good, &format!("{exp}&sig={flipped}"))),
        ("later exp", with_query(&good, &format!("exp=9999999999&sig={sig}"))),
        ("another request's signature", with_query(&good, &other_query)),
        ("lower-case id", good.replace(request.id.as_str(), &request.id.as_str().to_lowercase())),
    ];
    for (what, url) in &bad_links {
        let (status, body) = server.get(url).await;
        assert_eq!(status, 403, "{what}: {url}\n{body}");
        assert_no_request_data(what, &body, &request);
    }

    // The good link works until its time is over, then gets the same refusal.
    assert_eq!(server.get(&good).await.0, 200);
    server.clock.advance(time::Duration::days(30));
    let (status, body) = server.get(&good).await;
    assert_eq!(status, 403, "expired: {body}");
    assert_no_request_data("expired", &body, &request);
    server.stop().await;
}

fn assert_no_request_data(what: &str, body: &str, request: &AccessRequest) {
    for secret in [request.id.as_str(), "UREQ", "INC-812", "orders-by-customer", "AROA", "C000042"] {
        assert!(!body.contains(secret), "{what}: the refusal page shows {secret:?}:\n{body}");
    }
}

#[tokio::test]
async fn an_unknown_request_is_a_404_but_only_behind_a_valid_link() {
    let server = Server::start().await;
    let unknown = RequestId::generate();
    let (status, body) = server.get(&server.link(&unknown)).await;
    assert_eq!(status, 404, "{body}");
    assert!(body.contains(&format!("No audit trail for {unknown}")), "{body}");
    let (status, _) = server.get(&format!("{}/audit/{unknown}", server.base)).await;
    assert_eq!(status, 403, "without a link nobody learns whether a request exists");
    server.stop().await;
}

#[tokio::test]
async fn an_entry_edited_in_the_table_is_named_on_the_page() {
    let server = Server::start().await;
    let request = fixtures::pending_request(server.clock.now(), 1, Duration::from_secs(30 * 60));
    let entries = story(&server, &request).await;
    let executed = &entries[2];

    // Someone with write access to the table lowers the row count of the execution entry.
    let raw = Client::new(&support::aws_config());
    let stored: String = {
        let item = raw
            .get_item()
            .table_name(server.audit.table())
            .key("pk", AttributeValue::S(format!("E#{:020}", executed.seq)))
            .send()
            .await
            .expect("get")
            .item
            .expect("item");
        item.get("event").and_then(|v| v.as_s().ok()).expect("event").clone()
    };
    let forged = stored.replace(r#""row_count":17"#, r#""row_count":1"#);
    assert_ne!(forged, stored);
    raw.update_item()
        .table_name(server.audit.table())
        .key("pk", AttributeValue::S(format!("E#{:020}", executed.seq)))
        .update_expression("SET #e = :e")
        .expression_attribute_names("#e", "event")
        .expression_attribute_values(":e", AttributeValue::S(forged))
        .send()
        .await
        .expect("edit");

    let (status, page) = server.get(&server.link(&request.id)).await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains(&format!("entry {} failed the check: its content does not match its hash", executed.seq)),
        "{page}"
    );
    assert!(!page.contains("hashes verified"), "{page}");
    assert!(page.contains("not verified"), "the edited entry is marked where it is shown: {page}");
    server.stop().await;
}

#[tokio::test]
async fn markup_in_a_reason_is_escaped() {
    let server = Server::start().await;
    let request = request_with_reason(r#"<script>alert("pwned")</script> & <b>bold</b>"#, server.clock.now());
    server.audit.append(AuditEvent::requested(&request)).await.expect("requested");
    let (status, page) = server.get(&server.link(&request.id)).await;
    assert_eq!(status, 200, "{page}");
    assert!(!page.contains("<script"), "{page}");
    assert!(!page.contains("<b>bold"), "{page}");
    assert!(
        page.contains("&lt;script&gt;alert(&quot;pwned&quot;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;"),
        "{page}"
    );
    server.stop().await;
}

#[tokio::test]
async fn responses_forbid_scripts_caching_and_referrers() {
    let server = Server::start().await;
    let request = fixtures::pending_request(server.clock.now(), 1, Duration::from_secs(30 * 60));
    story(&server, &request).await;
    let good = server.link(&request.id);
    // The audit page itself (a signed link is in its URL, its content is the trail) and a refused link matter
    // more than the probe: each answer carries the headers, whatever its status.
    for (what, url, status) in [
        ("healthz", format!("{}/healthz", server.base), 200),
        ("audit page", good.clone(), 200),
        ("bad link", with_query(&good, "exp=1&sig=00"), 403),
    ] {
        let response = reqwest::get(&url).await.expect("request");
        assert_eq!(response.status().as_u16(), status, "{what}");
        let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        assert_eq!(header("referrer-policy").as_deref(), Some("no-referrer"), "{what}");
        assert_eq!(header("cache-control").as_deref(), Some("no-store"), "{what}");
        assert!(header("content-security-policy").is_some_and(|csp| csp.starts_with("default-src 'none'")), "{what}");
    }
    server.stop().await;
}

#[tokio::test]
async fn readyz_names_each_check_and_what_is_down() {
    let proxy = RedisProxy::start(&support::redis_url()).await;
    let server = Server::start_with_redis(&proxy.url()).await;
    let ready = format!("{}/readyz", server.ops);

    let (status, body) = server.get(&ready).await;
    assert_eq!(status, 200, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(json["ready"], true);
    assert_eq!(checks(&json), [("redis", true), ("audit_table", true), ("slack_sockets", true)]);

    // Redis goes away and the last Slack socket drops. A probe answers from the last background check, so it
    // notices Redis only at the next refresh (here forced instead of waited for; a background refresh may also
    // land in between, so Redis's state is not asserted yet); the sockets it reads live.
    proxy.cut();
    server.sockets.store(0, Ordering::SeqCst);
    let (status, body) = server.get(&ready).await;
    assert_eq!(status, 503, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(checks(&json)[1..], [("audit_table", true), ("slack_sockets", false)]);
    server.readiness.refresh().await;
    let (status, body) = server.get(&ready).await;
    assert_eq!(status, 503, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(json["ready"], false);
    assert_eq!(checks(&json), [("redis", false), ("audit_table", true), ("slack_sockets", false)]);
    assert!(json["checks"][0]["detail"].as_str().is_some_and(|d| !d.is_empty()), "{body}");
    assert_eq!(json["checks"][2]["detail"], "no socket-mode connection is up");
    server.stop().await;
}

#[tokio::test]
async fn readiness_is_down_until_first_checked_and_when_its_checks_go_stale() {
    let store = RequestStore::connect(&support::redis_url(), StoreSettings::default()).await.expect("connect");
    let clock: SharedClock = ManualClock::new(fixtures::wall_clock_now());
    let audit = AuditLog::new(&support::aws_config(), support::unique("ready-audit"), clock);
    audit.ensure_table().await.expect("audit table");
    let readiness = ReadinessMonitor::new(store, audit, Arc::new(|| 1));

    let fresh = readiness.current();
    assert!(!fresh.ready, "nothing checked yet: {fresh:?}");
    assert_eq!(fresh.checks[0].detail.as_deref(), Some("not checked yet"));

    readiness.refresh().await;
    assert!(readiness.current().ready, "{:?}", readiness.current());

    // A monitor that stopped refreshing must not keep vouching for the backends.
    let later = std::time::Instant::now() + jitgate::http::readiness::STALE_AFTER + Duration::from_secs(1);
    let stale = readiness.current_at(later);
    assert!(!stale.ready, "{stale:?}");
    assert!(stale.checks[0].detail.as_deref().is_some_and(|d| d.starts_with("last checked ")), "{stale:?}");
}

#[tokio::test]
async fn probes_and_metrics_are_not_on_the_public_listener_and_audit_pages_not_on_the_operations_one() {
    let server = Server::start().await;
    let request = fixtures::pending_request(server.clock.now(), 1, Duration::from_secs(30 * 60));
    story(&server, &request).await;
    for path in ["/readyz", "/metrics"] {
        assert_eq!(server.get(&format!("{}{path}", server.base)).await.0, 404, "{path} on the public listener");
        assert_eq!(server.get(&format!("{}{path}", server.ops)).await.0, 200, "{path} on the operations listener");
    }
    let link = server.link(&request.id);
    assert_eq!(server.get(&link).await.0, 200);
    assert_eq!(server.get(&link.replacen(&server.base, &server.ops, 1)).await.0, 404);
    server.stop().await;
}

/// How many slow clients the flood test holds open: far more than a pod's probes and visitors.
const SLOW_CLIENTS: usize = 500;

#[tokio::test]
async fn slow_clients_do_not_block_the_audit_page_or_the_probes_and_are_closed_by_the_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let server = Server::start().await;
    let request = fixtures::pending_request(server.clock.now(), 1, Duration::from_secs(30 * 60));
    story(&server, &request).await;
    let public: SocketAddr = server.base.trim_start_matches("http://").parse().expect("address");

    // Each sends half a request head and then nothing, as a slow-loris client does.
    let mut slow = Vec::with_capacity(SLOW_CLIENTS);
    for i in 0..SLOW_CLIENTS {
        let mut stream = tokio::net::TcpStream::connect(public).await.expect("connect");
        stream
            .write_all(format!("GET /audit/{i} HTTP/1.1\r\nHost: jitgate\r\nX-Slow: ").as_bytes())
            .await
            .expect("write");
        slow.push(stream);
    }

    // While they hang on, a real visitor's audit page and the probes answer.
    let (status, page) = server.get(&server.link(&request.id)).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(server.get(&format!("{}/healthz", server.ops)).await.0, 200);
    assert_eq!(server.get(&format!("{}/healthz", server.base)).await.0, 200);
    assert_eq!(server.get(&format!("{}/readyz", server.ops)).await.0, 200);

    // And every slow one is closed by the server, having been routed nowhere (no 200, no 403 page).
    let closed = slow.into_iter().map(|mut stream| async move {
        let mut answer = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(60), stream.read_to_end(&mut answer)).await;
        let text = String::from_utf8_lossy(&answer).into_owned();
        (read.is_ok(), text)
    });
    for (closed, answer) in futures::future::join_all(closed).await {
        assert!(closed, "a slow connection was still open after the header-read timeout");
        assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 408"), "{answer}");
    }
    server.stop().await;
}

/// Each check's name and whether it is up, in order.
fn checks(json: &serde_json::Value) -> Vec<(&str, bool)> {
    json["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .map(|c| (c["name"].as_str().unwrap_or_default(), c["up"].as_bool().unwrap_or_default()))
        .collect()
}

#[tokio::test]
async fn metrics_shows_a_recorded_counter() {
    let server = Server::start().await;
    server.metrics.request_outcome("orders-by-customer", "succeeded");
    let (status, body) = server.get(&format!("{}/metrics", server.ops)).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.lines().any(|l| l == r#"jitgate_requests_total{runbook="orders-by-customer",outcome="succeeded"} 1"#),
        "{body}"
    );
    server.stop().await;
}

/// Where the browser check finds Chromium, or why it may not be skipped. Wherever Chromium is installed the check
/// runs; without it, it fails in CI (`CI` set to anything but empty, `false` or `0`: CI systems set `true`, `1` or
/// their own name) and is skipped, with a notice, on a developer's machine.
fn chromium_for_the_browser_check(installed: Option<PathBuf>, ci: Option<&str>) -> Result<Option<PathBuf>, String> {
    let in_ci = ci.is_some_and(|v| !matches!(v.trim(), "" | "false" | "0"));
    match installed {
        Some(path) => Ok(Some(path)),
        None if in_ci => Err("/usr/bin/chromium is missing in CI: scripts/install-deps.sh installs it \
                              (apt-get install chromium); the browser check must not be skipped there"
            .to_owned()),
        None => Ok(None),
    }
}

#[test]
fn the_browser_check_is_never_skipped_in_ci() {
    let chromium = || Some(PathBuf::from("/usr/bin/chromium"));
    for ci in [Some("true"), Some("1"), Some("woodpecker"), Some("TRUE")] {
        assert!(chromium_for_the_browser_check(None, ci).is_err(), "CI={ci:?}");
        assert_eq!(chromium_for_the_browser_check(chromium(), ci), Ok(chromium()), "CI={ci:?}");
    }
    for ci in [None, Some(""), Some("false"), Some("0")] {
        assert_eq!(chromium_for_the_browser_check(None, ci), Ok(None), "CI={ci:?}");
        assert_eq!(chromium_for_the_browser_check(chromium(), ci), Ok(chromium()), "runs wherever installed");
    }
}

/// The audit page in a real browser: it renders (screenshot kept in `test-artifacts/`) and its DOM holds the
/// request id. Chromium comes from `scripts/install-deps.sh`; without it the test fails in CI and is skipped,
/// with a notice, on a developer's machine.
#[tokio::test]
async fn the_audit_page_renders_in_a_headless_browser() {
    let installed = Some(PathBuf::from("/usr/bin/chromium")).filter(|p| p.exists());
    let ci = std::env::var("CI").ok();
    let Some(chromium) = chromium_for_the_browser_check(installed, ci.as_deref()).unwrap_or_else(|e| panic!("{e}"))
    else {
        eprintln!("NOTICE: /usr/bin/chromium not found; skipping the browser check (run scripts/install-deps.sh)");
        return;
    };
    let chromium = chromium.as_path();
    let server = Server::start().await;
    let request = fixtures::pending_request(server.clock.now(), 1, Duration::from_secs(30 * 60));
    story(&server, &request).await;
    let url = server.link(&request.id);

    let artifacts = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("test-artifacts");
    std::fs::create_dir_all(&artifacts).expect("test-artifacts");
    let screenshot = artifacts.join("audit-page.png");
    let _ = std::fs::remove_file(&screenshot);

    let shot = chromium_run(chromium, &[format!("--screenshot={}", screenshot.display()), url.clone()]).await;
    assert!(shot.status.success(), "chromium --screenshot failed:\n{}", String::from_utf8_lossy(&shot.stderr));
    let png = std::fs::read(&screenshot).expect("the screenshot was written");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "a PNG file");
    // IHDR width and height: the window size asked for.
    assert_eq!(u32::from_be_bytes([png[16], png[17], png[18], png[19]]), 1200);
    assert_eq!(u32::from_be_bytes([png[20], png[21], png[22], png[23]]), 1600);
    // A blank 1200x1600 PNG compresses to a few KB; a rendered page with text is far larger.
    assert!(png.len() > 30_000, "the screenshot is nearly empty ({} bytes)", png.len());

    let dump = chromium_run(chromium, &["--dump-dom".to_owned(), url]).await;
    assert!(dump.status.success(), "chromium --dump-dom failed:\n{}", String::from_utf8_lossy(&dump.stderr));
    let dom = String::from_utf8_lossy(&dump.stdout);
    assert!(dom.contains(&format!("<h1>{}</h1>", request.id)), "{dom}");
    assert!(dom.contains("hashes verified"), "{dom}");
    server.stop().await;
}

/// Runs headless Chromium with its own throw-away profile; no network beyond the page itself.
async fn chromium_run(chromium: &Path, args: &[String]) -> std::process::Output {
    let profile = tempfile::tempdir().expect("profile dir");
    let mut command = tokio::process::Command::new(chromium);
    command
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1200,1600",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .kill_on_drop(true);
    tokio::time::timeout(Duration::from_secs(120), command.output())
        .await
        .expect("chromium finished within 2 minutes")
        .expect("chromium ran")
}
