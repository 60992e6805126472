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
        rows,
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
        rows,
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
fn csv_quotes_and_defuses_formulas() {
    let columns = vec!["a".to_owned(), "b".to_owned()];
    let rows = vec![Row::from([
        ("a".to_owned(), Value::S("=HYPERLINK(\"x\")".into())),
        ("b".to_owned(), Value::S("one, two".into())),
    ])];
    assert_eq!(results_csv(&columns, &rows), "a,b\n\"'=HYPERLINK(\"\"x\"\")\",\"one, two\"\n");
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
        rows: vec![diff.after.clone()],
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
