//! What the temporary credentials of an approved request can reach, proved by an independent IAM policy evaluator
//! (@cloud-copilot/iam-simulate, run by `tests/iam/evaluate.mjs`), not by jitgate's own reading of IAM.
//!
//! For every shipped runbook and every generated runbook shape (`iam_evaluator/shapes.rs`), the session policy
//! jitgate's real `session_policy` builds is evaluated together with the query role's policy from the CloudFormation
//! template, the way AWS evaluates an assumed-role session (effective = role ∩ session policy). The request
//! context is the one the executor (`src/aws/executor.rs`) sends:
//!
//! - action `dynamodb:Query`, `GetItem` or `Scan`; resource the index ARN when an index is read, else the table ARN;
//! - `dynamodb:LeadingKeys`: the partition key value of the key condition (the index's for an index query, the
//!   table's for `GetItem`); not set for `Scan`, which has none;
//! - `dynamodb:Attributes`: the attributes the request names (key condition, filter, projection) and the key
//!   attributes DynamoDB returns with every item;
//! - `dynamodb:Select`: `SPECIFIC_ATTRIBUTES` on a `Query` or `Scan` with a projection, absent otherwise (`GetItem`
//!   has no `Select`); `dynamodb:ReturnConsumedCapacity`: `TOTAL`, always sent; `dynamodb:ReturnValues`: absent,
//!   reads send none.
//!
//! The approved call must be allowed; denied: another partition value, another table, the base table instead of
//! the index and an index instead of the table, every other DynamoDB action in the evaluator's IAM data, an
//! attribute outside the projection, and `Select` `ALL_ATTRIBUTES` / `ALL_PROJECTED_ATTRIBUTES`. Where a shape
//! cannot be pinned (no projection), the test asserts what the credentials *can* reach, and that the approval card
//! says so (`jitgate::messages::credentials_reach`), as it must for a sort key, which IAM cannot pin. Every case runs under the template's role and again under a
//! role allowing all of DynamoDB, so the session policy alone is shown to hold each line, whatever the role grants.
//!
//! Writes (`update_item`): action `dynamodb:UpdateItem` on the table ARN, `LeadingKeys` the item's partition key
//! value, `Attributes` the key and the attributes written and compared, `ReturnValues` `UPDATED_OLD`. Denied:
//! another key, another attribute, another table, every other action (`PutItem`, `DeleteItem`, the reads, …), any
//! other `ReturnValues` and none. Reads are also evaluated under the template's write role and writes under its
//! query role, where everything must be denied: neither role can do the other's job.

mod evaluator;
mod shapes;
mod template;

use std::collections::{BTreeMap, BTreeSet};

use evaluator::{Case, Decision};
use jitgate::runbook::{Operation, RenderedQuery, session_policy};
use serde_json::{Value, json};

/// A table no runbook names, for "another table".
const OTHER_TABLE: &str = "Customers";
/// An attribute no runbook names, for "outside the projection".
const OTHER_ATTRIBUTE: &str = "internal_notes";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Allowed,
    Denied,
}

/// The request the executor makes for `q`, as IAM sees it.
struct Call {
    action: String,
    resource: String,
    context: BTreeMap<String, Value>,
}

fn approved_call(q: &RenderedQuery, keys: &[String]) -> Call {
    let mut context = BTreeMap::new();
    match q.operation {
        Operation::Query | Operation::GetItem | Operation::UpdateItem => {
            let value = q.partition_key.as_ref().expect("a pinned request has a partition key").value.as_text();
            context.insert("dynamodb:LeadingKeys".into(), json!([value]));
        }
        Operation::Scan => {}
    }
    let mut attributes: BTreeSet<String> = q.expression_attribute_names.values().cloned().collect();
    attributes.extend(q.key.iter().map(|k| k.attribute.clone()));
    attributes.extend(keys.iter().cloned());
    context.insert("dynamodb:Attributes".into(), json!(attributes));
    if q.projection_expression.is_some() && q.operation != Operation::GetItem {
        context.insert("dynamodb:Select".into(), json!("SPECIFIC_ATTRIBUTES"));
    }
    context.insert("dynamodb:ReturnConsumedCapacity".into(), json!("TOTAL"));
    if let Some(update) = &q.update {
        // The executor asks for the old values of what it writes, nothing more.
        context.insert("dynamodb:ReturnValues".into(), json!(update.return_values));
    }
    Call {
        action: q.operation.iam_action().to_owned(),
        resource: q.index_arn.clone().unwrap_or_else(|| q.table_arn.clone()),
        context,
    }
}

/// A resource of this action's own type for the request's table, so only the action differs from the approved call.
fn resource_for(action: &evaluator::ActionInfo, q: &RenderedQuery, approved: &str) -> String {
    if action.wildcard_only {
        return "*".into();
    }
    let accepts = |name: &str| action.resource_types.iter().any(|t| t.name == name);
    if q.index_arn.is_some() && accepts("index") {
        return approved.to_owned();
    }
    if accepts("table") {
        return q.table_arn.clone();
    }
    let format = &action.resource_types.first().expect("a resource type").arn;
    let mut arn = format
        .replace("${Partition}", "aws")
        .replace("${Region}", shapes::REGION)
        .replace("${Account}", evaluator::ACCOUNT)
        .replace("${TableName}", &q.table)
        .replace("${IndexName}", q.index.as_deref().unwrap_or("customer-created-index"));
    while let Some(start) = arn.find("${") {
        let end = arn[start..].find('}').expect("a closing }") + start;
        arn.replace_range(start..=end, "x");
    }
    arn
}

/// Every case for one request, with what each must give.
fn cases(request: &shapes::Request, actions: &[evaluator::ActionInfo]) -> Vec<(Case, Expect)> {
    let (name, q) = (&request.name, &request.query);
    let policy = session_policy(q).unwrap_or_else(|e| panic!("{name}: {e}"));
    // Every request evaluated here is one jitgate accepts at submit, packed size with the session tags included.
    jitgate::aws::sts::check_packed_size(policy.as_json(), &q.runbook).unwrap_or_else(|e| panic!("{name}: {e}"));
    let policy: Value = serde_json::from_str(policy.as_json()).expect("policy JSON");
    let approved = approved_call(q, &request.keys);
    let mut out = Vec::new();
    let mut add = |what: &str, action: &str, resource: &str, context: &BTreeMap<String, Value>, expect| {
        let case = Case {
            id: format!("{name}: {what}"),
            session_policy: policy.clone(),
            action: action.to_owned(),
            resource: resource.to_owned(),
            context: context.clone(),
        };
        out.push((case, expect));
    };
    let with = |key: &str, value: Value| {
        let mut context = approved.context.clone();
        context.insert(key.to_owned(), value);
        context
    };

    add("the approved call", &approved.action, &approved.resource, &approved.context, Expect::Allowed);

    if let Some(pinned) = &q.partition_key {
        let other = format!("{}9", pinned.value.as_text());
        let context = with("dynamodb:LeadingKeys", json!([other]));
        add("another partition value", &approved.action, &approved.resource, &context, Expect::Denied);
        let both = with("dynamodb:LeadingKeys", json!([pinned.value.as_text(), other]));
        add("the approved and another partition value", &approved.action, &approved.resource, &both, Expect::Denied);
    }

    let other_table = approved.resource.replacen(&format!("table/{}", q.table), &format!("table/{OTHER_TABLE}"), 1);
    add("another table", &approved.action, &other_table, &approved.context, Expect::Denied);

    match (&q.index_arn, q.operation) {
        (Some(_), _) => add(
            "the base table instead of the index",
            &approved.action,
            &q.table_arn,
            &approved.context,
            Expect::Denied,
        ),
        // GetItem and UpdateItem cannot address an index at all: there is no such request to deny.
        (None, Operation::GetItem | Operation::UpdateItem) => {}
        (None, Operation::Query | Operation::Scan) => {
            let index = format!("{}/index/customer-created-index", q.table_arn);
            add("an index instead of the table", &approved.action, &index, &approved.context, Expect::Denied);
        }
    }

    for action in actions.iter().filter(|a| a.action != approved.action) {
        let resource = resource_for(action, q, &approved.resource);
        add(&format!("action {}", action.action), &action.action, &resource, &approved.context, Expect::Denied);
    }

    let mut outside = approved.context["dynamodb:Attributes"].as_array().expect("attributes").clone();
    outside.push(json!(OTHER_ATTRIBUTE));
    let outside = with("dynamodb:Attributes", Value::Array(outside));
    let all_attributes = with("dynamodb:Select", json!("ALL_ATTRIBUTES"));
    let all_projected = with("dynamodb:Select", json!("ALL_PROJECTED_ATTRIBUTES"));
    // With a projection the attributes are pinned; without one the credentials read whole items, which is what the
    // approval card says, so those requests must then be allowed (if they ever are not, update the card).
    // A write always pins its attributes (the key and what it writes and compares).
    let pinned = if q.projected_attributes.is_empty() && q.update.is_none() { Expect::Allowed } else { Expect::Denied };
    card_says_the_reach(name, q, &policy);
    add("an attribute outside the projection", &approved.action, &approved.resource, &outside, pinned);
    if q.update.is_none() {
        add("Select ALL_ATTRIBUTES", &approved.action, &approved.resource, &all_attributes, pinned);
        add("Select ALL_PROJECTED_ATTRIBUTES", &approved.action, &approved.resource, &all_projected, pinned);
    } else {
        // Any other ReturnValues would hand back attributes the write does not name, or the new item whole.
        for other in ["ALL_OLD", "ALL_NEW", "UPDATED_NEW", "NONE"] {
            let context = with("dynamodb:ReturnValues", json!(other));
            add(&format!("ReturnValues {other}"), &approved.action, &approved.resource, &context, Expect::Denied);
        }
        let mut without = approved.context.clone();
        without.remove("dynamodb:ReturnValues");
        add("no ReturnValues", &approved.action, &approved.resource, &without, Expect::Denied);
    }
    out
}

/// The approval card's warning matches the policy: "every attribute" exactly when nothing pins the attributes, and
/// "not only what this request selects" exactly when the request narrows its partition with something IAM has no
/// condition key for (a `GetItem` sort key, a `Query` sort key condition or filter). The policy's only conditions
/// are the partition key value, the attributes and `Select`, which is why a sort key can never be pinned.
fn card_says_the_reach(name: &str, q: &RenderedQuery, policy: &Value) {
    let mut keys = BTreeSet::new();
    for (_, block) in policy["Statement"][0]["Condition"].as_object().into_iter().flatten() {
        keys.extend(block.as_object().expect("condition keys").keys().cloned());
    }
    let allowed: BTreeSet<String> =
        ["dynamodb:LeadingKeys", "dynamodb:Attributes", "dynamodb:Select", "dynamodb:ReturnValues"]
            .map(str::to_owned)
            .into();
    assert!(keys.is_subset(&allowed), "{name}: unexpected condition keys {keys:?}");

    let reach = jitgate::messages::credentials_reach(q).unwrap_or_default();
    let attributes_unpinned = !keys.contains("dynamodb:Attributes");
    assert_eq!(reach.contains("every attribute"), attributes_unpinned, "{name}: the card says {reach:?}");
    let narrowed = match q.operation {
        Operation::GetItem | Operation::UpdateItem => q.key.len() > 1,
        Operation::Query => {
            q.key_condition_expression.as_deref().is_some_and(|k| k.contains(" AND ")) || q.filter_expression.is_some()
        }
        Operation::Scan => false,
    };
    assert_eq!(reach.contains("not only what this request selects"), narrowed, "{name}: the card says {reach:?}");
}

fn is(decision: &str, expect: Expect) -> bool {
    match expect {
        Expect::Allowed => decision == "Allowed",
        Expect::Denied => decision == "ImplicitlyDenied" || decision == "ExplicitlyDenied",
    }
}

/// Evaluates the cases of `requests` under the template's role and under an allow-all role; returns the number of
/// allow and deny assertions made, and panics listing every case that did not come out as expected.
fn check(requests: &[shapes::Request]) -> (usize, usize) {
    evaluator::require_installed();
    let actions = evaluator::actions("dynamodb");
    let names: BTreeSet<&str> = actions.iter().map(|a| a.action.as_str()).collect();
    for needed in ["dynamodb:Query", "dynamodb:GetItem", "dynamodb:Scan", "dynamodb:PutItem", "dynamodb:ListTables"] {
        assert!(names.contains(needed), "the evaluator's action list lacks {needed}: {names:?}");
    }
    assert!(actions.len() > 50, "only {} DynamoDB actions in the evaluator's data", actions.len());

    let all: Vec<(Case, Expect, bool)> = requests
        .iter()
        .flat_map(|r| cases(r, &actions).into_iter().map(|(case, expect)| (case, expect, r.query.update.is_some())))
        .collect();
    let cases_only: Vec<Case> = all.iter().map(|(case, _, _)| case.clone()).collect();
    let roles = [
        ("the template's query role", template::query_role_policy()),
        ("the template's write role", template::write_role_policy()),
        (
            "a role allowing all of DynamoDB",
            json!({ "Version": "2012-10-17", "Statement": [{ "Effect": "Allow", "Action": "dynamodb:*", "Resource": "*" }] }),
        ),
    ];
    let mut failures = Vec::new();
    let (mut allows, mut denies) = (0, 0);
    for (i, (role, identity)) in roles.iter().enumerate() {
        let decisions: BTreeMap<String, Decision> = evaluator::evaluate(identity, &cases_only);
        for (case, expect, write) in &all {
            // The template's query role only reads and its write role only writes: under the other one, every
            // case is denied, the approved call included, whatever the session policy allows.
            let wrong_role = (i == 0 && *write) || (i == 1 && !*write);
            let expect = if wrong_role { &Expect::Denied } else { expect };
            let d = &decisions[&case.id];
            if let Some(error) = &d.error {
                failures.push(format!("{} under {role}: the evaluator could not run it: {error}", case.id));
                continue;
            }
            let (session, boundary) = (d.session.as_deref().unwrap_or("?"), d.boundary.as_deref().unwrap_or("?"));
            if !is(session, *expect) || !is(boundary, *expect) {
                failures.push(format!(
                    "{} under {role}: expected {expect:?}, got {session} (session policy) / {boundary} (as a \
                     permission boundary) for {} on {} with {:?}",
                    case.id, case.action, case.resource, case.context
                ));
            }
            if case.id.ends_with(": the approved call") && !wrong_role {
                // The evaluator must have judged the keys the policy pins, not dropped them as unknown.
                for key in ["dynamodb:LeadingKeys", "dynamodb:Attributes", "dynamodb:Select", "dynamodb:ReturnValues"] {
                    if !case.context.contains_key(key) {
                        continue;
                    }
                    if d.ignored_context_keys.iter().any(|k| k == key) {
                        failures.push(format!("{}: the evaluator ignored {key}", case.id));
                    }
                }
            }
            match expect {
                Expect::Allowed => allows += 2,
                Expect::Denied => denies += 2,
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of the IAM evaluator's answers are wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );
    (allows, denies)
}

#[test]
fn every_shipped_runbooks_credentials_reach_exactly_the_approved_request() {
    let shipped = shapes::shipped();
    assert!(shipped.len() >= 3, "the shipped runbooks are found");
    let (allows, denies) = check(&shipped);
    eprintln!("shipped runbooks: {allows} allowed and {denies} denied assertions");
}

#[test]
fn every_runbook_shapes_credentials_reach_exactly_what_the_card_says() {
    let generated = shapes::generated();
    let names: Vec<&str> = generated.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names.len(), 12, "{names:?}");
    let (allows, denies) = check(&generated);
    eprintln!("generated shapes: {allows} allowed and {denies} denied assertions");
}

/// `jitgate check --live` describes each runbook's table with the runbook's query role under
/// `jitgate::live_check::describe_table_policy` (the bot's role has no permission on application tables). Under the
/// template's query role those credentials may DescribeTable that table and nothing else: not another table, not an
/// item, not any other DynamoDB action. Without the template's `DescribeTableForTheLiveCheck` statement the check's
/// call is denied (so the statement is what makes `check --live` work in a real account), and under a role allowing
/// all of DynamoDB the session policy alone still denies everything but the one describe; and the template's
/// statement alone, under a session policy allowing all of DynamoDB, grants that describe and nothing more.
#[test]
fn the_live_checks_describe_is_allowed_on_the_runbooks_table_and_nothing_else() {
    evaluator::require_installed();
    let actions = evaluator::actions("dynamodb");
    let mut cases = Vec::new();
    let mut describes = Vec::new();
    let tables: BTreeMap<String, shapes::Request> =
        shapes::shipped().into_iter().map(|r| (r.query.table_arn.clone(), r)).collect();
    assert!(!tables.is_empty(), "the shipped runbooks name a table");
    for (table_arn, request) in &tables {
        let q = &request.query;
        let policy: Value = serde_json::from_str(&jitgate::live_check::describe_table_policy(table_arn)).unwrap();
        let mut add = |what: &str, action: &str, resource: &str, expect| {
            let case = Case {
                id: format!("{table_arn}: {what}"),
                session_policy: policy.clone(),
                action: action.to_owned(),
                resource: resource.to_owned(),
                context: BTreeMap::new(),
            };
            cases.push((case, expect));
        };
        add("the live check's DescribeTable", "dynamodb:DescribeTable", table_arn, Expect::Allowed);
        describes.push(format!("{table_arn}: the live check's DescribeTable"));
        let other = table_arn.replacen(&format!("table/{}", q.table), &format!("table/{OTHER_TABLE}"), 1);
        add("DescribeTable of another table", "dynamodb:DescribeTable", &other, Expect::Denied);
        for action in actions.iter().filter(|a| a.action != "dynamodb:DescribeTable") {
            let resource = resource_for(action, q, q.index_arn.as_deref().unwrap_or(table_arn));
            add(&format!("action {}", action.action), &action.action, &resource, Expect::Denied);
        }
    }
    let reads = cases
        .iter()
        .filter(|(c, _)| ["dynamodb:GetItem", "dynamodb:Query", "dynamodb:Scan"].contains(&c.action.as_str()));
    assert!(reads.count() >= 3 * tables.len(), "item reads are among the denied cases");

    let query_role = template::query_role_policy();
    let mut without_describe = query_role.clone();
    without_describe["Statement"].as_array_mut().unwrap().retain(|s| s["Sid"] != "DescribeTableForTheLiveCheck");
    assert_ne!(without_describe, query_role, "the template's query role has a DescribeTableForTheLiveCheck statement");
    let all_dynamodb = json!({ "Version": "2012-10-17", "Statement": [{ "Effect": "Allow", "Action": "dynamodb:*", "Resource": "*" }] });

    let (cases_only, expected): (Vec<Case>, Vec<Expect>) = cases.into_iter().unzip();
    let mut failures = Vec::new();
    for (role, identity) in
        [("the template's query role", &query_role), ("a role allowing all of DynamoDB", &all_dynamodb)]
    {
        let decisions = evaluator::evaluate(identity, &cases_only);
        for (case, expect) in cases_only.iter().zip(&expected) {
            let d = &decisions[&case.id];
            let (session, boundary) = (d.session.as_deref().unwrap_or("?"), d.boundary.as_deref().unwrap_or("?"));
            if d.error.is_some() || !is(session, *expect) || !is(boundary, *expect) {
                failures.push(format!(
                    "{} under {role}: expected {expect:?}, got {session} / {boundary} ({:?}) for {} on {}",
                    case.id, d.error, case.action, case.resource
                ));
            }
        }
    }
    let decisions = evaluator::evaluate(&without_describe, &cases_only);
    for id in &describes {
        let session = decisions[id].session.as_deref().unwrap_or("?");
        if !is(session, Expect::Denied) {
            failures.push(format!("{id}: allowed ({session}) even without the template's statement"));
        }
    }
    // And the template's statement itself grants that one describe, whatever session policy comes with it: with
    // a session policy allowing all of DynamoDB, it allows DescribeTable on the runbooks' tables and nothing else.
    let statement: Vec<Value> = query_role["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["Sid"] == "DescribeTableForTheLiveCheck")
        .cloned()
        .collect();
    let alone = json!({ "Version": "2012-10-17", "Statement": statement });
    let widened: Vec<Case> =
        cases_only.iter().map(|c| Case { session_policy: all_dynamodb.clone(), ..c.clone() }).collect();
    let decisions = evaluator::evaluate(&alone, &widened);
    for (case, expect) in widened.iter().zip(&expected) {
        let session = decisions[&case.id].session.as_deref().unwrap_or("?");
        if !is(session, *expect) {
            failures
                .push(format!("{} under the template's statement alone: expected {expect:?}, got {session}", case.id));
        }
    }
    assert!(failures.is_empty(), "{} wrong answers:\n{}", failures.len(), failures.join("\n"));
    eprintln!("live check: {} cases under each role, {} tables", cases_only.len(), tables.len());
}
