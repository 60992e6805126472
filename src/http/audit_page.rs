//! The audit page of one request (pure): its entries as stored, checked against their hashes, rendered as HTML.
//!
//! The page is evidence, so it never shows an entry as sound without recomputing its hash ([`entry_hash`]) from
//! the stored text and checking that its `prev_hash` is the stored hash of the entry before it in the chain. An
//! entry that fails is still shown, marked, so a reader sees what was changed; the check at the top names it. The
//! whole chain (every request's entries and the head) is `jitgate audit verify`'s job; this page checks the
//! entries of one request and their links.
//!
//! Every piece of stored text goes through [`esc`]: a reason, a runbook value or an edited entry may hold markup.

use std::fmt::Write as _;

use time::OffsetDateTime;

use super::html::{esc, page};
use crate::audit::{
    AuditEntry, AuditEvent, CredentialEvidence, GENESIS_HASH, StoredEntry, UnreadableEntry, entry_hash,
    format_timestamp,
};
use crate::ids::RequestId;
use crate::request::{ExecutionSummary, OnCallEntry, RosterSource};
use crate::runbook::{ApprovalPolicy, RenderedQuery};

/// What the check found for one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryCheck {
    /// Its hash matches its content and its `prev_hash` links to the entry before it.
    Sound,
    /// An attribute is missing or of the wrong type.
    Unreadable(String),
    /// The stored hash is not the hash of the stored content: the entry was edited.
    Edited { stored: String, computed: String },
    /// `prev_hash` is not the stored hash of the previous entry (`None`: that entry is missing).
    BrokenLink { expected: Option<String>, found: String },
    /// The hash checks out but the content does not read as a jitgate entry.
    Malformed(String),
}

/// One entry with its check, ready to render.
#[derive(Debug, Clone)]
pub struct ReviewedEntry {
    pub seq: Option<u64>,
    /// The attributes as stored, when they could be read.
    pub stored: Option<StoredEntry>,
    /// The typed entry, when its content parses (also for an edited entry, which is shown marked as such).
    pub entry: Option<AuditEntry>,
    pub check: EntryCheck,
}

impl ReviewedEntry {
    pub fn is_sound(&self) -> bool {
        self.check == EntryCheck::Sound
    }
}

/// Checks one stored entry. `predecessor_hash` is the stored hash of entry `seq - 1` (`None` when it does not
/// exist); for entry 1 it is ignored and the genesis hash is expected.
pub fn review(stored: Result<StoredEntry, UnreadableEntry>, predecessor_hash: Option<&str>) -> ReviewedEntry {
    let stored = match stored {
        Ok(stored) => stored,
        Err(unreadable) => {
            return ReviewedEntry {
                seq: unreadable.seq,
                stored: None,
                entry: None,
                check: EntryCheck::Unreadable(unreadable.problem),
            };
        }
    };
    let computed = entry_hash(
        &stored.prev_hash,
        stored.seq,
        &stored.at,
        stored.request_id.as_deref(),
        &stored.actor,
        &stored.event,
    );
    let expected_prev = if stored.seq == 1 { Some(GENESIS_HASH) } else { predecessor_hash };
    let parsed = stored.parse();
    let check = if computed != stored.hash {
        EntryCheck::Edited { stored: stored.hash.clone(), computed }
    } else if expected_prev != Some(stored.prev_hash.as_str()) {
        EntryCheck::BrokenLink { expected: expected_prev.map(str::to_owned), found: stored.prev_hash.clone() }
    } else if let Err(problem) = &parsed {
        EntryCheck::Malformed(problem.clone())
    } else {
        EntryCheck::Sound
    };
    ReviewedEntry { seq: Some(stored.seq), entry: parsed.ok(), stored: Some(stored), check }
}

/// The chain check's one-line verdict: "hashes verified" or the first entry that failed and why.
pub fn verdict(entries: &[ReviewedEntry]) -> Result<String, String> {
    match entries.iter().find(|e| !e.is_sound()) {
        None => Ok(format!(
            "hashes verified: each of the {} entries matches its hash and links to the entry before it in the chain",
            entries.len()
        )),
        Some(bad) => Err(format!("entry {} failed the check: {}", seq_text(bad.seq), problem_text(&bad.check))),
    }
}

fn seq_text(seq: Option<u64>) -> String {
    seq.map_or_else(|| "(unknown number)".to_owned(), |s| s.to_string())
}

fn problem_text(check: &EntryCheck) -> String {
    match check {
        EntryCheck::Sound => "sound".to_owned(),
        EntryCheck::Unreadable(problem) => format!("it cannot be read: {problem}"),
        EntryCheck::Edited { stored, computed } => {
            format!(
                "its content does not match its hash: it was edited (stored {stored}, content hashes to {computed})"
            )
        }
        EntryCheck::BrokenLink { expected: Some(expected), found } => {
            format!("its prev_hash {found} is not the hash {expected} of the entry before it: an entry was replaced")
        }
        EntryCheck::BrokenLink { expected: None, found } => {
            format!("its prev_hash {found} links to an entry that is missing or unreadable: it was deleted")
        }
        EntryCheck::Malformed(problem) => format!("its content is not a jitgate entry: {problem}"),
    }
}

/// The CloudTrail event history of the query's role session, `jit-<request id>`.
///
/// The console's event history takes one lookup attribute in its URL fragment, `#/events?<AttributeKey>=<value>`
/// (the same form as `#/events?EventName=ListBuckets`). `Username` is one of the LookupAttribute keys
/// (https://docs.aws.amazon.com/awscloudtrail/latest/APIReference/API_LookupAttribute.html), and for an
/// assumed-role session CloudTrail records the role session name as the event's user name
/// (https://docs.aws.amazon.com/cli/latest/reference/cloudtrail/lookup-events.html, the AssumedRole example).
pub fn cloudtrail_url(region: &str, id: &RequestId) -> String {
    format!("https://console.aws.amazon.com/cloudtrail/home?region={region}#/events?Username=jit-{id}")
}

/// The whole page.
pub fn render(id: &RequestId, region: &str, now: OffsetDateTime, entries: &[ReviewedEntry]) -> String {
    let events: Vec<(&ReviewedEntry, &AuditEntry)> =
        entries.iter().filter_map(|r| r.entry.as_ref().map(|e| (r, e))).collect();
    let mut body = String::new();
    let _ = write!(
        body,
        "<header><h1>{}</h1><p class=\"muted\">Audit trail of a jitgate request · {} entries · page made {}</p>\
         <p>{}</p></header>",
        esc(id.as_str()),
        entries.len(),
        esc(&time_text(now)),
        status_badge(&events),
    );
    body.push_str(&check_section(entries));

    for (reviewed, entry) in &events {
        if let AuditEvent::Requested { requester, runbook, reason, query, fingerprint, policy, expires_at, .. } =
            &entry.event
        {
            let _ = write!(
                body,
                "<h2>Request</h2><section class=\"card\"><table>{}{}{}{}{}{}</table>{}</section>",
                row("Requester", &code(requester.as_str())),
                row(
                    "Reason",
                    &reason.as_deref().map_or_else(|| "<em>none given</em>".to_owned(), |r| esc(r).to_string())
                ),
                row("Runbook", &code(runbook.as_str())),
                row("Requested at", &esc(&time_text(entry.at)).to_string()),
                row("Approval deadline", &esc(&time_text(*expires_at)).to_string()),
                row("Query fingerprint", &code(fingerprint.as_hex())),
                policy_table(policy),
            );
            body.push_str(&query_section(query));
            if !reviewed.is_sound() {
                body.push_str(UNTRUSTED_NOTE);
            }
        }
    }

    let approvals: Vec<_> = events.iter().filter(|(_, e)| matches!(e.event, AuditEvent::Approved { .. })).collect();
    if !approvals.is_empty() {
        body.push_str("<h2>Approvals</h2>");
        for (reviewed, entry) in approvals {
            if let AuditEvent::Approved { approver, evidence, approvals, required, .. } = &entry.event {
                let _ = write!(
                    body,
                    "<section class=\"card\"><table>{}{}{}{}</table>{}</section>",
                    row("Approved by", &code(approver.as_str())),
                    row("At", &esc(&time_text(entry.at)).to_string()),
                    row("Approvals", &format!("{approvals} of {required} required")),
                    row("On-call evidence", &evidence_html(evidence)),
                    if reviewed.is_sound() { "" } else { UNTRUSTED_NOTE },
                );
            }
        }
    }

    for (reviewed, entry) in &events {
        let outcome = match &entry.event {
            AuditEvent::Denied { by, reason, .. } => Some((
                "Denied",
                vec![
                    row("Denied by", &code(by.as_str())),
                    row(
                        "Reason",
                        &reason.as_deref().map_or_else(|| "<em>none given</em>".to_owned(), |r| esc(r).to_string()),
                    ),
                ],
            )),
            AuditEvent::Expired { .. } => {
                Some(("Expired", vec![row("What happened", "nobody decided within the approval window")]))
            }
            AuditEvent::Cancelled { by, .. } => Some(("Cancelled", vec![row("Cancelled by", &code(by.as_str()))])),
            AuditEvent::Failed { code: reason_code, reason, .. } => {
                let mut rows = vec![row("Reason", &esc(reason).to_string())];
                // Entries written before failure reasons were typed carry no code.
                if let Some(reason_code) = reason_code {
                    rows.push(row("Code", &code(reason_code)));
                }
                Some(("Failed", rows))
            }
            AuditEvent::IntegrityViolation { detail, .. } => Some((
                "Integrity violation",
                vec![
                    row("What was found", &esc(detail).to_string()),
                    row("What jitgate did", "refused it and alerted"),
                ],
            )),
            AuditEvent::Escalated { level, max_level, .. } => Some((
                "Escalated",
                vec![row(
                    "What happened",
                    &format!(
                        "nobody decided in time; on-call people up to escalation level {level} (of at most {max_level}) may approve"
                    ),
                )],
            )),
            AuditEvent::BreakGlass { by, evidence, used_today, daily_limit, .. } => Some((
                "Break-glass: run without an approver",
                vec![
                    row("Run by", &code(by.as_str())),
                    row("On-call evidence", &evidence_html(evidence)),
                    row("Use today", &format!("{used_today} of {daily_limit}")),
                ],
            )),
            AuditEvent::BreakGlassReviewed { by, .. } => {
                Some(("Break-glass reviewed", vec![row("Reviewed by", &code(by.as_str()))]))
            }
            AuditEvent::BreakGlassUnreviewed { .. } => Some((
                "Break-glass not reviewed in time",
                vec![row("What jitgate did", "alerted the approval channel and the operators")],
            )),
            AuditEvent::Refused { by, attempted, reason, .. } => Some((
                "Refused attempt",
                vec![
                    row("By", &code(by.as_str())),
                    row("Tried to", &esc(&attempted_text(attempted)).to_string()),
                    row("Refused because", &code(reason)),
                ],
            )),
            AuditEvent::Executed { fingerprint, summary, credentials, .. } => {
                body.push_str(&execution_section(entry, fingerprint.as_hex(), summary, credentials));
                if !reviewed.is_sound() {
                    body.push_str(UNTRUSTED_NOTE);
                }
                None
            }
            // A summary of refusals belongs to no request, so it is never on a request's page.
            AuditEvent::Requested { .. } | AuditEvent::Approved { .. } | AuditEvent::RefusalsCounted { .. } => None,
        };
        if let Some((title, rows)) = outcome {
            let _ = write!(
                body,
                "<h2>{title}</h2><section class=\"card\"><table>{}{}</table>{}</section>",
                row("At", &esc(&time_text(entry.at)).to_string()),
                rows.concat(),
                if reviewed.is_sound() { "" } else { UNTRUSTED_NOTE },
            );
        }
    }

    let _ = write!(
        body,
        "<h2>AWS CloudTrail</h2><section class=\"card\"><p>jitgate ran this request's AWS calls in the role \
         session <code>jit-{id}</code>. Assuming the role (STS <code>AssumeRole</code>) is a management event, kept \
         in CloudTrail's event history for 90 days: <a href=\"{url}\" rel=\"noreferrer noopener\">open the \
         session's events</a> (region {region}).</p><p>The DynamoDB reads made in that session are data events: \
         they never appear in event history, only in a trail (or CloudTrail Lake event data store) that logs \
         DynamoDB data events for the table; search it for the session name <code>jit-{id}</code>.</p></section>",
        id = esc(id.as_str()),
        url = esc(&cloudtrail_url(region, id)),
        region = esc(region),
    );
    body.push_str(&entries_section(entries));
    page(&format!("{id} · jitgate audit"), &body)
}

const UNTRUSTED_NOTE: &str =
    "<p><span class=\"badge bad\">not verified</span> this entry failed the chain check: do not rely on it.</p>";

fn status_badge(events: &[(&ReviewedEntry, &AuditEntry)]) -> String {
    let last = events.iter().rev().find_map(|(_, e)| match &e.event {
        AuditEvent::Executed { summary, .. } if summary.write.is_some() => Some(("ok", "Wrote 1 item".to_owned())),
        AuditEvent::Executed { summary, .. } => Some(("ok", format!("Ran: {} rows", summary.row_count))),
        AuditEvent::Denied { .. } => Some(("bad", "Denied".to_owned())),
        AuditEvent::Expired { .. } => Some(("warn", "Expired".to_owned())),
        AuditEvent::Cancelled { .. } => Some(("warn", "Cancelled".to_owned())),
        AuditEvent::Failed { .. } => Some(("bad", "Failed".to_owned())),
        _ => None,
    });
    let (class, text) = last.unwrap_or_else(|| {
        let approved = events.iter().rev().find_map(|(_, e)| match &e.event {
            AuditEvent::Approved { approvals, required, .. } => Some((approvals, required)),
            _ => None,
        });
        match approved {
            Some((n, of)) if n >= of => ("warn", "Approved, not yet run".to_owned()),
            Some((n, of)) => ("warn", format!("Pending: {n} of {of} approvals")),
            None => ("warn", "Pending".to_owned()),
        }
    });
    format!("<span class=\"badge {class}\">{}</span>", esc(&text))
}

fn check_section(entries: &[ReviewedEntry]) -> String {
    match verdict(entries) {
        Ok(text) => format!(
            "<section class=\"card check\"><h3><span class=\"badge ok\">✓</span> Chain check</h3><p>{}.</p>\
             <p class=\"muted\">Only this request's entries are checked here; <code>jitgate audit verify</code> \
             checks the whole chain.</p></section>",
            esc(&text)
        ),
        Err(text) => format!(
            "<section class=\"card check broken\"><h3><span class=\"badge bad\">✗</span> Chain check failed</h3>\
             <p>{}.</p><p class=\"muted\">The audit table was changed after this was written. Run \
             <code>jitgate audit verify</code> and treat the entries marked below as untrusted.</p></section>",
            esc(&text)
        ),
    }
}

fn policy_table(policy: &ApprovalPolicy) -> String {
    let mut sources = Vec::new();
    sources.extend(policy.approvers.pagerduty_schedules.iter().map(|s| format!("on call in PagerDuty schedule {s}")));
    sources.extend(
        policy.approvers.pagerduty_escalation_policies.iter().map(|p| format!("on call in escalation policy {p}")),
    );
    sources.extend(policy.approvers.slack_users.iter().map(|u| format!("named approver {u}")));
    format!(
        "<h3 style=\"margin-top:12px\">Approval policy</h3><table>{}{}{}{}</table>",
        row("Approvals required", &policy.required_approvals.to_string()),
        row("Who may approve", &esc(&sources.join("; ")).to_string()),
        row("Reason required", if policy.require_reason { "yes" } else { "no" }),
        row("Approval window", &esc(&humantime::format_duration(policy.ttl).to_string()).to_string()),
    )
}

fn query_section(query: &RenderedQuery) -> String {
    let mut rows = vec![
        row("Operation", &code(query.operation.iam_action())),
        row("Table", &code(&query.table)),
        row("Table ARN", &code(&query.table_arn)),
    ];
    if let Some(index) = &query.index {
        rows.push(row("Index", &code(index)));
    }
    if let Some(index_arn) = &query.index_arn {
        rows.push(row("Index ARN", &code(index_arn)));
    }
    rows.push(row("Role", &code(&query.role_arn)));
    if !query.key.is_empty() {
        let key: Vec<String> = query.key.iter().map(|k| format!("{} = {}", k.attribute, k.value)).collect();
        rows.push(row("Key", &code(&key.join(", "))));
    }
    for (label, expression) in [
        ("KeyConditionExpression", &query.key_condition_expression),
        ("FilterExpression", &query.filter_expression),
        ("ProjectionExpression", &query.projection_expression),
    ] {
        if let Some(expression) = expression {
            rows.push(row(label, &code(expression)));
        }
    }
    if !query.expression_attribute_names.is_empty() {
        let names: Vec<String> = query.expression_attribute_names.iter().map(|(k, v)| format!("{k} → {v}")).collect();
        rows.push(row("ExpressionAttributeNames", &code(&names.join("\n"))));
    }
    if !query.expression_attribute_values.is_empty() {
        let values: Vec<String> = query
            .expression_attribute_values
            .iter()
            .map(|(k, v)| {
                let kind = match v {
                    crate::runbook::BoundValue::S(_) => "S",
                    crate::runbook::BoundValue::N(_) => "N",
                };
                format!("{k} = {v} ({kind})")
            })
            .collect();
        rows.push(row("ExpressionAttributeValues", &code(&values.join("\n"))));
    }
    if !query.masked_attributes.is_empty() {
        rows.push(row("Masked attributes", &code(&query.masked_attributes.join(", "))));
    }
    if let Some(update) = &query.update {
        rows.push(row("UpdateExpression", &code(&update.update_expression)));
        rows.push(row("ConditionExpression", &code(&update.condition_expression)));
        rows.push(row("ReturnValues", &code(&update.return_values)));
    }
    if !query.unmasked_attributes.is_empty() {
        rows.push(row("Shown in clear on request", &code(&query.unmasked_attributes.join(", "))));
    }
    rows.push(row("Item cap", &query.item_cap.to_string()));
    format!(
        "<h2>Query</h2><section class=\"card\"><p>{}</p><table>{}</table></section>",
        esc(&query.summary()),
        rows.concat()
    )
}

fn execution_section(
    entry: &AuditEntry,
    fingerprint: &str,
    summary: &ExecutionSummary,
    credentials: &CredentialEvidence,
) -> String {
    // The policy is stored as sent to STS; pretty-printed when it is JSON, shown as stored otherwise.
    let policy = serde_json::from_str::<serde_json::Value>(&credentials.session_policy)
        .ok()
        .and_then(|value| serde_json::to_string_pretty(&value).ok())
        .unwrap_or_else(|| credentials.session_policy.clone());
    format!(
        "<h2>Execution</h2><section class=\"card\"><table>{}{}{}{}{}{}{}{}{}{}</table>\
         <h3 style=\"margin-top:12px\">Session policy</h3><pre>{}</pre></section>",
        row("Ran at", &esc(&time_text(entry.at)).to_string()),
        row("Rows returned", &summary.row_count.to_string()),
        row("Truncated at the item cap", if summary.truncated { "yes" } else { "no" }),
        row("Consumed capacity", &format!("{} read capacity units", summary.consumed_capacity)),
        row("Result SHA-256", &code(&summary.result_sha256)),
        write_and_unmask_rows(summary),
        row("Query fingerprint", &code(fingerprint)),
        row("AssumedRoleId", &code(&credentials.assumed_role_id)),
        row("Access key id", &code(&credentials.access_key_id)),
        row("Credentials expired at", &esc(&time_text(credentials.expires_at)).to_string()),
        esc(&policy),
    )
}

/// A write's before/after hashes and written attributes, and the attributes shown in clear; nothing for a plain read.
fn write_and_unmask_rows(summary: &ExecutionSummary) -> String {
    let mut rows = String::new();
    if let Some(write) = &summary.write {
        rows.push_str(&row("Attributes written", &code(&write.written.join(", "))));
        rows.push_str(&row("Item SHA-256 before", &code(&write.before_sha256)));
        rows.push_str(&row("Item SHA-256 after", &code(&write.after_sha256)));
    }
    if !summary.unmasked.is_empty() {
        rows.push_str(&row("Shown in clear on request", &code(&summary.unmasked.join(", "))));
    }
    rows
}

fn entries_section(entries: &[ReviewedEntry]) -> String {
    let mut out = String::from("<h2>Entries</h2>");
    for reviewed in entries {
        let status = if reviewed.is_sound() {
            "<span class=\"badge ok\">hash verified</span>".to_owned()
        } else {
            format!("<span class=\"badge bad\">failed</span> {}", esc(&problem_text(&reviewed.check)))
        };
        let kind = reviewed.entry.as_ref().map_or("(unreadable)", |e| e.event.kind());
        let mut rows = vec![row("Check", &status)];
        if let Some(stored) = &reviewed.stored {
            rows.push(row("Time", &code(&stored.at)));
            rows.push(row("Actor", &code(&stored.actor)));
            rows.push(row("Hash", &code(&stored.hash)));
            rows.push(row("Previous hash", &code(&stored.prev_hash)));
            rows.push(row("Event as stored", &format!("<pre>{}</pre>", esc(&stored.event))));
        }
        let _ = write!(
            out,
            "<article class=\"{}\"><h3>#{} · {}</h3><table>{}</table></article>",
            if reviewed.is_sound() { "" } else { "broken" },
            esc(&seq_text(reviewed.seq)),
            esc(kind),
            rows.concat()
        );
    }
    out
}

fn evidence_html(evidence: &OnCallEntry) -> String {
    let source = match &evidence.source {
        RosterSource::Schedule(id) => format!("PagerDuty schedule {id}"),
        RosterSource::EscalationPolicy(id) => format!("PagerDuty escalation policy {id}"),
        RosterSource::NamedApprover => "named approver in the runbook".to_owned(),
    };
    format!("{}<br><span class=\"muted\">{}</span>", esc(&source), esc(&evidence.evidence))
}

fn attempted_text(attempted: &crate::audit::AttemptedAction) -> String {
    use crate::audit::AttemptedAction;
    match attempted {
        AttemptedAction::Request { runbook } => format!("request runbook {runbook}"),
        AttemptedAction::Approve => "approve".to_owned(),
        AttemptedAction::Deny => "deny".to_owned(),
        AttemptedAction::Cancel => "cancel".to_owned(),
    }
}

/// A table row; `value_html` is already HTML (escape dynamic text with [`esc`] or [`code`]).
fn row(label: &str, value_html: &str) -> String {
    format!("<tr><th>{}</th><td>{value_html}</td></tr>", esc(label))
}

/// Dynamic text in a monospace span, escaped; newlines kept.
fn code(text: &str) -> String {
    format!("<code style=\"white-space:pre-wrap\">{}</code>", esc(text))
}

fn time_text(at: OffsetDateTime) -> String {
    format_timestamp(at).unwrap_or_else(|_| at.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(seq: u64, prev_hash: &str, event: &str) -> StoredEntry {
        let mut entry = StoredEntry {
            seq,
            at: "2026-11-28T12:00:00Z".into(),
            request_id: Some("JIT-7Q2M4X".into()),
            actor: "jitgate".into(),
            event: event.into(),
            prev_hash: prev_hash.into(),
            hash: String::new(),
        };
        entry.hash = entry.computed_hash();
        entry
    }

    const FAILED: &str = r#"{"type":"failed","request":"JIT-7Q2M4X","reason":"<script>alert(1)</script>"}"#;

    #[test]
    fn a_sound_entry_links_to_its_predecessor() {
        let first = stored(1, GENESIS_HASH, FAILED);
        assert!(review(Ok(first.clone()), None).is_sound());
        let second = stored(2, &first.hash, FAILED);
        assert!(review(Ok(second.clone()), Some(&first.hash)).is_sound());
        let broken = review(Ok(second), Some(&"1".repeat(64)));
        assert!(matches!(broken.check, EntryCheck::BrokenLink { expected: Some(_), .. }), "{:?}", broken.check);
        let orphan = review(Ok(stored(5, &first.hash, FAILED)), None);
        assert!(matches!(orphan.check, EntryCheck::BrokenLink { expected: None, .. }));
    }

    #[test]
    fn an_edited_entry_is_named_and_still_shown() {
        let mut entry = stored(1, GENESIS_HASH, FAILED);
        entry.event = entry.event.replace("alert(1)", "nothing");
        let reviewed = review(Ok(entry), None);
        assert!(matches!(reviewed.check, EntryCheck::Edited { .. }));
        assert!(reviewed.entry.is_some(), "the edited content is still readable, and shown marked");
        let verdict = verdict(&[reviewed]).unwrap_err();
        assert!(verdict.starts_with("entry 1 failed the check: its content does not match its hash"), "{verdict}");
    }

    #[test]
    fn stored_text_is_escaped_everywhere() {
        let id = RequestId::parse("JIT-7Q2M4X").unwrap();
        let reviewed = review(Ok(stored(1, GENESIS_HASH, FAILED)), None);
        let html = render(&id, "us-east-1", time::macros::datetime!(2026-11-28 12:30 UTC), &[reviewed]);
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{html}");
        assert!(html.contains("hashes verified"), "{html}");
        assert!(html.contains(
            "https://console.aws.amazon.com/cloudtrail/home?region=us-east-1#/events?Username=jit-JIT-7Q2M4X"
        ));
    }

    #[test]
    fn the_cloudtrail_note_does_not_promise_data_events_in_event_history() {
        let id = RequestId::parse("JIT-7Q2M4X").unwrap();
        let html = render(&id, "us-east-1", time::macros::datetime!(2026-11-28 12:30 UTC), &[]);
        // DynamoDB reads are data events: CloudTrail's event history never holds them, only a trail (or event data
        // store) configured to log them does. Only AssumeRole, a management event, is in event history.
        assert!(!html.contains("Every AWS call"), "{html}");
        assert!(html.contains("management event"), "{html}");
        assert!(
            html.contains("DynamoDB reads made in that session are data events: they never appear in event history"),
            "{html}"
        );
    }
}
