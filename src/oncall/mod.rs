//! On call: who may approve right now, from PagerDuty (or the config's static roster) and the runbook.
//!
//! - [`pagerduty`]: the REST client (on-calls, users), bounded retries, errors classified, token kept secret.
//! - [`directory`]: the Slack lookup by email that links a PagerDuty user to a Slack user.
//! - [`directory_cache`]: the hours-long, in-memory memory of which member has an email.
//! - [`incidents`]: incidents named by requests (`GET /incidents/{id}`) and notes on their timeline.
//! - [`cache`]: the short-lived Redis cache of PagerDuty answers.
//! - [`provider`]: builds the [`crate::request::Roster`] of one approval policy and fails closed.
//!
//! Knows nothing of the request store, Slack transport or AWS: it receives a Redis URL, a key prefix, a clock
//! and a directory implementation.

pub mod cache;
pub mod directory;
pub mod directory_cache;
pub mod incidents;
pub mod pagerduty;
pub mod provider;

pub use cache::{RosterCache, Snapshot, UnmappedOnCall};
pub use directory::{DirectoryMatch, Exclusion, SlackDirectory, normalize_email};
pub use directory_cache::CachedDirectory;
pub use pagerduty::{OnCallShift, PagerDutyClient, PagerDutyError, PagerDutyRef, PagerDutySettings, PagerDutyUser};
// The retry pause is shared with the other HTTP clients; re-exported here so on-call users find it next to the client.
pub use crate::pause::{Pause, TokioPause};
pub use provider::{FetchFailure, RosterError, RosterOrigin, RosterProvider, RosterReport, RosterSettings};
