//! Every text and Block Kit payload a user sees, built by named functions. Pure: data in, JSON out.
//!
//! Handlers never format user-visible text themselves; they pick the function here that says what happened.
//! Everything that came from a user or a table is escaped for Slack's mrkdwn (`&`, `<`, `>`) so a parameter value
//! can never become a mention, a link or a broadcast, and code blocks are kept free of stray backticks.

mod failure;
mod files;
mod gates;
mod write;

use serde_json::{Value as Json, json};
use time::OffsetDateTime;

use crate::ids::{RequestId, SlackUserId};
use crate::oncall::Exclusion;
use crate::request::{AccessRequest, ExecutionResult, FailureReason, Refusal, RequestState, Row, Status};
use crate::result_rows::ResultRows;
use crate::runbook::{Operation, RenderedQuery};

pub use failure::failure_reason;
pub use files::{write_results_csv, write_results_json};
pub use gates::{
    REVIEW_ACTION, break_glass_blocks, break_glass_refused, break_glass_reviewed, break_glass_started,
    break_glass_unreviewed_alert, escalated, escalation_line, incident_line, incident_link, incident_note_approved,
    incident_note_break_glass, incident_note_finished, incident_refused,
};
pub use write::unmask_refused;
// The message type is the Slack client's; re-exported because every function here returns one.
pub use crate::slack::SlackMessage;

/// Action ids of the card's buttons; the Slack layer routes clicks by them.
pub const APPROVE_ACTION: &str = "jit_approve";

/// The Approve button's value: the request id and the fingerprint of the operation its card shows, so that an
/// approval counts only for the operation the approver saw, whatever is written in Redis meanwhile.
pub fn approve_value(request: &AccessRequest) -> String {
    format!("{} {}", request.id, request.fingerprint.as_hex())
}

/// A card button's value: the request id and, for Approve, the fingerprint the card showed.
pub fn button_value(value: &str) -> Option<(RequestId, Option<&str>)> {
    let (id, shown) = match value.split_once(' ') {
        Some((id, shown)) => (id, Some(shown)),
        None => (value, None),
    };
    Some((RequestId::parse(id)?, shown))
}
pub const DENY_ACTION: &str = "jit_deny";

/// Section text limit (Block Kit: 3000 characters); kept with some room for the code fence.
const SECTION_LIMIT: usize = 2900;
/// A message's `text`: `chat.update` refuses more than 4,000 characters (`msg_too_long`), so a long failure reason
/// or user input is cut rather than losing the whole message.
const MESSAGE_TEXT_LIMIT: usize = 4000;
/// Rows shown inline in the thread; more go to the attached files. No more than the delivered rows keep in memory.
pub const INLINE_ROWS: usize = crate::result_rows::ROWS_IN_MEMORY;
/// Widest cell in the inline table.
const CELL_WIDTH: usize = 32;

/// Escapes text for mrkdwn, so user-supplied text stays text.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// Text for inside a ``` code block: escaped, and with backtick runs broken so the block cannot be closed early.
fn code(text: &str) -> String {
    escape(text).replace("```", "`\u{200B}``")
}

fn mention(user: &SlackUserId) -> String {
    format!("<@{user}>")
}

fn mentions(users: &[SlackUserId]) -> String {
    users.iter().map(mention).collect::<Vec<_>>().join(" ")
}

/// A Slack date token: shown in each reader's own time zone, with a UTC fallback.
fn date(at: OffsetDateTime) -> String {
    let fallback = at
        .format(time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC"))
        .unwrap_or_else(|_| at.unix_timestamp().to_string());
    format!("<!date^{}^{{date_short_pretty}} {{time}}|{fallback}>", at.unix_timestamp())
}

fn section(text: String) -> Json {
    json!({ "type": "section", "text": { "type": "mrkdwn", "text": truncate(&text, SECTION_LIMIT) } })
}

fn context(text: String) -> Json {
    json!({ "type": "context", "elements": [ { "type": "mrkdwn", "text": truncate(&text, SECTION_LIMIT) } ] })
}

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// What the approval card needs beyond the request itself.
#[derive(Debug, Clone, Default)]
pub struct CardContext {
    /// The runbook's description.
    pub description: String,
    /// Who may approve right now (on call, mapped to Slack).
    pub approvers_now: Vec<SlackUserId>,
    /// On-call people who cannot approve (no Slack account, or one that is not a full member's), each as
    /// [`unable_to_approve`] writes them, shown so nobody waits for them.
    pub unmapped: Vec<String>,
    /// Link to the request's audit page, once there is one.
    pub audit_link: Option<String>,
    /// Mention put on break-glass cards (`break_glass.mention`), e.g. `<!here>`.
    pub break_glass_mention: Option<String>,
}

/// One on-call person who cannot approve, for the card: who, and why not.
pub fn unable_to_approve(name: &str, email: &str, excluded: Option<Exclusion>) -> String {
    let why = match excluded {
        None => "no Slack account has this email",
        Some(Exclusion::Guest) => "a guest account: only full members of the workspace approve",
        Some(Exclusion::Bot) => "the Slack account with this email is a bot or app",
        Some(Exclusion::Deactivated) => "the Slack account with this email is deactivated",
    };
    format!("{name} <{email}> ({why})")
}

/// The approval card, rendered for the request's current state: buttons while pending, the outcome afterwards.
pub fn approval_card(request: &AccessRequest, ctx: &CardContext) -> SlackMessage {
    let q = &request.query;
    let mut blocks = vec![
        json!({ "type": "header", "text": { "type": "plain_text", "text": truncate(&write::card_title(request), 150) } }),
        section(format!(
            "{} asks to run *{}* — {}\n*Reason:* {}",
            mention(&request.requester),
            q.runbook,
            escape(&ctx.description),
            escape(request.reason.as_deref().unwrap_or("(none given)")),
        )),
        section(format!("```{}```", code(&q.summary()))),
        context(format!(
            "table `{}`{} · role `{}` · fingerprint `{}`",
            escape(&q.table),
            q.index.as_deref().map(|i| format!(" · index `{}`", escape(i))).unwrap_or_default(),
            escape(q.role_arn.rsplit('/').next().unwrap_or(&q.role_arn)),
            request.fingerprint.short(),
        )),
    ];
    if let Some(reach) = credentials_reach(q) {
        blocks.push(context(format!("⚠️ *The credentials could read more:* {}", escape(&reach))));
    }
    blocks.extend(write::card_banners(request).into_iter().map(section));
    if let Some(incident) = &request.incident {
        blocks.push(section(incident_line(incident)));
    }
    blocks.extend(break_glass_blocks(request, ctx.break_glass_mention.as_deref()));
    if let (RequestState::Pending, Some(line)) = (request.state(), escalation_line(request)) {
        blocks.push(section(line));
    }
    match request.state() {
        RequestState::Pending => {
            let who = if ctx.approvers_now.is_empty() {
                "nobody eligible is on call right now".to_owned()
            } else {
                mentions(&ctx.approvers_now)
            };
            let mut text = format!(
                "*Who may approve:* {who} · {} · expires {}",
                approvals_needed(request),
                date(request.expires_at)
            );
            if !ctx.unmapped.is_empty() {
                text.push_str(&format!("\n_On call but unable to approve:_ {}", escape(&ctx.unmapped.join(", "))));
            }
            blocks.push(section(text));
            blocks.push(json!({
                "type": "actions",
                "block_id": format!("decision:{}:v{}", request.id, request.version),
                "elements": [
                    { "type": "button", "action_id": APPROVE_ACTION, "style": "primary", "value": approve_value(request),
                      "text": { "type": "plain_text", "text": "Approve" } },
                    { "type": "button", "action_id": DENY_ACTION, "style": "danger", "value": request.id.as_str(),
                      "text": { "type": "plain_text", "text": "Deny" } },
                ]
            }));
        }
        _ => blocks.push(section(status_line(request))),
    }
    if let Some(link) = &ctx.audit_link {
        blocks.push(context(format!("<{link}|Audit trail for {}>", request.id)));
    }
    let text = format!("{} requests {} ({}): {}", request.requester, q.runbook, request.id, state_word(request));
    SlackMessage { text, blocks }
}

/// What the temporary credentials of a request could read beyond the request itself, in plain text, or `None` when
/// they reach exactly what the card's summary shows. The session policy pins the action, the table or index, the
/// partition key value and (with a projection) the attributes; IAM has no condition for a sort key value, a sort
/// key range or a filter, and without a projection none for attributes either. The approver should know that
/// blast radius; `tests/iam_evaluator.rs` proves each of these statements in an independent IAM evaluator.
pub fn credentials_reach(q: &RenderedQuery) -> Option<String> {
    let partition = q.partition_key.as_ref().map(|k| format!("{} = {}", k.attribute, k.value));
    let narrower_than_partition = match q.operation {
        Operation::GetItem | Operation::UpdateItem => q.key.len() > 1,
        // The partition condition is a single equality; anything after it is the sort key condition.
        Operation::Query => {
            q.key_condition_expression.as_deref().is_some_and(|k| k.contains(" AND ")) || q.filter_expression.is_some()
        }
        Operation::Scan => false,
    };
    let mut parts = Vec::new();
    if let (true, Some(partition)) = (narrower_than_partition, partition) {
        let what = match q.operation {
            Operation::GetItem | Operation::UpdateItem => "the sort key",
            Operation::Query | Operation::Scan => "a sort key condition or filter",
        };
        parts.push(format!(
            "any item with {partition}, not only what this request selects (IAM can pin the partition key value but \
             not {what})"
        ));
    }
    // A write's attributes are always pinned (the key and what it writes and compares).
    if q.projected_attributes.is_empty() && !q.operation.is_write() {
        parts.push(
            "every attribute of the items, including any added to the table later (the runbook has no projection)"
                .to_owned(),
        );
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

fn approvals_needed(request: &AccessRequest) -> String {
    let required = request.policy.required_approvals.max(1);
    let have = request.approvals.len();
    match (required, have) {
        (1, _) => "1 approval needed".to_owned(),
        (n, 0) => format!("{n} approvals from different people needed"),
        (n, h) => format!("{h} of {n} approvals so far ({})", mentions(&approvers_of(request))),
    }
}

/// Who cleared the request to run: its approvers, or its requester's break-glass.
fn approved_by(request: &AccessRequest) -> String {
    match &request.break_glass {
        Some(_) => format!("🚨 Run by break-glass by {}, without an approver", mention(&request.requester)),
        None => format!("✅ Approved by {}", mentions(&approvers_of(request))),
    }
}

fn approvers_of(request: &AccessRequest) -> Vec<SlackUserId> {
    request.approvals.iter().map(|a| a.approver.clone()).collect()
}

fn state_word(request: &AccessRequest) -> &'static str {
    match request.state() {
        RequestState::Pending => "waiting for approval",
        RequestState::Approved => "approved",
        RequestState::Running => "running",
        RequestState::Succeeded => "done",
        RequestState::Failed => "failed",
        RequestState::Denied => "denied",
        RequestState::Expired => "expired",
        RequestState::Cancelled => "cancelled",
    }
}

/// The one-line outcome shown on the card once a request left Pending.
pub fn status_line(request: &AccessRequest) -> String {
    match &request.status {
        Status::Pending => format!("⏳ Waiting for approval · {}", approvals_needed(request)),
        Status::Approved { .. } => format!("{} · starting", approved_by(request)),
        Status::Running { .. } => format!("{} · ⚙️ running", approved_by(request)),
        Status::Succeeded { summary, .. } if summary.write.is_some() => {
            format!("{} · ✏️ wrote 1 item · before and after in the thread", approved_by(request))
        }
        Status::Succeeded { summary, .. } => format!(
            "{} · ran: {} row{}{} · results in the thread",
            approved_by(request),
            summary.row_count,
            if summary.row_count == 1 { "" } else { "s" },
            if summary.truncated { " (capped)" } else { "" },
        ),
        Status::Failed { reason, .. } => format!("❌ Failed: {}", escape(&failure_reason(reason))),
        Status::Denied { by, reason, .. } => match reason {
            Some(reason) => format!("⛔ Denied by {}: {}", mention(by), escape(reason)),
            None => format!("⛔ Denied by {}", mention(by)),
        },
        Status::Expired { .. } => {
            "⌛ Expired: nobody approved it in time. Ask again with /jit query if still needed.".to_owned()
        }
        Status::Cancelled { .. } => format!("🚫 Cancelled by {}", mention(&request.requester)),
    }
}

/// Why a click or command was refused, in the user's words.
pub fn refusal(refusal: &Refusal, request: Option<&RequestId>) -> String {
    let id = request.map(|id| format!("{id}: ")).unwrap_or_default();
    let text = match refusal {
        Refusal::ReasonRequired => {
            "this runbook needs a reason. Add --reason \"…\" (an incident or ticket id helps the approver)".to_owned()
        }
        Refusal::SelfApproval => "you cannot approve or deny your own request; someone else on call has to".to_owned(),
        Refusal::NotOnCall => {
            "you are not on call for this runbook right now, so you cannot decide on it. The card names who can".to_owned()
        }
        Refusal::RosterStale => {
            "jitgate could not confirm who is on call right now, so nobody can approve at this moment. Try again in a minute".to_owned()
        }
        Refusal::AlreadyApprovedBy => "you already approved this request; it needs another person's approval".to_owned(),
        Refusal::Expired => "this request has expired. Ask again with /jit query if it is still needed".to_owned(),
        Refusal::NotRequester => "only the person who made a request can cancel it".to_owned(),
        Refusal::NotPending(state) => format!("this request is already {}; nothing was changed", state.as_str()),
        Refusal::NotWhatWasShown => "the operation on this card is not the one the request now holds, so your \
             approval was not counted. Operators have been alerted; the requester can ask again"
            .to_owned(),
    };
    format!("{id}{text}.")
}

/// The requester's confirmation once the card is posted.
pub fn submitted(request: &AccessRequest, approvers_now: &[SlackUserId]) -> String {
    let who = if approvers_now.is_empty() { "an on-call approver".to_owned() } else { mentions(approvers_now) };
    format!(
        "{} submitted: *{}* is waiting for {who}. It expires {}. Cancel with `/jit cancel {}`.",
        request.id,
        request.query.runbook,
        date(request.expires_at),
        request.id
    )
}

/// The thread reply with the rows, within Block Kit limits; `files_attached` when the full result is uploaded.
pub fn results_reply(
    request: &AccessRequest,
    result: &ExecutionResult,
    audit_link: &str,
    files_attached: bool,
) -> SlackMessage {
    if let Some(diff) = &result.write {
        return write::write_reply(request, result, diff, audit_link);
    }
    let columns = columns(request, &result.rows);
    let mut blocks = vec![section(format!(
        "*{} row{}* from *{}* · consumed capacity {} · <{audit_link}|audit entry>",
        result.row_count,
        if result.row_count == 1 { "" } else { "s" },
        request.query.runbook,
        format_capacity(result.consumed_capacity),
    ))];
    if result.rows.is_empty() {
        blocks.push(section("_No items matched._".to_owned()));
    } else {
        let (table, shown) = inline_table(&columns, result.rows.first());
        blocks.push(section(format!("```{}```", code(&table))));
        if shown < result.rows.len() {
            let rest =
                if files_attached { "the full result is attached as CSV and JSON" } else { "the rest is not shown" };
            blocks.push(context(format!("Showing {shown} of {} rows; {rest}.", result.rows.len())));
        }
    }
    if result.truncated {
        blocks.push(context(format!(
            "⚠️ More items matched: the runbook caps results at {} items. Narrow the parameters to see the rest.",
            request.query.item_cap
        )));
    }
    if !request.query.masked_attributes.is_empty() {
        blocks.push(context(format!("Masked by the runbook: {}", escape(&request.query.masked_attributes.join(", ")))));
    }
    if let Some(line) = write::unmasked_line(&request.query) {
        blocks.push(context(line));
    }
    SlackMessage { text: format!("{}: {} rows from {}", request.id, result.row_count, request.query.runbook), blocks }
}

fn format_capacity(units: f64) -> String {
    format!("{units:.1} RCU")
}

/// The columns to show: the projection in runbook order, else every attribute seen (sorted).
pub fn columns(request: &AccessRequest, rows: &ResultRows) -> Vec<String> {
    if !request.query.projected_attributes.is_empty() {
        return request.query.projected_attributes.clone();
    }
    rows.attributes().to_vec()
}

fn cell(row: &Row, column: &str) -> String {
    row.get(column).map(|v| v.to_string()).unwrap_or_default().replace(['\n', '\r', '\t'], " ")
}

/// A fixed-width table of as many rows as fit in one section (at most [`INLINE_ROWS`]); returns it and the count.
fn inline_table(columns: &[String], rows: &[Row]) -> (String, usize) {
    let cells: Vec<Vec<String>> = rows
        .iter()
        .take(INLINE_ROWS)
        .map(|r| columns.iter().map(|c| truncate(&cell(r, c), CELL_WIDTH)).collect())
        .collect();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| cells.iter().map(|r| r[i].chars().count()).chain([c.chars().count()]).max().unwrap_or(0))
        .collect();
    let line = |values: &[String]| -> String {
        values.iter().zip(&widths).map(|(v, w)| format!("{v:<w$}")).collect::<Vec<_>>().join("  ").trim_end().to_owned()
    };
    let mut out = line(columns);
    let mut shown = 0;
    for row in &cells {
        let next = line(row);
        // Escaping can lengthen the text; measure what will be sent.
        if code(&out).chars().count() + code(&next).chars().count() + 1 > SECTION_LIMIT - 6 {
            break;
        }
        out.push('\n');
        out.push_str(&next);
        shown += 1;
    }
    (out, shown)
}

/// The requester's note when their request changed state (DM or ephemeral).
pub fn requester_update(request: &AccessRequest) -> String {
    truncate(&format!("{} ({}): {}", request.id, request.query.runbook, status_line(request)), MESSAGE_TEXT_LIMIT)
}

/// The message for an internal failure: no details, a reference to find them in the logs.
pub fn internal_error(reference: &str) -> String {
    format!(
        "Something went wrong on jitgate's side (ref {reference}). Nothing was run. The operators can find the details under that reference."
    )
}

/// Callback ids of jitgate's modals; the Slack layer routes submissions by them.
pub const QUERY_VIEW: &str = "jit_query";
pub const PICK_VIEW: &str = "jit_pick";
pub const DENY_VIEW: &str = "jit_deny";
/// Block id of the reason input in the query and deny modals.
pub const REASON_BLOCK: &str = "reason";
/// Block id of the runbook select in the picker modal.
pub const RUNBOOK_BLOCK: &str = "runbook";

/// Ephemeral text for `/jit help` (and an empty `/jit`).
pub fn help() -> SlackMessage {
    let text = format!(
        "*jitgate* runs approved, audited DynamoDB queries from runbooks.\n\
         • `/jit query <runbook> name=value … --reason \"…\"` asks for a query; the on-call approver sees the exact operation\n\
         • `--unmask email` asks to see a masked attribute in clear (if the runbook allows it; one more approver)\n\
         • `--incident 1234` names the open PagerDuty incident you are working on (some runbooks require one)\n\
         • `--break-glass` runs at once, without an approver, if you are on call and the runbook allows it (reviewed afterwards)\n\
         • `/jit query <runbook>` or `/jit query` opens a form\n\
         • `/jit runbooks` lists the runbooks and their parameters\n\
         • `/jit status [id]` shows a request, or your recent ones\n\
         • `/jit cancel <id>` withdraws a pending request\n\
         Usage: {}",
        crate::command::USAGE
    );
    SlackMessage { text, blocks: Vec::new() }
}

/// Ephemeral text for a command that does not parse: what was wrong, then the right usage.
pub fn command_error(error: &crate::command::CommandError) -> SlackMessage {
    plain(format!("{}\nUsage: `{}`", escape(&error.to_string()), error.usage()))
}

fn plain(text: String) -> SlackMessage {
    SlackMessage { text: truncate(&text, MESSAGE_TEXT_LIMIT), blocks: Vec::new() }
}

/// The runbooks a user may request, with their parameters.
pub fn runbooks_list(runbooks: &crate::runbook::RunbookSet) -> SlackMessage {
    let mut text = String::from("*Runbooks you can request* (`/jit query <runbook> name=value … --reason \"…\"`):");
    for runbook in runbooks.iter() {
        let params: Vec<String> = runbook
            .parameters()
            .iter()
            .map(|p| if p.is_required() { format!("{}=…", p.name()) } else { format!("[{}=…]", p.name()) })
            .collect();
        text.push_str(&format!("\n• *{}* {} — {}", runbook.id(), params.join(" "), escape(runbook.description())));
    }
    plain(text)
}

/// A runbook name that does not exist, with the closest one.
pub fn unknown_runbook(typed: &str, suggestion: Option<&crate::ids::RunbookId>) -> SlackMessage {
    let hint = match suggestion {
        Some(s) => format!(" Did you mean `{s}`?"),
        None => String::new(),
    };
    plain(format!("There is no runbook `{}`.{hint} See `/jit runbooks` for the list.", escape(typed)))
}

/// Parameters that did not validate, each with what is expected.
pub fn bad_parameters(runbook: &crate::ids::RunbookId, errors: &[crate::runbook::ParamError]) -> SlackMessage {
    let lines: Vec<String> = errors.iter().map(|e| format!("• {}", escape(&e.to_string()))).collect();
    plain(format!(
        "`{runbook}` was not requested:\n{}\nUsage: `/jit query {runbook} name=value … --reason \"…\"` (see `/jit runbooks`).",
        lines.join("\n")
    ))
}

pub fn unrunnable(runbook: &crate::ids::RunbookId, reason: &str) -> SlackMessage {
    plain(format!("`{runbook}` cannot run with these values: {}. Nothing was requested.", escape(reason)))
}

pub fn rate_limited(retry_after: std::time::Duration) -> SlackMessage {
    let minutes = retry_after.as_secs().div_ceil(60).max(1);
    plain(format!(
        "You have made too many requests recently. Try again in {minutes} minute{}.",
        if minutes == 1 { "" } else { "s" }
    ))
}

pub fn not_found(id: &RequestId) -> SlackMessage {
    plain(format!("{id} does not exist (or finished long ago). `/jit status` lists your recent requests."))
}

/// An ephemeral wrapper for a refusal.
pub fn refused(refusal_: &Refusal, request: Option<&RequestId>) -> SlackMessage {
    plain(refusal(refusal_, request))
}

/// `/jit status <id>`.
pub fn status(request: &AccessRequest) -> SlackMessage {
    plain(format!(
        "*{}* · {} · requested by {} {}\n{}\n```{}```",
        request.id,
        request.query.runbook,
        mention(&request.requester),
        date(request.created_at),
        status_line(request),
        code(&request.query.summary())
    ))
}

/// `/jit status` without an id: the user's recent requests.
pub fn recent(requests: &[AccessRequest]) -> SlackMessage {
    if requests.is_empty() {
        return plain("You have no recent requests. Start one with `/jit query`.".to_owned());
    }
    let lines: Vec<String> = requests
        .iter()
        .map(|r| format!("• *{}* {} — {} ({})", r.id, r.query.runbook, state_word(r), date(r.created_at)))
        .collect();
    plain(format!("Your recent requests:\n{}", lines.join("\n")))
}

/// Told to the requester when their card could not be posted.
pub fn card_not_posted(request: &AccessRequest, problem: &str) -> SlackMessage {
    plain(format!(
        "{} could not be sent for approval: {}. Nothing will run; ask a jitgate operator to fix it, then try again.",
        request.id,
        escape(problem)
    ))
}

/// Told to the clicker when the on-call list cannot be established.
pub fn roster_unavailable(message: &str) -> SlackMessage {
    plain(escape(message))
}

/// The failure of a run, in the card's thread.
pub fn run_failed_reply(reason: &FailureReason) -> SlackMessage {
    plain(format!("❌ {}", escape(&failure_reason(reason))))
}

/// Next to the runbook select of the picker form, when none was picked.
pub fn runbook_not_picked() -> String {
    "Pick a runbook.".to_owned()
}

/// Next to the reason input of a query form, when the runbook needs a reason and none was given.
pub fn reason_missing() -> String {
    "A reason is required (an incident or ticket id helps).".to_owned()
}

/// The half-way reminder in the card's thread.
pub fn reminder(request: &AccessRequest, approvers_now: &[SlackUserId]) -> SlackMessage {
    let who = if approvers_now.is_empty() { "on-call approvers".to_owned() } else { mentions(approvers_now) };
    plain(format!(
        "⏰ {who}: {} from {} is still waiting for approval and expires {}.",
        request.id,
        mention(&request.requester),
        date(request.expires_at)
    ))
}

/// The fail-safe alert posted in the approval channel: something in the setup needs an operator now.
pub fn security_alert(request: &AccessRequest, what: &FailureReason) -> SlackMessage {
    let advice = match what {
        FailureReason::NotWhatWasRequested { .. } | FailureReason::ChangedWhileStarting { .. } => {
            "Operators: its record in Redis was changed or replayed by someone other than jitgate, or rolled back \
             by a Redis failover that lost its last writes; check whether Redis failed over just now, who can \
             write to Redis, and the audit trail of this request."
        }
        _ => {
            "Nothing was run with those credentials. Operators: check the role's maximum session duration and STS, \
              and the audit trail of this request."
        }
    };
    plain(format!(
        "🚨 *jitgate security alert* for {} ({}): {}. {advice}",
        request.id,
        request.query.runbook,
        escape(&failure_reason(what))
    ))
}

/// The alert when an Approve click showed another operation than the stored request holds.
pub fn not_what_was_shown_alert(request: &AccessRequest, approver: &SlackUserId) -> SlackMessage {
    plain(format!(
        "🚨 *jitgate security alert* for {} ({}): <@{}> approved the operation the card showed, but the stored request \
         now holds another one (fingerprint {}). The approval was not counted and nothing was run. Operators: check \
         who can write to Redis, and the audit trail of this request.",
        request.id,
        request.query.runbook,
        approver.as_str(),
        request.fingerprint.short()
    ))
}

/// The alert when a stored request record fails its seal check: it was written by someone other than jitgate.
pub fn tampered_record_alert(id: &RequestId) -> SlackMessage {
    plain(format!(
        "🚨 *jitgate security alert* for {id}: its record in Redis was changed outside jitgate (its seal does not match). \
         jitgate refuses to act on it; nothing was approved or run. Operators: check who can write to Redis, and the \
         audit trail of this request."
    ))
}

/// What the user is told when the request they acted on failed its integrity check.
pub fn tampered_record(id: &RequestId) -> SlackMessage {
    plain(format!(
        "{id} failed jitgate's integrity check: its stored record was changed outside jitgate, so nothing was done \
         with it. Operators have been alerted. Ask again with /jit query if you still need it."
    ))
}

/// The fail-safe alert for a run left holding credentials by a stopped replica.
pub fn stuck_run_alert(request: &AccessRequest) -> SlackMessage {
    plain(format!(
        "🚨 *jitgate security alert*: {} ({}) was still marked running after its credentials' lifetime; its replica \
         stopped mid-run. It was failed and will not be re-run. Operators: check that replica and CloudTrail for \
         session `jit-{}`.",
        request.id, request.query.runbook, request.id
    ))
}

/// Told to the requester when the results could not be posted in the thread.
pub fn results_not_posted(request: &AccessRequest, problem: &str) -> SlackMessage {
    plain(format!(
        "{} ran, but its results could not be posted in the approval thread: {}. The execution is in the audit trail.",
        request.id,
        escape(problem)
    ))
}

/// The problem named in [`results_not_posted`] when a result file could not be written for upload.
pub fn results_file_not_written(detail: &str) -> String {
    format!(
        "jitgate could not write the result file to upload ({detail}); ask its operators to check the space in its \
         temporary directory"
    )
}

fn plain_text(text: &str, max: usize) -> Json {
    json!({ "type": "plain_text", "text": truncate(text, max) })
}

/// What a query modal carries between opening and submission.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct QueryViewMetadata {
    pub runbook: String,
    /// Where the command was typed, for the ephemeral answers.
    pub channel: String,
}

/// The form for one runbook: one input per parameter (prefilled with what was typed), then the reason.
pub fn query_view(
    runbook: &crate::runbook::Runbook,
    prefill: &std::collections::BTreeMap<String, String>,
    reason: Option<&str>,
    channel: &str,
) -> Json {
    use crate::runbook::{ParamKind, StringRule};
    let mut blocks = vec![section(format!("*{}* — {}", runbook.id(), escape(runbook.description())))];
    for param in runbook.parameters() {
        let initial = prefill.get(param.name()).map(String::as_str).or(param.default());
        let element = match param.kind() {
            ParamKind::String(StringRule::OneOf(values)) => {
                let options: Vec<Json> =
                    values.iter().take(100).map(|v| json!({ "text": plain_text(v, 75), "value": v })).collect();
                let mut element = json!({ "type": "static_select", "action_id": "value", "options": options });
                if let Some(initial) = initial.and_then(|i| values.iter().find(|v| v.eq_ignore_ascii_case(i))) {
                    element["initial_option"] = json!({ "text": plain_text(initial, 75), "value": initial });
                }
                element
            }
            ParamKind::Date => {
                let mut element = json!({ "type": "datepicker", "action_id": "value" });
                if let Some(initial) = initial {
                    element["initial_date"] = json!(initial);
                }
                element
            }
            ParamKind::String(_) | ParamKind::Integer { .. } | ParamKind::Timestamp => {
                let mut element = json!({ "type": "plain_text_input", "action_id": "value" });
                if let Some(initial) = initial {
                    element["initial_value"] = json!(initial);
                }
                element
            }
        };
        let mut block = json!({
            "type": "input",
            "block_id": param.name(),
            "optional": !param.is_required(),
            "label": plain_text(param.name(), 2000),
            "element": element,
        });
        if !param.description().is_empty() {
            block["hint"] = plain_text(param.description(), 2000);
        }
        blocks.push(block);
    }
    let mut reason_element = json!({ "type": "plain_text_input", "action_id": "value", "multiline": true });
    if let Some(reason) = reason {
        reason_element["initial_value"] = json!(reason);
    }
    blocks.push(json!({
        "type": "input",
        "block_id": REASON_BLOCK,
        "optional": !runbook.approval().require_reason,
        "label": plain_text("Reason (incident or ticket)", 2000),
        "element": reason_element,
    }));
    let metadata = QueryViewMetadata { runbook: runbook.id().to_string(), channel: channel.to_owned() };
    json!({
        "type": "modal",
        "callback_id": QUERY_VIEW,
        "private_metadata": serde_json::to_string(&metadata).unwrap_or_default(),
        "title": plain_text("Request a query", 24),
        "submit": plain_text("Request", 24),
        "close": plain_text("Cancel", 24),
        "blocks": blocks,
    })
}

/// The form for a bare `/jit query`: pick a runbook first.
pub fn runbook_picker_view(runbooks: &crate::runbook::RunbookSet, channel: &str) -> Json {
    let options: Vec<Json> = runbooks
        .iter()
        .take(100)
        .map(|r| json!({ "text": plain_text(r.id().as_str(), 75), "value": r.id().as_str(), "description": plain_text(r.description(), 75) }))
        .collect();
    json!({
        "type": "modal",
        "callback_id": PICK_VIEW,
        "private_metadata": channel,
        "title": plain_text("Request a query", 24),
        "submit": plain_text("Next", 24),
        "close": plain_text("Cancel", 24),
        "blocks": [{
            "type": "input",
            "block_id": RUNBOOK_BLOCK,
            "label": plain_text("Runbook", 2000),
            "element": { "type": "static_select", "action_id": "value", "options": options },
        }],
    })
}

/// The form behind Deny: an optional reason for the requester.
pub fn deny_view(request: &AccessRequest) -> Json {
    json!({
        "type": "modal",
        "callback_id": DENY_VIEW,
        "private_metadata": request.id.as_str(),
        "title": plain_text("Deny request", 24),
        "submit": plain_text("Deny", 24),
        "close": plain_text("Back", 24),
        "blocks": [
            section(format!("Deny *{}* ({}) from {}?", request.id, request.query.runbook, mention(&request.requester))),
            {
                "type": "input",
                "block_id": REASON_BLOCK,
                "optional": true,
                "label": plain_text("Reason (shown to the requester)", 2000),
                "element": { "type": "plain_text_input", "action_id": "value", "multiline": true },
            }
        ],
    })
}

#[cfg(test)]
mod tests;
