//! The rendered DynamoDB operation: what the approver sees, what the fingerprint covers, what the executor runs.
//!
//! A [`RenderedQuery`] is produced only by rendering a runbook with validated parameters. It holds the exact
//! request (expressions with `#name`/`:value` placeholders, names from the runbook, values from the user) and
//! everything the session policy needs. Its [`Fingerprint`] is a SHA-256 over a canonical encoding, so the
//! approval can be bound to exactly this request and the executor can refuse anything else.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::ids::RunbookId;

/// The DynamoDB call a runbook makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    Query,
    GetItem,
    /// Only with the runbook's explicit `allow_scan: true`.
    Scan,
    /// A reviewed write of one item: `set`/`remove` under a precondition (see `write.rs`).
    UpdateItem,
}

impl Operation {
    /// The IAM action this operation needs, e.g. `dynamodb:Query`.
    pub fn iam_action(self) -> &'static str {
        match self {
            Operation::Query => "dynamodb:Query",
            Operation::GetItem => "dynamodb:GetItem",
            Operation::Scan => "dynamodb:Scan",
            Operation::UpdateItem => "dynamodb:UpdateItem",
        }
    }

    /// Whether the operation changes data (and so needs the write rules: two approvers by default, a precondition).
    pub fn is_write(self) -> bool {
        match self {
            Operation::Query | Operation::GetItem | Operation::Scan => false,
            Operation::UpdateItem => true,
        }
    }
}

/// A value bound into `ExpressionAttributeValues` (or a `GetItem` key), typed as DynamoDB types it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum BoundValue {
    /// DynamoDB `S`.
    S(String),
    /// DynamoDB `N`, kept as its decimal text (as DynamoDB does) so nothing is lost to float rounding.
    N(String),
}

impl BoundValue {
    /// The value as text, as an approver reads it.
    pub fn as_text(&self) -> &str {
        match self {
            BoundValue::S(s) | BoundValue::N(s) => s,
        }
    }
}

impl fmt::Display for BoundValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BoundValue::S(s) => write!(f, "{s:?}"),
            BoundValue::N(n) => f.write_str(n),
        }
    }
}

/// One key attribute with its value: a `GetItem` key part, or the partition key pinned by `dynamodb:LeadingKeys`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct KeyValue {
    pub attribute: String,
    pub value: BoundValue,
}

/// The exact DynamoDB request one approval covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenderedQuery {
    pub runbook: RunbookId,
    /// The IAM role assumed to run this request.
    pub role_arn: String,
    pub table: String,
    /// `arn:aws:dynamodb:<region>:<account>:table/<table>`.
    pub table_arn: String,
    pub index: Option<String>,
    /// `<table_arn>/index/<index>` when an index is queried.
    pub index_arn: Option<String>,
    pub operation: Operation,
    /// The full primary key, for `GetItem` only (empty otherwise).
    pub key: Vec<KeyValue>,
    /// The partition key value the request is confined to (table's for `GetItem`, queried key for `Query`);
    /// `None` for `Scan`.
    pub partition_key: Option<KeyValue>,
    pub key_condition_expression: Option<String>,
    pub filter_expression: Option<String>,
    pub projection_expression: Option<String>,
    /// `#placeholder` → attribute name, all taken from the runbook.
    pub expression_attribute_names: BTreeMap<String, String>,
    /// `:placeholder` → value, all taken from validated user parameters.
    pub expression_attribute_values: BTreeMap<String, BoundValue>,
    /// Attributes named in the projection (empty: whole items).
    pub projected_attributes: Vec<String>,
    /// Every attribute the request reads: keys, filter and projection. Used for `dynamodb:Attributes`.
    pub accessed_attributes: Vec<String>,
    /// Attributes replaced by a mask before rows leave the executor.
    pub masked_attributes: Vec<String>,
    /// Hard cap on items returned; the executor stops paginating there.
    pub item_cap: u32,
    /// For `UpdateItem` only: what is written and under which precondition. Absent from reads, and then left out
    /// of the canonical encoding, so the fingerprints of reads are what they were before writes existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update: Option<RenderedUpdate>,
    /// Attributes the runbook masks that this request asked to see in clear (`--unmask`); they were removed from
    /// `masked_attributes`. Left out of the canonical encoding when empty, like `update`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unmasked_attributes: Vec<String>,
}

/// The write part of an `UpdateItem` request, all placeholders resolved through the query's expression maps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenderedUpdate {
    /// `SET #n1 = :p1, #n2 = :p2 REMOVE #n3`.
    pub update_expression: String,
    /// The precondition, always present: the write happens only while the item is as the approvers were told.
    pub condition_expression: String,
    /// Attribute → the value written, in name order (the diff's "after" side).
    pub set: BTreeMap<String, BoundValue>,
    /// Attributes removed, in name order.
    pub remove: Vec<String>,
    /// The `ReturnValues` the executor sends, and the session policy pins: `UPDATED_OLD`, the old values of the
    /// attributes written, which is all the pinned `dynamodb:Attributes` lets the credentials see.
    pub return_values: String,
}

/// What the executor asks `UpdateItem` to return, and the session policy allows.
pub const UPDATE_RETURN_VALUES: &str = "UPDATED_OLD";

impl RenderedUpdate {
    /// Every attribute the write changes, sorted.
    pub fn written(&self) -> Vec<String> {
        let mut out: Vec<String> = self.set.keys().cloned().chain(self.remove.iter().cloned()).collect();
        out.sort();
        out.dedup();
        out
    }
}

/// SHA-256 of a [`RenderedQuery`]'s canonical encoding, shown shortened on the card and stored with approvals.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Fingerprint(String);

impl Fingerprint {
    /// The full hex digest.
    pub fn as_hex(&self) -> &str {
        &self.0
    }

    /// The first 12 hex digits, enough for a human to compare two cards.
    pub fn short(&self) -> &str {
        &self.0[..12]
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Version tag inside the hashed bytes: changing the canonical encoding must change every fingerprint.
const FINGERPRINT_DOMAIN: &[u8] = b"jitgate.rendered-query.v1\n";

impl RenderedQuery {
    /// The canonical encoding: compact JSON with struct fields in declaration order and maps sorted by key
    /// (`BTreeMap`), so equal queries always produce equal bytes.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        // Serializing plain owned data with string keys cannot fail.
        serde_json::to_vec(self).expect("RenderedQuery serializes to JSON")
    }

    /// The fingerprint an approval is bound to.
    pub fn fingerprint(&self) -> Fingerprint {
        let mut hasher = Sha256::new();
        hasher.update(FINGERPRINT_DOMAIN);
        hasher.update(self.canonical_bytes());
        Fingerprint(hex::encode(hasher.finalize()))
    }
}

impl RenderedQuery {
    /// A one-line, plain-text description of the request for the approval card, e.g.
    /// `Query Orders index customer-created-index where customer_id = "C000042" and created_at between
    /// "2026-11-01" and "2026-11-28"; project order_id, total; mask email; at most 200 items`.
    ///
    /// Built from the same expressions that run, with placeholders replaced by the attribute names and by the
    /// bound values in quoted, escaped form, so what the approver reads is what executes. Plain text: the caller
    /// escapes it for Slack.
    pub fn summary(&self) -> String {
        let mut out = match (self.operation, &self.index) {
            (Operation::Query, None) => format!("Query {}", self.table),
            (Operation::Query, Some(index)) => format!("Query {} index {index}", self.table),
            (Operation::GetItem, _) => format!("Get one item from {}", self.table),
            (Operation::Scan, None) => format!("Scan all of {}", self.table),
            (Operation::Scan, Some(index)) => format!("Scan all of {} index {index}", self.table),
            (Operation::UpdateItem, _) => format!("WRITE one item of {}", self.table),
        };
        if let Some(condition) = &self.key_condition_expression {
            out.push_str(" where ");
            out.push_str(&self.readable(condition));
        } else if !self.key.is_empty() {
            let parts: Vec<String> = self.key.iter().map(|k| format!("{} = {}", k.attribute, k.value)).collect();
            out.push_str(" where ");
            out.push_str(&parts.join(" and "));
        }
        if let Some(filter) = &self.filter_expression {
            out.push_str("; filter ");
            out.push_str(&self.readable(filter));
        }
        if !self.projected_attributes.is_empty() {
            out.push_str("; project ");
            out.push_str(&self.projected_attributes.join(", "));
        }
        if let Some(update) = &self.update {
            let mut changes: Vec<String> = update.set.iter().map(|(a, v)| format!("{a} = {v}")).collect();
            changes.extend(update.remove.iter().map(|a| format!("remove {a}")));
            out.push_str("; set ");
            out.push_str(&changes.join(", "));
            out.push_str("; only if ");
            out.push_str(&self.readable(&update.condition_expression));
        }
        if !self.masked_attributes.is_empty() {
            out.push_str("; mask ");
            out.push_str(&self.masked_attributes.join(", "));
        }
        if !self.unmasked_attributes.is_empty() {
            out.push_str("; UNMASK ");
            out.push_str(&self.unmasked_attributes.join(", "));
        }
        if self.update.is_some() {
            return out;
        }
        let noun = if self.item_cap == 1 { "item" } else { "items" };
        out.push_str(&format!("; at most {} {noun}", self.item_cap));
        out
    }

    /// An expression with `#name` and `:value` placeholders replaced, and `AND`/`BETWEEN` in lower case.
    fn readable(&self, expression: &str) -> String {
        let mut out = String::with_capacity(expression.len());
        let mut token = String::new();
        let flush = |token: &mut String, out: &mut String| {
            if token.is_empty() {
                return;
            }
            if token.starts_with('#') {
                out.push_str(self.expression_attribute_names.get(token.as_str()).map_or(token.as_str(), |n| n));
            } else if token.starts_with(':') {
                match self.expression_attribute_values.get(token.as_str()) {
                    Some(value) => out.push_str(&value.to_string()),
                    None => out.push_str(token),
                }
            } else if token == "AND" || token == "BETWEEN" {
                out.push_str(&token.to_lowercase());
            } else {
                out.push_str(token);
            }
            token.clear();
        };
        for c in expression.chars() {
            let starts_placeholder = (c == '#' || c == ':') && token.is_empty();
            if c.is_ascii_alphanumeric() || c == '_' || starts_placeholder {
                token.push(c);
            } else {
                flush(&mut token, &mut out);
                out.push(c);
            }
        }
        flush(&mut token, &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query() -> RenderedQuery {
        // Twelve names so `#n1` and `#n11` both occur: substitution must not confuse them.
        let names: BTreeMap<String, String> = (0..12).map(|i| (format!("#n{i}"), format!("attr{i}"))).collect();
        RenderedQuery {
            runbook: RunbookId::parse("t").expect("id"),
            role_arn: "arn:aws:iam::123456789012:role/r".into(),
            table: "T".into(),
            table_arn: "arn:aws:dynamodb:us-east-1:123456789012:table/T".into(),
            index: None,
            index_arn: None,
            operation: Operation::Query,
            key: vec![],
            partition_key: None,
            key_condition_expression: Some("#n1 = :p1 AND begins_with(#n11, :p11)".into()),
            filter_expression: Some("#n2 BETWEEN :p2 AND :p3".into()),
            projection_expression: None,
            expression_attribute_names: names,
            expression_attribute_values: BTreeMap::from([
                (":p1".into(), BoundValue::S("one \"quoted\"\nline".into())),
                (":p11".into(), BoundValue::S("eleven".into())),
                (":p2".into(), BoundValue::N("2".into())),
                (":p3".into(), BoundValue::N("30".into())),
            ]),
            projected_attributes: vec![],
            accessed_attributes: vec![],
            masked_attributes: vec![],
            item_cap: 1,
            update: None,
            unmasked_attributes: vec![],
        }
    }

    #[test]
    fn summary_replaces_placeholders_with_names_and_escaped_values() {
        assert_eq!(
            query().summary(),
            "Query T where attr1 = \"one \\\"quoted\\\"\\nline\" and begins_with(attr11, \"eleven\"); \
             filter attr2 between 2 and 30; at most 1 item"
        );
    }

    #[test]
    fn fingerprint_short_form_is_a_prefix_of_the_full_digest() {
        let fp = query().fingerprint();
        assert_eq!(fp.as_hex().len(), 64);
        assert!(fp.as_hex().starts_with(fp.short()));
        assert_eq!(fp.short().len(), 12);
    }
}
