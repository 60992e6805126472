//! The Slack bot end to end: real socket-mode connections to the Slack emulator, PagerDuty emulator for the
//! on-call roster, real Redis, and the local DynamoDB/STS server. Each test is one user story.

use jitgate_testkit as support;

use jitgate::messages::{APPROVE_ACTION, DENY_ACTION};
use sha2::Digest as _;
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

    // The link in the thread opens the audit page; the same path without its signature does not.
    let link = results
        .all_text()
        .split(['<', '|'])
        .find(|part| part.starts_with("https://jitgate.test/audit/"))
        .unwrap()
        .to_owned();
    let (status, page) = h.fetch_link(&link).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains(card.id.as_str()) && page.contains("INC-812 refund check"), "{page}");
    let unsigned = link.split('?').next().unwrap();
    let (status, page) = h.fetch_link(unsigned).await;
    assert_eq!(status, 403);
    assert!(!page.contains("INC-812"), "a refused link shows nothing");
    // The outcome is counted for the operators.
    let metrics = h.metrics().await;
    // Every runbook's outcomes are exported from 0 (so a first failure is an increase an alert can see).
    let counted: Vec<&str> =
        metrics.lines().filter(|l| l.starts_with("jitgate_requests_total{") && !l.ends_with(" 0")).collect();
    assert_eq!(counted, [r#"jitgate_requests_total{runbook="orders-by-customer",outcome="succeeded"} 1"#], "{metrics}");
    assert!(metrics.contains(r#"jitgate_requests_total{runbook="orders-by-customer",outcome="failed"} 0"#));
    // Every service the story touched is counted by operation, with its latency. The DM is the story's last call.
    h.wait_for_metric(r#"jitgate_external_calls_total{service="slack",op="chat.postMessage",result="ok"} 3"#).await;
    let metrics = h.metrics().await;
    for (service, op, calls) in [
        ("sts", "AssumeRole", 1),
        ("dynamodb", "Query", 1),
        ("audit", "TransactWriteItems", 3),
        ("slack", "chat.postMessage", 3),
        ("slack", "chat.update", 2),
        ("pagerduty", "oncalls", 2), // the card, then the click: a decision always asks PagerDuty
        ("redis", "script", 0),
    ] {
        let prefix = format!("jitgate_external_calls_total{{service=\"{service}\",op=\"{op}\",result=\"ok\"}} ");
        let line =
            metrics.lines().find(|l| l.starts_with(&prefix)).unwrap_or_else(|| panic!("no {prefix} in:\n{metrics}"));
        let count: u64 = line[prefix.len()..].parse().unwrap();
        assert!(if calls == 0 { count > 0 } else { count == calls }, "{line}: expected {calls}");
    }
    assert!(metrics.contains("jitgate_external_call_duration_seconds_count{service=\"sts\",op=\"AssumeRole\"} 1"));
    // The only failed call: at start-up the audit table did not exist yet (DescribeTable, then CreateTable).
    let failed: Vec<_> = metrics.lines().filter(|l| l.contains("result=\"error\"")).collect();
    assert_eq!(failed, [r#"jitgate_external_calls_total{service="audit",op="DescribeTable",result="error"} 1"#]);
    if std::env::var("JITGATE_PRINT_TRANSCRIPT").is_ok() {
        for call in h.slack.calls() {
            println!("{} {}", call.method, call.params);
        }
    }
    h.shutdown().await;
}

/// Input values as Slack puts them in `view.state.values`: one plain-text input per block.
fn form(values: &[(&str, &str)]) -> serde_json::Value {
    let mut out = serde_json::Map::new();
    for (block, value) in values {
        out.insert((*block).into(), serde_json::json!({ "value": { "type": "plain_text_input", "value": value } }));
    }
    serde_json::Value::Object(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deny_asks_for_a_reason_and_tells_the_requester() {
    let h = Harness::start().await;
    let card = h.request(ALICE, ORDERS_OF_C2).await;
    h.click(BOB, &card, DENY_ACTION).await;
    let view = h.slack.next_view_opened_for(BOB).await;
    let submitted = h.slack.send_view_submission(BOB, &view.view_id, form(&[("reason", "use the read replica")])).await;
    assert!(ack_is_bare(&submitted.ack().await.expect("acked")));
    let denied = h.next_card_update(&card).await;
    assert!(denied.all_text().contains("Denied by <@U0BOB>: use the read replica"), "{}", denied.all_text());
    assert!(denied.buttons().is_empty(), "no buttons on a decided card");
    assert!(h.dm_for(ALICE).await.all_text().contains("Denied by <@U0BOB>"));
    assert_eq!(h.audit_kinds(&card.id).await, ["requested", "denied"]);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unanswered_request_is_reminded_half_way_then_expires() {
    let h = Harness::start().await;
    let card = h.request(ALICE, ORDERS_OF_C2).await;
    h.clock.advance(time::Duration::minutes(15));
    h.sweep().await;
    let reminder = h.thread_reply(&card).await;
    assert!(reminder.all_text().contains("still waiting for approval"), "{}", reminder.all_text());
    assert!(reminder.all_text().contains("<@U0BOB>"), "{}", reminder.all_text());
    h.sweep().await; // reminds once
    h.clock.advance(time::Duration::minutes(16));
    h.sweep().await;
    let expired = h.next_card_update(&card).await;
    assert!(expired.all_text().contains("Expired"), "{}", expired.all_text());
    assert!(h.dm_for(ALICE).await.all_text().contains("Expired"));
    h.sweep().await; // expires once
    // A click on the expired card gets an answer and changes nothing.
    h.click(BOB, &card, APPROVE_ACTION).await;
    assert!(h.ephemeral_for(BOB).await.contains("already expired"));
    assert_eq!(h.audit_kinds(&card.id).await, ["requested", "expired", "refused"]);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_requester_cancels_and_nobody_else_can() {
    let h = Harness::start().await;
    let card = h.request(ALICE, ORDERS_OF_C2).await;
    let not_yours = h.slash(BOB, &format!("cancel {}", card.id)).await;
    assert!(ack_is_bare(&not_yours.ack().await.unwrap()));
    assert!(h.ephemeral_for(BOB).await.contains("only the person who made a request can cancel it"));
    let cancel = h.slash(ALICE, &format!("cancel {}", card.id.as_str().to_lowercase())).await;
    assert!(ack_is_bare(&cancel.ack().await.unwrap()));
    assert!(h.ephemeral_for(ALICE).await.contains("Cancelled"));
    let update = h.next_card_update(&card).await;
    assert!(update.all_text().contains("Cancelled by <@U0ALICE>"), "{}", update.all_text());
    assert_eq!(h.audit_kinds(&card.id).await, ["requested", "refused", "cancelled"]);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_requester_cannot_approve_even_while_on_call() {
    let h = Harness::start().await;
    let card = h.request(ALICE, ORDERS_OF_C2).await;
    assert!(
        !card.message.all_text().contains("Who may approve:* <@U0ALICE>"),
        "the requester is not offered as approver"
    );
    h.click(ALICE, &card, APPROVE_ACTION).await;
    assert!(h.ephemeral_for(ALICE).await.contains("you cannot approve or deny your own request"));
    h.click(ALICE, &card, DENY_ACTION).await;
    assert!(h.ephemeral_for(ALICE).await.contains("you cannot approve or deny your own request"));
    assert!(h.slack.updates_of(ONCALL, &card.ts).is_empty(), "the card stays as it was");
    assert_eq!(h.audit_kinds(&card.id).await, ["requested", "refused", "refused"]);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn someone_not_on_call_is_refused() {
    let h = Harness::start().await;
    let card = h.request(ALICE, ORDERS_OF_C2).await;
    h.click(MALLORY, &card, APPROVE_ACTION).await;
    assert!(h.ephemeral_for(MALLORY).await.contains("you are not on call for this runbook right now"));
    assert!(h.slack.updates_of(ONCALL, &card.ts).is_empty());
    assert_eq!(h.audit_kinds(&card.id).await, ["requested", "refused"]);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_call_changing_between_request_and_click_is_honoured_at_click_time() {
    let h = Harness::start().await;
    let card = h.request(ALICE, ORDERS_OF_C2).await;
    assert!(card.message.all_text().contains("<@U0BOB>"));
    // The shift changes: Bob hands over to Carol. Once the cached roster is older than its TTL, Bob is out.
    h.pagerduty.clear_oncalls();
    h.pagerduty.add_oncall(jitgate_emulators::pagerduty::OnCall::new("PCAROL", POLICY, 1).via_schedule(SCHEDULE));
    h.clock.advance(time::Duration::seconds(61));
    h.pagerduty.set_now(jitgate::clock::Clock::now(h.clock.as_ref()));
    h.click(BOB, &card, APPROVE_ACTION).await;
    assert!(h.ephemeral_for(BOB).await.contains("not on call"));
    h.click(CAROL, &card, APPROVE_ACTION).await;
    h.card_update_containing(&card, "ran:").await;
    h.thread_reply(&card).await;
    h.dm_for(ALICE).await;
    assert_eq!(h.audit_kinds(&card.id).await, ["requested", "refused", "approved", "executed"]);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_double_click_runs_the_query_once() {
    let h = Harness::start().await;
    let card = h.request(ALICE, ORDERS_OF_C2).await;
    let approve = card.button_value(APPROVE_ACTION);
    let (first, second) = tokio::join!(
        h.slack.send_block_action(BOB, ONCALL, &card.ts, APPROVE_ACTION, &approve),
        h.slack.send_block_action(BOB, ONCALL, &card.ts, APPROVE_ACTION, &approve),
    );
    first.ack().await.unwrap();
    second.ack().await.unwrap();
    h.card_update_containing(&card, "ran:").await;
    h.thread_reply(&card).await;
    h.dm_for(ALICE).await;
    // The second click is told what happened instead of running anything.
    let answer = h.ephemeral_for(BOB).await;
    assert!(answer.contains("already") || answer.contains("you already approved"), "{answer}");
    let kinds = h.audit_kinds(&card.id).await;
    assert_eq!(kinds.iter().filter(|k| **k == "executed").count(), 1, "{kinds:?}");
    // Any card updates in between (approved, running) are fine; nothing else may have been posted.
    while !h.slack.updates_of(ONCALL, &card.ts).is_empty() && !h.slack.unread().is_empty() {
        h.next_card_update(&card).await;
    }
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_and_a_duplicated_envelope_execute_once() {
    let h = Harness::start_with(Options { replicas: 2, ..Options::default() }).await;
    let card = h.request(ALICE, ORDERS_OF_C2).await;
    let click =
        h.slack.send_block_action(BOB, ONCALL, &card.ts, APPROVE_ACTION, &card.button_value(APPROVE_ACTION)).await;
    // Slack delivers the same envelope again, to another connection (possibly the other replica).
    h.slack.send_duplicate(&click);
    click.wait_for_acks(2).await;
    h.card_update_containing(&card, "ran:").await;
    h.thread_reply(&card).await;
    h.dm_for(ALICE).await;
    let kinds = h.audit_kinds(&card.id).await;
    assert_eq!(kinds, ["requested", "approved", "executed"], "the duplicate was not handled again");
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pagerduty_down_fails_closed_with_a_clear_message() {
    let h = Harness::start().await;
    h.pagerduty.go_down().await;
    let card = h.request(ALICE, ORDERS_OF_C2).await;
    assert!(card.message.all_text().contains("nobody eligible is on call right now"), "{}", card.message.all_text());
    h.click(BOB, &card, APPROVE_ACTION).await;
    let answer = h.ephemeral_for(BOB).await;
    assert!(answer.contains("PagerDuty"), "{answer}");
    assert!(h.slack.updates_of(ONCALL, &card.ts).is_empty(), "nothing was approved");
    assert_eq!(h.audit_kinds(&card.id).await, ["requested", "refused"]);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_result_is_attached_as_csv_and_json_in_the_thread() {
    let h = Harness::start().await;
    let card = h
        .request(
            ALICE,
            "orders-by-customer customer_id=C000003 from=2026-01-01 until=2026-02-01 --reason \"audit of C3\"",
        )
        .await;
    h.click(BOB, &card, APPROVE_ACTION).await;
    h.card_update_containing(&card, "ran: 30 rows").await;
    let reply = h.thread_reply(&card).await;
    assert!(reply.all_text().contains("Showing 20 of 30 rows; the full result is attached as CSV and JSON."));
    let csv = h.slack.next_upload_in(ONCALL).await;
    let json = h.slack.next_upload_in(ONCALL).await;
    assert_eq!(
        (csv.filename.as_str(), json.filename.as_str()),
        (format!("{}.csv", card.id).as_str(), format!("{}.json", card.id).as_str())
    );
    assert_eq!(csv.thread_ts.as_deref(), Some(card.ts.as_str()));
    let csv_text = String::from_utf8(csv.content.clone().unwrap()).unwrap();
    assert_eq!(csv_text.lines().count(), 31, "header + 30 rows");
    assert!(!csv_text.contains("@example.com"), "masked in files too");
    // Anyone holding the JSON file can check it against the audit trail: its rows, compact, hash to the executed
    // entry's result_sha256.
    let rows: serde_json::Value = serde_json::from_slice(json.content.as_deref().unwrap()).expect("the JSON file");
    assert_eq!(rows.as_array().map(Vec::len), Some(30));
    let entries = h.audit().entries_for(&card.id).await.expect("audit");
    let recorded = entries
        .iter()
        .find_map(|e| match &e.event {
            jitgate::audit::AuditEvent::Executed { summary, .. } => Some(summary.result_sha256.clone()),
            _ => None,
        })
        .expect("an executed entry");
    let rehashed = hex::encode(sha2::Sha256::digest(serde_json::to_vec(&rows).unwrap()));
    assert_eq!(rehashed, recorded);
    h.dm_for(ALICE).await;
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_rate_limiting_is_waited_out_and_retried() {
    let h = Harness::start().await;
    h.slack.rate_limit_next("chat.postMessage", 0);
    let card = h.request(ALICE, ORDERS_OF_C2).await;
    let posts = h.slack.calls_to("chat.postMessage");
    assert_eq!(posts.len(), 2, "one 429, then the card");
    drop(card);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_disconnect_mid_flow_loses_nothing() {
    let h = Harness::start().await;
    let card = h.request(ALICE, ORDERS_OF_C2).await;
    let gone = h.slack.disconnect("refresh_requested");
    h.slack.wait_for_closed(gone).await;
    h.slack.wait_for_connections(2).await;
    h.click(BOB, &card, APPROVE_ACTION).await;
    h.card_update_containing(&card, "ran:").await;
    h.thread_reply(&card).await;
    h.dm_for(ALICE).await;
    assert_eq!(h.audit_kinds(&card.id).await, ["requested", "approved", "executed"]);
    // Slack's hello on the re-opened connection is counted as a reconnect.
    assert_eq!(h.metric_line("jitgate_slack_socket_reconnects_total").await, "jitgate_slack_socket_reconnects_total 1");
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_left_running_by_a_dead_replica_is_failed_and_never_rerun() {
    use jitgate::clock::Clock as _;
    use jitgate::engine::{ApproveResult, sealed_record};
    use jitgate::request::{self, RequestState, Roster, RosterSource};
    use jitgate::seal::{SealPurpose, Sealer};
    use jitgate::store::Transition;
    use secrecy::SecretString;

    let h = Harness::start().await;
    let card = h.request(ALICE, ORDERS_OF_C2).await;
    // Another replica approves and starts the run, then dies before running it: the record stays Running.
    let engine = h.apps[0].bot().engine().clone();
    let roster = Roster::new(h.clock.now()).with(
        jitgate::ids::SlackUserId::parse(BOB).unwrap(),
        RosterSource::Schedule(SCHEDULE.into()),
        "PagerDuty schedule PORDERS1",
    );
    let bob = jitgate::ids::SlackUserId::parse(BOB).unwrap();
    let shown = engine.status(&card.id).await.unwrap().expect("the request").fingerprint;
    let ApproveResult::Approved { request: approved, query } =
        engine.approve(&card.id, shown.as_hex(), &bob, &roster).await.unwrap()
    else {
        panic!("expected approval")
    };
    // Written as that replica would: sealed with the key every replica derives from the shared link secret.
    let sealer = Sealer::derive(&SecretString::from(LINK_SECRET.to_owned()), SealPurpose::Request);
    let running = sealed_record(&sealer, &request::start(&approved, &query, h.clock.now()).unwrap());
    assert!(matches!(engine.store().transition(&approved, &running).await.unwrap(), Transition::Applied));
    drop(query);

    // Within the credentials' lifetime the run may still be going on somewhere: the sweeper leaves it alone.
    h.clock.advance(time::Duration::minutes(15));
    h.sweep().await;
    assert_eq!(engine.status(&card.id).await.unwrap().unwrap().state(), RequestState::Running);

    h.clock.advance(time::Duration::minutes(2));
    h.sweep().await;
    let update = h.next_card_update(&card).await;
    assert!(update.all_text().contains("❌ Failed: interrupted"), "{}", update.all_text());
    assert!(h.dm_for(ALICE).await.all_text().contains("interrupted"));
    let alert = h.slack.next_message_in(ONCALL).await;
    assert!(alert.all_text().contains("security alert") && alert.all_text().contains(card.id.as_str()));
    assert!(h.metrics().await.contains("jitgate_security_alerts_total{kind=\"stuck_run\"} 1"));
    h.sweep().await; // once
    assert_eq!(h.audit_kinds(&card.id).await, ["requested", "approved", "failed"], "never executed");
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_living_longer_than_asked_raise_an_alert_and_nothing_runs() {
    let h = Harness::start().await;
    let card = h.request(ALICE, ORDERS_OF_C2).await;
    // jitgate's clock now runs two minutes behind STS: the 15-minute credentials look like they live 17 minutes,
    // as if the role handed out longer sessions than asked for. jitgate must refuse them and tell the operators.
    h.clock.advance(time::Duration::minutes(-2));
    h.click(BOB, &card, APPROVE_ACTION).await;
    let failed = h.card_update_containing(&card, "❌ Failed").await;
    assert!(failed.all_text().to_lowercase().contains("credentials"), "{}", failed.all_text());
    let alert = h.slack.next_message_in(ONCALL).await;
    assert!(
        alert.all_text().contains("security alert") && alert.all_text().contains(card.id.as_str()),
        "{}",
        alert.all_text()
    );
    let reply = h.thread_reply(&card).await;
    assert!(reply.all_text().starts_with("❌"), "{}", reply.all_text());
    h.dm_for(ALICE).await;
    assert!(h.metrics().await.contains("jitgate_security_alerts_total{kind=\"unacceptable_credentials\"} 1"));
    assert_eq!(h.audit_kinds(&card.id).await, ["requested", "approved", "failed"], "nothing executed");
    h.shutdown().await;
}
