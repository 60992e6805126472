//! What was taken off the users' critical path stays correct: the rows do not wait for the card's "starting"
//! update yet the card never ends on it, audit entries keep their order, and the email → Slack id links kept for
//! hours never let someone approve who is no longer on call (PagerDuty is asked at every click).

use jitgate_testkit as support;

use jitgate::messages::APPROVE_ACTION;
use jitgate_emulators::pagerduty::OnCall;
use support::harness::*;

const ORDERS_OF_C2: &str =
    "orders-by-customer customer_id=C000002 from=2026-01-02 until=2026-01-03 --reason \"INC-812 refund check\"";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_are_posted_while_the_starting_update_is_in_flight_and_the_card_ends_on_ran() {
    let h = Harness::start().await;
    let card = h.request(ALICE, ORDERS_OF_C2).await;

    // "Approved by …, starting" is the next card update: hold it in Slack.
    let starting = h.slack.hold_next("chat.update");
    h.click(BOB, &card, APPROVE_ACTION).await;
    let results = h.thread_reply(&card).await;
    assert!(results.all_text().contains("*18 rows*"), "{}", results.all_text());
    // The final update waits for the held one, so nothing has landed on the card yet.
    assert!(h.slack.updates_of(ONCALL, &card.ts).is_empty(), "{:?}", h.slack.updates_of(ONCALL, &card.ts));

    starting.release();
    let first = h.next_card_update(&card).await;
    assert!(first.all_text().contains("Approved by <@U0BOB>"), "{}", first.all_text());
    h.card_update_containing(&card, "ran:").await;
    let shown = h.slack.message(ONCALL, &card.ts).expect("the card");
    assert!(shown.all_text().contains("ran:"), "the card ends on the run's outcome: {}", shown.all_text());
    h.dm_for(ALICE).await;
    // The audit trail is in the order things happened: approval before execution, which the rows waited for.
    assert_eq!(h.audit_kinds(&card.id).await, ["requested", "approved", "executed"]);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cached_slack_id_does_not_let_someone_no_longer_on_call_approve() {
    let h = Harness::start().await;
    let card = h.request(ALICE, ORDERS_OF_C2).await;
    assert!(card.message.all_text().contains("<@U0BOB>"));
    let lookups = h.slack.calls_to("users.lookupByEmail").len();
    assert!(lookups >= 2, "the on-call people were looked up for the card");
    let asked = h.pagerduty.requests_to("/oncalls").len();

    // Bob hands over to Carol a moment after the card was posted: the roster cache is still fresh, Bob's Slack
    // id is still known, and neither may count.
    h.pagerduty.clear_oncalls();
    h.pagerduty.add_oncall(OnCall::new("PCAROL", POLICY, 1).via_schedule(SCHEDULE));
    h.click(BOB, &card, APPROVE_ACTION).await;
    assert!(h.ephemeral_for(BOB).await.contains("not on call"));
    h.click(CAROL, &card, APPROVE_ACTION).await;
    h.card_update_containing(&card, "ran:").await;
    h.thread_reply(&card).await;
    h.dm_for(ALICE).await;

    assert_eq!(h.pagerduty.requests_to("/oncalls").len(), asked + 2, "PagerDuty was asked at each click");
    assert_eq!(h.slack.calls_to("users.lookupByEmail").len(), lookups, "the Slack ids came from the cache");
    assert_eq!(h.audit_kinds(&card.id).await, ["requested", "refused", "approved", "executed"]);
    h.shutdown().await;
}

/// The bot's count of opened sockets once it reaches `count`: the emulator sees a connection open a moment before
/// the bot's side of the handshake returns, so the count is waited for (woken at each socket counted, bounded).
async fn sockets_opened(h: &Harness, count: usize) -> (usize, usize) {
    let wait = h.apps[0].sockets_opened_at_least(count);
    tokio::time::timeout(std::time::Duration::from_secs(10), wait).await.expect("the sockets were opened")
}

/// Acks are small writes: with Nagle's algorithm on, one waits for the previous one's TCP ACK, which the other side
/// delays. Every socket-mode connection, the first ones and the re-opened ones, is read back with TCP_NODELAY.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_mode_connections_are_opened_with_tcp_nodelay() {
    let h = Harness::start().await;
    assert_eq!(sockets_opened(&h, 2).await, (2, 2));
    let old = h.slack.disconnect("refresh_requested");
    h.slack.wait_for_closed(old).await;
    h.slack.wait_for_connections(2).await;
    assert_eq!(sockets_opened(&h, 3).await, (3, 3));
    h.shutdown().await;
}

/// slack-morphism waits 30 s after a failed `apps.connections.open`; the connections here retry after a jittered
/// backoff starting at up to a second, so a replica is back well within the emulator's wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_connections_open_is_retried_after_a_short_jittered_backoff() {
    let h = Harness::start().await;
    h.slack.fail_next("apps.connections.open", "internal_error");
    // `warning`: Slack will close this connection soon; a new one is opened at once, before it does.
    let warned = h.slack.disconnect("warning");
    h.slack.wait_for_closed(warned).await;
    h.slack.wait_for_connections(2).await;
    let outcomes: Vec<_> = h.slack.calls_to("apps.connections.open").iter().map(|c| c.outcome.clone()).collect();
    assert_eq!(outcomes.len(), 4, "two at start, one refused, its retry: {outcomes:?}");
    assert_eq!(sockets_opened(&h, 3).await, (3, 3));
    h.shutdown().await;
}
