//! Reviewed writes: the `update:` section of an `operation: update_item` runbook, checked and rendered.
//!
//! ```yaml
//! update:
//!   set:
//!     - { attribute: status, value: cancelled }        # a literal, fixed by the runbook
//!     - { attribute: refund_note, param: refund_note } # a typed parameter
//!   remove: [payment_hold]
//!   condition:                                         # required: written only while the item is still so
//!     - { attribute: status, op: "=", value: paid }
//! ```
//!
//! A write changes one item, named by its full primary key (`key:`, as for `get_item`). Its precondition becomes
//! the `ConditionExpression`, so the item is written only while it is in the state the approvers were told about;
//! DynamoDB checks it atomically with the write. Values follow the same rule as reads: user text only ever becomes
//! a bound `:pN` value; attribute names and literals come from the runbook file.

use serde::Deserialize;

use super::BoundValue;
use super::model::CompareOp;
use super::schema::RawOp;

/// `update:` as written in the file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawUpdate {
    #[serde(default)]
    pub set: Vec<RawAssignment>,
    #[serde(default)]
    pub remove: Vec<String>,
    #[serde(default)]
    pub condition: Vec<RawPrecondition>,
}

/// One `update.set` entry: an attribute and either a parameter or a literal value.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAssignment {
    pub attribute: String,
    #[serde(default)]
    pub param: Option<String>,
    #[serde(default)]
    pub value: Option<RawLiteral>,
}

/// One `update.condition` entry, like a filter but with a literal `value` allowed in place of `param`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPrecondition {
    pub attribute: String,
    pub op: RawOp,
    #[serde(default)]
    pub param: Option<String>,
    #[serde(default)]
    pub value: Option<RawLiteral>,
}

/// A literal in a runbook: a whole number is written as DynamoDB `N`, anything else as `S`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(super) enum RawLiteral {
    Integer(i64),
    Text(String),
}

impl RawLiteral {
    pub(super) fn to_bound(&self) -> BoundValue {
        match self {
            RawLiteral::Integer(n) => BoundValue::N(n.to_string()),
            RawLiteral::Text(s) => BoundValue::S(s.clone()),
        }
    }
}

/// Where a written or compared value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operand {
    /// A declared parameter, by name: the requester's typed value.
    Param(String),
    /// A value fixed in the runbook file.
    Literal(BoundValue),
}

/// `set attribute = operand`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    pub(super) attribute: String,
    pub(super) operand: Operand,
}

impl Assignment {
    pub fn attribute(&self) -> &str {
        &self.attribute
    }
    pub fn operand(&self) -> &Operand {
        &self.operand
    }
}

/// `attribute <op> operand` in the precondition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Precondition {
    pub(super) attribute: String,
    pub(super) op: CompareOp,
    pub(super) operand: Operand,
}

impl Precondition {
    pub fn attribute(&self) -> &str {
        &self.attribute
    }
    pub fn op(&self) -> CompareOp {
        self.op
    }
    pub fn operand(&self) -> &Operand {
        &self.operand
    }
}

/// A checked `update:` section: at least one change, and a precondition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateSpec {
    pub(super) set: Vec<Assignment>,
    pub(super) remove: Vec<String>,
    pub(super) condition: Vec<Precondition>,
}

impl UpdateSpec {
    pub fn set(&self) -> &[Assignment] {
        &self.set
    }
    pub fn remove(&self) -> &[String] {
        &self.remove
    }
    pub fn condition(&self) -> &[Precondition] {
        &self.condition
    }

    /// Every attribute the write names: written, removed and compared.
    pub(super) fn attributes(&self) -> impl Iterator<Item = &String> {
        self.set
            .iter()
            .map(|a| &a.attribute)
            .chain(self.remove.iter())
            .chain(self.condition.iter().map(|c| &c.attribute))
    }
}

/// The operators a precondition accepts: one operand each. `between` would need two and is not worth the
/// complexity here; a precondition names the state the approver was told about, which is an equality in practice.
pub(super) fn precondition_op_allowed(op: CompareOp) -> bool {
    match op {
        CompareOp::Eq | CompareOp::Ne | CompareOp::Lt | CompareOp::Le | CompareOp::Gt | CompareOp::Ge => true,
        CompareOp::BeginsWith => true,
        CompareOp::Between => false,
    }
}

/// `SET #a = :x, … REMOVE #b, …` and the precondition, with placeholders only: names from the runbook, values
/// bound (literals from the runbook, parameters from the requester's checked arguments).
pub(super) fn render_update(
    spec: &UpdateSpec,
    ph: &mut super::render::Placeholders,
    args: &super::render::Args,
) -> Result<super::RenderedUpdate, super::ParamError> {
    let bind = |ph: &mut super::render::Placeholders, operand: &Operand| -> Result<(String, BoundValue), _> {
        let value = match operand {
            Operand::Param(name) => args.bound(name)?,
            Operand::Literal(value) => value.clone(),
        };
        Ok((ph.value(value.clone()), value))
    };
    let mut set = std::collections::BTreeMap::new();
    let mut assignments = Vec::new();
    for a in &spec.set {
        let name = ph.name(&a.attribute);
        let (placeholder, value) = bind(ph, &a.operand)?;
        assignments.push(format!("{name} = {placeholder}"));
        set.insert(a.attribute.clone(), value);
    }
    let removals: Vec<String> = spec.remove.iter().map(|a| ph.name(a)).collect();
    let mut clauses = Vec::new();
    if !assignments.is_empty() {
        clauses.push(format!("SET {}", assignments.join(", ")));
    }
    if !removals.is_empty() {
        clauses.push(format!("REMOVE {}", removals.join(", ")));
    }
    let mut conditions = Vec::new();
    for c in &spec.condition {
        let name = ph.name(&c.attribute);
        let (value, _) = bind(ph, &c.operand)?;
        conditions.push(match c.op {
            CompareOp::BeginsWith => format!("begins_with({name}, {value})"),
            op => format!("{name} {} {value}", op.as_str()),
        });
    }
    let mut remove = spec.remove.clone();
    remove.sort();
    Ok(super::RenderedUpdate {
        update_expression: clauses.join(" "),
        condition_expression: conditions.join(" AND "),
        set,
        remove,
        return_values: super::UPDATE_RETURN_VALUES.to_owned(),
    })
}
