//! The texts of the runbook gates: incident refusals, the incident line of the card, the notes jitgate writes on
//! an incident's timeline, the escalation of a request's approvers, and break-glass (its refusals, the loud part of
//! its card with the Reviewed button, the review and the alert when nobody reviewed it).

use serde_json::{Value as Json, json};

use super::{SlackMessage, escape, mention, mentions, plain, section, state_word};
use crate::ids::{RunbookId, SlackUserId};
use crate::request::{AccessRequest, BreakGlassRefusal, IncidentRef, IncidentRefusal, Status};

/// Action id of the Reviewed button on a break-glass card.
pub const REVIEW_ACTION: &str = "jit_review";

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
        // A write's note says that it wrote, never what: the values stay in the thread and the audit trail.
        Status::Succeeded { summary, .. } if summary.write.is_some() => {
            "wrote 1 item (the precondition held)".to_owned()
        }
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

/// Why break-glass (or a review of it) was refused, in the user's words.
pub fn break_glass_refused(runbook: Option<&RunbookId>, refusal: &BreakGlassRefusal) -> SlackMessage {
    let name = runbook.map(|r| format!("`{r}`")).unwrap_or_else(|| "this runbook".to_owned());
    let instead = "ask for an approval instead (the same command without --break-glass).";
    let text = match refusal {
        BreakGlassRefusal::NotAllowed => format!("{name} does not allow break-glass: {instead} Nothing was run."),
        BreakGlassRefusal::ReasonRequired => {
            "Break-glass needs a reason: add --reason \"…\" saying what is broken (an \
             incident id helps the reviewer). Nothing was run."
                .to_owned()
        }
        BreakGlassRefusal::NotOnCall(_) => format!(
            "Break-glass is only for whoever is on call for {name} right now, and you are not: {instead} Nothing was run."
        ),
        BreakGlassRefusal::NeedsApprovers { needed } => format!(
            "This request needs {needed} different approvers (it writes data, or shows masked data in clear with \
             --unmask), and break-glass stands in for one approver only: ask for approvals instead (the same command \
             without --break-glass). Nothing was run."
        ),
        BreakGlassRefusal::OverDailyLimit { limit } => format!(
            "You have used break-glass {limit} time{} today, the most allowed: {instead} Nothing was run.",
            if *limit == 1 { "" } else { "s" }
        ),
        BreakGlassRefusal::RosterUnavailable { problem } => format!(
            "jitgate cannot confirm who is on call right now ({}), so break-glass is refused: {instead} Nothing was run.",
            escape(problem)
        ),
        BreakGlassRefusal::NotBreakGlass => {
            "This request did not run by break-glass: there is nothing to review.".to_owned()
        }
        BreakGlassRefusal::AlreadyReviewed { by } => {
            format!("This break-glass run was already reviewed by {}.", mention(by))
        }
        BreakGlassRefusal::OwnRun => "You ran this by break-glass: someone else on call has to review it.".to_owned(),
    };
    plain(text)
}

/// The loud part of a break-glass card: who ran it without an approver and why they could, then the review
/// state with the Reviewed button while nobody reviewed it. Empty for other requests.
pub fn break_glass_blocks(request: &AccessRequest, mention_: Option<&str>) -> Vec<Json> {
    let Some(used) = &request.break_glass else { return Vec::new() };
    // The configured mention is operator text checked at start-up to be a Slack mention; never user input.
    let loud = mention_.map(|m| format!("{m} ")).unwrap_or_default();
    let mut blocks = vec![section(format!(
        "🚨 *BREAK-GLASS* {loud}{} ran this at once, without an approver (on call: {}).",
        mention(&request.requester),
        escape(&used.evidence.evidence)
    ))];
    match &used.reviewed {
        Some(review) => blocks.push(section(format!("✅ *Reviewed* by {}", mention(&review.by)))),
        None => {
            blocks.push(section(
                "⏳ *Awaiting review* by another on-call person: look at what ran and the results, then click \
                 Reviewed."
                    .to_owned(),
            ));
            blocks.push(json!({
                "type": "actions",
                "block_id": format!("review:{}", request.id),
                "elements": [
                    { "type": "button", "action_id": REVIEW_ACTION, "value": request.id.as_str(),
                      "text": { "type": "plain_text", "text": "Reviewed" } },
                ]
            }));
        }
    }
    blocks
}

/// The requester's confirmation: it runs now, loudly.
pub fn break_glass_started(request: &AccessRequest) -> SlackMessage {
    plain(format!(
        "{} runs now by break-glass, without an approver. The approval channel has been told, and another on-call \
         person has to review it.",
        request.id
    ))
}

/// The thread reply when someone reviewed a break-glass run.
pub fn break_glass_reviewed(request: &AccessRequest, by: &SlackUserId) -> SlackMessage {
    plain(format!("✅ {} reviewed the break-glass run {}.", mention(by), request.id))
}

/// The alert when a break-glass run stayed unreviewed too long.
pub fn break_glass_unreviewed_alert(request: &AccessRequest, mention_: Option<&str>) -> SlackMessage {
    let loud = mention_.map(|m| format!("{m} ")).unwrap_or_default();
    plain(format!(
        "🚨 {loud}Break-glass run {} ({} by {}) has not been reviewed in time: someone on call, please review it \
         (Reviewed on its card).",
        request.id,
        request.query.runbook,
        mention(&request.requester)
    ))
}

/// The note on the incident's timeline when a request named with it ran by break-glass.
pub fn incident_note_break_glass(request: &AccessRequest, audit_link: &str) -> String {
    format!(
        "jitgate {}: runbook {} run by break-glass by Slack user {}, without an approver; awaiting review. Audit \
         trail: {audit_link}",
        request.id, request.query.runbook, request.requester
    )
}
