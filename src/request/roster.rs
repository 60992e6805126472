//! Who is on call right now, as the approval rules see it: plain data handed in by the caller.
//!
//! The on-call module builds a [`Roster`] for one runbook from PagerDuty (or the static roster in the config)
//! plus the runbook's named approvers; the rules here only read it. `as_of` is when that information was
//! fetched, so the rules can refuse to approve on a stale roster.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::ids::SlackUserId;

/// Why someone is on the roster.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum RosterSource {
    /// On call now in this PagerDuty schedule (or the config's static roster entry of that id).
    Schedule(String),
    /// On call now in this PagerDuty escalation policy, at a level the config accepts.
    EscalationPolicy(String),
    /// Named as an approver in the runbook itself.
    NamedApprover,
}

/// One reason a user is on the roster, with text recorded as evidence in the audit trail.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct OnCallEntry {
    pub source: RosterSource,
    /// e.g. "PagerDuty schedule PABC123 (Primary DB on-call), level 1, until 2026-11-28T18:00:00Z".
    pub evidence: String,
    /// When the on-call shift behind this entry ends (PagerDuty's `end`); `None` for entries without one (a named
    /// approver, the static roster, a shift PagerDuty gives no end). A roster is cached for minutes, and a shift
    /// can end inside them: the approval rules refuse the entry from this moment on, however fresh the roster.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "time::serde::rfc3339::option")]
    pub until: Option<OffsetDateTime>,
}

impl OnCallEntry {
    /// Whether the shift behind this entry still covers `now`.
    pub fn covers(&self, now: OffsetDateTime) -> bool {
        self.until.is_none_or(|end| now < end)
    }
}

/// The people eligible by presence at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Roster {
    #[serde(with = "time::serde::rfc3339")]
    pub as_of: OffsetDateTime,
    pub entries: BTreeMap<SlackUserId, Vec<OnCallEntry>>,
}

impl Roster {
    pub fn new(as_of: OffsetDateTime) -> Roster {
        Roster { as_of, entries: BTreeMap::new() }
    }

    /// Adds one reason for `user` to be on the roster.
    pub fn with(self, user: SlackUserId, source: RosterSource, evidence: impl Into<String>) -> Roster {
        self.with_entry(user, OnCallEntry { source, evidence: evidence.into(), until: None })
    }

    /// Adds one reason for `user` to be on the roster, as a whole entry (with the end of its shift).
    pub fn with_entry(mut self, user: SlackUserId, entry: OnCallEntry) -> Roster {
        self.entries.entry(user).or_default().push(entry);
        self
    }

    pub fn entries_for(&self, user: &SlackUserId) -> &[OnCallEntry] {
        self.entries.get(user).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Everyone on the roster, for naming them on the card.
    pub fn users(&self) -> impl Iterator<Item = &SlackUserId> {
        self.entries.keys()
    }
}
