//! What the runbook gates add to a request (pure): the PagerDuty incident it was made under, and how far its
//! approvers were widened by staged escalation.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{AccessRequest, RequestState};
use crate::runbook::IncidentGate;

/// The PagerDuty incident a request names (`--incident`), as PagerDuty described it when it was checked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentRef {
    /// PagerDuty's incident id (e.g. `PT4KHLK`), whichever of id or number the requester typed.
    pub id: String,
    pub number: u64,
    pub title: String,
    /// `triggered` or `acknowledged` when checked (a resolved incident is refused).
    pub status: String,
    /// The incident's page in PagerDuty, shown on the card.
    pub html_url: String,
    /// The service the incident is on.
    pub service_id: String,
}

/// What PagerDuty said about the incident a request names, as the bot found out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IncidentLookup {
    /// No `--incident` was given.
    NotGiven,
    Found(IncidentRef),
    /// PagerDuty does not know `given`.
    NotFound {
        given: String,
    },
    /// PagerDuty could not be asked (or no PagerDuty is configured): `problem` says why.
    Unavailable {
        given: String,
        problem: String,
    },
}

/// Why a request's incident is not accepted. Each is a clear refusal for the user, audited by its code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IncidentRefusal {
    /// The runbook requires an incident and none was named.
    Required,
    NotFound {
        given: String,
    },
    /// Resolved incidents do not justify access any more.
    NotOpen {
        incident: Box<IncidentRef>,
    },
    /// The runbook accepts only incidents on some services.
    OtherService {
        incident: Box<IncidentRef>,
        services: Vec<String>,
    },
    /// Nobody could check the incident, so the request is refused (fail closed).
    Unverifiable {
        given: String,
        problem: String,
    },
}

impl IncidentRefusal {
    /// The code recorded in the audit trail.
    pub fn code(&self) -> String {
        match self {
            IncidentRefusal::Required => "incident_required".to_owned(),
            IncidentRefusal::NotFound { given } => format!("incident_not_found:{given}"),
            IncidentRefusal::NotOpen { incident } => format!("incident_not_open:{}:{}", incident.id, incident.status),
            IncidentRefusal::OtherService { incident, .. } => {
                format!("incident_other_service:{}:{}", incident.id, incident.service_id)
            }
            IncidentRefusal::Unverifiable { given, .. } => format!("incident_unverifiable:{given}"),
        }
    }
}

/// PagerDuty statuses of an incident that is still being worked on.
const OPEN_STATUSES: [&str; 2] = ["triggered", "acknowledged"];

/// Whether what was found about the named incident satisfies the runbook's gate: the incident the request
/// carries (`None` when none was named and none is required), or why not. A named incident is always checked,
/// required or not: a request must never display an incident that is closed or made up.
pub fn judge_incident(gate: &IncidentGate, lookup: IncidentLookup) -> Result<Option<IncidentRef>, IncidentRefusal> {
    let incident = match lookup {
        IncidentLookup::NotGiven if gate.required => return Err(IncidentRefusal::Required),
        IncidentLookup::NotGiven => return Ok(None),
        IncidentLookup::NotFound { given } => return Err(IncidentRefusal::NotFound { given }),
        IncidentLookup::Unavailable { given, problem } => return Err(IncidentRefusal::Unverifiable { given, problem }),
        IncidentLookup::Found(incident) => incident,
    };
    if !OPEN_STATUSES.contains(&incident.status.as_str()) {
        return Err(IncidentRefusal::NotOpen { incident: Box::new(incident) });
    }
    if !gate.services.is_empty() && !gate.services.contains(&incident.service_id) {
        let services = gate.services.iter().cloned().collect();
        return Err(IncidentRefusal::OtherService { incident: Box::new(incident), services });
    }
    Ok(Some(incident))
}

/// The escalation level a request's approvers come from now: 1 until it was widened.
pub fn escalation_level(request: &AccessRequest) -> u32 {
    request.escalated_to.unwrap_or(1)
}

/// When a pending request's next escalation level is due: `level × escalate_after` after it was made. `None` when
/// it will not widen again (no escalation, already at the maximum, or no longer pending).
pub fn escalation_due_at(request: &AccessRequest) -> Option<OffsetDateTime> {
    let escalation = request.policy.escalation?;
    let level = escalation_level(request);
    if request.state() != RequestState::Pending || level >= escalation.max_level {
        return None;
    }
    let after = time::Duration::try_from(escalation.after).ok()?;
    Some(request.created_at + after * level)
}

/// What one escalation step did.
#[derive(Debug, Clone, PartialEq)]
pub enum Escalated {
    /// Widened to `level`; `at_max` when no further widening will follow.
    Widened { next: AccessRequest, level: u32, at_max: bool },
}

/// Widens a pending request's approvers by one escalation level when its policy says so and the wait for that
/// level has passed: level `n + 1` is due `n × escalate_after` after the request was made, up to the policy's
/// maximum. `None` when nothing is due (not pending, no escalation, already at the maximum, too early), so
/// concurrent sweepers (through compare-and-set) widen each level once.
pub fn escalate(request: &AccessRequest, now: OffsetDateTime) -> Option<Escalated> {
    let escalation = request.policy.escalation?;
    if now >= request.expires_at || now < escalation_due_at(request)? {
        return None;
    }
    let next_level = escalation_level(request) + 1;
    let next = AccessRequest { escalated_to: Some(next_level), version: request.version + 1, ..request.clone() };
    Some(Escalated::Widened { next, level: next_level, at_max: next_level >= escalation.max_level })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn incident(status: &str, service: &str) -> IncidentRef {
        IncidentRef {
            id: "PT4KHLK".into(),
            number: 1234,
            title: "Orders stuck in paid".into(),
            status: status.into(),
            html_url: "https://acme.pagerduty.com/incidents/PT4KHLK".into(),
            service_id: service.into(),
        }
    }

    fn gate(required: bool, services: &[&str]) -> IncidentGate {
        IncidentGate { required, services: services.iter().map(|s| s.to_string()).collect() }
    }

    #[test]
    fn a_required_incident_must_be_named_and_open() {
        let required = gate(true, &[]);
        assert_eq!(judge_incident(&required, IncidentLookup::NotGiven), Err(IncidentRefusal::Required));
        assert_eq!(judge_incident(&gate(false, &[]), IncidentLookup::NotGiven), Ok(None));
        for open in ["triggered", "acknowledged"] {
            let found = IncidentLookup::Found(incident(open, "PSVC"));
            assert_eq!(judge_incident(&required, found), Ok(Some(incident(open, "PSVC"))));
        }
        let resolved = IncidentLookup::Found(incident("resolved", "PSVC"));
        assert_eq!(
            judge_incident(&required, resolved),
            Err(IncidentRefusal::NotOpen { incident: Box::new(incident("resolved", "PSVC")) })
        );
    }

    #[test]
    fn a_named_incident_is_checked_even_when_not_required() {
        let optional = gate(false, &[]);
        let resolved = IncidentLookup::Found(incident("resolved", "PSVC"));
        assert!(matches!(judge_incident(&optional, resolved), Err(IncidentRefusal::NotOpen { .. })));
        let unknown = IncidentLookup::NotFound { given: "99".into() };
        assert_eq!(judge_incident(&optional, unknown), Err(IncidentRefusal::NotFound { given: "99".into() }));
        let down = IncidentLookup::Unavailable { given: "99".into(), problem: "down".into() };
        assert!(matches!(judge_incident(&optional, down), Err(IncidentRefusal::Unverifiable { .. })));
    }

    #[test]
    fn services_limit_which_incidents_count() {
        let orders = gate(true, &["PORDERSVC"]);
        let elsewhere = IncidentLookup::Found(incident("triggered", "POTHER"));
        assert!(matches!(judge_incident(&orders, elsewhere), Err(IncidentRefusal::OtherService { .. })));
        let here = IncidentLookup::Found(incident("triggered", "PORDERSVC"));
        assert!(judge_incident(&orders, here).is_ok());
    }
}
