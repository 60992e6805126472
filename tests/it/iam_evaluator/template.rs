//! The query role's permissions as deployed: read from the CloudFormation template (`manifests/iam/jitgate.yaml`)
//! with its parameters at their defaults, in account 123456789012 and us-east-1, the account and region of the
//! shipped runbooks. Only the intrinsic functions a policy of that role can use are resolved (`Ref` to a parameter
//! or pseudo parameter, one-argument `Fn::Sub`), in their long form or as short tags (`!Ref`, `!Sub`); anything else
//! fails the test, naming the function, rather than being evaluated unresolved.

use std::path::Path;

use serde_json::Value;

const TEMPLATE: &str = "manifests/iam/jitgate.yaml";
const REGION: &str = "us-east-1";

fn load() -> Yaml {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(TEMPLATE);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{TEMPLATE}: {e}"));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{TEMPLATE} is not valid YAML: {e}"))
}

/// A YAML node with its tag (`!Ref`, `!Sub`), which a JSON value has no room for.
#[derive(Debug)]
struct Yaml {
    tag: Option<String>,
    body: Body,
}

#[derive(Debug)]
enum Body {
    Mapping(Vec<(String, Yaml)>),
    Sequence(Vec<Yaml>),
    Scalar(Value),
}

static NULL: Yaml = Yaml { tag: None, body: Body::Scalar(Value::Null) };

impl Body {
    fn as_str(&self) -> Option<&str> {
        match self {
            Body::Scalar(Value::String(s)) => Some(s),
            _ => None,
        }
    }
}

impl Yaml {
    fn as_str(&self) -> Option<&str> {
        self.body.as_str()
    }

    fn as_sequence(&self) -> Option<&[Yaml]> {
        match &self.body {
            Body::Sequence(items) => Some(items),
            _ => None,
        }
    }
}

impl std::ops::Index<&str> for Yaml {
    type Output = Yaml;

    fn index(&self, key: &str) -> &Yaml {
        match &self.body {
            Body::Mapping(entries) => entries.iter().find(|(k, _)| k == key).map_or(&NULL, |(_, v)| v),
            _ => &NULL,
        }
    }
}

impl<'de> serde::Deserialize<'de> for Yaml {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // serde_saphyr hands the node's tag to `Tagged`; the body is read node by node so that every nested node
        // goes through here again and keeps its own tag.
        let serde_saphyr::Tagged(body, tag) = serde_saphyr::Tagged::<Body>::deserialize(deserializer)?;
        Ok(Yaml { tag, body })
    }
}

impl<'de> serde::Deserialize<'de> for Body {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(BodyVisitor)
    }
}

struct BodyVisitor;

impl<'de> serde::de::Visitor<'de> for BodyVisitor {
    type Value = Body;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a YAML node")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Body, A::Error> {
        let mut entries = Vec::new();
        while let Some(entry) = map.next_entry::<String, Yaml>()? {
            entries.push(entry);
        }
        Ok(Body::Mapping(entries))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Body, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Yaml>()? {
            items.push(item);
        }
        Ok(Body::Sequence(items))
    }

    fn visit_str<E>(self, v: &str) -> Result<Body, E> {
        Ok(Body::Scalar(Value::String(v.to_owned())))
    }

    fn visit_bool<E>(self, v: bool) -> Result<Body, E> {
        Ok(Body::Scalar(Value::Bool(v)))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Body, E> {
        Ok(Body::Scalar(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Body, E> {
        Ok(Body::Scalar(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Body, E> {
        Ok(Body::Scalar(v.into()))
    }

    fn visit_unit<E>(self) -> Result<Body, E> {
        Ok(Body::Scalar(Value::Null))
    }

    fn visit_none<E>(self) -> Result<Body, E> {
        Ok(Body::Scalar(Value::Null))
    }
}

/// The parameter's default, or the pseudo parameter's value.
fn reference(doc: &Yaml, name: &str) -> String {
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

fn substitute(doc: &Yaml, text: &str) -> String {
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
fn resolve(doc: &Yaml, value: &Yaml) -> Value {
    // Both functions take one string: `Ref NAME`, or the one-argument form of `Fn::Sub`.
    let function = |name: &str, argument: Option<&str>| -> Value {
        match name {
            "Ref" => Value::String(reference(doc, argument.expect("Ref NAME"))),
            "Fn::Sub" => Value::String(substitute(doc, argument.expect("the one-argument form of Fn::Sub"))),
            other => panic!("{TEMPLATE}: {other} in the query role's policy is not resolved here; extend resolve()"),
        }
    };
    if let Some(tag) = &value.tag {
        let name = tag.trim_start_matches('!');
        let long = if name == "Ref" { "Ref".to_owned() } else { format!("Fn::{name}") };
        return function(&long, value.body.as_str());
    }
    match &value.body {
        Body::Mapping(entries) if entries.len() == 1 && (entries[0].0 == "Ref" || entries[0].0.starts_with("Fn::")) => {
            function(&entries[0].0, entries[0].1.as_str())
        }
        Body::Mapping(entries) => Value::Object(entries.iter().map(|(k, v)| (k.clone(), resolve(doc, v))).collect()),
        Body::Sequence(items) => Value::Array(items.iter().map(|v| resolve(doc, v)).collect()),
        Body::Scalar(scalar) => scalar.clone(),
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
