//! The edges of what jitgate trusts: an on-call shift only until its end, only full members of the workspace as
//! approvers, only envelopes for this app in this workspace. Each test fails if its guard is removed.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use jitgate::clock::{Clock, ManualClock};
use jitgate::ids::SlackUserId;
use jitgate::oncall::{PagerDutyClient, PagerDutySettings, RosterCache, RosterOrigin, RosterProvider, SlackDirectory};
use jitgate::request::{Refusal, may_decide};
use jitgate_emulators::pagerduty::{FakePagerDuty, OnCall};
use secrecy::SecretString;
use support::fixtures;
use time::OffsetDateTime;
use time::macros::datetime;

const NOW: OffsetDateTime = datetime!(2026-11-28 12:00 UTC);

/// Slack accounts by email.
#[derive(Debug, Default)]
struct FixedDirectory(BTreeMap<String, SlackUserId>);

#[async_trait]
impl SlackDirectory for FixedDirectory {
    async fn user_by_email(&self, email: &str) -> anyhow::Result<Option<SlackUserId>> {
        Ok(self.0.get(email).cloned())
    }
}

/// Tim's shift ends 30 seconds after the roster is fetched; the cache keeps that roster for a minute. From the end
/// of his shift on, the cached roster (fresh as it is) no longer lets him approve.
#[tokio::test]
async fn an_approver_whose_shift_ended_is_refused_while_the_cached_roster_is_still_fresh() {
    let pd = FakePagerDuty::start().await;
    pd.set_now(NOW);
    let shift_end = NOW + time::Duration::seconds(30);
    pd.add_user("PTIM001", "Tim Wright", "tim@example.com");
    pd.add_schedule(fixtures::SCHEDULE, "Orders primary");
    pd.add_escalation_policy("PEPORD1", "Orders escalation");
    pd.add_oncall(
        OnCall::new("PTIM001", "PEPORD1", 1)
            .via_schedule(fixtures::SCHEDULE)
            .between(NOW - time::Duration::hours(8), shift_end),
    );
    let tim = fixtures::user("U0TIM");
    let directory = Arc::new(FixedDirectory(BTreeMap::from([("tim@example.com".to_owned(), tim.clone())])));
    let clock = ManualClock::new(NOW);
    let client = PagerDutyClient::new(&pd.base_url(), SecretString::from(pd.api_key()), PagerDutySettings::default())
        .expect("a PagerDuty client");
    let cache = RosterCache::new(&support::redis_url(), &support::unique("shift-end")).expect("a cache");
    let provider =
        RosterProvider::new(Some(client), directory, cache, clock.clone(), Default::default()).expect("a provider");

    let request = fixtures::pending_request(NOW, 1, Duration::from_secs(30 * 60));
    let report = provider.roster_for(&request.policy).await.expect("a roster");
    assert_eq!(report.origin, RosterOrigin::PagerDuty);
    assert_eq!(may_decide(&request, &tim, &report.roster, clock.now()), Ok(()), "on call now");

    clock.advance(time::Duration::seconds(31));
    let report = provider.roster_for(&request.policy).await.expect("a roster");
    assert_eq!(report.origin, RosterOrigin::Cache, "the cached roster is still fresh");
    assert_eq!(report.roster.as_of, NOW);
    assert!(report.roster.entries_for(&tim).iter().any(|e| e.until == Some(shift_end)), "the shift's end is kept");
    assert_eq!(may_decide(&request, &tim, &report.roster, clock.now()), Err(Refusal::NotOnCall));
}
