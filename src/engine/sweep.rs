//! The sweeper's work, safe on every replica at once: expire what is due, fail runs (and approved requests never
//! started) whose replica died, mark half-way reminders, count what is pending.

use tracing::{info, warn};

use super::{Engine, STUCK_AFTER};
use crate::audit::AuditEvent;
use crate::request::{self, AccessRequest, FailureReason, RequestState};

impl Engine {
    /// Expires every pending request whose window has passed; returns those this call expired. Safe to run on
    /// every replica at once: each expiry is one compare-and-set, so running it twice changes nothing.
    pub async fn expire_due(&self, limit: usize) -> anyhow::Result<Vec<AccessRequest>> {
        let now = self.clock.now();
        let mut expired = Vec::new();
        for id in self.store.due_for_expiry(now, limit).await? {
            let Some(current) = self.sweepable(&id).await? else {
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

    /// Fails requests left Running, or Approved and never started, longer than [`STUCK_AFTER`] — their replica
    /// stopped mid-run or between the approval and the start (crash, kill, Redis lost). They are never run
    /// automatically: the requester is told to ask again. Returns those this call failed: a stuck run ends as
    /// [`FailureReason::Interrupted`], a request never started as [`FailureReason::NeverStarted`].
    ///
    /// A run whose execution is in the audit trail is not failed: its replica ran and audited it, then could not
    /// record the success in Redis. The record is brought in line with the trail (Succeeded) instead.
    pub async fn fail_stuck(&self, limit: usize) -> anyhow::Result<Vec<AccessRequest>> {
        let now = self.clock.now();
        let mut failed = Vec::new();
        for id in self.store.running_since_before(now - STUCK_AFTER, limit).await? {
            let current = self.sweepable(&id).await?;
            let reason = match current.as_ref().map(|r| &r.status) {
                Some(request::Status::Running { since }) if now - *since >= STUCK_AFTER => FailureReason::Interrupted,
                Some(request::Status::Approved { at }) if now - *at >= STUCK_AFTER => FailureReason::NeverStarted,
                _ => {
                    // Finished, gone, or a stale entry of a transition that lost its race.
                    if current
                        .as_ref()
                        .is_none_or(|r| !matches!(r.state(), RequestState::Running | RequestState::Approved))
                    {
                        self.store.forget_running(&id).await?;
                    }
                    continue;
                }
            };
            let Some(request) = current else { continue };
            if reason == FailureReason::Interrupted && self.finish_from_audit(&request).await {
                continue;
            }
            if let Some(done) = self.fail(&request, &reason).await {
                warn!(request_id = %id, reason = reason.code(), "request left by a stopped replica; failed, not run");
                failed.push(done);
            }
        }
        Ok(failed)
    }

    /// Whether `running` was executed after all (its `executed` entry is in the trail); if so, records it as
    /// Succeeded. An unreadable trail counts as executed for this pass: the request is looked at again next time
    /// rather than failed against what the trail may say.
    async fn finish_from_audit(&self, running: &AccessRequest) -> bool {
        let entries = match self.audit.entries_for(&running.id).await {
            Ok(entries) => entries,
            Err(err) => {
                warn!(request_id = %running.id, error = %err, "cannot read the audit trail of a stuck run; left for now");
                return true;
            }
        };
        let Some(summary) = entries.iter().find_map(|entry| match &entry.event {
            AuditEvent::Executed { summary, .. } => Some(summary.clone()),
            _ => None,
        }) else {
            return false;
        };
        if let Ok(succeeded) = request::succeed(running, summary, self.clock.now()) {
            match self.write(running, &succeeded).await {
                Ok(true) => info!(request_id = %running.id, "a run audited as executed is recorded as succeeded"),
                Ok(false) => {}
                Err(err) => warn!(request_id = %running.id, error = %err, "could not record the audited run"),
            }
        }
        true
    }

    /// Marks pending requests past half their window as reminded, once each; returns those this call marked.
    /// Reads only the requests the reminder index says are due, so a pass costs what is due, not what is pending.
    pub async fn remind_due(&self, limit: usize) -> anyhow::Result<Vec<AccessRequest>> {
        let now = self.clock.now();
        let mut reminded = Vec::new();
        for id in self.store.due_for_reminder(now, limit).await? {
            let current = self.sweepable(&id).await?;
            if let Some(current) = &current {
                if let Some(next) = request::remind(current, now) {
                    if !self.write(current, &next).await? {
                        // Changed meanwhile (an approval counted): looked at again on the next pass.
                        continue;
                    }
                    reminded.push(next);
                } else if current.state() == RequestState::Pending
                    && !current.reminded
                    && now < request::reminder_due_at(current)
                {
                    // Listed early (an id reused with a later window): kept until its real half-way point.
                    continue;
                }
            }
            self.store.forget_reminder(&id).await?;
        }
        Ok(reminded)
    }

    /// A record for the sweeper. One that fails its seal check was audited and alerted on by [`Engine::load`]; the
    /// sweeper treats it as gone (its index entries are dropped), so one bad record cannot stop every sweep or be
    /// reported again on each pass. Nobody acts on it: any click on it is refused the same way.
    pub(super) async fn sweepable(&self, id: &crate::ids::RequestId) -> anyhow::Result<Option<AccessRequest>> {
        match self.load(id).await {
            Ok(found) => Ok(found),
            Err(err) if err.is::<super::RecordTampered>() => {
                self.store.forget_pending(id).await?;
                self.store.forget_reminder(id).await?;
                self.store.forget_running(id).await?;
                Ok(None)
            }
            Err(err) => Err(err),
        }
    }

    /// How many requests are waiting for approval (from the pending index, so a hint, as is a gauge).
    pub async fn pending_count(&self) -> anyhow::Result<usize> {
        Ok(self.store.pending_count().await?)
    }
}
