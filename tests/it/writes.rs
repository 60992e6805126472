//! Reviewed writes and unmasking, end to end through the real socket listener, the Slack and PagerDuty emulators,
//! Redis and the local DynamoDB/STS server: a write needs two distinct on-call approvers (never the requester, a
//! second click by the same person does not count), runs once under its precondition and shows what it changed;
//! a write whose precondition no longer holds writes nothing and says so; `--unmask` needs one more approver.
//!
//! Set `JITGATE_PRINT_TRANSCRIPT=1` to print the Slack texts each story posted.

use jitgate_testkit as support;

use aws_sdk_dynamodb::types::AttributeValue;
use jitgate::audit::AuditEvent;
use jitgate::ids::RequestId;
use jitgate::messages::APPROVE_ACTION;
use support::harness::*;

/// Seeded order 6 of customer 1 is `paid` (statuses cycle by customer + order number), the stuck order of the story.
const PAID_ORDER: &str = "O000010006";
/// Seeded order 1 of customer 1 is `shipped`: a precondition of `paid` fails on it.
const SHIPPED_ORDER: &str = "O000010001";

fn cancel(order: &str) -> String {
    format!(
        "cancel-stuck-order order_id={order} refund_note=\"INC-812 captured twice, refund in full\" --reason \"INC-812\""
    )
}

async fn item(h: &Harness, order: &str) -> std::collections::HashMap<String, AttributeValue> {
    let client = aws_sdk_dynamodb::Client::new(&support::aws_config());
    let out = client
        .get_item()
        .table_name(&h.orders_table)
        .key("order_id", AttributeValue::S(order.to_owned()))
        .send()
        .await
        .expect("GetItem");
    out.item.expect("the order exists")
}

fn s(item: &std::collections::HashMap<String, AttributeValue>, name: &str) -> Option<String> {
    item.get(name).and_then(|v| v.as_s().ok()).cloned()
}

async fn executed_summary(h: &Harness, id: &RequestId) -> jitgate::request::ExecutionSummary {
    let entries = h.audit().entries_for(id).await.expect("audit");
    entries
        .into_iter()
        .find_map(|e| match e.event {
            AuditEvent::Executed { summary, .. } => Some(summary),
            _ => None,
        })
        .expect("an executed entry")
}

fn transcript(h: &Harness, story: &str) {
    if std::env::var("JITGATE_PRINT_TRANSCRIPT").is_ok() {
        println!("--- {story}");
        for call in h.slack.calls() {
            if let Some(text) = call.params.get("text") {
                println!("{} {}", call.method, text);
            }
            if let Some(blocks) = call.params.get("blocks") {
                println!("    blocks: {blocks}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_needs_two_distinct_approvers_runs_once_and_shows_before_and_after() {
    let h = Harness::start().await;
    let card = h.request(ALICE, &cancel(PAID_ORDER)).await;
    let text = card.message.all_text();
    assert!(text.contains("✏️ WRITE"), "the card is visibly a write: {text}");
    assert!(text.contains("This request CHANGES DATA"), "{text}");
    assert!(text.contains("status → \\\"cancelled\\\"") || text.contains("status → \"cancelled\""), "{text}");
    assert!(text.contains("status = \\\"paid\\\"") || text.contains("status = \"paid\""), "the precondition: {text}");
    assert!(text.contains("2 approvals from different people needed"), "{text}");

    // The requester can never be one of the approvers.
    h.click(ALICE, &card, APPROVE_ACTION).await;
    assert!(h.ephemeral_for(ALICE).await.contains("you cannot approve or deny your own request"));

    // The first approval is counted and shown; the write has not run.
    h.click(BOB, &card, APPROVE_ACTION).await;
    let counted = h.next_card_update(&card).await;
    assert!(counted.all_text().contains("1 of 2 approvals so far (<@U0BOB>)"), "{}", counted.all_text());
    assert!(!counted.buttons().is_empty(), "still pending: the buttons stay");
    let dm = h.dm_for(ALICE).await;
    assert!(dm.all_text().contains(card.id.as_str()), "{}", dm.all_text());
    assert_eq!(s(&item(&h, PAID_ORDER).await, "status").as_deref(), Some("paid"), "nothing written yet");

    // The same approver clicking again does not count twice.
    h.click(BOB, &card, APPROVE_ACTION).await;
    assert!(h.ephemeral_for(BOB).await.contains("you already approved this request"));
    assert_eq!(s(&item(&h, PAID_ORDER).await, "status").as_deref(), Some("paid"), "still nothing written");

    // The second distinct approver: the write runs, once.
    h.click(CAROL, &card, APPROVE_ACTION).await;
    let done = h.card_update_containing(&card, "wrote 1 item").await;
    assert!(done.all_text().contains("Approved by <@U0BOB> <@U0CAROL>") || done.all_text().contains("<@U0CAROL>"));
    let reply = h.thread_reply(&card).await;
    let reply_text = reply.all_text();
    assert!(reply_text.contains("Wrote 1 item"), "{reply_text}");
    assert!(reply_text.contains("status") && reply_text.contains("paid") && reply_text.contains("cancelled"));
    assert!(reply_text.contains("refund_note") && reply_text.contains("(absent)"), "{reply_text}");
    assert!(reply_text.contains(&format!("https://jitgate.test/audit/{}", card.id)), "{reply_text}");
    // The audit page shows the write as it was sent.
    let link = reply_text.split(['<', '|']).find(|p| p.starts_with("https://jitgate.test/audit/")).unwrap().to_owned();
    let (status, page) = h.fetch_link(&link).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("ConditionExpression") && page.contains("UPDATED_OLD"), "{page}");
    assert!(page.contains("Wrote 1 item") && page.contains("Item SHA-256 before"), "{page}");
    let dm = h.dm_for(ALICE).await;
    assert!(dm.all_text().contains(card.id.as_str()), "{}", dm.all_text());

    let after = item(&h, PAID_ORDER).await;
    assert_eq!(s(&after, "status").as_deref(), Some("cancelled"));
    assert_eq!(s(&after, "refund_note").as_deref(), Some("INC-812 captured twice, refund in full"));
    assert_eq!(s(&after, "email").as_deref(), Some("customer000001@example.com"), "other attributes untouched");

    assert_eq!(h.audit_kinds(&card.id).await, ["requested", "refused", "approved", "refused", "approved", "executed"]);
    let summary = executed_summary(&h, &card.id).await;
    let write = summary.write.expect("the executed entry records the write");
    assert_eq!(write.written, ["refund_note", "status"]);
    assert_eq!(write.before_sha256.len(), 64);
    assert_ne!(write.before_sha256, write.after_sha256, "the item changed");
    transcript(&h, "write");
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_whose_precondition_no_longer_holds_writes_nothing_and_says_so() {
    let h = Harness::start().await;
    let card = h.request(ALICE, &cancel(SHIPPED_ORDER)).await;
    h.click(BOB, &card, APPROVE_ACTION).await;
    h.next_card_update(&card).await;
    h.dm_for(ALICE).await;
    h.click(CAROL, &card, APPROVE_ACTION).await;
    let failed = h.card_update_containing(&card, "Failed").await;
    assert!(
        failed.all_text().contains("the item changed since the request; nothing was written"),
        "{}",
        failed.all_text()
    );
    let reply = h.thread_reply(&card).await;
    assert!(reply.all_text().contains("nothing was written"), "{}", reply.all_text());
    let dm = h.dm_for(ALICE).await;
    assert!(dm.all_text().contains("nothing was written"), "{}", dm.all_text());

    let unchanged = item(&h, SHIPPED_ORDER).await;
    assert_eq!(s(&unchanged, "status").as_deref(), Some("shipped"));
    assert_eq!(s(&unchanged, "refund_note"), None);
    assert_eq!(h.audit_kinds(&card.id).await, ["requested", "approved", "approved", "failed"]);
    let entries = h.audit().entries_for(&card.id).await.expect("audit");
    let Some(AuditEvent::Failed { code, reason, .. }) = entries.last().map(|e| e.event.clone()) else { panic!() };
    assert_eq!(code.as_deref(), Some("precondition_failed"));
    assert!(reason.contains("the item changed since the request; nothing was written"), "{reason}");
    transcript(&h, "precondition failed");
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unmasking_needs_one_more_approver_and_is_recorded() {
    let h = Harness::start().await;
    let card =
        h.request(ALICE, "order-by-id order_id=O000010006 --unmask email --reason \"INC-812 wrong email\"").await;
    let text = card.message.all_text();
    assert!(text.contains("Asks to see in clear:* email"), "shown prominently: {text}");
    assert!(text.contains("2 approvals from different people needed"), "the runbook's 1, plus one: {text}");

    // One approval is what the runbook normally needs; with --unmask it is not enough.
    h.click(BOB, &card, APPROVE_ACTION).await;
    let counted = h.next_card_update(&card).await;
    assert!(counted.all_text().contains("1 of 2 approvals so far"), "{}", counted.all_text());
    h.dm_for(ALICE).await;

    h.click(CAROL, &card, APPROVE_ACTION).await;
    h.card_update_containing(&card, "ran:").await;
    let rows = h.thread_reply(&card).await.all_text();
    assert!(rows.contains("customer000001@example.com"), "email in clear: {rows}");
    assert!(rows.contains("••••"), "shipping_address stays masked: {rows}");
    assert!(rows.contains("Shown in clear on request"), "{rows}");
    h.dm_for(ALICE).await;

    let summary = executed_summary(&h, &card.id).await;
    assert_eq!(summary.unmasked, ["email"]);
    let entries = h.audit().entries_for(&card.id).await.expect("audit");
    let Some(AuditEvent::Requested { query, policy, .. }) = entries.first().map(|e| e.event.clone()) else { panic!() };
    assert_eq!(query.unmasked_attributes, ["email"]);
    assert_eq!(query.masked_attributes, ["shipping_address"]);
    assert_eq!(policy.required_approvals, 2);
    transcript(&h, "unmask");
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unmasking_an_attribute_the_runbook_does_not_allow_is_refused_and_audited() {
    let h = Harness::start().await;
    for (text, said) in [
        ("order-by-id order_id=O000010006 --unmask shipping_address --reason x", "it lets you unmask only: email"),
        ("order-by-id order_id=O000010006 --unmask total --reason x", "`total` cannot be unmasked"),
        ("orders-by-status status=paid since=2026-01-01T00:00:00Z --unmask email --reason x", "it lets no attribute"),
    ] {
        let envelope = h.slash(ALICE, &format!("query {text}")).await;
        assert!(ack_is_bare(&envelope.ack().await.expect("acked")));
        let answer = h.ephemeral_for(ALICE).await;
        assert!(answer.contains(said) && answer.contains("Nothing was requested"), "{text}: {answer}");
    }
    let refusals = h.refusals_recorded(ALICE, 3).await;
    assert_eq!(refusals.0, 3, "each refusal audited: {refusals:?}");
    h.shutdown().await;
}
