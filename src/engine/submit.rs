//! Submit: a new request validated, rendered, rate-limited, stored as Pending and audited; and the same
//! validation for a form before Slack closes it.

use std::collections::BTreeMap;

use tracing::{Instrument, info, info_span, warn};

use super::{Engine, MAX_ID_ATTEMPTS, SubmitOutcome};
use crate::audit::{AttemptedAction, AuditEvent};
use crate::aws::sts::check_packed_size;
use crate::ids::{RequestId, RunbookId, SlackUserId};
use crate::request::{AccessRequest, FailureReason, IncidentLookup, NewRequest, judge_incident};
use crate::runbook::{ParamError, session_policy};
use crate::store::{Admission, Created};

/// Why one field of a request form would not be accepted.
#[derive(Debug)]
pub enum FormProblem {
    /// A parameter that does not validate (named by [`ParamError::parameter`]).
    Parameter(ParamError),
    /// The runbook requires a reason and none was given.
    ReasonMissing,
}

impl Engine {
    /// Checks a request form the way [`Engine::submit`] would, without side effects, so Slack can show the problems
    /// next to their inputs before it closes the form. `None` when `runbook` names no runbook (the form is then let
    /// through and `submit` answers it).
    pub fn validate_form(
        &self,
        runbook: &str,
        args: &BTreeMap<String, String>,
        reason: Option<&str>,
    ) -> Option<Vec<FormProblem>> {
        let runbook = RunbookId::parse(runbook).and_then(|id| self.runbooks.get(&id))?;
        let mut problems: Vec<FormProblem> = match runbook.render(args, &self.settings.region) {
            Ok(_) => Vec::new(),
            Err(errors) => errors.into_iter().map(FormProblem::Parameter).collect(),
        };
        if runbook.approval().require_reason && reason.is_none_or(|r| r.trim().is_empty()) {
            problems.push(FormProblem::ReasonMissing);
        }
        Some(problems)
    }

    /// A new request: validate, render, rate-limit, store as Pending, audit.
    pub async fn submit(
        &self,
        requester: &SlackUserId,
        runbook: &str,
        args: &BTreeMap<String, String>,
        reason: Option<String>,
    ) -> anyhow::Result<SubmitOutcome> {
        self.submit_with(requester, runbook, args, reason, &[], IncidentLookup::NotGiven).await
    }

    /// [`Engine::submit`] with the command's options: `unmask` asks to see those masked attributes in clear
    /// (`--unmask`: each must be one the runbook lists as unmaskable, and the request then needs one more approver,
    /// see `AccessRequest::create`); `incident` is what PagerDuty said about the incident the request names
    /// (`--incident`), to which the runbook's incident gate is applied before anything is stored.
    pub async fn submit_with(
        &self,
        requester: &SlackUserId,
        runbook: &str,
        args: &BTreeMap<String, String>,
        reason: Option<String>,
        unmask: &[String],
        incident: IncidentLookup,
    ) -> anyhow::Result<SubmitOutcome> {
        let span = info_span!("submit", requester = %requester, runbook = %runbook, request_id = tracing::field::Empty);
        self.submit_inner(requester, runbook, args, reason, unmask, incident, &span).instrument(span.clone()).await
    }

    #[allow(clippy::too_many_arguments)] // The request's parts as typed, each passed on once.
    async fn submit_inner(
        &self,
        requester: &SlackUserId,
        typed: &str,
        args: &BTreeMap<String, String>,
        reason: Option<String>,
        unmask: &[String],
        incident: IncidentLookup,
        span: &tracing::Span,
    ) -> anyhow::Result<SubmitOutcome> {
        let attempted = AttemptedAction::Request { runbook: typed.to_owned() };
        let Some(runbook) = RunbookId::parse(typed).and_then(|id| self.runbooks.get(&id)) else {
            self.audit_refusal(None, requester, attempted, "unknown_runbook".to_owned()).await;
            return Ok(SubmitOutcome::UnknownRunbook {
                typed: typed.to_owned(),
                suggestion: self.runbooks.suggest(typed),
            });
        };
        let query = match runbook.render(args, &self.settings.region) {
            Ok(query) => query,
            Err(errors) => {
                let detail = errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
                self.audit_refusal(None, requester, attempted, format!("bad_parameters: {detail}")).await;
                return Ok(SubmitOutcome::BadParameters { runbook: runbook.id().clone(), errors });
            }
        };
        let query = match runbook.unmask(query, unmask) {
            Ok(query) => query,
            Err(error) => {
                self.audit_refusal(None, requester, attempted, format!("unmask_refused: {error}")).await;
                return Ok(SubmitOutcome::UnmaskRefused { runbook: runbook.id().clone(), error });
            }
        };
        // Render the session policy now, and size it with the session tags AssumeRole will carry, so nobody is
        // asked to approve a query that could never run.
        let unrunnable = match session_policy(&query) {
            Ok(policy) => check_packed_size(policy.as_json(), runbook.id()).err().map(|e| e.to_string()),
            Err(err) => Some(err.to_string()),
        };
        if let Some(reason) = unrunnable {
            self.audit_refusal(None, requester, attempted, format!("unrunnable: {reason}")).await;
            return Ok(SubmitOutcome::Unrunnable { runbook: runbook.id().clone(), reason });
        }
        let incident = match judge_incident(runbook.incident(), incident) {
            Ok(incident) => incident,
            Err(refusal) => {
                self.audit_refusal(None, requester, attempted, refusal.code()).await;
                return Ok(SubmitOutcome::IncidentRefused { runbook: runbook.id().clone(), refusal });
            }
        };
        let now = self.clock.now();
        let mut new = NewRequest {
            id: RequestId::generate(),
            requester: requester.clone(),
            reason,
            query,
            policy: runbook.approval().clone(),
            incident,
        };
        let request = match AccessRequest::create(new.clone(), now) {
            Ok(request) => request,
            Err(refusal) => {
                self.audit_refusal(None, requester, attempted, crate::audit::refusal_code(&refusal)).await;
                return Ok(SubmitOutcome::Refused(refusal));
            }
        };
        // Counted only for requests that would be created, so typos do not use up the user's allowance.
        if let Admission::Limited { retry_after } =
            self.store.admit_new_request(requester, self.settings.rate_limit, now).await?
        {
            self.audit_refusal(None, requester, attempted, "rate_limited".to_owned()).await;
            return Ok(SubmitOutcome::RateLimited { retry_after });
        }
        let mut request = request;
        for attempt in 1..=MAX_ID_ATTEMPTS {
            request.trace_parent = crate::telemetry::traces::traceparent(span);
            match self.store.create(&self.sealed(&request)).await? {
                Created::Inserted => break,
                Created::IdTaken if attempt < MAX_ID_ATTEMPTS => {
                    new.id = RequestId::generate();
                    request = AccessRequest::create(new.clone(), now).map_err(|r| anyhow::anyhow!("{r:?}"))?;
                }
                Created::IdTaken => anyhow::bail!("no free request id after {MAX_ID_ATTEMPTS} attempts"),
            }
        }
        span.record("request_id", request.id.as_str());
        if let Err(err) = self.audit.append(AuditEvent::requested(&request)).await {
            // Fail closed: a request the audit trail does not know of must never be approved.
            warn!(error = %err, "audit append failed; failing the request");
            let failed = self.fail(&request, &FailureReason::AuditUnavailable).await;
            return Err(anyhow::anyhow!(err).context(format!(
                "recording request {} in the audit trail (request is now {})",
                request.id,
                failed.map(|r| r.state().as_str()).unwrap_or("unknown")
            )));
        }
        info!("request created, waiting for approval");
        Ok(SubmitOutcome::Created(Box::new(request)))
    }
}
