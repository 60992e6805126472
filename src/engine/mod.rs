//! The only place where the domain meets the clients: each user action handled end to end.
//!
//! Every action follows the same shape: load the record, let the pure rules in [`crate::request`] decide, write the
//! decision with one compare-and-set in Redis, audit it, and only then act on it. A lost compare-and-set means
//! another replica (or a second click) got there first; the engine re-reads and decides again, so an approval that
//! merely raced another one still counts, while a request that has moved on is reported as such.
//!
//! Failing closed: a query runs only after its approval is both written to Redis and recorded in the audit trail;
//! rows are delivered only after the execution is audited. Any step that breaks ends the request as Failed with a
//! typed [`FailureReason`], audited as its code plus the text the user reads (from `crate::messages`).
//!
//! Callers (the bot, tests) use the public operations only, one file per job: `submit` (submit, form
//! validation), `decide` (who may decide, approve, deny, cancel), `execute` (execute, fail, abandon), `sweep`
//! (expire, fail stuck runs, remind), `escalate` (widen the approvers of requests nobody decided on),
//! `break_glass` (run at once by someone on call, reviewed afterwards), and the small ones here (status, recent requests, delivery claims, refusals
//! that happen before the engine is asked).
//! The store and audit accessors exist for the composition root, which hands the same clients to the HTTP server.

mod break_glass;
mod decide;
mod escalate;
mod execute;
mod integrity;
mod submit;
mod sweep;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, warn};

use crate::audit::{AttemptedAction, AuditEntry, AuditEvent, AuditLog};
use crate::aws::{ExecutionResult, Executor, StsBroker};
use crate::clock::SharedClock;
use crate::command::CommandError;
use crate::ids::{RequestId, RunbookId, SlackUserId};
use crate::oncall::{RosterError, RosterReport};
use crate::request::{self, AccessRequest, ApprovedQuery, CardRef, FailureReason, Refusal};
use crate::runbook::{ParamError, RunbookSet};
use crate::seal::Sealer;
use crate::store::{CountedRefusals, RateLimit, RefusalCount, RequestStore, Transition};

pub use break_glass::{BreakGlassOutcome, BreakGlassSettings, ReviewResult};
pub use escalate::Widened;
pub use integrity::{RecordTampered, sealed_record};
pub use submit::FormProblem;

/// How many times a decision is re-made after losing a compare-and-set to a concurrent change of the same request.
/// Each retry starts from the record that won, so a few always suffice unless the record is being hammered.
const MAX_DECISION_ATTEMPTS: usize = 5;
/// How many fresh ids to try when a generated request id is already taken (2^30 ids: a second try is already rare).
const MAX_ID_ATTEMPTS: usize = 3;

/// How long a delivery key is remembered: far longer than Slack redelivers an envelope.
const DELIVERY_MEMORY: Duration = Duration::from_secs(3600);

/// Refusals per user appended to the audit trail one by one in a window; further ones in that window are counted
/// and appended as one summary entry when it is over (see `store::refusal_limit`). Generous for a person who
/// mistypes, small next to a flood.
pub const REFUSALS_APPENDED: RateLimit = RateLimit { max: 5, window: Duration::from_secs(60) };

/// How long a request may stay Running before the sweeper decides its replica died. Longer than the temporary
/// credentials live (900 s), so a run still going on somewhere could not be using them any more.
pub const STUCK_AFTER: time::Duration = time::Duration::minutes(16);

/// Settings the engine needs beyond its clients.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// Region of the runbooks' tables, for their ARNs.
    pub region: String,
    /// New requests per user per window.
    pub rate_limit: RateLimit,
    /// Seals request records, so a record changed in Redis by anyone but jitgate is refused (see `integrity`).
    pub sealer: Sealer,
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
    /// Refusal appends of this replica go one at a time, so however many are refused at once, they compete with
    /// real state changes for the head of the audit chain as one writer, not hundreds.
    refusal_lane: tokio::sync::Mutex<()>,
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
    /// `--unmask` named an attribute the runbook does not let be unmasked.
    UnmaskRefused {
        runbook: RunbookId,
        error: crate::runbook::UnmaskError,
    },
    /// A rule of the state machine, e.g. a missing reason.
    Refused(Refusal),
    RateLimited {
        retry_after: Duration,
    },
    /// The incident named (or not named) does not satisfy the runbook's incident gate.
    IncidentRefused {
        runbook: RunbookId,
        refusal: request::IncidentRefusal,
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
    /// The approval could not be recorded safely; `request` is Failed and `reason` says why.
    Failed { request: Box<AccessRequest>, reason: FailureReason },
}

/// The answer to running an approved query.
#[derive(Debug)]
pub enum ExecuteResult {
    /// Run and audited. `request` is Succeeded.
    Executed { request: Box<AccessRequest>, result: ExecutionResult, audit: Box<AuditEntry> },
    /// A step broke; `request` is Failed and `reason` says why. `alarm` is set when the
    /// failure means something is wrong with the setup itself (STS handed out credentials living longer than
    /// jitgate asked for): the operators must be told, not only the requester.
    Failed { request: Box<AccessRequest>, reason: FailureReason, alarm: bool },
}

/// The answer to a Deny, a Cancel or an expiry: the request as it now is, or why not.
#[derive(Debug)]
pub enum DecisionResult {
    NotFound,
    Refused { request: Box<AccessRequest>, refusal: Refusal },
    Done(Box<AccessRequest>),
}
/// A decision someone may try to make on a pending request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Approve,
    Deny,
}

impl Decision {
    fn attempted(self) -> AttemptedAction {
        match self {
            Decision::Approve => AttemptedAction::Approve,
            Decision::Deny => AttemptedAction::Deny,
        }
    }
}

/// The answer to "may this person decide on this request now?" ([`Engine::may_decide`]).
#[derive(Debug)]
pub enum MayDecide {
    NotFound,
    /// Yes: the request as loaded, and the roster that says so (the card names who may approve from it).
    Yes {
        request: Box<AccessRequest>,
        report: Box<RosterReport>,
    },
    /// No: a rule refuses it. Audited.
    Refused {
        request: Box<AccessRequest>,
        refusal: Refusal,
    },
    /// Nobody can say who is on call now, so nobody may decide (fail closed). Audited.
    RosterUnavailable {
        request: Box<AccessRequest>,
        error: RosterError,
    },
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
        Engine {
            runbooks,
            store,
            sts,
            executor,
            audit,
            clock,
            settings,
            interrupt: CancellationToken::new(),
            refusal_lane: tokio::sync::Mutex::new(()),
        }
    }

    pub fn runbooks(&self) -> &RunbookSet {
        &self.runbooks
    }

    /// The request store, for the composition root (the HTTP server's readiness check reads it too).
    pub fn store(&self) -> &RequestStore {
        &self.store
    }

    /// The audit log, for the composition root (the HTTP server's audit pages read it too).
    pub fn audit(&self) -> &AuditLog {
        &self.audit
    }

    /// Records where the request's approval card is, retrying over concurrent changes (a fast approver may
    /// already have moved the request on). Returns the record as stored with the card.
    pub async fn attach_card(&self, id: &RequestId, card: CardRef) -> anyhow::Result<Option<AccessRequest>> {
        for _ in 0..MAX_DECISION_ATTEMPTS {
            let Some(current) = self.load(id).await? else { return Ok(None) };
            let next = request::attach_card(&current, card.clone());
            if self.write(&current, &next).await? {
                return Ok(Some(next));
            }
        }
        anyhow::bail!("request {id} kept changing while recording its card")
    }

    /// The user's most recent requests, newest first.
    pub async fn recent_requests(&self, user: &SlackUserId, limit: usize) -> anyhow::Result<Vec<AccessRequest>> {
        let mut requests = Vec::new();
        for id in self.store.requests_of(user, limit).await? {
            if let Some(request) = self.load(&id).await? {
                requests.push(request);
            }
        }
        Ok(requests)
    }

    /// Claims one user action's delivery key: `false` when it was claimed before (a redelivery, or a duplicate
    /// handled on another replica). An `Err` means nobody can know, and the caller must not act (fail closed).
    pub async fn claim_delivery(&self, key: &str) -> anyhow::Result<bool> {
        Ok(self.store.first_delivery(key, DELIVERY_MEMORY).await?)
    }

    /// Audits a slash command that did not parse: the user was already told, the trail still records the attempt.
    pub async fn refuse_malformed_command(&self, user: &SlackUserId, typed: &str, error: &CommandError) {
        let attempted = AttemptedAction::Request { runbook: typed.chars().take(200).collect() };
        self.audit_refusal(None, user, attempted, format!("malformed_command: {error}")).await;
    }

    /// One request as stored now.
    pub async fn status(&self, id: &RequestId) -> anyhow::Result<Option<AccessRequest>> {
        self.load(id).await
    }

    /// Writes `to` over `from` with compare-and-set. `false`: someone else changed the record first.
    async fn write(&self, from: &AccessRequest, to: &AccessRequest) -> anyhow::Result<bool> {
        let sealed = self.sealed(to);
        let outcome =
            self.store.transition(from, &sealed).await.with_context(|| format!("updating request {}", from.id))?;
        Ok(matches!(outcome, Transition::Applied))
    }

    /// Records a refusal. Best effort: the refusal stands whether or not the audit trail takes it.
    ///
    /// Within the user's limit ([`REFUSALS_APPENDED`]) it is appended as it comes; beyond it, it is only counted in
    /// Redis, and the count is appended as one `refusals_counted` entry once the window is over (carried by the
    /// user's next refusal, or by the sweeper: [`Engine::summarise_counted_refusals`]). Without Redis it is appended
    /// as before: nothing is dropped unaccounted.
    async fn audit_refusal(
        &self,
        request: Option<RequestId>,
        by: &SlackUserId,
        attempted: AttemptedAction,
        reason: String,
    ) {
        let event = AuditEvent::Refused { request, by: by.clone(), attempted, reason };
        match self.store.count_refusal(by, REFUSALS_APPENDED, self.clock.now()).await {
            Ok(RefusalCount::Counted { window_ends }) => {
                debug!(user = %by, until = %window_ends, "refusal counted; its window's summary is appended later");
                return;
            }
            Ok(RefusalCount::Append { carried: Some(counted) }) => self.append_counted_refusals(counted).await,
            Ok(RefusalCount::Append { carried: None }) => {}
            Err(err) => warn!(error = %err, "could not count the refusal; appending it"),
        }
        self.append_refusal(event).await;
    }

    /// Appends one refusal or summary through this replica's refusal lane.
    async fn append_refusal(&self, event: AuditEvent) -> bool {
        let _lane = self.refusal_lane.lock().await;
        match self.audit.append(event).await {
            Ok(_) => true,
            Err(err) => {
                warn!(error = %err, "could not audit a refusal");
                false
            }
        }
    }

    async fn append_counted_refusals(&self, counted: CountedRefusals) {
        let CountedRefusals { user, count, first, last } = counted;
        let event = AuditEvent::RefusalsCounted { by: user.clone(), count, first, last };
        if !self.append_refusal(event).await {
            // Taken from Redis already: the log is where these are accounted for now.
            error!(user = %user, count, first = %first, last = %last, "refusals counted but not in the audit trail");
        }
    }

    /// Appends the summary of every window of counted refusals that is over; returns how many summaries.
    pub async fn summarise_counted_refusals(&self, limit: usize) -> anyhow::Result<usize> {
        let now = self.clock.now();
        let mut summarised = 0;
        for user in self.store.refusals_due(now, limit).await? {
            if let Some(counted) = self.store.take_counted_refusals(&user, REFUSALS_APPENDED, now).await? {
                self.append_counted_refusals(counted).await;
                summarised += 1;
            }
        }
        Ok(summarised)
    }
}
