//! The PagerDuty incident a request names (`--incident`): looked up before the engine judges it against the
//! runbook's gate, and kept informed: a note on the incident's timeline when the request is approved and when it
//! finishes (request id, runbook, outcome, audit link; never rows).
//!
//! Notes are best effort and off the critical path: each is written by a background task, the "finished" note
//! after the "approved" one, and a failure is logged, never shown as the request's failure.

use tokio::task::JoinHandle;
use tracing::{info, warn};

use super::Bot;
use crate::messages;
use crate::request::{AccessRequest, IncidentLookup};

impl Bot {
    /// What PagerDuty says about the incident `given` (an id or number, already checked to be letters and digits).
    pub(super) async fn look_up_incident(&self, given: Option<String>) -> IncidentLookup {
        let Some(given) = given else { return IncidentLookup::NotGiven };
        let Some(client) = self.roster.pagerduty() else {
            let problem = "jitgate has no PagerDuty API token configured, so it cannot check incidents".to_owned();
            return IncidentLookup::Unavailable { given, problem };
        };
        match client.incident(&given).await {
            Ok(Some(incident)) => IncidentLookup::Found(incident),
            Ok(None) => IncidentLookup::NotFound { given },
            Err(err) => {
                warn!(incident = %given, error = %err, "could not check the incident");
                IncidentLookup::Unavailable { given, problem: err.to_string() }
            }
        }
    }

    /// Adds `note` to the timeline of the request's incident, after `after` (the previous note of the same
    /// request) is written. `None` when there is no incident or notes are not configured.
    pub(super) fn note_on_incident(
        &self,
        request: &AccessRequest,
        note: String,
        after: Option<JoinHandle<()>>,
    ) -> Option<JoinHandle<()>> {
        let incident = request.incident.as_ref()?;
        let from = self.settings.incident_notes_from.clone()?;
        let client = self.roster.pagerduty()?.clone();
        let (incident_id, request_id) = (incident.id.clone(), request.id.clone());
        Some(tokio::spawn(async move {
            if let Some(previous) = after {
                let _ = previous.await;
            }
            match client.add_note(&incident_id, &from, &note).await {
                Ok(()) => info!(request_id = %request_id, incident = %incident_id, "note added to the incident"),
                Err(err) => {
                    warn!(request_id = %request_id, incident = %incident_id, error = %err, "could not add the incident note")
                }
            }
        }))
    }

    /// The "approved" note of a request that has an incident.
    pub(super) fn note_approved(&self, request: &AccessRequest) -> Option<JoinHandle<()>> {
        request.incident.as_ref()?;
        let note = messages::incident_note_approved(request, &self.audit_link(&request.id));
        self.note_on_incident(request, note, None)
    }

    /// The "finished" note (succeeded or failed), after the "approved" one.
    pub(super) fn note_finished(&self, request: &AccessRequest, after: Option<JoinHandle<()>>) {
        if request.incident.is_none() {
            return;
        }
        let note = messages::incident_note_finished(request, &self.audit_link(&request.id));
        self.note_on_incident(request, note, after);
    }
}
