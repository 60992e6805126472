//! Robustness of the whole bot when parts misbehave: a flood of refusals cannot starve real work and every refusal
//! stays accounted for in the audit trail; a request left Approved by a stopped replica is failed, never run; a
//! Redis failure after an audited execution still delivers the rows. Real Redis, the local DynamoDB/STS server,
//! the Slack and PagerDuty emulators, a manual clock.

use jitgate_testkit as support;

use std::collections::BTreeMap;

use jitgate::audit::AuditEvent;
use jitgate::clock::Clock as _;
use jitgate::engine::ApproveResult;
use jitgate::ids::SlackUserId;
use jitgate::messages::APPROVE_ACTION;
use jitgate::request::{RequestState, Roster, RosterSource};
use support::gate::Gate;
use support::harness::*;
use support::redis_proxy::RedisProxy;

/// The canonical request: customer C000002's orders placed on 2 January 2026 (18 of the seeded rows).
const ORDERS_OF_C2: &str =
    "orders-by-customer customer_id=C000002 from=2026-01-02 until=2026-01-03 --reason \"INC-812 refund check\"";

/// Junk actions per user in the flood; four users, 300 in all.
const JUNK_PER_USER: u64 = 75;
/// Refusals per user appended one by one in a window (`engine::REFUSALS_APPENDED`).
const APPENDED_PER_USER: u64 = jitgate::engine::REFUSALS_APPENDED.max as u64;

fn user(id: &str) -> SlackUserId {
    SlackUserId::parse(id).expect("a Slack user id")
}

/// One junk action of the flood.
enum Junk {
    /// A click on the real request's Approve button by someone who may not approve it.
    Click(&'static str),
    /// `/jit <text>` that is refused.
    Command(&'static str, String),
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_refusals_does_not_starve_a_real_request_and_every_refusal_is_counted() {
    let h = Harness::start().await;
    let card = h.request(ALICE, ORDERS_OF_C2).await;

    // 300 refused actions from four users, all at once, while Bob approves the real request.
    let junk = (0..JUNK_PER_USER).flat_map(|n| {
        [
            Junk::Click(MALLORY),                                           // not on call
            Junk::Click(ALICE),                                             // her own request
            Junk::Command(CAROL, format!("frobnicate {n}")),                // does not parse
            Junk::Command(BOB, format!("query no-such-runbook-{n} x={n}")), // names no runbook
        ]
    });
    let flood = futures::future::join_all(junk.map(|junk| {
        let h = &h;
        let card = &card;
        async move {
            match junk {
                Junk::Click(who) => {
                    h.click(who, card, APPROVE_ACTION).await;
                }
                Junk::Command(who, text) => {
                    h.slash(who, &text).await.ack().await.expect("acked in time");
                }
            }
        }
    }));
    let approve = h.click(BOB, &card, APPROVE_ACTION);
    tokio::join!(flood, approve);

    // The real request went through: approved, run, rows in the thread, the requester told.
    let done = h.card_update_containing(&card, "ran:").await;
    assert!(done.all_text().contains("Approved by <@U0BOB>"), "{}", done.all_text());
    let rows = h.thread_reply(&card).await;
    assert!(rows.all_text().contains("*18 rows* from *orders-by-customer*"), "{}", rows.all_text());
    assert!(h.dm_for(ALICE).await.all_text().contains(card.id.as_str()));
    let kinds = h.audit_kinds(&card.id).await;
    // The refused clicks appended one by one are in the request's trail too.
    let real: Vec<_> = kinds.iter().filter(|kind| **kind != "refused").collect();
    assert_eq!(real, [&"requested", &"approved", &"executed"]);

    // Every junk action was answered (the malformed commands in their ack) and every refusal counted.
    for who in [MALLORY, ALICE, BOB] {
        for _ in 0..JUNK_PER_USER {
            h.ephemeral_for(who).await;
        }
    }
    for who in [MALLORY, ALICE, CAROL, BOB] {
        let recorded = h.refusals_recorded(who, JUNK_PER_USER).await;
        assert_eq!(recorded, (APPENDED_PER_USER, JUNK_PER_USER - APPENDED_PER_USER), "{who}");
    }
    // The chain holds the request's three entries and each user's first refusals, not 300 more.
    let entries = 3 + 4 * APPENDED_PER_USER;
    let report = h.audit_entries_at_least(entries).await;
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.verified, entries);

    // Once the window is over, the sweeper appends one summary per user: every refusal is in the trail by count.
    h.clock.advance(time::Duration::seconds(61));
    h.sweep().await;
    h.sweep().await; // once
    let report = h.audit().verify().await.expect("verify");
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.verified, entries + 4);
    let mut accounted: BTreeMap<String, u64> = BTreeMap::new();
    h.audit()
        .for_each_entry(|entry| match entry.event {
            AuditEvent::Refused { by, .. } => *accounted.entry(by.to_string()).or_default() += 1,
            AuditEvent::RefusalsCounted { by, count, first, last } => {
                assert!(first <= last);
                *accounted.entry(by.to_string()).or_default() += count;
            }
            _ => {}
        })
        .await
        .expect("read the chain");
    let expected: BTreeMap<String, u64> =
        [MALLORY, ALICE, CAROL, BOB].iter().map(|who| ((*who).to_owned(), JUNK_PER_USER)).collect();
    assert_eq!(accounted, expected);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_next_refusal_after_the_window_carries_the_count_of_the_last_one() {
    let h = Harness::start().await;
    for n in 0..APPENDED_PER_USER + 2 {
        h.slash(CAROL, &format!("frobnicate {n}")).await.ack().await.expect("acked in time");
    }
    assert_eq!(h.refusals_recorded(CAROL, APPENDED_PER_USER + 2).await, (APPENDED_PER_USER, 2));
    let start = h.clock.now();
    // The next refusal after the window: the two counted ones are appended as one entry, then it.
    h.clock.advance(time::Duration::seconds(61));
    h.slash(CAROL, "frobnicate again").await.ack().await.expect("acked in time");
    let report = h.audit_entries_at_least(APPENDED_PER_USER + 2).await;
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.verified, APPENDED_PER_USER + 2);
    let last_two = [h.audit().get(APPENDED_PER_USER + 1).await, h.audit().get(APPENDED_PER_USER + 2).await];
    let [Ok(Some(summary)), Ok(Some(refused))] = last_two else { panic!("{last_two:?}") };
    let AuditEvent::RefusalsCounted { by, count, first, last } = summary.event else { panic!("{:?}", summary.event) };
    assert_eq!((by.as_str(), count, first, last), (CAROL, 2, start, start));
    assert!(matches!(refused.event, AuditEvent::Refused { .. }), "{:?}", refused.event);
    // Nothing left for the sweeper: the count is in the trail once.
    h.sweep().await;
    assert_eq!(h.audit().verify().await.expect("verify").verified, APPENDED_PER_USER + 2);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_left_approved_by_a_stopped_replica_is_failed_after_the_credentials_lifetime_and_never_run() {
    let h = Harness::start().await;
    let card = h.request(ALICE, ORDERS_OF_C2).await;
    // Another replica writes the approval (and audits it), then stops before writing Running: the record stays
    // Approved, and nobody holds the approved query any more.
    let engine = h.apps[0].bot().engine().clone();
    let bob = user(BOB);
    let roster =
        Roster::new(h.clock.now()).with(bob.clone(), RosterSource::Schedule(SCHEDULE.into()), "PagerDuty schedule");
    let shown = card.button_value(jitgate::messages::APPROVE_ACTION);
    let shown = shown.split_once(' ').map(|(_, fingerprint)| fingerprint).expect("the card's fingerprint");
    let ApproveResult::Approved { query, .. } = engine.approve(&card.id, shown, &bob, &roster).await.expect("approve")
    else {
        panic!("expected the approval to land")
    };
    drop(query);

    // Within the credentials' lifetime the start may still be on its way: the sweeper leaves it alone.
    h.clock.advance(time::Duration::minutes(15));
    h.sweep().await;
    assert_eq!(engine.status(&card.id).await.unwrap().unwrap().state(), RequestState::Approved);

    h.clock.advance(time::Duration::minutes(2));
    h.sweep().await;
    let update = h.next_card_update(&card).await;
    assert!(update.all_text().contains("❌ Failed: approved, but never started"), "{}", update.all_text());
    let dm = h.dm_for(ALICE).await.all_text();
    assert!(dm.contains("never started") && dm.contains("nothing was run"), "{dm}");
    h.sweep().await; // once
    assert_eq!(engine.status(&card.id).await.unwrap().unwrap().state(), RequestState::Failed);

    let entries = h.audit().entries_for(&card.id).await.expect("audit");
    let kinds: Vec<_> = entries.iter().map(|e| e.event.kind()).collect();
    assert_eq!(kinds, ["requested", "approved", "failed"], "never executed");
    let AuditEvent::Failed { code, .. } = &entries[2].event else { unreachable!() };
    assert_eq!(code.as_deref(), Some("never_started"));
    // Nothing ran: no credentials were ever asked for, and no alert (there were no credentials to worry about).
    let metrics = h.metrics().await;
    assert!(!metrics.contains("service=\"sts\""), "{metrics}");
    let raised = metrics.lines().filter(|l| l.starts_with("jitgate_security_alerts_total{") && !l.ends_with(" 0"));
    assert_eq!(raised.count(), 0, "{metrics}");
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_are_delivered_when_redis_fails_right_after_the_audited_execution() {
    // The query is held at the gate until Redis is cut, so the first Redis call after it — the Running →
    // Succeeded write — is the one that fails.
    let gate = Gate::closed(&support::aws_endpoint()).await;
    let redis = RedisProxy::start(&support::redis_url()).await;
    let options =
        Options { aws_endpoint: Some(gate.endpoint.clone()), redis_url: Some(redis.url()), ..Options::default() };
    let h = Harness::start_with(options).await;
    let card = h.request(ALICE, ORDERS_OF_C2).await;
    h.click(BOB, &card, APPROVE_ACTION).await;
    gate.wait_for_held_call().await;
    redis.cut();
    gate.open();

    // The execution is audited, so the rows are delivered and everyone is told it ran — not "nothing was run".
    let done = h.card_update_containing(&card, "ran:").await;
    assert!(done.all_text().contains("ran: 18 rows"), "{}", done.all_text());
    let rows = h.thread_reply(&card).await;
    assert!(rows.all_text().contains("*18 rows* from *orders-by-customer*"), "{}", rows.all_text());
    assert!(rows.all_text().contains(&format!("https://jitgate.test/audit/{}", card.id)), "{}", rows.all_text());
    let dm = h.dm_for(ALICE).await.all_text();
    assert!(dm.contains("ran: 18 rows"), "{dm}");
    assert_eq!(h.audit_kinds(&card.id).await, ["requested", "approved", "executed"]);
    // Nothing else was said: no "something went wrong … Nothing was run" for Bob.

    // Redis back: the record still says Running. Past the credentials' lifetime the sweeper finds the execution
    // in the trail and records it as succeeded, instead of failing it as interrupted.
    redis.restore();
    let engine = h.apps[0].bot().engine().clone();
    h.clock.advance(time::Duration::minutes(17));
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    let status = loop {
        // The store reconnects on its own after the outage; until it has, a sweep fails (within its timeouts).
        match h.apps[0].bot().sweep_once().await {
            Ok(()) => break engine.status(&card.id).await.expect("status").expect("the record"),
            Err(err) => assert!(tokio::time::Instant::now() < deadline, "Redis is back, yet: {err:#}"),
        }
    };
    assert_eq!(status.state(), RequestState::Succeeded);
    assert_eq!(h.audit_kinds(&card.id).await, ["requested", "approved", "executed"], "not failed afterwards");
    h.shutdown().await;
}
