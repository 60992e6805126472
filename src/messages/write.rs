//! The texts of reviewed writes and of unmasking: the card's title and banners, the before/after reply in the
//! thread, and the refusal of an `--unmask` the runbook does not allow.

use super::{SlackMessage, code, context, escape, section};
use crate::ids::RunbookId;
use crate::request::{AccessRequest, ExecutionResult, Value, WriteDiff};
use crate::runbook::{RenderedQuery, UnmaskError};

/// The card's header: a write says so before anything else.
pub(super) fn card_title(request: &AccessRequest) -> String {
    let q = &request.query;
    if q.operation.is_write() {
        format!("✏️ WRITE · {} · {}", request.id, q.runbook)
    } else {
        format!("{} · {}", request.id, q.runbook)
    }
}

/// The banners under the summary: that this request changes data (with what and under which precondition), and
/// which masked attributes it asks to see in clear. Empty for a plain read.
pub(super) fn card_banners(request: &AccessRequest) -> Vec<String> {
    let q = &request.query;
    let mut out = Vec::new();
    if let Some(update) = &q.update {
        let mut changes: Vec<String> = update.set.iter().map(|(a, v)| format!("{a} → {v}")).collect();
        changes.extend(update.remove.iter().map(|a| format!("{a} removed")));
        let key: Vec<String> = q.key.iter().map(|k| format!("{} = {}", k.attribute, k.value)).collect();
        out.push(format!(
            "✏️ *This request CHANGES DATA* in `{}`: the item with {}\n*Writes:* {}\n*Only if:* {} (otherwise \
             nothing is written)",
            escape(&q.table),
            escape(&key.join(" and ")),
            escape(&changes.join(", ")),
            escape(&readable_condition(q)),
        ));
    }
    if !q.unmasked_attributes.is_empty() {
        out.push(format!(
            "🔓 *Asks to see in clear:* {} — masked by the runbook, so this needs one more approver ({} in all)",
            escape(&q.unmasked_attributes.join(", ")),
            request.policy.required_approvals.max(1),
        ));
    }
    out
}

/// The precondition as the summary shows it (the part after "only if").
fn readable_condition(q: &RenderedQuery) -> String {
    let summary = q.summary();
    match summary.split_once("; only if ") {
        Some((_, rest)) => rest.split("; ").next().unwrap_or(rest).to_owned(),
        None => String::new(),
    }
}

/// The context line naming the attributes delivered in clear, when any were.
pub(super) fn unmasked_line(q: &RenderedQuery) -> Option<String> {
    (!q.unmasked_attributes.is_empty()).then(|| {
        format!(
            "🔓 Shown in clear on request (recorded in the audit trail): {}",
            escape(&q.unmasked_attributes.join(", "))
        )
    })
}

/// The thread reply of a write: each written attribute before and after, masked attributes masked.
pub(super) fn write_reply(
    request: &AccessRequest,
    result: &ExecutionResult,
    diff: &WriteDiff,
    audit_link: &str,
) -> SlackMessage {
    let key: Vec<String> = request.query.key.iter().map(|k| format!("{} = {}", k.attribute, k.value)).collect();
    let mut blocks = vec![section(format!(
        "✏️ *Wrote 1 item* with {} via *{}* · consumed capacity {:.1} WCU · <{audit_link}|audit entry>",
        escape(&key.join(" and ")),
        request.query.runbook,
        result.consumed_capacity,
    ))];
    let changes = diff.changes();
    if changes.is_empty() {
        blocks.push(section(
            "_The precondition held and the values written were already there: nothing changed._".to_owned(),
        ));
    } else {
        let shown = |v: Option<&Value>| v.map_or_else(|| "(absent)".to_owned(), ToString::to_string);
        let rows: Vec<[String; 3]> =
            changes.iter().map(|(a, before, after)| [(*a).to_owned(), shown(*before), shown(*after)]).collect();
        let widths: Vec<usize> = (0..3)
            .map(|i| {
                rows.iter()
                    .map(|r| r[i].chars().count())
                    .chain([["attribute", "before", "after"][i].len()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let line = |cells: [&str; 3]| {
            let padded: Vec<String> =
                cells.iter().zip(&widths).map(|(c, w)| format!("{c}{}", " ".repeat(w - c.chars().count()))).collect();
            padded.join(" | ").trim_end().to_owned()
        };
        let mut table = vec![line(["attribute", "before", "after"])];
        table.extend(rows.iter().map(|r| line([&r[0], &r[1], &r[2]])));
        blocks.push(section(format!("```{}```", code(&table.join("\n")))));
    }
    if !request.query.masked_attributes.is_empty() {
        blocks.push(context(format!("Masked by the runbook: {}", escape(&request.query.masked_attributes.join(", ")))));
    }
    SlackMessage { text: format!("{}: wrote 1 item with {}", request.id, request.query.runbook), blocks }
}

/// The refusal of an `--unmask` naming an attribute the runbook does not let be unmasked.
pub fn unmask_refused(runbook: &RunbookId, error: &UnmaskError) -> SlackMessage {
    SlackMessage {
        text: format!("*{runbook}*: {}. Nothing was requested.", escape(&error.to_string())),
        blocks: Vec::new(),
    }
}
