//! `jitgate check --live`: compares the runbooks with the real world before anyone depends on them.
//!
//! For every runbook: the table exists and its key names match (DescribeTable), the index exists with the key
//! names the runbook declares; for every role: jitgate can assume it the way a real request does — session name
//! `jit-JIT-…`, a SourceIdentity, jitgate's three session tags — so the trust policy's conditions (see
//! `manifests/iam/jitgate.yaml`) are exercised, but with a deny-everything session policy, so the credentials could
//! do nothing even before they are dropped; for every PagerDuty schedule and escalation policy: it exists; for the
//! approval channel: it exists, is not archived and the bot is a member ([`ApprovalChannel`], which `jitgate run`
//! also checks at start-up). Each check is one line of the report.
//!
//! DescribeTable runs with the runbook's own query role, not jitgate's: assumed like a request, with a session
//! policy allowing `dynamodb:DescribeTable` on that one table and nothing else ([`describe_table_policy`]). The bot's
//! role so never needs a permission on an application table (it can only assume the query roles), and a runbook
//! whose role cannot reach its table fails here rather than at its first approved query. `docs/security.md` says why
//! this is the narrower choice; `tests/it/iam_evaluator/live_check.rs` evaluates it against the template.

use std::collections::BTreeSet;
use std::fmt;

use aws_config::SdkConfig;

use crate::aws::sts::{TAG_APPROVERS, TAG_REQUEST_ID, TAG_RUNBOOK};
use crate::oncall::PagerDutyClient;
use crate::runbook::{KeySchema, Runbook, RunbookSet};
use crate::slack::{Conversation, SlackError, SlackWeb};

/// One line of the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckLine {
    pub check: &'static str,
    pub target: String,
    pub passed: bool,
    pub detail: String,
}

impl fmt::Display for CheckLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mark = if self.passed { "ok  " } else { "FAIL" };
        write!(f, "{mark}  {:<20} {:<48} {}", self.check, self.target, self.detail)
    }
}

fn line(check: &'static str, target: impl Into<String>, passed: bool, detail: impl Into<String>) -> CheckLine {
    CheckLine { check, target: target.into(), passed, detail: detail.into() }
}

/// The pseudo request id of a live check: shaped like a request's (`JIT-…`), so a trust policy that admits only
/// jitgate's sessions admits it, and plainly not one in CloudTrail (`jit-JIT-LIVE-CHECK`).
pub const LIVE_CHECK_REQUEST_ID: &str = "JIT-LIVE-CHECK";
/// Allows nothing: the live check's credentials prove the role can be assumed and nothing else.
const DENY_EVERYTHING: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"*","Resource":"*"}]}"#;

fn tag(key: &str, value: &str) -> aws_sdk_sts::types::Tag {
    // Only fails without a key or value, and both are given.
    aws_sdk_sts::types::Tag::builder().key(key).value(value).build().expect("key and value are set")
}

/// Runs every live check. `pagerduty` is `None` when no token is configured: schedules that the static roster
/// covers pass, others fail.
pub async fn run(
    runbooks: &RunbookSet,
    sdk: &SdkConfig,
    pagerduty: Option<&PagerDutyClient>,
    static_schedules: &BTreeSet<String>,
) -> Vec<CheckLine> {
    let sts = aws_sdk_sts::Client::new(sdk);
    let mut lines = Vec::new();
    for runbook in runbooks.iter() {
        lines.push(table_check(&sts, sdk, runbook).await);
    }
    let roles: BTreeSet<String> = runbooks.iter().map(|r| r.role().as_str().to_owned()).collect();
    for role in roles {
        lines.push(match assume(&sts, &role, "live-check", DENY_EVERYTHING).await {
            Ok(out) => {
                let id = out.assumed_role_user().map(|u| u.assumed_role_id().to_owned()).unwrap_or_default();
                line("assume role", role, true, format!("assumed as {id}"))
            }
            Err(err) => line("assume role", role, false, err),
        });
    }
    let mut schedules = BTreeSet::new();
    let mut policies = BTreeSet::new();
    for runbook in runbooks.iter() {
        schedules.extend(runbook.approval().approvers.pagerduty_schedules.iter().cloned());
        policies.extend(runbook.approval().approvers.pagerduty_escalation_policies.iter().cloned());
    }
    for (kind, label, ids) in
        [("schedules", "pagerduty schedule", schedules), ("escalation_policies", "pagerduty policy", policies)]
    {
        for id in ids {
            if kind == "schedules" && static_schedules.contains(&id) {
                lines.push(line(label, id, true, "from [oncall.static_roster]"));
                continue;
            }
            lines.push(match pagerduty {
                None => line(label, id, false, "PAGERDUTY_API_TOKEN is not set and the static roster does not list it"),
                Some(client) => match client.exists(kind, &id).await {
                    Ok(true) => line(label, id, true, "exists"),
                    Ok(false) => line(label, id, false, "not found in PagerDuty (check the id in the runbook)"),
                    Err(err) => line(label, id, false, err.to_string()),
                },
            });
        }
    }
    lines
}

/// Assumes `role` the way a request does (session `jit-JIT-LIVE-CHECK`, a SourceIdentity, jitgate's three session
/// tags), with `policy` as the session policy; the error as one line of text.
async fn assume(
    sts: &aws_sdk_sts::Client,
    role: &str,
    runbook_tag: &str,
    policy: &str,
) -> Result<aws_sdk_sts::operation::assume_role::AssumeRoleOutput, String> {
    sts.assume_role()
        .role_arn(role)
        .role_session_name(format!("jit-{LIVE_CHECK_REQUEST_ID}"))
        .source_identity("jitgate-live-check")
        .tags(tag(TAG_REQUEST_ID, LIVE_CHECK_REQUEST_ID))
        .tags(tag(TAG_RUNBOOK, runbook_tag))
        .tags(tag(TAG_APPROVERS, "none"))
        .policy(policy)
        .duration_seconds(900)
        .send()
        .await
        .map_err(|err| format!("{}", aws_sdk_sts::error::DisplayErrorContext(&err)))
}

/// The session policy of a table check: DescribeTable on `table_arn` alone. DescribeTable on the table also
/// describes its indexes, so no index ARN is needed; no data-plane action is allowed, so the credentials cannot read
/// an item even though the role could.
pub fn describe_table_policy(table_arn: &str) -> String {
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{ "Effect": "Allow", "Action": "dynamodb:DescribeTable", "Resource": table_arn }],
    })
    .to_string()
}

/// A DynamoDB client signing with the assumed role's credentials only, with region, endpoint and HTTP settings from
/// `sdk`.
fn client_with(sdk: &SdkConfig, credentials: &aws_sdk_sts::types::Credentials) -> aws_sdk_dynamodb::Client {
    let expiry = std::time::SystemTime::try_from(*credentials.expiration()).ok();
    let credentials = aws_credential_types::Credentials::new(
        credentials.access_key_id(),
        credentials.secret_access_key(),
        Some(credentials.session_token().to_owned()),
        expiry,
        "jitgate-live-check",
    );
    let config = aws_sdk_dynamodb::config::Builder::from(sdk).credentials_provider(credentials).build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

async fn table_check(sts: &aws_sdk_sts::Client, sdk: &SdkConfig, runbook: &Runbook) -> CheckLine {
    let (table, index) = (runbook.table(), runbook.index());
    let target = match index {
        Some(index) => format!("{}: {} / {}", runbook.id().as_str(), table.name(), index.name()),
        None => format!("{}: {}", runbook.id().as_str(), table.name()),
    };
    let Some(region) = sdk.region() else {
        return line("table", target, false, "no AWS region is configured (aws.region in jitgate.toml)");
    };
    let policy = describe_table_policy(&runbook.table_arn(region.as_ref()));
    let role = runbook.role().as_str();
    let credentials = match assume(sts, role, runbook.id().as_str(), &policy).await {
        Ok(out) => match out.credentials() {
            Some(credentials) => credentials.clone(),
            None => return line("table", target, false, format!("AssumeRole of {role} returned no credentials")),
        },
        Err(err) => return line("table", target, false, format!("cannot assume {role} to describe the table: {err}")),
    };
    let dynamo = client_with(sdk, &credentials);
    let described = match dynamo.describe_table().table_name(table.name()).send().await {
        Ok(out) => out,
        Err(err) => {
            let detail = format!("{}", aws_sdk_dynamodb::error::DisplayErrorContext(&err));
            return line("table", target, false, detail);
        }
    };
    let Some(description) = described.table() else {
        return line("table", target, false, "DescribeTable returned no table");
    };
    let keys = |schema: &[aws_sdk_dynamodb::types::KeySchemaElement]| -> (Option<String>, Option<String>) {
        let of = |kind: aws_sdk_dynamodb::types::KeyType| {
            schema.iter().find(|k| k.key_type() == &kind).map(|k| k.attribute_name().to_owned())
        };
        (of(aws_sdk_dynamodb::types::KeyType::Hash), of(aws_sdk_dynamodb::types::KeyType::Range))
    };
    let declared = |schema: &KeySchema| (Some(schema.partition_key().to_owned()), schema.sort_key().map(str::to_owned));
    let actual = keys(description.key_schema());
    if actual.0 != declared(table).0 || (table.sort_key().is_some() && actual.1 != declared(table).1) {
        return line(
            "table",
            target,
            false,
            format!("table keys are {actual:?}, the runbook says {:?}", declared(table)),
        );
    }
    if let Some(index) = index {
        let found = description.global_secondary_indexes().iter().find(|g| g.index_name() == Some(index.name()));
        let Some(found) = found else {
            let names: Vec<&str> =
                description.global_secondary_indexes().iter().filter_map(|g| g.index_name()).collect();
            return line("table", target, false, format!("no index {} (the table has {names:?})", index.name()));
        };
        let actual = keys(found.key_schema());
        if actual != declared(index) {
            return line(
                "table",
                target,
                false,
                format!("index keys are {actual:?}, the runbook says {:?}", declared(index)),
            );
        }
    }
    line("table", target, true, "keys match")
}

/// What Slack says about the approval channel (`conversations.info`): whether cards can be posted there. Used by
/// `jitgate run` at start-up (which refuses the three definite problems, see `app`) and by `jitgate check --live`.
#[derive(Debug)]
pub enum ApprovalChannel {
    /// A live channel the bot is a member of: cards can be posted.
    Ready(Conversation),
    /// No such channel, or a private one the bot is not in (Slack answers both with `channel_not_found`).
    NotFound,
    /// The bot has not been invited.
    NotMember(Conversation),
    /// Archived: nobody can post there, members or not.
    Archived(Conversation),
    /// Slack gave no answer about the channel (unreachable, rate limited, another error code).
    Unknown(SlackError),
}

impl ApprovalChannel {
    /// Asks Slack about `channel` (an id).
    pub async fn check(slack: &SlackWeb, channel: &str) -> ApprovalChannel {
        match slack.conversation_info(channel).await {
            Ok(None) => ApprovalChannel::NotFound,
            Ok(Some(found)) if found.is_archived => ApprovalChannel::Archived(found),
            Ok(Some(found)) if !found.is_member => ApprovalChannel::NotMember(found),
            Ok(Some(found)) => ApprovalChannel::Ready(found),
            Err(err) => ApprovalChannel::Unknown(err),
        }
    }

    /// One line for the operator: what Slack said about `channel` and, for a problem, what to do.
    pub fn describe(&self, channel: &str) -> String {
        match self {
            ApprovalChannel::Ready(found) => format!("#{} ({channel}): the bot is a member", found.name),
            ApprovalChannel::NotFound => format!(
                "channel {channel} not found: check slack.approval_channel (the channel's id, from its details in \
                 Slack); a private channel stays invisible until the bot is invited: /invite @jitgate in it"
            ),
            ApprovalChannel::NotMember(found) => format!(
                "the bot is not a member of #{name} ({channel}), so it cannot post approval cards there: invite \
                 the bot: /invite @jitgate in #{name}",
                name = found.name
            ),
            ApprovalChannel::Archived(found) => format!(
                "#{} ({channel}) is archived: unarchive it, or set slack.approval_channel to a live channel",
                found.name
            ),
            ApprovalChannel::Unknown(err) => match err.user_hint() {
                Some(hint) => format!("cannot check channel {channel}: {err} — {hint}"),
                None => format!("cannot check channel {channel}: {err}"),
            },
        }
    }
}

/// The approval channel's line of the live report. `slack` is the client built from `SLACK_BOT_TOKEN` and
/// `SLACK_API_URL`, or why there is none.
pub async fn approval_channel_line(slack: Result<&SlackWeb, String>, channel: &str) -> CheckLine {
    match slack {
        Ok(slack) => {
            let status = ApprovalChannel::check(slack, channel).await;
            line("approval channel", channel, matches!(status, ApprovalChannel::Ready(_)), status.describe(channel))
        }
        Err(why) => line("approval channel", channel, false, why),
    }
}
