//! The sweeper's work, safe on every replica at once: expire what is due, fail runs whose replica died, mark
//! half-way reminders, count what is pending.

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

    /// Fails requests left Running longer than [`STUCK_AFTER`] — their replica stopped mid-run (crash, kill). They
    /// are never run again automatically: the requester is told to ask again. Returns those this call failed.
    pub async fn fail_stuck(&self, limit: usize) -> anyhow::Result<Vec<AccessRequest>> {
        let now = self.clock.now();
        let mut failed = Vec::new();
        for id in self.store.running_since_before(now - STUCK_AFTER, limit).await? {
            let current = self.sweepable(&id).await?;
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
                && let Some(done) = self.fail(&request, &FailureReason::Interrupted).await
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
            let Some(current) = self.sweepable(&id).await? else { continue };
            let Some(next) = request::remind(&current, now) else { continue };
            if self.write(&current, &next).await? {
                reminded.push(next);
            }
        }
        Ok(reminded)
    }

    /// A record for the sweeper. One that fails its seal check was audited and alerted on by [`Engine::load`]; the
    /// sweeper treats it as gone (its index entries are dropped), so one bad record cannot stop every sweep or be
    /// reported again on each pass. Nobody acts on it: any click on it is refused the same way.
    async fn sweepable(&self, id: &crate::ids::RequestId) -> anyhow::Result<Option<AccessRequest>> {
        match self.load(id).await {
            Ok(found) => Ok(found),
            Err(err) if err.is::<super::RecordTampered>() => {
                self.store.forget_pending(id).await?;
                self.store.forget_running(id).await?;
                Ok(None)
            }
            Err(err) => Err(err),
        }
    }

    /// How many requests are waiting for approval (from the pending index, so a hint, as is a gauge).
    pub async fn pending_count(&self) -> anyhow::Result<usize> {
        let horizon = self.clock.now() + time::Duration::days(2);
        Ok(self.store.due_for_expiry(horizon, 100_000).await?.len())
    }
}
