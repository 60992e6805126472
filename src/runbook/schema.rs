//! The runbook file format as written by people: one YAML document per `runbooks/<id>.yaml`.
//!
//! These types only mirror the YAML shape, strictly (`deny_unknown_fields` everywhere, so a misspelt field is an
//! error, never silently ignored). Numbers that have a valid range are read as wide integers so that an
//! out-of-range value is reported by our own validation with the field and the fix, not by a serde overflow.
//! Turning these into a checked [`Runbook`](super::Runbook) is `validate.rs`'s job; docs/runbooks.md is the
//! reference for authors.

use serde::Deserialize;

use super::Operation;

/// A whole runbook file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRunbook {
    pub id: String,
    pub description: String,
    pub table: RawKeySchema,
    #[serde(default)]
    pub index: Option<RawKeySchema>,
    pub operation: Operation,
    #[serde(default)]
    pub allow_scan: bool,
    pub role_arn: String,
    #[serde(default)]
    pub parameters: Vec<RawParameter>,
    #[serde(default)]
    pub key: Option<RawKey>,
    #[serde(default)]
    pub filter: Vec<RawFilter>,
    #[serde(default)]
    pub projection: Option<Vec<String>>,
    #[serde(default)]
    pub mask: Vec<String>,
    pub max_items: i64,
    pub approval: RawApproval,
    /// `update_item` only: what is written, under which precondition (`write.rs`).
    #[serde(default)]
    pub update: Option<super::write::RawUpdate>,
    /// Masked attributes a requester may ask to see in clear (`--unmask`), with one more approver.
    #[serde(default)]
    pub unmaskable: Vec<String>,
    /// `incident:` (see `gates.rs`).
    #[serde(default)]
    pub incident: Option<super::gates::RawIncidentGate>,
    /// `break_glass:` (see `gates.rs`).
    #[serde(default)]
    pub break_glass: Option<super::gates::RawBreakGlass>,
}

/// `table:` or `index:` — a name and its key attributes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawKeySchema {
    pub name: String,
    pub partition_key: String,
    #[serde(default)]
    pub sort_key: Option<String>,
}

/// The declared type of a parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum RawParamType {
    String,
    Integer,
    Date,
    Timestamp,
}

/// One entry of `parameters:`. Which of the optional fields apply depends on `type`; validation says which.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawParameter {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: RawParamType,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub pattern: Option<String>,
    #[serde(default, rename = "enum")]
    pub one_of: Option<Vec<String>>,
    #[serde(default)]
    pub min: Option<i64>,
    #[serde(default)]
    pub max: Option<i64>,
    /// Any YAML scalar; it is turned into text and checked exactly like a value a user typed.
    #[serde(default)]
    pub default: Option<RawDefault>,
}

/// A parameter's `default:` as written. Numbers and text become the text a user would type; anything else (a list,
/// a map, `true`, `null`) is kept only to be refused by validation with the field and the fix.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum RawDefault {
    Integer(i64),
    Number(f64),
    Text(String),
    NotAScalar(serde::de::IgnoredAny),
}

/// A comparison operator as written in YAML.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub(super) enum RawOp {
    #[serde(rename = "=")]
    Eq,
    #[serde(rename = "<>")]
    Ne,
    #[serde(rename = "<")]
    Lt,
    #[serde(rename = "<=")]
    Le,
    #[serde(rename = ">")]
    Gt,
    #[serde(rename = ">=")]
    Ge,
    #[serde(rename = "between")]
    Between,
    #[serde(rename = "begins_with")]
    BeginsWith,
}

/// `key:` — which parameters supply the key values. Attribute names come from `table:`/`index:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawKey {
    pub partition: RawPartition,
    #[serde(default)]
    pub sort: Option<RawSort>,
}

/// `key.partition:` — always an equality on the partition key.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPartition {
    pub param: String,
}

/// `key.sort:` — a condition on the sort key.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSort {
    pub op: RawOp,
    #[serde(default)]
    pub param: Option<String>,
    #[serde(default)]
    pub params: Option<Vec<String>>,
}

/// One entry of `filter:` (all entries are ANDed).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFilter {
    pub attribute: String,
    pub op: RawOp,
    #[serde(default)]
    pub param: Option<String>,
    #[serde(default)]
    pub params: Option<Vec<String>>,
}

/// `approval:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawApproval {
    /// `approvers:` with nothing after it reads as no approvers; validation then says what to add.
    #[serde(default, deserialize_with = "null_as_default")]
    pub approvers: RawApprovers,
    #[serde(default)]
    pub required_approvals: Option<i64>,
    #[serde(default)]
    pub require_reason: Option<bool>,
    #[serde(default)]
    pub ttl: Option<String>,
    /// Staged escalation (see `gates.rs`).
    #[serde(default)]
    pub escalate_after: Option<String>,
    #[serde(default)]
    pub max_escalation_level: Option<i64>,
}

/// `approval.approvers:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawApprovers {
    #[serde(default)]
    pub pagerduty_schedules: Vec<String>,
    #[serde(default)]
    pub pagerduty_escalation_policies: Vec<String>,
    #[serde(default)]
    pub slack_users: Vec<String>,
}

/// A field whose empty value (`key:` with nothing after it, YAML's null) means the same as leaving it out.
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Option::unwrap_or_default)
}
