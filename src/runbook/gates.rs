//! The gates a runbook may put in front of its requests beyond approval: a PagerDuty incident the request must
//! name (`incident:`), break-glass for whoever is on call (`break_glass:`), and staged escalation of the approvers when nobody decides (`approval.escalate_after`,
//! `approval.max_escalation_level`).
//!
//! The YAML shapes live here next to their checks, so the rest of the runbook schema only gains one field per
//! gate. Checks return the problems as `(field, problem, fix)`; `validate.rs` reports them with the file name like
//! every other runbook mistake.

use std::collections::BTreeSet;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Longest wait before the approvers are widened: past it the request would mostly have expired.
pub const MAX_ESCALATE_AFTER: Duration = Duration::from_secs(4 * 60 * 60);
/// Shortest wait before widening: people need a moment to see the card.
pub const MIN_ESCALATE_AFTER: Duration = Duration::from_secs(60);
/// Deepest escalation level a runbook may widen to. PagerDuty allows up to 20 rules; 10 is already a company-wide
/// page.
pub const MAX_ESCALATION_LEVEL: u32 = 10;

/// `incident:` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawIncidentGate {
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub services: Vec<String>,
}

/// `break_glass:` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBreakGlass {
    #[serde(default)]
    pub allowed: bool,
}

/// Whether the runbook allows `--break-glass`: someone on call for it runs it at once, reviewed afterwards.
pub(super) fn check_break_glass(raw: Option<&RawBreakGlass>) -> bool {
    raw.is_some_and(|b| b.allowed)
}

/// Whether requests must name a PagerDuty incident, and on which services it must be.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IncidentGate {
    /// `--incident` must name an open (triggered or acknowledged) incident.
    pub required: bool,
    /// When not empty, the incident must be on one of these PagerDuty services.
    pub services: BTreeSet<String>,
}

/// Staged escalation of an approval policy: when nobody has decided after `after`, the approvers widen to the
/// next level of the escalation policies, one level per `after`, up to `max_level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Escalation {
    #[serde(with = "humantime_serde")]
    pub after: Duration,
    pub max_level: u32,
}

/// One problem: the field, what is wrong, how to fix it.
pub(super) type Problem = (String, String, String);

fn problem(field: impl Into<String>, what: impl Into<String>, fix: impl Into<String>) -> Problem {
    (field.into(), what.into(), fix.into())
}

/// Checks `incident:`; `is_pagerduty_id` is the runbook validator's id rule.
pub(super) fn check_incident(
    raw: Option<&RawIncidentGate>,
    is_pagerduty_id: impl Fn(&str) -> bool,
) -> Result<IncidentGate, Vec<Problem>> {
    let Some(raw) = raw else { return Ok(IncidentGate::default()) };
    let mut problems = Vec::new();
    let mut services = BTreeSet::new();
    for (i, id) in raw.services.iter().enumerate() {
        let field = format!("incident.services[{i}]");
        if !is_pagerduty_id(id) {
            problems.push(problem(
                field,
                format!("`{id}` is not a PagerDuty service id"),
                "use the id from the service's PagerDuty URL, uppercase letters and digits (e.g. PORDERSVC)",
            ));
        } else if !services.insert(id.clone()) {
            problems.push(problem(field, format!("`{id}` is listed twice"), "remove the duplicate"));
        }
    }
    if !raw.required && !services.is_empty() {
        problems.push(problem(
            "incident.required",
            "services are listed but an incident is not required, so they would never be checked",
            "set `required: true`, or remove `services`",
        ));
    }
    if problems.is_empty() { Ok(IncidentGate { required: raw.required, services }) } else { Err(problems) }
}

/// Checks `approval.escalate_after` and `approval.max_escalation_level`. Escalation widens through escalation
/// policies, so it needs at least one in `approval.approvers`.
pub(super) fn check_escalation(
    escalate_after: Option<&str>,
    max_level: Option<i64>,
    has_escalation_policies: bool,
) -> Result<Option<Escalation>, Vec<Problem>> {
    let (after, max_level) = match (escalate_after, max_level) {
        (None, None) => return Ok(None),
        (Some(_), None) => {
            return Err(vec![problem(
                "approval.max_escalation_level",
                "escalate_after is set but max_escalation_level is not",
                "add `max_escalation_level: 2` (or deeper) to say how far the approvers may widen",
            )]);
        }
        (None, Some(_)) => {
            return Err(vec![problem(
                "approval.escalate_after",
                "max_escalation_level is set but escalate_after is not",
                "add `escalate_after: 10m` to say when the approvers widen, or remove max_escalation_level",
            )]);
        }
        (Some(after), Some(max_level)) => (after, max_level),
    };
    let mut problems = Vec::new();
    let after = match humantime::parse_duration(after.trim()) {
        Ok(d) if (MIN_ESCALATE_AFTER..=MAX_ESCALATE_AFTER).contains(&d) => Some(d),
        Ok(_) => {
            problems.push(problem(
                "approval.escalate_after",
                format!("`{after}` is outside 1m..4h"),
                "use a duration from 1m to 4h, e.g. 10m",
            ));
            None
        }
        Err(_) => {
            problems.push(problem(
                "approval.escalate_after",
                format!("`{after}` is not a duration"),
                "write a duration such as 5m, 10m or 30m",
            ));
            None
        }
    };
    let level = match u32::try_from(max_level) {
        Ok(n) if (2..=MAX_ESCALATION_LEVEL).contains(&n) => Some(n),
        _ => {
            problems.push(problem(
                "approval.max_escalation_level",
                format!("max_escalation_level is {max_level}"),
                format!("use a level from 2 to {MAX_ESCALATION_LEVEL} (level 1 is who approves without escalation)"),
            ));
            None
        }
    };
    if !has_escalation_policies {
        problems.push(problem(
            "approval.escalate_after",
            "escalation widens through PagerDuty escalation policies, but the runbook names none",
            "add `pagerduty_escalation_policies: [PXXXXXX]` to approval.approvers, or remove escalate_after",
        ));
    }
    match (problems.is_empty(), after, level) {
        (true, Some(after), Some(max_level)) => Ok(Some(Escalation { after, max_level })),
        _ => Err(problems),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(text: &str) -> bool {
        !text.is_empty() && text.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
    }

    #[test]
    fn no_incident_section_requires_nothing() {
        assert_eq!(check_incident(None, id).unwrap(), IncidentGate::default());
    }

    #[test]
    fn incident_services_are_ids_listed_once_and_only_with_required() {
        let raw = RawIncidentGate { required: true, services: vec!["PSVC1".into(), "psvc".into(), "PSVC1".into()] };
        let problems = check_incident(Some(&raw), id).unwrap_err();
        let fields: Vec<&str> = problems.iter().map(|p| p.0.as_str()).collect();
        assert_eq!(fields, ["incident.services[1]", "incident.services[2]"]);
        let raw = RawIncidentGate { required: false, services: vec!["PSVC1".into()] };
        assert_eq!(check_incident(Some(&raw), id).unwrap_err()[0].0, "incident.required");
    }

    #[test]
    fn escalation_needs_both_fields_a_sane_range_and_an_escalation_policy() {
        assert_eq!(check_escalation(None, None, false).unwrap(), None);
        assert_eq!(
            check_escalation(Some("10m"), Some(3), true).unwrap(),
            Some(Escalation { after: Duration::from_secs(600), max_level: 3 })
        );
        assert_eq!(check_escalation(Some("10m"), None, true).unwrap_err()[0].0, "approval.max_escalation_level");
        assert_eq!(check_escalation(None, Some(2), true).unwrap_err()[0].0, "approval.escalate_after");
        assert_eq!(check_escalation(Some("5s"), Some(2), true).unwrap_err()[0].1, "`5s` is outside 1m..4h");
        assert_eq!(check_escalation(Some("soon"), Some(2), true).unwrap_err()[0].1, "`soon` is not a duration");
        assert_eq!(check_escalation(Some("10m"), Some(1), true).unwrap_err()[0].0, "approval.max_escalation_level");
        assert_eq!(check_escalation(Some("10m"), Some(11), true).unwrap_err()[0].0, "approval.max_escalation_level");
        let problems = check_escalation(Some("10m"), Some(2), false).unwrap_err();
        assert!(problems[0].1.contains("names none"), "{problems:?}");
    }
}
