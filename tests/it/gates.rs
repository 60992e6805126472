//! The runbook gates end to end, through the real socket listener against the Slack and PagerDuty emulators,
//! Redis and the local DynamoDB/STS: incident-gated runbooks (`incident:`, `--incident`, notes on the incident's
//! timeline), staged escalation (`approval.escalate_after`, driven by the injected clock and the sweeper) and
//! break-glass (`break_glass:`, `--break-glass`, Reviewed, the unreviewed alert; the harness configures
//! `break_glass.mention = "<!here>"` and a daily limit of 1).
//!
//! Run with `--nocapture` to see each Slack text the stories read, prefixed `transcript:`.

use jitgate::audit::AuditEvent;
use jitgate::messages::{APPROVE_ACTION, REVIEW_ACTION};
use jitgate_emulators::pagerduty::OnCall;
use jitgate_emulators::world::{BILLING_INCIDENT, NOTES_FROM, OPEN_INCIDENT, RESOLVED_INCIDENT};
use jitgate_testkit as support;
use support::harness::*;

/// One order by id, only while an incident on the Orders service is open.
const INCIDENT_RUNBOOK: &str = r#"
id: order-by-id-incident
description: One order by its id, during an incident on the Orders service (email masked)
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
projection: [order_id, customer_id, status, total, email]
mask: [email]
max_items: 1
incident:
  required: true
  services: [PORDERSVC]
approval:
  approvers:
    pagerduty_schedules: [PORDERS1]
  ttl: 30m
"#;

/// One order by id, approved through the Orders escalation policy, widening to level 2 after 5 minutes. (Short:
/// the story's clock must stay inside the 15 minutes the local STS's credentials live in real time.)
const ESCALATING_RUNBOOK: &str = r#"
id: order-by-id-escalating
description: One order by its id, approvers widening through the Orders escalation policy
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
projection: [order_id, status, total]
max_items: 1
approval:
  approvers:
    pagerduty_escalation_policies: [PORDERSEP]
  ttl: 60m
  escalate_after: 5m
  max_escalation_level: 2
"#;

/// One order by id; whoever is on call for it may break glass.
const BREAK_GLASS_RUNBOOK: &str = r#"
id: order-by-id-break-glass
description: One order by its id; on-call may break glass (email masked)
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
max_items: 1
break_glass:
  allowed: true
approval:
  approvers:
    pagerduty_schedules: [PORDERS1]
  ttl: 30m
"#;

fn transcript(who: &str, text: &str) {
    println!("transcript: [{who}] {text}");
}

async fn with_gated_runbooks() -> Harness {
    let options = Options {
        extra_runbooks: vec![
            INCIDENT_RUNBOOK.to_owned(),
            ESCALATING_RUNBOOK.to_owned(),
            BREAK_GLASS_RUNBOOK.to_owned(),
        ],
        ..Options::default()
    };
    Harness::start_with(options).await
}

/// Every note once the PagerDuty emulator holds `count` of them: they are written by a background task.
async fn notes_at_least(h: &Harness, count: usize) -> Vec<jitgate_emulators::pagerduty::Note> {
    h.pagerduty.wait_for_notes(count, std::time::Duration::from_secs(10)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_incident_is_shown_on_the_card_audited_and_noted_on_its_timeline() {
    let h = with_gated_runbooks().await;
    let card = h
        .request(
            ALICE,
            &format!("order-by-id-incident order_id=O000010001 --incident {OPEN_INCIDENT} --reason \"stuck order\""),
        )
        .await;
    let text = card.message.all_text();
    transcript("card", &text);
    assert!(
        text.contains("*Incident:* <https://emulated.pagerduty.com/incidents/PINC1234|#1234 Orders stuck in paid>"),
        "{text}"
    );
    assert!(text.contains("acknowledged in PagerDuty"), "{text}");

    h.click(BOB, &card, APPROVE_ACTION).await;
    let done = h.card_update_containing(&card, "ran:").await;
    assert!(done.all_text().contains("#1234"), "the incident stays on the card: {}", done.all_text());
    let results = h.thread_reply(&card).await;
    transcript("thread", &results.all_text());
    let dm = h.dm_for(ALICE).await;
    transcript("dm", &dm.all_text());

    let notes = notes_at_least(&h, 2).await;
    for note in &notes {
        transcript("pagerduty note", &note.content);
        assert_eq!((note.incident.as_str(), note.from.as_str()), ("PINC1234", NOTES_FROM));
        assert!(note.content.contains(card.id.as_str()) && note.content.contains("order-by-id-incident"));
        assert!(note.content.contains(&format!("https://jitgate.test/audit/{}", card.id)), "{}", note.content);
        // Never rows: the order's attributes stay out of PagerDuty.
        assert!(!note.content.contains("@example.com") && !note.content.contains("customer"), "{}", note.content);
    }
    assert!(notes[0].content.contains("approved by U0BOB"), "{}", notes[0].content);
    assert!(notes[1].content.contains("ran: 1 item returned"), "{}", notes[1].content);

    let entries = h.audit().entries_for(&card.id).await.unwrap();
    let incident = entries.iter().find_map(|e| match &e.event {
        AuditEvent::Requested { incident, .. } => incident.clone(),
        _ => None,
    });
    let incident = incident.expect("the requested entry records the incident");
    assert_eq!((incident.id.as_str(), incident.number, incident.status.as_str()), ("PINC1234", 1234, "acknowledged"));
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_resolved_unknown_or_foreign_incident_is_refused_and_audited() {
    let h = with_gated_runbooks().await;
    let base = "query order-by-id-incident order_id=O000010001 --reason \"stuck order\"";
    let cases = [
        (String::new(), "may only be used during an incident"),
        (format!(" --incident {RESOLVED_INCIDENT}"), "#1200 Checkout latency> is resolved"),
        (" --incident 9999".to_owned(), "PagerDuty has no incident `9999`"),
        (format!(" --incident {BILLING_INCIDENT}"), "is on PagerDuty service `PBILLSVC`"),
    ];
    for (incident, expected) in &cases {
        let envelope = h.slash(ALICE, &format!("{base}{incident}")).await;
        assert!(ack_is_bare(&envelope.ack().await.unwrap()));
        let answer = h.ephemeral_for(ALICE).await;
        transcript("ephemeral", &answer);
        assert!(answer.contains(expected) && answer.ends_with("Nothing was requested."), "{answer}");
    }
    // No card was posted for any of them (the harness fails on unread messages), and each refusal is audited.
    let (appended, counted) = h.refusals_recorded(ALICE, cases.len() as u64).await;
    assert_eq!(appended + counted, cases.len() as u64);
    let mut codes = Vec::new();
    h.audit()
        .for_each_entry(|entry| {
            if let AuditEvent::Refused { reason, .. } = entry.event {
                codes.push(reason);
            }
        })
        .await
        .unwrap();
    assert_eq!(
        codes,
        [
            "incident_required",
            "incident_not_open:PINC1200:resolved",
            "incident_not_found:9999",
            "incident_other_service:PINC1240:PBILLSVC"
        ]
    );
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incident_that_cannot_be_checked_is_refused() {
    let h = with_gated_runbooks().await;
    h.pagerduty.fail_next(403);
    let envelope = h
        .slash(ALICE, &format!("query order-by-id-incident order_id=O000010001 --reason x --incident {OPEN_INCIDENT}"))
        .await;
    envelope.ack().await.unwrap();
    let answer = h.ephemeral_for(ALICE).await;
    transcript("ephemeral", &answer);
    assert!(answer.contains("could not check incident `1234` with PagerDuty"), "{answer}");
    assert!(!answer.contains(h.pagerduty.api_key()), "the token never reaches Slack");
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nobody_deciding_widens_the_approvers_to_the_next_level_up_to_the_maximum() {
    let h = with_gated_runbooks().await;
    // Mallory is on call only at level 2 of the Orders escalation policy.
    h.pagerduty.add_user("PMALLORY", "Mallory", "mallory@example.com");
    h.pagerduty.add_oncall(OnCall::new("PMALLORY", POLICY, 2));
    let card = h.request(ALICE, "order-by-id-escalating order_id=O000010001 --reason \"stuck order\"").await;
    let text = card.message.all_text();
    transcript("card", &text);
    assert!(!text.contains("<@U0MALLORY>") && !text.contains("Escalated"), "level 1 only at first: {text}");

    // Before escalation a level-2 on-call may not approve.
    h.click(MALLORY, &card, APPROVE_ACTION).await;
    let refused = h.ephemeral_for(MALLORY).await;
    transcript("ephemeral", &refused);
    assert!(refused.contains("not on call for this runbook"), "{refused}");

    // Not yet due: nothing happens.
    h.clock.advance(time::Duration::minutes(4));
    h.sweep().await;
    assert_eq!(h.audit_kinds(&card.id).await, ["requested", "refused"]);

    h.clock.advance(time::Duration::minutes(1));
    h.sweep().await;
    let widened = h.card_update_containing(&card, "Escalated").await;
    transcript("card update", &widened.all_text());
    assert!(widened.all_text().contains("escalation level 2 (the most this runbook allows)"), "{}", widened.all_text());
    assert!(widened.all_text().contains("<@U0MALLORY>"), "the card names the new approvers: {}", widened.all_text());
    let thread = h.thread_reply(&card).await.all_text();
    transcript("thread", &thread);
    assert!(thread.contains("now include escalation level 2") && thread.contains("<@U0MALLORY>"), "{thread}");
    assert!(thread.contains("deepest level this runbook escalates to"), "{thread}");
    assert_eq!(h.audit_kinds(&card.id).await, ["requested", "refused", "escalated"]);

    // At its maximum it stays there: later sweeps, past when level 3 would be due, widen nothing more.
    h.clock.advance(time::Duration::minutes(6));
    h.sweep().await;
    h.sweep().await;
    assert_eq!(h.audit_kinds(&card.id).await, ["requested", "refused", "escalated"]);

    // Now the level-2 on-call may approve, and the query runs.
    h.click(MALLORY, &card, APPROVE_ACTION).await;
    let done = h.card_update_containing(&card, "ran:").await;
    transcript("card update", &done.all_text());
    h.thread_reply(&card).await;
    h.dm_for(ALICE).await;
    let entries = h.audit().entries_for(&card.id).await.unwrap();
    let escalated = entries.iter().find_map(|e| match &e.event {
        AuditEvent::Escalated { level, max_level, .. } => Some((*level, *max_level)),
        _ => None,
    });
    assert_eq!(escalated, Some((2, 2)));
    assert_eq!(h.audit_kinds(&card.id).await, ["requested", "refused", "escalated", "approved", "executed"]);
    h.shutdown().await;
}

/// `user` types a break-glass query; returns its card once posted and the requester's confirmation read.
async fn break_glass(h: &Harness, user: &str, text: &str) -> Card {
    let envelope = h.slash(user, &format!("query {text} --break-glass")).await;
    assert!(ack_is_bare(&envelope.ack().await.unwrap()));
    let message = h.slack.next_message_in(ONCALL).await;
    let confirmation = h.ephemeral_for(user).await;
    transcript("ephemeral", &confirmation);
    assert!(confirmation.contains("runs now by break-glass, without an approver"), "{confirmation}");
    let id = message
        .buttons()
        .iter()
        .find_map(|b| b.value.as_deref().and_then(jitgate::messages::button_value).map(|(id, _)| id))
        .unwrap_or_else(|| panic!("the card has no request id: {}", message.all_text()));
    Card { ts: message.ts.clone(), id, message }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_call_breaks_glass_loudly_and_another_on_call_person_reviews_it() {
    let h = with_gated_runbooks().await;
    let card = break_glass(
        &h,
        BOB,
        &format!("order-by-id-break-glass order_id=O000010001 --reason \"checkout down\" --incident {OPEN_INCIDENT}"),
    )
    .await;
    let text = card.message.all_text();
    transcript("card", &text);
    assert!(text.contains("🚨 *BREAK-GLASS* <!here> <@U0BOB> ran this at once, without an approver"), "{text}");
    assert!(text.contains("Awaiting review"), "{text}");
    let done = h.card_update_containing(&card, "ran:").await;
    transcript("card update", &done.all_text());
    assert!(done.all_text().contains("Run by break-glass by <@U0BOB>, without an approver"), "{}", done.all_text());
    assert!(done.all_text().contains("Awaiting review"), "still awaiting review after the run: {}", done.all_text());
    let results = h.thread_reply(&card).await;
    transcript("thread", &results.all_text());
    h.dm_for(BOB).await;

    // The requester cannot review their own run, nor can someone not on call.
    h.click(BOB, &card, REVIEW_ACTION).await;
    let own = h.ephemeral_for(BOB).await;
    transcript("ephemeral", &own);
    assert!(own.contains("someone else on call has to review it"), "{own}");
    h.click(MALLORY, &card, REVIEW_ACTION).await;
    let not_on_call = h.ephemeral_for(MALLORY).await;
    transcript("ephemeral", &not_on_call);
    assert!(not_on_call.contains("not on call for this runbook"), "{not_on_call}");

    h.click(CAROL, &card, REVIEW_ACTION).await;
    let reviewed = h.card_update_containing(&card, "Reviewed").await;
    transcript("card update", &reviewed.all_text());
    assert!(reviewed.all_text().contains("*Reviewed* by <@U0CAROL>"), "{}", reviewed.all_text());
    assert!(!reviewed.all_text().contains("Awaiting review"), "{}", reviewed.all_text());
    let thread = h.thread_reply(&card).await.all_text();
    transcript("thread", &thread);
    assert!(thread.contains("<@U0CAROL> reviewed the break-glass run"), "{thread}");
    assert_eq!(
        h.audit_kinds(&card.id).await,
        ["requested", "break_glass", "executed", "refused", "refused", "break_glass_reviewed"]
    );
    let notes = notes_at_least(&h, 2).await;
    for note in &notes {
        transcript("pagerduty note", &note.content);
    }
    assert!(notes[0].content.contains("run by break-glass by Slack user U0BOB"), "{}", notes[0].content);
    assert!(notes[1].content.contains("ran: 1 item returned"), "{}", notes[1].content);

    // The daily limit (1 in this world) is spent: the next break-glass today is refused, and nothing is posted.
    let envelope =
        h.slash(BOB, "query order-by-id-break-glass order_id=O000010001 --reason \"again\" --break-glass").await;
    envelope.ack().await.unwrap();
    let over = h.ephemeral_for(BOB).await;
    transcript("ephemeral", &over);
    assert!(over.contains("You have used break-glass 1 time today, the most allowed"), "{over}");
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn break_glass_by_someone_not_on_call_without_a_reason_or_on_another_runbook_is_refused() {
    let h = with_gated_runbooks().await;
    let cases = [
        (MALLORY, "order-by-id-break-glass order_id=O000010001 --reason \"x\"", "only for whoever is on call"),
        (BOB, "order-by-id-break-glass order_id=O000010001", "Break-glass needs a reason"),
        (BOB, "order-by-id order_id=O000010001 --reason \"x\"", "`order-by-id` does not allow break-glass"),
    ];
    for (user, text, expected) in cases {
        let envelope = h.slash(user, &format!("query {text} --break-glass")).await;
        envelope.ack().await.unwrap();
        let answer = h.ephemeral_for(user).await;
        transcript("ephemeral", &answer);
        assert!(answer.contains(expected) && answer.contains("Nothing was run."), "{answer}");
    }
    let mut codes = Vec::new();
    h.audit_entries_at_least(3).await;
    h.audit()
        .for_each_entry(|entry| {
            if let AuditEvent::Refused { reason, .. } = entry.event {
                codes.push(reason);
            }
        })
        .await
        .unwrap();
    assert_eq!(codes, ["break_glass_not_on_call", "break_glass_reason_required", "break_glass_not_allowed"]);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreviewed_break_glass_run_raises_one_alert_when_its_review_is_due() {
    let h = with_gated_runbooks().await;
    let card = break_glass(&h, BOB, "order-by-id-break-glass order_id=O000010001 --reason \"checkout down\"").await;
    h.card_update_containing(&card, "ran:").await;
    h.thread_reply(&card).await;
    h.dm_for(BOB).await;

    h.clock.advance(time::Duration::minutes(29));
    h.sweep().await;
    assert!(!h.audit_kinds(&card.id).await.contains(&"break_glass_unreviewed"), "not due yet");
    h.clock.advance(time::Duration::minutes(1));
    h.sweep().await;
    let alert = h.slack.next_message_in(ONCALL).await.all_text();
    transcript("alert", &alert);
    assert!(alert.contains("🚨 <!here> Break-glass run") && alert.contains("has not been reviewed in time"), "{alert}");
    h.wait_for_metric(r#"jitgate_security_alerts_total{kind="break_glass_unreviewed"} 1"#).await;
    h.sweep().await;
    let kinds = h.audit_kinds(&card.id).await;
    assert_eq!(kinds.iter().filter(|k| **k == "break_glass_unreviewed").count(), 1, "alerted once: {kinds:?}");
    h.shutdown().await;
}
