//! The test kit's own promise: a story fails when the bot said something the test did not read, without the test
//! asking for the check (the Slack emulator makes it when the harness drops it).

use jitgate::messages::APPROVE_ACTION;
use jitgate_testkit::harness::*;

const ORDERS_OF_C2: &str =
    "orders-by-customer customer_id=C000002 from=2026-01-02 until=2026-01-03 --reason \"INC-812 refund check\"";

/// The test reads the results in the thread but never the card's updates, which the bot made before them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[should_panic(expected = "the bot produced output the test did not read")]
async fn a_story_that_leaves_the_cards_updates_unread_fails() {
    let h = Harness::start().await;
    let card = h.request(ALICE, ORDERS_OF_C2).await;
    h.click(BOB, &card, APPROVE_ACTION).await;
    h.thread_reply(&card).await;
    h.shutdown().await;
}

/// The same story, saying which outputs it leaves unread and why, passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_story_that_discards_what_it_leaves_unread_passes() {
    let h = Harness::start().await;
    let card = h.request(ALICE, ORDERS_OF_C2).await;
    h.click(BOB, &card, APPROVE_ACTION).await;
    h.thread_reply(&card).await;
    h.dm_for(ALICE).await;
    // The card's "approved" and "ran" updates are not what this test is about.
    let discarded = h.slack.discard_unread();
    assert!(discarded.iter().all(|line| line.contains(&format!("update of {ONCALL} ts={}", card.ts))), "{discarded:?}");
    assert!(!discarded.is_empty());
    h.shutdown().await;
}
