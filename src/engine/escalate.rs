//! Staged escalation: pending requests nobody decided on in time get their approvers widened to the next
//! escalation level of the runbook's escalation policies, one level per `approval.escalate_after`, up to the
//! runbook's `max_escalation_level`. Run by the sweeper; safe on every replica at once (each step is one
//! compare-and-set, so a level is widened once), audited as `escalated`. The store's escalation index lists each
//! escalating request at the time its next level is due, so the sweeper reads only those.
//!
//! Who may approve at the widened level is decided at click time, as always: [`Engine::may_decide`] asks the
//! roster for the request's current level.

use tracing::{info, warn};

use super::Engine;
use crate::audit::AuditEvent;
use crate::request::{self, AccessRequest, Escalated};

/// One request whose approvers were just widened.
#[derive(Debug, Clone)]
pub struct Widened {
    pub request: AccessRequest,
    /// The request is now at its runbook's deepest level: it will not widen again.
    pub at_max: bool,
}

impl Engine {
    /// Widens every pending request whose next escalation level is due; returns those this call widened. Reads
    /// only what the escalation index lists as due, so a sweep costs what is due, not what is pending.
    pub async fn escalate_due(&self, limit: usize) -> anyhow::Result<Vec<Widened>> {
        let now = self.clock.now();
        let mut widened = Vec::new();
        for id in self.store.due_for_escalation(now, limit).await? {
            let Some(current) = self.sweepable(&id).await? else {
                self.store.forget_escalation(&id).await?;
                continue;
            };
            let Some(Escalated::Widened { next, level, at_max }) = request::escalate(&current, now) else {
                match request::escalation_due_at(&current) {
                    // Listed early (an id reused with a later window): kept until its level is due.
                    Some(due) if now < due && now < current.expires_at => {}
                    _ => self.store.forget_escalation(&id).await?,
                }
                continue;
            };
            if !self.write(&current, &next).await? {
                // Changed meanwhile (an approval counted, another replica widened it): looked at again next pass.
                continue;
            }
            match request::escalation_due_at(&next) {
                Some(due) => self.store.list_for_escalation(&id, due).await?,
                None => self.store.forget_escalation(&id).await?,
            }
            let max_level = next.policy.escalation.map(|e| e.max_level).unwrap_or(level);
            // Widening only lets more on-call people decide; the record already says so, and the click-time check
            // reads the record. A missing entry is logged loudly rather than undone.
            if let Err(err) = self.audit.append(AuditEvent::Escalated { request: id.clone(), level, max_level }).await {
                warn!(request_id = %id, error = %err, "could not audit the escalation");
            }
            info!(request_id = %id, level, max_level, "approvers widened");
            widened.push(Widened { request: next, at_max });
        }
        Ok(widened)
    }
}
