//! The Redis request store against a real Redis: records, expiry, exactly-once transitions under races, envelope
//! de-duplication, the per-user limit, and what happens when Redis goes away and comes back.

use jitgate_testkit as support;

use std::sync::Arc;
use std::time::Duration;

use jitgate::clock::{Clock, ManualClock};
use jitgate::ids::RequestId;
use jitgate::request::{self, AccessRequest, ApproveOutcome, RequestState, Status};
use jitgate::store::{Admission, Created, RateLimit, RequestStore, StoreError, StoreSettings, Transition};
use redis::aio::MultiplexedConnection;
use time::OffsetDateTime;
use tokio::sync::Barrier;

use support::fixtures::{approvers, pending_request, requester, roster, user, wall_clock_now};

const APPROVAL_TTL: Duration = Duration::from_secs(30 * 60);
const PENDING_GRACE: Duration = Duration::from_secs(10 * 60);
const ACTIVE_RETENTION: Duration = Duration::from_secs(2 * 24 * 60 * 60);
const FINISHED_RETENTION: Duration = Duration::from_secs(3 * 24 * 60 * 60);
/// Generous upper bound for an operation against a dead Redis; the store's own bound is a few seconds. Exceeding
/// it means the store hung, which is the failure these tests exist to catch.
const NO_HANG: Duration = Duration::from_secs(20);

/// Settings with a key prefix no other test uses, and retention times that differ from each other so a test can
/// tell which one was applied.
fn settings() -> StoreSettings {
    StoreSettings {
        key_prefix: support::unique("store"),
        pending_grace: PENDING_GRACE,
        active_retention: ACTIVE_RETENTION,
        finished_retention: FINISHED_RETENTION,
        ..StoreSettings::default()
    }
}

async fn store() -> RequestStore {
    RequestStore::connect(&support::redis_url(), settings()).await.expect("the test Redis is up")
}

/// A plain connection for looking at what the store wrote.
async fn raw_redis(url: &str) -> MultiplexedConnection {
    let client = redis::Client::open(url).expect("valid URL");
    client.get_multiplexed_async_connection().await.expect("Redis is up")
}

fn request_key(store: &RequestStore, id: &RequestId) -> String {
    format!("{}:{{{}}}:request", store.settings().key_prefix, id)
}

fn ms(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).expect("a date near now")
}

async fn pexpiretime(conn: &mut MultiplexedConnection, key: &str) -> i64 {
    redis::cmd("PEXPIRETIME").arg(key).query_async(conn).await.expect("PEXPIRETIME")
}

async fn created(store: &RequestStore, request: &AccessRequest) {
    assert_eq!(store.create(request).await.expect("create"), Created::Inserted);
}

/// What one Approve click by `approver` at `now` makes of `request`, when it is the last approval needed.
fn approved(request: &AccessRequest, approver: &str, now: OffsetDateTime) -> AccessRequest {
    let approver = user(approver);
    match request::approve(request, &approver, &roster(now, std::slice::from_ref(&approver)), now) {
        ApproveOutcome::Approved { next, .. } => next,
        other => panic!("expected the approval to complete the request, got {other:?}"),
    }
}

// ---- records --------------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_created_request_loads_back_unchanged() {
    let store = store().await;
    let request = pending_request(wall_clock_now(), 1, APPROVAL_TTL);

    created(&store, &request).await;

    assert_eq!(store.load(&request.id).await.unwrap(), Some(request));
    let never_created = RequestId::parse("JIT-000000").unwrap();
    assert_eq!(store.load(&never_created).await.unwrap(), None);
}

#[tokio::test]
async fn a_second_request_with_a_taken_id_is_refused_and_the_first_is_kept() {
    let store = store().await;
    let now = wall_clock_now();
    let first = pending_request(now, 1, APPROVAL_TTL);
    created(&store, &first).await;

    let mut second = pending_request(now + Duration::from_secs(5), 2, APPROVAL_TTL);
    second.id = first.id.clone();
    second.reason = Some("someone else's request".into());

    assert_eq!(store.create(&second).await.unwrap(), Created::IdTaken);
    assert_eq!(store.load(&first.id).await.unwrap(), Some(first));
}

#[tokio::test]
async fn a_record_that_does_not_parse_is_reported_as_corrupt() {
    let store = store().await;
    let request = pending_request(wall_clock_now(), 1, APPROVAL_TTL);
    created(&store, &request).await;
    let mut conn = raw_redis(&support::redis_url()).await;
    let _: () = redis::cmd("HSET")
        .arg(request_key(&store, &request.id))
        .arg("body")
        .arg("{not json")
        .query_async(&mut conn)
        .await
        .unwrap();

    let err = store.load(&request.id).await.expect_err("a damaged record must not load");
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    assert!(err.to_string().contains(request.id.as_str()), "{err}");
}

// ---- expiry times ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_pending_key_expires_at_the_end_of_its_approval_window_plus_the_grace() {
    let store = store().await;
    let request = pending_request(wall_clock_now(), 1, APPROVAL_TTL);
    created(&store, &request).await;

    let mut conn = raw_redis(&support::redis_url()).await;
    let expected = ms(request.expires_at + PENDING_GRACE);
    // The store writes an absolute expiry (PEXPIREAT) computed from the record, so it must match to the ms.
    assert_eq!(pexpiretime(&mut conn, &request_key(&store, &request.id)).await, expected);
}

#[tokio::test]
async fn a_finished_key_is_kept_for_the_finished_retention() {
    let store = store().await;
    let now = wall_clock_now();
    let pending = pending_request(now, 1, APPROVAL_TTL);
    created(&store, &pending).await;
    let cancelled_at = now + Duration::from_secs(42);
    let cancelled = request::cancel(&pending, &requester(), cancelled_at).unwrap();

    assert_eq!(store.transition(&pending, &cancelled).await.unwrap(), Transition::Applied);

    let mut conn = raw_redis(&support::redis_url()).await;
    let expected = ms(cancelled_at + FINISHED_RETENTION);
    assert_eq!(pexpiretime(&mut conn, &request_key(&store, &pending.id)).await, expected);
}

#[tokio::test]
async fn an_approved_key_is_kept_for_the_active_retention() {
    let store = store().await;
    let now = wall_clock_now();
    let pending = pending_request(now, 1, APPROVAL_TTL);
    created(&store, &pending).await;
    let approved_at = now + Duration::from_secs(60);
    let approved = approved(&pending, "UBOB", approved_at);

    assert_eq!(store.transition(&pending, &approved).await.unwrap(), Transition::Applied);

    let mut conn = raw_redis(&support::redis_url()).await;
    let expected = ms(approved_at + ACTIVE_RETENTION);
    assert_eq!(pexpiretime(&mut conn, &request_key(&store, &pending.id)).await, expected);
}

// ---- transitions ----------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_transition_applies_and_bumps_the_version() {
    let store = store().await;
    let now = wall_clock_now();
    let pending = pending_request(now, 1, APPROVAL_TTL);
    created(&store, &pending).await;
    let approved = approved(&pending, "UBOB", now + Duration::from_secs(10));

    assert_eq!(store.transition(&pending, &approved).await.unwrap(), Transition::Applied);

    let stored = store.load(&pending.id).await.unwrap().expect("still stored");
    assert_eq!(stored.version, 2);
    assert_eq!(stored.state(), RequestState::Approved);
    assert_eq!(stored, approved);
}

#[tokio::test]
async fn a_stale_version_conflicts_and_returns_the_current_record() {
    let store = store().await;
    let now = wall_clock_now();
    // Two approvals needed: the first one keeps the request Pending but moves it to version 2.
    let v1 = pending_request(now, 2, APPROVAL_TTL);
    created(&store, &v1).await;
    let everyone = approvers(2);
    let on_call = roster(now, &everyone);
    let ApproveOutcome::Recorded { next: v2, .. } = request::approve(&v1, &everyone[0], &on_call, now) else {
        panic!("the first of two approvals is recorded");
    };
    assert_eq!(store.transition(&v1, &v2).await.unwrap(), Transition::Applied);

    // A second approver clicked on the card as it was at version 1.
    let ApproveOutcome::Recorded { next: from_stale, .. } = request::approve(&v1, &everyone[1], &on_call, now) else {
        panic!("seen from version 1 this is again the first approval");
    };
    assert_eq!(store.transition(&v1, &from_stale).await.unwrap(), Transition::Conflict { current: Some(v2.clone()) });
    assert_eq!(store.load(&v1.id).await.unwrap(), Some(v2));
}

#[tokio::test]
async fn a_stale_state_with_the_right_version_conflicts() {
    let store = store().await;
    let now = wall_clock_now();
    let pending = pending_request(now, 1, APPROVAL_TTL);
    created(&store, &pending).await;
    let cancelled = request::cancel(&pending, &requester(), now).unwrap();
    assert_eq!(store.transition(&pending, &cancelled).await.unwrap(), Transition::Applied);

    // Same version as stored, but a state the record is not in: only the state check can refuse this.
    let claims_pending = AccessRequest { status: Status::Pending, ..cancelled.clone() };
    let expired = request::expire(&claims_pending, claims_pending.expires_at).expect("expirable by its own account");

    assert_eq!(
        store.transition(&claims_pending, &expired).await.unwrap(),
        Transition::Conflict { current: Some(cancelled.clone()) }
    );
    assert_eq!(store.load(&pending.id).await.unwrap(), Some(cancelled));
}

#[tokio::test]
async fn a_transition_of_a_missing_record_conflicts_with_nothing() {
    let store = store().await;
    let pending = pending_request(wall_clock_now(), 1, APPROVAL_TTL);
    let cancelled = request::cancel(&pending, &requester(), wall_clock_now()).unwrap();

    assert_eq!(store.transition(&pending, &cancelled).await.unwrap(), Transition::Conflict { current: None });
    assert_eq!(store.load(&pending.id).await.unwrap(), None, "a conflict writes nothing");
}

#[tokio::test]
async fn a_next_record_that_does_not_follow_its_predecessor_is_refused() {
    let store = store().await;
    let now = wall_clock_now();
    let pending = pending_request(now, 1, APPROVAL_TTL);
    created(&store, &pending).await;
    let cancelled = request::cancel(&pending, &requester(), now).unwrap();

    let skips_a_version = AccessRequest { version: pending.version + 2, ..cancelled.clone() };
    let err = store.transition(&pending, &skips_a_version).await.expect_err("not what the state machine makes");
    assert!(matches!(err, StoreError::InvalidTransition { .. }), "{err:?}");

    let other_request = AccessRequest { id: RequestId::generate(), ..cancelled };
    let err = store.transition(&pending, &other_request).await.expect_err("a different request");
    assert!(matches!(err, StoreError::InvalidTransition { .. }), "{err:?}");

    assert_eq!(store.load(&pending.id).await.unwrap(), Some(pending));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_two_concurrent_approvals_land_exactly_once() {
    const CLICKS: usize = 32;
    let store = store().await;
    let now = wall_clock_now();
    let pending = pending_request(now, 1, APPROVAL_TTL);
    created(&store, &pending).await;
    let everyone = approvers(CLICKS);
    let on_call = Arc::new(roster(now, &everyone));
    // Every click loads the card before any of them writes, so all race from the same version.
    let all_loaded = Arc::new(Barrier::new(CLICKS));

    let clicks: Vec<_> = everyone
        .into_iter()
        .map(|approver| {
            let (store, on_call, all_loaded, id) =
                (store.clone(), on_call.clone(), all_loaded.clone(), pending.id.clone());
            tokio::spawn(async move {
                let seen = store.load(&id).await.unwrap().expect("the request exists");
                all_loaded.wait().await;
                let ApproveOutcome::Approved { next, .. } = request::approve(&seen, &approver, &on_call, now) else {
                    panic!("{approver} may approve a pending request");
                };
                let outcome = store.transition(&seen, &next).await.unwrap();
                (next, outcome)
            })
        })
        .collect();

    let mut winners = Vec::new();
    let mut conflicts = Vec::new();
    for click in clicks {
        match click.await.unwrap() {
            (next, Transition::Applied) => winners.push(next),
            (_, Transition::Conflict { current }) => conflicts.push(current),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one approval lands");
    assert_eq!(conflicts.len(), CLICKS - 1);
    let winner = winners.remove(0);
    assert!(conflicts.iter().all(|current| current.as_ref() == Some(&winner)), "every loser sees the winner");
    assert_eq!(store.load(&pending.id).await.unwrap(), Some(winner));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn approval_racing_expiry_has_exactly_one_winner_every_time() {
    const ROUNDS: usize = 40;
    let store = store().await;
    let mut approvals_won = 0;
    for round in 0..ROUNDS {
        let pending = pending_request(wall_clock_now(), 1, APPROVAL_TTL);
        created(&store, &pending).await;
        // The approver clicks in the last millisecond of the window; the sweeper runs as it closes.
        let click_at = pending.expires_at - Duration::from_millis(1);
        let approve = approved(&pending, "UBOB", click_at);
        let expire = request::expire(&pending, pending.expires_at).expect("the window has closed");
        let start = Arc::new(Barrier::new(2));

        let race = |next: AccessRequest| {
            let (store, start, from) = (store.clone(), start.clone(), pending.clone());
            tokio::spawn(async move {
                start.wait().await;
                store.transition(&from, &next).await.unwrap()
            })
        };
        // The task spawned last tends to pass the barrier first, so alternate which side is spawned last.
        let (approving, expiring) = if round % 2 == 0 {
            let approving = race(approve.clone());
            (approving, race(expire.clone()))
        } else {
            let expiring = race(expire.clone());
            (race(approve.clone()), expiring)
        };
        let (approve_outcome, expire_outcome) = (approving.await.unwrap(), expiring.await.unwrap());

        let winner = match (&approve_outcome, &expire_outcome) {
            (Transition::Applied, Transition::Conflict { current }) => {
                assert_eq!(current.as_ref(), Some(&approve));
                approvals_won += 1;
                approve
            }
            (Transition::Conflict { current }, Transition::Applied) => {
                assert_eq!(current.as_ref(), Some(&expire));
                expire
            }
            other => panic!("exactly one of approve and expire must land, got {other:?}"),
        };
        assert_eq!(store.load(&pending.id).await.unwrap(), Some(winner));
        assert!(
            !store.due_for_expiry(pending.expires_at, 1000).await.unwrap().contains(&pending.id),
            "a request that left Pending is no longer due for expiry"
        );
    }
    // Not asserted: which side wins is up to the scheduler. Printed to show the race runs both ways (with the
    // alternating spawn order each side wins about half the rounds).
    println!("approval won {approvals_won} of {ROUNDS} rounds");
}

// ---- expiry sweep ---------------------------------------------------------------------------------------------

/// One pass of the sweeper as the engine runs it: the index names candidates, the record decides.
async fn sweep(store: &RequestStore, now: OffsetDateTime) -> Vec<AccessRequest> {
    let mut expired = Vec::new();
    for id in store.due_for_expiry(now, 100).await.unwrap() {
        let Some(current) = store.load(&id).await.unwrap() else {
            store.forget_pending(&id).await.unwrap();
            continue;
        };
        let Some(next) = request::expire(&current, now) else {
            // Left Pending some other way: the index entry is stale.
            if current.state() != RequestState::Pending {
                store.forget_pending(&id).await.unwrap();
            }
            continue;
        };
        if store.transition(&current, &next).await.unwrap() == Transition::Applied {
            expired.push(next);
        }
    }
    expired
}

#[tokio::test]
async fn a_request_past_its_window_is_swept_to_expired_exactly_once() {
    let store = store().await;
    let clock = ManualClock::new(wall_clock_now());
    let request = pending_request(clock.now(), 1, Duration::from_secs(5 * 60));
    created(&store, &request).await;

    clock.advance(time::Duration::minutes(4));
    assert!(!store.due_for_expiry(clock.now(), 100).await.unwrap().contains(&request.id), "not due yet");
    assert!(sweep(&store, clock.now()).await.is_empty());

    clock.advance(time::Duration::minutes(2));
    assert_eq!(store.due_for_expiry(clock.now(), 100).await.unwrap(), vec![request.id.clone()]);
    let expired = sweep(&store, clock.now()).await;
    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0].status, Status::Expired { at: clock.now() });
    assert_eq!(store.load(&request.id).await.unwrap().as_ref(), Some(&expired[0]));

    // A second sweeper (or the next pass) finds nothing left to do.
    assert!(sweep(&store, clock.now()).await.is_empty());
    assert_eq!(store.due_for_expiry(clock.now(), 100).await.unwrap(), vec![]);
    assert_eq!(store.load(&request.id).await.unwrap().as_ref(), Some(&expired[0]));
}

#[tokio::test]
async fn due_for_expiry_lists_earliest_first_and_honours_the_limit() {
    let store = store().await;
    let now = wall_clock_now();
    let late = pending_request(now, 1, Duration::from_secs(20 * 60));
    let early = pending_request(now, 1, Duration::from_secs(10 * 60));
    let later_still = pending_request(now, 1, Duration::from_secs(60 * 60));
    for request in [&late, &early, &later_still] {
        created(&store, request).await;
    }
    let after_both = now + Duration::from_secs(30 * 60);

    assert_eq!(store.due_for_expiry(after_both, 100).await.unwrap(), vec![early.id.clone(), late.id.clone()]);
    assert_eq!(store.due_for_expiry(after_both, 1).await.unwrap(), vec![early.id]);
    assert_eq!(store.due_for_expiry(after_both, 0).await.unwrap(), vec![]);
}

#[tokio::test]
async fn an_index_entry_whose_record_is_gone_is_dropped_by_the_sweep() {
    let store = store().await;
    let now = wall_clock_now();
    let request = pending_request(now, 1, Duration::from_secs(60));
    created(&store, &request).await;
    // What Redis does once the grace has passed: the record's key is gone, the index entry is not.
    let mut conn = raw_redis(&support::redis_url()).await;
    let _: i64 = redis::cmd("DEL").arg(request_key(&store, &request.id)).query_async(&mut conn).await.unwrap();

    let later = now + Duration::from_secs(120);
    assert_eq!(store.due_for_expiry(later, 100).await.unwrap(), vec![request.id.clone()]);
    assert!(sweep(&store, later).await.is_empty());
    assert_eq!(store.due_for_expiry(later, 100).await.unwrap(), vec![]);
}

// ---- envelope de-duplication ----------------------------------------------------------------------------------

#[tokio::test]
async fn an_envelope_is_handled_on_its_first_delivery_only() {
    let store = store().await;
    let envelope = "dbdd0ef3-1543-4f94-bfb4-133d0e6c1545";

    assert!(store.first_delivery(envelope, Duration::from_secs(600)).await.unwrap());
    assert!(!store.first_delivery(envelope, Duration::from_secs(600)).await.unwrap(), "Slack's retry is dropped");
    assert!(store.first_delivery("9f1c2a7e-0000-4f94-bfb4-133d0e6c1545", Duration::from_secs(600)).await.unwrap());
}

#[tokio::test]
async fn hostile_envelope_ids_stay_in_their_own_key() {
    let store = store().await;
    let ttl = Duration::from_secs(600);
    // Ids that would move the hash tag or look like another key, and the plain ids they resemble.
    let ids = ["x}:{y", "x", "x}", "x{", "#x", "x y", "a\nb", "*"];
    for id in ids {
        assert!(store.first_delivery(id, ttl).await.unwrap(), "{id:?} is new");
    }
    for id in ids {
        assert!(!store.first_delivery(id, ttl).await.unwrap(), "{id:?} was seen");
    }

    let mut conn = raw_redis(&support::redis_url()).await;
    let pattern = format!("{}:envelope:*", store.settings().key_prefix);
    let keys: Vec<String> = redis::cmd("KEYS").arg(&pattern).query_async(&mut conn).await.unwrap();
    assert_eq!(keys.len(), ids.len(), "{keys:?}");
    for key in &keys {
        assert_eq!((key.matches('{').count(), key.matches('}').count()), (1, 1), "{key:?}");
        assert!(key.ends_with('}'), "{key:?}");
        let pttl: i64 = redis::cmd("PTTL").arg(key).query_async(&mut conn).await.unwrap();
        // PTTL counts down in real time from 600 000 ms; this test takes well under a minute.
        assert!((540_000..=600_000).contains(&pttl), "{key:?} has PTTL {pttl}");
    }

    let err = store.first_delivery("", ttl).await.expect_err("an empty id");
    assert!(matches!(err, StoreError::InvalidEnvelopeId(_)), "{err:?}");
    let err = store.first_delivery(&"e".repeat(10_000), ttl).await.expect_err("an absurdly long id");
    assert!(matches!(err, StoreError::InvalidEnvelopeId(_)), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_thirty_two_concurrent_deliveries_exactly_one_is_first() {
    let store = store().await;
    let start = Arc::new(Barrier::new(32));
    let deliveries: Vec<_> = (0..32)
        .map(|_| {
            let (store, start) = (store.clone(), start.clone());
            tokio::spawn(async move {
                start.wait().await;
                store.first_delivery("5e1b1a4c-7d4e-4b8a-9a55-0d1f00c0ffee", Duration::from_secs(600)).await.unwrap()
            })
        })
        .collect();

    let mut firsts = 0;
    for delivery in deliveries {
        if delivery.await.unwrap() {
            firsts += 1;
        }
    }
    assert_eq!(firsts, 1);
}

// ---- per-user limit -------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_user_over_the_limit_is_told_when_to_retry_and_admitted_once_the_window_moves() {
    let store = store().await;
    let limit = RateLimit { max: 3, window: Duration::from_secs(60) };
    let alice = user("UALICE");
    let clock = ManualClock::new(wall_clock_now());
    let first_at = clock.now();

    for _ in 0..3 {
        assert_eq!(store.admit_new_request(&alice, limit, clock.now()).await.unwrap(), Admission::Admitted);
        clock.advance(time::Duration::seconds(1));
    }
    // Three seconds after the first admission: it leaves the window 57 s from now.
    assert_eq!(
        store.admit_new_request(&alice, limit, clock.now()).await.unwrap(),
        Admission::Limited { retry_after: Duration::from_secs(57) }
    );
    assert_eq!(
        store.admit_new_request(&user("UBOB"), limit, clock.now()).await.unwrap(),
        Admission::Admitted,
        "the limit is per user"
    );

    clock.set(first_at + Duration::from_secs(60) - Duration::from_millis(1));
    assert_eq!(
        store.admit_new_request(&alice, limit, clock.now()).await.unwrap(),
        Admission::Limited { retry_after: Duration::from_millis(1) },
        "refusals are not counted, so the wait is still measured from the first admission"
    );

    clock.set(first_at + Duration::from_secs(60));
    assert_eq!(store.admit_new_request(&alice, limit, clock.now()).await.unwrap(), Admission::Admitted);
    // Full again: the second admission (at +1 s) is now the oldest in the window.
    assert_eq!(
        store.admit_new_request(&alice, limit, clock.now()).await.unwrap(),
        Admission::Limited { retry_after: Duration::from_secs(1) }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_cannot_slip_past_the_limit_together() {
    let store = store().await;
    let limit = RateLimit { max: 5, window: Duration::from_secs(60) };
    let now = wall_clock_now();
    let admitted = admitted_of_racing(&store, 20, limit, now).await;
    assert_eq!(admitted, 5, "all in the same millisecond, and still only `max` admitted");
}

/// Starts `attempts` admissions of UALICE's new requests at the same moment (a barrier); returns how many were
/// admitted.
pub(crate) async fn admitted_of_racing(
    store: &RequestStore,
    attempts: usize,
    limit: RateLimit,
    now: time::OffsetDateTime,
) -> usize {
    let start = Arc::new(Barrier::new(attempts));
    let attempts: Vec<_> = (0..attempts)
        .map(|_| {
            let (store, start) = (store.clone(), start.clone());
            tokio::spawn(async move {
                start.wait().await;
                store.admit_new_request(&user("UALICE"), limit, now).await.unwrap()
            })
        })
        .collect();
    let mut admitted = 0;
    for attempt in attempts {
        if attempt.await.unwrap() == Admission::Admitted {
            admitted += 1;
        }
    }
    admitted
}

// ---- Redis unavailable ----------------------------------------------------------------------------------------

/// A loopback port nothing listens on (just released by the OS after binding it).
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("bound address").port()
}

#[tokio::test]
async fn connecting_to_a_closed_port_fails_as_unavailable_without_leaking_the_password() {
    let port = free_port();
    let url = format!("redis://:hunter2-secret@127.0.0.1:{port}/0");

    let result = tokio::time::timeout(NO_HANG, RequestStore::connect(&url, settings())).await.expect("no hang");

    let err = result.expect_err("nothing listens there");
    assert!(err.is_unavailable(), "{err:?}");
    let message = err.to_string();
    assert!(message.starts_with(&format!("Redis at 127.0.0.1:{port} is unreachable: ")), "{message}");
    assert!(!message.contains("hunter2"), "{message}");
    assert!(!format!("{err:?}").contains("hunter2"), "{err:?}");
}

#[tokio::test]
async fn a_url_that_does_not_parse_is_refused_without_echoing_it() {
    let err = RequestStore::connect("http://:hunter2-secret@nowhere", settings()).await.expect_err("not redis://");
    assert!(matches!(err, StoreError::InvalidUrl(_)), "{err:?}");
    assert!(!err.to_string().contains("hunter2"), "{err}");
}

/// A `redis-server` this test owns, on a fixed port so it can be stopped and started again at the same address.
struct OwnRedis {
    port: u16,
    dir: tempfile::TempDir,
    process: Option<tokio::process::Child>,
}

impl OwnRedis {
    async fn start() -> OwnRedis {
        let mut redis = OwnRedis { port: free_port(), dir: tempfile::tempdir().expect("temp dir"), process: None };
        redis.restart().await;
        redis
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    async fn restart(&mut self) {
        use tokio::io::AsyncBufReadExt as _;
        let mut child = tokio::process::Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("redis-server is on PATH");
        // Redis logs "Ready to accept connections" once it listens: wait for that line, not for a guessed time.
        let mut log = tokio::io::BufReader::new(child.stdout.take().expect("piped stdout")).lines();
        let ready = tokio::time::timeout(NO_HANG, async {
            while let Ok(Some(line)) = log.next_line().await {
                if line.contains("Ready to accept connections") {
                    return true;
                }
            }
            false
        });
        assert!(matches!(ready.await, Ok(true)), "redis-server did not start on port {}", self.port);
        // Keep reading its log so a full pipe never blocks it.
        tokio::spawn(async move { while let Ok(Some(_)) = log.next_line().await {} });
        self.process = Some(child);
    }

    /// `SHUTDOWN NOSAVE`, then wait for the process to exit.
    async fn shut_down(&mut self) {
        let mut conn = raw_redis(&self.url()).await;
        // The server closes the connection instead of answering: an error here is the expected outcome.
        let _ = redis::cmd("SHUTDOWN").arg("NOSAVE").query_async::<()>(&mut conn).await;
        if let Some(mut process) = self.process.take() {
            process.wait().await.expect("redis-server exits");
        }
    }
}

#[tokio::test]
async fn operations_fail_while_redis_is_down_and_the_same_store_recovers_when_it_returns() {
    let mut redis = OwnRedis::start().await;
    let store = RequestStore::connect(&redis.url(), settings()).await.expect("connects");
    let before = pending_request(wall_clock_now(), 1, APPROVAL_TTL);
    created(&store, &before).await;

    redis.shut_down().await;

    // Every kind of operation fails as Unavailable, in bounded time; the first one meets the dropped connection,
    // the later ones the failed reconnects.
    let cancelled = request::cancel(&before, &requester(), wall_clock_now()).unwrap();
    for round in 0..2 {
        let outcomes: Vec<(&str, Result<(), StoreError>)> = vec![
            ("load", no_hang(store.load(&before.id)).await.map(|_| ())),
            ("create", no_hang(store.create(&pending_request(wall_clock_now(), 1, APPROVAL_TTL))).await.map(|_| ())),
            ("transition", no_hang(store.transition(&before, &cancelled)).await.map(|_| ())),
            ("first_delivery", no_hang(store.first_delivery("env-1", Duration::from_secs(60))).await.map(|_| ())),
            ("ping", no_hang(store.ping()).await),
        ];
        for (operation, outcome) in outcomes {
            let err = outcome.expect_err("Redis is down");
            assert!(err.is_unavailable(), "round {round}, {operation}: {err:?}");
            let port = redis.port;
            assert!(err.to_string().starts_with(&format!("Redis at 127.0.0.1:{port} is unreachable")), "{err}");
        }
    }

    redis.restart().await;

    // The store reconnects by itself; the first calls may still meet a reconnect attempt that began while Redis
    // was down, so poll until it answers (bounded) instead of sleeping for a guessed time.
    let deadline = tokio::time::Instant::now() + NO_HANG;
    while let Err(err) = no_hang(store.ping()).await {
        assert!(err.is_unavailable(), "{err:?}");
        assert!(tokio::time::Instant::now() < deadline, "the store did not reconnect: {err}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Redis ran without persistence, so the old record is gone; the store works for new ones.
    assert_eq!(store.load(&before.id).await.unwrap(), None);
    let after = pending_request(wall_clock_now(), 1, APPROVAL_TTL);
    created(&store, &after).await;
    assert_eq!(store.load(&after.id).await.unwrap(), Some(after));

    redis.shut_down().await;
}

/// Awaits a store call, failing the test if it does not finish within [`NO_HANG`].
async fn no_hang<T>(operation: impl std::future::Future<Output = Result<T, StoreError>>) -> Result<T, StoreError> {
    tokio::time::timeout(NO_HANG, operation).await.expect("the store must fail fast, not hang, when Redis is down")
}

/// The sweeper reads the escalation index up to now: only requests of escalating runbooks whose next level is due
/// are listed, each moved on a level at a time and never back.
#[tokio::test]
async fn only_requests_due_to_escalate_are_listed_for_it_one_level_at_a_time() {
    let store = store().await;
    let now = wall_clock_now();
    let plain = pending_request(now, 1, Duration::from_secs(60 * 60));
    let mut escalating = pending_request(now, 1, Duration::from_secs(60 * 60));
    escalating.policy.escalation =
        Some(jitgate::runbook::Escalation { after: Duration::from_secs(10 * 60), max_level: 3 });
    for request in [&plain, &escalating] {
        assert_eq!(store.create(request).await.expect("created"), Created::Inserted);
    }
    assert!(store.due_for_escalation(now, 10).await.expect("read").is_empty(), "nothing is due yet");
    let level_two = now + time::Duration::minutes(10);
    let due = store.due_for_escalation(level_two, 10).await.expect("read");
    assert_eq!(due, std::slice::from_ref(&escalating.id), "a runbook without escalation is never listed");
    // Widened to level 2: listed again at level 3's time, and never moved back to an earlier one.
    store.list_for_escalation(&escalating.id, now + time::Duration::minutes(20)).await.expect("listed");
    store.list_for_escalation(&escalating.id, level_two).await.expect("listed");
    assert!(store.due_for_escalation(level_two, 10).await.expect("read").is_empty());
    let level_three = now + time::Duration::minutes(20);
    assert_eq!(store.due_for_escalation(level_three, 10).await.expect("read"), std::slice::from_ref(&escalating.id));
    store.forget_escalation(&escalating.id).await.expect("forgotten");
    assert!(store.due_for_escalation(now + time::Duration::hours(2), 10).await.expect("read").is_empty());
}

/// The sweeper reads the reminder index up to now: only requests past half their window are listed, however many
/// are pending, and one reminded (or finished) is dropped from it. The pending count is one `ZCARD`.
#[tokio::test]
async fn only_requests_due_a_reminder_are_listed_for_it() {
    let store = store().await;
    let now = wall_clock_now();
    let soon = pending_request(now, 1, Duration::from_secs(10 * 60));
    let later = pending_request(now, 1, Duration::from_secs(60 * 60));
    for request in [&soon, &later] {
        assert_eq!(store.create(request).await.expect("created"), Created::Inserted);
    }
    assert!(store.due_for_reminder(now, 10).await.expect("read").is_empty(), "nothing is half-way yet");
    let six_minutes_on = now + time::Duration::minutes(6);
    assert_eq!(store.due_for_reminder(six_minutes_on, 10).await.expect("read"), std::slice::from_ref(&soon.id));
    store.forget_reminder(&soon.id).await.expect("forgotten");
    assert!(store.due_for_reminder(six_minutes_on, 10).await.expect("read").is_empty());
    let forty_minutes_on = now + time::Duration::minutes(40);
    assert_eq!(store.due_for_reminder(forty_minutes_on, 10).await.expect("read"), std::slice::from_ref(&later.id));
    assert_eq!(store.pending_count().await.expect("counted"), 2);
}
