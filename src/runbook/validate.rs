//! Turning one runbook file into a checked [`Runbook`], collecting every mistake in it.
//!
//! Validation does not stop at the first problem: an author fixing a runbook wants the whole list at once. Each
//! check names the field path and the fix. The rules exist because each mistake would otherwise surface later as
//! a confusing DynamoDB `ValidationException`, an `AccessDenied` from the session policy, or — worse — a runbook
//! that quietly reads more than its author meant (free-text strings, scans, unmasked attributes).

use std::collections::HashSet;
use std::path::Path;
use std::sync::LazyLock;
use std::time::Duration;

use regex::Regex;
use serde_saphyr::MessageFormatter;

use super::error::RunbookError;
use super::model::{CompareOp, Comparison, Condition, KeyCondition, KeySchema, RoleArn, Runbook};
use super::param::{ParamKind, Parameter, Pattern, StringRule};
use super::schema::{
    RawApproval, RawDefault, RawFilter, RawKey, RawKeySchema, RawOp, RawParamType, RawParameter, RawRunbook,
};
use super::similar::closest;
use super::{ApprovalPolicy, ApproverSources, Operation};
use crate::ids::{RunbookId, SlackUserId};

mod update;

pub use update::WRITE_DEFAULT_APPROVALS;

/// Settings that apply to runbooks which do not set their own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunbookDefaults {
    /// How long a request waits for approval when the runbook has no `approval.ttl`.
    pub ttl: Duration,
}

impl Default for RunbookDefaults {
    fn default() -> Self {
        RunbookDefaults { ttl: Duration::from_secs(30 * 60) }
    }
}

/// The hard item cap range. 10 000 items is already far more than anyone reads in Slack.
pub const MAX_ITEMS_LIMIT: u32 = 10_000;
/// Most distinct approvers a runbook may require.
pub const MAX_REQUIRED_APPROVALS: u8 = 5;
/// Shortest and longest approval window.
pub const MIN_TTL: Duration = Duration::from_secs(60);
pub const MAX_TTL: Duration = Duration::from_secs(24 * 60 * 60);

static TABLE_NAME: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^[A-Za-z0-9_.-]{3,255}$").expect("static regex"));
static ATTRIBUTE_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z_][A-Za-z0-9_.-]{0,254}$").expect("static regex"));
static PARAM_NAME: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^[a-z][a-z0-9_]{0,63}$").expect("static regex"));
static ROLE_ARN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^arn:(aws(?:-[a-z]+)*):iam::([0-9]{12}):role/((?:[A-Za-z0-9+=,.@_-]+/)*[A-Za-z0-9+=,.@_-]{1,64})$")
        .expect("static regex")
});
/// Names a parameter may not take. The query form has one input per parameter, its block id being the
/// parameter's name, next to jitgate's own inputs: a parameter named like one of those would share its block id
/// (Slack refuses a view with duplicate block ids, and the submitted value would be taken for the reason).
const RESERVED_PARAM_NAMES: [&str; 2] = [crate::messages::REASON_BLOCK, crate::messages::RUNBOOK_BLOCK];
static PAGERDUTY_ID: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^[A-Z0-9]{2,32}$").expect("static regex"));

/// Parses and validates one runbook file's text. `file` is the path used in messages and to check the id.
pub(super) fn parse_runbook(file: &Path, text: &str, defaults: &RunbookDefaults) -> Result<Runbook, Vec<RunbookError>> {
    let label = file_label(file);
    if text.trim().is_empty() {
        return Err(vec![RunbookError::new(
            label,
            "(document)",
            "the file is empty",
            "write a runbook (see docs/runbooks.md) or delete the file",
        )]);
    }
    let raw: RawRunbook = read_yaml(text).map_err(|e| vec![yaml_error(&label, e)])?;
    Checker { file: label, errors: Vec::new(), broken_parameters: Vec::new() }.check(file, raw, defaults)
}

/// The file name as shown in messages.
pub(super) fn file_label(file: &Path) -> String {
    file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| file.display().to_string())
}

/// A YAML error as found: where (a field path such as `parameters[0]`, empty at the top level or for a syntax
/// error; the line and column when known) and what.
struct YamlError {
    path: String,
    position: Option<(u64, u64)>,
    problem: String,
}

/// Parses one runbook document. serde_saphyr reports positions but not field paths, so the deserializer is wrapped
/// by serde_path_to_error, which records the path to the field being read when an error happens.
fn read_yaml(text: &str) -> Result<RawRunbook, YamlError> {
    let options = serde_saphyr::options! {
        // A repeated key is a mistake in a runbook (which value did the author mean?), never silently resolved.
        duplicate_keys: serde_saphyr::DuplicateKeyPolicy::Error,
        // Our messages carry the position; the library's source excerpt would be a second, multi-line copy.
        with_snippet: false,
    };
    let mut path = String::new();
    let parsed = serde_saphyr::with_deserializer_from_str_with_options(text, options, |de| {
        serde_path_to_error::deserialize(de).map_err(|e| {
            path = e.path().to_string();
            e.into_inner()
        })
    });
    parsed.map_err(|error| {
        let error = error.without_snippet();
        let position = error.location().filter(|l| l.line() > 0).map(|l| (l.line(), l.column()));
        let (path, problem) = match error {
            // A syntax error is about the text, not a field: the path would name whichever field was being read.
            serde_saphyr::Error::ExternalMessage { .. } => (String::new(), problem_text(error, text)),
            // serde_path_to_error includes the unknown key itself; the field is the map that does not have it.
            serde_saphyr::Error::SerdeUnknownField { field, .. } => {
                let path = path.strip_suffix(field.as_str()).map(|p| p.trim_end_matches('.')).unwrap_or(&path);
                (path.to_owned(), problem_text(error, text))
            }
            _ => (path, problem_text(error, text)),
        };
        // serde_path_to_error writes the top level as `.` and a key it could not read (a repeated one) as `?`.
        let path = path.trim_end_matches('?').trim_end_matches('.').to_owned();
        YamlError { path, position, problem }
    })
}

/// The problem in serde's own words (`unknown field `x`, expected one of `a`, `b``), which runbook authors have seen
/// from other tools; serde_saphyr's wording drops the backticks and adds advice about its own options.
fn problem_text(error: &serde_saphyr::Error, text: &str) -> String {
    use serde_saphyr::Error as E;
    let problem = match error {
        E::SerdeUnknownField { field, expected, .. } if expected.is_empty() => {
            format!("unknown field `{field}`, there are no fields")
        }
        E::SerdeUnknownField { field, expected, .. } => {
            format!("unknown field `{field}`, expected {}", one_of(expected))
        }
        E::SerdeUnknownVariant { variant, expected, .. } => {
            format!("unknown variant `{variant}`, expected {}", one_of(expected))
        }
        E::DuplicateMappingKey { key: Some(key), .. } => format!("duplicate entry with key `{key}`"),
        E::DuplicateMappingKey { key: None, .. } => "duplicate entry".to_owned(),
        // The scalar that did not parse as the wanted type, read back from the text at the error's position.
        E::InvalidScalar { ty, location } => match scalar_at(text, location.line(), location.column()) {
            Some(scalar) => format!("invalid type: string {scalar:?}, expected {ty}"),
            None => format!("invalid {ty}"),
        },
        other => serde_saphyr::DefaultMessageFormatter.format_message(other).into_owned(),
    };
    // The message is used as one line of a report.
    problem.replace(['\n', '\r'], " ")
}

/// serde's list of expected names: "`a`", "`a` or `b`", "one of `a`, `b`, `c`".
fn one_of(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    match quoted.as_slice() {
        [one] => one.clone(),
        [a, b] => format!("{a} or {b}"),
        _ => format!("one of {}", quoted.join(", ")),
    }
}

/// The plain or quoted scalar starting at a 1-based line and column, without a trailing comment.
fn scalar_at(text: &str, line: u64, column: u64) -> Option<String> {
    let line = text.lines().nth(usize::try_from(line).ok()?.checked_sub(1)?)?;
    let rest: String = line.chars().skip(usize::try_from(column).ok()?.checked_sub(1)?).collect();
    let rest = rest.split(" #").next().unwrap_or("").trim();
    let unquoted = rest
        .strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .or_else(|| rest.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')))
        .unwrap_or(rest);
    (!unquoted.is_empty()).then(|| unquoted.to_owned())
}

/// Turns a YAML error into our format: the field (with its position when known), the problem, and a fix that fits
/// the kind of mistake.
fn yaml_error(file: &str, error: YamlError) -> RunbookError {
    let YamlError { path, position, problem } = error;
    let at = position.map(|(line, column)| format!("line {line}, column {column}")).unwrap_or_default();
    // serde speaks Rust; runbook authors read "whole number".
    let problem = problem.replace("expected i64", "expected a whole number");
    let missing = problem.starts_with("missing field");
    let field = match (path.is_empty(), at.is_empty()) {
        // A missing field is reported at the start of the map that lacks it, which for the top level is line 1:
        // naming the map is clearer than a position.
        (true, _) if missing => "(top level)".to_owned(),
        (false, _) if missing => path,
        (false, false) => format!("{path} ({at})"),
        (false, true) => path,
        (true, false) => at,
        (true, true) => "(document)".to_owned(),
    };
    let fix = if problem.starts_with("duplicate") || problem.contains("duplicate entry") {
        "keep only one of the repeated entries"
    } else if problem.starts_with("unknown field") {
        "remove the field or correct its spelling to one of the expected fields"
    } else if missing {
        "add the field; every runbook needs it (see docs/runbooks.md)"
    } else if problem.starts_with("unknown variant") {
        "use one of the expected values"
    } else if problem.starts_with("invalid type") {
        "give the field a value of the expected type"
    } else {
        "fix the YAML syntax at that position"
    };
    RunbookError::new(file, field, problem, fix)
}

struct Checker {
    file: String,
    errors: Vec<RunbookError>,
    /// Names of parameters whose declaration has errors (references to them are not reported again).
    broken_parameters: Vec<String>,
}

impl Checker {
    fn err(&mut self, field: impl Into<String>, problem: impl Into<String>, fix: impl Into<String>) {
        self.errors.push(RunbookError::new(self.file.clone(), field, problem, fix));
    }

    /// Reports the problems a gate check (`gates.rs`) found.
    fn report(&mut self, problems: Vec<super::gates::Problem>) {
        for (field, problem, fix) in problems {
            self.err(field, problem, fix);
        }
    }

    fn check(mut self, file: &Path, raw: RawRunbook, defaults: &RunbookDefaults) -> Result<Runbook, Vec<RunbookError>> {
        let id = self.check_id(file, &raw.id);
        let description = raw.description.trim().to_owned();
        if description.is_empty() {
            self.err("description", "the description is empty", "say in one line what the runbook shows");
        }
        let table = self.check_key_schema("table", &raw.table);
        let index = raw.index.as_ref().map(|i| self.check_key_schema("index", i));
        self.check_operation(&raw);
        let role = self.check_role(&raw.role_arn);
        let parameters = self.check_parameters(&raw.parameters);

        let queried = index.as_ref().unwrap_or(&table);
        let key = self.check_key(raw.operation, raw.key.as_ref(), &table, queried, &parameters);
        let filter = self.check_filter(raw.operation, &raw.filter, queried, &parameters);
        self.check_parameter_use(&raw);
        let projection = self.check_projection(raw.projection.as_deref());
        let mask = self.check_mask(raw.operation, &raw.mask, &projection);
        let unmaskable = self.check_unmaskable(&raw.unmaskable, &mask);
        let update = self.check_update(&raw, &table, &parameters);
        let max_items = self.check_max_items(raw.max_items);
        let approval = self.check_approval(raw.operation, &raw.approval, defaults);
        let incident = match super::gates::check_incident(raw.incident.as_ref(), |id| PAGERDUTY_ID.is_match(id)) {
            Ok(gate) => Some(gate),
            Err(problems) => {
                self.report(problems);
                None
            }
        };

        let break_glass = super::gates::check_break_glass(raw.break_glass.as_ref());
        // Break-glass stands in for one approver, never for more: a runbook whose requests need two or more
        // approvals (every write, unless it says `required_approvals: 1`) cannot allow it.
        if let Some(needed) = approval.as_ref().map(|a| a.required_approvals).filter(|n| break_glass && *n > 1) {
            self.err(
                "break_glass.allowed",
                format!("break-glass is allowed but every request needs {needed} approvals"),
                "break-glass replaces one approver only: drop `break_glass` or set `approval.required_approvals: 1`",
            );
        }

        match (self.errors.is_empty(), id, role, max_items, approval, incident) {
            (true, Some(id), Some(role), Some(max_items), Some(approval), Some(incident)) => Ok(Runbook {
                id,
                file: file.to_owned(),
                description,
                table,
                index,
                operation: raw.operation,
                role,
                parameters: parameters.into_iter().flatten().collect(),
                key,
                filter,
                projection,
                mask,
                unmaskable,
                max_items,
                approval,
                update,
                incident,
                break_glass,
            }),
            _ => Err(self.errors),
        }
    }

    fn check_id(&mut self, file: &Path, raw: &str) -> Option<RunbookId> {
        let Some(id) = RunbookId::parse(raw) else {
            self.err(
                "id",
                format!("`{raw}` is not a valid runbook id"),
                "use 1–64 lowercase letters, digits and dashes, starting with a letter or digit (e.g. orders-by-customer)",
            );
            return None;
        };
        // The id is what people type; matching it to the file name makes the runbook easy to find in review.
        let stem = file.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        if stem != raw {
            self.err(
                "id",
                format!("the id `{raw}` does not match the file name `{}`", self.file),
                format!("rename the file to `{raw}.yaml` or set `id: {stem}`"),
            );
        }
        Some(id)
    }

    fn check_key_schema(&mut self, field: &str, raw: &RawKeySchema) -> KeySchema {
        if !TABLE_NAME.is_match(&raw.name) {
            self.err(
                format!("{field}.name"),
                format!("`{}` is not a valid DynamoDB {field} name", raw.name),
                "use 3–255 letters, digits, `_`, `-` or `.`",
            );
        }
        self.check_attribute_name(&format!("{field}.partition_key"), &raw.partition_key);
        if let Some(sort) = &raw.sort_key {
            self.check_attribute_name(&format!("{field}.sort_key"), sort);
            if sort == &raw.partition_key {
                self.err(
                    format!("{field}.sort_key"),
                    format!("the sort key `{sort}` is the same attribute as the partition key"),
                    "name the sort key attribute, or remove sort_key if there is none",
                );
            }
        }
        KeySchema { name: raw.name.clone(), partition_key: raw.partition_key.clone(), sort_key: raw.sort_key.clone() }
    }

    fn check_attribute_name(&mut self, field: &str, name: &str) -> bool {
        let ok = ATTRIBUTE_NAME.is_match(name);
        if !ok {
            self.err(
                field,
                format!("`{name}` is not an attribute name jitgate accepts"),
                "use a top-level attribute name: a letter or `_`, then letters, digits, `_`, `-` or `.` (at most 255)",
            );
        }
        ok
    }

    fn check_operation(&mut self, raw: &RawRunbook) {
        match raw.operation {
            Operation::Scan if !raw.allow_scan => self.err(
                "operation",
                "`scan` reads every item of the table or index",
                "use `operation: query` with a key, or add `allow_scan: true` if a full scan is really intended",
            ),
            Operation::Scan => {}
            Operation::Query | Operation::GetItem | Operation::UpdateItem if raw.allow_scan => self.err(
                "allow_scan",
                format!(
                    "`allow_scan` only applies to `operation: scan`, this runbook uses `{}`",
                    op_name(raw.operation)
                ),
                "remove `allow_scan`",
            ),
            Operation::Query | Operation::GetItem | Operation::UpdateItem => {}
        }
        if raw.operation == Operation::GetItem && raw.index.is_some() {
            self.err(
                "index",
                "`get_item` reads one item from the table itself; DynamoDB has no GetItem on an index",
                "remove `index`, or use `operation: query` to read from the index",
            );
        }
    }

    fn check_role(&mut self, raw: &str) -> Option<RoleArn> {
        match ROLE_ARN.captures(raw) {
            Some(c) => Some(RoleArn { arn: raw.to_owned(), partition: c[1].to_owned(), account: c[2].to_owned() }),
            None => {
                self.err(
                    "role_arn",
                    format!("`{raw}` is not an IAM role ARN"),
                    "write it as arn:aws:iam::<12-digit account>:role/<role name>",
                );
                None
            }
        }
    }

    /// One entry per declared parameter, `None` where the declaration is broken (already reported).
    fn check_parameters(&mut self, raw: &[RawParameter]) -> Vec<Option<Parameter>> {
        let mut seen = HashSet::new();
        raw.iter()
            .enumerate()
            .map(|(i, p)| {
                let field = format!("parameters[{i}]");
                if !PARAM_NAME.is_match(&p.name) {
                    self.err(
                        format!("{field}.name"),
                        format!("`{}` is not a valid parameter name", p.name),
                        "use lowercase letters, digits and `_`, starting with a letter (users type it as name=value)",
                    );
                } else if RESERVED_PARAM_NAMES.contains(&p.name.as_str()) {
                    self.err(
                        format!("{field}.name"),
                        format!("`{}` is reserved: the Slack forms use it for their own input", p.name),
                        "rename the parameter (e.g. `reason_code` instead of `reason`)",
                    );
                } else if !seen.insert(p.name.clone()) {
                    self.err(
                        format!("{field}.name"),
                        format!("the parameter `{}` is declared twice", p.name),
                        "remove one of the declarations or rename it",
                    );
                }
                let checked = self.check_parameter(&field, p);
                if checked.is_none() {
                    self.broken_parameters.push(p.name.clone());
                }
                checked
            })
            .collect()
    }

    fn check_parameter(&mut self, field: &str, p: &RawParameter) -> Option<Parameter> {
        let errors_before = self.errors.len();
        let description = p.description.as_deref().unwrap_or("").trim().to_owned();
        if description.is_empty() {
            self.err(
                format!("{field}.description"),
                format!("the parameter `{}` has no description", p.name),
                "add a `description`: it is the help text of the Slack form and of error messages",
            );
        }
        let type_name = match p.kind {
            RawParamType::String => "string",
            RawParamType::Integer => "integer",
            RawParamType::Date => "date",
            RawParamType::Timestamp => "timestamp",
        };
        if p.kind != RawParamType::String {
            for (present, name) in [(p.pattern.is_some(), "pattern"), (p.one_of.is_some(), "enum")] {
                if present {
                    self.err(
                        format!("{field}.{name}"),
                        format!("`{name}` only applies to string parameters, `{}` is a {type_name}", p.name),
                        format!("remove `{name}` or change the type to string"),
                    );
                }
            }
        }
        if p.kind != RawParamType::Integer {
            for (present, name) in [(p.min.is_some(), "min"), (p.max.is_some(), "max")] {
                if present {
                    self.err(
                        format!("{field}.{name}"),
                        format!("`{name}` only applies to integer parameters, `{}` is a {type_name}", p.name),
                        format!("remove `{name}` or change the type to integer"),
                    );
                }
            }
        }
        let kind = match p.kind {
            RawParamType::String => self.check_string_rule(field, p).map(ParamKind::String),
            RawParamType::Integer => {
                if let (Some(min), Some(max)) = (p.min, p.max)
                    && min > max
                {
                    self.err(
                        format!("{field}.min"),
                        format!("min ({min}) is greater than max ({max})"),
                        "swap them, or correct the one that is wrong",
                    );
                }
                Some(ParamKind::Integer { min: p.min, max: p.max })
            }
            RawParamType::Date => Some(ParamKind::Date),
            RawParamType::Timestamp => Some(ParamKind::Timestamp),
        }?;
        let mut parameter = Parameter { name: p.name.clone(), description, kind, default: None };
        // A default can only be judged against a sound declaration.
        if let (Some(default), true) = (&p.default, self.errors.len() == errors_before) {
            parameter.default = self.check_default(field, &parameter, default);
        }
        (self.errors.len() == errors_before).then_some(parameter)
    }

    fn check_string_rule(&mut self, field: &str, p: &RawParameter) -> Option<StringRule> {
        match (&p.pattern, &p.one_of) {
            (Some(_), Some(_)) => {
                self.err(
                    field,
                    format!("the string parameter `{}` has both `pattern` and `enum`", p.name),
                    "keep one: `enum` for a fixed list of values, `pattern` for a format",
                );
                None
            }
            (None, None) => {
                self.err(
                    field,
                    format!("the string parameter `{}` has neither `pattern` nor `enum`", p.name),
                    "add a `pattern` (a regex the whole value must match, e.g. \"C[0-9]{6}\") or an `enum` list: free text never reaches a query",
                );
                None
            }
            (Some(pattern), None) => match Pattern::new(pattern) {
                Ok(compiled) => Some(StringRule::Pattern(compiled)),
                Err(e) => {
                    let detail = e.to_string().lines().last().unwrap_or("").trim().to_owned();
                    self.err(
                        format!("{field}.pattern"),
                        format!("`{pattern}` is not a valid regular expression ({detail})"),
                        "fix the regex (Rust regex syntax; it must match the whole value, no ^ or $ needed)",
                    );
                    None
                }
            },
            (None, Some(values)) => {
                if values.is_empty() {
                    self.err(
                        format!("{field}.enum"),
                        format!("the enum of `{}` is empty, so no value could ever be accepted", p.name),
                        "list the allowed values",
                    );
                    return None;
                }
                let mut seen = HashSet::new();
                for (j, v) in values.iter().enumerate() {
                    if v.trim().is_empty() || v.trim() != v {
                        self.err(
                            format!("{field}.enum[{j}]"),
                            format!("the enum value {v:?} is empty or has surrounding spaces"),
                            "remove it or trim the spaces",
                        );
                    } else if !seen.insert(v.to_lowercase()) {
                        self.err(
                            format!("{field}.enum[{j}]"),
                            format!("`{v}` is listed twice (values are matched case-insensitively)"),
                            "remove the duplicate",
                        );
                    }
                }
                Some(StringRule::OneOf(values.clone()))
            }
        }
    }

    fn check_default(&mut self, field: &str, parameter: &Parameter, default: &RawDefault) -> Option<String> {
        let text = match default {
            RawDefault::Text(s) => s.clone(),
            RawDefault::Integer(n) => n.to_string(),
            RawDefault::Number(n) => n.to_string(),
            RawDefault::NotAScalar(_) => {
                self.err(
                    format!("{field}.default"),
                    format!("the default of `{}` is not a single value", parameter.name),
                    "write the default as a plain value, e.g. `default: 0` or `default: paid`",
                );
                return None;
            }
        };
        match parameter.parse(&text) {
            Ok(value) => Some(value.canonical_text()),
            Err(_) => {
                self.err(
                    format!("{field}.default"),
                    format!("the default {text:?} is not a valid value for `{}`", parameter.name),
                    format!("give a default that fits the parameter: {}", parameter.kind),
                );
                None
            }
        }
    }

    fn check_key(
        &mut self,
        operation: Operation,
        raw: Option<&RawKey>,
        table: &KeySchema,
        queried: &KeySchema,
        parameters: &[Option<Parameter>],
    ) -> Option<KeyCondition> {
        let raw = match (operation, raw) {
            (Operation::Scan, None) => return None,
            (Operation::Scan, Some(_)) => {
                self.err("key", "a scan has no key condition", "remove `key`, or use `operation: query`");
                return None;
            }
            (Operation::Query | Operation::GetItem | Operation::UpdateItem, None) => {
                self.err(
                    "key",
                    format!("`{}` needs a key", op_name(operation)),
                    "add `key: {partition: {param: <parameter>}}` naming the parameter that holds the partition key",
                );
                return None;
            }
            (Operation::Query | Operation::GetItem | Operation::UpdateItem, Some(raw)) => raw,
        };
        self.check_param_ref("key.partition.param", &raw.partition.param, parameters, CompareOp::Eq);
        let partition = Condition {
            attribute: queried.partition_key.clone(),
            comparison: Comparison::One(CompareOp::Eq, raw.partition.param.clone()),
        };
        let sort = match (&raw.sort, &queried.sort_key) {
            (None, _) => None,
            (Some(_), None) => {
                let owner = if queried.name == table.name { "table" } else { "index" };
                self.err(
                    "key.sort",
                    format!("the {owner} `{}` has no sort_key declared", queried.name),
                    format!("declare `{owner}.sort_key`, or remove `key.sort`"),
                );
                None
            }
            (Some(sort), Some(attribute)) => {
                let op = compare_op(sort.op);
                let params = self.check_arity("key.sort", op, sort.param.as_ref(), sort.params.as_ref());
                if !op.allowed_on_sort_key() {
                    self.err(
                        "key.sort.op",
                        format!("`{op}` cannot be used in a key condition"),
                        "use =, <, <=, >, >=, between or begins_with on the sort key; move `<>` to `filter`",
                    );
                }
                if one_item(operation) && op != CompareOp::Eq {
                    self.err(
                        "key.sort.op",
                        format!(
                            "`{}` {} exactly one item, so the sort key needs `=`, not `{op}`",
                            op_name(operation),
                            if operation.is_write() { "writes" } else { "reads" }
                        ),
                        "use `op: \"=\"`, or `operation: query` to read a range",
                    );
                }
                params.map(|comparison| Condition { attribute: attribute.clone(), comparison })
            }
        };
        if one_item(operation)
            && let (None, Some(sort_key)) = (&raw.sort, &table.sort_key)
        {
            self.err(
                "key.sort",
                format!(
                    "`{}` needs the full primary key, and the table's sort key `{sort_key}` has no value",
                    op_name(operation)
                ),
                "add `key.sort: {op: \"=\", param: <parameter>}`, or use `operation: query`",
            );
        }
        if let Some(sort) = &sort {
            self.check_condition_params("key.sort", sort, parameters);
        }
        Some(KeyCondition { partition, sort })
    }

    fn check_filter(
        &mut self,
        operation: Operation,
        raw: &[RawFilter],
        queried: &KeySchema,
        parameters: &[Option<Parameter>],
    ) -> Vec<Condition> {
        if operation == Operation::UpdateItem {
            // Reported by `check_update`, with the fix that fits a write.
            return Vec::new();
        }
        if operation == Operation::GetItem && !raw.is_empty() {
            self.err(
                "filter",
                "`get_item` reads one item by its key and takes no filter",
                "remove `filter`, or use `operation: query`",
            );
            return Vec::new();
        }
        let mut conditions = Vec::new();
        for (i, f) in raw.iter().enumerate() {
            let field = format!("filter[{i}]");
            if !self.check_attribute_name(&format!("{field}.attribute"), &f.attribute) {
                continue;
            }
            let is_key = f.attribute == queried.partition_key || Some(&f.attribute) == queried.sort_key.as_ref();
            if operation == Operation::Query && is_key {
                self.err(
                    format!("{field}.attribute"),
                    format!(
                        "`{}` is a key attribute of `{}`; DynamoDB refuses key attributes in a query filter",
                        f.attribute, queried.name
                    ),
                    "put the condition in `key` instead",
                );
            }
            let op = compare_op(f.op);
            let Some(comparison) = self.check_arity(&field, op, f.param.as_ref(), f.params.as_ref()) else {
                continue;
            };
            let condition = Condition { attribute: f.attribute.clone(), comparison };
            self.check_condition_params(&field, &condition, parameters);
            conditions.push(condition);
        }
        conditions
    }

    /// `param:` for one-value operators, `params: [lower, upper]` for `between`.
    fn check_arity(
        &mut self,
        field: &str,
        op: CompareOp,
        param: Option<&String>,
        params: Option<&Vec<String>>,
    ) -> Option<Comparison> {
        let given: Option<&[String]> = match (param, params) {
            (Some(p), None) if op.arity() == 1 => Some(std::slice::from_ref(p)),
            (None, Some(ps)) if op.arity() == 2 => Some(ps.as_slice()),
            _ => None,
        };
        if let Some(comparison) = given.and_then(|g| Comparison::new(op, g)) {
            return Some(comparison);
        }
        match op.arity() {
            2 => {
                let given = params.map_or(usize::from(param.is_some()), Vec::len);
                self.err(
                    field,
                    format!("`between` needs two parameters (lower and upper bound), {given} given"),
                    "write `params: [<lower>, <upper>]`",
                );
                None
            }
            _ => {
                self.err(
                    field,
                    format!("`{op}` compares with one parameter"),
                    "write `param: <parameter>` (and no `params`)",
                );
                None
            }
        }
    }

    /// Every parameter a condition uses must exist and fit the operator. `field` is the condition's path.
    fn check_condition_params(&mut self, field: &str, condition: &Condition, parameters: &[Option<Parameter>]) {
        let op = condition.op();
        match &condition.comparison {
            Comparison::One(_, name) => {
                self.check_param_ref(&format!("{field}.param"), name, parameters, op);
            }
            Comparison::Between(lower, upper) => {
                let a = self.check_param_ref(&format!("{field}.params[0]"), lower, parameters, op);
                let b = self.check_param_ref(&format!("{field}.params[1]"), upper, parameters, op);
                if let (Some(a), Some(b)) = (a, b)
                    && a != b
                {
                    self.err(
                        format!("{field}.params"),
                        format!("`between` compares `{lower}` ({a}) with `{upper}` ({b})"),
                        "use two parameters of the same type",
                    );
                }
            }
        }
    }

    /// Reports a reference to an undeclared parameter (with a suggestion) or a type that does not fit `op`.
    /// Returns the parameter's type name when it is declared and well formed.
    fn check_param_ref(
        &mut self,
        field: &str,
        name: &str,
        parameters: &[Option<Parameter>],
        op: CompareOp,
    ) -> Option<&'static str> {
        let declared: Vec<&str> = parameters.iter().flatten().map(|p| p.name.as_str()).collect();
        let Some(parameter) = parameters.iter().flatten().find(|p| p.name == name) else {
            if self.broken_parameters.iter().any(|b| b == name) {
                // Declared, but the declaration itself is broken and already reported: no second error for it.
                return None;
            }
            let fix = match closest(name, declared.iter().copied()) {
                Some(similar) => format!("declare it under `parameters`, or did you mean `{similar}`?"),
                None => "declare it under `parameters`".to_owned(),
            };
            self.err(field, format!("`{name}` is not a declared parameter"), fix);
            return None;
        };
        if op == CompareOp::BeginsWith && matches!(parameter.kind, ParamKind::Integer { .. }) {
            self.err(
                field,
                format!("`begins_with` works on strings, but `{name}` is an integer"),
                "use a string, date or timestamp parameter, or a comparison such as >=",
            );
        }
        Some(parameter.kind.type_name())
    }

    /// Usage is judged from what the file references, even where a reference is itself broken, so a mistake in a
    /// condition is not reported a second time as an unused parameter.
    fn check_parameter_use(&mut self, raw: &RawRunbook) {
        let mut used: HashSet<&str> = HashSet::new();
        if let Some(key) = &raw.key {
            used.insert(&key.partition.param);
            if let Some(sort) = &key.sort {
                used.extend(sort.param.iter().chain(sort.params.iter().flatten()).map(String::as_str));
            }
        }
        for f in &raw.filter {
            used.extend(f.param.iter().chain(f.params.iter().flatten()).map(String::as_str));
        }
        if let Some(update) = &raw.update {
            used.extend(update.set.iter().filter_map(|a| a.param.as_deref()));
            used.extend(update.condition.iter().filter_map(|c| c.param.as_deref()));
        }
        for (i, p) in raw.parameters.iter().enumerate() {
            if !used.contains(p.name.as_str()) {
                self.err(
                    format!("parameters[{i}]"),
                    format!("the parameter `{}` is declared but never used", p.name),
                    "use it in `key` or `filter`, or remove it (an unused parameter would be asked for and ignored)",
                );
            }
        }
    }

    fn check_projection(&mut self, raw: Option<&[String]>) -> Vec<String> {
        let Some(raw) = raw else { return Vec::new() };
        if raw.is_empty() {
            self.err(
                "projection",
                "the projection is an empty list",
                "list the attributes to return, or remove `projection` to return whole items",
            );
        }
        let mut seen = HashSet::new();
        for (i, name) in raw.iter().enumerate() {
            if self.check_attribute_name(&format!("projection[{i}]"), name) && !seen.insert(name) {
                self.err(format!("projection[{i}]"), format!("`{name}` is listed twice"), "remove the duplicate");
            }
        }
        raw.to_vec()
    }

    fn check_mask(&mut self, operation: Operation, raw: &[String], projection: &[String]) -> Vec<String> {
        // A write returns only the attributes it writes (pinned by `dynamodb:Attributes`), so it needs no projection.
        if !raw.is_empty() && projection.is_empty() && !operation.is_write() {
            // Without a projection the session policy cannot restrict attributes: the credentials read whole
            // items, and an attribute added to the table later would be returned, unmasked. A runbook that masks
            // something says its data is sensitive, so what it returns must be listed and pinned.
            self.err(
                "mask",
                "attributes are masked but there is no `projection`, so the credentials could read every \
                 attribute of the items, and any the mask does not name would be shown as stored",
                "list the attributes to return in `projection`, masked ones included (they are returned masked)",
            );
        }
        let mut seen = HashSet::new();
        for (i, name) in raw.iter().enumerate() {
            let field = format!("mask[{i}]");
            if !self.check_attribute_name(&field, name) {
                continue;
            }
            if !seen.insert(name) {
                self.err(field, format!("`{name}` is listed twice"), "remove the duplicate");
            } else if !projection.is_empty() && !projection.contains(name) {
                // A mask on an attribute that is never returned protects nothing and usually means a typo in one
                // of the two lists.
                self.err(
                    field,
                    format!("`{name}` is masked but not in `projection`, so the mask would never apply"),
                    "add it to `projection` (it is returned masked) or remove it from `mask`",
                );
            }
        }
        raw.to_vec()
    }

    fn check_max_items(&mut self, raw: i64) -> Option<u32> {
        match u32::try_from(raw) {
            Ok(n) if (1..=MAX_ITEMS_LIMIT).contains(&n) => Some(n),
            _ => {
                self.err("max_items", format!("max_items is {raw}"), format!("use a cap from 1 to {MAX_ITEMS_LIMIT}"));
                None
            }
        }
    }

    fn check_approval(
        &mut self,
        operation: Operation,
        raw: &RawApproval,
        defaults: &RunbookDefaults,
    ) -> Option<ApprovalPolicy> {
        let errors_before = self.errors.len();
        let a = &raw.approvers;
        let mut sources = ApproverSources::default();
        for (name, ids, target) in [
            ("pagerduty_schedules", &a.pagerduty_schedules, &mut sources.pagerduty_schedules),
            (
                "pagerduty_escalation_policies",
                &a.pagerduty_escalation_policies,
                &mut sources.pagerduty_escalation_policies,
            ),
        ] {
            for (i, id) in ids.iter().enumerate() {
                if !PAGERDUTY_ID.is_match(id) {
                    self.err(
                        format!("approval.approvers.{name}[{i}]"),
                        format!("`{id}` is not a PagerDuty id"),
                        "use the id from the PagerDuty URL, uppercase letters and digits (e.g. PORDERS1)",
                    );
                } else if !target.insert(id.clone()) {
                    self.err(
                        format!("approval.approvers.{name}[{i}]"),
                        format!("`{id}` is listed twice"),
                        "remove the duplicate",
                    );
                }
            }
        }
        for (i, user) in a.slack_users.iter().enumerate() {
            match SlackUserId::parse(user) {
                Some(id) => {
                    if !sources.slack_users.insert(id) {
                        self.err(
                            format!("approval.approvers.slack_users[{i}]"),
                            format!("`{user}` is listed twice"),
                            "remove the duplicate",
                        );
                    }
                }
                None => self.err(
                    format!("approval.approvers.slack_users[{i}]"),
                    format!("`{user}` is not a Slack user id"),
                    "use the member id (Slack profile → ⋮ → Copy member ID), e.g. U012AB3CD, not a name or @handle",
                ),
            }
        }
        if a.pagerduty_schedules.is_empty() && a.pagerduty_escalation_policies.is_empty() && a.slack_users.is_empty() {
            self.err(
                "approval.approvers",
                "no approvers are named, so no request could ever be approved",
                "add a PagerDuty schedule (`pagerduty_schedules: [PXXXXXX]`), an escalation policy or `slack_users`",
            );
        }

        // Writes need a second pair of eyes unless the runbook says otherwise (never fewer than 1, checked below).
        let default_required = if operation.is_write() { WRITE_DEFAULT_APPROVALS } else { 1 };
        let required = raw.required_approvals.unwrap_or(i64::from(default_required));
        let required = match u8::try_from(required) {
            Ok(n) if (1..=MAX_REQUIRED_APPROVALS).contains(&n) => Some(n),
            _ => {
                self.err(
                    "approval.required_approvals",
                    format!("required_approvals is {required}"),
                    format!("use 1 to {MAX_REQUIRED_APPROVALS} distinct approvers"),
                );
                None
            }
        };
        // With only named Slack users, the approver pool is fixed: asking for more approvals than people can never
        // succeed. (On-call sources can rotate, so they are not counted.)
        if let Some(n) = required
            && a.pagerduty_schedules.is_empty()
            && a.pagerduty_escalation_policies.is_empty()
            && !a.slack_users.is_empty()
            && usize::from(n) > a.slack_users.len()
        {
            self.err(
                "approval.required_approvals",
                format!("{n} approvals are required but only {} Slack users can approve", a.slack_users.len()),
                "lower required_approvals or name more approvers",
            );
        }

        let ttl = match &raw.ttl {
            None => Some(defaults.ttl),
            Some(text) => match humantime::parse_duration(text.trim()) {
                Ok(ttl) if (MIN_TTL..=MAX_TTL).contains(&ttl) => Some(ttl),
                Ok(_) => {
                    self.err(
                        "approval.ttl",
                        format!("the approval window `{text}` is outside 1m..24h"),
                        "use a duration from 1m to 24h, e.g. 30m",
                    );
                    None
                }
                Err(_) => {
                    self.err(
                        "approval.ttl",
                        format!("`{text}` is not a duration"),
                        "write a duration such as 15m, 30m or 1h",
                    );
                    None
                }
            },
        };
        let escalation = super::gates::check_escalation(
            raw.escalate_after.as_deref(),
            raw.max_escalation_level,
            !a.pagerduty_escalation_policies.is_empty(),
        )
        .unwrap_or_else(|problems| {
            self.report(problems);
            None
        });
        match (self.errors.len() == errors_before, required, ttl) {
            (true, Some(required_approvals), Some(ttl)) => Some(ApprovalPolicy {
                approvers: sources,
                required_approvals,
                require_reason: raw.require_reason.unwrap_or(true),
                ttl,
                escalation,
            }),
            _ => None,
        }
    }
}

fn compare_op(raw: RawOp) -> CompareOp {
    match raw {
        RawOp::Eq => CompareOp::Eq,
        RawOp::Ne => CompareOp::Ne,
        RawOp::Lt => CompareOp::Lt,
        RawOp::Le => CompareOp::Le,
        RawOp::Gt => CompareOp::Gt,
        RawOp::Ge => CompareOp::Ge,
        RawOp::Between => CompareOp::Between,
        RawOp::BeginsWith => CompareOp::BeginsWith,
    }
}

fn op_name(operation: Operation) -> &'static str {
    match operation {
        Operation::Query => "query",
        Operation::GetItem => "get_item",
        Operation::Scan => "scan",
        Operation::UpdateItem => "update_item",
    }
}

/// Operations that name exactly one item by its full primary key.
fn one_item(operation: Operation) -> bool {
    match operation {
        Operation::GetItem | Operation::UpdateItem => true,
        Operation::Query | Operation::Scan => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"id: t
description: test
table: { name: Orders, partition_key: order_id }
operation: get_item
role_arn: arn:aws:iam::123456789012:role/jitgate-orders-read
parameters:
  - { name: order_id, type: string, pattern: "O[0-9]+", description: Order id }
key:
  partition: { param: order_id }
max_items: 1
approval:
  approvers:
    pagerduty_schedules: [PORDERS1]
"#;

    fn parse(text: &str) -> Result<Runbook, Vec<String>> {
        parse_runbook(Path::new("t.yaml"), text, &RunbookDefaults::default())
            .map_err(|errors| errors.iter().map(ToString::to_string).collect())
    }

    fn with(from: &str, to: &str) -> String {
        assert!(MINIMAL.contains(from), "{from}");
        MINIMAL.replacen(from, to, 1)
    }

    #[test]
    fn break_glass_is_allowed_only_where_one_approver_is_enough() {
        let allowed = with("max_items: 1", "max_items: 1\nbreak_glass: { allowed: true }");
        assert!(parse(&allowed).unwrap().allows_break_glass());
        let two = allowed.replace(
            "    pagerduty_schedules: [PORDERS1]",
            "    pagerduty_schedules: [PORDERS1]\n  required_approvals: 2",
        );
        let errors = parse(&two).unwrap_err();
        assert!(
            errors.iter().any(|e| e.contains("break_glass.allowed") && e.contains("needs 2 approvals")),
            "{errors:?}"
        );
    }

    #[test]
    fn role_arns_in_every_partition_and_with_paths_are_accepted() {
        for (arn, partition, account) in [
            ("arn:aws:iam::123456789012:role/jitgate-orders-read", "aws", "123456789012"),
            ("arn:aws-cn:iam::210987654321:role/ops/jitgate", "aws-cn", "210987654321"),
            ("arn:aws-us-gov:iam::000000000001:role/a+b=c,d.e@f_g-h", "aws-us-gov", "000000000001"),
        ] {
            let runbook = parse(&with("arn:aws:iam::123456789012:role/jitgate-orders-read", arn)).expect(arn);
            assert_eq!(runbook.role().partition(), partition);
            assert_eq!(runbook.role().account(), account);
        }
    }

    #[test]
    fn role_arns_that_are_not_roles_are_refused() {
        for arn in [
            "arn:aws:iam::123456789012:user/alice",
            "arn:aws:iam::12345678901:role/r",
            "arn:aws:sts::123456789012:role/r",
            "arn::iam::123456789012:role/r",
            "arn:aws:iam::123456789012:role/",
            "arn:aws:iam::123456789012:role/r*",
        ] {
            let errors = parse(&with("arn:aws:iam::123456789012:role/jitgate-orders-read", arn)).expect_err(arn);
            assert!(errors[0].starts_with("t.yaml: role_arn: "), "{arn}: {errors:?}");
        }
    }

    #[test]
    fn enum_values_may_not_differ_only_in_case() {
        let text = with(r#"pattern: "O[0-9]+""#, "enum: [paid, Paid]");
        assert_eq!(
            parse(&text).expect_err("case duplicates"),
            [
                "t.yaml: parameters[0].enum[1]: `Paid` is listed twice (values are matched case-insensitively) — remove the duplicate"
            ]
        );
    }

    #[test]
    fn pagerduty_ids_must_look_like_ids() {
        let text = with("[PORDERS1]", "[orders-team]");
        assert_eq!(
            parse(&text).expect_err("bad id"),
            [
                "t.yaml: approval.approvers.pagerduty_schedules[0]: `orders-team` is not a PagerDuty id — use the id from the PagerDuty URL, uppercase letters and digits (e.g. PORDERS1)"
            ]
        );
    }

    #[test]
    fn approval_defaults_are_one_approver_a_required_reason_and_the_callers_ttl() {
        let runbook = parse(MINIMAL).expect("loads");
        let policy = runbook.approval();
        assert_eq!(policy.required_approvals, 1);
        assert!(policy.require_reason);
        assert_eq!(policy.ttl, RunbookDefaults::default().ttl);
        let relaxed = parse(&with(
            "    pagerduty_schedules: [PORDERS1]\n",
            "    pagerduty_schedules: [PORDERS1]\n  require_reason: false\n",
        ));
        assert!(!relaxed.expect("loads").approval().require_reason);
    }

    #[test]
    fn a_mask_needs_a_projection() {
        let masked = with("max_items: 1\n", "max_items: 1\nmask: [email]\n");
        assert_eq!(
            parse(&masked).expect_err("a mask without a projection"),
            ["t.yaml: mask: attributes are masked but there is no `projection`, so the credentials could read every \
              attribute of the items, and any the mask does not name would be shown as stored — list the attributes \
              to return in `projection`, masked ones included (they are returned masked)"]
        );
        let projected = with("max_items: 1\n", "max_items: 1\nprojection: [order_id, email]\nmask: [email]\n");
        assert!(parse(&projected).is_ok());
    }

    #[test]
    fn parameter_names_used_by_the_forms_are_reserved() {
        for name in ["reason", "runbook"] {
            let text = MINIMAL.replace("order_id", name);
            assert_eq!(
                parse(&text).expect_err(name),
                [format!(
                    "t.yaml: parameters[0].name: `{name}` is reserved: the Slack forms use it for their own input — rename the parameter (e.g. `reason_code` instead of `reason`)"
                )]
            );
        }
        assert!(parse(&MINIMAL.replace("order_id", "reason_code")).is_ok());
    }

    #[test]
    fn a_pattern_that_escapes_its_anchoring_is_refused() {
        let text = with(r#"pattern: "O[0-9]+""#, r#"pattern: "C[0-9]{6})|(?:.*""#);
        assert_eq!(
            parse(&text).expect_err("escaping pattern"),
            [
                "t.yaml: parameters[0].pattern: `C[0-9]{6})|(?:.*` is not a valid regular expression (error: unopened group) — fix the regex (Rust regex syntax; it must match the whole value, no ^ or $ needed)"
            ]
        );
    }

    #[test]
    fn a_missing_parameter_description_is_an_error() {
        let text = with(", description: Order id", "");
        assert_eq!(
            parse(&text).expect_err("no description"),
            [
                "t.yaml: parameters[0].description: the parameter `order_id` has no description — add a `description`: it is the help text of the Slack form and of error messages"
            ]
        );
    }
}
