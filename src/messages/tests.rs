//! Snapshots of what users see, and the guarantees about escaping and Block Kit limits.

use std::collections::{BTreeMap, BTreeSet};

use time::macros::datetime;

use super::*;
use crate::ids::RunbookId;
use crate::request::Value;
use crate::request::{self, ExecutionSummary, FailureReason, NewRequest, Roster, RosterSource};
use crate::runbook::{ApprovalPolicy, ApproverSources, BoundValue, KeyValue, Operation, RenderedQuery};

const NOW: OffsetDateTime = datetime!(2026-11-28 12:00 UTC);

fn user(id: &str) -> SlackUserId {
    SlackUserId::parse(id).unwrap()
}

fn request(reason: &str) -> AccessRequest {
    let query = RenderedQuery {
        runbook: RunbookId::parse("orders-by-customer").unwrap(),
        role_arn: "arn:aws:iam::123456789012:role/jitgate-orders-read".into(),
        table: "Orders".into(),
        table_arn: "arn:aws:dynamodb:us-east-1:123456789012:table/Orders".into(),
        index: Some("customer-created-index".into()),
        index_arn: Some("arn:aws:dynamodb:us-east-1:123456789012:table/Orders/index/customer-created-index".into()),
        operation: Operation::Query,
        key: vec![],
        partition_key: Some(KeyValue { attribute: "customer_id".into(), value: BoundValue::S("C000042".into()) }),
        key_condition_expression: Some("#k0 = :v0".into()),
        filter_expression: None,
        projection_expression: Some("#p0, #p1".into()),
        expression_attribute_names: BTreeMap::from([
            ("#k0".into(), "customer_id".into()),
            ("#p0".into(), "order_id".into()),
            ("#p1".into(), "email".into()),
        ]),
        expression_attribute_values: BTreeMap::from([(":v0".into(), BoundValue::S("C000042".into()))]),
        projected_attributes: vec!["order_id".into(), "email".into()],
        accessed_attributes: vec!["customer_id".into(), "email".into(), "order_id".into()],
        masked_attributes: vec!["email".into()],
        item_cap: 200,
        update: None,
        unmasked_attributes: vec![],
    };
    let policy = ApprovalPolicy {
        approvers: ApproverSources {
            pagerduty_schedules: BTreeSet::from(["PORDERS1".to_owned()]),
            ..Default::default()
        },
        required_approvals: 1,
        require_reason: true,
        ttl: std::time::Duration::from_secs(1800),
        escalation: None,
    };
    let new = NewRequest {
        id: RequestId::parse("JIT-7Q2M4X").unwrap(),
        requester: user("UALICE"),
        reason: Some(reason.into()),
        query,
        policy,
        incident: None,
    };
    AccessRequest::create(new, NOW).unwrap()
}

fn ctx() -> CardContext {
    CardContext {
        description: "A customer's orders".into(),
        approvers_now: vec![user("UBOB"), user("UCAROL")],
        unmapped: vec![],
        audit_link: None,
        break_glass_mention: None,
    }
}

fn approved(req: &AccessRequest) -> AccessRequest {
    let roster =
        Roster::new(NOW).with(user("UBOB"), RosterSource::Schedule("PORDERS1".into()), "PagerDuty schedule PORDERS1");
    match request::approve(req, &user("UBOB"), &roster, NOW) {
        request::ApproveOutcome::Approved { next, .. } => next,
        other => panic!("{other:?}"),
    }
}

/// Rows as a run delivers them.
fn kept(rows: Vec<Row>) -> ResultRows {
    crate::result_rows::RowsWriter::collect(rows).expect("rows are kept").0
}

fn all_text(message: &SlackMessage) -> String {
    serde_json::to_string(&message.blocks).unwrap()
}

#[test]
fn pending_card_shows_the_exact_query_approvers_and_buttons() {
    let card = approval_card(&request("INC-812 refund check"), &ctx());
    insta::assert_json_snapshot!("pending_card", card.blocks);
    assert!(card.text.contains("JIT-7Q2M4X"));
}

#[test]
fn every_later_state_replaces_the_buttons_with_its_outcome() {
    let pending = request("INC-812");
    let approved = approved(&pending);
    let running = request::start(&approved, &dummy_approved(&pending), NOW).unwrap();
    let summary = ExecutionSummary {
        row_count: 3,
        truncated: true,
        consumed_capacity: 0.5,
        result_sha256: "ab".into(),
        write: None,
        unmasked: vec![],
    };
    let cases = [
        ("running", running.clone(), "⚙️ running"),
        ("succeeded", request::succeed(&running, summary, NOW).unwrap(), "ran: 3 rows (capped)"),
        (
            "failed",
            request::fail(&running, FailureReason::Legacy("AWS access denied <b>".into()), NOW).unwrap(),
            "❌ Failed: AWS access denied &lt;b&gt;",
        ),
        ("expired", request::expire(&pending, pending.expires_at).unwrap(), "⌛ Expired"),
        ("cancelled", request::cancel(&pending, &user("UALICE"), NOW).unwrap(), "🚫 Cancelled by <@UALICE>"),
    ];
    for (name, req, expected) in cases {
        let card = approval_card(&req, &ctx());
        let text = all_text(&card);
        assert!(text.contains(expected), "{name}: {text}");
        assert!(!text.contains(APPROVE_ACTION), "{name}: no buttons once decided");
    }
}

fn dummy_approved(pending: &AccessRequest) -> crate::request::ApprovedQuery {
    let roster = Roster::new(NOW).with(user("UBOB"), RosterSource::Schedule("PORDERS1".into()), "PagerDuty");
    match request::approve(pending, &user("UBOB"), &roster, NOW) {
        request::ApproveOutcome::Approved { query, .. } => query,
        other => panic!("{other:?}"),
    }
}

#[test]
fn user_text_cannot_ping_link_or_break_out_of_code() {
    let card = approval_card(&request("<!channel> see <https://evil.example|here> & ```rm```"), &ctx());
    let text = all_text(&card);
    assert!(!text.contains("<!channel>"), "{text}");
    assert!(text.contains("&lt;!channel&gt;"), "{text}");
    assert!(!text.contains("<https://evil"), "{text}");
    assert_eq!(code("a```b"), "a`\u{200B}``b");
}

#[test]
fn results_reply_fits_block_kit_and_points_at_the_files_when_large() {
    let req = request("x");
    let rows: Vec<Row> = (0..500)
        .map(|i| {
            Row::from([("order_id".to_owned(), Value::S(format!("O{i:08}"))), ("email".to_owned(), Value::Masked)])
        })
        .collect();
    let result = ExecutionResult {
        rows: kept(rows),
        row_count: 500,
        truncated: true,
        consumed_capacity: 12.5,
        pages: 3,
        result_sha256: "ab".into(),
        write: None,
        unmasked: vec![],
    };
    let reply = results_reply(&req, &result, "https://jitgate.example/audit/JIT-7Q2M4X", true);
    assert!(reply.blocks.len() <= 50);
    for block in &reply.blocks {
        if let Some(text) = block.pointer("/text/text").and_then(|t| t.as_str()) {
            assert!(text.chars().count() <= 3000, "section over the limit: {}", text.len());
        }
    }
    let text = all_text(&reply);
    assert!(text.contains("Showing 20 of 500 rows; the full result is attached as CSV and JSON."), "{text}");
    assert!(text.contains("caps results at 200 items"), "{text}");
    assert!(text.contains("<https://jitgate.example/audit/JIT-7Q2M4X|audit entry>"), "{text}");
    assert!(text.contains("••••"), "masked values show as masked");
}

#[test]
fn small_results_snapshot() {
    let req = request("x");
    let rows =
        vec![Row::from([("order_id".to_owned(), Value::S("O000420001".into())), ("email".to_owned(), Value::Masked)])];
    let result = ExecutionResult {
        rows: kept(rows),
        row_count: 1,
        truncated: false,
        consumed_capacity: 0.5,
        pages: 1,
        result_sha256: "ab".into(),
        write: None,
        unmasked: vec![],
    };
    let reply = results_reply(&req, &result, "https://jitgate.example/audit/JIT-7Q2M4X", false);
    insta::assert_json_snapshot!("small_results", reply.blocks);
}

#[test]
fn refusals_say_what_happened_and_what_to_do() {
    let id = RequestId::parse("JIT-7Q2M4X").unwrap();
    assert_eq!(
        refusal(&Refusal::SelfApproval, Some(&id)),
        "JIT-7Q2M4X: you cannot approve or deny your own request; someone else on call has to."
    );
    assert!(refusal(&Refusal::NotPending(RequestState::Succeeded), None).contains("already succeeded"));
}

/// Block Kit, checked strictly: every block type, element and field must be one Slack's reference documents, within
/// its limits (`jitgate_emulators::slack::block_kit`, the check the Slack emulator applies to every call). The
/// message `text` must be there (it is the notification and the fallback) and within the 4,000 characters
/// `chat.update` accepts.
mod block_kit {
    use jitgate_emulators::slack::block_kit::{Surface, validate, validate_view};

    use super::*;

    pub fn assert_message(what: &str, message: &SlackMessage) {
        assert!(!message.text.trim().is_empty(), "{what}: no text");
        assert!(message.text.chars().count() <= 4000, "{what}: text of {} characters", message.text.chars().count());
        if let Err(problem) = validate(&Json::Array(message.blocks.clone()), Surface::Message, "/blocks") {
            panic!("{what}: {problem:?}\n{:#}", Json::Array(message.blocks.clone()));
        }
    }

    pub fn assert_view(what: &str, view: &Json) {
        if let Err(problem) = validate_view(view, "/view") {
            panic!("{what}: {problem:?}\n{view:#}");
        }
    }
}

fn long(text: &str) -> String {
    text.repeat(4000 / text.len() + 1)
}

#[test]
fn every_card_state_is_valid_block_kit_even_with_the_longest_texts() {
    let pending = request("INC-812");
    let mut context = ctx();
    context.audit_link = Some("https://jitgate.example/audit/JIT-7Q2M4X?sig=abc".into());
    context.unmapped = vec![unable_to_approve("Dana", "dana@example.com", None)];
    let approved = approved(&pending);
    let running = request::start(&approved, &dummy_approved(&pending), NOW).unwrap();
    let summary = ExecutionSummary {
        row_count: 3,
        truncated: true,
        consumed_capacity: 0.5,
        result_sha256: "ab".into(),
        write: None,
        unmasked: vec![],
    };
    let roster = Roster::new(NOW).with(user("UBOB"), RosterSource::Schedule("PORDERS1".into()), "PagerDuty");
    let states = [
        ("pending", pending.clone()),
        ("approved", approved.clone()),
        ("running", running.clone()),
        ("succeeded", request::succeed(&running, summary, NOW).unwrap()),
        ("failed", request::fail(&running, FailureReason::Legacy(long("AWS <denied> ")), NOW).unwrap()),
        ("expired", request::expire(&pending, pending.expires_at).unwrap()),
        ("cancelled", request::cancel(&pending, &user("UALICE"), NOW).unwrap()),
        ("denied", request::deny(&pending, &user("UBOB"), Some(long("not now ")), &roster, NOW).unwrap()),
    ];
    for (name, req) in &states {
        block_kit::assert_message(name, &approval_card(req, &ctx()));
        block_kit::assert_message(name, &approval_card(req, &context));
        // As src/bot sends it: the text alone.
        block_kit::assert_message(name, &SlackMessage { text: requester_update(req), blocks: Vec::new() });
        block_kit::assert_message(name, &status(req));
    }
    // A reason and a description far over every limit are cut to fit, not sent to be refused.
    let mut huge = ctx();
    huge.description = long("a very long description ");
    huge.unmapped = (0..200).map(|i| unable_to_approve(&format!("P{i}"), "p@example.com", None)).collect();
    block_kit::assert_message("long texts", &approval_card(&request(&long("reason <x> ")), &huge));
    let mut unpinned = request("x");
    unpinned.query.projection_expression = None;
    unpinned.query.projected_attributes = vec![];
    unpinned.query.masked_attributes = vec![];
    block_kit::assert_message("unpinned", &approval_card(&unpinned, &ctx()));
}

#[test]
fn every_results_reply_and_plain_message_is_valid_block_kit() {
    let req = request("x");
    let row = |i: usize| {
        Row::from([
            ("order_id".to_owned(), Value::S(format!("O{i:08}{}", "x".repeat(200)))),
            ("email".to_owned(), Value::Masked),
        ])
    };
    for (count, truncated) in [(0usize, false), (1, false), (20, false), (500, true)] {
        let rows: Vec<Row> = (0..count).map(row).collect();
        let result = ExecutionResult {
            rows: kept(rows),
            row_count: count.try_into().unwrap(),
            truncated,
            consumed_capacity: 12.5,
            pages: 3,
            result_sha256: "ab".into(),
            write: None,
            unmasked: vec![],
        };
        for files in [true, false] {
            let reply = results_reply(&req, &result, "https://jitgate.example/audit/JIT-7Q2M4X", files);
            block_kit::assert_message(&format!("results of {count} rows"), &reply);
        }
    }

    let id = RequestId::parse("JIT-7Q2M4X").unwrap();
    let runbook = RunbookId::parse("orders-by-customer").unwrap();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("runbooks");
    let runbooks = crate::runbook::RunbookSet::load_dir(&dir, &crate::runbook::RunbookDefaults::default()).unwrap();
    let refusals = [
        Refusal::ReasonRequired,
        Refusal::SelfApproval,
        Refusal::NotOnCall,
        Refusal::RosterStale,
        Refusal::AlreadyApprovedBy,
        Refusal::Expired,
        Refusal::NotRequester,
        Refusal::NotPending(RequestState::Succeeded),
        Refusal::NotWhatWasShown,
    ];
    let mut messages = vec![
        ("help", help()),
        ("command error", command_error(&crate::command::CommandError::UnknownFlag { flag: long("--x") })),
        ("runbooks", runbooks_list(&runbooks)),
        ("unknown runbook", unknown_runbook(&long("nope"), Some(&runbook))),
        ("unrunnable", unrunnable(&runbook, "the date range is empty")),
        ("rate limited", rate_limited(std::time::Duration::from_secs(90))),
        ("not found", not_found(&id)),
        ("recent", recent(&[req.clone(), approved(&req)])),
        ("no recent", recent(&[])),
        ("card not posted", card_not_posted(&req, "channel_not_found")),
        ("roster unavailable", roster_unavailable("PagerDuty did not answer")),
        ("run failed", run_failed_reply(&FailureReason::Interrupted)),
        ("reminder", reminder(&req, &[user("UBOB")])),
        ("security alert", security_alert(&req, &FailureReason::NeverStarted)),
        ("not what was shown", not_what_was_shown_alert(&req, &user("UBOB"))),
        ("tampered alert", tampered_record_alert(&id)),
        ("tampered", tampered_record(&id)),
        ("stuck", stuck_run_alert(&req)),
        ("results not posted", results_not_posted(&req, "not_in_channel")),
        ("internal error", SlackMessage { text: internal_error("JIT-ERR-1"), blocks: Vec::new() }),
        ("submitted", SlackMessage { text: submitted(&req, &[user("UBOB")]), blocks: Vec::new() }),
    ];
    for refusal_ in &refusals {
        messages.push(("refusal", refused(refusal_, Some(&id))));
    }
    for (what, message) in &messages {
        block_kit::assert_message(what, message);
    }
}

#[test]
fn every_view_is_valid_block_kit() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("runbooks");
    let runbooks = crate::runbook::RunbookSet::load_dir(&dir, &crate::runbook::RunbookDefaults::default()).unwrap();
    for runbook in runbooks.iter() {
        let what = runbook.id().to_string();
        block_kit::assert_view(&what, &query_view(runbook, &BTreeMap::new(), None, "C1"));
        let prefill: BTreeMap<String, String> =
            runbook.parameters().iter().map(|p| (p.name().to_owned(), "2026-11-30".to_owned())).collect();
        block_kit::assert_view(&what, &query_view(runbook, &prefill, Some("INC-812"), "C1"));
    }
    block_kit::assert_view("picker", &runbook_picker_view(&runbooks, "C1"));
    block_kit::assert_view("deny", &deny_view(&request("x")));
}

#[test]
fn the_strict_check_refuses_a_card_or_view_with_one_thing_wrong() {
    use jitgate_emulators::slack::block_kit::{Surface, validate, validate_view};
    let card = Json::Array(approval_card(&request("x"), &ctx()).blocks);
    assert!(validate(&card, Surface::Message, "/blocks").is_ok());
    let broken = |edit: &dyn Fn(&mut Json)| {
        let mut blocks = card.clone();
        edit(&mut blocks);
        validate(&blocks, Surface::Message, "/blocks").is_err()
    };
    assert!(broken(&|b| b[0]["text"]["type"] = json!("mrkdwn")), "a header in mrkdwn");
    assert!(broken(&|b| b[0]["type"] = json!("headline")), "an unknown block type");
    assert!(broken(&|b| b[1]["text"]["txt"] = json!("x")), "a misspelt field");
    let actions = card.as_array().unwrap().iter().position(|b| b["type"] == "actions").unwrap();
    assert!(broken(&|b| b[actions]["elements"][0]["text"]["text"] = json!("A".repeat(76))), "a long button text");
    assert!(broken(&|b| b[actions]["elements"][1]["action_id"] = json!(APPROVE_ACTION)), "a duplicate action_id");
    assert!(broken(&|b| b[actions]["elements"][0]["value"] = json!("v".repeat(2001))), "a long button value");
    let view = deny_view(&request("x"));
    assert!(validate_view(&view, "/view").is_ok());
    let mut long_title = view.clone();
    long_title["title"]["text"] = json!("A title over twenty-four characters");
    assert!(validate_view(&long_title, "/view").is_err(), "a long modal title");
    let mut no_submit = view;
    no_submit.as_object_mut().unwrap().remove("submit");
    assert!(validate_view(&no_submit, "/view").is_err(), "inputs without a submit button");
}

#[test]
fn views_are_accepted_by_the_slack_client_library() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("runbooks");
    let runbooks = crate::runbook::RunbookSet::load_dir(&dir, &crate::runbook::RunbookDefaults::default()).unwrap();
    for runbook in runbooks.iter() {
        let view = query_view(runbook, &BTreeMap::new(), None, "C1");
        if let Err(err) = serde_json::from_value::<slack_morphism::prelude::SlackView>(view.clone()) {
            panic!("{}: {err}\n{view:#}", runbook.id());
        }
    }
    let picker = runbook_picker_view(&runbooks, "C1");
    serde_json::from_value::<slack_morphism::prelude::SlackView>(picker).unwrap();
    let deny = deny_view(&request("x"));
    serde_json::from_value::<slack_morphism::prelude::SlackView>(deny).unwrap();
}

#[test]
fn a_fully_pinned_request_says_nothing_more_about_its_credentials() {
    // One partition value, no sort key condition, a projection: the credentials reach exactly the request.
    assert_eq!(credentials_reach(&request("x").query), None);
    assert!(!all_text(&approval_card(&request("x"), &ctx())).contains("could read more"));
}

#[test]
fn the_card_says_what_unpinned_credentials_could_read() {
    let mut req = request("INC-812");
    // get_item with a sort key and no projection: IAM pins neither the sort key nor the attributes.
    req.query.operation = Operation::GetItem;
    req.query.index = None;
    req.query.index_arn = None;
    req.query.key_condition_expression = None;
    req.query.projection_expression = None;
    req.query.projected_attributes = vec![];
    req.query.masked_attributes = vec![];
    req.query.partition_key = Some(KeyValue { attribute: "order_id".into(), value: BoundValue::S("O1".into()) });
    req.query.key = vec![
        KeyValue { attribute: "order_id".into(), value: BoundValue::S("O1".into()) },
        KeyValue { attribute: "line_no".into(), value: BoundValue::N("2".into()) },
    ];
    let card = approval_card(&req, &ctx());
    insta::assert_json_snapshot!("unpinned_card", card.blocks[4]);

    // A query with a sort key condition: the partition is pinned, the range is not.
    let mut ranged = request("x");
    ranged.query.key_condition_expression = Some("#k0 = :v0 AND #k1 BETWEEN :v1 AND :v2".into());
    assert_eq!(
        credentials_reach(&ranged.query).as_deref(),
        Some(
            "any item with customer_id = \"C000042\", not only what this request selects (IAM can pin the partition \
             key value but not a sort key condition or filter)"
        )
    );
    // A scan with a projection reads the whole table, which its summary already says.
    ranged.query.operation = Operation::Scan;
    ranged.query.partition_key = None;
    ranged.query.key_condition_expression = None;
    assert_eq!(credentials_reach(&ranged.query), None);
}

/// The shipped write runbook, rendered for order O000010006, as a pending request.
fn write_request(unmask: &[String]) -> AccessRequest {
    let text = include_str!("../../runbooks/cancel-stuck-order.yaml")
        .replace("mask: [email]", "mask: [email]\nunmaskable: [email]");
    let path = std::path::Path::new("cancel-stuck-order.yaml");
    let set = crate::runbook::RunbookSet::from_sources([(path, text.as_str())], &Default::default()).unwrap();
    let runbook = set.iter().next().unwrap();
    let args = BTreeMap::from([
        ("order_id".to_owned(), "O000010006".to_owned()),
        ("refund_note".to_owned(), "INC-812 refund".to_owned()),
    ]);
    let query = runbook.unmask(runbook.render(&args, "us-east-1").unwrap(), unmask).unwrap();
    let new = NewRequest {
        id: RequestId::parse("JIT-7Q2M4X").unwrap(),
        requester: user("UALICE"),
        reason: Some("INC-812".into()),
        query,
        policy: runbook.approval().clone(),
        incident: None,
    };
    AccessRequest::create(new, NOW).unwrap()
}

#[test]
fn a_write_card_is_visibly_a_write_with_what_it_writes_and_its_precondition() {
    let card = approval_card(&write_request(&[]), &ctx());
    insta::assert_json_snapshot!("write_card", card.blocks);
    let text = serde_json::to_string(&card.blocks).unwrap();
    assert!(text.contains("✏️ WRITE · JIT-7Q2M4X"), "{text}");
    assert!(text.contains("2 approvals from different people needed"), "{text}");
    assert!(!text.contains("could read more"), "a write's attributes are pinned: {text}");

    let unmasking = approval_card(&write_request(&["email".to_owned()]), &ctx());
    let text = serde_json::to_string(&unmasking.blocks).unwrap();
    assert!(text.contains("Asks to see in clear:* email") && text.contains("(3 in all)"), "{text}");
}

#[test]
fn a_write_reply_shows_each_changed_attribute_before_and_after_with_masks_kept() {
    let request = write_request(&[]);
    let row = |pairs: &[(&str, Value)]| -> Row { pairs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect() };
    let key = ("order_id", Value::S("O000010006".into()));
    let diff = request::WriteDiff {
        before: row(&[key.clone(), ("status", Value::S("paid".into())), ("email", Value::Masked)]),
        after: row(&[
            key,
            ("status", Value::S("cancelled".into())),
            ("refund_note", Value::S("INC-812".into())),
            ("email", Value::Masked),
        ]),
        written: vec!["email".into(), "refund_note".into(), "status".into()],
    };
    let result = ExecutionResult {
        rows: kept(vec![diff.after.clone()]),
        row_count: 1,
        truncated: false,
        consumed_capacity: 1.0,
        pages: 1,
        result_sha256: "ab".into(),
        write: Some(diff),
        unmasked: vec![],
    };
    let reply = results_reply(&request, &result, "https://jitgate.test/audit/JIT-7Q2M4X", false);
    let text = serde_json::to_string(&reply.blocks).unwrap();
    assert!(text.contains("attribute   | before   | after"), "{text}");
    assert!(text.contains("refund_note | (absent) | INC-812"), "{text}");
    assert!(text.contains("status      | paid     | cancelled"), "{text}");
    assert!(!text.contains("email "), "an unchanged (masked) attribute is not listed: {text}");
}
