//! A local PagerDuty REST API v2 server: the parts jitgate reads to learn who is on call.
//!
//! Faithful to PagerDuty's published schema (`PagerDuty/api-schema`, `reference/REST/openapiv3.json`) and the
//! example payloads it contains: `Authorization: Token token=<key>` on every request, `GET /oncalls` with its
//! array filters (`schedule_ids[]`, `escalation_policy_ids[]`, `user_ids[]`, `include[]`, literal or
//! `%5B%5D`-encoded brackets), the `since`/`until` overlap window, `earliest`, classic offset pagination
//! (`limit`/`offset`/`more`/`total`), `GET /users/{id}`, `GET /schedules/{id}`, `GET /escalation_policies/{id}` and
//! the generic error body `{"error": {"message", "code", "errors"}}`.
//!
//! A test builds the world (users, schedules, escalation policies, on-call shifts), sets the emulator's "now" when
//! a request leaves `since`/`until` out, injects faults (server down, 429 with `ratelimit-*` headers, any status)
//! and reads back every request the client made.
//!
//! Where the real service is not documented the emulator picks the plain reading and says so: filters combine
//! with AND, a page holds at most 100 entries, error codes other than 2100 (Not Found) are not confirmed.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The API key the emulator accepts unless a test adds others.
pub const API_KEY: &str = "u+emulated-pagerduty-key";
/// PagerDuty's page size when `limit` is not given (echoed as 25 in the schema's example).
const DEFAULT_LIMIT: usize = 25;
/// Largest page the emulator serves; PagerDuty's classic pagination documents 100.
const MAX_LIMIT: usize = 100;
/// Where `html_url` links point; the real service uses the account's subdomain.
const WEB_BASE: &str = "https://emulated.pagerduty.com";

/// A PagerDuty user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub name: String,
    pub email: String,
}

/// One on-call shift: `user` is on call for `escalation_policy` at `escalation_level`, through `schedule` (or
/// directly, when `schedule` is `None`), from `start` to `end` (`None` = permanent / never goes off call).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnCall {
    pub user: String,
    pub escalation_policy: String,
    pub escalation_level: u32,
    pub schedule: Option<String>,
    pub start: Option<OffsetDateTime>,
    pub end: Option<OffsetDateTime>,
}

impl OnCall {
    /// A permanent on-call of `user` at `level` of `escalation_policy`, not through a schedule.
    pub fn new(user: &str, escalation_policy: &str, level: u32) -> OnCall {
        OnCall {
            user: user.to_owned(),
            escalation_policy: escalation_policy.to_owned(),
            escalation_level: level,
            schedule: None,
            start: None,
            end: None,
        }
    }

    /// The shift comes from this schedule (a layer of the escalation policy's rule at this level).
    pub fn via_schedule(mut self, schedule: &str) -> OnCall {
        self.schedule = Some(schedule.to_owned());
        self
    }

    /// The shift runs from `start` (inclusive) to `end` (exclusive).
    pub fn between(mut self, start: OffsetDateTime, end: OffsetDateTime) -> OnCall {
        self.start = Some(start);
        self.end = Some(end);
        self
    }
}

/// One request as the emulator received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    /// The query string exactly as sent (brackets possibly percent-encoded).
    pub raw_query: String,
    /// The decoded query pairs, in order.
    pub query: Vec<(String, String)>,
    pub authorization: Option<String>,
    pub accept: Option<String>,
    /// The `From` header (PagerDuty requires it on writes).
    pub from: Option<String>,
}

impl RecordedRequest {
    /// Every value of a query parameter (`name` as decoded, e.g. `schedule_ids[]`).
    pub fn params(&self, name: &str) -> Vec<&str> {
        self.query.iter().filter(|(k, _)| k == name).map(|(_, v)| v.as_str()).collect()
    }

    /// The first value of a query parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params(name).into_iter().next()
    }
}

/// A PagerDuty incident on one service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incident {
    pub id: String,
    pub number: u64,
    pub title: String,
    /// `triggered`, `acknowledged` or `resolved`.
    pub status: String,
    pub service: String,
    pub escalation_policy: Option<String>,
}

/// A note added to an incident's timeline, with the `From` header it was made with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub incident: String,
    pub from: String,
    pub content: String,
}

#[derive(Debug, Clone)]
enum Fault {
    RateLimited { reset_secs: u64 },
    Status(u16),
}

#[derive(Debug)]
struct World {
    api_keys: BTreeSet<String>,
    users: BTreeMap<String, User>,
    schedules: BTreeMap<String, String>,
    escalation_policies: BTreeMap<String, String>,
    oncalls: Vec<OnCall>,
    services: BTreeMap<String, String>,
    incidents: BTreeMap<String, Incident>,
    notes: Vec<Note>,
    now: Option<OffsetDateTime>,
    account_offset: UtcOffset,
    faults: VecDeque<Fault>,
    requests: Vec<RecordedRequest>,
    /// Added to every call before it is answered, to stand in for the network and PagerDuty's own time.
    latency: Duration,
}

#[derive(Debug)]
struct Shared {
    base_url: String,
    world: Mutex<World>,
    /// Woken on every note added, for tests waiting for notes written by a background task.
    note_added: tokio::sync::Notify,
}

impl Shared {
    fn world(&self) -> MutexGuard<'_, World> {
        // A panic while holding the lock cannot leave the world half-updated in a way that matters to a test.
        self.world.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[derive(Debug)]
struct Running {
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

/// The emulated PagerDuty server, listening on a loopback port until dropped.
#[derive(Debug)]
pub struct FakePagerDuty {
    addr: SocketAddr,
    shared: Arc<Shared>,
    running: Mutex<Option<Running>>,
}

impl FakePagerDuty {
    /// Starts the server on 127.0.0.1 with a free port, an empty world and the real clock as "now".
    pub async fn start() -> FakePagerDuty {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind a loopback port for the PagerDuty emulator");
        let addr = listener.local_addr().expect("local address of a bound listener");
        let shared = Arc::new(Shared {
            base_url: format!("http://{addr}"),
            world: Mutex::new(World {
                api_keys: BTreeSet::from([API_KEY.to_owned()]),
                users: BTreeMap::new(),
                schedules: BTreeMap::new(),
                escalation_policies: BTreeMap::new(),
                oncalls: Vec::new(),
                services: BTreeMap::new(),
                incidents: BTreeMap::new(),
                notes: Vec::new(),
                now: None,
                account_offset: UtcOffset::UTC,
                faults: VecDeque::new(),
                requests: Vec::new(),
                latency: Duration::ZERO,
            }),
            note_added: tokio::sync::Notify::new(),
        });
        let running = serve(listener, shared.clone());
        FakePagerDuty { addr, shared, running: Mutex::new(Some(running)) }
    }

    /// `http://127.0.0.1:PORT`, to use as the PagerDuty API base URL.
    pub fn base_url(&self) -> String {
        self.shared.base_url.clone()
    }

    /// The API key the emulator accepts by default ([`API_KEY`]).
    pub fn api_key(&self) -> &'static str {
        API_KEY
    }

    /// Accepts one more API key.
    pub fn add_api_key(&self, key: &str) {
        self.shared.world().api_keys.insert(key.to_owned());
    }

    /// Answers every later call `latency` after it arrives (benchmarks use PagerDuty's real round trip, ~200 ms).
    pub fn set_latency(&self, latency: Duration) {
        self.shared.world().latency = latency;
    }

    pub fn add_user(&self, id: &str, name: &str, email: &str) {
        let user = User { id: id.to_owned(), name: name.to_owned(), email: email.to_owned() };
        self.shared.world().users.insert(id.to_owned(), user);
    }

    pub fn add_schedule(&self, id: &str, name: &str) {
        self.shared.world().schedules.insert(id.to_owned(), name.to_owned());
    }

    pub fn add_escalation_policy(&self, id: &str, name: &str) {
        self.shared.world().escalation_policies.insert(id.to_owned(), name.to_owned());
    }

    /// Adds an on-call shift. Its user, escalation policy and schedule must have been added first.
    pub fn add_oncall(&self, oncall: OnCall) {
        let mut world = self.shared.world();
        assert!(world.users.contains_key(&oncall.user), "add user {} before its on-call", oncall.user);
        assert!(
            world.escalation_policies.contains_key(&oncall.escalation_policy),
            "add escalation policy {} before its on-call",
            oncall.escalation_policy
        );
        if let Some(schedule) = &oncall.schedule {
            assert!(world.schedules.contains_key(schedule), "add schedule {schedule} before its on-call");
        }
        world.oncalls.push(oncall);
    }

    pub fn add_service(&self, id: &str, name: &str) {
        self.shared.world().services.insert(id.to_owned(), name.to_owned());
    }

    /// Adds an incident (or replaces the one with its id). Its service must have been added first.
    pub fn add_incident(&self, incident: Incident) {
        let mut world = self.shared.world();
        assert!(world.services.contains_key(&incident.service), "add service {} before its incident", incident.service);
        world.incidents.insert(incident.id.clone(), incident);
    }

    /// Changes an incident's status (`triggered`, `acknowledged`, `resolved`).
    pub fn set_incident_status(&self, id: &str, status: &str) {
        let mut world = self.shared.world();
        let incident = world.incidents.get_mut(id).unwrap_or_else(|| panic!("no incident {id}"));
        incident.status = status.to_owned();
    }

    /// Every note added so far, oldest first.
    pub fn notes(&self) -> Vec<Note> {
        self.shared.world().notes.clone()
    }

    /// Every note, once there are at least `count` (jitgate writes them in the background); panics naming what
    /// arrived if they do not within `within`.
    pub async fn wait_for_notes(&self, count: usize, within: std::time::Duration) -> Vec<Note> {
        let wait = async {
            loop {
                // Registered before looking, so a note added in between still wakes this waiter.
                let added = self.shared.note_added.notified();
                let notes = self.notes();
                if notes.len() >= count {
                    return notes;
                }
                added.await;
            }
        };
        match tokio::time::timeout(within, wait).await {
            Ok(notes) => notes,
            Err(_) => {
                panic!("fake PagerDuty: {} of {count} notes after {within:?}: {:?}", self.notes().len(), self.notes())
            }
        }
    }

    /// Removes every on-call shift (users, schedules and policies stay).
    pub fn clear_oncalls(&self) {
        self.shared.world().oncalls.clear();
    }

    /// Fixes "now" (the default of `since`/`until`) instead of reading the real clock.
    pub fn set_now(&self, now: OffsetDateTime) {
        self.shared.world().now = Some(now);
    }

    /// Renders times at this offset, like an account whose time zone is not UTC (the schema's examples use -05:00).
    pub fn set_account_offset(&self, offset: UtcOffset) {
        self.shared.world().account_offset = offset;
    }

    /// The next `n` requests get 429 Too Many Requests with `ratelimit-reset: reset_secs`.
    pub fn rate_limit_next(&self, n: usize, reset_secs: u64) {
        let mut world = self.shared.world();
        world.faults.extend(std::iter::repeat_n(Fault::RateLimited { reset_secs }, n));
    }

    /// The next request gets `status` with the generic error body (calls queue up in order).
    pub fn fail_next(&self, status: u16) {
        self.shared.world().faults.push_back(Fault::Status(status));
    }

    /// Stops listening and closes open connections: clients now get "connection refused".
    pub async fn go_down(&self) {
        let running = self.running.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take();
        if let Some(Running { stop, task }) = running {
            let _ = stop.send(());
            // Wait until every connection is closed, so the next client request cannot reach the old server.
            let _ = task.await;
        }
    }

    /// Listens again on the same port after [`FakePagerDuty::go_down`].
    pub async fn come_back(&self) {
        if self.running.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).is_some() {
            return;
        }
        let listener = TcpListener::bind(self.addr).await.expect("rebind the PagerDuty emulator's port");
        let running = serve(listener, self.shared.clone());
        *self.running.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(running);
    }

    /// Every request received so far, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.world().requests.clone()
    }

    /// The requests to one path (e.g. `/oncalls`).
    pub fn requests_to(&self, path: &str) -> Vec<RecordedRequest> {
        self.requests().into_iter().filter(|r| r.path == path).collect()
    }

    pub fn clear_requests(&self) {
        self.shared.world().requests.clear();
    }
}

impl Drop for FakePagerDuty {
    fn drop(&mut self) {
        if let Some(running) = self.running.get_mut().unwrap_or_else(|poisoned| poisoned.into_inner()).take() {
            let _ = running.stop.send(());
        }
    }
}

fn serve(listener: TcpListener, shared: Arc<Shared>) -> Running {
    let app = Router::new()
        .route("/oncalls", get(list_oncalls))
        .route("/users/{id}", get(get_user))
        .route("/schedules/{id}", get(get_schedule))
        .route("/escalation_policies/{id}", get(get_escalation_policy))
        .route("/incidents/{id}", get(get_incident))
        .route("/incidents/{id}/notes", post(create_note))
        .fallback(|| async { error(StatusCode::NOT_FOUND, 2100, "Not Found", &[]) })
        .layer(middleware::from_fn_with_state(shared.clone(), gate))
        .with_state(shared);
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await;
    });
    Running { stop, task }
}

/// Records the request, then applies injected faults, then checks the API key, like the real front door.
async fn gate(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let raw_query = request.uri().query().unwrap_or_default().to_owned();
    let authorization = header_text(request.headers(), header::AUTHORIZATION);
    let recorded = RecordedRequest {
        method: request.method().to_string(),
        path: request.uri().path().to_owned(),
        query: decode_query(&raw_query).unwrap_or_default(),
        raw_query,
        authorization: authorization.clone(),
        accept: header_text(request.headers(), header::ACCEPT),
        from: header_text(request.headers(), header::FROM),
    };
    let latency = shared.world().latency;
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let (fault, authorized) = {
        let mut world = shared.world();
        world.requests.push(recorded);
        let key = authorization.as_deref().and_then(|value| value.strip_prefix("Token token="));
        (world.faults.pop_front(), key.is_some_and(|key| world.api_keys.contains(key)))
    };
    match fault {
        Some(Fault::RateLimited { reset_secs }) => {
            let mut response = error(StatusCode::TOO_MANY_REQUESTS, 2020, "Rate Limit Exceeded", &[]);
            let headers = response.headers_mut();
            headers.insert("ratelimit-limit", HeaderValue::from_static("960"));
            headers.insert("ratelimit-remaining", HeaderValue::from_static("0"));
            headers.insert("ratelimit-reset", HeaderValue::from(reset_secs));
            return response;
        }
        Some(Fault::Status(status)) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return error(status, 2000, status.canonical_reason().unwrap_or("Error"), &[]);
        }
        None => {}
    }
    if !authorized {
        return error(
            StatusCode::UNAUTHORIZED,
            2006,
            "Authentication failed",
            &["Provide a valid API key in the Authorization header as `Token token=<API_KEY>`."],
        );
    }
    next.run(request).await
}

fn header_text(headers: &HeaderMap, name: header::HeaderName) -> Option<String> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

/// The generic PagerDuty error body.
fn error(status: StatusCode, code: u32, message: &str, errors: &[&str]) -> Response {
    let mut body = json!({ "message": message, "code": code });
    if !errors.is_empty() {
        body["errors"] = json!(errors);
    }
    (status, axum::Json(json!({ "error": body }))).into_response()
}

fn invalid(detail: &str) -> Response {
    error(StatusCode::BAD_REQUEST, 2001, "Invalid Input Provided", &[detail])
}

/// Form-decodes a query string; `schedule_ids%5B%5D` decodes to `schedule_ids[]` like the literal form.
fn decode_query(raw: &str) -> Result<Vec<(String, String)>, serde_urlencoded::de::Error> {
    serde_urlencoded::from_str(raw)
}

#[derive(Debug, Default)]
struct OnCallsQuery {
    schedules: BTreeSet<String>,
    escalation_policies: BTreeSet<String>,
    users: BTreeSet<String>,
    include: BTreeSet<String>,
    since: Option<OffsetDateTime>,
    until: Option<OffsetDateTime>,
    limit: Option<usize>,
    offset: usize,
    total: bool,
    earliest: bool,
}

/// Parses the query of `GET /oncalls`; the error is the detail for a 400 response.
fn parse_oncalls_query(raw: &str) -> Result<OnCallsQuery, String> {
    let pairs = decode_query(raw).map_err(|_| "The query string is not valid form encoding.".to_owned())?;
    let mut query = OnCallsQuery::default();
    let time = |name: &str, value: &str| {
        OffsetDateTime::parse(value, &Rfc3339).map_err(|_| format!("{name} is not a valid ISO 8601 date"))
    };
    let flag = |name: &str, value: &str| match value {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(format!("{name} must be true or false")),
    };
    for (key, value) in pairs {
        match key.as_str() {
            "schedule_ids[]" => {
                query.schedules.insert(value);
            }
            "escalation_policy_ids[]" => {
                query.escalation_policies.insert(value);
            }
            "user_ids[]" => {
                query.users.insert(value);
            }
            "include[]" => {
                if !["escalation_policies", "users", "schedules"].contains(&value.as_str()) {
                    return Err("Include must be one of escalation_policies, users, schedules".to_owned());
                }
                query.include.insert(value);
            }
            "since" => query.since = Some(time("Since", &value)?),
            "until" => query.until = Some(time("Until", &value)?),
            "limit" => {
                query.limit = Some(value.parse().map_err(|_| "Limit must be a non-negative integer".to_owned())?);
            }
            "offset" => query.offset = value.parse().map_err(|_| "Offset must be a non-negative integer".to_owned())?,
            "total" => query.total = flag("Total", &value)?,
            "earliest" => query.earliest = flag("Earliest", &value)?,
            // `time_zone` only changes rendering; unknown parameters are ignored, as by most REST services.
            _ => {}
        }
    }
    Ok(query)
}

async fn list_oncalls(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let query = match parse_oncalls_query(request.uri().query().unwrap_or_default()) {
        Ok(query) => query,
        Err(detail) => return invalid(&detail),
    };
    let world = shared.world();
    let now = world.now.unwrap_or_else(OffsetDateTime::now_utc);
    let since = query.since.unwrap_or(now);
    let until = query.until.unwrap_or(now);
    if until < since {
        return invalid("The until time cannot be before the since time.");
    }
    let mut matching: Vec<&OnCall> = world
        .oncalls
        .iter()
        .filter(|o| query.schedules.is_empty() || o.schedule.as_ref().is_some_and(|s| query.schedules.contains(s)))
        .filter(|o| query.escalation_policies.is_empty() || query.escalation_policies.contains(&o.escalation_policy))
        .filter(|o| query.users.is_empty() || query.users.contains(&o.user))
        // "If an on-call period overlaps with the range, it will be included": start inclusive, end exclusive.
        .filter(|o| o.start.is_none_or(|start| start <= until) && o.end.is_none_or(|end| end > since))
        .collect();
    if query.earliest {
        // Only the earliest shift of each (policy, level, user); a permanent one (no start) is the earliest.
        let mut seen = BTreeSet::new();
        matching.sort_by_key(|o| (o.start.is_some(), o.start));
        matching.retain(|o| seen.insert((o.escalation_policy.clone(), o.escalation_level, o.user.clone())));
    }
    matching.sort_by(|a, b| {
        let key = |o: &OnCall| (o.escalation_policy.clone(), o.escalation_level, o.schedule.clone(), o.start);
        (key(a), &a.user).cmp(&(key(b), &b.user))
    });
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT).min(MAX_LIMIT);
    let total = matching.len();
    let page: Vec<Value> = matching
        .iter()
        .skip(query.offset)
        .take(limit)
        .map(|o| render_oncall(&shared.base_url, &world, o, &query.include))
        .collect();
    axum::Json(json!({
        "oncalls": page,
        "limit": limit,
        "offset": query.offset,
        "more": query.offset.saturating_add(limit) < total,
        "total": if query.total { json!(total) } else { Value::Null },
    }))
    .into_response()
}

async fn get_user(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let world = shared.world();
    match world.users.get(&id) {
        Some(user) => axum::Json(json!({ "user": full_user(&shared.base_url, &world, user) })).into_response(),
        None => not_found(),
    }
}

async fn get_schedule(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let world = shared.world();
    if !world.schedules.contains_key(&id) {
        return not_found();
    }
    axum::Json(json!({ "schedule": full_schedule(&shared.base_url, &world, &id) })).into_response()
}

async fn get_escalation_policy(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let world = shared.world();
    if !world.escalation_policies.contains_key(&id) {
        return not_found();
    }
    axum::Json(json!({ "escalation_policy": full_escalation_policy(&shared.base_url, &world, &id) })).into_response()
}

/// The incident with this id, or with this incident number (the real API accepts either in the path).
fn find_incident<'a>(world: &'a World, id_or_number: &str) -> Option<&'a Incident> {
    world.incidents.get(id_or_number).or_else(|| {
        let number: u64 = id_or_number.parse().ok()?;
        world.incidents.values().find(|i| i.number == number)
    })
}

async fn get_incident(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let world = shared.world();
    match find_incident(&world, &id) {
        Some(incident) => {
            axum::Json(json!({ "incident": full_incident(&shared.base_url, &world, incident) })).into_response()
        }
        None => not_found(),
    }
}

/// `POST /incidents/{id}/notes`: `From` must be the email of a user of the account; the body `{"note":
/// {"content": "…"}}`.
async fn create_note(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let mut world = shared.world();
    let Some(incident) = find_incident(&world, &id).map(|i| i.id.clone()) else { return not_found() };
    let from = headers.get("from").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let Some(user) = world.users.values().find(|u| u.email.eq_ignore_ascii_case(&from)).cloned() else {
        return invalid("The From header must be the email address of a valid user associated with the account.");
    };
    let content = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v["note"]["content"].as_str().map(str::to_owned))
        .filter(|c| !c.trim().is_empty());
    let Some(content) = content else { return invalid("Note content is required.") };
    world.notes.push(Note { incident: incident.clone(), from, content: content.clone() });
    shared.note_added.notify_waiters();
    let created = world.now.unwrap_or_else(OffsetDateTime::now_utc);
    let note = json!({
        "id": format!("PN{:05}", world.notes.len()),
        "user": reference(&shared.base_url, "user", "users", &user.id, &user.name),
        "channel": { "summary": "The PagerDuty website or APIs" },
        "content": content,
        "created_at": render_time(&world, created),
    });
    (StatusCode::CREATED, axum::Json(json!({ "note": note }))).into_response()
}

/// The Incident object, shaped like `samples/pagerduty/incidents.get.derived.json`.
fn full_incident(base: &str, world: &World, incident: &Incident) -> Value {
    let id = &incident.id;
    let service =
        reference(base, "service", "services", &incident.service, name_of(&world.services, &incident.service));
    let service_link = format!("{WEB_BASE}/service-directory/{}", incident.service);
    let mut service = service;
    service["html_url"] = json!(service_link);
    let policy = incident.escalation_policy.as_deref().map_or(Value::Null, |p| {
        reference(base, "escalation_policy", "escalation_policies", p, name_of(&world.escalation_policies, p))
    });
    let at = render_time(world, world.now.unwrap_or_else(OffsetDateTime::now_utc));
    json!({
        "id": id,
        "type": "incident",
        "summary": format!("[#{}] {}", incident.number, incident.title),
        "self": format!("{base}/incidents/{id}"),
        "html_url": format!("{WEB_BASE}/incidents/{id}"),
        "incident_number": incident.number,
        "title": incident.title,
        "created_at": at,
        "updated_at": at,
        "status": incident.status,
        "incident_key": format!("key-{id}"),
        "service": service,
        "assignments": [],
        "acknowledgements": [],
        "last_status_change_at": at,
        "escalation_policy": policy,
        "teams": [],
        "urgency": "high",
    })
}

fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, 2100, "Not Found", &[])
}

fn render_oncall(base: &str, world: &World, oncall: &OnCall, include: &BTreeSet<String>) -> Value {
    let user = match world.users.get(&oncall.user) {
        Some(user) if include.contains("users") => full_user(base, world, user),
        Some(user) => reference(base, "user", "users", &user.id, &user.name),
        None => Value::Null,
    };
    let schedule = match &oncall.schedule {
        Some(id) if include.contains("schedules") => full_schedule(base, world, id),
        Some(id) => reference(base, "schedule", "schedules", id, name_of(&world.schedules, id)),
        // A direct user target of the escalation rule has no schedule.
        None => Value::Null,
    };
    let policy_id = &oncall.escalation_policy;
    let escalation_policy = if include.contains("escalation_policies") {
        full_escalation_policy(base, world, policy_id)
    } else {
        reference(
            base,
            "escalation_policy",
            "escalation_policies",
            policy_id,
            name_of(&world.escalation_policies, policy_id),
        )
    };
    json!({
        "user": user,
        "schedule": schedule,
        "escalation_policy": escalation_policy,
        "escalation_level": oncall.escalation_level,
        "start": oncall.start.map(|t| render_time(world, t)),
        "end": oncall.end.map(|t| render_time(world, t)),
    })
}

fn name_of<'a>(names: &'a BTreeMap<String, String>, id: &str) -> &'a str {
    names.get(id).map(String::as_str).unwrap_or_default()
}

/// PagerDuty renders times in the account's time zone, to the second.
fn render_time(world: &World, at: OffsetDateTime) -> String {
    let at = at.to_offset(world.account_offset).replace_nanosecond(0).unwrap_or(at);
    at.format(&Rfc3339).unwrap_or_default()
}

/// `{id, type: "<kind>_reference", summary, self, html_url}`.
fn reference(base: &str, kind: &str, collection: &str, id: &str, summary: &str) -> Value {
    json!({
        "id": id,
        "type": format!("{kind}_reference"),
        "summary": summary,
        "self": format!("{base}/{collection}/{id}"),
        "html_url": format!("{WEB_BASE}/{collection}/{id}"),
    })
}

/// The full User object, shaped like the schema's `GET /users/{id}` example.
fn full_user(base: &str, _world: &World, user: &User) -> Value {
    let id = &user.id;
    json!({
        "id": id,
        "type": "user",
        "summary": user.name,
        "self": format!("{base}/users/{id}"),
        "html_url": format!("{WEB_BASE}/users/{id}"),
        "name": user.name,
        "email": user.email,
        "time_zone": "Etc/UTC",
        "color": "green",
        "role": "user",
        "avatar_url": "https://pd-static-assets.pagerduty.com/users/blank-avatar.png",
        "description": "",
        "invitation_sent": false,
        "created_via_sso": false,
        "contact_methods": [{
            "id": format!("C{id}"),
            "type": "email_contact_method_reference",
            "summary": "Default",
            "self": format!("{base}/users/{id}/contact_methods/C{id}"),
        }],
        "notification_rules": [{
            "id": format!("N{id}"),
            "type": "assignment_notification_rule_reference",
            "summary": "Default",
            "self": format!("{base}/users/{id}/notification_rules/N{id}"),
            "html_url": null,
        }],
        "job_title": "",
        "teams": [{
            "id": "PTEAM01",
            "type": "team_reference",
            "summary": "Engineering",
            "self": format!("{base}/teams/PTEAM01"),
            "html_url": format!("{WEB_BASE}/teams/PTEAM01"),
        }],
        "http_cal_url": format!("https://webcal.pagerduty.com/private/{id}/feed"),
        "web_cal_url": format!("webcal://webcal.pagerduty.com/private/{id}/feed"),
    })
}

/// A minimal Schedule object: identity, name, and the users and escalation policies its shifts involve.
fn full_schedule(base: &str, world: &World, id: &str) -> Value {
    let name = name_of(&world.schedules, id);
    let shifts = world.oncalls.iter().filter(|o| o.schedule.as_deref() == Some(id));
    let users: BTreeSet<&str> = shifts.clone().map(|o| o.user.as_str()).collect();
    let policies: BTreeSet<&str> = shifts.map(|o| o.escalation_policy.as_str()).collect();
    json!({
        "id": id,
        "type": "schedule",
        "summary": name,
        "self": format!("{base}/schedules/{id}"),
        "html_url": format!("{WEB_BASE}/schedules/{id}"),
        "name": name,
        "time_zone": "Etc/UTC",
        "description": "",
        "users": users.iter().map(|u| reference(base, "user", "users", u, user_name(world, u))).collect::<Vec<_>>(),
        "escalation_policies": policies.iter().map(|p| {
            reference(base, "escalation_policy", "escalation_policies", p, name_of(&world.escalation_policies, p))
        }).collect::<Vec<_>>(),
        "teams": [],
    })
}

/// A minimal EscalationPolicy object: one escalation rule per level, targeting its schedules and direct users.
fn full_escalation_policy(base: &str, world: &World, id: &str) -> Value {
    let name = name_of(&world.escalation_policies, id);
    let mut levels: BTreeMap<u32, BTreeSet<(bool, &str)>> = BTreeMap::new();
    for oncall in world.oncalls.iter().filter(|o| o.escalation_policy == id) {
        let target = match &oncall.schedule {
            Some(schedule) => (true, schedule.as_str()),
            None => (false, oncall.user.as_str()),
        };
        levels.entry(oncall.escalation_level).or_default().insert(target);
    }
    let rules: Vec<Value> = levels
        .iter()
        .map(|(level, targets)| {
            let targets: Vec<Value> = targets
                .iter()
                .map(|(is_schedule, target)| {
                    if *is_schedule {
                        reference(base, "schedule", "schedules", target, name_of(&world.schedules, target))
                    } else {
                        reference(base, "user", "users", target, user_name(world, target))
                    }
                })
                .collect();
            json!({ "id": format!("R{id}{level}"), "escalation_delay_in_minutes": 30, "targets": targets })
        })
        .collect();
    json!({
        "id": id,
        "type": "escalation_policy",
        "summary": name,
        "self": format!("{base}/escalation_policies/{id}"),
        "html_url": format!("{WEB_BASE}/escalation_policies/{id}"),
        "name": name,
        "description": "",
        "num_loops": 0,
        "on_call_handoff_notifications": "if_has_services",
        "escalation_rules": rules,
        "services": [],
        "teams": [],
    })
}

fn user_name<'a>(world: &'a World, id: &str) -> &'a str {
    world.users.get(id).map(|u| u.name.as_str()).unwrap_or_default()
}
