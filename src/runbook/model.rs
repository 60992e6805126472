//! A checked runbook: what `validate.rs` produces from a file and what rendering and the Slack form read.
//!
//! Every value here has passed validation, so rendering never has to re-check the runbook's own shape: attribute
//! names are well formed, every referenced parameter exists with a compatible type, and operators fit the
//! operation.

use std::fmt;
use std::path::{Path, PathBuf};

use super::param::Parameter;
use super::write::UpdateSpec;
use super::{ApprovalPolicy, Operation};
use crate::ids::RunbookId;

/// A table or index name with its key attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySchema {
    pub(super) name: String,
    pub(super) partition_key: String,
    pub(super) sort_key: Option<String>,
}

impl KeySchema {
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn partition_key(&self) -> &str {
        &self.partition_key
    }
    pub fn sort_key(&self) -> Option<&str> {
        self.sort_key.as_deref()
    }
}

/// A comparison in a key condition or filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Eq,
    /// Filters only: DynamoDB key conditions have no "not equal".
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    /// Two parameters, lower and upper bound, both inclusive.
    Between,
    /// Strings only.
    BeginsWith,
}

impl CompareOp {
    /// How many parameters the operator takes.
    pub fn arity(self) -> usize {
        match self {
            CompareOp::Between => 2,
            CompareOp::Eq
            | CompareOp::Ne
            | CompareOp::Lt
            | CompareOp::Le
            | CompareOp::Gt
            | CompareOp::Ge
            | CompareOp::BeginsWith => 1,
        }
    }

    /// Whether DynamoDB accepts the operator on a sort key in a key condition.
    pub fn allowed_on_sort_key(self) -> bool {
        match self {
            CompareOp::Ne => false,
            CompareOp::Eq
            | CompareOp::Lt
            | CompareOp::Le
            | CompareOp::Gt
            | CompareOp::Ge
            | CompareOp::Between
            | CompareOp::BeginsWith => true,
        }
    }

    /// The operator as written in runbook files.
    pub fn as_str(self) -> &'static str {
        match self {
            CompareOp::Eq => "=",
            CompareOp::Ne => "<>",
            CompareOp::Lt => "<",
            CompareOp::Le => "<=",
            CompareOp::Gt => ">",
            CompareOp::Ge => ">=",
            CompareOp::Between => "between",
            CompareOp::BeginsWith => "begins_with",
        }
    }
}

impl fmt::Display for CompareOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A comparison with the parameter(s) it takes: the operator and its operand count cannot disagree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Comparison {
    /// Any one-operand operator (everything but `between`), with the parameter's name.
    One(CompareOp, String),
    /// `between lower and upper`, both inclusive.
    Between(String, String),
}

impl Comparison {
    /// Pairs an operator with its parameters; `None` when the count does not fit the operator.
    pub(super) fn new(op: CompareOp, params: &[String]) -> Option<Comparison> {
        match (op, params) {
            (CompareOp::Between, [lower, upper]) => Some(Comparison::Between(lower.clone(), upper.clone())),
            (CompareOp::Between, _) => None,
            (op, [one]) => Some(Comparison::One(op, one.clone())),
            (_, _) => None,
        }
    }

    pub fn op(&self) -> CompareOp {
        match self {
            Comparison::One(op, _) => *op,
            Comparison::Between(..) => CompareOp::Between,
        }
    }

    /// The parameter names, in order.
    pub fn params(&self) -> Vec<&str> {
        match self {
            Comparison::One(_, p) => vec![p.as_str()],
            Comparison::Between(lower, upper) => vec![lower.as_str(), upper.as_str()],
        }
    }
}

/// `attribute <op> parameter(s)`: a key condition part or a filter condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub(super) attribute: String,
    pub(super) comparison: Comparison,
}

impl Condition {
    pub fn attribute(&self) -> &str {
        &self.attribute
    }
    pub fn comparison(&self) -> &Comparison {
        &self.comparison
    }
    pub fn op(&self) -> CompareOp {
        self.comparison.op()
    }
}

/// The key part of a query or `GetItem`: equality on the partition key, optionally a sort key condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyCondition {
    pub(super) partition: Condition,
    pub(super) sort: Option<Condition>,
}

impl KeyCondition {
    pub fn partition(&self) -> &Condition {
        &self.partition
    }
    pub fn sort(&self) -> Option<&Condition> {
        self.sort.as_ref()
    }
}

/// The IAM role a runbook runs as, with the parts of its ARN the table ARN is built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleArn {
    pub(super) arn: String,
    pub(super) partition: String,
    pub(super) account: String,
}

impl RoleArn {
    pub fn as_str(&self) -> &str {
        &self.arn
    }
    /// `aws`, `aws-cn`, `aws-us-gov`, …
    pub fn partition(&self) -> &str {
        &self.partition
    }
    /// The 12-digit account id.
    pub fn account(&self) -> &str {
        &self.account
    }
}

/// A loaded, validated runbook.
#[derive(Debug, Clone)]
pub struct Runbook {
    pub(super) id: RunbookId,
    pub(super) file: PathBuf,
    pub(super) description: String,
    pub(super) table: KeySchema,
    pub(super) index: Option<KeySchema>,
    pub(super) operation: Operation,
    pub(super) role: RoleArn,
    pub(super) parameters: Vec<Parameter>,
    /// `None` only for scans.
    pub(super) key: Option<KeyCondition>,
    pub(super) filter: Vec<Condition>,
    /// Empty: whole items.
    pub(super) projection: Vec<String>,
    pub(super) mask: Vec<String>,
    pub(super) max_items: u32,
    pub(super) approval: ApprovalPolicy,
    /// Masked attributes a requester may ask to see in clear (`--unmask`).
    pub(super) unmaskable: Vec<String>,
    /// `update_item` only: what is written and under which precondition.
    pub(super) update: Option<UpdateSpec>,
    pub(super) incident: super::IncidentGate,
    pub(super) break_glass: bool,
}

impl Runbook {
    pub fn id(&self) -> &RunbookId {
        &self.id
    }
    /// The file the runbook was loaded from.
    pub fn file(&self) -> &Path {
        &self.file
    }
    pub fn description(&self) -> &str {
        &self.description
    }
    pub fn table(&self) -> &KeySchema {
        &self.table
    }
    pub fn index(&self) -> Option<&KeySchema> {
        self.index.as_ref()
    }
    pub fn operation(&self) -> Operation {
        self.operation
    }
    pub fn role(&self) -> &RoleArn {
        &self.role
    }
    /// The table's ARN in `region`, in the role's partition and account (the table a runbook reads is always in its
    /// role's account).
    pub fn table_arn(&self, region: &str) -> String {
        format!("arn:{}:dynamodb:{region}:{}:table/{}", self.role.partition(), self.role.account(), self.table.name)
    }
    /// Parameters in the order the runbook declares them (the order of the Slack form).
    pub fn parameters(&self) -> &[Parameter] {
        &self.parameters
    }
    pub fn parameter(&self, name: &str) -> Option<&Parameter> {
        self.parameters.iter().find(|p| p.name == name)
    }
    pub fn key(&self) -> Option<&KeyCondition> {
        self.key.as_ref()
    }
    pub fn filter(&self) -> &[Condition] {
        &self.filter
    }
    pub fn projection(&self) -> &[String] {
        &self.projection
    }
    pub fn mask(&self) -> &[String] {
        &self.mask
    }
    pub fn max_items(&self) -> u32 {
        self.max_items
    }
    /// The approval policy to copy into each new request.
    pub fn approval(&self) -> &ApprovalPolicy {
        &self.approval
    }
    pub fn unmaskable(&self) -> &[String] {
        &self.unmaskable
    }
    /// The write of an `update_item` runbook.
    pub fn update(&self) -> Option<&UpdateSpec> {
        self.update.as_ref()
    }
    /// Whether requests must name an open PagerDuty incident, and on which services.
    pub fn incident(&self) -> &super::IncidentGate {
        &self.incident
    }
    /// Whether someone on call for the runbook may run it at once with `--break-glass`.
    pub fn allows_break_glass(&self) -> bool {
        self.break_glass
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_comparison_takes_exactly_the_operands_its_operator_needs() {
        let one = vec!["a".to_owned()];
        let two = vec!["a".to_owned(), "b".to_owned()];
        assert_eq!(Comparison::new(CompareOp::Between, &two), Some(Comparison::Between("a".into(), "b".into())));
        assert_eq!(Comparison::new(CompareOp::Between, &one), None);
        assert_eq!(Comparison::new(CompareOp::Ge, &one), Some(Comparison::One(CompareOp::Ge, "a".into())));
        assert_eq!(Comparison::new(CompareOp::Ge, &two), None);
        assert_eq!(Comparison::new(CompareOp::Eq, &[]), None);
        assert_eq!(Comparison::Between("a".into(), "b".into()).params(), ["a", "b"]);
    }

    #[test]
    fn not_equal_is_for_filters_only() {
        assert!(!CompareOp::Ne.allowed_on_sort_key());
        assert!(CompareOp::BeginsWith.allowed_on_sort_key());
    }
}
