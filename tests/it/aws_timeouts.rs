//! AWS calls are bounded by `[aws.timeouts]`: an STS, a DynamoDB or an audit table that accepts the connection
//! and never answers fails the request within its timeout — Failed with a typed reason, audited where the audit
//! table can still be written, the users told what happened and what to do — and nothing runs afterwards, neither
//! when the path to AWS answers again nor on a second click.
//!
//! The proxy ([`SilentProxy`]) swallows one kind of call; short timeouts for that client only keep the story fast.
//! Without the timeouts the swallowed call waits forever and the bounded waits of the steps fail the test.

use jitgate_testkit as support;

use jitgate::audit::AuditEvent;
use jitgate::ids::RequestId;
use jitgate::messages::APPROVE_ACTION;
use jitgate::request::RequestState;
use support::harness::*;
use support::silent::{Calls, SilentProxy};

const ORDERS_OF_C2: &str =
    "orders-by-customer customer_id=C000002 from=2026-01-02 until=2026-01-03 --reason \"INC-812 refund check\"";

/// The harness with `extra_config` (short timeouts for one client) and every AWS call through the proxy.
async fn harness_behind(proxy: &SilentProxy, extra_config: &'static str) -> Harness {
    let options = Options { aws_endpoint: Some(proxy.endpoint.clone()), extra_config, ..Options::default() };
    Harness::start_with(options).await
}

/// The code of the request's `failed` entry.
async fn failed_code(h: &Harness, id: &RequestId) -> Option<String> {
    let entries = h.audit().entries_for(id).await.expect("audit");
    entries.iter().find_map(|e| match &e.event {
        AuditEvent::Failed { code, .. } => code.clone(),
        _ => None,
    })
}

/// The request's audit entries but the second click's refusal (appended beside the story, so maybe not yet).
async fn kinds_besides_refusals(h: &Harness, id: &RequestId) -> Vec<&'static str> {
    h.audit_kinds(id).await.into_iter().filter(|kind| *kind != "refused").collect()
}

/// The Approve button clicked again once the proxy lets everything through: refused, nothing started.
async fn a_second_click_runs_nothing(h: &Harness, proxy: &SilentProxy, card: &Card) {
    proxy.let_through();
    h.click(BOB, card, APPROVE_ACTION).await;
    let answer = h.ephemeral_for(BOB).await;
    assert!(answer.contains("this request is already failed; nothing was changed"), "{answer}");
    h.sweep().await;
    let engine = h.apps[0].bot().engine().clone();
    let record = engine.status(&card.id).await.expect("status").expect("the record");
    assert_eq!(record.state(), RequestState::Failed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_sts_fails_the_request_in_time_and_nothing_runs_later() {
    let proxy = SilentProxy::start(&support::aws_endpoint()).await;
    let h = harness_behind(&proxy, "[aws.timeouts.sts]\nattempt = \"200ms\"\noperation = \"1s\"\n").await;
    let card = h.request(ALICE, ORDERS_OF_C2).await;
    proxy.silence(Calls::AssumeRole);
    h.click(BOB, &card, APPROVE_ACTION).await;

    let failed = h.card_update_containing(&card, "❌ Failed").await;
    assert!(failed.all_text().contains("AWS STS did not answer in time"), "{}", failed.all_text());
    let reply = h.thread_reply(&card).await.all_text();
    assert!(reply.contains("Submit the request again"), "{reply}");
    assert!(h.dm_for(ALICE).await.all_text().contains("did not answer in time"));
    assert!(proxy.swallowed(Calls::AssumeRole) >= 1, "the call did reach the silent proxy");
    assert_eq!(h.audit_kinds(&card.id).await, ["requested", "approved", "failed"]);
    assert_eq!(failed_code(&h, &card.id).await.as_deref(), Some("aws_timed_out"));

    a_second_click_runs_nothing(&h, &proxy, &card).await;
    assert_eq!(proxy.forwarded(Calls::AssumeRole), 0, "no AssumeRole reached STS, not even later");
    assert_eq!(proxy.forwarded(Calls::Queries), 0, "no query ran");
    assert_eq!(kinds_besides_refusals(&h, &card.id).await, ["requested", "approved", "failed"], "never executed");
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_dynamodb_fails_the_query_in_time_and_nothing_is_delivered() {
    let proxy = SilentProxy::start(&support::aws_endpoint()).await;
    let h = harness_behind(&proxy, "[aws.timeouts.dynamodb]\nattempt = \"200ms\"\noperation = \"1s\"\n").await;
    let card = h.request(ALICE, ORDERS_OF_C2).await;
    proxy.silence(Calls::Queries);
    h.click(BOB, &card, APPROVE_ACTION).await;

    let failed = h.card_update_containing(&card, "❌ Failed").await;
    assert!(failed.all_text().contains("AWS DynamoDB did not answer in time"), "{}", failed.all_text());
    assert!(h.thread_reply(&card).await.all_text().contains("Nothing was delivered"));
    h.dm_for(ALICE).await;
    assert_eq!(proxy.forwarded(Calls::AssumeRole), 1, "the credentials were issued once");
    assert!(proxy.swallowed(Calls::Queries) >= 1);
    assert_eq!(h.audit_kinds(&card.id).await, ["requested", "approved", "failed"]);
    assert_eq!(failed_code(&h, &card.id).await.as_deref(), Some("aws_timed_out"));

    a_second_click_runs_nothing(&h, &proxy, &card).await;
    assert_eq!(proxy.forwarded(Calls::Queries), 0, "no query reached DynamoDB, not even once the path was back");
    assert_eq!(proxy.forwarded(Calls::AssumeRole), 1, "no second AssumeRole");
    assert_eq!(kinds_besides_refusals(&h, &card.id).await, ["requested", "approved", "failed"], "never executed");
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_audit_table_fails_the_approval_in_time_and_nothing_runs() {
    let proxy = SilentProxy::start(&support::aws_endpoint()).await;
    // Less short than the others: the same client makes the story's other audit calls, which must get through.
    let h = harness_behind(&proxy, "[aws.timeouts.audit]\nattempt = \"500ms\"\noperation = \"2s\"\n").await;
    let card = h.request(ALICE, ORDERS_OF_C2).await;
    proxy.silence(Calls::AuditAppends);
    h.click(BOB, &card, APPROVE_ACTION).await;

    // The approval cannot be recorded, so the request fails closed before any credentials are asked for. Its
    // failure cannot be appended either (the table is still silent): it is in Redis, the log and the metrics.
    let failed = h.card_update_containing(&card, "❌ Failed").await;
    assert!(failed.all_text().contains("the audit trail could not record this step"), "{}", failed.all_text());
    h.dm_for(ALICE).await;
    assert!(proxy.swallowed(Calls::AuditAppends) >= 1);
    h.wait_for_metric("jitgate_audit_append_failures_total 2").await;

    a_second_click_runs_nothing(&h, &proxy, &card).await;
    assert_eq!(proxy.forwarded(Calls::AssumeRole), 0, "nothing was run");
    assert_eq!(proxy.forwarded(Calls::Queries), 0, "nothing was run");
    assert_eq!(kinds_besides_refusals(&h, &card.id).await, ["requested"], "no swallowed append landed later");
    h.shutdown().await;
}
