//! How the issue-12 features combine, end to end through the real socket listener, the Slack and PagerDuty
//! emulators, Redis and the local DynamoDB/STS: break-glass never stands in for the second approver an unmasking
//! needs (and spends no daily use when refused), and a write on an incident-gated, escalating runbook collects its
//! two distinct approvals across escalation levels, runs once, and notes the incident without any value.

use jitgate::audit::AuditEvent;
use jitgate::messages::APPROVE_ACTION;
use jitgate_emulators::pagerduty::OnCall;
use jitgate_emulators::world::OPEN_INCIDENT;
use jitgate_testkit as support;
use support::harness::*;

/// One order by id; on-call may break glass, and `email` may be unmasked (with one more approver).
const BREAK_GLASS_UNMASKABLE: &str = r#"
id: order-by-id-break-glass-unmask
description: One order by its id; on-call may break glass; email may be unmasked
table:
  name: Orders
  partition_key: order_id
operation: get_item
role_arn: arn:aws:iam::123456789012:role/jitgate-orders-read
parameters:
  - name: order_id
    type: string
    pattern: "O[0-9]{6,12}"
    description: Order id, e.g. O000010001
key:
  partition: { param: order_id }
projection: [order_id, status, total, email]
mask: [email]
unmaskable: [email]
max_items: 1
break_glass:
  allowed: true
approval:
  approvers:
    pagerduty_schedules: [PORDERS1]
  ttl: 30m
"#;

/// The shipped write, but only during an Orders incident, approved through the Orders escalation policy and
/// widening to level 2 after 5 minutes.
const GATED_WRITE: &str = r#"
id: cancel-stuck-order-gated
description: Cancel one order stuck in paid, during an incident
table:
  name: Orders
  partition_key: order_id
operation: update_item
role_arn: arn:aws:iam::123456789012:role/jitgate-orders-write
parameters:
  - name: order_id
    type: string
    pattern: "O[0-9]{6,12}"
    description: Order id
  - name: refund_note
    type: string
    pattern: "[A-Za-z0-9 .,:#/_-]{3,200}"
    description: Why it is cancelled
key:
  partition: { param: order_id }
update:
  set:
    - { attribute: status, value: cancelled }
    - { attribute: refund_note, param: refund_note }
  condition:
    - { attribute: status, op: "=", value: paid }
mask: [email]
max_items: 1
incident:
  required: true
  services: [PORDERSVC]
approval:
  approvers:
    pagerduty_escalation_policies: [PORDERSEP]
  ttl: 60m
  escalate_after: 5m
  max_escalation_level: 2
"#;

/// Seeded order 6 of customer 1 is `paid`.
const PAID_ORDER: &str = "O000010006";

async fn start() -> Harness {
    let options = Options {
        extra_runbooks: vec![BREAK_GLASS_UNMASKABLE.to_owned(), GATED_WRITE.to_owned()],
        ..Options::default()
    };
    Harness::start_with(options).await
}

async fn refusal_codes(h: &Harness) -> Vec<String> {
    let mut codes = Vec::new();
    h.audit()
        .for_each_entry(|entry| {
            if let AuditEvent::Refused { reason, .. } = entry.event {
                codes.push(reason);
            }
        })
        .await
        .unwrap();
    codes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn break_glass_never_stands_in_for_the_second_approver_an_unmasking_needs() {
    let h = start().await;
    let text = "query order-by-id-break-glass-unmask order_id=O000010001 --reason \"checkout down\"";
    let envelope = h.slash(BOB, &format!("{text} --unmask email --break-glass")).await;
    envelope.ack().await.unwrap();
    let answer = h.ephemeral_for(BOB).await;
    assert!(answer.contains("needs 2 different approvers"), "{answer}");
    assert!(answer.contains("break-glass stands in for one approver only") && answer.contains("Nothing was run."));
    h.audit_entries_at_least(1).await;
    assert_eq!(refusal_codes(&h).await, ["break_glass_needs_approvers:2"]);

    // Nothing was counted: the one break-glass use of the day (this world's limit) is still there.
    let envelope = h.slash(BOB, &format!("{text} --break-glass")).await;
    envelope.ack().await.unwrap();
    let message = h.slack.next_message_in(ONCALL).await;
    assert!(message.all_text().contains("BREAK-GLASS"), "{}", message.all_text());
    let started = h.ephemeral_for(BOB).await;
    assert!(started.contains("runs now by break-glass"), "{started}");
    let id = message
        .buttons()
        .iter()
        .find_map(|b| b.value.as_deref().and_then(jitgate::messages::button_value).map(|(id, _)| id))
        .expect("the card names its request");
    let card = Card { ts: message.ts.clone(), id, message };
    // It ran, with email masked as the runbook says (the run itself is tests/it/gates.rs's business).
    h.card_update_containing(&card, "ran:").await;
    let rows = h.thread_reply(&card).await.all_text();
    assert!(!rows.contains("customer000001@example.com"), "{rows}");
    h.dm_for(BOB).await;
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gated_write_collects_distinct_approvals_across_escalation_levels_and_runs_once() {
    let h = start().await;
    h.pagerduty.add_user("PMALLORY", "Mallory", "mallory@example.com");
    h.pagerduty.add_oncall(OnCall::new("PMALLORY", POLICY, 2));
    let command = format!(
        "cancel-stuck-order-gated order_id={PAID_ORDER} refund_note=\"INC-812 refund in full\" --reason \"INC-812\""
    );

    // The incident gate applies to writes: none named, refused.
    let envelope = h.slash(ALICE, &format!("query {command}")).await;
    envelope.ack().await.unwrap();
    let refused = h.ephemeral_for(ALICE).await;
    assert!(refused.contains("may only be used during an incident"), "{refused}");

    let card = h.request(ALICE, &format!("{command} --incident {OPEN_INCIDENT}")).await;
    let text = card.message.all_text();
    assert!(text.contains("✏️ WRITE") && text.contains("*Incident:*"), "{text}");
    assert!(text.contains("2 approvals from different people needed"), "{text}");

    // Level 1 approves once; a second click by the same person never counts.
    h.click(BOB, &card, APPROVE_ACTION).await;
    let counted = h.next_card_update(&card).await;
    assert!(counted.all_text().contains("1 of 2 approvals so far (<@U0BOB>)"), "{}", counted.all_text());
    h.dm_for(ALICE).await;

    // Nobody else decides: the approvers widen to level 2, the approval already given still counts.
    h.clock.advance(time::Duration::minutes(5));
    h.sweep().await;
    let widened = h.card_update_containing(&card, "Escalated").await;
    assert!(widened.all_text().contains("1 of 2 approvals so far"), "{}", widened.all_text());
    h.thread_reply(&card).await;
    h.click(BOB, &card, APPROVE_ACTION).await;
    assert!(h.ephemeral_for(BOB).await.contains("you already approved this request"));

    // A level-2 on-call person is the second, distinct approver: the write runs once.
    h.click(MALLORY, &card, APPROVE_ACTION).await;
    let done = h.card_update_containing(&card, "wrote 1 item").await;
    assert!(done.all_text().contains("<@U0BOB> <@U0MALLORY>"), "{}", done.all_text());
    assert!(h.thread_reply(&card).await.all_text().contains("Wrote 1 item"));
    assert_eq!(
        h.audit_kinds(&card.id).await,
        ["requested", "approved", "escalated", "refused", "approved", "executed"]
    );

    // The incident's timeline hears of the approval and of the write, never of its values.
    let notes = h.pagerduty.wait_for_notes(2, std::time::Duration::from_secs(10)).await;
    assert_eq!(notes.len(), 2, "{notes:?}");
    assert!(notes[1].content.contains("wrote 1 item"), "{}", notes[1].content);
    assert!(notes.iter().all(|n| !n.content.contains("refund in full") && !n.content.contains("cancelled")));
    h.slack.discard_unread();
    h.shutdown().await;
}
