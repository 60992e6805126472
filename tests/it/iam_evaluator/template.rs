//! The query role's permissions as deployed: read from the CloudFormation template (`manifests/iam/jitgate.yaml`)
//! with its parameters at their defaults, in account 123456789012 and us-east-1, the account and region of the
//! shipped runbooks. Only the intrinsic functions a policy of that role can use are resolved (`Ref` to a parameter
//! or pseudo parameter, one-argument `Fn::Sub`), in their long form or as short tags (`!Ref`, `!Sub`); anything else
//! fails the test, naming the function, rather than being evaluated unresolved.

use std::path::Path;

use serde_json::Value;

const TEMPLATE: &str = "manifests/iam/jitgate.yaml";
const REGION: &str = "us-east-1";

fn load() -> serde_yaml::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(TEMPLATE);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{TEMPLATE}: {e}"));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{TEMPLATE} is not valid YAML: {e}"))
}

/// The parameter's default, or the pseudo parameter's value.
fn reference(doc: &serde_yaml::Value, name: &str) -> String {
    match name {
        "AWS::Partition" => "aws".into(),
        "AWS::Region" => REGION.into(),
        "AWS::AccountId" => super::evaluator::ACCOUNT.into(),
        _ => doc["Parameters"][name]["Default"]
            .as_str()
            .unwrap_or_else(|| panic!("{TEMPLATE}: `{name}` is not a parameter with a default"))
            .to_owned(),
    }
}

fn substitute(doc: &serde_yaml::Value, text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let end = rest[start..].find('}').expect("a closing }") + start;
        out.push_str(&rest[..start]);
        out.push_str(&reference(doc, &rest[start + 2..end]));
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// YAML with intrinsic functions → JSON as IAM receives it.
fn resolve(doc: &serde_yaml::Value, value: &serde_yaml::Value) -> Value {
    use serde_yaml::Value as Y;
    let function = |name: &str, argument: &Y| -> Value {
        match name {
            "Ref" => Value::String(reference(doc, argument.as_str().expect("Ref NAME"))),
            "Fn::Sub" => Value::String(substitute(doc, argument.as_str().expect("the one-argument form of Fn::Sub"))),
            other => panic!("{TEMPLATE}: {other} in the query role's policy is not resolved here; extend resolve()"),
        }
    };
    match value {
        Y::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            let name = tag.trim_start_matches('!');
            let long = if name == "Ref" { "Ref".to_owned() } else { format!("Fn::{name}") };
            function(&long, &tagged.value)
        }
        Y::Mapping(map) if map.len() == 1 => {
            let (key, argument) = map.iter().next().expect("one entry");
            match key.as_str() {
                Some(name) if name == "Ref" || name.starts_with("Fn::") => function(name, argument),
                _ => Value::Object(
                    map.iter().map(|(k, v)| (k.as_str().expect("string keys").to_owned(), resolve(doc, v))).collect(),
                ),
            }
        }
        Y::Mapping(map) => Value::Object(
            map.iter().map(|(k, v)| (k.as_str().expect("string keys").to_owned(), resolve(doc, v))).collect(),
        ),
        Y::Sequence(items) => Value::Array(items.iter().map(|v| resolve(doc, v)).collect()),
        other => serde_json::to_value(other).expect("a plain YAML scalar"),
    }
}

/// The query role's permissions: its inline policies merged into one document (IAM allows what any of them
/// allows). The runbooks' `role_arn` names this role (`tests/manifests.rs` checks that).
pub fn query_role_policy() -> Value {
    role_policy("QueryRole")
}

/// The write role's permissions, merged the same way: what update_item runbooks run as.
pub fn write_role_policy() -> Value {
    role_policy("WriteRole")
}

fn role_policy(role: &str) -> Value {
    let doc = load();
    let policies = doc["Resources"][role]["Properties"]["Policies"]
        .as_sequence()
        .unwrap_or_else(|| panic!("{TEMPLATE}: {role} has no Policies"));
    let mut statements = Vec::new();
    for policy in policies {
        let document = resolve(&doc, &policy["PolicyDocument"]);
        statements.extend(document["Statement"].as_array().expect("statements").iter().cloned());
    }
    assert!(!statements.is_empty(), "{TEMPLATE}: {role} allows nothing");
    serde_json::json!({ "Version": "2012-10-17", "Statement": statements })
}
