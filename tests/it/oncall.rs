//! Who may approve: rosters built from the PagerDuty emulator, a real Redis cache and a fixed Slack directory,
//! with a manual clock. Each test tells one situation an approver or an operator meets.

use jitgate_testkit as support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use jitgate::clock::{Clock, ManualClock};
use jitgate::ids::SlackUserId;
use jitgate::oncall::{
    PagerDutyClient, PagerDutyError, PagerDutySettings, RosterCache, RosterError, RosterOrigin, RosterProvider,
    RosterReport, RosterSettings, SlackDirectory, UnmappedOnCall,
};
use jitgate::request::RosterSource;
use jitgate::runbook::{ApprovalPolicy, ApproverSources};
use jitgate::seal::{SealPurpose, Sealer};
use jitgate_emulators::pagerduty::{FakePagerDuty, OnCall};
use secrecy::SecretString;
use support::pauses::RecordedPauses;
use time::OffsetDateTime;
use time::macros::datetime;

const NOW: OffsetDateTime = datetime!(2026-11-28 12:00 UTC);
const SHIFT_START: OffsetDateTime = datetime!(2026-11-28 08:00 UTC);
const SHIFT_END: OffsetDateTime = datetime!(2026-11-29 08:00 UTC);

fn slack(id: &str) -> SlackUserId {
    SlackUserId::parse(id).expect("a Slack user id")
}

/// Slack accounts by (lower-case) email, as `users.lookupByEmail` would find them.
#[derive(Debug, Default)]
struct FixedDirectory {
    accounts: BTreeMap<String, SlackUserId>,
    lookups: AtomicUsize,
    down: AtomicBool,
}

#[async_trait]
impl SlackDirectory for FixedDirectory {
    async fn user_by_email(&self, email: &str) -> anyhow::Result<Option<SlackUserId>> {
        self.lookups.fetch_add(1, Ordering::Relaxed);
        anyhow::ensure!(!self.down.load(Ordering::Relaxed), "slack.com is unreachable");
        // Exact match on purpose: the provider promises lower-cased, trimmed emails.
        Ok(self.accounts.get(email).cloned())
    }
}

/// The Orders team: Tim is on call (primary, level 1) today, Ana is the level-2 backup, Bo takes over tomorrow,
/// and Zed (a contractor without Slack) shares the primary shift.
struct World {
    pd: FakePagerDuty,
    clock: Arc<ManualClock>,
    directory: Arc<FixedDirectory>,
    pauses: Arc<RecordedPauses>,
    prefix: String,
}

async fn world() -> World {
    let pd = FakePagerDuty::start().await;
    pd.set_now(NOW);
    pd.add_user("PTIM001", "Tim Wright", "tim@example.com");
    // PagerDuty keeps whatever case people typed; Slack has it lower-cased.
    pd.add_user("PANA001", "Ana Lima", "Ana.Lima@Example.com");
    pd.add_user("PBOB001", "Bo Berg", "bo@example.com");
    pd.add_user("PZED001", "Zed Kowalski", "zed@contractor.example");
    pd.add_schedule("PORDERS1", "Orders primary");
    pd.add_schedule("PORDERS2", "Orders secondary");
    pd.add_escalation_policy("PEPORD1", "Orders escalation");
    pd.add_oncall(OnCall::new("PTIM001", "PEPORD1", 1).via_schedule("PORDERS1").between(SHIFT_START, SHIFT_END));
    pd.add_oncall(OnCall::new("PANA001", "PEPORD1", 2).via_schedule("PORDERS2").between(SHIFT_START, SHIFT_END));
    let tomorrow = SHIFT_END + time::Duration::days(1);
    pd.add_oncall(OnCall::new("PBOB001", "PEPORD1", 1).via_schedule("PORDERS1").between(SHIFT_END, tomorrow));

    let accounts = [
        ("tim@example.com", "U0TIM"),
        ("ana.lima@example.com", "U0ANA"),
        ("bo@example.com", "U0BOB"),
        ("lead@example.com", "U0LEAD"),
    ];
    let directory = FixedDirectory {
        accounts: accounts.iter().map(|(email, id)| (email.to_string(), slack(id))).collect(),
        ..FixedDirectory::default()
    };
    World {
        pd,
        clock: ManualClock::new(NOW),
        directory: Arc::new(directory),
        pauses: Arc::new(RecordedPauses::default()),
        prefix: support::unique("oncall"),
    }
}

impl World {
    fn client_with(&self, token: &str, settings: PagerDutySettings) -> PagerDutyClient {
        PagerDutyClient::new(&self.pd.base_url(), SecretString::from(token), settings)
            .expect("a PagerDuty client")
            .with_pause(self.pauses.clone())
    }

    fn client(&self) -> PagerDutyClient {
        self.client_with(self.pd.api_key(), PagerDutySettings::default())
    }

    fn cache(&self) -> RosterCache {
        RosterCache::new(&support::redis_url(), &self.prefix).expect("a roster cache")
    }

    fn provider_with(
        &self,
        client: Option<PagerDutyClient>,
        cache: RosterCache,
        settings: RosterSettings,
    ) -> RosterProvider {
        RosterProvider::new(client, self.directory.clone(), cache, self.clock.clone(), settings).expect("a provider")
    }

    fn provider(&self) -> RosterProvider {
        self.provider_with(Some(self.client()), self.cache(), RosterSettings::default())
    }

    fn oncall_requests(&self) -> usize {
        self.pd.requests_to("/oncalls").len()
    }
}

fn policy(schedules: &[&str], escalation_policies: &[&str], named: &[&str]) -> ApprovalPolicy {
    let ids = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    ApprovalPolicy {
        approvers: ApproverSources {
            pagerduty_schedules: ids(schedules),
            pagerduty_escalation_policies: ids(escalation_policies),
            slack_users: named.iter().map(|id| slack(id)).collect(),
        },
        required_approvals: 1,
        require_reason: true,
        ttl: Duration::from_secs(1800),
        escalation: None,
    }
}

/// Each user on the roster with the sources that put them there.
fn who(report: &RosterReport) -> Vec<(String, Vec<RosterSource>)> {
    report
        .roster
        .entries
        .iter()
        .map(|(user, entries)| (user.as_str().to_owned(), entries.iter().map(|e| e.source.clone()).collect()))
        .collect()
}

fn schedule(id: &str) -> RosterSource {
    RosterSource::Schedule(id.to_owned())
}

fn escalation_policy(id: &str) -> RosterSource {
    RosterSource::EscalationPolicy(id.to_owned())
}

#[tokio::test]
async fn whoever_is_on_call_in_the_schedule_now_may_approve_with_the_shift_as_evidence() {
    let world = world().await;
    let report = world.provider().roster_for(&policy(&["PORDERS1"], &[], &[])).await.expect("a roster");

    assert_eq!(who(&report), [("U0TIM".to_owned(), vec![schedule("PORDERS1")])], "Bo's shift starts tomorrow");
    assert_eq!(
        report.roster.entries_for(&slack("U0TIM"))[0].evidence,
        "PagerDuty schedule PORDERS1 (Orders primary), level 1, on call 2026-11-28T08:00Z–2026-11-29T08:00Z"
    );
    assert_eq!(report.roster.as_of, NOW, "as_of is when PagerDuty was asked");
    assert_eq!(report.origin, RosterOrigin::PagerDuty);

    let requests = world.pd.requests_to("/oncalls");
    assert_eq!(requests.len(), 1);
    let asked = &requests[0];
    assert_eq!(asked.params("schedule_ids[]"), ["PORDERS1"]);
    assert!(asked.params("escalation_policy_ids[]").is_empty(), "filters combine with AND: never both at once");
    assert_eq!(asked.param("include[]"), Some("users"));
    assert_eq!(asked.param("since"), Some("2026-11-28T12:00:00Z"));
    assert_eq!(asked.param("until"), Some("2026-11-28T12:00:00Z"));
    assert_eq!(asked.accept.as_deref(), Some("application/vnd.pagerduty+json;version=2"));
    assert_eq!(asked.authorization.as_deref(), Some(&*format!("Token token={}", world.pd.api_key())));
    assert!(world.pd.requests_to("/users/PTIM001").is_empty(), "emails came with include[]=users");
}

#[tokio::test]
async fn an_escalation_policy_counts_only_levels_up_to_the_configured_maximum() {
    let world = world().await;
    let orders = policy(&[], &["PEPORD1"], &[]);

    let first_responders = world.provider().roster_for(&orders).await.expect("a roster");
    assert_eq!(who(&first_responders), [("U0TIM".to_owned(), vec![escalation_policy("PEPORD1")])]);
    assert_eq!(
        first_responders.roster.entries_for(&slack("U0TIM"))[0].evidence,
        "PagerDuty escalation policy PEPORD1 (Orders escalation), level 1, on call 2026-11-28T08:00Z–2026-11-29T08:00Z"
    );

    let settings = RosterSettings { max_escalation_level: 2, ..RosterSettings::default() };
    let with_backup = world.provider_with(Some(world.client()), world.cache(), settings);
    let report = with_backup.roster_for(&orders).await.expect("a roster");
    assert_eq!(
        who(&report),
        [
            ("U0ANA".to_owned(), vec![escalation_policy("PEPORD1")]),
            ("U0TIM".to_owned(), vec![escalation_policy("PEPORD1")]),
        ]
    );
    assert!(report.roster.entries_for(&slack("U0ANA"))[0].evidence.contains("level 2"));
}

#[tokio::test]
async fn schedule_and_escalation_policy_together_give_each_person_every_reason() {
    let world = world().await;
    let report = world.provider().roster_for(&policy(&["PORDERS1"], &["PEPORD1"], &[])).await.expect("a roster");
    assert_eq!(who(&report), [("U0TIM".to_owned(), vec![schedule("PORDERS1"), escalation_policy("PEPORD1")])]);
    let requests = world.pd.requests_to("/oncalls");
    assert_eq!(requests.len(), 2, "one query per kind of filter");
    // Both are asked at once, so in either order.
    let by_policy = requests.iter().filter(|r| !r.params("escalation_policy_ids[]").is_empty()).collect::<Vec<_>>();
    assert_eq!(by_policy.len(), 1, "{requests:?}");
    assert_eq!(by_policy[0].params("escalation_policy_ids[]"), ["PEPORD1"]);
    assert!(by_policy[0].params("schedule_ids[]").is_empty(), "filters combine with AND: never both at once");
}

#[tokio::test]
async fn every_page_of_on_calls_is_read() {
    let world = world().await;
    for n in 0..7 {
        let id = format!("PUSR00{n}");
        world.pd.add_user(&id, &format!("Engineer {n}"), &format!("eng{n}@example.com"));
        world.pd.add_oncall(OnCall::new(&id, "PEPORD1", 1).via_schedule("PORDERS1").between(SHIFT_START, SHIFT_END));
    }
    let mut directory = FixedDirectory::default();
    directory.accounts.insert("tim@example.com".into(), slack("U0TIM"));
    for n in 0..7 {
        directory.accounts.insert(format!("eng{n}@example.com"), slack(&format!("U0ENG{n}")));
    }
    let client = world.client_with(world.pd.api_key(), PagerDutySettings { page_size: 3, ..Default::default() });
    let provider =
        RosterProvider::new(Some(client), Arc::new(directory), world.cache(), world.clock.clone(), Default::default())
            .expect("a provider");

    let report = provider.roster_for(&policy(&["PORDERS1"], &[], &[])).await.expect("a roster");

    assert_eq!(report.roster.users().count(), 8, "{:?}", who(&report));
    let offsets: Vec<String> = world
        .pd
        .requests_to("/oncalls")
        .iter()
        .map(|r| format!("{}+{}", r.param("offset").unwrap_or("?"), r.param("limit").unwrap_or("?")))
        .collect();
    assert_eq!(offsets, ["0+3", "3+3", "6+3"]);
}

#[tokio::test]
async fn emails_match_case_insensitively_and_people_without_slack_are_reported_not_trusted() {
    let world = world().await;
    world.pd.add_oncall(OnCall::new("PZED001", "PEPORD1", 1).via_schedule("PORDERS2").between(SHIFT_START, SHIFT_END));

    let report = world.provider().roster_for(&policy(&["PORDERS2"], &[], &[])).await.expect("a roster");

    assert_eq!(who(&report), [("U0ANA".to_owned(), vec![schedule("PORDERS2")])], "Ana.Lima@Example.com is U0ANA");
    assert_eq!(
        report.unmapped,
        [UnmappedOnCall {
            pagerduty_user_id: "PZED001".into(),
            name: "Zed Kowalski".into(),
            email: "zed@contractor.example".into(),
            source: schedule("PORDERS2"),
            evidence: "PagerDuty schedule PORDERS2 (Orders secondary), level 1, on call \
                       2026-11-28T08:00Z–2026-11-29T08:00Z"
                .into(),
            excluded: None,
        }]
    );
}

#[tokio::test]
async fn named_approvers_and_static_rosters_join_the_pagerduty_on_calls() {
    let world = world().await;
    // Payments has no PagerDuty: its "schedule" is a fixed list in the config.
    let settings = RosterSettings {
        static_roster: BTreeMap::from([("PAYMENTS".to_owned(), BTreeSet::from([slack("U0PAY1"), slack("U0PAY2")]))]),
        ..RosterSettings::default()
    };
    let provider = world.provider_with(Some(world.client()), world.cache(), settings.clone());

    let report = provider.roster_for(&policy(&["PORDERS1", "PAYMENTS"], &[], &["U0LEAD"])).await.expect("a roster");

    assert_eq!(
        who(&report),
        [
            ("U0LEAD".to_owned(), vec![RosterSource::NamedApprover]),
            ("U0PAY1".to_owned(), vec![schedule("PAYMENTS")]),
            ("U0PAY2".to_owned(), vec![schedule("PAYMENTS")]),
            ("U0TIM".to_owned(), vec![schedule("PORDERS1")]),
        ]
    );
    assert_eq!(
        report.roster.entries_for(&slack("U0PAY1"))[0].evidence,
        "static roster for schedule PAYMENTS in the jitgate config"
    );
    assert_eq!(report.roster.entries_for(&slack("U0LEAD"))[0].evidence, "named as an approver in the runbook");
    let asked: Vec<Vec<String>> = world
        .pd
        .requests_to("/oncalls")
        .iter()
        .map(|r| r.params("schedule_ids[]").into_iter().map(str::to_owned).collect())
        .collect();
    assert_eq!(asked, [["PORDERS1"]], "the static schedule is never asked of PagerDuty");

    // A deployment without PagerDuty at all serves static and named approvers, stamped with the current time.
    world.clock.advance(time::Duration::minutes(10));
    let without_pagerduty = world.provider_with(None, world.cache(), settings);
    let report = without_pagerduty.roster_for(&policy(&["PAYMENTS"], &[], &["U0LEAD"])).await.expect("a roster");
    assert_eq!(report.origin, RosterOrigin::Config);
    assert_eq!(report.roster.as_of, world.clock.now());
    assert_eq!(report.roster.users().count(), 3);
    let error = without_pagerduty.roster_for(&policy(&["PORDERS1"], &[], &[])).await.expect_err("needs PagerDuty");
    assert!(matches!(error, RosterError::NotConfigured { .. }), "{error:?}");
    assert!(error.user_message().contains("PAGERDUTY_API_TOKEN"), "{}", error.user_message());
}

#[tokio::test]
async fn a_fresh_cached_roster_is_served_without_asking_pagerduty_again() {
    let world = world().await;
    let orders = policy(&["PORDERS1"], &[], &[]);
    let first = world.provider().roster_for(&orders).await.expect("a roster");

    world.clock.advance(time::Duration::seconds(59));
    // Another replica sharing the Redis sees the same entry (on its own task, as the engine runs it).
    let other_replica = world.provider();
    let policy_copy = orders.clone();
    let second = tokio::spawn(async move { other_replica.roster_for(&policy_copy).await })
        .await
        .expect("the task ran")
        .expect("a roster");

    assert_eq!(second.origin, RosterOrigin::Cache);
    assert_eq!(second.roster, first.roster, "same people, same as_of");
    assert_eq!(world.oncall_requests(), 1, "PagerDuty was asked once");
    assert_eq!(world.directory.lookups.load(Ordering::Relaxed), 1, "Slack was asked once too");

    // A different set of sources is a different entry.
    world.provider().roster_for(&policy(&["PORDERS2"], &[], &[])).await.expect("a roster");
    assert_eq!(world.oncall_requests(), 2);
}

#[tokio::test]
async fn after_the_cache_ttl_pagerduty_is_asked_again_and_sees_the_handover() {
    let world = world().await;
    let orders = policy(&["PORDERS1"], &[], &[]);
    let provider = world.provider();
    provider.roster_for(&orders).await.expect("a roster");

    // The next morning Bo has taken over; the cached "Tim" must not outlive the TTL.
    let next_morning = SHIFT_END + time::Duration::seconds(1);
    world.clock.set(next_morning);
    world.pd.set_now(next_morning);
    let report = provider.roster_for(&orders).await.expect("a roster");

    assert_eq!(report.origin, RosterOrigin::PagerDuty);
    assert_eq!(who(&report), [("U0BOB".to_owned(), vec![schedule("PORDERS1")])]);
    assert_eq!(report.roster.as_of, next_morning);
    assert_eq!(world.oncall_requests(), 2);
}

#[tokio::test]
async fn when_pagerduty_is_down_a_recent_cached_roster_still_serves() {
    let world = world().await;
    let orders = policy(&["PORDERS1"], &[], &[]);
    let provider = world.provider();
    provider.roster_for(&orders).await.expect("a roster");

    world.clock.advance(time::Duration::seconds(90)); // past the TTL, within the staleness allowed
    world.pd.go_down().await;
    let report = provider.roster_for(&orders).await.expect("the cached roster");

    assert!(
        matches!(&report.origin, RosterOrigin::CacheWhilePagerDutyFails { failure } if failure.contains("unreachable"))
    );
    assert_eq!(who(&report), [("U0TIM".to_owned(), vec![schedule("PORDERS1")])]);
    assert_eq!(report.roster.as_of, NOW, "the roster says how old it is");
}

#[tokio::test]
async fn when_pagerduty_is_down_and_the_cache_is_too_old_or_empty_nobody_can_approve() {
    let world = world().await;
    let orders = policy(&["PORDERS1"], &[], &["U0LEAD"]);
    let expected = "PagerDuty is unreachable and the last known on-call list is too old, so nobody can approve \
                    right now; try again in a minute or page the on-call directly";
    let provider = world.provider();

    world.pd.go_down().await;
    let error = provider.roster_for(&orders).await.expect_err("no cache at all");
    assert!(matches!(&error, RosterError::Unavailable { .. }), "{error:?}");
    assert_eq!(error.user_message(), expected);

    world.pd.come_back().await;
    provider.roster_for(&orders).await.expect("a roster, now cached");
    world.clock.advance(time::Duration::seconds(181)); // past the 3 minutes of staleness allowed
    world.pd.go_down().await;
    let error = provider.roster_for(&orders).await.expect_err("cache too old");
    assert_eq!(error.user_message(), expected);
    assert!(world.pauses.taken().len() >= 2, "connection failures were retried before giving up");
}

#[tokio::test]
async fn rate_limited_requests_wait_as_pagerduty_asks_then_succeed() {
    let world = world().await;
    world.pd.rate_limit_next(2, 7);

    let report = world.provider().roster_for(&policy(&["PORDERS1"], &[], &[])).await.expect("a roster");

    assert_eq!(who(&report), [("U0TIM".to_owned(), vec![schedule("PORDERS1")])]);
    assert_eq!(world.oncall_requests(), 3, "two 429s, then the answer");
    assert_eq!(world.pauses.taken(), [Duration::from_secs(7), Duration::from_secs(7)], "waited ratelimit-reset");
}

#[tokio::test]
async fn rate_limiting_that_outlasts_the_attempts_or_the_budget_is_reported() {
    let world = world().await;
    let schedules = BTreeSet::from(["PORDERS1".to_owned()]);
    let settings = PagerDutySettings { max_attempts: 3, ..PagerDutySettings::default() };
    let client = world.client_with(world.pd.api_key(), settings);

    world.pd.rate_limit_next(3, 1);
    let error = client.oncalls(&schedules, &BTreeSet::new(), NOW).await.expect_err("still limited");
    assert_eq!(error, PagerDutyError::RateLimited { attempts: 3, retry_after: Some(Duration::from_secs(1)) });
    assert_eq!(world.oncall_requests(), 3);

    // A reset longer than the whole budget is not waited for at all.
    world.pd.rate_limit_next(1, 3600);
    let before = world.pauses.taken().len();
    let error = client.oncalls(&schedules, &BTreeSet::new(), NOW).await.expect_err("limited for an hour");
    assert!(matches!(error, PagerDutyError::RateLimited { attempts: 1, .. }), "{error:?}");
    assert_eq!(world.pauses.taken().len(), before, "no wait past the budget");
}

#[tokio::test]
async fn a_passing_server_error_is_retried_with_backoff() {
    let world = world().await;
    world.pd.fail_next(503);
    world.pd.fail_next(502);
    let schedules = BTreeSet::from(["PORDERS1".to_owned()]);
    let shifts = world.client().oncalls(&schedules, &BTreeSet::new(), NOW).await.expect("on-calls");
    assert_eq!(shifts.len(), 1);
    assert_eq!(world.pauses.taken(), [Duration::from_millis(250), Duration::from_millis(500)]);
}

#[tokio::test]
async fn a_rejected_token_is_a_clear_error_that_never_shows_the_token() {
    let world = world().await;
    let secret = "u+Sup3rSecretPagerDutyKey";
    let schedules = BTreeSet::from(["PORDERS1".to_owned()]);
    let client = world.client_with(secret, PagerDutySettings::default());

    let error = client.oncalls(&schedules, &BTreeSet::new(), NOW).await.expect_err("401");
    assert!(matches!(error, PagerDutyError::Unauthorized { .. }), "{error:?}");
    assert!(error.to_string().contains("PAGERDUTY_API_TOKEN"), "{error}");
    assert_eq!(world.oncall_requests(), 1, "a rejected key is not retried");

    let provider = world.provider_with(Some(client.clone()), world.cache(), RosterSettings::default());
    let roster_error = provider.roster_for(&policy(&["PORDERS1"], &[], &[])).await.expect_err("401");
    assert!(roster_error.user_message().contains("refused jitgate's API key"), "{}", roster_error.user_message());

    world.pd.fail_next(403);
    let forbidden = world.client().oncalls(&schedules, &BTreeSet::new(), NOW).await.expect_err("403");
    assert!(matches!(forbidden, PagerDutyError::Forbidden { .. }), "{forbidden:?}");

    let shown = [
        format!("{error} {error:?}"),
        format!("{roster_error} {roster_error:?}"),
        format!("{client:?}"),
        format!("{provider:?}"),
        format!("{:?}", world.client()),
    ];
    for text in shown {
        assert!(!text.contains(secret) && !text.contains(world.pd.api_key()), "a token leaked into: {text}");
    }
}

#[tokio::test]
async fn with_redis_down_the_cache_is_skipped_and_pagerduty_answers() {
    let world = world().await;
    let closed_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        listener.local_addr().expect("its address").port()
    };
    let dead_cache = RosterCache::new(&format!("redis://127.0.0.1:{closed_port}"), &world.prefix).expect("lazy");
    let provider = world.provider_with(Some(world.client()), dead_cache, RosterSettings::default());
    let orders = policy(&["PORDERS1"], &[], &[]);

    for _ in 0..2 {
        let report = provider.roster_for(&orders).await.expect("a roster straight from PagerDuty");
        assert_eq!(report.origin, RosterOrigin::PagerDuty);
    }
    assert_eq!(world.oncall_requests(), 2, "without a cache every roster asks PagerDuty");

    // And with PagerDuty down too, there is nothing to fall back on.
    world.pd.go_down().await;
    let error = provider.roster_for(&orders).await.expect_err("nothing known");
    assert!(matches!(error, RosterError::Unavailable { .. }));
}

#[tokio::test]
async fn a_failing_slack_lookup_fails_closed() {
    let world = world().await;
    world.directory.down.store(true, Ordering::Relaxed);
    let error = world.provider().roster_for(&policy(&["PORDERS1"], &[], &[])).await.expect_err("no mapping");
    assert!(error.user_message().starts_with("Slack could not be asked"), "{}", error.user_message());
}

#[tokio::test]
async fn settings_that_would_allow_stale_approvals_are_refused() {
    let world = world().await;
    let too_stale = RosterSettings { max_staleness: Duration::from_secs(301), ..RosterSettings::default() };
    let error = RosterProvider::new(None, world.directory.clone(), world.cache(), world.clock.clone(), too_stale)
        .expect_err("older than approvals accept");
    assert!(error.to_string().contains("max staleness"), "{error}");
}

#[tokio::test]
async fn a_single_user_can_be_read_and_an_unknown_one_is_a_404() {
    let world = world().await;
    let ana = world.client().user("PANA001").await.expect("Ana");
    assert_eq!((ana.name.as_str(), ana.email.as_str()), ("Ana Lima", "Ana.Lima@Example.com"));
    let missing = world.client().user("PNOBODY").await.expect_err("no such user");
    assert!(
        matches!(&missing, PagerDutyError::Rejected { status: 404, detail, .. } if detail == ": Not Found"),
        "{missing:?}"
    );
}

/// Swaps Tim (on call now in this world) for Mallory in every cached roster, as someone who can write to Redis
/// would, keeping whatever seal the entry had.
async fn put_mallory_in_the_cached_rosters(world: &World) -> usize {
    let client = redis::Client::open(support::redis_url()).expect("redis url");
    let mut redis = client.get_multiplexed_async_connection().await.expect("connect");
    let keys: Vec<String> =
        redis::cmd("KEYS").arg(format!("{}:{{oncall:*", world.prefix)).query_async(&mut redis).await.expect("keys");
    for key in &keys {
        let text: String = redis::cmd("GET").arg(key).query_async(&mut redis).await.expect("entry");
        let edited = text.replace("U0TIM", jitgate_emulators::world::MALLORY);
        assert_ne!(edited, text, "the entry names Tim");
        let () = redis::cmd("SET").arg(key).arg(edited).arg("KEEPTTL").query_async(&mut redis).await.expect("set");
    }
    keys.len()
}

#[tokio::test]
async fn a_cached_roster_edited_in_redis_is_not_believed() {
    let world = world().await;
    let sealer = || Sealer::derive(&SecretString::from("oncall-tests-seal-key".to_owned()), SealPurpose::Roster);
    let sealed = || world.provider_with(Some(world.client()), world.cache().with_sealer(sealer()), Default::default());
    let orders = policy(&["PORDERS1"], &[], &[]);
    sealed().roster_for(&orders).await.expect("a roster");
    assert_eq!(put_mallory_in_the_cached_rosters(&world).await, 1);

    let report = sealed().roster_for(&orders).await.expect("a roster");
    assert_eq!(report.origin, RosterOrigin::PagerDuty, "the edited entry is ignored and PagerDuty asked again");
    let mallory = SlackUserId::parse(jitgate_emulators::world::MALLORY).unwrap();
    assert!(report.roster.users().all(|u| *u != mallory), "{:?}", report.roster);
    assert_eq!(world.oncall_requests(), 2);
}

#[tokio::test]
async fn without_a_seal_the_same_edit_would_add_an_approver() {
    // What the seal guards against: an unsealed cache believes the edited entry.
    let world = world().await;
    let orders = policy(&["PORDERS1"], &[], &[]);
    world.provider().roster_for(&orders).await.expect("a roster");
    put_mallory_in_the_cached_rosters(&world).await;
    let report = world.provider().roster_for(&orders).await.expect("a roster");
    assert_eq!(report.origin, RosterOrigin::Cache);
    let mallory = SlackUserId::parse(jitgate_emulators::world::MALLORY).unwrap();
    assert!(report.roster.users().any(|u| *u == mallory));
}
