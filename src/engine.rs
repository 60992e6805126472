//! The only place where the domain meets the clients: each user action handled end to end.
//!
//! Every action follows the same shape: load the record, let the pure rules in [`crate::request`] decide, write the
//! decision with one compare-and-set in Redis, audit it, and only then act on it. A lost compare-and-set means
//! another replica (or a second click) got there first; the engine re-reads and decides again, so an approval that
//! merely raced another one still counts, while a request that has moved on is reported as such.
//!
//! Failing closed: a query runs only after its approval is both written to Redis and recorded in the audit trail;
//! rows are delivered only after the execution is audited. Any step that breaks ends the request as Failed with a
//! reason the user can read, and that is audited too.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, error, info, info_span, warn};

use crate::audit::{AttemptedAction, AuditEntry, AuditEvent, AuditLog, CredentialEvidence};
use crate::aws::{AssumeRoleRequest, AwsFailure, CredentialSummary, ExecutionResult, Executor, StsBroker};
use crate::clock::SharedClock;
use crate::ids::{RequestId, RunbookId, SlackUserId};
use crate::request::{
    self, AccessRequest, ApproveOutcome, ApprovedQuery, CardRef, NewRequest, Refusal, RequestState, Roster,
};
use crate::runbook::{ParamError, RunbookSet, session_policy};
use crate::store::{Admission, Created, RateLimit, RequestStore, Transition};

/// How many times a decision is re-made after losing a compare-and-set to a concurrent change of the same request.
/// Each retry starts from the record that won, so a few always suffice unless the record is being hammered.
const MAX_DECISION_ATTEMPTS: usize = 5;
/// How many fresh ids to try when a generated request id is already taken (2^30 ids: a second try is already rare).
const MAX_ID_ATTEMPTS: usize = 3;

/// How long a request may stay Running before the sweeper decides its replica died. Longer than the temporary
/// credentials live (900 s), so a run still going on somewhere could not be using them any more.
pub const STUCK_AFTER: time::Duration = time::Duration::minutes(16);

/// The reason given when a run was cut short by its replica stopping.
pub const INTERRUPTED: &str = "interrupted: the jitgate replica running it stopped before it finished; nothing is re-run automatically, ask again if still needed";

/// The reason given when this replica was shut down before a query it was running finished.
pub const INTERRUPTED_BY_SHUTDOWN: &str = "interrupted: jitgate was shut down before the query finished; no rows were delivered and nothing is re-run automatically, ask again if still needed";

/// The reason recorded when the audit trail cannot take an entry: nothing proceeds without it.
pub const AUDIT_UNAVAILABLE: &str = "the audit trail could not record this step, so nothing was run";

/// Settings the engine needs beyond its clients.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// Region of the runbooks' tables, for their ARNs.
    pub region: String,
    /// New requests per user per window.
    pub rate_limit: RateLimit,
}

/// Everything the engine composes.
pub struct Engine {
    runbooks: Arc<RunbookSet>,
    store: RequestStore,
    sts: StsBroker,
    executor: Executor,
    audit: AuditLog,
    clock: SharedClock,
    settings: EngineSettings,
    /// Cancelled when a shutdown's drain deadline passes: runs still going on stop and end as interrupted.
    interrupt: CancellationToken,
}

/// The answer to a new request.
#[derive(Debug)]
pub enum SubmitOutcome {
    /// Pending approval.
    Created(Box<AccessRequest>),
    UnknownRunbook {
        typed: String,
        suggestion: Option<RunbookId>,
    },
    BadParameters {
        runbook: RunbookId,
        errors: Vec<ParamError>,
    },
    /// The rendered query cannot be run safely (e.g. its session policy would exceed AWS's limit).
    Unrunnable {
        runbook: RunbookId,
        reason: String,
    },
    /// A rule of the state machine, e.g. a missing reason.
    Refused(Refusal),
    RateLimited {
        retry_after: Duration,
    },
}

/// The answer to an Approve click.
#[derive(Debug)]
pub enum ApproveResult {
    /// No such request (never existed, or expired long ago and dropped).
    NotFound,
    /// Not counted; the request is unchanged.
    Refused { request: Box<AccessRequest>, refusal: Refusal },
    /// Counted; more distinct approvers are needed.
    Recorded { request: Box<AccessRequest>, approvals: u8, required: u8 },
    /// The last approval needed: the request is Approved (in Redis and in the audit trail). Hand `query` to
    /// [`Engine::execute`]; only this caller holds it, so the query runs once.
    Approved { request: Box<AccessRequest>, query: Box<ApprovedQuery> },
    /// The approval could not be recorded safely; `request` is Failed and `reason` says why in the user's words.
    Failed { request: Box<AccessRequest>, reason: String },
}

/// The answer to running an approved query.
#[derive(Debug)]
pub enum ExecuteResult {
    /// Run and audited. `request` is Succeeded.
    Executed { request: Box<AccessRequest>, result: ExecutionResult, audit: Box<AuditEntry> },
    /// A step broke; `request` is Failed and `reason` says why in the user's words. `alarm` is set when the
    /// failure means something is wrong with the setup itself (STS handed out credentials living longer than
    /// jitgate asked for): the operators must be told, not only the requester.
    Failed { request: Box<AccessRequest>, reason: String, alarm: bool },
}

/// The answer to a Deny, a Cancel or an expiry: the request as it now is, or why not.
#[derive(Debug)]
pub enum DecisionResult {
    NotFound,
    Refused { request: Box<AccessRequest>, refusal: Refusal },
    Done(Box<AccessRequest>),
}

impl Engine {
    pub fn new(
        runbooks: Arc<RunbookSet>,
        store: RequestStore,
        sts: StsBroker,
        executor: Executor,
        audit: AuditLog,
        clock: SharedClock,
        settings: EngineSettings,
    ) -> Engine {
        Engine { runbooks, store, sts, executor, audit, clock, settings, interrupt: CancellationToken::new() }
    }

    pub fn runbooks(&self) -> &RunbookSet {
        &self.runbooks
    }

    /// Region of the runbooks' tables.
    pub fn region(&self) -> &str {
        &self.settings.region
    }

    pub fn store(&self) -> &RequestStore {
        &self.store
    }

    pub fn audit(&self) -> &AuditLog {
        &self.audit
    }

    /// A new request: validate, render, rate-limit, store as Pending, audit.
    pub async fn submit(
        &self,
        requester: &SlackUserId,
        runbook: &str,
        args: &BTreeMap<String, String>,
        reason: Option<String>,
    ) -> anyhow::Result<SubmitOutcome> {
        let span = info_span!("submit", requester = %requester, runbook = %runbook, request_id = tracing::field::Empty);
        self.submit_inner(requester, runbook, args, reason, &span).instrument(span.clone()).await
    }

    async fn submit_inner(
        &self,
        requester: &SlackUserId,
        typed: &str,
        args: &BTreeMap<String, String>,
        reason: Option<String>,
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
        // Render the session policy now, so nobody is asked to approve a query that could never run.
        if let Err(err) = session_policy(&query) {
            self.audit_refusal(None, requester, attempted, format!("unrunnable: {err}")).await;
            return Ok(SubmitOutcome::Unrunnable { runbook: runbook.id().clone(), reason: err.to_string() });
        }
        let now = self.clock.now();
        let mut new = NewRequest {
            id: RequestId::generate(),
            requester: requester.clone(),
            reason,
            query,
            policy: runbook.approval().clone(),
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
            match self.store.create(&request).await? {
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
            let failed = self.fail(&request, AUDIT_UNAVAILABLE).await;
            return Err(anyhow::anyhow!(err).context(format!(
                "recording request {} in the audit trail (request is now {})",
                request.id,
                failed.map(|r| r.state().as_str()).unwrap_or("unknown")
            )));
        }
        info!("request created, waiting for approval");
        Ok(SubmitOutcome::Created(Box::new(request)))
    }

    /// An Approve click. When it is the last approval needed the result carries the [`ApprovedQuery`] to run.
    pub async fn approve(
        &self,
        id: &RequestId,
        approver: &SlackUserId,
        roster: &Roster,
    ) -> anyhow::Result<ApproveResult> {
        let span = info_span!("approve", request_id = %id, approver = %approver);
        async {
            for _ in 0..MAX_DECISION_ATTEMPTS {
                let Some(current) = self.store.load(id).await? else { return Ok(ApproveResult::NotFound) };
                let now = self.clock.now();
                match request::approve(&current, approver, roster, now) {
                    ApproveOutcome::Refused(refusal) => {
                        let reason = crate::audit::refusal_code(&refusal);
                        self.audit_refusal(Some(id.clone()), approver, AttemptedAction::Approve, reason).await;
                        return Ok(ApproveResult::Refused { request: Box::new(current), refusal });
                    }
                    ApproveOutcome::Recorded { next, approvals, required } => {
                        if !self.write(&current, &next).await? {
                            continue;
                        }
                        if let Some(failed) = self.audit_approval(&next, approvals, required).await {
                            return Ok(failed);
                        }
                        return Ok(ApproveResult::Recorded { request: Box::new(next), approvals, required });
                    }
                    ApproveOutcome::Approved { next, query } => {
                        if !self.write(&current, &next).await? {
                            continue;
                        }
                        let required = next.policy.required_approvals.max(1);
                        if let Some(failed) = self.audit_approval(&next, required, required).await {
                            return Ok(failed);
                        }
                        info!("approved");
                        return Ok(ApproveResult::Approved { request: Box::new(next), query: Box::new(query) });
                    }
                }
            }
            anyhow::bail!("request {id} kept changing under {MAX_DECISION_ATTEMPTS} approval attempts")
        }
        .instrument(span)
        .await
    }

    /// Audits a counted approval; on failure ends the request (fail closed) and returns the Failed result.
    async fn audit_approval(&self, request: &AccessRequest, approvals: u8, required: u8) -> Option<ApproveResult> {
        // A counted approval is always the last one on the record.
        let approval = request.approvals.last()?;
        let event = AuditEvent::Approved {
            request: request.id.clone(),
            approver: approval.approver.clone(),
            evidence: approval.evidence.clone(),
            approvals,
            required,
        };
        match self.audit.append(event).await {
            Ok(_) => None,
            Err(err) => {
                warn!(error = %err, "audit append failed; failing the request");
                let failed = self.fail(request, AUDIT_UNAVAILABLE).await.unwrap_or_else(|| request.clone());
                Some(ApproveResult::Failed { request: Box::new(failed), reason: AUDIT_UNAVAILABLE.to_owned() })
            }
        }
    }

    /// Approved → Running → Succeeded | Failed. Only the caller whose approval landed holds `query`, and only the
    /// writer of Approved → Running goes on, so the query runs once.
    pub async fn execute(&self, approved: AccessRequest, query: ApprovedQuery) -> anyhow::Result<ExecuteResult> {
        let span = info_span!("execute", request_id = %approved.id);
        self.execute_inner(approved, query).instrument(span).await
    }

    /// Stops every run of this engine that is still going on (between AssumeRole and the last page), and every
    /// later one before it starts: each ends as Failed with [`INTERRUPTED_BY_SHUTDOWN`], audited. Used by a
    /// shutdown once its drain deadline has passed; irreversible.
    pub fn interrupt_running(&self) {
        self.interrupt.cancel();
    }

    async fn execute_inner(&self, approved: AccessRequest, query: ApprovedQuery) -> anyhow::Result<ExecuteResult> {
        if self.interrupt.is_cancelled() {
            // Approved after the drain deadline: never start what would be cut short anyway.
            return Ok(self.failed_result(&approved, INTERRUPTED_BY_SHUTDOWN).await);
        }
        let now = self.clock.now();
        let running = match request::start(&approved, &query, now) {
            Ok(running) => running,
            Err(refusal) => anyhow::bail!("cannot start {}: {refusal:?}", approved.id),
        };
        if !self.write(&approved, &running).await? {
            // Nobody else holds this request's ApprovedQuery, so this means the record was changed behind our back
            // (an operator, a sweeper failing it): never run it then.
            let current = self.store.load(&approved.id).await?.unwrap_or(approved);
            let reason = format!("the request changed while starting (now {})", current.state().as_str());
            return Ok(ExecuteResult::Failed { request: Box::new(current), reason, alarm: false });
        }
        let policy = match session_policy(query.query()) {
            Ok(policy) => policy,
            Err(err) => return Ok(self.failed_result(&running, &err.to_string()).await),
        };
        // Cancelling drops the in-flight AWS call and the temporary credentials with it; nothing was delivered.
        let run = tokio::select! {
            biased;
            () = self.interrupt.cancelled() => {
                warn!("shutdown deadline reached while the query was running");
                return Ok(self.failed_result(&running, INTERRUPTED_BY_SHUTDOWN).await);
            }
            run = self.assume_and_run(&query, policy.as_json()) => run,
        };
        let (evidence, result) = match run {
            Ok(done) => done,
            Err(failure @ AwsFailure::UnacceptableCredentials { .. }) => {
                // The broker refused (and dropped) them; nothing ran, but the role or STS is misconfigured.
                error!(failure = %failure, "STS returned credentials jitgate does not accept");
                let reason = failure.user_message();
                let failed = self.fail(&running, &reason).await.unwrap_or_else(|| running.clone());
                return Ok(ExecuteResult::Failed { request: Box::new(failed), reason, alarm: true });
            }
            Err(failure) => return Ok(self.failed_result(&running, &failure.user_message()).await),
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
                let reason = "the audit trail could not record the execution, so its results are withheld";
                return Ok(self.failed_result(&running, reason).await);
            }
        };
        let succeeded = match request::succeed(&running, result.summary(), self.clock.now()) {
            Ok(next) => next,
            Err(refusal) => anyhow::bail!("cannot finish {}: {refusal:?}", running.id),
        };
        if !self.write(&running, &succeeded).await? {
            warn!("the record changed while the query ran; results were audited and are delivered");
        }
        info!(rows = result.row_count, "query executed");
        Ok(ExecuteResult::Executed { request: Box::new(succeeded), result, audit: Box::new(audit) })
    }

    /// AssumeRole with the query's session policy, then the query with those credentials only.
    async fn assume_and_run(
        &self,
        query: &ApprovedQuery,
        policy: &str,
    ) -> Result<(CredentialSummary, ExecutionResult), AwsFailure> {
        let assume = AssumeRoleRequest::for_approved(query, policy.to_owned());
        let credentials = self.sts.assume(&assume).await?;
        let evidence = credentials.summary();
        let result = self.executor.run(query, credentials).await?;
        Ok((evidence, result))
    }

    async fn failed_result(&self, request: &AccessRequest, reason: &str) -> ExecuteResult {
        warn!(reason, "execution failed");
        let failed = self.fail(request, reason).await.unwrap_or_else(|| request.clone());
        ExecuteResult::Failed { request: Box::new(failed), reason: reason.to_owned(), alarm: false }
    }

    /// Ends a request as Failed and audits it. Best effort: returns the Failed record when the write landed.
    async fn fail(&self, request: &AccessRequest, reason: &str) -> Option<AccessRequest> {
        let failed = request::fail(request, reason, self.clock.now()).ok()?;
        match self.write(request, &failed).await {
            Ok(true) => {}
            Ok(false) | Err(_) => return None,
        }
        let event = AuditEvent::Failed { request: request.id.clone(), reason: reason.to_owned() };
        if let Err(err) = self.audit.append(event).await {
            warn!(error = %err, "could not audit the failure");
        }
        Some(failed)
    }

    /// A Deny click, with the approver's optional reason.
    pub async fn deny(
        &self,
        id: &RequestId,
        by: &SlackUserId,
        reason: Option<String>,
        roster: &Roster,
    ) -> anyhow::Result<DecisionResult> {
        let span = info_span!("deny", request_id = %id, by = %by);
        self.decide(id, by, AttemptedAction::Deny, |current, now| {
            request::deny(current, by, reason.clone(), roster, now)
        })
        .instrument(span)
        .await
    }

    /// The requester withdraws a pending request.
    pub async fn cancel(&self, id: &RequestId, by: &SlackUserId) -> anyhow::Result<DecisionResult> {
        let span = info_span!("cancel", request_id = %id, by = %by);
        self.decide(id, by, AttemptedAction::Cancel, |current, now| request::cancel(current, by, now))
            .instrument(span)
            .await
    }

    /// Shared by Deny and Cancel: decide, write with compare-and-set (re-deciding after a lost race), audit.
    async fn decide(
        &self,
        id: &RequestId,
        by: &SlackUserId,
        attempted: AttemptedAction,
        rule: impl Fn(&AccessRequest, time::OffsetDateTime) -> Result<AccessRequest, Refusal>,
    ) -> anyhow::Result<DecisionResult> {
        for _ in 0..MAX_DECISION_ATTEMPTS {
            let Some(current) = self.store.load(id).await? else { return Ok(DecisionResult::NotFound) };
            let next = match rule(&current, self.clock.now()) {
                Ok(next) => next,
                Err(refusal) => {
                    let reason = crate::audit::refusal_code(&refusal);
                    self.audit_refusal(Some(id.clone()), by, attempted, reason).await;
                    return Ok(DecisionResult::Refused { request: Box::new(current), refusal });
                }
            };
            if !self.write(&current, &next).await? {
                continue;
            }
            let event = match &next.status {
                request::Status::Denied { by, reason, .. } => {
                    AuditEvent::Denied { request: id.clone(), by: by.clone(), reason: reason.clone() }
                }
                _ => AuditEvent::Cancelled { request: id.clone(), by: by.clone() },
            };
            // The decision is already final in Redis and only closes a request: a missing audit entry here is
            // logged loudly rather than undone.
            if let Err(err) = self.audit.append(event).await {
                warn!(error = %err, "could not audit the decision");
            }
            return Ok(DecisionResult::Done(Box::new(next)));
        }
        anyhow::bail!("request {id} kept changing under {MAX_DECISION_ATTEMPTS} attempts")
    }

    /// Expires every pending request whose window has passed; returns those this call expired. Safe to run on
    /// every replica at once: each expiry is one compare-and-set, so running it twice changes nothing.
    pub async fn expire_due(&self, limit: usize) -> anyhow::Result<Vec<AccessRequest>> {
        let now = self.clock.now();
        let mut expired = Vec::new();
        for id in self.store.due_for_expiry(now, limit).await? {
            let Some(current) = self.store.load(&id).await? else {
                self.store.forget_pending(&id).await?;
                continue;
            };
            let Some(next) = request::expire(&current, now) else {
                if current.state() != RequestState::Pending {
                    self.store.forget_pending(&id).await?;
                }
                continue;
            };
            if !self.write(&current, &next).await? {
                continue;
            }
            if let Err(err) = self.audit.append(AuditEvent::Expired { request: id.clone() }).await {
                warn!(request_id = %id, error = %err, "could not audit the expiry");
            }
            info!(request_id = %id, "request expired");
            expired.push(next);
        }
        Ok(expired)
    }

    /// Records where the request's approval card is, retrying over concurrent changes (a fast approver may
    /// already have moved the request on). Returns the record as stored with the card.
    pub async fn attach_card(&self, id: &RequestId, card: CardRef) -> anyhow::Result<Option<AccessRequest>> {
        for _ in 0..MAX_DECISION_ATTEMPTS {
            let Some(current) = self.store.load(id).await? else { return Ok(None) };
            let next = request::attach_card(&current, card.clone());
            if self.write(&current, &next).await? {
                return Ok(Some(next));
            }
        }
        anyhow::bail!("request {id} kept changing while recording its card")
    }

    /// Ends a request that cannot go on (e.g. its card could not be posted) as Failed, audited.
    pub async fn abandon(&self, id: &RequestId, reason: &str) -> anyhow::Result<Option<AccessRequest>> {
        for _ in 0..MAX_DECISION_ATTEMPTS {
            let Some(current) = self.store.load(id).await? else { return Ok(None) };
            if current.state().is_final() {
                return Ok(Some(current));
            }
            if let Some(failed) = self.fail(&current, reason).await {
                return Ok(Some(failed));
            }
        }
        anyhow::bail!("request {id} kept changing while being abandoned")
    }

    /// Fails requests left Running longer than [`STUCK_AFTER`] — their replica stopped mid-run (crash, kill). They
    /// are never run again automatically: the requester is told to ask again. Returns those this call failed.
    pub async fn fail_stuck(&self, limit: usize) -> anyhow::Result<Vec<AccessRequest>> {
        let now = self.clock.now();
        let mut failed = Vec::new();
        for id in self.store.running_since_before(now - STUCK_AFTER, limit).await? {
            let current = self.store.load(&id).await?;
            let stuck = match &current {
                Some(request) => {
                    matches!(request.status, request::Status::Running { since } if now - since >= STUCK_AFTER)
                }
                None => false,
            };
            if !stuck {
                // Finished, gone, or a stale entry of a start that lost its race.
                if current.as_ref().is_none_or(|r| r.state() != RequestState::Running) {
                    self.store.forget_running(&id).await?;
                }
                continue;
            }
            if let Some(request) = current
                && let Some(done) = self.fail(&request, INTERRUPTED).await
            {
                warn!(request_id = %id, "request was left running by a stopped replica; failed, not re-run");
                failed.push(done);
            }
        }
        Ok(failed)
    }

    /// Marks pending requests past half their window as reminded, once each; returns those this call marked.
    pub async fn remind_due(&self, limit: usize) -> anyhow::Result<Vec<AccessRequest>> {
        let now = self.clock.now();
        // Every pending request: the index is ordered by deadline, and none is further out than a day.
        let horizon = now + time::Duration::days(2);
        let mut reminded = Vec::new();
        for id in self.store.due_for_expiry(horizon, limit).await? {
            let Some(current) = self.store.load(&id).await? else { continue };
            let Some(next) = request::remind(&current, now) else { continue };
            if self.write(&current, &next).await? {
                reminded.push(next);
            }
        }
        Ok(reminded)
    }

    /// How many requests are waiting for approval (from the pending index, so a hint, as is a gauge).
    pub async fn pending_count(&self) -> anyhow::Result<usize> {
        let horizon = self.clock.now() + time::Duration::days(2);
        Ok(self.store.due_for_expiry(horizon, 100_000).await?.len())
    }

    /// The user's most recent requests, newest first.
    pub async fn recent_requests(&self, user: &SlackUserId, limit: usize) -> anyhow::Result<Vec<AccessRequest>> {
        let mut requests = Vec::new();
        for id in self.store.requests_of(user, limit).await? {
            if let Some(request) = self.store.load(&id).await? {
                requests.push(request);
            }
        }
        Ok(requests)
    }

    /// Audits a refusal that happened outside the engine (a malformed command, an unavailable roster).
    pub async fn record_refusal(
        &self,
        request: Option<RequestId>,
        by: &SlackUserId,
        attempted: AttemptedAction,
        reason: String,
    ) {
        self.audit_refusal(request, by, attempted, reason).await;
    }

    /// One request as stored now.
    pub async fn status(&self, id: &RequestId) -> anyhow::Result<Option<AccessRequest>> {
        Ok(self.store.load(id).await?)
    }

    /// Writes `to` over `from` with compare-and-set. `false`: someone else changed the record first.
    async fn write(&self, from: &AccessRequest, to: &AccessRequest) -> anyhow::Result<bool> {
        let outcome = self.store.transition(from, to).await.with_context(|| format!("updating request {}", from.id))?;
        Ok(matches!(outcome, Transition::Applied))
    }

    /// Records a refusal. Best effort: the refusal stands whether or not the audit trail takes it.
    async fn audit_refusal(
        &self,
        request: Option<RequestId>,
        by: &SlackUserId,
        attempted: AttemptedAction,
        reason: String,
    ) {
        let event = AuditEvent::Refused { request, by: by.clone(), attempted, reason };
        if let Err(err) = self.audit.append(event).await {
            warn!(error = %err, "could not audit a refusal");
        }
    }
}
