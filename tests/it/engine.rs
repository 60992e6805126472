//! The core engine end to end against the real Redis and the local DynamoDB/STS server: requests made from the
//! shipped runbooks, approved by an on-call engineer, run under temporary credentials against a seeded table, and
//! audited in a hash-chained trail.

use jitgate_testkit as support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use jitgate::audit::AuditLog;
use jitgate::aws::StsBroker;
use jitgate::aws::demo_table::{create_demo_orders_table, demo_orders, seed_demo_orders};
use jitgate::aws::value::MASK;
use jitgate::clock::{ManualClock, SharedClock};
use jitgate::engine::{ApproveResult, DecisionResult, Engine, EngineSettings, ExecuteResult, SubmitOutcome};
use jitgate::ids::SlackUserId;
use jitgate::request::{AccessRequest, ApprovedQuery, FailureReason, Refusal, RequestState, Roster};
use jitgate::runbook::RunbookSet;
use jitgate::seal::{SealPurpose, Sealer};
use jitgate::store::{RateLimit, RequestStore, StoreSettings};
use jitgate_emulators::world;
use secrecy::SecretString;
use support::fixtures::{user, wall_clock_now, world_roster};
use support::harness::shipped_runbooks_on;

const CUSTOMERS: u32 = 4;
const ORDERS_PER_CUSTOMER: u32 = 6;

/// One deployment's worth of state: its own Redis prefix, Orders table (named in its runbooks) and audit table.
struct World {
    prefix: String,
    audit_table: String,
    runbooks: Arc<RunbookSet>,
    clock: Arc<ManualClock>,
}

impl World {
    async fn new() -> World {
        let table = support::unique("Orders");
        let config = support::aws_config();
        let client = aws_sdk_dynamodb::Client::new(&config);
        create_demo_orders_table(&client, &table).await.expect("create Orders");
        seed_demo_orders(&client, &table, CUSTOMERS, ORDERS_PER_CUSTOMER).await.expect("seed Orders");
        let world = World {
            prefix: support::unique("engine"),
            audit_table: support::unique("audit"),
            runbooks: Arc::new(shipped_runbooks_on(&table)),
            clock: ManualClock::new(wall_clock_now()),
        };
        world.audit(&support::aws_config()).ensure_table().await.expect("audit table");
        world
    }

    fn audit(&self, config: &aws_config::SdkConfig) -> AuditLog {
        AuditLog::new(config, self.audit_table.clone(), self.clock.clone() as SharedClock)
    }

    /// A replica of jitgate: its own Redis connection and AWS clients over the shared state.
    async fn replica(&self) -> Engine {
        self.replica_with(&support::aws_config(), &support::redis_url()).await
    }

    async fn replica_with(&self, sts_config: &aws_config::SdkConfig, redis_url: &str) -> Engine {
        let settings = StoreSettings { key_prefix: self.prefix.clone(), ..StoreSettings::default() };
        let store = RequestStore::connect(redis_url, settings).await.expect("connect to Redis");
        let clock: SharedClock = self.clock.clone();
        let config = support::aws_config();
        Engine::new(
            self.runbooks.clone(),
            store,
            StsBroker::new(sts_config).with_clock(clock.clone()),
            jitgate::aws::Executor::new(config.clone(), clock.clone()),
            self.audit(&config),
            clock,
            EngineSettings {
                region: support::REGION.to_owned(),
                rate_limit: RateLimit { max: 5, window: Duration::from_secs(3600) },
                // Every replica of the world shares the key, as `jitgate run` replicas share the link secret.
                sealer: Sealer::derive(&SecretString::from("engine-tests-seal-key".to_owned()), SealPurpose::Request),
            },
        )
    }

    /// Who is on call now: Bob and Carol on the Orders schedule, and the requester too (which must not help them).
    fn roster(&self) -> Roster {
        world_roster(self.clock.now())
    }

    async fn audit_kinds(&self, request: &AccessRequest) -> Vec<&'static str> {
        let entries = self.audit(&support::aws_config()).entries_for(&request.id).await.expect("read audit");
        entries.iter().map(|e| e.event.kind()).collect()
    }
}

use jitgate::clock::Clock as _;

fn alice() -> SlackUserId {
    user(world::ALICE)
}
fn bob() -> SlackUserId {
    user(world::BOB)
}
fn carol() -> SlackUserId {
    user(world::CAROL)
}

fn args(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

/// Alice asks for customer C000002's orders in January 2026.
async fn alice_requests(engine: &Engine) -> AccessRequest {
    let outcome = engine
        .submit(
            &alice(),
            "orders-by-customer",
            &args(&[("customer_id", "C000002"), ("from", "2026-01-01"), ("until", "2026-02-01")]),
            Some("INC-812 refund check".into()),
        )
        .await
        .expect("submit");
    match outcome {
        SubmitOutcome::Created(request) => *request,
        other => panic!("expected a pending request, got {other:?}"),
    }
}

/// Bob, on call, approves the operation the card showed: the approved record and its query, ready to execute.
async fn bob_approves(world: &World, engine: &Engine, request: &AccessRequest) -> (AccessRequest, ApprovedQuery) {
    let result =
        engine.approve(&request.id, request.fingerprint.as_hex(), &bob(), &world.roster()).await.expect("approve");
    let ApproveResult::Approved { request: approved, query } = result else {
        panic!("expected approval, got {result:?}")
    };
    (*approved, *query)
}

#[tokio::test]
async fn an_approved_request_runs_once_returns_masked_rows_and_is_audited() {
    let world = World::new().await;
    let engine = world.replica().await;
    let request = alice_requests(&engine).await;
    assert_eq!(request.state(), RequestState::Pending);

    let (approved, query) = bob_approves(&world, &engine, &request).await;
    assert_eq!(approved.state(), RequestState::Approved);
    let result = engine.execute(approved, query).await.expect("execute");
    let ExecuteResult::Executed { request: done, result, audit } = result else {
        panic!("expected execution, got {result:?}")
    };
    assert_eq!(done.state(), RequestState::Succeeded);

    // Exactly customer C000002's orders, masked where the runbook says.
    let expected: Vec<_> =
        demo_orders(CUSTOMERS, ORDERS_PER_CUSTOMER).into_iter().filter(|o| o.customer_id == "C000002").collect();
    assert_eq!(result.row_count as usize, expected.len());
    let rows = result.rows.to_json().expect("the delivered rows read back");
    let rows = rows.as_array().expect("an array of rows");
    let mut got: Vec<String> =
        rows.iter().map(|r| r["order_id"].as_str().unwrap_or_else(|| panic!("{r}")).to_owned()).collect();
    got.sort();
    assert_eq!(got, expected.iter().map(|o| o.order_id.clone()).collect::<Vec<_>>());
    for row in rows {
        assert_eq!(row["email"], MASK);
        assert_eq!(row["shipping_address"], MASK);
        assert!(!row.to_string().contains("@example.com"), "no email leaves the executor");
    }

    // The audit trail tells the whole story, and its chain holds.
    assert_eq!(world.audit_kinds(&done).await, ["requested", "approved", "executed"]);
    assert_eq!(audit.event.kind(), "executed");
    let report = world.audit(&support::aws_config()).verify().await.unwrap();
    assert!(report.is_intact(), "{report}");

    // A second click after the run changes nothing and runs nothing.
    let again = engine.approve(&request.id, request.fingerprint.as_hex(), &carol(), &world.roster()).await.unwrap();
    assert!(
        matches!(again, ApproveResult::Refused { refusal: Refusal::NotPending(RequestState::Succeeded), .. }),
        "{again:?}"
    );
    let kinds = world.audit_kinds(&done).await;
    assert_eq!(kinds.iter().filter(|k| **k == "executed").count(), 1);
}

// The card's reference is recorded once Slack has posted it; an approver can click before that write lands (seen
// under load with several replicas). The approved record then moved on by its card alone, and the run must go on.
#[tokio::test]
async fn a_card_recorded_after_a_quick_approval_does_not_stop_the_run() {
    let world = World::new().await;
    let engine = world.replica().await;
    let request = alice_requests(&engine).await;
    let (approved, query) = bob_approves(&world, &engine, &request).await;
    let card = jitgate::request::CardRef { channel: "C0ONCALL".into(), ts: "1700000000.000100".into() };
    let recorded = engine.attach_card(&request.id, card).await.expect("attach").expect("the request exists");
    assert_eq!(recorded.state(), RequestState::Approved);

    let result = engine.execute(approved, query).await.expect("execute");
    let ExecuteResult::Executed { request: done, .. } = result else { panic!("expected execution, got {result:?}") };
    assert_eq!(done.state(), RequestState::Succeeded);
    assert!(done.card.is_some(), "the card recorded in between is kept");
}

#[tokio::test]
async fn the_requester_cannot_approve_and_the_refusal_is_audited() {
    let world = World::new().await;
    let engine = world.replica().await;
    let request = alice_requests(&engine).await;
    let result = engine.approve(&request.id, request.fingerprint.as_hex(), &alice(), &world.roster()).await.unwrap();
    assert!(matches!(result, ApproveResult::Refused { refusal: Refusal::SelfApproval, .. }), "{result:?}");
    assert_eq!(engine.status(&request.id).await.unwrap().unwrap().state(), RequestState::Pending);
    assert_eq!(world.audit_kinds(&request).await, ["requested", "refused"]);
}

#[tokio::test]
async fn someone_not_on_call_cannot_approve() {
    let world = World::new().await;
    let engine = world.replica().await;
    let request = alice_requests(&engine).await;
    let result = engine
        .approve(&request.id, request.fingerprint.as_hex(), &user(world::MALLORY), &world.roster())
        .await
        .unwrap();
    assert!(matches!(result, ApproveResult::Refused { refusal: Refusal::NotOnCall, .. }), "{result:?}");
    // On call an hour ago is not on call now: a roster that old is refused outright.
    let old = Roster { as_of: world.clock.now() - time::Duration::hours(1), ..world.roster() };
    let result = engine.approve(&request.id, request.fingerprint.as_hex(), &bob(), &old).await.unwrap();
    assert!(matches!(result, ApproveResult::Refused { refusal: Refusal::RosterStale, .. }), "{result:?}");
    assert_eq!(engine.status(&request.id).await.unwrap().unwrap().state(), RequestState::Pending);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_approvals_on_two_replicas_execute_exactly_once() {
    let world = World::new().await;
    let replicas = [Arc::new(world.replica().await), Arc::new(world.replica().await)];
    let request = alice_requests(&replicas[0]).await;
    let roster = world.roster();
    let mut tasks = Vec::new();
    for i in 0..8 {
        let engine = replicas[i % 2].clone();
        let (id, shown, roster) = (request.id.clone(), request.fingerprint.clone(), roster.clone());
        let approver = if i % 2 == 0 { bob() } else { carol() };
        tasks.push(tokio::spawn(async move {
            match engine.approve(&id, shown.as_hex(), &approver, &roster).await.unwrap() {
                ApproveResult::Approved { request, query } => Some(engine.execute(*request, *query).await.unwrap()),
                ApproveResult::Refused { refusal: Refusal::NotPending(_) | Refusal::AlreadyApprovedBy, .. } => None,
                other => panic!("unexpected outcome {other:?}"),
            }
        }));
    }
    let mut executed = 0;
    for task in tasks {
        match task.await.unwrap() {
            Some(ExecuteResult::Executed { .. }) => executed += 1,
            None => {}
            other => panic!("unexpected outcome {other:?}"),
        }
    }
    assert_eq!(executed, 1, "exactly one replica ran the query");
    let kinds = world.audit_kinds(&request).await;
    assert_eq!(kinds.iter().filter(|k| **k == "executed").count(), 1, "{kinds:?}");
    assert_eq!(kinds.iter().filter(|k| **k == "approved").count(), 1, "{kinds:?}");
}

#[tokio::test]
async fn deny_and_cancel_end_the_request_and_nothing_runs() {
    let world = World::new().await;
    let engine = world.replica().await;
    let denied = alice_requests(&engine).await;
    let result = engine.deny(&denied.id, &bob(), Some("use the read replica".into()), &world.roster()).await.unwrap();
    let DecisionResult::Done(after) = result else { panic!("{result:?}") };
    assert_eq!(after.state(), RequestState::Denied);
    let late = engine.approve(&denied.id, denied.fingerprint.as_hex(), &carol(), &world.roster()).await.unwrap();
    assert!(matches!(late, ApproveResult::Refused { refusal: Refusal::NotPending(RequestState::Denied), .. }));
    assert_eq!(world.audit_kinds(&denied).await, ["requested", "denied", "refused"]);

    let cancelled = alice_requests(&engine).await;
    let not_yours = engine.cancel(&cancelled.id, &bob()).await.unwrap();
    assert!(matches!(not_yours, DecisionResult::Refused { refusal: Refusal::NotRequester, .. }));
    let DecisionResult::Done(after) = engine.cancel(&cancelled.id, &alice()).await.unwrap() else { panic!() };
    assert_eq!(after.state(), RequestState::Cancelled);
    assert_eq!(world.audit_kinds(&cancelled).await, ["requested", "refused", "cancelled"]);
}

#[tokio::test]
async fn an_unapproved_request_expires_once_and_can_no_longer_be_approved() {
    let world = World::new().await;
    let engine = world.replica().await;
    let request = alice_requests(&engine).await;
    assert!(engine.expire_due(100).await.unwrap().is_empty(), "nothing is due yet");
    world.clock.advance(time::Duration::minutes(31));
    let expired = engine.expire_due(100).await.unwrap();
    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0].id, request.id);
    assert_eq!(expired[0].state(), RequestState::Expired);
    assert!(engine.expire_due(100).await.unwrap().is_empty(), "a second sweep changes nothing");
    let late = engine.approve(&request.id, request.fingerprint.as_hex(), &bob(), &world.roster()).await.unwrap();
    assert!(matches!(late, ApproveResult::Refused { refusal: Refusal::NotPending(RequestState::Expired), .. }));
    assert_eq!(world.audit_kinds(&request).await, ["requested", "expired", "refused"]);
}

#[tokio::test]
async fn mistakes_in_a_request_are_answered_and_audited_without_creating_anything() {
    let world = World::new().await;
    let engine = world.replica().await;
    let outcome = engine.submit(&alice(), "order-by-customer", &args(&[]), Some("x".into())).await.unwrap();
    let SubmitOutcome::UnknownRunbook { suggestion, .. } = outcome else { panic!("{outcome:?}") };
    assert_eq!(suggestion.unwrap().as_str(), "orders-by-customer");

    let outcome = engine
        .submit(
            &alice(),
            "orders-by-customer",
            &args(&[("customer_id", "42"), ("from", "2026-01-01")]),
            Some("x".into()),
        )
        .await
        .unwrap();
    let SubmitOutcome::BadParameters { errors, .. } = outcome else { panic!("{outcome:?}") };
    let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
    assert!(text.iter().any(|e| e.contains("customer_id")), "{text:?}");
    assert!(text.iter().any(|e| e.contains("until")), "{text:?}");

    let outcome = engine
        .submit(
            &alice(),
            "orders-by-customer",
            &args(&[("customer_id", "C000002"), ("from", "2026-01-01"), ("until", "2026-02-01")]),
            None,
        )
        .await
        .unwrap();
    assert!(matches!(outcome, SubmitOutcome::Refused(Refusal::ReasonRequired)), "{outcome:?}");

    let entries = world.audit(&support::aws_config()).verify().await.unwrap();
    assert_eq!(entries.verified, 3, "three refusals audited: {entries}");
}

#[tokio::test]
async fn a_user_over_the_request_limit_is_told_when_to_retry() {
    let world = World::new().await;
    let engine = world.replica().await;
    for _ in 0..5 {
        alice_requests(&engine).await;
    }
    let outcome = engine
        .submit(&alice(), "order-by-id", &args(&[("order_id", "O000010001")]), Some("again".into()))
        .await
        .unwrap();
    let SubmitOutcome::RateLimited { retry_after } = outcome else { panic!("{outcome:?}") };
    assert!(retry_after > Duration::ZERO && retry_after <= Duration::from_secs(3600));
}

#[tokio::test]
async fn sts_failing_ends_the_request_as_failed_with_a_reason_and_runs_nothing() {
    let world = World::new().await;
    let closed = support::aws_config_for("http://127.0.0.1:9", "AKIAJITGATETESTS0001", "test-secret");
    let engine = world.replica_with(&closed, &support::redis_url()).await;
    let request = alice_requests(&engine).await;
    let (approved, query) = bob_approves(&world, &engine, &request).await;
    let result = engine.execute(approved, query).await.unwrap();
    let ExecuteResult::Failed { request: failed, reason, alarm: false } = result else { panic!("{result:?}") };
    assert_eq!(failed.state(), RequestState::Failed);
    assert!(!jitgate::messages::failure_reason(&reason).is_empty(), "{reason:?}");
    assert_eq!(world.audit_kinds(&request).await, ["requested", "approved", "failed"]);
}

#[tokio::test]
async fn redis_unreachable_is_a_clear_error_and_nothing_is_created() {
    let world = World::new().await;
    let settings = StoreSettings { key_prefix: world.prefix.clone(), ..StoreSettings::default() };
    let err = RequestStore::connect("redis://127.0.0.1:9", settings).await.expect_err("nothing listens on port 9");
    assert!(err.to_string().contains("unreachable"), "{err}");
}

#[tokio::test]
async fn without_an_audit_trail_a_request_fails_closed() {
    let world = World { audit_table: support::unique("missing-audit"), ..World::new().await };
    let engine = world.replica().await;
    let err = engine
        .submit(
            &alice(),
            "orders-by-customer",
            &args(&[("customer_id", "C000002"), ("from", "2026-01-01"), ("until", "2026-02-01")]),
            Some("x".into()),
        )
        .await
        .expect_err("no audit table");
    assert!(format!("{err:#}").contains("audit"), "{err:#}");
}

/// The seal key every replica of the test world shares (see `World::replica_with`).
fn world_sealer() -> Sealer {
    Sealer::derive(&SecretString::from("engine-tests-seal-key".to_owned()), SealPurpose::Request)
}

/// The raw Redis fields (state, version, body) of a request record.
async fn raw_record(world: &World, id: &jitgate::ids::RequestId) -> (String, String, String) {
    let client = redis::Client::open(support::redis_url()).expect("redis url");
    let mut redis = client.get_multiplexed_async_connection().await.expect("connect");
    let key = format!("{}:{{{}}}:request", world.prefix, id.as_str());
    redis::cmd("HMGET").arg(&key).arg("state").arg("version").arg("body").query_async(&mut redis).await.expect("read")
}

async fn write_raw_record(
    world: &World,
    id: &jitgate::ids::RequestId,
    (state, version, body): (String, String, String),
) {
    let client = redis::Client::open(support::redis_url()).expect("redis url");
    let mut redis = client.get_multiplexed_async_connection().await.expect("connect");
    let key = format!("{}:{{{}}}:request", world.prefix, id.as_str());
    let () = redis::cmd("HSET")
        .arg(&key)
        .arg("state")
        .arg(state)
        .arg("version")
        .arg(version)
        .arg("body")
        .arg(body)
        .query_async(&mut redis)
        .await
        .expect("write");
}

/// A record that changed between the approval and the start for another reason than its card (here: an older
/// sealed version put back in Redis) is never run, its trail ends with a `failed` entry saying so, and the
/// operators are alerted: nothing in jitgate moves an approved record back.
#[tokio::test]
async fn a_record_changed_while_starting_is_failed_and_audited_not_run() {
    let world = World::new().await;
    let engine = world.replica().await;
    let request = alice_requests(&engine).await;
    let pending = raw_record(&world, &request.id).await;
    let (approved, query) = bob_approves(&world, &engine, &request).await;
    write_raw_record(&world, &request.id, pending).await;

    let result = engine.execute(approved, query).await.expect("execute");
    let ExecuteResult::Failed { request: ended, reason, alarm } = result else { panic!("must not run: {result:?}") };
    assert_eq!(reason, FailureReason::ChangedWhileStarting { now: RequestState::Pending });
    assert!(alarm, "a record moved back from outside is a security alert");
    assert_eq!(ended.state(), RequestState::Failed);
    assert_eq!(world.audit_kinds(&request).await, ["requested", "approved", "failed"]);
    let stored = engine.status(&request.id).await.expect("read").expect("the request exists");
    assert_eq!(stored.state(), RequestState::Failed, "it cannot be approved again");
}

/// A record another writer ended between the approval and the start keeps that ending: not run, no second
/// `failed` entry, no alert.
#[tokio::test]
async fn a_record_ended_by_another_writer_while_starting_keeps_that_ending() {
    let world = World::new().await;
    let engine = world.replica().await;
    let request = alice_requests(&engine).await;
    let (approved, query) = bob_approves(&world, &engine, &request).await;
    let sweeper = world.replica().await;
    sweeper.abandon(&request.id, FailureReason::NeverStarted).await.expect("abandon").expect("the request exists");

    let result = engine.execute(approved, query).await.expect("execute");
    let ExecuteResult::Failed { reason, alarm, .. } = result else { panic!("must not run: {result:?}") };
    assert_eq!(reason, FailureReason::ChangedWhileStarting { now: RequestState::Failed });
    assert!(!alarm);
    assert_eq!(world.audit_kinds(&request).await, ["requested", "approved", "failed"]);
}

/// A record that disappeared between the approval and the start is not run, and its trail still ends.
#[tokio::test]
async fn a_record_gone_while_starting_is_not_run_and_its_trail_ends() {
    let world = World::new().await;
    let engine = world.replica().await;
    let request = alice_requests(&engine).await;
    let (approved, query) = bob_approves(&world, &engine, &request).await;
    let client = redis::Client::open(support::redis_url()).expect("redis url");
    let mut redis = client.get_multiplexed_async_connection().await.expect("connect");
    let key = format!("{}:{{{}}}:request", world.prefix, request.id.as_str());
    let () = redis::cmd("DEL").arg(&key).query_async(&mut redis).await.expect("delete");

    let result = engine.execute(approved, query).await.expect("execute");
    assert!(matches!(result, ExecuteResult::Failed { reason: FailureReason::ChangedWhileStarting { .. }, .. }));
    assert_eq!(world.audit_kinds(&request).await, ["requested", "approved", "failed"]);
}

#[tokio::test]
async fn an_approval_counts_only_for_the_operation_its_card_showed() {
    let world = World::new().await;
    let engine = world.replica().await;
    let request = alice_requests(&engine).await;
    let elsewhere = "0".repeat(64);
    let result = engine.approve(&request.id, &elsewhere, &bob(), &world.roster()).await.unwrap();
    assert!(matches!(result, ApproveResult::Refused { refusal: Refusal::NotWhatWasShown, .. }), "{result:?}");
    // A card of an older version carried no fingerprint at all: never counted either.
    let result = engine.approve(&request.id, "", &bob(), &world.roster()).await.unwrap();
    assert!(matches!(result, ApproveResult::Refused { refusal: Refusal::NotWhatWasShown, .. }), "{result:?}");
    assert_eq!(world.audit_kinds(&request).await, ["requested", "refused", "refused"]);
    let result = engine.approve(&request.id, request.fingerprint.as_hex(), &bob(), &world.roster()).await.unwrap();
    assert!(matches!(result, ApproveResult::Approved { .. }), "{result:?}");
}

#[tokio::test]
async fn a_replayed_pending_record_does_not_run_a_second_time() {
    let world = World::new().await;
    let engine = world.replica().await;
    let request = alice_requests(&engine).await;
    // Someone who can write to Redis keeps the sealed pending record, lets it run, then puts it back.
    let pending = raw_record(&world, &request.id).await;
    let shown = request.fingerprint.as_hex();
    let ApproveResult::Approved { request: approved, query } =
        engine.approve(&request.id, shown, &bob(), &world.roster()).await.unwrap()
    else {
        panic!("expected approval")
    };
    assert!(matches!(engine.execute(*approved, *query).await.unwrap(), ExecuteResult::Executed { .. }));
    write_raw_record(&world, &request.id, pending).await;

    let ApproveResult::Approved { request: approved, query } =
        engine.approve(&request.id, shown, &carol(), &world.roster()).await.unwrap()
    else {
        panic!("the replayed record is validly sealed, so the approval itself is counted")
    };
    match engine.execute(*approved, *query).await.unwrap() {
        ExecuteResult::Failed { reason: FailureReason::NotWhatWasRequested { detail }, alarm: true, .. } => {
            assert!(detail.contains("already ran"), "{detail}");
        }
        other => panic!("a replay must not run again: {other:?}"),
    }
    let kinds = world.audit_kinds(&request).await;
    assert_eq!(kinds.iter().filter(|k| **k == "executed").count(), 1, "{kinds:?}");
    assert!(kinds.ends_with(&["approved", "integrity_violation", "failed"]), "{kinds:?}");
}

#[tokio::test]
async fn an_operation_changed_by_someone_holding_the_seal_key_is_not_run() {
    // Defence in depth: even with the seal key (so the record passes its check) and the new fingerprint on the
    // button, the operation about to run must be the one the audit trail recorded as requested.
    let world = World::new().await;
    let engine = world.replica().await;
    let request = alice_requests(&engine).await;
    let (state, version, body) = raw_record(&world, &request.id).await;
    let mut forged: AccessRequest = serde_json::from_str(&body).unwrap();
    let text = serde_json::to_string(&forged.query).unwrap().replace("C000002", "C000003");
    forged.query = serde_json::from_str(&text).unwrap();
    forged.fingerprint = forged.query.fingerprint();
    let forged = jitgate::engine::sealed_record(&world_sealer(), &forged);
    write_raw_record(&world, &request.id, (state, version, serde_json::to_string(&forged).unwrap())).await;

    let ApproveResult::Approved { request: approved, query } =
        engine.approve(&request.id, forged.fingerprint.as_hex(), &bob(), &world.roster()).await.unwrap()
    else {
        panic!("expected the forged record to be approved")
    };
    match engine.execute(*approved, *query).await.unwrap() {
        ExecuteResult::Failed { reason: FailureReason::NotWhatWasRequested { detail }, alarm: true, .. } => {
            assert!(detail.contains("not the one recorded"), "{detail}");
        }
        other => panic!("another customer's query must not run: {other:?}"),
    }
    assert_eq!(world.audit_kinds(&request).await, ["requested", "approved", "integrity_violation", "failed"]);
}
