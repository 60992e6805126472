//! The audit trail against a real local DynamoDB: a request's story is recorded and read back, many replicas append
//! to one gapless chain, and tampering with the table (edits, deletions, a moved head, wrong types) is found by
//! `verify` and named.

use jitgate_testkit as support;

use std::collections::BTreeSet;
use std::sync::Arc;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType};
use jitgate::audit::{
    Actor, AppendRetry, AttemptedAction, AuditError, AuditEvent, AuditLog, CredentialEvidence, GENESIS_HASH, Problem,
    entry_hash,
};
use jitgate::clock::{Clock, ManualClock, SharedClock};
use jitgate::ids::{RequestId, SlackUserId};
use jitgate::request::{AccessRequest, ExecutionSummary, NewRequest, OnCallEntry, Refusal, RosterSource};
use jitgate::runbook::{ApprovalPolicy, ApproverSources};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

const START: OffsetDateTime = datetime!(2026-11-28 12:00 UTC);

fn user(id: &str) -> SlackUserId {
    SlackUserId::parse(id).unwrap()
}

fn request_id(text: &str) -> RequestId {
    RequestId::parse(text).unwrap()
}

fn access_request(id: &str, now: OffsetDateTime) -> AccessRequest {
    let policy = ApprovalPolicy {
        approvers: ApproverSources {
            pagerduty_schedules: BTreeSet::from(["PSCHED1".to_owned()]),
            ..ApproverSources::default()
        },
        required_approvals: 1,
        require_reason: true,
        ttl: std::time::Duration::from_secs(30 * 60),
        escalation: None,
    };
    let new = NewRequest {
        id: request_id(id),
        requester: user("UALICE"),
        reason: Some("INC-812".into()),
        query: support::fixtures::rendered_query(),
        policy,
        incident: None,
    };
    AccessRequest::create(new, now).unwrap()
}

fn executed(request: &AccessRequest, now: OffsetDateTime) -> AuditEvent {
    AuditEvent::Executed {
        request: request.id.clone(),
        fingerprint: request.fingerprint.clone(),
        summary: ExecutionSummary {
            row_count: 3,
            truncated: false,
            consumed_capacity: 0.5,
            result_sha256: "9f".repeat(32),
            write: None,
            unmasked: vec![],
        },
        credentials: CredentialEvidence {
            assumed_role_id: format!("AROAJITGATEEXAMPLE:{}", request.id),
            access_key_id: "ASIAJITGATEEXAMPLE01".into(),
            expires_at: now + Duration::minutes(15),
            session_policy: r#"{"Version":"2012-10-17","Statement":[]}"#.into(),
        },
    }
}

fn failed(id: &str, reason: String) -> AuditEvent {
    AuditEvent::Failed { request: request_id(id), code: None, reason }
}

/// A fresh audit table of this test's own, with the log, the raw client (to tamper with it) and the clock.
async fn fresh_log() -> (AuditLog, Client, Arc<ManualClock>) {
    let clock = ManualClock::new(START);
    let log = AuditLog::new(&support::aws_config(), support::unique("audit"), clock.clone());
    log.ensure_table().await.unwrap();
    (log, Client::new(&support::aws_config()), clock)
}

async fn append_failures(log: &AuditLog, count: u64) {
    for n in 1..=count {
        log.append(failed("JIT-7Q2M4X", format!("step {n}"))).await.unwrap();
    }
}

fn key(seq: u64) -> AttributeValue {
    AttributeValue::S(format!("E#{seq:020}"))
}

async fn set_attribute(raw: &Client, table: &str, pk: AttributeValue, name: &str, value: AttributeValue) {
    raw.update_item()
        .table_name(table)
        .key("pk", pk)
        .update_expression("SET #a = :v")
        .expression_attribute_names("#a", name)
        .expression_attribute_values(":v", value)
        .send()
        .await
        .unwrap();
}

async fn delete_entry(raw: &Client, table: &str, seq: u64) {
    raw.delete_item().table_name(table).key("pk", key(seq)).send().await.unwrap();
}

#[tokio::test]
async fn a_requests_story_is_recorded_and_read_back_in_order() {
    let (log, _, clock) = fresh_log().await;
    let request = access_request("JIT-7Q2M4X", clock.now());
    let other = access_request("JIT-AAAAAA", clock.now());

    log.append(AuditEvent::requested(&request)).await.unwrap();
    log.append(AuditEvent::requested(&other)).await.unwrap();
    clock.advance(Duration::minutes(1));
    let self_approval =
        AuditEvent::refused(Some(request.id.clone()), user("UALICE"), AttemptedAction::Approve, &Refusal::SelfApproval);
    log.append(self_approval.clone()).await.unwrap();
    // A refusal that never became a request belongs to no request, but is on the chain all the same.
    let unknown_runbook = AuditEvent::Refused {
        request: None,
        by: user("UMALLORY"),
        attempted: AttemptedAction::Request { runbook: "dump-everything".into() },
        reason: "no runbook named dump-everything".into(),
    };
    let system_entry = log.append(unknown_runbook).await.unwrap();
    assert_eq!(system_entry.request_id, None);
    clock.advance(Duration::minutes(1));
    let evidence = OnCallEntry {
        source: RosterSource::Schedule("PSCHED1".into()),
        evidence: "PagerDuty schedule PSCHED1, level 1".into(),
        until: None,
    };
    let approved = AuditEvent::Approved {
        request: request.id.clone(),
        approver: user("UBOB"),
        evidence,
        approvals: 1,
        required: 1,
    };
    log.append(approved.clone()).await.unwrap();
    clock.advance(Duration::seconds(3));
    let ran = executed(&request, clock.now());
    log.append(ran.clone()).await.unwrap();
    log.append(AuditEvent::Cancelled { request: other.id.clone(), by: user("UALICE") }).await.unwrap();

    let entries = log.entries_for(&request.id).await.unwrap();
    let seqs: Vec<u64> = entries.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, [1, 3, 5, 6]);
    let events: Vec<&AuditEvent> = entries.iter().map(|e| &e.event).collect();
    assert_eq!(events, [&AuditEvent::requested(&request), &self_approval, &approved, &ran]);
    let actors: Vec<Actor> = entries.iter().map(|e| e.actor.clone()).collect();
    assert_eq!(
        actors,
        [Actor::User(user("UALICE")), Actor::User(user("UALICE")), Actor::User(user("UBOB")), Actor::System]
    );
    let times: Vec<OffsetDateTime> = entries.iter().map(|e| e.at).collect();
    assert_eq!(
        times,
        [
            START,
            START + Duration::minutes(1),
            START + Duration::minutes(2),
            START + Duration::minutes(2) + Duration::seconds(3)
        ]
    );
    assert!(entries.iter().all(|e| e.request_id.as_ref() == Some(&request.id)));

    let other_kinds: Vec<&str> = log.entries_for(&other.id).await.unwrap().iter().map(|e| e.event.kind()).collect();
    assert_eq!(other_kinds, ["requested", "cancelled"]);
    assert!(log.entries_for(&request_id("JIT-ZZZZZZ")).await.unwrap().is_empty());

    assert_eq!(log.get(4).await.unwrap(), Some(system_entry));
    assert_eq!(log.get(8).await.unwrap(), None);
    let report = log.verify().await.unwrap();
    assert!(report.is_intact(), "{report}");
    assert_eq!(report.verified, 7);
}

#[tokio::test]
async fn each_entry_hashes_its_content_and_links_to_the_one_before() {
    let (log, raw, _) = fresh_log().await;
    append_failures(&log, 4).await;

    // Recompute every hash from the raw items, as an auditor with another tool would.
    let mut prev = GENESIS_HASH.to_owned();
    for seq in 1..=4 {
        let item = raw.get_item().table_name(log.table()).key("pk", key(seq)).send().await.unwrap().item.unwrap();
        let text = |name: &str| item.get(name).unwrap().as_s().unwrap().clone();
        assert_eq!(text("prev_hash"), prev, "entry {seq} links to entry {}", seq - 1);
        let recomputed = entry_hash(&prev, seq, &text("at"), Some(&text("request_id")), &text("actor"), &text("event"));
        assert_eq!(text("hash"), recomputed, "entry {seq}");
        assert_eq!(text("event"), format!(r#"{{"type":"failed","request":"JIT-7Q2M4X","reason":"step {seq}"}}"#));
        prev = recomputed;
    }
    let head = raw.get_item().table_name(log.table()).key("pk", AttributeValue::S("HEAD".into())).send().await;
    let head = head.unwrap().item.unwrap();
    assert_eq!(head.get("seq"), Some(&AttributeValue::N("4".into())));
    assert_eq!(head.get("hash"), Some(&AttributeValue::S(prev.clone())));
    assert_eq!(log.verify().await.unwrap().to_string(), format!("chain intact: 4 entries, head {prev}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_appends_from_many_replicas_form_one_gapless_chain() {
    const REPLICAS: usize = 8;
    const APPENDS: usize = 10;
    // The shared server handles one request at a time (scripts/moto-serial.py), so each transaction is atomic as in
    // DynamoDB, while the writers still race between reading the head and committing.
    let config = support::aws_config;
    let clock: SharedClock = ManualClock::new(START);
    let table = support::unique("audit-concurrent");
    AuditLog::new(&config(), table.clone(), clock.clone()).ensure_table().await.unwrap();
    // One request id per replica, so each replica's own entries can be found again.
    let ids: Vec<String> = (0..REPLICAS).map(|r| format!("JIT-RRRRR{r}")).collect();

    // One recorder for all writers: the counts below are the sum over them.
    let metrics = jitgate::telemetry::Metrics::new();
    let mut tasks = Vec::new();
    for id in ids.clone() {
        // A client of its own per replica, as separate processes would have.
        // Eight writers appending flat out is far busier than any deployment, and a writer may lose many rounds
        // in a row; the budget is raised so this test is about the chain's shape, not about the odds of giving up.
        let retry = AppendRetry { max_attempts: 1000, ..AppendRetry::default() };
        let replica =
            AuditLog::new(&config(), table.clone(), clock.clone()).with_retry(retry).with_metrics(metrics.clone());
        tasks.push(tokio::spawn(async move {
            let mut seqs = Vec::new();
            for n in 0..APPENDS {
                seqs.push(replica.append(failed(&id, format!("append {n}"))).await.unwrap().seq);
            }
            seqs
        }));
    }
    let mut seqs = Vec::new();
    for task in tasks {
        seqs.extend(task.await.unwrap());
    }
    seqs.sort_unstable();
    let expected: Vec<u64> = (1..=(REPLICAS * APPENDS) as u64).collect();
    assert_eq!(seqs, expected, "every append got its own sequence number, without gaps");

    // Every lost race is one transaction the table refused and one retry counted: operators read contention on the
    // chain's head from `jitgate_audit_append_retries_total`. Eight writers appending flat out always collide.
    let text = metrics.render();
    let value = |prefix: &str| -> u64 {
        let line = text.lines().find(|l| l.starts_with(prefix)).unwrap_or_else(|| panic!("no {prefix} in:\n{text}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    let refused = value(r#"jitgate_external_calls_total{service="audit",op="TransactWriteItems",result="error"}"#);
    let landed = value(r#"jitgate_external_calls_total{service="audit",op="TransactWriteItems",result="ok"}"#);
    assert_eq!(landed, (REPLICAS * APPENDS) as u64);
    assert!(refused > 0, "eight writers racing never collided:\n{text}");
    assert_eq!(value("jitgate_audit_append_retries_total "), refused, "{text}");

    let log = AuditLog::new(&config(), table, clock);
    let report = log.verify().await.unwrap();
    assert!(report.is_intact(), "{report}");
    assert_eq!(report.verified, (REPLICAS * APPENDS) as u64);
    // Nothing was lost or overwritten: each replica's appends are all there, in the order it made them.
    for id in &ids {
        let reasons: Vec<String> = log
            .entries_for(&request_id(id))
            .await
            .unwrap()
            .into_iter()
            .map(|e| match e.event {
                AuditEvent::Failed { reason, .. } => reason,
                other => panic!("unexpected event {other:?}"),
            })
            .collect();
        let expected: Vec<String> = (0..APPENDS).map(|n| format!("append {n}")).collect();
        assert_eq!(reasons, expected, "entries of {id}");
    }
}

#[tokio::test]
async fn verify_names_an_edited_entry() {
    let (log, raw, _) = fresh_log().await;
    append_failures(&log, 5).await;
    let forged = r#"{"type":"failed","request":"JIT-7Q2M4X","reason":"nothing to see"}"#;
    set_attribute(&raw, log.table(), key(3), "event", AttributeValue::S(forged.into())).await;

    let report = log.verify().await.unwrap();
    let finding = report.finding.clone().expect("the edit is found");
    assert_eq!(finding.seq, Some(3));
    assert_eq!(finding.request_id.as_deref(), Some("JIT-7Q2M4X"));
    assert!(matches!(finding.problem, Problem::Edited { .. }), "{report}");
    assert_eq!(report.verified, 2);
    let text = report.to_string();
    assert!(text.starts_with("chain BROKEN"), "{text}");
    assert!(text.contains("entry 3 (request JIT-7Q2M4X): content does not match its hash"), "{text}");

    // Readers refuse the edited entry instead of showing it as sound.
    let err = log.get(3).await.unwrap_err();
    assert!(matches!(err, AuditError::Corrupt { .. }), "{err}");
    assert!(log.entries_for(&request_id("JIT-7Q2M4X")).await.is_err());
}

#[tokio::test]
async fn verify_names_a_deleted_middle_entry() {
    let (log, raw, _) = fresh_log().await;
    append_failures(&log, 5).await;
    delete_entry(&raw, log.table(), 3).await;

    let report = log.verify().await.unwrap();
    let finding = report.finding.clone().expect("the deletion is found");
    assert_eq!(finding.seq, Some(3));
    assert_eq!(finding.problem, Problem::Missing { head_seq: 5 });
    assert!(report.to_string().contains("entry 3: is missing"), "{report}");
}

#[tokio::test]
async fn verify_names_a_deleted_last_entry() {
    let (log, raw, _) = fresh_log().await;
    append_failures(&log, 5).await;
    delete_entry(&raw, log.table(), 5).await;

    let report = log.verify().await.unwrap();
    let finding = report.finding.clone().expect("the deletion is found");
    assert_eq!(finding.seq, Some(5));
    assert_eq!(finding.problem, Problem::Missing { head_seq: 5 });
    assert!(report.to_string().contains("the last entry was deleted"), "{report}");
    assert_eq!(report.verified, 4);
}

#[tokio::test]
async fn a_head_moved_back_is_found_and_appends_never_overwrite() {
    let (log, raw, _) = fresh_log().await;
    append_failures(&log, 5).await;
    let entry4 = log.get(4).await.unwrap().unwrap();
    let head = AttributeValue::S("HEAD".into());
    set_attribute(&raw, log.table(), head.clone(), "seq", AttributeValue::N("4".into())).await;

    // Head seq moved back but its hash left: the head disagrees with entry 4.
    let finding = log.verify().await.unwrap().finding.expect("found");
    assert_eq!(finding.seq, Some(4));
    assert!(matches!(finding.problem, Problem::HeadMismatch { .. }), "{finding}");

    // Head moved back consistently: entry 5 sits past it.
    set_attribute(&raw, log.table(), head, "hash", AttributeValue::S(entry4.hash.clone())).await;
    let finding = log.verify().await.unwrap().finding.expect("found");
    assert_eq!(finding.seq, Some(5));
    assert_eq!(finding.problem, Problem::BeyondHead { head_seq: 4 });

    // An append would have to overwrite entry 5: it refuses, at once, and entry 5 is unchanged.
    let before = log.get(5).await.unwrap();
    let err = log.append(failed("JIT-7Q2M4X", "after the rollback".into())).await.unwrap_err();
    match &err {
        AuditError::HeadBehind { head_seq: 4, entry_seq: 5, .. } => {}
        other => panic!("expected HeadBehind, got {other}"),
    }
    assert!(err.to_string().contains("nothing was overwritten"), "{err}");
    assert_eq!(log.get(5).await.unwrap(), before);
}

#[tokio::test]
async fn a_deleted_head_is_found() {
    let (log, raw, _) = fresh_log().await;
    append_failures(&log, 2).await;
    raw.delete_item().table_name(log.table()).key("pk", AttributeValue::S("HEAD".into())).send().await.unwrap();

    let finding = log.verify().await.unwrap().finding.expect("found");
    assert_eq!(finding.seq, None);
    assert_eq!(finding.problem, Problem::HeadMissing);
}

#[tokio::test]
async fn a_malformed_attribute_is_a_finding_not_a_crash() {
    let (log, raw, _) = fresh_log().await;
    append_failures(&log, 3).await;
    set_attribute(&raw, log.table(), key(2), "actor", AttributeValue::N("42".into())).await;

    let report = log.verify().await.unwrap();
    let finding = report.finding.clone().expect("found");
    assert_eq!(finding.seq, Some(2));
    assert_eq!(
        finding.problem,
        Problem::Malformed { detail: "attribute `actor` should be a string (S) but is a number (N)".into() }
    );
    let err = log.get(2).await.unwrap_err();
    assert!(err.to_string().contains("entry 2"), "{err}");
    assert!(log.entries_for(&request_id("JIT-7Q2M4X")).await.is_err());

    // A head of the wrong type is reported too, and appending on it is refused rather than guessed at.
    set_attribute(&raw, log.table(), AttributeValue::S("HEAD".into()), "seq", AttributeValue::S("3".into())).await;
    let finding = log.verify().await.unwrap().finding.expect("found");
    assert!(matches!(finding.problem, Problem::HeadMalformed { .. }), "{finding}");
    let err = log.append(failed("JIT-7Q2M4X", "more".into())).await.unwrap_err();
    assert!(matches!(err, AuditError::Corrupt { .. }), "{err}");
}

#[tokio::test]
async fn verify_walks_past_one_batch() {
    let (log, raw, _) = fresh_log().await;
    append_failures(&log, 130).await;
    let report = log.verify().await.unwrap();
    assert!(report.is_intact(), "{report}");
    assert_eq!(report.verified, 130);

    delete_entry(&raw, log.table(), 117).await;
    let report = log.verify().await.unwrap();
    assert_eq!(report.finding.expect("found").seq, Some(117));
    assert_eq!(report.verified, 116);
}

#[tokio::test]
async fn an_empty_chain_is_intact() {
    let (log, _, _) = fresh_log().await;
    assert_eq!(log.verify().await.unwrap().to_string(), "chain intact: no entries yet");
}

#[tokio::test]
async fn a_missing_table_is_a_clear_error() {
    let table = support::unique("audit-missing");
    let log = AuditLog::new(&support::aws_config(), table.clone(), ManualClock::new(START));

    let err = log.append(failed("JIT-7Q2M4X", "boom".into())).await.unwrap_err();
    assert!(matches!(err, AuditError::TableMissing { .. }), "{err}");
    assert!(err.to_string().contains(&format!("audit table `{table}` does not exist")), "{err}");
    assert!(matches!(log.verify().await, Err(AuditError::TableMissing { .. })));
    assert!(matches!(log.entries_for(&request_id("JIT-7Q2M4X")).await, Err(AuditError::TableMissing { .. })));
}

#[tokio::test]
async fn ensure_table_is_idempotent_and_checks_the_layout() {
    let (log, raw, _) = fresh_log().await;
    log.ensure_table().await.unwrap();

    let wrong = support::unique("audit-wrong");
    raw.create_table()
        .table_name(&wrong)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("id")
                .attribute_type(aws_sdk_dynamodb::types::ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(KeySchemaElement::builder().attribute_name("id").key_type(KeyType::Hash).build().unwrap())
        .send()
        .await
        .unwrap();
    let err = AuditLog::new(&support::aws_config(), wrong, ManualClock::new(START)).ensure_table().await.unwrap_err();
    assert!(matches!(err, AuditError::TableSchema { .. }), "{err}");
    assert!(err.to_string().contains("primary key must be `pk`"), "{err}");
}
