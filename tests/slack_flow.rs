//! The Slack bot end to end: real socket-mode connections to the Slack emulator, PagerDuty emulator for the
//! on-call roster, real Redis, and the local DynamoDB/STS server. Each test is one user story.

mod support;

use jitgate::messages::{APPROVE_ACTION, DENY_ACTION};
use support::harness::*;

/// The canonical request: customer C000002's orders placed on 2 January 2026 (18 of the seeded rows).
const ORDERS_OF_C2: &str =
    "orders-by-customer customer_id=C000002 from=2026-01-02 until=2026-01-03 --reason \"INC-812 refund check\"";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn happy_path_request_card_approve_results_in_thread_with_audit_link() {
    let h = Harness::start().await;
    let card = h.request(ALICE, ORDERS_OF_C2).await;
    let text = card.message.all_text();
    assert!(text.contains("<@U0ALICE> asks to run *orders-by-customer*"), "{text}");
    assert!(text.contains("customer_id = \\\"C000002\\\"") || text.contains("customer_id = \"C000002\""), "{text}");
    assert!(text.contains("<@U0BOB>") && text.contains("<@U0CAROL>"), "on-call approvers are named: {text}");

    h.click(BOB, &card, APPROVE_ACTION).await;
    let approved = h.next_card_update(&card).await;
    assert!(approved.all_text().contains("Approved by <@U0BOB>"), "{}", approved.all_text());
    let done = h.card_update_containing(&card, "ran:").await;
    assert!(done.all_text().contains("results in the thread"), "{}", done.all_text());
    let results = h.thread_reply(&card).await;
    let results_text = results.all_text();
    assert!(results_text.contains("*18 rows* from *orders-by-customer*"), "{results_text}");
    assert!(results_text.contains(&format!("https://jitgate.test/audit/{}", card.id)), "{results_text}");
    assert!(results_text.contains("••••") && !results_text.contains("@example.com"), "masked: {results_text}");
    let dm = h.dm_for(ALICE).await;
    assert!(dm.all_text().contains(card.id.as_str()), "{}", dm.all_text());

    assert_eq!(h.audit_kinds(&card.id).await, ["requested", "approved", "executed"]);
    if std::env::var("JITGATE_PRINT_TRANSCRIPT").is_ok() {
        for call in h.slack.calls() {
            println!("{} {}", call.method, call.params);
        }
    }
    h.slack.assert_everything_read();
    h.shutdown().await;
}
