//! DynamoDB items → rows for people: the translation from `AttributeValue` and the masking of sensitive attributes.
//!
//! The row and value types are the domain's ([`crate::request::result`]), re-exported here: this module only turns
//! what DynamoDB sent into them. Sets are sorted on the way, so the same item always renders (and hashes) the same.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::types::AttributeValue;

pub use crate::request::result::{MASK, Row, Value};

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
}
