//! The roster of one approval policy: who may approve right now, and why.
//!
//! Sources, in the order they are added: PagerDuty on-calls for the policy's schedules and escalation policies
//! (through the cache), the config's static roster for schedules of teams without PagerDuty, and the runbook's
//! named Slack approvers. PagerDuty people are matched to Slack accounts by email; those without one are left
//! out and reported so the approval card can say why they cannot approve.
//!
//! Fail closed: when PagerDuty cannot be asked, a cached answer is used only while it is younger than
//! `max_staleness` (never more than [`MAX_ROSTER_AGE`], the age the approval rules accept); otherwise the roster
//! is unavailable and nobody can approve through PagerDuty. A broken cache never stands in for PagerDuty.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::cache::{RosterCache, Snapshot, UnmappedOnCall};
use super::directory::{DirectoryMatch, SlackDirectory, normalize_email};
use super::pagerduty::{OnCallShift, PagerDutyClient, PagerDutyError};
use crate::clock::SharedClock;
use crate::ids::SlackUserId;
use crate::request::{MAX_ROSTER_AGE, OnCallEntry, Roster, RosterSource};
use crate::runbook::ApprovalPolicy;

/// Tunables of the roster provider.
#[derive(Debug, Clone)]
pub struct RosterSettings {
    /// How long a PagerDuty answer is reused without asking again.
    pub cache_ttl: Duration,
    /// How old a cached answer may be and still be used while PagerDuty cannot be asked (≤ `MAX_ROSTER_AGE`).
    pub max_staleness: Duration,
    /// Deepest escalation level whose on-calls may approve through an escalation policy (1 = first responders).
    pub max_escalation_level: u32,
    /// For teams without PagerDuty: schedule id → the Slack users who count as on call for it, always.
    pub static_roster: BTreeMap<String, BTreeSet<SlackUserId>>,
}

impl Default for RosterSettings {
    fn default() -> Self {
        RosterSettings {
            cache_ttl: Duration::from_secs(60),
            max_staleness: Duration::from_secs(180),
            max_escalation_level: 1,
            static_roster: BTreeMap::new(),
        }
    }
}

/// Whether a fresh cached PagerDuty answer may stand in for asking PagerDuty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Freshness {
    CacheAllowed,
    AskPagerDuty,
}

/// Where the PagerDuty part of a roster came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RosterOrigin {
    /// PagerDuty was asked just now.
    PagerDuty,
    /// A recent PagerDuty answer from the cache (younger than the cache TTL).
    Cache,
    /// PagerDuty could not be asked; an older cached answer, still within the allowed staleness, was used.
    CacheWhilePagerDutyFails { failure: String },
    /// The policy needs nothing from PagerDuty (static roster and named approvers only).
    Config,
}

/// A roster with what the card needs to explain it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterReport {
    pub roster: Roster,
    /// People on call in PagerDuty who cannot approve because no Slack account has their email.
    pub unmapped: Vec<UnmappedOnCall>,
    pub origin: RosterOrigin,
}

/// Why a roster could not be built from PagerDuty and the directory.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FetchFailure {
    #[error(transparent)]
    PagerDuty(#[from] PagerDutyError),
    #[error("looking up on-call people in Slack failed: {0}")]
    Directory(String),
}

/// No roster can be given: the request cannot be approved through PagerDuty now.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RosterError {
    /// PagerDuty (or the Slack lookup) failed and no cached answer is recent enough.
    #[error("{message} (cause: {cause})")]
    Unavailable { message: String, cause: FetchFailure },
    /// The policy names PagerDuty sources but jitgate has no PagerDuty client configured.
    #[error("{message}")]
    NotConfigured { message: String },
}

impl RosterError {
    /// The explanation to show the user.
    pub fn user_message(&self) -> &str {
        match self {
            RosterError::Unavailable { message, .. } | RosterError::NotConfigured { message } => message,
        }
    }
}

/// Builds rosters for approval policies.
pub struct RosterProvider {
    pagerduty: Option<PagerDutyClient>,
    directory: Arc<dyn SlackDirectory>,
    cache: RosterCache,
    clock: SharedClock,
    settings: RosterSettings,
}

impl std::fmt::Debug for RosterProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RosterProvider")
            .field("pagerduty", &self.pagerduty)
            .field("cache", &self.cache)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl RosterProvider {
    /// A provider; `pagerduty` is `None` when only static rosters and named approvers are configured.
    pub fn new(
        pagerduty: Option<PagerDutyClient>,
        directory: Arc<dyn SlackDirectory>,
        cache: RosterCache,
        clock: SharedClock,
        settings: RosterSettings,
    ) -> anyhow::Result<RosterProvider> {
        let max_age = Duration::try_from(MAX_ROSTER_AGE).unwrap_or(Duration::ZERO);
        anyhow::ensure!(
            settings.max_staleness <= max_age,
            "the on-call max staleness ({}) exceeds the roster age approvals accept ({})",
            humantime::format_duration(settings.max_staleness),
            humantime::format_duration(max_age)
        );
        anyhow::ensure!(
            !settings.cache_ttl.is_zero() && settings.cache_ttl <= settings.max_staleness,
            "the on-call cache TTL must be above zero and at most the max staleness"
        );
        anyhow::ensure!(settings.max_escalation_level >= 1, "the max escalation level must be at least 1");
        if let Some((schedule, _)) = settings.static_roster.iter().find(|(_, users)| users.is_empty()) {
            anyhow::bail!("the static roster of schedule {schedule} lists nobody");
        }
        Ok(RosterProvider { pagerduty, directory, cache, clock, settings })
    }

    /// The PagerDuty client, when one is configured (incident checks and notes use the same account).
    pub fn pagerduty(&self) -> Option<&PagerDutyClient> {
        self.pagerduty.as_ref()
    }

    /// Who may approve under `policy` now, for showing on a card: a PagerDuty answer younger than the cache TTL
    /// is reused.
    pub async fn roster_for(&self, policy: &ApprovalPolicy) -> Result<RosterReport, RosterError> {
        self.roster(policy, 1, Freshness::CacheAllowed).await
    }

    /// [`Self::roster_for`] when the approvers were widened to escalation level `level` (staged escalation): on-calls
    /// of its escalation policies at levels up to `level` count, or up to the configured `max_escalation_level` when
    /// that is deeper. Schedules and named approvers are not affected.
    pub async fn roster_at(&self, policy: &ApprovalPolicy, level: u32) -> Result<RosterReport, RosterError> {
        self.roster(policy, level, Freshness::CacheAllowed).await
    }

    /// Who may approve under `policy`, widened to escalation level `level`, for a decision: PagerDuty is asked every
    /// time, so a hand-over a moment ago counts at once. Only when PagerDuty cannot answer is a cached answer used,
    /// within the max staleness.
    pub async fn roster_now(&self, policy: &ApprovalPolicy, level: u32) -> Result<RosterReport, RosterError> {
        self.roster(policy, level, Freshness::AskPagerDuty).await
    }

    async fn roster(
        &self,
        policy: &ApprovalPolicy,
        level: u32,
        freshness: Freshness,
    ) -> Result<RosterReport, RosterError> {
        let max_level = level.max(self.settings.max_escalation_level);
        let sources = &policy.approvers;
        let now = self.clock.now();
        let (static_schedules, pagerduty_schedules): (BTreeSet<String>, BTreeSet<String>) =
            sources.pagerduty_schedules.iter().cloned().partition(|id| self.settings.static_roster.contains_key(id));
        let escalation_policies = &sources.pagerduty_escalation_policies;

        let (mut roster, unmapped, origin) = if pagerduty_schedules.is_empty() && escalation_policies.is_empty() {
            (Roster::new(now), Vec::new(), RosterOrigin::Config)
        } else {
            let (snapshot, origin) =
                self.pagerduty_part(&pagerduty_schedules, escalation_policies, max_level, now, freshness).await?;
            (snapshot.roster, snapshot.unmapped, origin)
        };
        for schedule in &static_schedules {
            for user in self.settings.static_roster.get(schedule).into_iter().flatten() {
                let evidence = format!("static roster for schedule {schedule} in the jitgate config");
                roster = roster.with(user.clone(), RosterSource::Schedule(schedule.clone()), evidence);
            }
        }
        for user in &sources.slack_users {
            roster = roster.with(user.clone(), RosterSource::NamedApprover, "named as an approver in the runbook");
        }
        Ok(RosterReport { roster, unmapped, origin })
    }

    /// The PagerDuty on-calls: from the cache while fresh, else from PagerDuty, else a cache still young enough.
    async fn pagerduty_part(
        &self,
        schedules: &BTreeSet<String>,
        escalation_policies: &BTreeSet<String>,
        max_level: u32,
        now: OffsetDateTime,
        freshness: Freshness,
    ) -> Result<(Snapshot, RosterOrigin), RosterError> {
        let Some(client) = &self.pagerduty else {
            let ids: Vec<&str> = schedules.iter().chain(escalation_policies).map(String::as_str).collect();
            return Err(RosterError::NotConfigured {
                message: format!(
                    "This runbook's approvers come from PagerDuty ({}), but jitgate has no PagerDuty API token \
                     configured, so nobody can approve through PagerDuty; ask a jitgate admin to set \
                     PAGERDUTY_API_TOKEN or a static roster",
                    ids.join(", ")
                ),
            });
        };
        let key = self.cache.key(&sources_hash(schedules, escalation_policies, max_level));
        let read_cache = async {
            match self.cache.get(&key).await {
                Ok(cached) => cached,
                Err(e) => {
                    tracing::warn!("on-call cache unavailable, asking PagerDuty: {e:#}");
                    None
                }
            }
        };
        let age_of = |snapshot: &Snapshot| now - snapshot.roster.as_of;
        let (cached, fetched) = match freshness {
            Freshness::CacheAllowed => {
                let cached = read_cache.await;
                // A snapshot "from the future" (clock moved back, skew between replicas) proves nothing: never used.
                if let Some(snapshot) = cached.as_ref().filter(|s| within(age_of(s), self.settings.cache_ttl, false)) {
                    return Ok((snapshot.clone(), RosterOrigin::Cache));
                }
                (cached, self.fetch(client, schedules, escalation_policies, max_level, now).await)
            }
            // The cache is only the fallback here: read it while PagerDuty is asked, not before.
            Freshness::AskPagerDuty => {
                tokio::join!(read_cache, self.fetch(client, schedules, escalation_policies, max_level, now))
            }
        };
        match fetched {
            Ok(snapshot) => {
                if let Err(e) = self.cache.put(&key, &snapshot, self.settings.max_staleness).await {
                    tracing::warn!("could not cache the on-call roster: {e:#}");
                }
                Ok((snapshot, RosterOrigin::PagerDuty))
            }
            Err(failure) => match cached.filter(|s| within(age_of(s), self.settings.max_staleness, true)) {
                Some(snapshot) => {
                    tracing::warn!(
                        as_of = %snapshot.roster.as_of,
                        "PagerDuty failed, using the cached on-call roster: {failure}"
                    );
                    Ok((snapshot, RosterOrigin::CacheWhilePagerDutyFails { failure: failure.to_string() }))
                }
                None => Err(RosterError::Unavailable { message: unavailable_message(&failure), cause: failure }),
            },
        }
    }

    /// Asks PagerDuty who is on call at `now` and maps them to Slack users.
    async fn fetch(
        &self,
        client: &PagerDutyClient,
        schedules: &BTreeSet<String>,
        escalation_policies: &BTreeSet<String>,
        max_level: u32,
        now: OffsetDateTime,
    ) -> Result<Snapshot, FetchFailure> {
        let shifts = client.oncalls(schedules, escalation_policies, now).await?;

        // One entry per (person, source): the lowest level (then earliest start) where several shifts qualify.
        let mut chosen: BTreeMap<(String, RosterSource), &OnCallShift> = BTreeMap::new();
        for shift in &shifts {
            let mut sources = Vec::new();
            if let Some(schedule) = shift.schedule.as_ref().filter(|s| schedules.contains(&s.id)) {
                sources.push(RosterSource::Schedule(schedule.id.clone()));
            }
            // Deeper levels are people who get paged only when the first responders do not answer.
            if escalation_policies.contains(&shift.escalation_policy.id) && shift.escalation_level <= max_level {
                sources.push(RosterSource::EscalationPolicy(shift.escalation_policy.id.clone()));
            }
            for source in sources {
                let slot = chosen.entry((shift.user.id.clone(), source)).or_insert(shift);
                if (shift.escalation_level, shift.start) < (slot.escalation_level, slot.start) {
                    *slot = shift;
                }
            }
        }

        // One lookup per distinct email, all at once: each is a Slack round trip, and none depends on another.
        let mut people: BTreeMap<String, &str> = BTreeMap::new();
        for shift in chosen.values() {
            people.entry(normalize_email(&shift.user.email)).or_insert(&shift.user.name);
        }
        let lookups = people.into_iter().map(|(email, name)| async move {
            match self.directory.match_email(&email).await {
                Ok(found) => Ok((email, found)),
                Err(e) => Err(FetchFailure::Directory(format!("finding the Slack account of {name}: {e:#}"))),
            }
        });
        let slack_ids: BTreeMap<String, DirectoryMatch> =
            futures::future::try_join_all(lookups).await?.into_iter().collect();

        let mut roster = Roster::new(now);
        let mut unmapped = Vec::new();
        for ((_, source), shift) in chosen {
            let entry = OnCallEntry { evidence: evidence(&source, shift), source, until: shift.end };
            // Only full members approve: a guest, bot or deactivated account with the on-call person's email is
            // shown as unable to approve, never put on the roster.
            let (slack_user, excluded) = match slack_ids.get(&normalize_email(&shift.user.email)) {
                Some(DirectoryMatch::Member(user)) => (Some(user.clone()), None),
                Some(DirectoryMatch::Excluded(_, why)) => (None, Some(*why)),
                Some(DirectoryMatch::NoAccount) | None => (None, None),
            };
            match slack_user {
                Some(slack_user) => roster = roster.with_entry(slack_user, entry),
                None => unmapped.push(UnmappedOnCall {
                    excluded,
                    ..UnmappedOnCall::from_entry(&shift.user.id, &shift.user.name, &shift.user.email, entry)
                }),
            }
        }
        Ok(Snapshot { roster, unmapped })
    }
}

/// Whether `age` is in `[0, limit)` (or `[0, limit]` when `inclusive`).
fn within(age: time::Duration, limit: Duration, inclusive: bool) -> bool {
    let Ok(limit) = time::Duration::try_from(limit) else { return false };
    !age.is_negative() && if inclusive { age <= limit } else { age < limit }
}

/// A stable name for one set of PagerDuty sources (and the level rule applied to them).
fn sources_hash(schedules: &BTreeSet<String>, escalation_policies: &BTreeSet<String>, max_level: u32) -> String {
    let mut hasher = Sha256::new();
    hasher.update(format!("oncall-v2\nmax-level:{max_level}\n"));
    for id in schedules {
        hasher.update(format!("schedule:{id}\n"));
    }
    for id in escalation_policies {
        hasher.update(format!("escalation-policy:{id}\n"));
    }
    hex::encode(&hasher.finalize()[..16])
}

/// e.g. `PagerDuty schedule PORDERS1 (Orders primary), level 1, on call 2026-11-28T08:00Z–2026-11-29T08:00Z`.
fn evidence(source: &RosterSource, shift: &OnCallShift) -> String {
    let what = match source {
        RosterSource::Schedule(id) => {
            let name = shift.schedule.as_ref().map(|s| s.name.as_str()).unwrap_or_default();
            format!("PagerDuty schedule {id} ({name})")
        }
        RosterSource::EscalationPolicy(id) => {
            format!("PagerDuty escalation policy {id} ({})", shift.escalation_policy.name)
        }
        RosterSource::NamedApprover => "named approver".to_owned(),
    };
    let when = match (shift.start, shift.end) {
        (Some(start), Some(end)) => format!("on call {}–{}", minute(start), minute(end)),
        (Some(start), None) => format!("on call since {} with no end", minute(start)),
        (None, Some(end)) => format!("on call until {}", minute(end)),
        (None, None) => "on call permanently".to_owned(),
    };
    format!("{what}, level {}, {when}", shift.escalation_level)
}

/// `2026-11-28T08:00Z`.
fn minute(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!("{:04}-{:02}-{:02}T{:02}:{:02}Z", at.year(), u8::from(at.month()), at.day(), at.hour(), at.minute())
}

/// What the user reads when nobody can approve because the on-call list cannot be known.
fn unavailable_message(failure: &FetchFailure) -> String {
    const TOO_OLD: &str = "and the last known on-call list is too old, so nobody can approve right now";
    match failure {
        FetchFailure::PagerDuty(PagerDutyError::Unauthorized { .. } | PagerDutyError::Forbidden { .. }) => format!(
            "PagerDuty refused jitgate's API key {TOO_OLD}; a jitgate admin needs to fix the PagerDuty token, \
             meanwhile page the on-call directly"
        ),
        FetchFailure::PagerDuty(PagerDutyError::RateLimited { .. }) => {
            format!("PagerDuty is rate limiting jitgate {TOO_OLD}; try again in a minute or page the on-call directly")
        }
        FetchFailure::PagerDuty(PagerDutyError::Unreachable { .. }) => {
            format!("PagerDuty is unreachable {TOO_OLD}; try again in a minute or page the on-call directly")
        }
        FetchFailure::PagerDuty(PagerDutyError::Rejected { .. } | PagerDutyError::BadResponse { .. }) => format!(
            "PagerDuty gave jitgate an answer it could not use {TOO_OLD}; try again in a minute or page the \
             on-call directly"
        ),
        FetchFailure::Directory(_) => format!(
            "Slack could not be asked who the on-call people are {TOO_OLD}; try again in a minute or page the \
             on-call directly"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oncall::pagerduty::{PagerDutyRef, PagerDutyUser};
    use time::macros::datetime;

    fn shift(start: Option<OffsetDateTime>, end: Option<OffsetDateTime>) -> OnCallShift {
        OnCallShift {
            user: PagerDutyUser { id: "PTIM001".into(), name: "Tim Wright".into(), email: "tim@example.com".into() },
            schedule: Some(PagerDutyRef { id: "PORDERS1".into(), name: "Orders primary".into() }),
            escalation_policy: PagerDutyRef { id: "PEPORD1".into(), name: "Orders escalation".into() },
            escalation_level: 1,
            start,
            end,
        }
    }

    #[test]
    fn evidence_names_the_source_level_and_shift() {
        let start = datetime!(2026-11-28 03:00 -5);
        let end = datetime!(2026-11-29 08:00 UTC);
        let schedule = RosterSource::Schedule("PORDERS1".into());
        assert_eq!(
            evidence(&schedule, &shift(Some(start), Some(end))),
            "PagerDuty schedule PORDERS1 (Orders primary), level 1, on call 2026-11-28T08:00Z–2026-11-29T08:00Z"
        );
        let policy = RosterSource::EscalationPolicy("PEPORD1".into());
        assert_eq!(
            evidence(&policy, &shift(None, None)),
            "PagerDuty escalation policy PEPORD1 (Orders escalation), level 1, on call permanently"
        );
        assert_eq!(
            evidence(&policy, &shift(Some(start), None)),
            "PagerDuty escalation policy PEPORD1 (Orders escalation), level 1, on call since 2026-11-28T08:00Z with no end"
        );
    }

    #[test]
    fn sources_hash_depends_on_every_source_and_the_level_rule() {
        let set = |ids: &[&str]| ids.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
        let base = sources_hash(&set(&["A"]), &set(&["B"]), 1);
        assert_eq!(base, sources_hash(&set(&["A"]), &set(&["B"]), 1));
        assert_ne!(base, sources_hash(&set(&["B"]), &set(&["A"]), 1), "a schedule is not an escalation policy");
        assert_ne!(base, sources_hash(&set(&["A", "C"]), &set(&["B"]), 1));
        assert_ne!(base, sources_hash(&set(&["A"]), &set(&["B"]), 2));
    }

    #[test]
    fn ages_outside_the_window_or_negative_are_not_usable() {
        let minute = Duration::from_secs(60);
        assert!(within(time::Duration::seconds(59), minute, false));
        assert!(!within(time::Duration::seconds(60), minute, false));
        assert!(within(time::Duration::seconds(60), minute, true));
        assert!(!within(time::Duration::seconds(-1), minute, true));
    }
}
