//! The PagerDuty REST API v2 client: who is on call at one moment in some schedules and escalation policies.
//!
//! Only reads. Every call is bounded: a timeout per HTTP request, a number of attempts per request and a total
//! time budget per call, so a slow or rate-limiting PagerDuty turns into a clear error instead of a hung approval.
//! The API token lives in a `SecretString`, is written into one header of each request (marked sensitive) and
//! never into an error, a log line or `Debug` output.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue, RETRY_AFTER};
use reqwest::{Response, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::pause::{Pause, TokioPause};
use tracing::Instrument as _;

/// The versioning `Accept` header every PagerDuty REST v2 operation declares.
const ACCEPT_V2: &str = "application/vnd.pagerduty+json;version=2";
/// Longest excerpt of a PagerDuty error body quoted in an error.
const MAX_DETAIL: usize = 200;

/// Limits of one client. The defaults suit an approval click: a few seconds at worst.
#[derive(Debug, Clone)]
pub struct PagerDutySettings {
    /// Bound on one HTTP request (connect + response).
    pub request_timeout: Duration,
    /// Attempts per HTTP request when PagerDuty rate limits, fails with 5xx or cannot be reached.
    pub max_attempts: u32,
    /// Bound on one whole call, all pages and waits included.
    pub total_budget: Duration,
    /// First backoff when PagerDuty gives no wait hint; doubles on each retry.
    pub base_backoff: Duration,
    /// Entries asked for per page (PagerDuty serves at most 100).
    pub page_size: u32,
    /// Pages followed before the answer is judged malformed (guards against a `more` that never ends).
    pub max_pages: u32,
}

impl Default for PagerDutySettings {
    fn default() -> Self {
        PagerDutySettings {
            request_timeout: Duration::from_secs(5),
            max_attempts: 4,
            total_budget: Duration::from_secs(15),
            base_backoff: Duration::from_millis(250),
            page_size: 100,
            max_pages: 50,
        }
    }
}

/// Why PagerDuty could not say who is on call. Messages are for operators and logs; none contains the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PagerDutyError {
    #[error(
        "PagerDuty rejected the API token (401 Unauthorized{detail}): set PAGERDUTY_API_TOKEN to a valid REST API key"
    )]
    Unauthorized { detail: String },
    #[error(
        "PagerDuty refused access (403 Forbidden{detail}): the API key's user needs read access to on-calls and users"
    )]
    Forbidden { detail: String },
    #[error("PagerDuty is still rate limiting jitgate after {attempts} attempt(s){}", retry_hint(.retry_after))]
    RateLimited { attempts: u32, retry_after: Option<Duration> },
    #[error("PagerDuty is unreachable at {base_url}: {reason}")]
    Unreachable { base_url: String, reason: String },
    #[error("PagerDuty answered {path} with {status}{detail}")]
    Rejected { path: String, status: u16, detail: String },
    #[error("PagerDuty sent an unexpected answer to {path}: {reason}")]
    BadResponse { path: String, reason: String },
}

fn retry_hint(retry_after: &Option<Duration>) -> String {
    retry_after.map(|d| format!(" (it asks to wait {} s)", d.as_secs())).unwrap_or_default()
}

/// A PagerDuty object named by id, with its display name (`summary`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PagerDutyRef {
    pub id: String,
    pub name: String,
}

/// A PagerDuty user with the email used to find their Slack account.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PagerDutyUser {
    pub id: String,
    pub name: String,
    pub email: String,
}

/// One on-call entry: `user` is on call at `escalation_level` of `escalation_policy`, through `schedule` (`None`
/// when the escalation rule targets the user directly), from `start` to `end` (`None` = unbounded).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OnCallShift {
    pub user: PagerDutyUser,
    pub schedule: Option<PagerDutyRef>,
    pub escalation_policy: PagerDutyRef,
    pub escalation_level: u32,
    pub start: Option<OffsetDateTime>,
    pub end: Option<OffsetDateTime>,
}

/// A client of one PagerDuty account.
#[derive(Debug, Clone)]
pub struct PagerDutyClient {
    http: reqwest::Client,
    base_url: String,
    token: SecretString,
    settings: PagerDutySettings,
    pause: Arc<dyn Pause>,
    /// Where each call is counted and timed (`service="pagerduty"`, `op` = the resource, e.g. `oncalls`).
    metrics: Option<crate::telemetry::Metrics>,
}

impl PagerDutyClient {
    /// A client of the API at `base_url` (e.g. `https://api.pagerduty.com`), authenticated with a REST API key.
    pub fn new(base_url: &str, token: SecretString, settings: PagerDutySettings) -> anyhow::Result<PagerDutyClient> {
        use anyhow::Context;
        let parsed = url::Url::parse(base_url).context("the PagerDuty API URL is not a URL")?;
        anyhow::ensure!(
            matches!(parsed.scheme(), "https" | "http"),
            "the PagerDuty API URL must start with https:// (or http:// for a local emulator)"
        );
        let http = reqwest::Client::builder()
            .timeout(settings.request_timeout)
            .connect_timeout(settings.request_timeout)
            .build()
            .context("building the PagerDuty HTTP client")?;
        Ok(PagerDutyClient {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
            token,
            settings,
            pause: Arc::new(TokioPause),
            metrics: None,
        })
    }

    /// Counts and times every API call (retries included) in `metrics`.
    pub fn with_metrics(mut self, metrics: crate::telemetry::Metrics) -> PagerDutyClient {
        self.metrics = Some(metrics);
        self
    }

    /// Replaces how the client waits between attempts.
    pub fn with_pause(mut self, pause: Arc<dyn Pause>) -> PagerDutyClient {
        self.pause = pause;
        self
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// A fresh time budget for one call.
    pub(super) fn budget(&self) -> Budget {
        Budget::new(self.settings.total_budget)
    }

    /// Everyone on call at `at` in any of `schedules` or any of `escalation_policies`, with their emails.
    ///
    /// PagerDuty combines different filters with AND, so schedules and escalation policies are asked in separate
    /// queries and the answers merged (a union is what "on call in one of these" means). With no ids at all
    /// nothing is asked: an unfiltered query would list every on-call of the account.
    pub async fn oncalls(
        &self,
        schedules: &BTreeSet<String>,
        escalation_policies: &BTreeSet<String>,
        at: OffsetDateTime,
    ) -> Result<Vec<OnCallShift>, PagerDutyError> {
        let work = async {
            // Schedules and escalation policies are asked at the same time, each with its own budget (the timeout
            // below bounds both); a user without an email is then fetched within the schedules' budget.
            let mut budget = Budget::new(self.settings.total_budget);
            let mut policies_budget = Budget::new(self.settings.total_budget);
            let by_schedule = async {
                if schedules.is_empty() {
                    return Ok(Vec::new());
                }
                self.list_oncalls("schedule_ids[]", schedules, at, &mut budget).await
            };
            let by_policy = async {
                if escalation_policies.is_empty() {
                    return Ok(Vec::new());
                }
                self.list_oncalls("escalation_policy_ids[]", escalation_policies, at, &mut policies_budget).await
            };
            let (mut wire, by_policy) = tokio::try_join!(by_schedule, by_policy)?;
            wire.extend(by_policy);
            self.complete(wire, &mut budget).await
        };
        // The per-request timeout and attempt count already bound the work; this bounds the sum of them.
        tokio::time::timeout(self.settings.total_budget, work).await.unwrap_or_else(|_| {
            Err(self.unreachable(format!(
                "no complete answer within {}",
                humantime::format_duration(self.settings.total_budget)
            )))
        })
    }

    /// One user, with their email.
    pub async fn user(&self, id: &str) -> Result<PagerDutyUser, PagerDutyError> {
        let mut budget = Budget::new(self.settings.total_budget);
        self.fetch_user(id, &mut budget).await
    }

    /// Whether a schedule (`kind` = `schedules`) or escalation policy (`escalation_policies`) with this id exists,
    /// for the live config check. `Ok(false)` on 404; other failures are errors.
    pub async fn exists(&self, kind: &str, id: &str) -> Result<bool, PagerDutyError> {
        let mut budget = Budget::new(self.settings.total_budget);
        let path = format!("/{kind}/{id}");
        match self.get::<serde_json::Value>(&path, &[], &mut budget).await {
            Ok(_) => Ok(true),
            Err(PagerDutyError::Rejected { status: 404, .. }) => Ok(false),
            Err(err) => Err(err),
        }
    }

    async fn fetch_user(&self, id: &str, budget: &mut Budget) -> Result<PagerDutyUser, PagerDutyError> {
        let path = format!("/users/{id}");
        let body: UserBody = self.get(&path, &[], budget).await?;
        let name = body.user.display_name();
        match body.user.email {
            Some(email) => Ok(PagerDutyUser { id: body.user.id, name, email }),
            None => Err(bad_response(&path, "the user has no email")),
        }
    }

    /// Every page of `/oncalls` filtered by one kind of id.
    async fn list_oncalls(
        &self,
        filter: &str,
        ids: &BTreeSet<String>,
        at: OffsetDateTime,
        budget: &mut Budget,
    ) -> Result<Vec<WireOnCall>, PagerDutyError> {
        let at = at.format(&Rfc3339).map_err(|e| bad_response("/oncalls", &format!("cannot format the time: {e}")))?;
        let mut all = Vec::new();
        let mut offset: u64 = 0;
        for _ in 0..self.settings.max_pages {
            let mut query: Vec<(&str, String)> = ids.iter().map(|id| (filter, id.clone())).collect();
            query.extend([
                ("include[]", "users".to_owned()),
                // since = until = at: exactly the shifts that cover that instant.
                ("since", at.clone()),
                ("until", at.clone()),
                ("limit", self.settings.page_size.to_string()),
                ("offset", offset.to_string()),
            ]);
            let page: OnCallsPage = self.get("/oncalls", &query, budget).await?;
            let received = page.oncalls.len() as u64;
            all.extend(page.oncalls);
            if !page.more {
                return Ok(all);
            }
            // PagerDuty's rule: the next page starts at offset + limit (the limit it echoes, which it may clamp).
            let step = page.limit.unwrap_or(u64::from(self.settings.page_size));
            if received == 0 || step == 0 {
                return Err(bad_response("/oncalls", "it says more entries follow but sent an empty page"));
            }
            offset += step;
        }
        Err(bad_response("/oncalls", &format!("more than {} pages of on-calls", self.settings.max_pages)))
    }

    /// Turns wire entries into shifts, asking for the email of users the listing did not expand.
    async fn complete(&self, wire: Vec<WireOnCall>, budget: &mut Budget) -> Result<Vec<OnCallShift>, PagerDutyError> {
        let mut users: BTreeMap<String, PagerDutyUser> = BTreeMap::new();
        let mut shifts = BTreeSet::new();
        for entry in wire {
            let Some(user) = entry.user else {
                return Err(bad_response("/oncalls", "an on-call has no user"));
            };
            let user = match (users.get(&user.id), user.email.clone()) {
                (Some(known), _) => known.clone(),
                (None, Some(email)) => PagerDutyUser { id: user.id.clone(), name: user.display_name(), email },
                (None, None) => self.fetch_user(&user.id, budget).await?,
            };
            users.insert(user.id.clone(), user.clone());
            shifts.insert(OnCallShift {
                user,
                schedule: entry.schedule.map(WireRef::into_ref),
                escalation_policy: entry.escalation_policy.into_ref(),
                escalation_level: entry.escalation_level,
                start: entry.start,
                end: entry.end,
            });
        }
        Ok(shifts.into_iter().collect())
    }

    /// One GET with retries on 429, 5xx and connection failures, counted and timed.
    pub(super) async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
        budget: &mut Budget,
    ) -> Result<T, PagerDutyError> {
        let url = format!("{}{path}", self.base_url);
        self.counted(path, self.send_with_retries(path, budget, true, || self.http.get(&url).query(query))).await
    }

    /// One POST of a JSON body, `From` naming the PagerDuty user it acts as (PagerDuty requires it for writes
    /// such as incident notes), counted and timed. Retried only where PagerDuty cannot have acted on it: a 429.
    /// A 5xx or a broken connection may have come after the write, and a second note is worse than none.
    pub(super) async fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        from: &str,
        body: &serde_json::Value,
        budget: &mut Budget,
    ) -> Result<T, PagerDutyError> {
        let url = format!("{}{path}", self.base_url);
        // Serialised here rather than with reqwest's `json` feature, which jitgate builds without; every request
        // already says `Content-Type: application/json`.
        let body = serde_json::to_vec(body).unwrap_or_default();
        let send = || self.http.post(&url).header("From", from).body(body.clone());
        self.counted(path, self.send_with_retries(path, budget, false, send)).await
    }

    async fn counted<T>(
        &self,
        path: &str,
        call: impl std::future::Future<Output = Result<T, PagerDutyError>>,
    ) -> Result<T, PagerDutyError> {
        let started = std::time::Instant::now();
        // The resource, not the path: ids in the path would make a metric series per schedule or user.
        let resource = path.trim_start_matches('/').split('/').next().unwrap_or_default();
        let span = crate::telemetry::traces::external_call_span("pagerduty", resource);
        let result = call.instrument(span.clone()).await;
        crate::telemetry::traces::record_call_result(&span, result.is_ok());
        if let Some(metrics) = &self.metrics {
            metrics.external_call("pagerduty", resource, result.is_ok(), started.elapsed().as_secs_f64());
        }
        result
    }

    /// Sends what `build` makes until it succeeds or a retry would not help; `idempotent` allows retries on 5xx
    /// and connection failures too.
    async fn send_with_retries<T: DeserializeOwned>(
        &self,
        path: &str,
        budget: &mut Budget,
        idempotent: bool,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<T, PagerDutyError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let sent = build()
                .header(AUTHORIZATION, self.authorization()?)
                .header(ACCEPT, ACCEPT_V2)
                .header(CONTENT_TYPE, "application/json")
                .send()
                .await;
            let (retry, wait) = match sent {
                Ok(response) if response.status().is_success() => {
                    let bytes = response.bytes().await.map_err(|e| self.unreachable(describe(&e)))?;
                    return serde_json::from_slice(&bytes).map_err(|e| bad_response(path, &e.to_string()));
                }
                Ok(response) => {
                    let status = response.status();
                    let hint = wait_hint(response.headers());
                    match status {
                        StatusCode::TOO_MANY_REQUESTS => (
                            PagerDutyError::RateLimited { attempts: attempt, retry_after: hint },
                            hint.unwrap_or_else(|| self.backoff(attempt)),
                        ),
                        StatusCode::INTERNAL_SERVER_ERROR
                        | StatusCode::BAD_GATEWAY
                        | StatusCode::SERVICE_UNAVAILABLE
                        | StatusCode::GATEWAY_TIMEOUT => {
                            let error = self.unreachable(format!("it answered {status}"));
                            if !idempotent {
                                return Err(error);
                            }
                            (error, hint.unwrap_or(self.backoff(attempt)))
                        }
                        _ => return Err(self.refusal(path, status, response).await),
                    }
                }
                Err(e) if idempotent && (e.is_connect() || e.is_timeout() || e.is_request()) => {
                    (self.unreachable(describe(&e)), self.backoff(attempt))
                }
                Err(e) => return Err(self.unreachable(describe(&e))),
            };
            // Give up rather than wait past the budget: the caller falls back to its cache or refuses.
            if attempt >= self.settings.max_attempts || wait > budget.remaining() {
                return Err(retry);
            }
            tracing::debug!(path, attempt, wait_ms = wait.as_millis() as u64, "retrying PagerDuty: {retry}");
            budget.waited += wait;
            self.pause.pause(wait).await;
        }
    }

    /// `Token token=<key>`, marked sensitive so the HTTP stack never prints it.
    fn authorization(&self) -> Result<HeaderValue, PagerDutyError> {
        let mut value =
            HeaderValue::from_str(&format!("Token token={}", self.token.expose_secret())).map_err(|_| {
                PagerDutyError::Unauthorized {
                    detail: ": the configured token contains characters a header cannot hold".into(),
                }
            })?;
        value.set_sensitive(true);
        Ok(value)
    }

    fn backoff(&self, attempt: u32) -> Duration {
        self.settings.base_backoff.saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)))
    }

    fn unreachable(&self, reason: String) -> PagerDutyError {
        PagerDutyError::Unreachable { base_url: self.base_url.clone(), reason }
    }

    /// A final 4xx: classified, with PagerDuty's own explanation quoted.
    async fn refusal(&self, path: &str, status: StatusCode, response: Response) -> PagerDutyError {
        let detail = response.bytes().await.ok().map(|body| error_detail(&body)).unwrap_or_default();
        match status {
            StatusCode::UNAUTHORIZED => PagerDutyError::Unauthorized { detail },
            StatusCode::FORBIDDEN => PagerDutyError::Forbidden { detail },
            _ => PagerDutyError::Rejected { path: path.to_owned(), status: status.as_u16(), detail },
        }
    }
}

/// Time spent in one call: real time, or the sum of waits when the pause does not really sleep (tests).
#[derive(Debug)]
pub(super) struct Budget {
    started: Instant,
    waited: Duration,
    limit: Duration,
}

impl Budget {
    pub(super) fn new(limit: Duration) -> Budget {
        Budget { started: Instant::now(), waited: Duration::ZERO, limit }
    }

    fn remaining(&self) -> Duration {
        self.limit.saturating_sub(self.started.elapsed().max(self.waited))
    }
}

/// How long PagerDuty asks us to wait: `ratelimit-reset` (seconds), else `Retry-After` (seconds).
fn wait_hint(headers: &HeaderMap) -> Option<Duration> {
    let seconds = |name: &str| {
        let value: f64 = headers.get(name)?.to_str().ok()?.trim().parse().ok()?;
        (value.is_finite() && value >= 0.0).then(|| Duration::from_secs_f64(value.min(86_400.0)))
    };
    seconds("ratelimit-reset").or_else(|| seconds(RETRY_AFTER.as_str()))
}

/// `: <message> (<errors>)` from PagerDuty's error body, shortened; empty when there is none.
fn error_detail(body: &[u8]) -> String {
    let Ok(parsed) = serde_json::from_slice::<ErrorBody>(body) else {
        return String::new();
    };
    let mut text = parsed.error.message.unwrap_or_default();
    if !parsed.error.errors.is_empty() {
        text = format!("{text} ({})", parsed.error.errors.join("; "));
    }
    let text: String = text.chars().take(MAX_DETAIL).collect();
    if text.is_empty() { text } else { format!(": {text}") }
}

/// A reqwest error with its causes ("error sending request …: connection refused"). URLs carry no secret.
fn describe(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text = format!("{text}: {cause}");
        source = cause.source();
    }
    text
}

pub(super) fn bad_response(path: &str, reason: &str) -> PagerDutyError {
    PagerDutyError::BadResponse { path: path.to_owned(), reason: reason.to_owned() }
}

#[derive(Debug, Deserialize)]
struct OnCallsPage {
    oncalls: Vec<WireOnCall>,
    #[serde(default)]
    more: bool,
    #[serde(default)]
    limit: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct WireOnCall {
    user: Option<WireUser>,
    schedule: Option<WireRef>,
    escalation_policy: WireRef,
    escalation_level: u32,
    #[serde(default, with = "time::serde::rfc3339::option")]
    start: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    end: Option<OffsetDateTime>,
}

/// A user reference (`summary` only) or, with `include[]=users`, the full user (`name`, `email`).
#[derive(Debug, Deserialize)]
struct WireUser {
    id: String,
    #[serde(default)]
    summary: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    email: Option<String>,
}

impl WireUser {
    fn display_name(&self) -> String {
        self.name.clone().or_else(|| self.summary.clone()).unwrap_or_else(|| self.id.clone())
    }
}

#[derive(Debug, Deserialize)]
struct WireRef {
    id: String,
    #[serde(default)]
    summary: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

impl WireRef {
    fn into_ref(self) -> PagerDutyRef {
        let name = self.name.or(self.summary).unwrap_or_default();
        PagerDutyRef { id: self.id, name }
    }
}

#[derive(Debug, Deserialize)]
struct UserBody {
    user: WireUser,
}

#[derive(Debug, Deserialize)]
struct ErrorBody {
    error: ErrorFields,
}

#[derive(Debug, Deserialize)]
struct ErrorFields {
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    errors: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_hint_prefers_ratelimit_reset_then_retry_after() {
        let mut headers = HeaderMap::new();
        assert_eq!(wait_hint(&headers), None);
        headers.insert(RETRY_AFTER, HeaderValue::from_static("3"));
        assert_eq!(wait_hint(&headers), Some(Duration::from_secs(3)));
        headers.insert("ratelimit-reset", HeaderValue::from_static("7"));
        assert_eq!(wait_hint(&headers), Some(Duration::from_secs(7)));
        headers.insert("ratelimit-reset", HeaderValue::from_static("-1"));
        assert_eq!(wait_hint(&headers), Some(Duration::from_secs(3)), "a nonsense reset falls back");
    }

    #[test]
    fn error_detail_quotes_pagerduty_and_tolerates_other_bodies() {
        let body = br#"{"error": {"message": "Not Found", "code": 2100}}"#;
        assert_eq!(error_detail(body), ": Not Found");
        let body = br#"{"error": {"message": "Invalid Input Provided", "code": 2001, "errors": ["Since is bad"]}}"#;
        assert_eq!(error_detail(body), ": Invalid Input Provided (Since is bad)");
        assert_eq!(error_detail(b"<html>502</html>"), "");
    }
}
