//! Typed runbook parameters and the parsing of what a user typed into a canonical, typed value.
//!
//! Every value that reaches DynamoDB passes through [`Parameter::parse`]: trimmed, checked against its type
//! (anchored pattern, enum, integer range, calendar date, RFC 3339 timestamp) and written in one canonical form,
//! so two spellings of the same value render the same request and the same fingerprint.

use std::fmt;

use regex::Regex;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, OffsetDateTime, UtcOffset};

use super::BoundValue;

/// Longest value accepted for any parameter, in characters. Far above any real key, and keeps a pasted blob out
/// of requests, cards and session policies.
pub const MAX_VALUE_CHARS: usize = 1024;

/// A runbook parameter as declared (validated) in its file.
#[derive(Debug, Clone)]
pub struct Parameter {
    pub(super) name: String,
    pub(super) description: String,
    pub(super) kind: ParamKind,
    /// Canonical text of the default, already checked against `kind`.
    pub(super) default: Option<String>,
}

impl Parameter {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Help text for the Slack modal and for error messages (may be empty).
    pub fn description(&self) -> &str {
        &self.description
    }

    pub fn kind(&self) -> &ParamKind {
        &self.kind
    }

    /// The default (canonical text) used when the user gives no value.
    pub fn default(&self) -> Option<&str> {
        self.default.as_deref()
    }

    /// A parameter without a default must be given.
    pub fn is_required(&self) -> bool {
        self.default.is_none()
    }

    /// Parses raw user text into the canonical typed value, or says what is wrong with it.
    pub(super) fn parse(&self, raw: &str) -> Result<TypedValue, ValueProblem> {
        let text = raw.trim();
        if text.is_empty() {
            return Err(ValueProblem::Empty);
        }
        let chars = text.chars().count();
        if chars > MAX_VALUE_CHARS {
            return Err(ValueProblem::TooLong { chars });
        }
        match &self.kind {
            ParamKind::String(StringRule::Pattern(pattern)) => {
                if pattern.regex.is_match(text) {
                    Ok(TypedValue::Text(text.to_owned()))
                } else {
                    Err(ValueProblem::PatternMismatch { pattern: pattern.source.clone() })
                }
            }
            ParamKind::String(StringRule::OneOf(allowed)) => {
                // Exact match first; then a case-insensitive match, answered with the runbook's own spelling so
                // `PAID` and `paid` render the same request. Validation rejects enums whose values differ only in
                // case, so this match is unique.
                if let Some(hit) = allowed.iter().find(|a| a.as_str() == text) {
                    return Ok(TypedValue::Text(hit.clone()));
                }
                match allowed.iter().find(|a| a.eq_ignore_ascii_case(text)) {
                    Some(hit) => Ok(TypedValue::Text(hit.clone())),
                    None => Err(ValueProblem::NotInEnum { allowed: allowed.clone() }),
                }
            }
            ParamKind::Integer { min, max } => {
                let value: i64 = text.parse().map_err(|_| ValueProblem::NotAnInteger)?;
                let below = min.is_some_and(|m| value < m);
                let above = max.is_some_and(|m| value > m);
                if below || above {
                    return Err(ValueProblem::OutOfRange { min: *min, max: *max });
                }
                Ok(TypedValue::Integer(value))
            }
            ParamKind::Date => parse_date(text).map(TypedValue::Date).ok_or(ValueProblem::BadDate),
            ParamKind::Timestamp => parse_timestamp(text).map(TypedValue::Timestamp).ok_or(ValueProblem::BadTimestamp),
        }
    }
}

/// What kind of value a parameter takes.
#[derive(Debug, Clone)]
pub enum ParamKind {
    /// Text, constrained by a pattern or a fixed list.
    String(StringRule),
    /// A whole number (bound as DynamoDB `N`), optionally within `min..=max`.
    Integer { min: Option<i64>, max: Option<i64> },
    /// A calendar date `YYYY-MM-DD` (bound as `S`).
    Date,
    /// An RFC 3339 timestamp, normalised to UTC (bound as `S`, e.g. `2026-11-01T09:30:00Z`).
    Timestamp,
}

impl ParamKind {
    /// The type name as written in runbook files.
    pub fn type_name(&self) -> &'static str {
        match self {
            ParamKind::String(_) => "string",
            ParamKind::Integer { .. } => "integer",
            ParamKind::Date => "date",
            ParamKind::Timestamp => "timestamp",
        }
    }
}

/// How a string parameter is constrained. A string must have one of the two: free text never reaches a query.
#[derive(Debug, Clone)]
pub enum StringRule {
    Pattern(Pattern),
    OneOf(Vec<String>),
}

/// A regular expression that must match the whole value.
#[derive(Debug, Clone)]
pub struct Pattern {
    source: String,
    regex: Regex,
}

impl Pattern {
    /// Compiles `source` anchored at both ends: a runbook author writing `C[0-9]{6}` means the whole value, and an
    /// unanchored pattern would let `C000042) OR x` through.
    ///
    /// The source must also compile on its own, as one expression. Wrapping is plain text, so without this a
    /// pattern such as `C[0-9]{6})|(?:.*` would close the wrapper's group early and turn `^(?:…)$` into
    /// `^(?:C[0-9]{6})|(?:.*)$`, which accepts anything. Parsed alone, that pattern has an unopened group and is
    /// refused; a source that parses alone has balanced groups, so the wrapper's parentheses enclose all of it.
    pub fn new(source: &str) -> Result<Pattern, regex::Error> {
        Regex::new(source)?;
        let regex = Regex::new(&format!("^(?:{source})$"))?;
        Ok(Pattern { source: source.to_owned(), regex })
    }

    /// The pattern as written in the runbook.
    pub fn as_str(&self) -> &str {
        &self.source
    }
}

/// A parsed, canonical parameter value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum TypedValue {
    Text(String),
    Integer(i64),
    Date(Date),
    Timestamp(OffsetDateTime),
}

impl TypedValue {
    /// The value as DynamoDB receives it.
    pub(super) fn to_bound(&self) -> BoundValue {
        match self {
            TypedValue::Text(s) => BoundValue::S(s.clone()),
            TypedValue::Integer(n) => BoundValue::N(n.to_string()),
            TypedValue::Date(d) => BoundValue::S(format_date(*d)),
            TypedValue::Timestamp(t) => BoundValue::S(format_timestamp(*t)),
        }
    }

    /// The canonical text (what a default is stored as).
    pub(super) fn canonical_text(&self) -> String {
        self.to_bound().as_text().to_owned()
    }

    /// Order for `between` checks: numbers numerically, dates and instants chronologically, text by UTF-8 bytes
    /// (as DynamoDB compares `S` values). `None` when the two are of different kinds.
    pub(super) fn partial_cmp_same_kind(&self, other: &TypedValue) -> Option<std::cmp::Ordering> {
        match (self, other) {
            (TypedValue::Text(a), TypedValue::Text(b)) => Some(a.as_bytes().cmp(b.as_bytes())),
            (TypedValue::Integer(a), TypedValue::Integer(b)) => Some(a.cmp(b)),
            (TypedValue::Date(a), TypedValue::Date(b)) => Some(a.cmp(b)),
            (TypedValue::Timestamp(a), TypedValue::Timestamp(b)) => Some(a.cmp(b)),
            _ => None,
        }
    }
}

/// Why a value was refused; the caller adds the parameter's name and the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum ValueProblem {
    Empty,
    TooLong { chars: usize },
    PatternMismatch { pattern: String },
    NotInEnum { allowed: Vec<String> },
    NotAnInteger,
    OutOfRange { min: Option<i64>, max: Option<i64> },
    BadDate,
    BadTimestamp,
}

/// `YYYY-MM-DD`, a real calendar day. The shape is checked first so the parser's leniencies (signs, short years)
/// never produce a value the user did not write.
fn parse_date(text: &str) -> Option<Date> {
    let b = text.as_bytes();
    let shaped = b.len() == 10
        && b.iter().enumerate().all(|(i, c)| if i == 4 || i == 7 { *c == b'-' } else { c.is_ascii_digit() });
    if !shaped {
        return None;
    }
    Date::parse(text, format_description!("[year]-[month]-[day]")).ok()
}

fn format_date(date: Date) -> String {
    format!("{:04}-{:02}-{:02}", date.year(), u8::from(date.month()), date.day())
}

/// RFC 3339 with any offset, converted to UTC.
fn parse_timestamp(text: &str) -> Option<OffsetDateTime> {
    let parsed = OffsetDateTime::parse(text, &Rfc3339).ok()?;
    let utc = parsed.to_offset(UtcOffset::UTC);
    // Years outside 0..=9999 cannot be written back as RFC 3339.
    (0..=9999).contains(&utc.year()).then_some(utc)
}

/// `YYYY-MM-DDTHH:MM:SSZ`, with a fraction only when there is one (trailing zeros dropped).
fn format_timestamp(t: OffsetDateTime) -> String {
    let mut out = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    let nanos = t.nanosecond();
    if nanos != 0 {
        let fraction = format!("{nanos:09}");
        out.push('.');
        out.push_str(fraction.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

impl fmt::Display for ParamKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParamKind::String(StringRule::Pattern(p)) => write!(f, "string matching `{}`", p.as_str()),
            ParamKind::String(StringRule::OneOf(values)) => write!(f, "one of {}", values.join(", ")),
            ParamKind::Integer { min, max } => match (min, max) {
                (Some(lo), Some(hi)) => write!(f, "integer from {lo} to {hi}"),
                (Some(lo), None) => write!(f, "integer of at least {lo}"),
                (None, Some(hi)) => write!(f, "integer of at most {hi}"),
                (None, None) => f.write_str("integer"),
            },
            ParamKind::Date => f.write_str("date (YYYY-MM-DD)"),
            ParamKind::Timestamp => f.write_str("timestamp (RFC 3339, e.g. 2026-11-01T09:30:00Z)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn param(kind: ParamKind) -> Parameter {
        Parameter { name: "p".into(), description: String::new(), kind, default: None }
    }

    #[test]
    fn pattern_is_anchored_to_the_whole_value() {
        let p = param(ParamKind::String(StringRule::Pattern(Pattern::new("C[0-9]{6}").unwrap())));
        assert_eq!(p.parse(" C000042 ").unwrap(), TypedValue::Text("C000042".into()));
        for bad in ["xC000042", "C000042x", "C000042) OR (#a = :b", "C0000421"] {
            assert!(matches!(p.parse(bad), Err(ValueProblem::PatternMismatch { .. })), "{bad}");
        }
        // An alternation must not escape the anchors either.
        let alt = param(ParamKind::String(StringRule::Pattern(Pattern::new("a|b").unwrap())));
        assert!(alt.parse("ab").is_err());
        assert!(alt.parse("b").is_ok());
    }

    #[test]
    fn a_pattern_that_closes_the_anchoring_group_is_refused() {
        // Wrapped as text this would read `^(?:C[0-9]{6})|(?:.*)$`: the second branch is unanchored and matches
        // anything, e.g. another customer's id or a whole key expression.
        for escape in ["C[0-9]{6})|(?:.*", ".*)|(", "a)(b", "C[0-9]{6})"] {
            assert!(Pattern::new(escape).is_err(), "{escape}");
        }
        // Ordinary patterns, groups and alternations included, still work as written.
        for (source, good, bad) in [
            ("C[0-9]{6}", "C000042", "C00004"),
            ("(?:O|R)[0-9]+", "R12", "X12"),
            ("(a|b)c", "bc", "ab"),
            (r"[()]\)", "()", ")"),
        ] {
            let p = param(ParamKind::String(StringRule::Pattern(Pattern::new(source).expect(source))));
            assert!(p.parse(good).is_ok(), "{source} {good}");
            assert!(p.parse(bad).is_err(), "{source} {bad}");
        }
    }

    #[test]
    fn enum_matches_case_insensitively_and_answers_with_the_runbook_spelling() {
        let p = param(ParamKind::String(StringRule::OneOf(vec!["paid".into(), "shipped".into()])));
        assert_eq!(p.parse("PAID").unwrap(), TypedValue::Text("paid".into()));
        assert!(matches!(p.parse("lost"), Err(ValueProblem::NotInEnum { .. })));
    }

    #[test]
    fn integers_are_canonical_and_range_checked() {
        let p = param(ParamKind::Integer { min: Some(0), max: Some(100) });
        assert_eq!(p.parse("+007").unwrap().to_bound(), BoundValue::N("7".into()));
        assert_eq!(p.parse("101"), Err(ValueProblem::OutOfRange { min: Some(0), max: Some(100) }));
        assert_eq!(p.parse("-1"), Err(ValueProblem::OutOfRange { min: Some(0), max: Some(100) }));
        for bad in ["1.0", "1e3", "0x10", "1_000", "ten", "99999999999999999999"] {
            assert_eq!(p.parse(bad), Err(ValueProblem::NotAnInteger), "{bad}");
        }
    }

    #[test]
    fn dates_must_be_real_calendar_days_in_iso_form() {
        let p = param(ParamKind::Date);
        assert_eq!(p.parse("2026-02-28").unwrap().to_bound(), BoundValue::S("2026-02-28".into()));
        for bad in ["2026-02-30", "2026-2-28", "+2026-02-28", "28/02/2026", "2026-02-28T00:00:00Z"] {
            assert_eq!(p.parse(bad), Err(ValueProblem::BadDate), "{bad}");
        }
    }

    #[test]
    fn timestamps_are_normalised_to_utc() {
        let p = param(ParamKind::Timestamp);
        let utc = |s: &str| p.parse(s).unwrap().to_bound();
        assert_eq!(utc("2026-11-01T10:30:00+01:00"), BoundValue::S("2026-11-01T09:30:00Z".into()));
        assert_eq!(utc("2026-11-01T09:30:00Z"), BoundValue::S("2026-11-01T09:30:00Z".into()));
        assert_eq!(utc("2026-11-01T09:30:00.250Z"), BoundValue::S("2026-11-01T09:30:00.25Z".into()));
        for bad in ["2026-11-01", "2026-11-01 09:30", "yesterday", "2026-11-01T25:00:00Z"] {
            assert_eq!(p.parse(bad), Err(ValueProblem::BadTimestamp), "{bad}");
        }
    }

    #[test]
    fn empty_and_oversized_values_are_refused_for_every_type() {
        let p = param(ParamKind::String(StringRule::Pattern(Pattern::new(".*").unwrap())));
        assert_eq!(p.parse("   "), Err(ValueProblem::Empty));
        let long = "x".repeat(MAX_VALUE_CHARS + 1);
        assert_eq!(p.parse(&long), Err(ValueProblem::TooLong { chars: MAX_VALUE_CHARS + 1 }));
    }
}
