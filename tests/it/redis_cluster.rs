//! jitgate on a real Redis Cluster of 3 masters with 1 replica each (`redis.cluster = true`, `REDIS_URL` the seed
//! list). The story, racing approvals, expiry and the per-user limit run on the cluster the test command starts
//! (`JITGATE_TEST_REDIS_CLUSTER_URL`); failovers run on a private cluster each, since they change who serves what.
//! A cluster answers `CROSSSLOT` to a script whose keys span slots and `MOVED` to a command sent to the wrong node,
//! so every operation here passing also shows the keys and the routing are right.

use jitgate_testkit as support;

use std::sync::Arc;
use std::time::Duration;

use jitgate::clock::{Clock, ManualClock};
use jitgate::messages::APPROVE_ACTION;
use jitgate::request::{self, ApproveOutcome, Status};
use jitgate::store::{Admission, Created, RateLimit, RequestStore, StoreSettings, Transition};
use redis::cluster_async::ClusterConnection;
use support::fixtures::{approvers, pending_request, roster, user, wall_clock_now};
use support::harness::*;
use support::redis_servers::{RedisCluster, shared_cluster_url};
use tokio::sync::Barrier;

const ORDERS_OF_C2: &str =
    "orders-by-customer customer_id=C000002 from=2026-01-02 until=2026-01-03 --reason \"INC-812 refund check\"";

fn settings() -> StoreSettings {
    StoreSettings { key_prefix: support::unique("cluster"), cluster: true, ..StoreSettings::default() }
}

async fn cluster_store() -> RequestStore {
    RequestStore::connect(&shared_cluster_url(), settings()).await.expect("the test cluster is up")
}

/// A plain cluster connection, for looking at (or, playing a failover, changing) what jitgate wrote.
async fn raw_cluster(url: &str) -> ClusterConnection {
    let client = redis::cluster::ClusterClient::new(url.split(',').collect::<Vec<_>>()).expect("seed list");
    client.get_async_connection().await.expect("the cluster is up")
}

fn request_key(prefix: &str, id: &impl std::fmt::Display) -> String {
    format!("{prefix}:{{{id}}}:request")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_whole_story_runs_on_a_cluster_with_two_replicas_and_a_redelivered_envelope() {
    let options =
        Options { replicas: 2, redis_url: Some(shared_cluster_url()), redis_cluster: true, ..Options::default() };
    let h = Harness::start_with(options).await;
    let card = h.request(ALICE, ORDERS_OF_C2).await;
    assert!(card.message.all_text().contains("<@U0BOB>"), "the roster (cached in the cluster) names the on-call");
    let click =
        h.slack.send_block_action(BOB, ONCALL, &card.ts, APPROVE_ACTION, &card.button_value(APPROVE_ACTION)).await;
    h.slack.send_duplicate(&click);
    click.wait_for_acks(2).await;
    h.card_update_containing(&card, "ran:").await;
    let rows = h.thread_reply(&card).await;
    assert!(rows.all_text().contains("*18 rows* from *orders-by-customer*"), "{}", rows.all_text());
    h.dm_for(ALICE).await;
    assert_eq!(h.audit_kinds(&card.id).await, ["requested", "approved", "executed"]);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_two_concurrent_approvals_land_exactly_once_on_a_cluster() {
    const CLICKS: usize = 32;
    let store = cluster_store().await;
    let now = wall_clock_now();
    let pending = pending_request(now, 1, Duration::from_secs(600));
    assert_eq!(store.create(&pending).await.unwrap(), Created::Inserted);
    let everyone = approvers(CLICKS);
    let on_call = Arc::new(roster(now, &everyone));
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
                    panic!("{approver} may approve");
                };
                store.transition(&seen, &next).await.unwrap()
            })
        })
        .collect();
    let mut applied = 0;
    for click in clicks {
        if click.await.unwrap() == Transition::Applied {
            applied += 1;
        }
    }
    assert_eq!(applied, 1, "exactly one approval lands");
    assert!(matches!(store.load(&pending.id).await.unwrap().unwrap().status, Status::Approved { .. }));
}

#[tokio::test]
async fn a_request_expires_once_and_its_key_carries_the_pending_ttl_on_a_cluster() {
    let store = cluster_store().await;
    let clock = ManualClock::new(wall_clock_now());
    let request = pending_request(clock.now(), 1, Duration::from_secs(5 * 60));
    assert_eq!(store.create(&request).await.unwrap(), Created::Inserted);
    let mut raw = raw_cluster(&shared_cluster_url()).await;
    let key = request_key(&store.settings().key_prefix, &request.id);
    let expire_at: i64 = redis::cmd("PEXPIRETIME").arg(&key).query_async(&mut raw).await.unwrap();
    let grace = i64::try_from(store.settings().pending_grace.as_millis()).unwrap();
    assert_eq!(expire_at, request.expires_at.unix_timestamp() * 1000 + grace, "window end plus the grace");

    clock.advance(time::Duration::minutes(6));
    let due = store.due_for_expiry(clock.now(), 100).await.unwrap();
    assert_eq!(due, vec![request.id.clone()]);
    let current = store.load(&request.id).await.unwrap().expect("still there during the grace");
    let expired = request::expire(&current, clock.now()).expect("past its window");
    assert_eq!(store.transition(&current, &expired).await.unwrap(), Transition::Applied);
    assert!(matches!(store.transition(&current, &expired).await.unwrap(), Transition::Conflict { .. }));
    assert_eq!(store.due_for_expiry(clock.now(), 100).await.unwrap(), vec![]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_per_user_limit_holds_under_concurrency_on_a_cluster() {
    let store = cluster_store().await;
    let limit = RateLimit { max: 5, window: Duration::from_secs(60) };
    let now = wall_clock_now();
    assert_eq!(crate::store::admitted_of_racing(&store, 20, limit, now).await, 5);
    assert_eq!(store.admit_new_request(&user("UBOB"), limit, now).await.unwrap(), Admission::Admitted);
}

/// The bot on a private cluster, a request pending on it, and the port of the master holding that request.
async fn pending_on_a_private_cluster(cluster: &RedisCluster) -> (Harness, Card, u16) {
    let options = Options { redis_url: Some(cluster.url().to_owned()), redis_cluster: true, ..Options::default() };
    let h = Harness::start_with(options).await;
    let card = h.request(ALICE, ORDERS_OF_C2).await;
    let master = cluster.master_for(&request_key(&h.key_prefix, &card.id));
    // What the tests below fail over is a master whose replica has the record: a write not yet replicated is
    // the case of `a_write_lost_in_a_failover_fails_closed_and_nothing_runs_twice`.
    cluster.wait_replicated(master, cluster.replica_of(master));
    (h, card, master)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_manual_failover_mid_flow_loses_nothing_and_the_request_runs_once() {
    let cluster = RedisCluster::start();
    let (h, card, master) = pending_on_a_private_cluster(&cluster).await;
    cluster.failover(cluster.replica_of(master));

    h.click(BOB, &card, APPROVE_ACTION).await;
    h.card_update_containing(&card, "ran:").await;
    h.thread_reply(&card).await;
    h.dm_for(ALICE).await;
    assert_eq!(h.audit_kinds(&card.id).await, ["requested", "approved", "executed"]);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_master_mid_flow_is_replaced_and_the_request_runs_once() {
    let cluster = RedisCluster::start();
    let (h, card, master) = pending_on_a_private_cluster(&cluster).await;
    cluster.kill_master(master);

    h.click(BOB, &card, APPROVE_ACTION).await;
    h.card_update_containing(&card, "ran:").await;
    h.thread_reply(&card).await;
    h.dm_for(ALICE).await;
    assert_eq!(h.audit_kinds(&card.id).await, ["requested", "approved", "executed"]);
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_write_lost_in_a_failover_fails_closed_and_nothing_runs_twice() {
    // Asynchronous replication can lose the last writes when a master dies: the promoted replica then holds an
    // older version of the record. Played here exactly: the pending record is kept, the request is approved and
    // runs, the master is killed, and the new master is given back the pending record, as if the approval and the
    // run had never reached the replica. A second approver's click must not run the query again.
    let cluster = RedisCluster::start();
    let (h, card, master) = pending_on_a_private_cluster(&cluster).await;
    let key = request_key(&h.key_prefix, &card.id);
    let mut raw = raw_cluster(cluster.url()).await;
    let pending: Vec<u8> = redis::cmd("DUMP").arg(&key).query_async(&mut raw).await.unwrap();

    h.click(BOB, &card, APPROVE_ACTION).await;
    h.card_update_containing(&card, "ran:").await;
    h.thread_reply(&card).await;
    h.dm_for(ALICE).await;
    cluster.kill_master(master);
    let mut raw = raw_cluster(cluster.url()).await;
    let () = redis::cmd("RESTORE").arg(&key).arg(0).arg(pending).arg("REPLACE").query_async(&mut raw).await.unwrap();

    h.click(CAROL, &card, APPROVE_ACTION).await;
    // Fails closed and says so: nothing run, operators alerted (the rollback looks like an edit made outside jitgate).
    let refused = h.card_update_containing(&card, "Failed").await;
    assert!(refused.all_text().contains("Nothing was run"), "{}", refused.all_text());
    let reply = h.thread_reply(&card).await;
    assert!(reply.all_text().contains("Nothing was run; operators have been alerted"), "{}", reply.all_text());
    let dm = h.dm_for(ALICE).await;
    assert!(dm.all_text().contains("Nothing was run"), "{}", dm.all_text());
    // The security alert in the channel says the same; the DM came last, so it has been posted.
    h.slack.discard_unread();
    let kinds = h.audit_kinds(&card.id).await;
    assert_eq!(kinds.iter().filter(|kind| **kind == "executed").count(), 1, "{kinds:?}");
    assert!(kinds.ends_with(&["integrity_violation", "failed"]), "{kinds:?}");
    h.shutdown().await;
}
