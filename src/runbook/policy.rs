//! The inline session policy passed to `AssumeRole` for one approved request.
//!
//! The role's own policy is the ceiling; this policy narrows the 15-minute credentials to exactly the approved
//! request: one action, one table or index ARN, the approved partition key value, and (when the runbook projects)
//! only the approved attributes. The effective permissions are the intersection of the two, so even a bug in the
//! executor cannot read another partition, another table or another attribute with these credentials.
//!
//! AWS semantics this relies on (DynamoDB developer guide, "Using IAM policy conditions for fine-grained access
//! control": <https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/specifying-conditions.html>, and
//! "DynamoDB API permissions: actions, resources, and conditions reference":
//! <https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/api-permissions-reference.html>):
//!
//! * **Resource.** "To query an index: `arn:…:table/<table>/index/<index>`" — a query on an index is authorized
//!   against the index ARN, and the guide's example "Grant permissions to query only projected attributes in an
//!   index" lists only the index ARN. So an index query gets the index ARN alone (not the table ARN, which would
//!   also allow querying the table itself); `GetItem`, and queries and scans of the table, get the table ARN.
//! * **`dynamodb:LeadingKeys`** "represents the first key attribute of a table — in other words, the partition
//!   key", and "you must use the `ForAllValues` modifier". A query on a global secondary index carries no
//!   base-table partition key at all (it spans every base partition); the only partition key value in the request
//!   is the index's, the one in the key condition. The guide's example 5 applies `LeadingKeys` to a table *and*
//!   its index in one statement. So for an index query we pin the index's partition key value — the value the
//!   approver saw — which is what [`RenderedQuery::partition_key`] holds. Scans are never pinned: "`Scan` returns
//!   all items regardless of the leading keys".
//! * **`dynamodb:Attributes`** limits the attribute names a request may name or return. The guide: "If you use
//!   `dynamodb:Attributes`, you must specify the names of all of the primary key and index key attributes for the
//!   table and any secondary indexes that are listed in the policy", hence `accessed_attributes` includes the
//!   table's and the index's key attributes even when they are not projected.
//! * **`dynamodb:Select`** with `StringEqualsIfExists` = `SPECIFIC_ATTRIBUTES` "prevents the API action from
//!   returning any attributes that aren't allowed, such as from an index projection": without it a request with
//!   no projection (`ALL_ATTRIBUTES` / `ALL_PROJECTED_ATTRIBUTES`) would name no attributes and pass the
//!   `ForAllValues` check vacuously. `IfExists` because `GetItem` has no `Select` parameter. The executor sends
//!   `Select = SPECIFIC_ATTRIBUTES` with every projection.
//! * **Writes** (`UpdateItem`): the guide's example "Allow access to specific attributes" pins
//!   `dynamodb:Attributes` and adds `dynamodb:ReturnValues`, because with `ALL_OLD`/`ALL_NEW` an update would
//!   return attributes outside the list. A write's policy allows `dynamodb:UpdateItem` alone, on the table ARN,
//!   with `LeadingKeys` pinned to the item's partition key value, `Attributes` to the key and the attributes the
//!   write sets, removes and compares, and `StringEquals` `ReturnValues` = `UPDATED_OLD` (what the executor
//!   sends; not `IfExists`, so a request without it is denied too).
//! * Session policies are limited to 2,048 characters of plain text and may only contain tab, line feed,
//!   carriage return and U+0020–U+00FF; anything else is refused here rather than by STS.

use std::fmt;
use std::sync::LazyLock;

use regex::Regex;
use serde_json::{Map, Value, json};

use super::{Operation, RenderedQuery};

/// AWS's limit on the plain text of an inline session policy.
pub const MAX_SESSION_POLICY_CHARS: usize = 2048;

/// `arn:<partition>:dynamodb:<region>:<account>:table/<name>` with nothing that IAM would read as a wildcard or
/// variable: the only shape a resource may have here. Also catches a malformed configured region.
static TABLE_ARN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^arn:aws(?:-[a-z]+)*:dynamodb:[a-z]{2}(?:-[a-z]+)+-[0-9]+:[0-9]{12}:table/([A-Za-z0-9_.-]{3,255})$")
        .expect("static regex")
});
static INDEX_NAME: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^[A-Za-z0-9_.-]{3,255}$").expect("static regex"));

/// A session policy document, minified, ready for `AssumeRole`'s `Policy` parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionPolicy {
    json: String,
}

impl SessionPolicy {
    /// The minified JSON.
    pub fn as_json(&self) -> &str {
        &self.json
    }

    /// Indented JSON, for reading (snapshots, logs of the policy shape).
    pub fn to_pretty(&self) -> String {
        serde_json::from_str::<Value>(&self.json)
            .and_then(|v| serde_json::to_string_pretty(&v))
            .unwrap_or_else(|_| self.json.clone())
    }

    /// Length in characters, as AWS counts it.
    pub fn chars(&self) -> usize {
        self.json.chars().count()
    }
}

impl fmt::Display for SessionPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.json)
    }
}

/// Why no session policy could be made for a query. Nothing runs then.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    #[error(
        "the session policy would be {chars} characters, over AWS's limit of {limit}; narrow the runbook's projection or use a shorter key value"
    )]
    TooLarge { chars: usize, limit: usize },
    #[error("{what} contains a character an IAM policy cannot hold (only tab, line breaks and U+0020–U+00FF)")]
    UnsupportedCharacter { what: &'static str },
    #[error("a {operation} request must be confined to one partition key value, and this one has none")]
    MissingPartitionKey { operation: &'static str },
    #[error("the request names index {index:?} but carries no matching index ARN")]
    IndexArnMismatch { index: String },
    #[error("the resource ARN {arn:?} is not a plain table or index ARN")]
    BadResourceArn { arn: String },
    #[error("an update_item request carries no update, or a read carries one")]
    UpdateMismatch,
}

/// Builds the inline session policy for exactly this query.
pub fn session_policy(query: &RenderedQuery) -> Result<SessionPolicy, PolicyError> {
    let resource = resource_arn(query)?;

    let mut for_all_values = Map::new();
    match query.operation {
        Operation::Query | Operation::GetItem | Operation::UpdateItem => {
            let pinned = query
                .partition_key
                .as_ref()
                .ok_or(PolicyError::MissingPartitionKey { operation: query.operation.iam_action() })?;
            let value = iam_literal(pinned.value.as_text(), "the partition key value")?;
            for_all_values.insert("dynamodb:LeadingKeys".into(), json!([value]));
        }
        Operation::Scan => {}
    }
    let write = query.operation.is_write();
    if write != query.update.is_some() {
        return Err(PolicyError::UpdateMismatch);
    }
    // A write always pins its attributes: the key and what it writes and compares (`accessed_attributes`).
    let projects = !query.projected_attributes.is_empty() || write;
    if projects {
        let attributes = query
            .accessed_attributes
            .iter()
            .map(|a| iam_literal(a, "an attribute name"))
            .collect::<Result<Vec<_>, _>>()?;
        for_all_values.insert("dynamodb:Attributes".into(), json!(attributes));
    }

    let mut condition = Map::new();
    if !for_all_values.is_empty() {
        condition.insert("ForAllValues:StringEquals".into(), Value::Object(for_all_values));
    }
    match &query.update {
        Some(update) => {
            let returns = iam_literal(&update.return_values, "the return values")?;
            condition.insert("StringEquals".into(), json!({ "dynamodb:ReturnValues": returns }));
        }
        None if projects => {
            condition.insert("StringEqualsIfExists".into(), json!({ "dynamodb:Select": "SPECIFIC_ATTRIBUTES" }));
        }
        None => {}
    }

    let mut statement = Map::new();
    statement.insert("Sid".into(), json!("JitgateApprovedRequest"));
    statement.insert("Effect".into(), json!("Allow"));
    statement.insert("Action".into(), json!(query.operation.iam_action()));
    statement.insert("Resource".into(), json!(resource));
    if !condition.is_empty() {
        statement.insert("Condition".into(), Value::Object(condition));
    }
    let document = json!({ "Version": "2012-10-17", "Statement": [Value::Object(statement)] });

    // Serializing a `Value` built from strings cannot fail.
    let json = serde_json::to_string(&document).unwrap_or_default();
    if !json.chars().all(allowed_in_policy) {
        return Err(PolicyError::UnsupportedCharacter { what: "the policy" });
    }
    let chars = json.chars().count();
    if chars > MAX_SESSION_POLICY_CHARS {
        return Err(PolicyError::TooLarge { chars, limit: MAX_SESSION_POLICY_CHARS });
    }
    Ok(SessionPolicy { json })
}

/// The one resource: the index ARN for an index request, the table ARN otherwise. A `RenderedQuery` can come
/// back from storage, so its ARNs are checked rather than trusted: a wildcard would widen the grant.
fn resource_arn(query: &RenderedQuery) -> Result<&str, PolicyError> {
    let table_arn_matches = TABLE_ARN
        .captures(&query.table_arn)
        .is_some_and(|c| c.get(1).is_some_and(|table| table.as_str() == query.table));
    if !table_arn_matches {
        return Err(PolicyError::BadResourceArn { arn: query.table_arn.clone() });
    }
    match (&query.index, &query.index_arn) {
        (None, None) => Ok(&query.table_arn),
        (Some(index), Some(arn)) => {
            let well_formed = INDEX_NAME.is_match(index) && *arn == format!("{}/index/{index}", query.table_arn);
            if !well_formed {
                return Err(PolicyError::IndexArnMismatch { index: index.clone() });
            }
            Ok(arn)
        }
        (Some(index), None) => Err(PolicyError::IndexArnMismatch { index: index.clone() }),
        (None, Some(arn)) => Err(PolicyError::BadResourceArn { arn: arn.clone() }),
    }
}

/// A condition value that IAM reads literally. IAM expands `${…}` policy variables inside condition values, so a
/// partition key such as `${aws:username}` would otherwise match whatever that variable holds; `${$}` is IAM's
/// documented escape for a literal `$` (IAM user guide, "Special characters":
/// <https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html#policy-vars-specialchars>).
fn iam_literal(value: &str, what: &'static str) -> Result<String, PolicyError> {
    if !value.chars().all(allowed_in_policy) {
        return Err(PolicyError::UnsupportedCharacter { what });
    }
    Ok(value.replace('$', "${$}"))
}

/// "IAM policy documents can contain only the following Unicode characters: horizontal tab (U+0009), linefeed
/// (U+000A), carriage return (U+000D), and characters in the range U+0020 to U+00FF."
fn allowed_in_policy(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{ff}')
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::ids::RunbookId;
    use crate::runbook::{BoundValue, KeyValue};

    fn query(partition: &str) -> RenderedQuery {
        RenderedQuery {
            runbook: RunbookId::parse("t").expect("id"),
            role_arn: "arn:aws:iam::123456789012:role/r".into(),
            table: "Orders".into(),
            table_arn: "arn:aws:dynamodb:us-east-1:123456789012:table/Orders".into(),
            index: None,
            index_arn: None,
            operation: Operation::Query,
            key: vec![],
            partition_key: Some(KeyValue { attribute: "order_id".into(), value: BoundValue::S(partition.into()) }),
            key_condition_expression: Some("#n0 = :p0".into()),
            filter_expression: None,
            projection_expression: None,
            expression_attribute_names: BTreeMap::from([("#n0".into(), "order_id".into())]),
            expression_attribute_values: BTreeMap::from([(":p0".into(), BoundValue::S(partition.into()))]),
            projected_attributes: vec![],
            accessed_attributes: vec!["order_id".into()],
            masked_attributes: vec![],
            update: None,
            unmasked_attributes: vec![],
            item_cap: 10,
        }
    }

    fn leading_keys(policy: &SessionPolicy) -> Value {
        let doc: Value = serde_json::from_str(policy.as_json()).expect("json");
        doc["Statement"][0]["Condition"]["ForAllValues:StringEquals"]["dynamodb:LeadingKeys"].clone()
    }

    #[test]
    fn a_partition_key_that_looks_like_a_policy_variable_is_escaped() {
        let policy = session_policy(&query("${aws:username}")).expect("policy");
        assert_eq!(leading_keys(&policy), json!(["${$}{aws:username}"]));
        let plain = session_policy(&query("O-1")).expect("policy");
        assert_eq!(leading_keys(&plain), json!(["O-1"]));
    }

    #[test]
    fn characters_iam_cannot_hold_are_refused_not_sent() {
        assert_eq!(
            session_policy(&query("café ☕")),
            Err(PolicyError::UnsupportedCharacter { what: "the partition key value" })
        );
        assert_eq!(
            session_policy(&query("a\u{1}b")),
            Err(PolicyError::UnsupportedCharacter { what: "the partition key value" })
        );
        // Latin-1 is fine.
        assert!(session_policy(&query("café")).is_ok());
    }

    #[test]
    fn without_a_projection_there_is_no_attribute_condition() {
        let policy = session_policy(&query("O-1")).expect("policy");
        let doc: Value = serde_json::from_str(policy.as_json()).expect("json");
        let condition = &doc["Statement"][0]["Condition"];
        assert!(condition["ForAllValues:StringEquals"].get("dynamodb:Attributes").is_none());
        assert!(condition.get("StringEqualsIfExists").is_none());
    }

    #[test]
    fn a_query_without_a_partition_key_gets_no_policy() {
        let q = RenderedQuery { partition_key: None, ..query("x") };
        assert_eq!(session_policy(&q), Err(PolicyError::MissingPartitionKey { operation: "dynamodb:Query" }));
    }

    #[test]
    fn tampered_resource_arns_are_refused() {
        let wildcard =
            RenderedQuery { table_arn: "arn:aws:dynamodb:us-east-1:123456789012:table/*".into(), ..query("x") };
        assert!(matches!(session_policy(&wildcard), Err(PolicyError::BadResourceArn { .. })));
        let other_table =
            RenderedQuery { table_arn: "arn:aws:dynamodb:us-east-1:123456789012:table/Users".into(), ..query("x") };
        assert!(matches!(session_policy(&other_table), Err(PolicyError::BadResourceArn { .. })));
        let index_star = RenderedQuery {
            index: Some("*".into()),
            index_arn: Some("arn:aws:dynamodb:us-east-1:123456789012:table/Orders/index/*".into()),
            ..query("x")
        };
        assert_eq!(session_policy(&index_star), Err(PolicyError::IndexArnMismatch { index: "*".into() }));
        let bad_region =
            RenderedQuery { table_arn: "arn:aws:dynamodb:us east 1:123456789012:table/Orders".into(), ..query("x") };
        assert!(matches!(session_policy(&bad_region), Err(PolicyError::BadResourceArn { .. })));
        let index_missing = RenderedQuery { index: Some("i".into()), ..query("x") };
        assert_eq!(session_policy(&index_missing), Err(PolicyError::IndexArnMismatch { index: "i".into() }));
    }

    #[test]
    fn the_size_limit_is_measured_on_the_minified_json() {
        // 2048 characters in total is accepted, one more is not.
        let overhead = session_policy(&query("a")).expect("policy").chars() - 1;
        let fits = "a".repeat(MAX_SESSION_POLICY_CHARS - overhead);
        assert_eq!(session_policy(&query(&fits)).expect("fits").chars(), MAX_SESSION_POLICY_CHARS);
        let over = "a".repeat(MAX_SESSION_POLICY_CHARS - overhead + 1);
        assert_eq!(
            session_policy(&query(&over)),
            Err(PolicyError::TooLarge { chars: MAX_SESSION_POLICY_CHARS + 1, limit: MAX_SESSION_POLICY_CHARS })
        );
    }
}
