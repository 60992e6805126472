//! The Web API over HTTP: `/api/<method>` with form, JSON or query parameters, bearer-token checks, injected
//! faults, and the recording of every call. Method semantics live in the submodules, one per API family.

pub mod blocks;
mod chat;
mod directory;
mod files;
mod response_url;
mod views;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;

pub use blocks::{MAX_MESSAGE_BLOCKS, MAX_MODAL_BLOCKS, MAX_TOTAL_BLOCK_TEXT};
pub(crate) use chat::message_json;
pub use response_url::RESPONSE_URL_METHOD;

use super::records::{ApiCall, CallOutcome};
use super::state::{Fault, Shared};

/// Which token a method wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TokenKind {
    /// `xoxb-…`
    Bot,
    /// `xapp-…`
    App,
}

type Handler = fn(&Shared, &Params) -> Reply;

/// Every method the fake knows, with the token it requires.
const METHODS: &[(&str, TokenKind, Handler)] = &[
    ("apps.connections.open", TokenKind::App, directory::apps_connections_open),
    ("auth.test", TokenKind::Bot, directory::auth_test),
    ("chat.postMessage", TokenKind::Bot, chat::post_message),
    ("chat.update", TokenKind::Bot, chat::update),
    ("chat.postEphemeral", TokenKind::Bot, chat::post_ephemeral),
    ("chat.getPermalink", TokenKind::Bot, chat::get_permalink),
    ("views.open", TokenKind::Bot, views::open),
    ("views.update", TokenKind::Bot, views::update),
    ("users.info", TokenKind::Bot, directory::users_info),
    ("users.lookupByEmail", TokenKind::Bot, directory::users_lookup_by_email),
    ("conversations.info", TokenKind::Bot, directory::conversations_info),
    ("conversations.open", TokenKind::Bot, directory::conversations_open),
    ("files.getUploadURLExternal", TokenKind::Bot, files::get_upload_url_external),
    ("files.completeUploadExternal", TokenKind::Bot, files::complete_upload_external),
];

/// Block Kit check for blocks in an ack payload, as a readable problem.
pub(crate) fn check_ack_blocks(blocks: &Value) -> Result<(), String> {
    blocks::validate(blocks, blocks::Surface::Message, "/blocks").map_err(|problem| match problem {
        blocks::BlocksError::Format => "invalid_blocks_format".to_owned(),
        blocks::BlocksError::TooLong => "msg_blocks_too_long".to_owned(),
        blocks::BlocksError::Invalid(problems) => format!("invalid_blocks: {}", problems.join("; ")),
    })
}

/// Names of every Web API method the fake implements.
pub fn method_names() -> impl Iterator<Item = &'static str> {
    METHODS.iter().map(|(name, _, _)| *name)
}

/// Routes: `/api/<method>` (also `/api//<method>`, which a base URL with a trailing slash produces), the
/// upload URLs and the `response_url`s.
pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/api/{*method}", any(api))
        // Slack takes files of up to 1 GB at the upload URL; axum's default body limit (2 MB) would refuse a large
        // result's CSV that Slack accepts.
        .route("/upload/v1/{file_id}", post(files::upload).layer(DefaultBodyLimit::max(files::MAX_FILE_BYTES)))
        .route("/hooks/{kind}/{team}/{id}/{secret}", post(response_url::respond))
}

/// Form fields whose value is JSON encoded in a string ("a JSON-based array … presented as a URL-encoded
/// string"); JSON bodies may also carry them as strings.
const JSON_IN_STRING_FIELDS: &[&str] = &["blocks", "attachments", "view", "files", "metadata"];

/// The merged parameters of one call.
#[derive(Debug, Clone, Default)]
pub(crate) struct Params(Map<String, Value>);

impl Params {
    /// A string parameter; empty strings count as absent, as Slack treats them.
    pub fn str(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
    }

    /// A parameter given as a number or a numeric string.
    pub fn u64(&self, key: &str) -> Option<u64> {
        match self.0.get(key)? {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    /// A list given as a comma-separated string (form encoding) or a JSON array of strings (JSON bodies, as
    /// slack-morphism sends `users`). Empty items are dropped.
    pub fn list(&self, key: &str) -> Option<Vec<String>> {
        let items: Vec<String> = match self.0.get(key)? {
            Value::String(s) => s.split(',').map(|item| item.trim().to_owned()).collect(),
            Value::Array(items) => items.iter().filter_map(Value::as_str).map(|item| item.trim().to_owned()).collect(),
            _ => return None,
        };
        Some(items.into_iter().filter(|item| !item.is_empty()).collect())
    }

    /// A boolean given as `true`, `"true"` or `"1"`.
    pub fn flag(&self, key: &str) -> bool {
        match self.0.get(key) {
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) => s == "true" || s == "1",
            Some(Value::Number(n)) => n.as_u64() == Some(1),
            _ => false,
        }
    }

    /// Any parameter, as JSON.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key).filter(|v| !v.is_null())
    }

    pub fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    pub fn to_json(&self) -> Value {
        Value::Object(self.0.clone())
    }
}

/// A Web API answer: `{"ok": true, …}` or `{"ok": false, "error": …, …}` (always HTTP 200).
pub(crate) enum Reply {
    Ok(Value),
    Error(String, Option<Value>),
}

pub(crate) fn ok(fields: Value) -> Reply {
    Reply::Ok(fields)
}

pub(crate) fn error(code: &str) -> Reply {
    Reply::Error(code.to_owned(), None)
}

/// An error with extra top-level fields (`errors`, `response_metadata`, …).
pub(crate) fn error_with(code: &str, extra: Value) -> Reply {
    Reply::Error(code.to_owned(), Some(extra))
}

impl Reply {
    fn outcome(&self) -> CallOutcome {
        match self {
            Reply::Ok(_) => CallOutcome::Ok,
            Reply::Error(code, _) => CallOutcome::Error(code.clone()),
        }
    }

    fn body(self) -> Value {
        let mut body = Map::new();
        let extra = match self {
            Reply::Ok(fields) => {
                body.insert("ok".into(), Value::Bool(true));
                Some(fields)
            }
            Reply::Error(code, extra) => {
                body.insert("ok".into(), Value::Bool(false));
                body.insert("error".into(), Value::String(code));
                extra
            }
        };
        if let Some(Value::Object(fields)) = extra {
            body.extend(fields);
        }
        Value::Object(body)
    }
}

pub(crate) fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
    response
}

/// Waits out the configured per-call latency ([`super::FakeSlack::set_latency`]).
pub(crate) async fn delay(shared: &Shared) {
    let latency = shared.lock().latency;
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
}

async fn api(
    State(shared): State<Arc<Shared>>,
    Path(method): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    delay(&shared).await;
    // `…/api/` + `/method` from a client that appends "/{method}" to a base URL ending in a slash.
    let method = method.trim_start_matches('/').to_owned();
    let (params, token) = match parse_params(query.as_deref(), &headers, &body) {
        Ok(parsed) => parsed,
        Err(code) => return finish(&shared, method, Params::default(), error(code)),
    };
    tracing::debug!(%method, "fake Slack Web API call");

    let Some((_, wanted, handler)) = METHODS.iter().find(|(name, _, _)| *name == method) else {
        return finish(&shared, method, params, error("unknown_method"));
    };
    if let Err(code) = check_token(&shared, token.as_deref(), *wanted) {
        return finish(&shared, method, params, error(code));
    }
    // Faults come after authentication: a rate limit or outage is only seen by an authenticated caller.
    let fault = shared.mutate(|state| state.faults.get_mut(&method).and_then(|queue| queue.pop_front()));
    let reply = match fault {
        Some(Fault::RateLimit(retry_after_secs)) => {
            record(&shared, &method, &params, CallOutcome::RateLimited { retry_after_secs });
            let mut response =
                json_response(StatusCode::TOO_MANY_REQUESTS, &json!({"ok": false, "error": "ratelimited"}));
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            return response;
        }
        Some(Fault::Error(code)) => error(&code),
        Some(Fault::Hold(mut released)) => {
            // Err: the test dropped its handle, which releases the call as well.
            let _ = released.wait_for(|released| *released).await;
            handler(&shared, &params)
        }
        None => handler(&shared, &params),
    };
    finish(&shared, method, params, reply)
}

fn finish(shared: &Shared, method: String, params: Params, reply: Reply) -> Response {
    record(shared, &method, &params, reply.outcome());
    json_response(StatusCode::OK, &reply.body())
}

fn record(shared: &Shared, method: &str, params: &Params, outcome: CallOutcome) {
    let call = ApiCall { method: method.to_owned(), params: params.to_json(), at: OffsetDateTime::now_utc(), outcome };
    shared.mutate(|state| state.calls.push(call));
}

/// Token check. Slack answers `not_authed` when no token is given, `invalid_auth` for an unknown one, and
/// `not_allowed_token_type` when a valid token of the wrong kind is used (an app token on `chat.postMessage`,
/// a bot token on `apps.connections.open`).
fn check_token(shared: &Shared, token: Option<&str>, wanted: TokenKind) -> Result<(), &'static str> {
    let Some(token) = token else { return Err("not_authed") };
    let given = if token == shared.config.bot_token {
        TokenKind::Bot
    } else if token == shared.config.app_token {
        TokenKind::App
    } else {
        return Err("invalid_auth");
    };
    if given == wanted { Ok(()) } else { Err("not_allowed_token_type") }
}

/// Merges query string and body into one parameter object and extracts the token: the `Authorization: Bearer`
/// header, or a `token` form/query parameter (both accepted by Slack). The token is removed from the
/// recorded parameters.
fn parse_params(
    query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(Params, Option<String>), &'static str> {
    let mut params = Map::new();
    if let Some(query) = query {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).map_err(|_| "invalid_arguments")?;
        params.extend(pairs.into_iter().map(|(k, v)| (k, Value::String(v))));
    }
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let mime = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    if !body.is_empty() {
        if mime == "application/json" {
            match serde_json::from_slice::<Value>(body) {
                Ok(Value::Object(fields)) => params.extend(fields),
                Ok(_) => return Err("json_not_object"),
                Err(_) => return Err("invalid_json"),
            }
        } else if mime.is_empty() || mime == "application/x-www-form-urlencoded" {
            let text = std::str::from_utf8(body).map_err(|_| "invalid_charset")?;
            let pairs: Vec<(String, String)> = serde_urlencoded::from_str(text).map_err(|_| "invalid_form_data")?;
            params.extend(pairs.into_iter().map(|(k, v)| (k, Value::String(v))));
        } else {
            return Err("invalid_post_type");
        }
    }
    for field in JSON_IN_STRING_FIELDS {
        if let Some(Value::String(encoded)) = params.get(*field)
            && let Ok(decoded) = serde_json::from_str::<Value>(encoded)
        {
            params.insert((*field).to_owned(), decoded);
        }
    }
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty());
    // Never keep a token in the recording: recorded calls end up in test output.
    let param_token = params.remove("token").and_then(|t| t.as_str().map(str::to_owned));
    Ok((Params(params), bearer.or(param_token)))
}
