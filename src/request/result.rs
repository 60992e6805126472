//! What an execution delivered, as the domain sees it: rows of display-oriented [`Value`]s, masked, and the
//! figures the record and the audit trail keep.
//!
//! A [`Row`] maps attribute names (sorted) to a [`Value`]. Values are display-oriented: numbers stay the decimal
//! text DynamoDB sent (no float rounding), binary is shown by its length only, sets are sorted so the same item
//! always renders (and hashes) the same way. Masked attributes become [`Value::Masked`], a fixed marker that says
//! nothing about the value it replaces: a hash of the value would let anyone confirm a guess of a low-entropy
//! value such as a postcode. The AWS layer translates DynamoDB items into these; Slack messages render them.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;
use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use sha2::{Digest, Sha256};

use super::ExecutionSummary;
use crate::result_rows::ResultRows;

/// The marker shown in place of a masked attribute's value.
pub const MASK: &str = "••••";

/// One delivered item: attribute name → value, in name order.
pub type Row = BTreeMap<String, Value>;

/// An attribute value as shown to a user.
///
/// JSON form: `S` and `N` are strings (numbers keep every digit), `BOOL` a boolean, `NULL` null, binary the text
/// `<binary: N bytes>`, lists and sets arrays, maps objects, a masked value the string [`MASK`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    S(String),
    /// A number as the decimal text DynamoDB returned.
    N(String),
    Bool(bool),
    Null,
    /// Binary data: only its length is shown.
    Binary {
        len: usize,
    },
    List(Vec<Value>),
    Map(BTreeMap<String, Value>),
    /// A string set, sorted.
    StringSet(Vec<String>),
    /// A number set, sorted as text.
    NumberSet(Vec<String>),
    /// A binary set: the lengths, sorted.
    BinarySet(Vec<usize>),
    /// Replaced because the runbook masks this attribute.
    Masked,
    /// A type this version of jitgate does not know; shown as a placeholder rather than failing the query.
    Unsupported,
}

fn binary_text(len: usize) -> String {
    format!("<binary: {len} bytes>")
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::S(s) | Value::N(s) => serializer.serialize_str(s),
            Value::Bool(b) => serializer.serialize_bool(*b),
            Value::Null => serializer.serialize_unit(),
            Value::Binary { len } => serializer.serialize_str(&binary_text(*len)),
            Value::List(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Value::Map(entries) => {
                let mut map = serializer.serialize_map(Some(entries.len()))?;
                for (k, v) in entries {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
            Value::StringSet(items) | Value::NumberSet(items) => items.serialize(serializer),
            Value::BinarySet(lens) => {
                let mut seq = serializer.serialize_seq(Some(lens.len()))?;
                for len in lens {
                    seq.serialize_element(&binary_text(*len))?;
                }
                seq.end()
            }
            Value::Masked => serializer.serialize_str(MASK),
            Value::Unsupported => serializer.serialize_str("<unsupported type>"),
        }
    }
}

impl fmt::Display for Value {
    /// Scalars as plain text (a string without quotes); lists, maps and sets as compact JSON.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::S(s) | Value::N(s) => f.write_str(s),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Null => f.write_str("null"),
            Value::Binary { len } => f.write_str(&binary_text(*len)),
            Value::Masked => f.write_str(MASK),
            Value::Unsupported => f.write_str("<unsupported type>"),
            Value::List(_) | Value::Map(_) | Value::StringSet(_) | Value::NumberSet(_) | Value::BinarySet(_) => {
                let json = serde_json::to_string(self).map_err(|_| fmt::Error)?;
                f.write_str(&json)
            }
        }
    }
}

/// What one execution delivered.
#[derive(Clone)]
pub struct ExecutionResult {
    /// The rows, masked, at most the runbook's item cap: the first few in memory, a large result on disk.
    pub rows: ResultRows,
    pub row_count: u32,
    /// True when the cap was reached and DynamoDB had more matching items.
    pub truncated: bool,
    /// Sum of the capacity units DynamoDB reported for every call (table and indexes).
    pub consumed_capacity: f64,
    /// DynamoDB calls made.
    pub pages: u32,
    /// SHA-256 (hex) of the canonical JSON of `rows` (compact, attributes in name order), as delivered.
    pub result_sha256: String,
    /// For a write: the item before and after (its key and the attributes written, masked as the runbook says).
    pub write: Option<WriteDiff>,
    /// Attributes delivered in clear although the runbook masks them.
    pub unmasked: Vec<String>,
}

/// A write's before and after. `before` holds the key and the old values of the written attributes that existed;
/// `after` the key and the new values (removed attributes absent).
#[derive(Clone, PartialEq, Serialize)]
pub struct WriteDiff {
    pub before: Row,
    pub after: Row,
    /// The attributes set or removed, sorted.
    pub written: Vec<String>,
}

impl WriteDiff {
    /// The written attributes whose value changed, each with its value before and after (`None`: absent).
    pub fn changes(&self) -> Vec<(&str, Option<&Value>, Option<&Value>)> {
        self.written
            .iter()
            .map(|a| (a.as_str(), self.before.get(a), self.after.get(a)))
            .filter(|(_, before, after)| before != after)
            .collect()
    }
}

impl ExecutionResult {
    /// What the request record and the audit trail keep.
    pub fn summary(&self) -> ExecutionSummary {
        ExecutionSummary {
            row_count: self.row_count,
            truncated: self.truncated,
            consumed_capacity: self.consumed_capacity,
            result_sha256: self.result_sha256.clone(),
            write: self.write.as_ref().map(|w| super::WriteSummary {
                before_sha256: result_sha256(std::slice::from_ref(&w.before)),
                after_sha256: result_sha256(std::slice::from_ref(&w.after)),
                written: w.written.clone(),
            }),
            unmasked: self.unmasked.clone(),
        }
    }
}

impl fmt::Debug for ExecutionResult {
    // Rows are customer data: a Debug that someone logs must not carry them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExecutionResult")
            .field("rows", &format_args!("[{} rows omitted]", self.rows.len()))
            .field("row_count", &self.row_count)
            .field("truncated", &self.truncated)
            .field("consumed_capacity", &self.consumed_capacity)
            .field("pages", &self.pages)
            .field("result_sha256", &self.result_sha256)
            .field("write", &self.write.as_ref().map(|w| &w.written))
            .field("unmasked", &self.unmasked)
            .finish()
    }
}

/// The SHA-256 (hex) of the canonical JSON of delivered rows: compact, maps in key order (rows are `BTreeMap`s).
/// Anyone holding the delivered JSON can recompute it.
pub fn result_sha256(rows: &[Row]) -> String {
    // Rows are string-keyed maps of strings, booleans, nulls and containers of them: encoding cannot fail.
    let bytes = serde_json::to_vec(rows).expect("rows serialize to JSON");
    hex::encode(Sha256::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_shows_scalars_plain_and_containers_as_json() {
        assert_eq!(Value::S("a \"b\"".into()).to_string(), "a \"b\"");
        assert_eq!(Value::N("1.50".into()).to_string(), "1.50");
        assert_eq!(Value::Binary { len: 3 }.to_string(), "<binary: 3 bytes>");
        assert_eq!(Value::List(vec![Value::S("x".into()), Value::Null]).to_string(), r#"["x",null]"#);
        assert_eq!(Value::Masked.to_string(), MASK);
    }
}
