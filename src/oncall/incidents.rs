//! PagerDuty incidents: the one a request names (`GET /incidents/{id}`, which takes an incident's id or its
//! number), and the notes jitgate adds to its timeline (`POST /incidents/{id}/notes`, acting as the PagerDuty
//! user whose email is in the `From` header, as PagerDuty requires for writes made with an account API key).
//!
//! Only the lookup and the note; whether an incident is good enough for a request is decided by the pure rules
//! in [`crate::request`].

use serde::Deserialize;
use serde_json::json;

use super::pagerduty::{PagerDutyClient, PagerDutyError, bad_response};
use crate::request::IncidentRef;

/// Longest note sent: PagerDuty documents no limit we could confirm; a note is a few lines anyway.
const MAX_NOTE_CHARS: usize = 2000;

impl PagerDutyClient {
    /// The incident with this id or number; `Ok(None)` when PagerDuty does not know it (404).
    ///
    /// `id_or_number` must already be checked to be letters and digits only (the command parser does): it goes
    /// into the path.
    pub async fn incident(&self, id_or_number: &str) -> Result<Option<IncidentRef>, PagerDutyError> {
        debug_assert!(id_or_number.chars().all(|c| c.is_ascii_alphanumeric()));
        let path = format!("/incidents/{id_or_number}");
        let mut budget = self.budget();
        let body: IncidentBody = match self.get(&path, &[], &mut budget).await {
            Ok(body) => body,
            Err(PagerDutyError::Rejected { status: 404, .. }) => return Ok(None),
            Err(err) => return Err(err),
        };
        let i = body.incident;
        let Some(service) = i.service else { return Err(bad_response(&path, "the incident has no service")) };
        Ok(Some(IncidentRef {
            id: i.id,
            number: i.incident_number,
            title: i.title.or(i.summary).unwrap_or_default(),
            status: i.status,
            html_url: i.html_url,
            service_id: service.id,
        }))
    }

    /// Adds a note to an incident's timeline, as the PagerDuty user with email `from`.
    pub async fn add_note(&self, incident_id: &str, from: &str, content: &str) -> Result<(), PagerDutyError> {
        let path = format!("/incidents/{incident_id}/notes");
        let content: String = content.chars().take(MAX_NOTE_CHARS).collect();
        let mut budget = self.budget();
        let _: NoteBody = self.post(&path, from, &json!({ "note": { "content": content } }), &mut budget).await?;
        Ok(())
    }
}

#[derive(Debug, Deserialize)]
struct IncidentBody {
    incident: WireIncident,
}

#[derive(Debug, Deserialize)]
struct WireIncident {
    id: String,
    incident_number: u64,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    summary: Option<String>,
    status: String,
    html_url: String,
    #[serde(default)]
    service: Option<WireService>,
}

#[derive(Debug, Deserialize)]
struct WireService {
    id: String,
}

#[derive(Debug, Deserialize)]
struct NoteBody {
    #[allow(dead_code)] // Read to check the answer is a note; its fields are not needed.
    note: serde_json::Value,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pagerdutys_incident_and_note_shapes_parse() {
        let body: IncidentBody =
            serde_json::from_str(include_str!("../../samples/pagerduty/incidents.get.derived.json")).expect("incident");
        let i = body.incident;
        assert_eq!((i.id.as_str(), i.incident_number, i.status.as_str()), ("PT4KHLK", 1234, "acknowledged"));
        assert_eq!(i.title.as_deref(), Some("The server is on fire."));
        assert_eq!(i.html_url, "https://subdomain.pagerduty.com/incidents/PT4KHLK");
        assert_eq!(i.service.map(|s| s.id).as_deref(), Some("PIJ90N7"));
        let note: NoteBody =
            serde_json::from_str(include_str!("../../samples/pagerduty/incidents.notes.create.derived.json"))
                .expect("note");
        assert_eq!(note.note["content"], "Firefighters are on the scene.");
    }
}
