//! The promises against someone who can write to Redis, attacked for real through the running bot: a pending
//! request edited to another customer with its plain fingerprint recomputed (as an attacker who read the code
//! would), and the same with the seal stripped. The on-call approver's click on the original card is refused, the
//! operators are alerted, the attempt is audited, and no rows are read.

use jitgate_testkit as support;

use jitgate::ids::RequestId;
use jitgate::messages::APPROVE_ACTION;
use jitgate::request::AccessRequest;
use support::harness::*;

const ORDERS_OF_C2: &str =
    "orders-by-customer customer_id=C000002 from=2026-01-02 until=2026-01-03 --reason \"INC-812 refund check\"";

/// Rewrites the stored record of `id` as an attacker with write access to Redis would: `edit` changes the decoded
/// record, the state and version fields are left as they are so jitgate's compare-and-set still matches.
async fn tamper_with(h: &Harness, id: &RequestId, edit: impl FnOnce(&mut AccessRequest)) {
    let client = redis::Client::open(support::redis_url()).expect("redis url");
    let mut redis = client.get_multiplexed_async_connection().await.expect("connect to Redis");
    let key = format!("{}:{{{}}}:request", h.key_prefix, id.as_str());
    let body: String = redis::cmd("HGET").arg(&key).arg("body").query_async(&mut redis).await.expect("the record");
    let mut record: AccessRequest = serde_json::from_str(&body).expect("a request record");
    edit(&mut record);
    let body = serde_json::to_string(&record).expect("encode");
    let () = redis::cmd("HSET").arg(&key).arg("body").arg(body).query_async(&mut redis).await.expect("write");
}

/// Another customer's orders, with the fingerprint recomputed so the record is consistent in itself.
fn to_another_customer(record: &mut AccessRequest) {
    let text = serde_json::to_string(&record.query).expect("encode").replace("C000002", "C000003");
    record.query = serde_json::from_str(&text).expect("decode");
    record.fingerprint = record.query.fingerprint();
}

async fn assert_refused_with_an_alert_and_nothing_read(h: &Harness, card: &Card) {
    h.click(BOB, card, APPROVE_ACTION).await;
    let alert = h.slack.next_message_in(ONCALL).await.all_text();
    assert!(alert.contains("security alert") && alert.contains(card.id.as_str()), "{alert}");
    assert!(alert.contains("changed outside jitgate"), "{alert}");
    let told = h.ephemeral_for(BOB).await;
    assert!(told.contains("integrity check") && told.contains("nothing was done"), "{told}");
    h.wait_for_metric(r#"jitgate_security_alerts_total{kind="record_tampered"} 1"#).await;
    // Audited as such, and nothing approved or executed. (The emulator fails the test at its end if the bot posted
    // anything else: no card update, no rows in the thread.)
    assert_eq!(h.audit_kinds(&card.id).await, ["requested", "integrity_violation"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_edited_in_redis_with_its_fingerprint_recomputed_is_refused_at_the_click() {
    let h = Harness::start().await;
    let card = h.request(ALICE, ORDERS_OF_C2).await;
    tamper_with(&h, &card.id, to_another_customer).await;
    assert_refused_with_an_alert_and_nothing_read(&h, &card).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_edited_in_redis_without_its_seal_is_refused_too() {
    let h = Harness::start().await;
    let card = h.request(ALICE, ORDERS_OF_C2).await;
    tamper_with(&h, &card.id, |record| {
        to_another_customer(record);
        record.seal = None;
    })
    .await;
    assert_refused_with_an_alert_and_nothing_read(&h, &card).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untouched_request_still_runs() {
    // The seal round-trips through Redis: the same story without an attacker approves and runs.
    let h = Harness::start().await;
    let card = h.request(ALICE, ORDERS_OF_C2).await;
    h.click(BOB, &card, APPROVE_ACTION).await;
    h.card_update_containing(&card, "ran:").await;
    assert!(h.thread_reply(&card).await.all_text().contains("*18 rows*"));
    h.dm_for(ALICE).await;
    assert_eq!(h.audit_kinds(&card.id).await, ["requested", "approved", "executed"]);
}
