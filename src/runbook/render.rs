//! Rendering a runbook with a user's raw arguments into the exact [`RenderedQuery`] an approver approves.
//!
//! The one security rule here: user text only ever becomes a bound value (`ExpressionAttributeValues`, or a
//! `GetItem` key value). Expressions are assembled from the runbook's structure alone, with `#nN` placeholders for
//! attribute names (taken from the runbook) and `:pN` placeholders for values, numbered in a fixed order so the
//! same arguments always produce the same request and the same fingerprint.

use std::collections::BTreeMap;
use std::fmt;

use super::model::{CompareOp, Comparison, Condition, Runbook};
use super::param::{MAX_VALUE_CHARS, Parameter, TypedValue, ValueProblem};
use super::similar::closest;
use super::{BoundValue, KeyValue, Operation, RenderedQuery};

/// Why a user's arguments were refused. Shown to the user as is (no internal details inside).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParamError {
    /// A `name=value` for a parameter the runbook does not have.
    Unknown {
        name: String,
        suggestion: Option<String>,
        known: Vec<String>,
    },
    /// A parameter without a default was not given.
    Missing {
        name: String,
        expected: String,
        description: String,
    },
    /// Given, but blank.
    Empty {
        name: String,
    },
    TooLong {
        name: String,
        chars: usize,
        max: usize,
    },
    PatternMismatch {
        name: String,
        value: String,
        pattern: String,
    },
    NotInEnum {
        name: String,
        value: String,
        allowed: Vec<String>,
    },
    NotAnInteger {
        name: String,
        value: String,
    },
    OutOfRange {
        name: String,
        value: String,
        min: Option<i64>,
        max: Option<i64>,
    },
    BadDate {
        name: String,
        value: String,
    },
    BadTimestamp {
        name: String,
        value: String,
    },
    /// `between` whose lower bound is above its upper bound: it could match nothing.
    RangeReversed {
        lower: String,
        lower_value: String,
        upper: String,
        upper_value: String,
    },
}

impl ParamError {
    /// The parameter the error is about (the lower bound's, for a reversed range).
    pub fn parameter(&self) -> &str {
        match self {
            ParamError::Unknown { name, .. }
            | ParamError::Missing { name, .. }
            | ParamError::Empty { name }
            | ParamError::TooLong { name, .. }
            | ParamError::PatternMismatch { name, .. }
            | ParamError::NotInEnum { name, .. }
            | ParamError::NotAnInteger { name, .. }
            | ParamError::OutOfRange { name, .. }
            | ParamError::BadDate { name, .. }
            | ParamError::BadTimestamp { name, .. } => name,
            ParamError::RangeReversed { lower, .. } => lower,
        }
    }

    fn from_problem(parameter: &Parameter, raw: &str, problem: ValueProblem) -> ParamError {
        let name = parameter.name().to_owned();
        let value = raw.trim().to_owned();
        match problem {
            ValueProblem::Empty => ParamError::Empty { name },
            ValueProblem::TooLong { chars } => ParamError::TooLong { name, chars, max: MAX_VALUE_CHARS },
            ValueProblem::PatternMismatch { pattern } => ParamError::PatternMismatch { name, value, pattern },
            ValueProblem::NotInEnum { allowed } => ParamError::NotInEnum { name, value, allowed },
            ValueProblem::NotAnInteger => ParamError::NotAnInteger { name, value },
            ValueProblem::OutOfRange { min, max } => ParamError::OutOfRange { name, value, min, max },
            ValueProblem::BadDate => ParamError::BadDate { name, value },
            ValueProblem::BadTimestamp => ParamError::BadTimestamp { name, value },
        }
    }
}

/// A user value as shown back in a message: quoted and escaped, and cut short when long.
struct Shown<'a>(&'a str);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const MAX: usize = 60;
        if self.0.chars().count() > MAX {
            let head: String = self.0.chars().take(MAX).collect();
            write!(f, "{head:?}…")
        } else {
            write!(f, "{:?}", self.0)
        }
    }
}

impl fmt::Display for ParamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParamError::Unknown { name, suggestion: Some(s), .. } => {
                write!(f, "unknown parameter `{name}` — did you mean `{s}`?")
            }
            ParamError::Unknown { name, suggestion: None, known } if known.is_empty() => {
                write!(f, "unknown parameter `{name}` — this runbook takes no parameters")
            }
            ParamError::Unknown { name, suggestion: None, known } => {
                write!(f, "unknown parameter `{name}` — this runbook takes: {}", known.join(", "))
            }
            ParamError::Missing { name, expected, description } => {
                write!(f, "`{name}` is required ({expected})")?;
                if !description.is_empty() {
                    write!(f, ": {description}")?;
                }
                Ok(())
            }
            ParamError::Empty { name } => write!(f, "`{name}` is empty — give a value or leave it out"),
            ParamError::TooLong { name, chars, max } => {
                write!(f, "`{name}` is {chars} characters long — at most {max} are accepted")
            }
            ParamError::PatternMismatch { name, value, pattern } => {
                write!(f, "`{name}` = {} does not match the pattern `{pattern}`", Shown(value))
            }
            ParamError::NotInEnum { name, value, allowed } => {
                write!(f, "`{name}` = {} is not allowed — use one of: {}", Shown(value), allowed.join(", "))
            }
            ParamError::NotAnInteger { name, value } => {
                write!(f, "`{name}` = {} is not a whole number", Shown(value))
            }
            ParamError::OutOfRange { name, value, min, max } => {
                write!(f, "`{name}` = {value} is out of range — ")?;
                match (min, max) {
                    (Some(lo), Some(hi)) => write!(f, "use a number from {lo} to {hi}"),
                    (Some(lo), None) => write!(f, "use a number of at least {lo}"),
                    (None, Some(hi)) => write!(f, "use a number of at most {hi}"),
                    (None, None) => write!(f, "use a smaller number"),
                }
            }
            ParamError::BadDate { name, value } => {
                write!(f, "`{name}` = {} is not a date — use YYYY-MM-DD, e.g. 2026-11-01", Shown(value))
            }
            ParamError::BadTimestamp { name, value } => write!(
                f,
                "`{name}` = {} is not a timestamp — use RFC 3339 with a time zone, e.g. 2026-11-01T09:30:00Z",
                Shown(value)
            ),
            ParamError::RangeReversed { lower, lower_value, upper, upper_value } => write!(
                f,
                "`{lower}` ({}) is after `{upper}` ({}) — the range is empty; swap the two values",
                Shown(lower_value),
                Shown(upper_value)
            ),
        }
    }
}

impl std::error::Error for ParamError {}

/// Hands out placeholders in first-use order: `#n0`, `#n1`, … per distinct attribute, `:p0`, `:p1`, … per value.
#[derive(Default)]
pub(super) struct Placeholders {
    names: BTreeMap<String, String>,
    name_order: Vec<String>,
    values: BTreeMap<String, BoundValue>,
}

impl Placeholders {
    pub(super) fn name(&mut self, attribute: &str) -> String {
        if let Some(i) = self.name_order.iter().position(|a| a == attribute) {
            return format!("#n{i}");
        }
        let placeholder = format!("#n{}", self.name_order.len());
        self.name_order.push(attribute.to_owned());
        self.names.insert(placeholder.clone(), attribute.to_owned());
        placeholder
    }

    pub(super) fn value(&mut self, value: BoundValue) -> String {
        let placeholder = format!(":p{}", self.values.len());
        self.values.insert(placeholder.clone(), value);
        placeholder
    }
}

/// The parsed arguments, by parameter name.
pub(super) struct Args(BTreeMap<String, TypedValue>);

impl Args {
    /// Validation guarantees every referenced parameter is declared, and rendering only gets here when every
    /// declared one has a value; should that ever not hold, the request is refused rather than rendered.
    pub(super) fn bound(&self, name: &str) -> Result<BoundValue, ParamError> {
        self.0.get(name).map(TypedValue::to_bound).ok_or_else(|| ParamError::Missing {
            name: name.to_owned(),
            expected: "a value".to_owned(),
            description: String::new(),
        })
    }
}

impl Runbook {
    /// Checks the user's raw `name=value` arguments and renders the exact request. `region` is the AWS region the
    /// table lives in (from the configuration). Returns every problem with the arguments at once.
    pub fn render(&self, args: &BTreeMap<String, String>, region: &str) -> Result<RenderedQuery, Vec<ParamError>> {
        let parsed = self.parse_args(args)?;
        self.build(&parsed, region).map_err(|e| vec![e])
    }

    fn parse_args(&self, args: &BTreeMap<String, String>) -> Result<Args, Vec<ParamError>> {
        let mut errors = Vec::new();
        let known: Vec<String> = self.parameters.iter().map(|p| p.name().to_owned()).collect();
        for name in args.keys() {
            if self.parameter(name).is_none() {
                let suggestion = closest(name, known.iter().map(String::as_str)).map(str::to_owned);
                errors.push(ParamError::Unknown { name: name.clone(), suggestion, known: known.clone() });
            }
        }
        let mut values = BTreeMap::new();
        for parameter in &self.parameters {
            let raw = match (args.get(parameter.name()), parameter.default()) {
                (Some(raw), _) => raw.as_str(),
                (None, Some(default)) => default,
                (None, None) => {
                    errors.push(ParamError::Missing {
                        name: parameter.name().to_owned(),
                        expected: parameter.kind().to_string(),
                        description: parameter.description().to_owned(),
                    });
                    continue;
                }
            };
            match parameter.parse(raw) {
                Ok(value) => {
                    values.insert(parameter.name().to_owned(), value);
                }
                Err(problem) => errors.push(ParamError::from_problem(parameter, raw, problem)),
            }
        }
        // A reversed `between` matches nothing; say so instead of running an empty query.
        let between = self.key.iter().flat_map(|k| k.sort.iter()).chain(self.filter.iter());
        for condition in between {
            if let Comparison::Between(lower, upper) = &condition.comparison
                && let (Some(lo), Some(hi)) = (values.get(lower), values.get(upper))
                && lo.partial_cmp_same_kind(hi) == Some(std::cmp::Ordering::Greater)
            {
                errors.push(ParamError::RangeReversed {
                    lower: lower.clone(),
                    lower_value: lo.canonical_text(),
                    upper: upper.clone(),
                    upper_value: hi.canonical_text(),
                });
            }
        }
        if errors.is_empty() { Ok(Args(values)) } else { Err(errors) }
    }

    fn build(&self, args: &Args, region: &str) -> Result<RenderedQuery, ParamError> {
        let mut ph = Placeholders::default();
        let mut key = Vec::new();
        let mut partition_key = None;
        let mut key_condition_expression = None;

        if let Some(k) = &self.key {
            let partition_value = single_param(&k.partition.comparison).map(|p| args.bound(p)).transpose()?;
            if let Some(value) = partition_value {
                partition_key = Some(KeyValue { attribute: k.partition.attribute.clone(), value });
            }
            match self.operation {
                // GetItem and UpdateItem take the key as plain values, no expression: validation made the sort op `=`.
                Operation::GetItem | Operation::UpdateItem => {
                    key.extend(partition_key.clone());
                    if let Some(sort) = &k.sort
                        && let Some(param) = single_param(&sort.comparison)
                    {
                        key.push(KeyValue { attribute: sort.attribute.clone(), value: args.bound(param)? });
                    }
                }
                Operation::Query | Operation::Scan => {
                    let mut parts = vec![condition_expression(&mut ph, &k.partition, args)?];
                    if let Some(sort) = &k.sort {
                        parts.push(condition_expression(&mut ph, sort, args)?);
                    }
                    key_condition_expression = Some(parts.join(" AND "));
                }
            }
        }

        let filter_expression = if self.filter.is_empty() {
            None
        } else {
            let parts =
                self.filter.iter().map(|c| condition_expression(&mut ph, c, args)).collect::<Result<Vec<_>, _>>()?;
            Some(parts.join(" AND "))
        };

        let update = match &self.update {
            Some(spec) => Some(super::write::render_update(spec, &mut ph, args)?),
            None => None,
        };

        let projection_expression = if self.projection.is_empty() {
            None
        } else {
            Some(self.projection.iter().map(|a| ph.name(a)).collect::<Vec<_>>().join(", "))
        };

        let table_arn = self.table_arn(region);
        let index_arn = self.index.as_ref().map(|i| format!("{table_arn}/index/{}", i.name));

        Ok(RenderedQuery {
            runbook: self.id.clone(),
            role_arn: self.role.as_str().to_owned(),
            table: self.table.name.clone(),
            table_arn,
            index: self.index.as_ref().map(|i| i.name.clone()),
            index_arn,
            operation: self.operation,
            key,
            partition_key,
            key_condition_expression,
            filter_expression,
            projection_expression,
            expression_attribute_names: ph.names,
            expression_attribute_values: ph.values,
            projected_attributes: self.projection.clone(),
            accessed_attributes: self.accessed_attributes(),
            masked_attributes: self.mask.clone(),
            item_cap: self.max_items,
            update,
            unmasked_attributes: Vec::new(),
        })
    }

    /// Every attribute the request touches, sorted: the table's and the index's key attributes (AWS requires all
    /// of them in `dynamodb:Attributes`, see `policy.rs`), the filter's and the projection's.
    fn accessed_attributes(&self) -> Vec<String> {
        let mut out = std::collections::BTreeSet::new();
        for schema in std::iter::once(&self.table).chain(self.index.iter()) {
            out.insert(schema.partition_key.clone());
            out.extend(schema.sort_key.clone());
        }
        out.extend(self.filter.iter().map(|c| c.attribute.clone()));
        out.extend(self.projection.iter().cloned());
        // A write names the attributes it sets, removes and compares: `dynamodb:Attributes` is pinned to these.
        out.extend(self.update.iter().flat_map(|u| u.attributes().cloned()));
        out.into_iter().collect()
    }
}

fn single_param(comparison: &Comparison) -> Option<&str> {
    match comparison {
        Comparison::One(_, p) => Some(p),
        Comparison::Between(..) => None,
    }
}

/// `#n = :p`, `#n BETWEEN :a AND :b`, `begins_with(#n, :p)`, …: only placeholders, never user text.
fn condition_expression(ph: &mut Placeholders, condition: &Condition, args: &Args) -> Result<String, ParamError> {
    let name = ph.name(&condition.attribute);
    Ok(match &condition.comparison {
        Comparison::Between(lower, upper) => {
            let lo = ph.value(args.bound(lower)?);
            let hi = ph.value(args.bound(upper)?);
            format!("{name} BETWEEN {lo} AND {hi}")
        }
        Comparison::One(op, param) => {
            let value = ph.value(args.bound(param)?);
            match op {
                CompareOp::BeginsWith => format!("begins_with({name}, {value})"),
                CompareOp::Eq
                | CompareOp::Ne
                | CompareOp::Lt
                | CompareOp::Le
                | CompareOp::Gt
                | CompareOp::Ge
                | CompareOp::Between => format!("{name} {} {value}", op.as_str()),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_reuse_a_name_but_never_a_value() {
        let mut ph = Placeholders::default();
        assert_eq!(ph.name("created_at"), "#n0");
        assert_eq!(ph.name("total"), "#n1");
        assert_eq!(ph.name("created_at"), "#n0");
        assert_eq!(ph.value(BoundValue::S("a".into())), ":p0");
        assert_eq!(ph.value(BoundValue::S("a".into())), ":p1");
        assert_eq!(ph.names.len(), 2);
        assert_eq!(ph.values.len(), 2);
    }

    #[test]
    fn long_or_odd_values_are_shown_quoted_escaped_and_cut() {
        assert_eq!(Shown("a\nb\"c").to_string(), "\"a\\nb\\\"c\"");
        let long = "x".repeat(100);
        assert_eq!(Shown(&long).to_string(), format!("{:?}…", "x".repeat(60)));
    }

    #[test]
    fn an_unknown_parameter_on_a_runbook_without_parameters_says_so() {
        let e = ParamError::Unknown { name: "x".into(), suggestion: None, known: vec![] };
        assert_eq!(e.to_string(), "unknown parameter `x` — this runbook takes no parameters");
    }
}
