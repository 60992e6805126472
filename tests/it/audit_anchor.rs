//! The audit trail's anchor: checkpoints of the chain head in an S3 bucket with Object Lock, and `verify` against
//! them, attacked the way someone holding jitgate's own role would attack them.
//!
//! The local AWS server does not enforce per-resource IAM ARNs, condition keys or bucket policies (see
//! `docs/security.md`), so every call of the attack is first judged against the bot's permissions as the template
//! grants them (its identity policies plus the checkpoint bucket's policy, evaluated here with IAM's rules: an
//! explicit deny wins, otherwise an allow is needed), and then made with the SDK against the local server: the
//! calls the role may make are made; those it may not are shown denied by the template, and where the local server
//! enforces Object Lock itself, refused there too.

use jitgate_testkit as support;

use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::ObjectLockMode;
use jitgate::audit::{
    Anchor, AnchorError, AuditError, AuditEvent, AuditLog, Checkpointer, Problem, Written, checkpoint_key, entry_hash,
};
use jitgate::clock::{ManualClock, SharedClock};
use jitgate::ids::RequestId;
use serde_json::Value;

const TEMPLATE: &str = "manifests/iam/jitgate.yaml";

fn s3() -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::config::Builder::from(&support::aws_config()).force_path_style(true).build();
    aws_sdk_s3::Client::from_conf(config)
}

/// A bucket as the template makes it: versioning and Object Lock on.
async fn locked_bucket() -> String {
    let bucket = support::unique("anchor").to_lowercase().replace('_', "-");
    s3().create_bucket().bucket(&bucket).object_lock_enabled_for_bucket(true).send().await.expect("create bucket");
    // (Object Lock turns versioning on; the local server's GetBucketVersioning answer is not one the Rust SDK reads,
    // so the lock configuration stands for both.)
    let lock = s3().get_object_lock_configuration().bucket(&bucket).send().await.expect("lock configuration");
    let enabled = lock.object_lock_configuration().and_then(|c| c.object_lock_enabled());
    assert_eq!(enabled.map(|e| e.as_str()), Some("Enabled"));
    bucket
}

struct Setup {
    clock: std::sync::Arc<ManualClock>,
    log: AuditLog,
    anchor: Anchor,
    table: String,
    bucket: String,
}

async fn setup() -> Setup {
    let table = support::unique("anchored-audit");
    let clock = ManualClock::new(time::macros::datetime!(2026-11-30 12:00 UTC));
    let shared: SharedClock = clock.clone();
    let log = AuditLog::new(&support::aws_config(), table.clone(), shared.clone());
    log.ensure_table().await.expect("audit table");
    let bucket = locked_bucket().await;
    let anchor = Anchor::new(&support::aws_config(), bucket.clone(), Duration::from_secs(400 * 24 * 3600), shared);
    Setup { clock, log, anchor, table, bucket }
}

async fn append(log: &AuditLog, reason: &str) {
    let request = RequestId::parse("JIT-7Q2M4X").unwrap();
    log.append(AuditEvent::Failed { request, code: None, reason: reason.into() }).await.expect("append");
}

// ---------------------------------------------------------------------------------------------------------------
// The bot's permissions, read from the template
// ---------------------------------------------------------------------------------------------------------------

/// One call as IAM sees it. Resources are written as the template writes them (`${AuditTable.Arn}`,
/// `arn:${AWS::Partition}:s3:::${CheckpointBucket}/…`), so the template's own strings match without deploying it.
struct Call {
    action: &'static str,
    resource: String,
    /// dynamodb:LeadingKeys of the call.
    leading_keys: Vec<String>,
    /// Whether the request carries If-None-Match (the s3:if-none-match key).
    if_none_match: bool,
    /// s3:prefix of a listing.
    prefix: Option<String>,
}

impl Call {
    fn new(action: &'static str, resource: impl Into<String>) -> Call {
        Call { action, resource: resource.into(), leading_keys: vec![], if_none_match: false, prefix: None }
    }
}

const AUDIT_TABLE: &str = "${AuditTable.Arn}";

fn checkpoint_object(key: &str) -> String {
    format!("arn:${{AWS::Partition}}:s3:::${{CheckpointBucket}}/{key}")
}

/// `*` matches any run of characters, as in IAM.
fn glob(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, rest)) => {
            text.starts_with(head) && (0..=text.len() - head.len()).any(|i| glob(rest, &text[head.len() + i..]))
        }
    }
}

fn strings(value: &Value) -> Vec<String> {
    match value {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items.iter().map(|v| strings(v).remove(0)).collect(),
        Value::Object(map) if map.contains_key("Fn::Sub") => strings(&map["Fn::Sub"]),
        Value::Object(map) if map.contains_key("Fn::GetAtt") => {
            let parts = strings(&map["Fn::GetAtt"]);
            vec![format!("${{{}}}", parts.join("."))]
        }
        other => panic!("{TEMPLATE}: cannot read {other} as strings"),
    }
}

/// The statements that apply to the bot's role: its identity policies, and the bucket policy's statements for every
/// principal or for the bot's role.
fn template() -> Value {
    let text = std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(TEMPLATE)).unwrap();
    serde_saphyr::from_str(&text).expect("the template is YAML")
}

fn bot_statements() -> Vec<Value> {
    let template = template();
    let resources = &template["Resources"];
    let mut statements = Vec::new();
    for policy in resources["BotRole"]["Properties"]["Policies"].as_array().expect("the bot's policies") {
        statements.extend(policy["PolicyDocument"]["Statement"].as_array().unwrap().iter().cloned());
    }
    statements.extend(
        resources["BotAssumeQueryRoles"]["Properties"]["PolicyDocument"]["Statement"]
            .as_array()
            .unwrap()
            .iter()
            .cloned(),
    );
    for statement in resources["CheckpointBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
        .as_array()
        .expect("the checkpoint bucket's policy")
    {
        let principal = &statement["Principal"];
        if principal == "*" || strings(&principal["AWS"]) == ["${BotRole.Arn}"] {
            statements.push(statement.clone());
        }
    }
    statements
}

fn condition_holds(operator: &str, key: &str, values: &Value, call: &Call) -> bool {
    let values = strings(values);
    match (operator, key) {
        ("ForAllValues:StringLike", "dynamodb:LeadingKeys") => {
            call.leading_keys.iter().all(|k| values.iter().any(|v| glob(v, k)))
        }
        ("ForAllValues:StringEquals", "dynamodb:LeadingKeys") => call.leading_keys.iter().all(|k| values.contains(k)),
        ("StringLike", "s3:prefix") => call.prefix.as_ref().is_some_and(|p| values.iter().any(|v| glob(v, p))),
        ("Null", "s3:if-none-match") => values == ["true"] && !call.if_none_match,
        other => panic!("{TEMPLATE}: condition {other:?} is not evaluated here; extend condition_holds"),
    }
}

fn statement_matches(statement: &Value, call: &Call) -> bool {
    strings(&statement["Action"]).iter().any(|a| glob(a, call.action))
        && strings(&statement["Resource"]).iter().any(|r| glob(r, &call.resource))
        && statement["Condition"].as_object().into_iter().flatten().all(|(operator, keys)| {
            keys.as_object().unwrap().iter().all(|(key, values)| condition_holds(operator, key, values, call))
        })
}

/// IAM's decision for one call of the bot's role: an explicit deny wins; otherwise it needs an allow.
fn bot_may(call: &Call) -> bool {
    let statements = bot_statements();
    let matching: Vec<&Value> = statements.iter().filter(|s| statement_matches(s, call)).collect();
    !matching.iter().any(|s| s["Effect"] == "Deny") && matching.iter().any(|s| s["Effect"] == "Allow")
}

// ---------------------------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------------------------

#[test]
fn the_templates_bucket_locks_every_checkpoint_in_compliance_mode_and_outlives_the_stack() {
    let template = template();
    let bucket = &template["Resources"]["CheckpointBucket"];
    assert_eq!(bucket["Type"], "AWS::S3::Bucket");
    assert_eq!(
        (&bucket["DeletionPolicy"], &bucket["UpdateReplacePolicy"]),
        (&Value::from("Retain"), &Value::from("Retain"))
    );
    let props = &bucket["Properties"];
    assert_eq!(props["VersioningConfiguration"]["Status"], "Enabled");
    assert_eq!(props["ObjectLockEnabled"], true);
    assert_eq!(props["ObjectLockConfiguration"]["ObjectLockEnabled"], "Enabled");
    assert_eq!(props["ObjectLockConfiguration"]["Rule"]["DefaultRetention"]["Mode"], "COMPLIANCE");
    let block = &props["PublicAccessBlockConfiguration"];
    for key in ["BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"] {
        assert_eq!(block[key], true, "{key}");
    }
    assert_eq!(template["Outputs"]["CheckpointBucketName"]["Value"]["Ref"], "CheckpointBucket");
}

#[test]
fn the_template_lets_the_bot_add_and_read_checkpoints_and_nothing_that_changes_or_deletes_one() {
    let key = "checkpoints/jitgate-audit/00000000000000000042.json";
    let put = |if_none_match| Call { if_none_match, ..Call::new("s3:PutObject", checkpoint_object(key)) };
    assert!(bot_may(&put(true)), "a new checkpoint, written with If-None-Match");
    assert!(bot_may(&Call::new("s3:PutObjectRetention", checkpoint_object(key))), "Object Lock headers on the put");
    assert!(!bot_may(&put(false)), "a write that could add a second version of a key is denied");
    assert!(bot_may(&Call::new("s3:GetObject", checkpoint_object(key))));
    assert!(bot_may(&Call::new("s3:GetObjectVersion", checkpoint_object(key))));
    let bucket = "arn:${AWS::Partition}:s3:::${CheckpointBucket}";
    let list = |prefix: &str| Call { prefix: Some(prefix.into()), ..Call::new("s3:ListBucketVersions", bucket) };
    assert!(bot_may(&list("checkpoints/jitgate-audit/")));
    assert!(!bot_may(&list("")), "listing is for checkpoints only");
    // Outside checkpoints/, and every call that would change or remove a checkpoint or the bucket's protection.
    assert!(!bot_may(&Call { if_none_match: true, ..Call::new("s3:PutObject", checkpoint_object("other/x")) }));
    for action in ["s3:DeleteObject", "s3:DeleteObjectVersion", "s3:BypassGovernanceRetention", "s3:PutObjectLegalHold"]
    {
        assert!(!bot_may(&Call::new(action, checkpoint_object(key))), "{action}");
    }
    for action in [
        "s3:PutBucketObjectLockConfiguration",
        "s3:PutBucketPolicy",
        "s3:DeleteBucketPolicy",
        "s3:PutBucketVersioning",
        "s3:PutLifecycleConfiguration",
        "s3:DeleteBucket",
    ] {
        assert!(!bot_may(&Call::new(action, bucket)), "{action}");
    }
}

#[tokio::test]
async fn checkpoints_are_locked_in_compliance_mode_written_once_and_rewritten_by_nobody() {
    let Setup { log, anchor, table, bucket, .. } = setup().await;
    append(&log, "first").await;
    let (seq, hash) = log.head().await.unwrap().expect("a head");
    assert_eq!(anchor.write(&table, seq, &hash).await.unwrap(), Written::New);
    // Any replica may write the same checkpoint again.
    assert_eq!(anchor.write(&table, seq, &hash).await.unwrap(), Written::AlreadyThere);
    // But never another hash for the same entry.
    let other = "0".repeat(64);
    assert!(matches!(anchor.write(&table, seq, &other).await, Err(AnchorError::Conflict { .. })));

    let key = checkpoint_key(&table, seq);
    let head = s3().head_object().bucket(&bucket).key(&key).send().await.expect("the checkpoint");
    assert_eq!(head.object_lock_mode(), Some(&ObjectLockMode::Compliance));
    let until = head.object_lock_retain_until_date().expect("a retain-until date");
    assert!(until.secs() > time::macros::datetime!(2027-12-01 00:00 UTC).unix_timestamp(), "{until}");
    let body = s3().get_object().bucket(&bucket).key(&key).send().await.unwrap().body.collect().await.unwrap();
    let body: Value = serde_json::from_slice(&body.into_bytes()).unwrap();
    assert_eq!(body["format"], "jitgate.checkpoint.v1");
    assert_eq!((body["seq"].as_u64(), body["hash"].as_str()), (Some(seq), Some(hash.as_str())));
    assert_eq!(body["at"], "2026-11-30T12:00:00Z");
    assert_eq!(body["jitgate_version"], env!("CARGO_PKG_VERSION"));

    // Deleting the locked version: the template denies it to the bot, and Object Lock refuses it to anyone.
    assert!(!bot_may(&Call::new("s3:DeleteObjectVersion", checkpoint_object(&key))));
    let versions = s3().list_object_versions().bucket(&bucket).prefix(&key).send().await.unwrap();
    let version = versions.versions()[0].version_id().unwrap().to_owned();
    let err = s3().delete_object().bucket(&bucket).key(&key).version_id(&version).send().await.unwrap_err();
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(403), "locked: {err:?}");
    let err = s3()
        .delete_object()
        .bucket(&bucket)
        .key(&key)
        .version_id(&version)
        .bypass_governance_retention(true)
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(403), "compliance mode has no bypass: {err:?}");
    // Overwriting with If-None-Match: refused by S3 itself.
    let err = s3()
        .put_object()
        .bucket(&bucket)
        .key(&key)
        .if_none_match("*")
        .body(ByteStream::from_static(b"{}"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(412), "{err:?}");
    assert_eq!(anchor.read_all(&table).await.unwrap().by_seq[&seq].hash, hash);
}

/// Re-hashes entries `from..=head` after `edit` changed the event of entry `from`, as an attacker holding the bot's
/// role would: every call is first checked against the template, then made with the SDK.
async fn rewrite_from(table: &str, from: u64, edit: &str) {
    let dynamo = aws_sdk_dynamodb::Client::new(&support::aws_config());
    let key = |seq: u64| format!("E#{seq:020}");
    let get = |pk: String| {
        let dynamo = dynamo.clone();
        async move {
            dynamo
                .get_item()
                .table_name(table)
                .key("pk", AttributeValue::S(pk))
                .consistent_read(true)
                .send()
                .await
                .unwrap()
                .item
                .unwrap()
        }
    };
    let head = get("HEAD".into()).await;
    let head_seq: u64 = head["seq"].as_n().unwrap().parse().unwrap();
    let mut prev_hash = get(key(from - 1)).await["hash"].as_s().unwrap().clone();
    for seq in from..=head_seq {
        let mut item = get(key(seq)).await;
        if seq == from {
            let event = format!(r#"{{"type":"failed","request":"JIT-7Q2M4X","reason":"{edit}"}}"#);
            item.insert("event".into(), AttributeValue::S(event));
        }
        let s = |name: &str| item[name].as_s().unwrap().clone();
        let hash = entry_hash(&prev_hash, seq, &s("at"), Some(&s("request_id")), &s("actor"), &s("event"));
        item.insert("prev_hash".into(), AttributeValue::S(prev_hash.clone()));
        item.insert("hash".into(), AttributeValue::S(hash.clone()));
        // A plain PutItem over the existing entry: IAM cannot require a condition expression.
        let put = Call { leading_keys: vec![key(seq)], ..Call::new("dynamodb:PutItem", AUDIT_TABLE) };
        assert!(bot_may(&put), "the bot's role may overwrite entry {seq}");
        dynamo.put_item().table_name(table).set_item(Some(item)).send().await.expect("overwrite the entry");
        prev_hash = hash;
    }
    let update = Call { leading_keys: vec!["HEAD".into()], ..Call::new("dynamodb:UpdateItem", AUDIT_TABLE) };
    assert!(bot_may(&update), "the bot's role may move the head");
    dynamo
        .update_item()
        .table_name(table)
        .key("pk", AttributeValue::S("HEAD".into()))
        .update_expression("SET #hash = :hash")
        .expression_attribute_names("#hash", "hash")
        .expression_attribute_values(":hash", AttributeValue::S(prev_hash))
        .send()
        .await
        .expect("move the head");
    // Deleting entries instead is not open to the role at all.
    let delete = Call { leading_keys: vec![key(from)], ..Call::new("dynamodb:DeleteItem", AUDIT_TABLE) };
    assert!(!bot_may(&delete));
}

#[tokio::test]
async fn a_chain_rehashed_with_the_bots_role_before_the_last_checkpoint_is_caught_and_the_rewrite_located() {
    let Setup { clock, log, anchor, table, .. } = setup().await;
    let mut checkpointer = Checkpointer::new(log.clone(), anchor.clone());
    for n in 1..=8 {
        append(&log, &format!("step {n}")).await;
        if n == 3 || n == 6 {
            clock.advance(time::Duration::minutes(15));
            assert_eq!(checkpointer.tick().await.unwrap(), Some((n, Written::New)));
            // A tick with the head unmoved writes nothing.
            assert_eq!(checkpointer.tick().await.unwrap(), None);
        }
    }
    let report = log.verify_anchored(Some(&anchor)).await.unwrap();
    assert!(report.is_intact(), "{report}");
    assert!(report.anchoring_line().starts_with("anchored: 2 checkpoint(s)"), "{}", report.anchoring_line());
    assert!(report.anchoring_line().ends_with("entries 7 to 8 come after it and are not anchored yet"));

    // The attack: entry 4 rewritten, 4..=8 re-hashed, the head moved. The chain links again.
    rewrite_from(&table, 4, "nothing happened here").await;
    let unanchored = log.verify().await.unwrap();
    assert!(unanchored.is_intact(), "without an anchor the rewrite is invisible: {unanchored}");
    assert!(unanchored.anchoring_line().starts_with("unanchored"), "{}", unanchored.anchoring_line());

    let report = log.verify_anchored(Some(&anchor)).await.unwrap();
    let finding = report.finding.clone().expect("the rewrite is caught");
    assert_eq!(finding.seq, Some(4), "the first entry after the last checkpoint that still matches: {finding}");
    assert!(
        matches!(finding.problem, Problem::Rewritten { checkpoint_seq: 6, last_matching: Some(3), .. }),
        "{finding}"
    );
    assert_eq!(report.verified, 5, "entries 1..=5 link; entry 6 is where the anchor disagrees");
    assert!(report.to_string().contains("entry 4"), "{report}");

    // The replica's checkpointer refuses to anchor the rewritten chain.
    append(&log, "after the rewrite").await;
    clock.advance(time::Duration::minutes(15));
    let refused = checkpointer.tick().await.unwrap_err();
    assert!(matches!(refused, AuditError::Anchor(AnchorError::Conflict { seq: 6, .. })), "{refused}");
    // So does one that starts afresh: it checks the table against the bucket's last checkpoint first.
    let refused = Checkpointer::new(log.clone(), anchor.clone()).tick().await.unwrap_err();
    assert!(matches!(refused, AuditError::Anchor(AnchorError::Conflict { seq: 6, .. })), "{refused}");
}

#[tokio::test]
async fn the_window_after_the_last_checkpoint_is_what_the_role_can_still_rewrite() {
    let Setup { clock, log, anchor, table, .. } = setup().await;
    let mut checkpointer = Checkpointer::new(log.clone(), anchor.clone());
    for n in 1..=5 {
        append(&log, &format!("step {n}")).await;
        if n == 3 {
            clock.advance(time::Duration::minutes(15));
            checkpointer.tick().await.unwrap();
        }
    }
    let report = log.verify_anchored(Some(&anchor)).await.unwrap();
    assert_eq!(
        report.anchoring_line(),
        "anchored: 1 checkpoint(s) in bucket ".to_owned()
            + anchor.bucket()
            + ", the last of entry 3 at 2026-11-30T12:15:00Z; entries 4 to 5 come after it and are not anchored yet"
    );
    rewrite_from(&table, 4, "rewritten inside the window").await;
    let report = log.verify_anchored(Some(&anchor)).await.unwrap();
    assert!(report.is_intact(), "entries after the last checkpoint are not anchored: {report}");
    // Rewriting from the checkpointed entry itself is caught.
    rewrite_from(&table, 3, "rewritten at the checkpoint").await;
    let finding = log.verify_anchored(Some(&anchor)).await.unwrap().finding.expect("caught");
    assert_eq!(finding.seq, Some(1), "no earlier checkpoint: the rewrite may start anywhere up to entry 3");
    assert!(matches!(finding.problem, Problem::Rewritten { checkpoint_seq: 3, last_matching: None, .. }));
}

#[tokio::test]
async fn forged_checkpoints_cannot_hide_a_rewrite_and_a_head_moved_back_is_named() {
    let Setup { clock, log, anchor, table, bucket } = setup().await;
    let mut checkpointer = Checkpointer::new(log.clone(), anchor.clone());
    for n in 1..=6 {
        append(&log, &format!("step {n}")).await;
        if n == 2 || n == 5 {
            clock.advance(time::Duration::minutes(15));
            checkpointer.tick().await.unwrap();
        }
    }
    rewrite_from(&table, 3, "forged").await;
    let forged_5 = log.stored_hash(5).await.unwrap().unwrap();
    let key = checkpoint_key(&table, 5);
    let forged = serde_json::json!({
        "format": "jitgate.checkpoint.v1", "table": table, "seq": 5, "hash": forged_5,
        "at": "2026-11-30T12:30:00Z", "jitgate_version": env!("CARGO_PKG_VERSION"),
    })
    .to_string();
    // With If-None-Match, S3 refuses; without, the bucket policy denies it. The local server does not enforce
    // bucket policies, so the forged second version is written there: the verifier still reads the original.
    let err = anchor.write(&table, 5, &forged_5).await.unwrap_err();
    assert!(matches!(err, AnchorError::Conflict { .. }), "{err}");
    assert!(!bot_may(&Call::new("s3:PutObject", checkpoint_object(&key))));
    s3().put_object()
        .bucket(&bucket)
        .key(&key)
        .body(ByteStream::from(forged.into_bytes()))
        .send()
        .await
        .expect("the local server writes a second version");
    // A delete marker over the original hides it from plain GETs; the template denies it, the verifier reads versions.
    assert!(!bot_may(&Call::new("s3:DeleteObject", checkpoint_object(&key))));
    s3().delete_object().bucket(&bucket).key(&key).send().await.expect("a delete marker on the local server");

    let report = log.verify_anchored(Some(&anchor)).await.unwrap();
    let finding = report.finding.expect("still caught");
    assert_eq!(finding.seq, Some(3), "{finding}");
    assert!(matches!(finding.problem, Problem::Rewritten { checkpoint_seq: 5, last_matching: Some(2), .. }));

    // The head moved back below the last checkpoint (entries 5 and 6 cut off): named too.
    let fresh = setup().await;
    let mut checkpointer = Checkpointer::new(fresh.log.clone(), fresh.anchor.clone());
    for n in 1..=4 {
        append(&fresh.log, &format!("step {n}")).await;
    }
    checkpointer.tick().await.unwrap();
    let entry_2 = fresh.log.stored_hash(2).await.unwrap().unwrap();
    let dynamo = aws_sdk_dynamodb::Client::new(&support::aws_config());
    dynamo
        .update_item()
        .table_name(&fresh.table)
        .key("pk", AttributeValue::S("HEAD".into()))
        .update_expression("SET #seq = :seq, #hash = :hash")
        .expression_attribute_names("#seq", "seq")
        .expression_attribute_names("#hash", "hash")
        .expression_attribute_values(":seq", AttributeValue::N("2".into()))
        .expression_attribute_values(":hash", AttributeValue::S(entry_2))
        .send()
        .await
        .unwrap();
    let finding = fresh.log.verify_anchored(Some(&fresh.anchor)).await.unwrap().finding.expect("caught");
    assert_eq!(finding.seq, Some(3), "{finding}");
    assert_eq!(finding.problem, Problem::BehindCheckpoint { head_seq: 2, checkpoint_seq: 4 });
}

/// `jitgate audit verify` as an operator runs it, with and without `[audit] checkpoint_bucket`.
#[tokio::test]
async fn audit_verify_names_the_rewritten_entry_and_says_when_the_chain_is_unanchored() {
    let Setup { clock, log, anchor, table, bucket } = setup().await;
    let mut checkpointer = Checkpointer::new(log.clone(), anchor);
    for n in 1..=4 {
        append(&log, &format!("step {n}")).await;
        if n == 1 || n == 3 {
            clock.advance(time::Duration::minutes(15));
            checkpointer.tick().await.unwrap();
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let endpoint = support::aws_endpoint();
    let verify = |audit_section: String| {
        let config = dir.path().join("jitgate.toml");
        let text = format!("[aws]\nregion = \"us-east-1\"\naudit_table = \"{table}\"\n{audit_section}");
        std::fs::write(&config, text).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_jitgate"))
            .args(["--config", config.to_str().unwrap(), "audit", "verify"])
            .env("AWS_ENDPOINT_URL", &endpoint)
            .env("AWS_ACCESS_KEY_ID", "AKIAJITGATETESTS0001")
            .env("AWS_SECRET_ACCESS_KEY", "test-secret")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env_remove("JITGATE_CONFIG")
            .output()
            .expect("run jitgate");
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let anchored = format!("[audit]\ncheckpoint_bucket = \"{bucket}\"\n");

    let (code, text) = verify(String::new());
    assert_eq!(code, Some(0), "{text}");
    assert!(text.starts_with("chain intact: 4 entries"), "{text}");
    assert!(text.contains("\nunanchored: no checkpoint bucket is configured"), "{text}");
    let (code, text) = verify(anchored.clone());
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains(&format!("\nanchored: 2 checkpoint(s) in bucket {bucket}, the last of entry 3")), "{text}");

    rewrite_from(&table, 2, "quietly changed").await;
    let (code, text) = verify(String::new());
    assert_eq!(code, Some(0), "unanchored, the rewrite passes: {text}");
    let (code, text) = verify(anchored);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("chain BROKEN"), "{text}");
    assert!(text.contains("at entry 2: the chain was rewritten from here at the earliest"), "{text}");
    assert!(text.contains("entry 1 still matches its checkpoint"), "{text}");
}
