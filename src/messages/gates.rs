//! The texts of the runbook gates: incident refusals, the incident line of the card, the notes jitgate writes on
//! an incident's timeline, and the escalation of a request's approvers.

use super::{SlackMessage, escape, mentions, plain, state_word};
use crate::ids::{RunbookId, SlackUserId};
use crate::request::{AccessRequest, IncidentRef, IncidentRefusal, Status};

/// `#1234 Orders stuck in paid` linked to the incident's page. The link is PagerDuty's own `html_url`; only an
/// http(s) URL without mrkdwn's delimiters becomes a link, anything else is shown as text.
pub fn incident_link(incident: &IncidentRef) -> String {
    let label = escape(&format!("#{} {}", incident.number, incident.title));
    let url = &incident.html_url;
    let linkable = (url.starts_with("https://") || url.starts_with("http://"))
        && !url.chars().any(|c| matches!(c, '|' | '<' | '>' | ' '));
    if linkable { format!("<{url}|{label}>") } else { label }
}

/// The card's incident line.
pub fn incident_line(incident: &IncidentRef) -> String {
    format!("*Incident:* {} ({} in PagerDuty when requested)", incident_link(incident), escape(&incident.status))
}

/// Why the named incident (or its absence) was refused; nothing was requested.
pub fn incident_refused(runbook: &RunbookId, refusal: &IncidentRefusal) -> SlackMessage {
    let text = match refusal {
        IncidentRefusal::Required => format!(
            "`{runbook}` may only be used during an incident: add `--incident <number or id>` naming the open \
             PagerDuty incident you are working on, e.g. `/jit query {runbook} … --incident 1234`. (The request \
             form has no incident field: type the whole command.)"
        ),
        IncidentRefusal::NotFound { given } => format!(
            "PagerDuty has no incident `{}`: check the number, or use the id from the incident's URL.",
            escape(given)
        ),
        IncidentRefusal::NotOpen { incident } => format!(
            "Incident {} is {}: only an open (triggered or acknowledged) incident justifies access. Name the \
             incident you are working on now.",
            incident_link(incident),
            escape(&incident.status)
        ),
        IncidentRefusal::OtherService { incident, services } => format!(
            "Incident {} is on PagerDuty service `{}`, but `{runbook}` accepts only incidents on {}. Name an \
             incident on one of those.",
            incident_link(incident),
            escape(&incident.service_id),
            services.iter().map(|s| format!("`{}`", escape(s))).collect::<Vec<_>>().join(", ")
        ),
        IncidentRefusal::Unverifiable { given, problem } => format!(
            "jitgate could not check incident `{}` with PagerDuty ({}); an incident that cannot be checked is not \
             accepted. Try again in a minute.",
            escape(given),
            escape(problem)
        ),
    };
    plain(format!("{text} Nothing was requested."))
}

/// The note on the incident's timeline when the request is approved. Plain text: PagerDuty shows notes as
/// written. Names people by Slack id only (what the audit trail records).
pub fn incident_note_approved(request: &AccessRequest, audit_link: &str) -> String {
    let approvers: Vec<&str> = request.approvals.iter().map(|a| a.approver.as_str()).collect();
    format!(
        "jitgate {}: runbook {} requested by Slack user {} was approved by {}. Audit trail: {audit_link}",
        request.id,
        request.query.runbook,
        request.requester,
        approvers.join(", ")
    )
}

/// The note on the incident's timeline when the request finished: the outcome, never any row.
pub fn incident_note_finished(request: &AccessRequest, audit_link: &str) -> String {
    let outcome = match &request.status {
        Status::Succeeded { summary, .. } => format!(
            "ran: {} item{} returned{}",
            summary.row_count,
            if summary.row_count == 1 { "" } else { "s" },
            if summary.truncated { " (capped)" } else { "" }
        ),
        Status::Failed { reason, .. } => format!("failed ({})", reason.code()),
        _ => state_word(request).to_owned(),
    };
    format!("jitgate {}: runbook {} {outcome}. Audit trail: {audit_link}", request.id, request.query.runbook)
}

/// The card's escalation line, once the approvers were widened.
pub fn escalation_line(request: &AccessRequest) -> Option<String> {
    let level = request.escalated_to?;
    let max = request.policy.escalation.map(|e| e.max_level).unwrap_or(level);
    let more = if level >= max { " (the most this runbook allows)".to_owned() } else { format!(" of up to {max}") };
    Some(format!(
        "⏫ *Escalated:* nobody decided in time, so on-call people up to escalation level {level}{more} may approve"
    ))
}

/// The thread message when the approvers were widened, mentioning who may approve now.
pub fn escalated(request: &AccessRequest, approvers_now: &[SlackUserId], at_max: bool) -> SlackMessage {
    let level = request.escalated_to.unwrap_or(1);
    let who = if approvers_now.is_empty() {
        "nobody eligible is on call at those levels right now".to_owned()
    } else {
        mentions(approvers_now)
    };
    let max_note = if at_max {
        " This is the deepest level this runbook escalates to; it stays here until someone decides or it expires."
    } else {
        ""
    };
    plain(format!(
        "⏫ {} is still waiting: nobody decided in time, so the approvers now include escalation level {level}. \
         Who may approve: {who}.{max_note}",
        request.id
    ))
}
