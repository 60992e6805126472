//! Execution: Approved → Running → Succeeded | Failed, exactly once, failing closed; and the Failed end any step
//! can lead to, audited.

use tracing::{Instrument, error, info, info_span, warn};

use super::{Engine, ExecuteResult, MAX_DECISION_ATTEMPTS};
use crate::audit::{AuditEvent, CredentialEvidence};
use crate::aws::{AssumeRoleRequest, AwsFailure};
use crate::ids::RequestId;
use crate::messages;
use crate::request::{self, AccessRequest, ApprovedQuery, FailureReason};
use crate::runbook::session_policy;

impl Engine {
    /// Approved → Running → Succeeded | Failed. Only the caller whose approval landed holds `query`, and only the
    /// writer of Approved → Running goes on, so the query runs once.
    pub async fn execute(&self, approved: AccessRequest, query: ApprovedQuery) -> anyhow::Result<ExecuteResult> {
        let span = info_span!("execute", request_id = %approved.id);
        self.execute_inner(approved, query).instrument(span).await
    }

    /// Stops every run of this engine that is still going on (between AssumeRole and the last page), and every
    /// later one before it starts: each ends as Failed with [`FailureReason::InterruptedByShutdown`], audited. Used
    /// by a shutdown once its drain deadline has passed; irreversible.
    pub fn interrupt_running(&self) {
        self.interrupt.cancel();
    }

    async fn execute_inner(&self, approved: AccessRequest, query: ApprovedQuery) -> anyhow::Result<ExecuteResult> {
        if self.interrupt.is_cancelled() {
            // Approved after the drain deadline: never start what would be cut short anyway.
            return Ok(self.failed_result(&approved, FailureReason::InterruptedByShutdown).await);
        }
        let now = self.clock.now();
        let mut approved = approved;
        let mut attempts = 0;
        let running = loop {
            attempts += 1;
            let running = match request::start(&approved, &query, now) {
                Ok(running) => running,
                Err(refusal) => anyhow::bail!("cannot start {}: {refusal:?}", approved.id),
            };
            if self.write(&approved, &running).await? {
                break running;
            }
            let Some(current) = self.load(&approved.id).await? else {
                // The record is gone (deleted behind our back, or expired in Redis): nothing to write Failed to,
                // but the trail still gets its ending.
                let reason = FailureReason::ChangedWhileStarting { now: approved.state() };
                warn!("the request's record disappeared while starting; not running it");
                self.audit_failure(&approved.id, &reason).await;
                return Ok(ExecuteResult::Failed { request: Box::new(approved), reason, alarm: false });
            };
            // The card's reference is recorded once the card is posted, and an approver quick enough to click
            // before that lands moves the approved record on by its card alone: start from that record. A card is
            // recorded once, so one more attempt is enough; the bound only keeps a misbehaving writer from looping.
            if attempts < super::MAX_DECISION_ATTEMPTS && request::only_card_attached(&approved, &current) {
                approved = current;
                continue;
            }
            // Nobody else holds this request's ApprovedQuery, so the record was changed behind our back: never run
            // it then. A record another writer ended (the sweeper failing a run that never started) keeps that
            // writer's ending and audit entry. Nothing in jitgate moves an approved record anywhere else, so any
            // other change was written to Redis from outside (an older sealed version put back): ended here,
            // audited, and the operators alerted.
            let reason = FailureReason::ChangedWhileStarting { now: current.state() };
            warn!(now = current.state().as_str(), "the request changed while starting; not running it");
            if current.state().is_final() {
                return Ok(ExecuteResult::Failed { request: Box::new(current), reason, alarm: false });
            }
            error!(now = current.state().as_str(), "security: the approved record was changed outside jitgate");
            let ended = self.fail(&current, &reason).await.unwrap_or(current);
            return Ok(ExecuteResult::Failed { request: Box::new(ended), reason, alarm: true });
        };
        // Redis is not trusted with what runs: the operation must be the one the audit trail recorded as requested.
        // That check reads the audit table while AssumeRole is asked, not before it: the credentials are only
        // used — for the query — once the check has passed, and are dropped unused when it fails.
        let policy = session_policy(query.query());
        let check_and_assume = async {
            let assume = async {
                let policy = policy.as_ref().ok()?;
                Some(self.sts.assume(&AssumeRoleRequest::for_approved(&query, policy.as_json().to_owned())).await)
            };
            tokio::join!(self.matches_the_requested_entry(&running, &query), assume)
        };
        // Cancelling drops the in-flight AWS call and the temporary credentials with it; nothing was delivered.
        let (checked, assumed) = tokio::select! {
            biased;
            () = self.interrupt.cancelled() => return Ok(self.interrupted(&running).await),
            both = check_and_assume => both,
        };
        if let Err(detail) = checked {
            drop(assumed);
            error!(detail = %detail, "security: the approved operation does not match the audit trail; not running it");
            let event = AuditEvent::IntegrityViolation { request: running.id.clone(), detail: detail.clone() };
            if let Err(err) = self.audit.append(event).await {
                warn!(error = %err, "could not audit the integrity violation");
            }
            let reason = FailureReason::NotWhatWasRequested { detail };
            let failed = self.fail(&running, &reason).await.unwrap_or_else(|| running.clone());
            return Ok(ExecuteResult::Failed { request: Box::new(failed), reason, alarm: true });
        }
        let policy = match policy {
            Ok(policy) => policy,
            Err(err) => {
                return Ok(self.failed_result(&running, FailureReason::Unrunnable { problem: err.to_string() }).await);
            }
        };
        let credentials = match assumed {
            Some(Ok(credentials)) => credentials,
            Some(Err(failure)) => return Ok(self.aws_failed(&running, failure).await),
            None => anyhow::bail!("{}: a session policy was rendered but AssumeRole was not asked", running.id),
        };
        let evidence = credentials.summary();
        let run = tokio::select! {
            biased;
            () = self.interrupt.cancelled() => return Ok(self.interrupted(&running).await),
            run = self.executor.run(&query, credentials) => run,
        };
        let result = match run {
            Ok(result) => result,
            Err(failure) => return Ok(self.aws_failed(&running, failure).await),
        };
        // Audit before delivering: rows leave jitgate only once their execution is on the record.
        let executed = AuditEvent::Executed {
            request: running.id.clone(),
            fingerprint: query.approved_fingerprint().clone(),
            summary: result.summary(),
            credentials: CredentialEvidence {
                assumed_role_id: evidence.assumed_role_id,
                access_key_id: evidence.access_key_id,
                expires_at: evidence.expiration,
                session_policy: policy.as_json().to_owned(),
            },
        };
        let audit = match self.audit.append(executed).await {
            Ok(entry) => entry,
            Err(err) => {
                warn!(error = %err, "audit append of the execution failed; withholding the results");
                return Ok(self.failed_result(&running, FailureReason::AuditOfExecutionFailed).await);
            }
        };
        let succeeded = match request::succeed(&running, result.summary(), self.clock.now()) {
            Ok(next) => next,
            Err(refusal) => anyhow::bail!("cannot finish {}: {refusal:?}", running.id),
        };
        // The execution is on the record from here on, so the rows are delivered whatever Redis says: a failed
        // write must not turn into "nothing was run". The record stays Running; the sweeper finds the `executed`
        // entry and records it as Succeeded (see `fail_stuck`), never as failed.
        match self.write(&running, &succeeded).await {
            Ok(true) => {}
            Ok(false) => warn!("the record changed while the query ran; results were audited and are delivered"),
            Err(err) => error!(
                error = format!("{err:#}"),
                audit_seq = audit.seq,
                "could not record the success in Redis; the execution is audited and its results are delivered"
            ),
        }
        info!(rows = result.row_count, "query executed");
        Ok(ExecuteResult::Executed { request: Box::new(succeeded), result, audit: Box::new(audit) })
    }

    async fn interrupted(&self, running: &AccessRequest) -> ExecuteResult {
        warn!("shutdown deadline reached while the query was running");
        self.failed_result(running, FailureReason::InterruptedByShutdown).await
    }

    /// The end of a run whose AssumeRole or query failed.
    async fn aws_failed(&self, running: &AccessRequest, failure: AwsFailure) -> ExecuteResult {
        match failure {
            failure @ AwsFailure::UnacceptableCredentials { .. } => {
                // The broker refused (and dropped) them; nothing ran, but the role or STS is misconfigured.
                error!(failure = %failure, "STS returned credentials jitgate does not accept");
                let reason = failure.reason();
                let failed = self.fail(running, &reason).await.unwrap_or_else(|| running.clone());
                ExecuteResult::Failed { request: Box::new(failed), reason, alarm: true }
            }
            failure => self.failed_result(running, failure.reason()).await,
        }
    }

    async fn failed_result(&self, request: &AccessRequest, reason: FailureReason) -> ExecuteResult {
        warn!(reason = reason.code(), "execution failed");
        let failed = self.fail(request, &reason).await.unwrap_or_else(|| request.clone());
        ExecuteResult::Failed { request: Box::new(failed), reason, alarm: false }
    }

    /// Ends a request as Failed and audits it. Best effort: returns the Failed record when the write landed.
    pub(super) async fn fail(&self, request: &AccessRequest, reason: &FailureReason) -> Option<AccessRequest> {
        let failed = request::fail(request, reason.clone(), self.clock.now()).ok()?;
        match self.write(request, &failed).await {
            Ok(true) => {}
            Ok(false) | Err(_) => return None,
        }
        self.audit_failure(&request.id, reason).await;
        Some(failed)
    }

    /// Appends the `failed` entry of request `id`. Best effort: a failure to audit is logged.
    async fn audit_failure(&self, id: &RequestId, reason: &FailureReason) {
        let event = AuditEvent::failed(id.clone(), reason, messages::failure_reason(reason));
        if let Err(err) = self.audit.append(event).await {
            warn!(error = %err, "could not audit the failure");
        }
    }

    /// Ends a request that cannot go on (e.g. its card could not be posted) as Failed, audited.
    pub async fn abandon(&self, id: &RequestId, reason: FailureReason) -> anyhow::Result<Option<AccessRequest>> {
        for _ in 0..MAX_DECISION_ATTEMPTS {
            let Some(current) = self.load(id).await? else { return Ok(None) };
            if current.state().is_final() {
                return Ok(Some(current));
            }
            if let Some(failed) = self.fail(&current, &reason).await {
                return Ok(Some(failed));
            }
        }
        anyhow::bail!("request {id} kept changing while being abandoned")
    }
}
