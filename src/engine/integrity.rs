//! Trusting Redis for nothing that decides what runs.
//!
//! Whoever can write to Redis could otherwise change a pending request's partition value, recompute the plain
//! SHA-256 fingerprint, and have the on-call approver's click run another customer's query. Three checks stop it:
//!
//! 1. **Sealed records.** Every record the engine writes carries an HMAC seal ([`crate::seal`]) over all of its
//!    content, under a key Redis never sees; every record it reads is checked. A record without a valid seal is
//!    refused: the attempt is audited as an integrity violation and the bot raises a security alert.
//! 2. **What the approver saw.** The Approve button carries the fingerprint its card showed (see
//!    `messages::approve_value`); an approval counts only for a record with that very fingerprint.
//! 3. **What was requested.** Right before the credentials are asked for, the operation about to run must be the
//!    one the audit trail recorded when the request was made (same fingerprint, query, requester and runbook),
//!    and the trail must not already hold an execution of it: a replayed older record cannot run twice.

use std::time::Duration;

use tracing::{error, warn};

use super::Engine;
use crate::audit::AuditEvent;
use crate::ids::RequestId;
use crate::request::{AccessRequest, ApprovedQuery};
use crate::seal::Sealer;

/// How often the audit trail is asked for the request's `requested` entry before giving up: it is read through an
/// index, which DynamoDB updates a moment after the write.
const REQUESTED_ENTRY_ATTEMPTS: u32 = 3;
const REQUESTED_ENTRY_RETRY: Duration = Duration::from_millis(250);

/// A stored request record that was changed outside jitgate. Returned inside the engine's `anyhow::Error` so every
/// operation that loads a record refuses it the same way; the bot tells the user and raises a security alert.
#[derive(Debug, thiserror::Error)]
#[error("request {id} failed its integrity check: {why}")]
pub struct RecordTampered {
    pub id: RequestId,
    pub why: &'static str,
}

impl Engine {
    /// The stored record, seal checked. A bad seal is audited and returned as [`RecordTampered`].
    pub(super) async fn load(&self, id: &RequestId) -> anyhow::Result<Option<AccessRequest>> {
        let Some(record) = self.store.load(id).await? else { return Ok(None) };
        match self.check_seal(&record) {
            Ok(()) => Ok(Some(record)),
            Err(why) => {
                self.report_tampering(id, why).await;
                Err(RecordTampered { id: id.clone(), why }.into())
            }
        }
    }

    /// `request` with a fresh seal, ready to be written.
    pub(super) fn sealed(&self, request: &AccessRequest) -> AccessRequest {
        sealed_record(&self.settings.sealer, request)
    }

    fn check_seal(&self, record: &AccessRequest) -> Result<(), &'static str> {
        let Some(seal) = &record.seal else { return Err("it carries no seal") };
        let mut unsealed = record.clone();
        unsealed.seal = None;
        if self.settings.sealer.verify(&sealing_bytes(&unsealed), seal) {
            Ok(())
        } else {
            Err("its seal does not match its content")
        }
    }

    async fn report_tampering(&self, id: &RequestId, why: &'static str) {
        error!(request_id = %id, why, "security: a request record was changed outside jitgate; refusing it");
        let event = AuditEvent::IntegrityViolation { request: id.clone(), detail: format!("record in Redis: {why}") };
        if let Err(err) = self.audit.append(event).await {
            warn!(request_id = %id, error = %err, "could not audit the integrity violation");
        }
    }

    /// Check 3: the operation about to run is the one the audit trail recorded as requested, and has not run.
    /// `Err` carries what is wrong, for the Failed reason and the alert.
    pub(super) async fn matches_the_requested_entry(
        &self,
        request: &AccessRequest,
        query: &ApprovedQuery,
    ) -> Result<(), String> {
        for attempt in 1..=REQUESTED_ENTRY_ATTEMPTS {
            let entries = self
                .audit
                .entries_for(&request.id)
                .await
                .map_err(|err| format!("the audit trail could not be read to check it: {err}"))?;
            if entries.iter().any(|e| matches!(e.event, AuditEvent::Executed { .. })) {
                return Err("the audit trail shows it already ran".to_owned());
            }
            let requested = entries.iter().find_map(|e| match &e.event {
                AuditEvent::Requested { requester, runbook, query, fingerprint, .. } => {
                    Some((requester, runbook, query, fingerprint))
                }
                _ => None,
            });
            if let Some((requester, runbook, recorded, fingerprint)) = requested {
                let same = fingerprint == query.approved_fingerprint()
                    && **recorded == *query.query()
                    && recorded.fingerprint() == *fingerprint
                    && *requester == request.requester
                    && *runbook == request.query.runbook;
                return if same {
                    Ok(())
                } else {
                    Err("the operation is not the one recorded when the request was made".to_owned())
                };
            }
            if attempt < REQUESTED_ENTRY_ATTEMPTS {
                tokio::time::sleep(REQUESTED_ENTRY_RETRY).await;
            }
        }
        Err("the audit trail holds no record of the request being made".to_owned())
    }
}

/// `request` sealed with `sealer`, as every replica holding the same link secret writes it. Public for tools and
/// tests that play another replica; without the secret nobody can call it usefully.
pub fn sealed_record(sealer: &Sealer, request: &AccessRequest) -> AccessRequest {
    let mut sealed = request.clone();
    sealed.seal = None;
    sealed.seal = Some(sealer.seal(&sealing_bytes(&sealed)));
    sealed
}

/// The bytes a seal covers: the record's JSON without its seal. Serializing a struct is deterministic (fields in
/// declaration order, maps ordered), so a record read back re-serializes to the bytes that were sealed.
fn sealing_bytes(record: &AccessRequest) -> Vec<u8> {
    serde_json::to_vec(record).expect("a request record always serializes")
}
