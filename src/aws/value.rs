//! DynamoDB items → rows for people: the translation from `AttributeValue` and the masking of sensitive attributes.
//!
//! A [`Row`] maps attribute names (sorted) to a [`Value`]. Values are display-oriented: numbers stay the decimal
//! text DynamoDB sent (no float rounding), binary is shown by its length only, sets are sorted so the same item
//! always renders (and hashes) the same way. Masked attributes become [`Value::Masked`], a fixed marker that says
//! nothing about the value it replaces: a hash of the value would let anyone confirm a guess of a low-entropy
//! value such as a postcode.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use aws_sdk_dynamodb::types::AttributeValue;
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

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

/// Translates one item and masks it on the way: an attribute whose name is in `masked` becomes [`Value::Masked`]
/// without its value being read. Names are matched at every depth (inside maps too), erring towards hiding.
pub fn row_from_item(item: HashMap<String, AttributeValue>, masked: &[String]) -> Row {
    translate_map(item, masked)
}

fn translate_map(entries: HashMap<String, AttributeValue>, masked: &[String]) -> BTreeMap<String, Value> {
    entries
        .into_iter()
        .map(|(name, value)| {
            let shown = if masked.iter().any(|m| m == &name) { Value::Masked } else { translate(value, masked) };
            (name, shown)
        })
        .collect()
}

fn translate(value: AttributeValue, masked: &[String]) -> Value {
    match value {
        AttributeValue::S(s) => Value::S(s),
        AttributeValue::N(n) => Value::N(n),
        AttributeValue::Bool(b) => Value::Bool(b),
        AttributeValue::Null(_) => Value::Null,
        AttributeValue::B(blob) => Value::Binary { len: blob.as_ref().len() },
        AttributeValue::L(items) => Value::List(items.into_iter().map(|v| translate(v, masked)).collect()),
        AttributeValue::M(entries) => Value::Map(translate_map(entries, masked)),
        AttributeValue::Ss(mut items) => {
            items.sort();
            Value::StringSet(items)
        }
        AttributeValue::Ns(mut items) => {
            items.sort();
            Value::NumberSet(items)
        }
        AttributeValue::Bs(blobs) => {
            let mut lens: Vec<usize> = blobs.iter().map(|b| b.as_ref().len()).collect();
            lens.sort_unstable();
            Value::BinarySet(lens)
        }
        _ => Value::Unsupported,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::primitives::Blob;

    fn s(v: &str) -> AttributeValue {
        AttributeValue::S(v.into())
    }

    #[test]
    fn every_type_translates_to_stable_json() {
        let item = HashMap::from([
            ("name".to_owned(), s("Ada")),
            ("total".to_owned(), AttributeValue::N("12345678901234567890.5".into())),
            ("active".to_owned(), AttributeValue::Bool(true)),
            ("gone".to_owned(), AttributeValue::Null(true)),
            ("photo".to_owned(), AttributeValue::B(Blob::new(vec![0u8; 16]))),
            ("tags".to_owned(), AttributeValue::Ss(vec!["b".into(), "a".into()])),
            ("sizes".to_owned(), AttributeValue::Ns(vec!["3".into(), "1".into()])),
            ("keys".to_owned(), AttributeValue::Bs(vec![Blob::new(vec![1, 2]), Blob::new(vec![1])])),
            ("lines".to_owned(), AttributeValue::L(vec![s("x"), AttributeValue::N("2".into())])),
            ("meta".to_owned(), AttributeValue::M(HashMap::from([("z".to_owned(), s("1")), ("a".to_owned(), s("2"))]))),
        ]);
        let json = serde_json::to_string(&row_from_item(item, &[])).unwrap();
        assert_eq!(
            json,
            r#"{"active":true,"gone":null,"keys":["<binary: 1 bytes>","<binary: 2 bytes>"],"lines":["x","2"],"meta":{"a":"2","z":"1"},"name":"Ada","photo":"<binary: 16 bytes>","sizes":["1","3"],"tags":["a","b"],"total":"12345678901234567890.5"}"#
        );
    }

    #[test]
    fn masked_attributes_never_carry_their_value_even_nested() {
        let item = HashMap::from([
            ("email".to_owned(), s("ada@example.com")),
            ("order_id".to_owned(), s("O1")),
            ("contact".to_owned(), AttributeValue::M(HashMap::from([("email".to_owned(), s("ada@example.com"))]))),
        ]);
        let row = row_from_item(item, &["email".to_owned()]);
        assert_eq!(row["email"], Value::Masked);
        assert_eq!(row["order_id"], Value::S("O1".into()));
        let json = serde_json::to_string(&row).unwrap();
        assert!(!json.contains("ada@example.com"), "{json}");
        assert_eq!(json.matches(MASK).count(), 2, "{json}");
    }

    #[test]
    fn display_shows_scalars_plain_and_containers_as_json() {
        assert_eq!(Value::S("a \"b\"".into()).to_string(), "a \"b\"");
        assert_eq!(Value::N("1.50".into()).to_string(), "1.50");
        assert_eq!(Value::Binary { len: 3 }.to_string(), "<binary: 3 bytes>");
        assert_eq!(Value::List(vec![Value::S("x".into()), Value::Null]).to_string(), r#"["x",null]"#);
        assert_eq!(Value::Masked.to_string(), MASK);
    }
}
