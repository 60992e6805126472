//! Graceful shutdown: the sockets close first, a query already running gets the drain deadline to finish, and one
//! still running after it is failed as interrupted — audited, card updated, requester told — never re-run. The
//! query is held "running" by a gate in front of the local DynamoDB server, so no timing decides the outcome.

use jitgate_testkit as support;

use jitgate::app::ShutdownOutcome;
use jitgate::messages::APPROVE_ACTION;
use support::gate::Gate;
use support::harness::*;

const ORDERS_OF_C2: &str =
    "orders-by-customer customer_id=C000002 from=2026-01-02 until=2026-01-03 --reason \"INC-812 refund check\"";

async fn harness_behind_gate(shutdown_drain: &'static str) -> (Harness, Gate) {
    let gate = Gate::closed(&support::aws_endpoint()).await;
    let options = Options { aws_endpoint: Some(gate.endpoint.clone()), shutdown_drain, ..Options::default() };
    (Harness::start_with(options).await, gate)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_running_at_shutdown_finishes_within_the_drain_deadline() {
    let (mut h, gate) = harness_behind_gate("5m").await;
    let card = h.request(ALICE, ORDERS_OF_C2).await;
    h.click(BOB, &card, APPROVE_ACTION).await;
    assert!(h.next_card_update(&card).await.all_text().contains("Approved by <@U0BOB>"));
    gate.wait_for_held_call().await;

    let sockets = h.slack.connection_ids();
    let stopping = tokio::spawn(h.apps.remove(0).shutdown());
    // New envelopes stop first: every socket is closed while the query is still held at the gate.
    for socket in sockets {
        h.slack.wait_for_closed(socket).await;
    }
    assert!(!stopping.is_finished(), "shutdown waits for the running query");

    gate.open();
    let done = h.card_update_containing(&card, "ran:").await;
    assert!(done.all_text().contains("results in the thread"), "{}", done.all_text());
    assert!(h.thread_reply(&card).await.all_text().contains("*18 rows*"));
    assert!(h.dm_for(ALICE).await.all_text().contains(card.id.as_str()));
    assert_eq!(stopping.await.unwrap(), ShutdownOutcome::Drained);
    assert_eq!(h.audit_kinds(&card.id).await, ["requested", "approved", "executed"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_still_running_at_the_deadline_is_failed_as_interrupted_and_never_rerun() {
    // A zero drain: the held query cannot finish before the deadline, whatever the machine's speed.
    let (mut h, gate) = harness_behind_gate("0s").await;
    let card = h.request(ALICE, ORDERS_OF_C2).await;
    h.click(BOB, &card, APPROVE_ACTION).await;
    assert!(h.next_card_update(&card).await.all_text().contains("Approved by <@U0BOB>"));
    gate.wait_for_held_call().await;

    let outcome = h.apps.remove(0).shutdown().await;
    assert_eq!(outcome, ShutdownOutcome::Interrupted);

    let update = h.next_card_update(&card).await;
    assert!(update.all_text().contains("❌ Failed: interrupted: jitgate was shut down"), "{}", update.all_text());
    let reply = h.thread_reply(&card).await;
    assert!(reply.all_text().contains("no rows were delivered"), "{}", reply.all_text());
    assert!(h.dm_for(ALICE).await.all_text().contains("interrupted"));
    let entries = h.audit().entries_for(&card.id).await.unwrap();
    let kinds: Vec<_> = entries.iter().map(|e| e.event.kind()).collect();
    assert_eq!(kinds, ["requested", "approved", "failed"], "the interrupted run is audited, never executed");
    let failed = serde_json::to_string(&entries[2].event).unwrap();
    assert!(failed.contains("interrupted: jitgate was shut down"), "{failed}");

    // Opening the gate now changes nothing: the cancelled call is gone and nothing runs it again.
    gate.open();
    let record = h.audit().verify().await.unwrap();
    assert!(record.is_intact(), "{record:?}");
}
