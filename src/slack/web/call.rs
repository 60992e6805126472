//! One Web API round trip: the request (JSON or form body, bearer token), HTTP 429 waits and retries within the
//! limits of [`WebSettings`](super::WebSettings), and the `{"ok": …}` envelope turned into a typed answer or a
//! [`SlackError`].

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, RETRY_AFTER};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{Method, REQUIRED_BOT_SCOPES, SlackError, SlackWeb};
use tracing::Instrument as _;

/// Wait when a 429 carries no usable `Retry-After` (Slack always sends one; a proxy might not).
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(1);
/// Slack explanations kept in an error, and the length of each.
const MAX_DETAILS: usize = 5;
const MAX_DETAIL_CHARS: usize = 300;

/// How the parameters travel. Slack accepts JSON for write methods only; read methods get a form body (a POST, so
/// an email or channel id never lands in a URL and in proxy logs).
pub(super) enum Body {
    Json(Value),
    Form(Vec<(&'static str, String)>),
}

/// One call: what, with which parameters, about which channel (for the error's hint).
pub(super) struct Call<'a> {
    pub method: Method,
    pub body: Body,
    pub channel: Option<&'a str>,
}

/// The envelope every Web API answer shares.
#[derive(Debug, Deserialize)]
struct Envelope {
    ok: bool,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    needed: Option<String>,
    #[serde(default)]
    errors: Vec<Value>,
    #[serde(default)]
    response_metadata: Option<ResponseMetadata>,
}

#[derive(Debug, Deserialize)]
struct ResponseMetadata {
    #[serde(default)]
    messages: Vec<String>,
}

impl SlackWeb {
    /// Sends `call` and decodes a successful answer into `T`.
    ///
    /// Only HTTP 429 is retried: Slack did not act on a rate-limited request, so sending it again cannot post a
    /// message twice. A timeout or a 5xx may have been acted on, so those are returned to the caller, which knows
    /// whether repeating is safe.
    pub(super) async fn call<T: DeserializeOwned>(&self, call: Call<'_>) -> Result<T, SlackError> {
        let (method, started) = (call.method.name(), Instant::now());
        let span = crate::telemetry::traces::external_call_span("slack", method);
        let result = self.call_with_retries(call).instrument(span.clone()).await;
        crate::telemetry::traces::record_call_result(&span, result.is_ok());
        if let Some(metrics) = &self.metrics {
            metrics.external_call("slack", method, result.is_ok(), started.elapsed().as_secs_f64());
        }
        result
    }

    async fn call_with_retries<T: DeserializeOwned>(&self, call: Call<'_>) -> Result<T, SlackError> {
        let method = call.method.name();
        // A scope missing from REQUIRED_BOT_SCOPES (and so from the manifest) would fail in production with
        // `missing_scope`; every test that makes the call catches it here first.
        debug_assert!(
            call.method.scopes().iter().all(|scope| REQUIRED_BOT_SCOPES.contains(scope)),
            "{method} needs {:?}; add it to REQUIRED_BOT_SCOPES and manifests/slack-app.yaml",
            call.method.scopes()
        );
        let url = format!("{}/{method}", self.base_url);
        let started = Instant::now();
        let mut waited = Duration::ZERO;
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let request = self.http.post(&url).header(AUTHORIZATION, self.authorization.clone());
            let request = match &call.body {
                Body::Json(value) => {
                    request.header(CONTENT_TYPE, "application/json; charset=utf-8").body(value.to_string())
                }
                Body::Form(fields) => request.form(fields),
            };
            let response = request.send().await.map_err(|e| self.unreachable(method, describe(e)))?;
            let status = response.status();
            if status == StatusCode::TOO_MANY_REQUESTS {
                let wait = retry_after(response.headers()).unwrap_or(DEFAULT_RETRY_AFTER);
                // Spent time counts in real time, or as the sum of waits when the pause does not sleep (tests).
                let remaining = self.settings.total_budget.saturating_sub(started.elapsed().max(waited));
                // A wait longer than the cap or the budget is not shortened: asking again early only earns
                // another 429, so give up at once and let the caller explain.
                if attempt >= self.settings.max_attempts || wait > self.settings.max_retry_wait || wait > remaining {
                    return Err(SlackError::RateLimited {
                        method: method.to_owned(),
                        attempts: attempt,
                        retry_after: Some(wait),
                    });
                }
                tracing::info!(method, attempt, wait_s = wait.as_secs_f64(), "Slack rate limited the call; waiting");
                waited += wait;
                self.pause.pause(wait).await;
                continue;
            }
            if status.is_server_error() {
                return Err(self.unreachable(method, format!("it answered HTTP {status}")));
            }
            if status != StatusCode::OK {
                return Err(bad_response(method, format!("HTTP {status} (is SLACK_API_URL the Web API?)")));
            }
            let bytes = response.bytes().await.map_err(|e| self.unreachable(method, describe(e)))?;
            return decode(method, call.channel, &bytes);
        }
    }

    pub(super) fn unreachable(&self, method: &str, reason: String) -> SlackError {
        SlackError::Unreachable { method: method.to_owned(), base_url: self.base_url.clone(), reason }
    }
}

/// The envelope first (so an error answer never fails on a missing success field), then the typed answer.
fn decode<T: DeserializeOwned>(method: &str, channel: Option<&str>, bytes: &[u8]) -> Result<T, SlackError> {
    let envelope: Envelope = serde_json::from_slice(bytes)
        .map_err(|e| bad_response(method, format!("the answer is not a Web API JSON object ({e})")))?;
    if !envelope.ok {
        let mut details: Vec<String> = envelope.response_metadata.map(|m| m.messages).unwrap_or_default();
        details.extend(envelope.errors.iter().map(|e| e.as_str().map(str::to_owned).unwrap_or_else(|| e.to_string())));
        details.dedup();
        details.truncate(MAX_DETAILS);
        let details = details.into_iter().map(|d| d.chars().take(MAX_DETAIL_CHARS).collect()).collect();
        return Err(SlackError::Api {
            method: method.to_owned(),
            error: envelope.error.unwrap_or_else(|| "unknown_error".to_owned()),
            channel: channel.map(str::to_owned),
            needed: envelope.needed,
            details,
        });
    }
    serde_json::from_slice(bytes).map_err(|e| bad_response(method, e.to_string()))
}

pub(super) fn bad_response(method: &str, reason: String) -> SlackError {
    SlackError::BadResponse { method: method.to_owned(), reason }
}

/// `Retry-After` in seconds (Slack sends whole seconds).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let seconds: u64 = headers.get(RETRY_AFTER)?.to_str().ok()?.trim().parse().ok()?;
    Some(Duration::from_secs(seconds))
}

/// A reqwest error with its causes, without the URL: an upload URL is a short-lived credential of its own.
pub(super) fn describe(error: reqwest::Error) -> String {
    let timed_out = error.is_timeout();
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        text = format!("{text}: {cause}");
        source = cause.source();
    }
    if timed_out { format!("no answer in time ({text})") } else { text }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Debug, Deserialize)]
    struct Posted {
        #[allow(dead_code)] // only its presence matters here
        ts: String,
    }

    #[test]
    fn error_answers_keep_code_scope_and_explanations() {
        let body = json!({"ok": false, "error": "invalid_blocks", "errors": ["must be less than 3001 characters [json-pointer:/blocks/0/text/text]"],
            "response_metadata": {"messages": ["[ERROR] must be less than 3001 characters [json-pointer:/blocks/0/text/text]"]}});
        let error = decode::<Posted>("chat.postMessage", Some("C1"), body.to_string().as_bytes()).unwrap_err();
        let SlackError::Api { error: code, channel, details, .. } = &error else { panic!("{error:?}") };
        assert_eq!((code.as_str(), channel.as_deref()), ("invalid_blocks", Some("C1")));
        assert_eq!(details.len(), 2);
        assert!(error.to_string().contains("json-pointer:/blocks/0/text/text"), "{error}");

        let scope = json!({"ok": false, "error": "missing_scope", "needed": "files:write", "provided": "chat:write"});
        let error = decode::<Posted>("files.getUploadURLExternal", None, scope.to_string().as_bytes()).unwrap_err();
        assert!(error.user_hint().is_some_and(|h| h.contains("files:write")), "{error:?}");
    }

    #[test]
    fn an_ok_answer_missing_a_field_is_a_bad_response_not_a_panic() {
        let error = decode::<Posted>("chat.postMessage", None, br#"{"ok": true}"#).unwrap_err();
        assert_eq!(error.code(), "bad_response");
        let error = decode::<Posted>("chat.postMessage", None, b"<html>proxy error</html>").unwrap_err();
        assert_eq!(error.code(), "bad_response");
    }

    #[test]
    fn retry_after_is_whole_seconds() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert(RETRY_AFTER, "30".parse().expect("header"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(30)));
        headers.insert(RETRY_AFTER, "soon".parse().expect("header"));
        assert_eq!(retry_after(&headers), None);
    }
}
