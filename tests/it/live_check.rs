//! `jitgate check --live` against the local DynamoDB/STS server and the PagerDuty emulator: a correct setup passes
//! every line, and a runbook naming a missing index or schedule fails with the reason.

use jitgate_testkit as support;

use std::path::Path;
use std::process::Command;

use jitgate::aws::demo_table::create_demo_orders_table;
use jitgate_emulators::pagerduty::FakePagerDuty;
use jitgate_emulators::slack::FakeSlack;
use jitgate_emulators::world::{self, ONCALL};

/// A config folder with the shipped runbooks pointed at `table`, each runbook's text passed through `edit`.
fn setup(dir: &Path, table: &str, edit: impl Fn(&str, String) -> String) {
    // `jitgate check` (live or not) refuses a config `jitgate run` would refuse, as one without this channel.
    std::fs::write(
        dir.join("jitgate.toml"),
        "[aws]\nregion = \"us-east-1\"\n[slack]\napproval_channel = \"C0ONCALL\"\n",
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("runbooks")).unwrap();
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("runbooks");
    for entry in std::fs::read_dir(shipped).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let name = path.file_name().unwrap().to_str().unwrap().to_owned();
            let text = std::fs::read_to_string(&path).unwrap().replace("name: Orders\n", &format!("name: {table}\n"));
            std::fs::write(dir.join("runbooks").join(&name), edit(&name, text)).unwrap();
        }
    }
}

fn check_live(dir: &Path, pagerduty: &FakePagerDuty, slack: &FakeSlack) -> (Option<i32>, String) {
    check_live_as(dir, pagerduty, slack, (&support::aws_endpoint(), "AKIAJITGATETESTS0001", "test-secret"))
}

/// `jitgate check --live` against the AWS `endpoint`, signing as `access_key`.
fn check_live_as(
    dir: &Path,
    pagerduty: &FakePagerDuty,
    slack: &FakeSlack,
    (endpoint, access_key, secret_key): (&str, &str, &str),
) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_jitgate"))
        .args(["--config", dir.join("jitgate.toml").to_str().unwrap(), "check", "--live"])
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_ACCESS_KEY_ID", access_key)
        .env("AWS_SECRET_ACCESS_KEY", secret_key)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("PAGERDUTY_API_URL", pagerduty.base_url())
        .env("PAGERDUTY_API_TOKEN", pagerduty.api_key())
        .env("SLACK_API_URL", slack.api_base())
        .env("SLACK_BOT_TOKEN", slack.bot_token())
        .env_remove("JITGATE_CONFIG")
        .output()
        .unwrap();
    (out.status.code(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

// Multi-threaded: the binary runs as a blocking child process while the PagerDuty emulator answers it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_correct_setup_passes_and_a_wrong_index_or_schedule_fails_with_the_reason() {
    let table = support::unique("Orders");
    create_demo_orders_table(&aws_sdk_dynamodb::Client::new(&support::aws_config()), &table).await.unwrap();
    let pagerduty = FakePagerDuty::start().await;
    pagerduty.add_schedule("PORDERS1", "Orders primary");
    let slack = FakeSlack::start(world::slack_config()).await;

    let good = tempfile::tempdir().unwrap();
    setup(good.path(), &table, |_, text| text);
    let (code, output) = check_live(good.path(), &pagerduty, &slack);
    assert_eq!(code, Some(0), "{output}");
    assert_eq!(output.lines().filter(|l| l.starts_with("ok    table")).count(), 4, "{output}");
    assert!(output.contains("ok    assume role") && output.contains("ok    pagerduty schedule   PORDERS1"), "{output}");
    assert!(output.contains("ok    approval channel     C0ONCALL"), "{output}");
    // Two roles: the query role of the reads and the write role of cancel-stuck-order.
    assert!(output.contains("live checks: 8 ok, 0 failing"), "{output}");

    let bad = tempfile::tempdir().unwrap();
    setup(bad.path(), &table, |name, text| match name {
        "orders-by-status.yaml" => text.replace("name: status-created-index", "name: status-index"),
        "order-by-id.yaml" => text.replace("[PORDERS1]", "[PNOPE01]"),
        _ => text,
    });
    let (code, output) = check_live(bad.path(), &pagerduty, &slack);
    assert_eq!(code, Some(1), "{output}");
    assert!(output.contains("FAIL  table") && output.contains("no index status-index"), "{output}");
    assert!(
        output.contains("FAIL  pagerduty schedule   PNOPE01") && output.contains("not found in PagerDuty"),
        "{output}"
    );
}

// The approval channel, checked with Slack's conversations.info by `check --live` and by `jitgate run` at start-up:
// a channel that is missing (or private without the bot), one the bot is not in, and an archived one are refused
// with the fix; the world's approval channel passes.

const OUTSIDE: &str = "C0OUTSIDE";
const ARCHIVED: &str = "C0ARCHIVE";
const HIDDEN: &str = "G0HIDDEN";
const MISSING: &str = "C0MISSING";

/// The world's workspace plus one channel of each kind the bot cannot post cards in.
async fn slack_with_unusable_channels() -> FakeSlack {
    use jitgate_emulators::slack::Channel;
    FakeSlack::start(
        world::slack_config()
            .with_channel(Channel::public(OUTSIDE, "outside").without_bot())
            .with_channel(Channel::public(ARCHIVED, "old-oncall").archived())
            .with_channel(Channel::private(HIDDEN, "hidden", &[]).without_bot()),
    )
    .await
}

/// Each unusable channel, with what the refusal must say.
const REFUSED: [(&str, &str); 4] = [
    (MISSING, "channel C0MISSING not found: check slack.approval_channel"),
    (HIDDEN, "channel G0HIDDEN not found: check slack.approval_channel"),
    (
        OUTSIDE,
        "the bot is not a member of #outside (C0OUTSIDE), so it cannot post approval cards there: invite the bot: \
         /invite @jitgate in #outside",
    ),
    (ARCHIVED, "#old-oncall (C0ARCHIVE) is archived: unarchive it, or set slack.approval_channel to a live channel"),
];

fn point_at_channel(dir: &Path, channel: &str) {
    let config = format!("[aws]\nregion = \"us-east-1\"\n[slack]\napproval_channel = \"{channel}\"\n");
    std::fs::write(dir.join("jitgate.toml"), config).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_live_fails_an_approval_channel_the_bot_cannot_post_in() {
    let table = support::unique("Orders");
    create_demo_orders_table(&aws_sdk_dynamodb::Client::new(&support::aws_config()), &table).await.unwrap();
    let pagerduty = FakePagerDuty::start().await;
    pagerduty.add_schedule("PORDERS1", "Orders primary");
    let slack = slack_with_unusable_channels().await;
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path(), &table, |_, text| text);

    for (channel, expected) in REFUSED {
        point_at_channel(dir.path(), channel);
        let (code, output) = check_live(dir.path(), &pagerduty, &slack);
        assert_eq!(code, Some(1), "{channel}: {output}");
        let line =
            output.lines().find(|l| l.starts_with("FAIL  approval channel")).unwrap_or_else(|| panic!("{output}"));
        assert!(line.contains(channel) && line.contains(expected), "{channel}: {line}");
        assert!(output.contains("live checks: 7 ok, 1 failing"), "only the channel fails: {output}");
    }

    // Without a bot token Slack cannot be asked: that is a failing line too, not a pass.
    point_at_channel(dir.path(), ONCALL);
    let out = Command::new(env!("CARGO_BIN_EXE_jitgate"))
        .args(["--config", dir.path().join("jitgate.toml").to_str().unwrap(), "check", "--live"])
        .env("AWS_ENDPOINT_URL", support::aws_endpoint())
        .env("AWS_ACCESS_KEY_ID", "AKIAJITGATETESTS0001")
        .env("AWS_SECRET_ACCESS_KEY", "test-secret")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("PAGERDUTY_API_URL", pagerduty.base_url())
        .env("PAGERDUTY_API_TOKEN", pagerduty.api_key())
        .env_remove("SLACK_BOT_TOKEN")
        .env_remove("JITGATE_CONFIG")
        .output()
        .unwrap();
    let output = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{output}");
    assert!(output.contains("FAIL  approval channel     C0ONCALL") && output.contains("SLACK_BOT_TOKEN is not set"));
}

/// Starts jitgate in-process (as `jitgate run` does) with `channel` as its approval channel.
async fn start_with_channel(slack: &FakeSlack, channel: &str, audit_table: &str) -> anyhow::Result<jitgate::app::App> {
    use jitgate::config::{Config, Environment, Secrets};
    use secrecy::SecretString;
    // A static roster covers the runbooks' schedule, so no PagerDuty is needed.
    let text = format!(
        "[aws]\nregion = \"{}\"\naudit_table = \"{audit_table}\"\n[redis]\nkey_prefix = \"{}\"\n\
         [slack]\napproval_channel = \"{channel}\"\n[http]\nlisten = \"127.0.0.1:0\"\n\
         [oncall.static_roster]\nPORDERS1 = [\"{}\"]\n",
        support::REGION,
        support::unique("channel"),
        world::BOB,
    );
    let config = Config::parse(Path::new("jitgate.toml"), &text, &Environment::default()).expect("config");
    let secrets = Secrets {
        redis_url: SecretString::from(support::redis_url()),
        slack_app_token: Some(SecretString::from(slack.app_token().to_owned())),
        slack_bot_token: Some(SecretString::from(slack.bot_token().to_owned())),
        slack_api_url: slack.api_base(),
        pagerduty_token: None,
        pagerduty_api_url: "http://127.0.0.1:9".to_owned(),
        link_secret: Some(SecretString::from("test-link-secret-".repeat(4))),
    };
    let runbooks = support::harness::shipped_runbooks_on(&support::unique("Orders"));
    let clock: jitgate::clock::SharedClock = jitgate::clock::ManualClock::new(support::fixtures::wall_clock_now());
    let options = jitgate::app::StartOptions { background_sweeper: false, socket_stagger_seconds: 0 };
    jitgate::app::start(&config, &secrets, runbooks, &support::aws_config(), clock, options).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_refuses_to_start_with_an_approval_channel_the_bot_cannot_post_in() {
    let slack = slack_with_unusable_channels().await;
    let audit_table = support::unique("audit");
    for (channel, expected) in REFUSED {
        let Err(err) = start_with_channel(&slack, channel, &audit_table).await else {
            panic!("jitgate started with approval channel {channel}")
        };
        let err = format!("{err:#}");
        assert!(err.starts_with("approval channel: ") && err.contains(expected), "{channel}: {err}");
    }
    assert_eq!(slack.connections(), 0, "no socket was opened");

    let app = start_with_channel(&slack, ONCALL, &audit_table).await.expect("starts with the world's channel");
    let asked: Vec<_> = slack.calls_to("conversations.info").iter().map(|c| c.params["channel"].clone()).collect();
    assert_eq!(asked.last().and_then(|c| c.as_str()), Some(ONCALL));
    app.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_starts_with_a_warning_when_slack_cannot_say_anything_about_the_channel() {
    // A Slack failure says nothing about the channel: refusing would keep replicas restarting while Slack is down.
    let slack = FakeSlack::start(world::slack_config()).await;
    slack.fail_next("conversations.info", "service_unavailable");
    let app = start_with_channel(&slack, ONCALL, &support::unique("audit")).await.expect("starts anyway");
    assert_eq!(slack.calls_to("conversations.info").len(), 1);
    app.shutdown().await;
}

// Which credentials describe the tables: the runbook's query role, assumed with a session policy allowing
// DescribeTable only, never jitgate's own identity (docs/security.md). On a moto server with IAM checks on, the
// bot's user may only assume roles; the table check passes only because it describes with the query role. (moto
// checks actions, not table ARNs or session policies: tests/it/iam_evaluator.rs proves those.)

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tables_are_described_with_the_query_roles_credentials_not_the_bots() {
    use crate::aws::{OwnMoto, xml_field};

    let moto = OwnMoto::start().await;
    let setup_config = support::aws_config_for(&moto.endpoint, "AKIAJITGATESETUP0001", "setup-secret");
    let table = support::unique("Orders");
    create_demo_orders_table(&aws_sdk_dynamodb::Client::new(&setup_config), &table).await.unwrap();

    let bot = "jitgate-bot";
    moto.iam(&[("Action", "CreateUser"), ("UserName", bot)]).await;
    let assume_only = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": ["sts:AssumeRole", "sts:SetSourceIdentity", "sts:TagSession"],
                       "Resource": "*"}]
    })
    .to_string();
    let put_user_policy = [("Action", "PutUserPolicy"), ("UserName", bot), ("PolicyName", "assume")];
    moto.iam(&[&put_user_policy[..], &[("PolicyDocument", assume_only.as_str())]].concat()).await;
    let key = moto.iam(&[("Action", "CreateAccessKey"), ("UserName", bot)]).await;
    let (key_id, secret) = (xml_field(&key, "AccessKeyId"), xml_field(&key, "SecretAccessKey"));

    // The shipped runbooks' roles, trusted by the bot and allowed to describe tables.
    let trust = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"AWS": format!("arn:aws:iam::{}:user/{bot}", support::ACCOUNT)},
            "Action": ["sts:AssumeRole", "sts:SetSourceIdentity", "sts:TagSession"]
        }]
    })
    .to_string();
    let describe = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "dynamodb:DescribeTable", "Resource": "*"}]
    })
    .to_string();
    // The read runbooks' query role and the write runbook's role.
    for role in ["jitgate-orders-read", "jitgate-orders-write"] {
        moto.iam(&[("Action", "CreateRole"), ("RoleName", role), ("AssumeRolePolicyDocument", &trust)]).await;
        let put_role_policy = [("Action", "PutRolePolicy"), ("RoleName", role), ("PolicyName", "describe")];
        moto.iam(&[&put_role_policy[..], &[("PolicyDocument", describe.as_str())]].concat()).await;
    }
    moto.switch_auth_on().await;

    // The bot itself may not describe the table: had the check used its credentials, this is what it would meet.
    let as_bot = support::aws_config_for(&moto.endpoint, &key_id, &secret);
    let denied = aws_sdk_dynamodb::Client::new(&as_bot).describe_table().table_name(&table).send().await;
    assert!(denied.is_err(), "the bot's own user must not be able to describe the table");

    let pagerduty = FakePagerDuty::start().await;
    pagerduty.add_schedule("PORDERS1", "Orders primary");
    let slack = FakeSlack::start(world::slack_config()).await;
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path(), &table, |_, text| text);
    let (code, output) = check_live_as(dir.path(), &pagerduty, &slack, (&moto.endpoint, &key_id, &secret));
    assert_eq!(output.lines().filter(|l| l.starts_with("ok    table")).count(), 4, "{output}");
    assert!(output.contains("live checks: 8 ok, 0 failing"), "{output}");
    assert_eq!(code, Some(0), "{output}");
}
