//! The `jitgate` binary as an operator runs it: `check` on good and broken setups, `audit verify` on an intact
//! and a tampered trail in the local DynamoDB.

use jitgate_testkit as support;

use std::path::Path;
use std::process::{Command, Output};

use aws_sdk_dynamodb::types::AttributeValue;
use jitgate::audit::{AuditEvent, AuditLog};
use jitgate::clock::{ManualClock, SharedClock};
use jitgate::ids::RequestId;

fn jitgate(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_jitgate"));
    command.args(args).env_remove("JITGATE_CONFIG").env("AWS_EC2_METADATA_DISABLED", "true");
    for (k, v) in envs {
        command.env(k, v);
    }
    command.output().expect("run jitgate")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn repo_file(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(name).display().to_string()
}

#[test]
fn check_accepts_the_shipped_config_and_runbooks_with_one_line_each() {
    let out = jitgate(&["--config", &repo_file("jitgate.example.toml"), "check"], &[]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    let lines: Vec<&str> = stdout.lines().filter(|l| l.starts_with("ok  ")).collect();
    assert_eq!(lines.len(), 4, "{stdout}");
    assert!(
        stdout.contains(
            "ok  cancel-stuck-order: update_item (write) Orders; params [order_id, refund_note]; cap 1; 2 approval(s)"
        ),
        "a write defaults to two approvers: {stdout}"
    );
    assert!(
        stdout.contains(
            "ok  orders-by-customer: query Orders index customer-created-index; params [customer_id, from, until]"
        ),
        "{stdout}"
    );
}

#[test]
fn check_names_the_file_field_and_fix_of_a_broken_runbook() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("jitgate.toml"), "[aws]\nregion = \"us-east-1\"\n").unwrap();
    std::fs::create_dir(dir.path().join("runbooks")).unwrap();
    let good = std::fs::read_to_string(repo_file("runbooks/order-by-id.yaml")).unwrap();
    std::fs::write(dir.path().join("runbooks/order-by-id.yaml"), good.replace("max_items: 1", "max_items: 0")).unwrap();
    let out = jitgate(&["--config", &dir.path().join("jitgate.toml").display().to_string(), "check"], &[]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("order-by-id.yaml: max_items:"), "{stderr}");
    assert!(stderr.contains(" — "), "the message says how to fix it: {stderr}");
}

#[test]
fn check_names_the_file_field_and_fix_of_broken_gate_fields() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("jitgate.toml"), "[aws]\nregion = \"us-east-1\"\n").unwrap();
    std::fs::create_dir(dir.path().join("runbooks")).unwrap();
    let good = std::fs::read_to_string(repo_file("runbooks/order-by-id.yaml")).unwrap();
    let broken = good.replace("  ttl: 30m\n", "  ttl: 30m\n  escalate_after: soon\n  max_escalation_level: 1\n")
        + "incident:\n  required: true\n  services: [orders]\n";
    std::fs::write(dir.path().join("runbooks/order-by-id.yaml"), broken).unwrap();
    let out = jitgate(&["--config", &dir.path().join("jitgate.toml").display().to_string(), "check"], &[]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    for expected in [
        "order-by-id.yaml: incident.services[0]: `orders` is not a PagerDuty service id — use the id from",
        "order-by-id.yaml: approval.escalate_after: `soon` is not a duration — write a duration such as",
        "order-by-id.yaml: approval.max_escalation_level: max_escalation_level is 1 — use a level from 2 to 10",
        "order-by-id.yaml: approval.escalate_after: escalation widens through PagerDuty escalation policies, but the \
         runbook names none — add `pagerduty_escalation_policies: [PXXXXXX]`",
    ] {
        assert!(stderr.contains(expected), "{expected}\nin:\n{stderr}");
    }
}

#[test]
fn check_names_a_bad_config_key() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("jitgate.toml"), "[aws]\nregion = \"us-east-1\"\naudit_tabel = \"x\"\n").unwrap();
    let out = jitgate(&["check"], &[("JITGATE_CONFIG", &dir.path().join("jitgate.toml").display().to_string())]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("jitgate.toml: line 3: unknown field `audit_tabel`"), "{stderr}");
}

/// `jitgate run` with Slack tokens set but the given link secret (`None`: unset); it must stop before connecting.
fn run_with_link_secret(secret: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_jitgate"));
    command
        .args(["--config", &repo_file("jitgate.example.toml"), "run"])
        .env_remove("JITGATE_CONFIG")
        .env_remove("JITGATE_LINK_SECRET")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("SLACK_APP_TOKEN", "xapp-1-test")
        .env("SLACK_BOT_TOKEN", "xoxb-test");
    if let Some(secret) = secret {
        command.env("JITGATE_LINK_SECRET", secret);
    }
    command.output().expect("run jitgate")
}

#[test]
fn run_refuses_to_start_without_a_strong_link_secret() {
    let out = run_with_link_secret(None);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("JITGATE_LINK_SECRET is not set"), "{stderr}");
    assert!(stderr.contains("openssl rand -hex 32"), "{stderr}");

    let out = run_with_link_secret(Some("swordfish"));
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("JITGATE_LINK_SECRET is 9 bytes long"), "{stderr}");
    assert!(!stderr.contains("swordfish"), "the secret is never printed: {stderr}");
}

#[tokio::test]
async fn audit_verify_reports_an_intact_chain_then_the_edited_entry() {
    let table = support::unique("cli-audit");
    let clock: SharedClock = ManualClock::new(support::fixtures::wall_clock_now());
    let log = AuditLog::new(&support::aws_config(), table.clone(), clock);
    log.ensure_table().await.unwrap();
    for reason in ["first", "second"] {
        let request = RequestId::parse("JIT-AAAAAA").unwrap();
        log.append(AuditEvent::Failed { request, code: None, reason: reason.into() }).await.unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("jitgate.toml");
    std::fs::write(&config, format!("[aws]\nregion = \"us-east-1\"\naudit_table = \"{table}\"\n")).unwrap();
    std::fs::create_dir(dir.path().join("runbooks")).unwrap();
    let endpoint = support::aws_endpoint();
    let envs = [
        ("AWS_ENDPOINT_URL", endpoint.as_str()),
        ("AWS_ACCESS_KEY_ID", "AKIAJITGATETESTS0001"),
        ("AWS_SECRET_ACCESS_KEY", "test-secret"),
    ];
    let args = ["--config", config.to_str().unwrap(), "audit", "verify"];

    let out = jitgate(&args, &envs);
    assert!(out.status.success(), "{}{}", text(&out.stdout), text(&out.stderr));
    assert!(text(&out.stdout).starts_with("chain intact: 2 entries"), "{}", text(&out.stdout));

    // The operator's other views of the same trail: one request's story, and JSON lines for a SIEM.
    let config_arg = config.to_str().unwrap();
    let out = jitgate(&["--config", config_arg, "audit", "show", "jit-aaaaaa"], &envs);
    let shown = text(&out.stdout);
    assert!(out.status.success(), "{shown}{}", text(&out.stderr));
    assert_eq!(shown.lines().count(), 2, "{shown}");
    assert!(
        shown.starts_with("#1 ") && shown.contains(" jitgate failed ") && shown.contains("\"reason\":\"first\""),
        "{shown}"
    );
    let out = jitgate(&["--config", config_arg, "audit", "export", "--since", "1h", "--format", "jsonl"], &envs);
    let exported = text(&out.stdout);
    assert!(out.status.success(), "{exported}{}", text(&out.stderr));
    let lines: Vec<serde_json::Value> =
        exported.lines().map(|l| serde_json::from_str(l).expect("one JSON object per line")).collect();
    assert_eq!(lines.len(), 2);
    assert_eq!((lines[0]["seq"].as_u64(), lines[1]["prev_hash"].clone()), (Some(1), lines[0]["hash"].clone()));
    let out = jitgate(&["--config", config_arg, "audit", "export", "--since", "2999-01-01T00:00:00Z"], &envs);
    assert!(out.status.success() && text(&out.stdout).is_empty(), "nothing that recent");
    let out = jitgate(&["--config", config_arg, "audit", "export", "--since", "last tuesday"], &envs);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--since `last tuesday` is neither"), "{}", text(&out.stderr));

    // An auditor's nightmare: someone rewrites the first entry's event in place.
    let raw = aws_sdk_dynamodb::Client::new(&support::aws_config());
    let first =
        raw.get_item().table_name(&table).key("pk", AttributeValue::S("E#00000000000000000001".into())).send().await;
    let item = first.unwrap().item.expect("entry 1 exists");
    let event = match item.get("event") {
        Some(AttributeValue::S(event)) => event.replace("first", "nothing to see"),
        other => panic!("unexpected event attribute {other:?}"),
    };
    let mut edited = item.clone();
    edited.insert("event".into(), AttributeValue::S(event));
    raw.put_item().table_name(&table).set_item(Some(edited)).send().await.unwrap();

    let out = jitgate(&args, &envs);
    assert_eq!(out.status.code(), Some(1), "{}{}", text(&out.stdout), text(&out.stderr));
    assert!(text(&out.stdout).contains("BROKEN") && text(&out.stdout).contains("entry 1"), "{}", text(&out.stdout));
}

// `jitgate check` refuses what `jitgate run` would refuse: the config's run-only settings always, the secrets
// from the environment with --secrets (CI has none, so plain `check` leaves them alone).

/// The variables `check --secrets` and `run` look at, removed so the caller's environment cannot leak in.
const RUN_VARIABLES: [&str; 6] =
    ["SLACK_APP_TOKEN", "SLACK_BOT_TOKEN", "JITGATE_LINK_SECRET", "PAGERDUTY_API_TOKEN", "REDIS_URL", "SLACK_API_URL"];

fn jitgate_with_only(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_jitgate"));
    command.args(args).env_remove("JITGATE_CONFIG").env("AWS_EC2_METADATA_DISABLED", "true");
    for name in RUN_VARIABLES {
        command.env_remove(name).env_remove(format!("{name}_FILE"));
    }
    command.envs(envs.iter().copied());
    command.output().expect("run jitgate")
}

#[test]
fn check_refuses_a_config_without_an_approval_channel() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("jitgate.toml"), "[aws]\nregion = \"us-east-1\"\n").unwrap();
    std::fs::create_dir(dir.path().join("runbooks")).unwrap();
    std::fs::copy(repo_file("runbooks/order-by-id.yaml"), dir.path().join("runbooks/order-by-id.yaml")).unwrap();
    let out = jitgate_with_only(&["--config", &dir.path().join("jitgate.toml").display().to_string(), "check"], &[]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("jitgate.toml: slack.approval_channel: is not set — set it to the id"), "{stderr}");
    assert!(stderr.contains("jitgate run would refuse this setup: 1 problem(s)"), "{stderr}");
    assert!(!text(&out.stdout).contains("valid"), "nothing is called valid: {}", text(&out.stdout));
}

#[test]
fn check_with_secrets_names_each_missing_secret_and_passes_once_they_are_set() {
    let config = repo_file("jitgate.example.toml");
    // CI: no secrets, and plain `check` passes.
    let out = jitgate_with_only(&["--config", &config, "check"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));

    let out = jitgate_with_only(&["--config", &config, "check", "--secrets"], &[]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    for expected in [
        "error: SLACK_APP_TOKEN is not set — create an app-level token (xapp-…)",
        "error: SLACK_BOT_TOKEN is not set — install the app and copy its bot token (xoxb-…)",
        "error: JITGATE_LINK_SECRET is not set — it signs the audit page links posted in Slack; make one with \
         `openssl rand -hex 32`",
        // The shipped runbooks take approvers from PagerDuty schedule PORDERS1, which no static roster covers.
        "error: PAGERDUTY_API_TOKEN is not set, but runbooks name PagerDuty schedules or escalation policies — set \
         it, or list those schedules under [oncall.static_roster]",
        "jitgate run would refuse this setup: 4 problem(s)",
    ] {
        assert!(stderr.contains(expected), "expected {expected:?} in:\n{stderr}");
    }

    // `run` refuses the same setup with the same messages, before it connects to anything.
    let out = jitgate_with_only(&["--config", &config, "run"], &[]);
    let run_stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{run_stderr}");
    for variable in ["SLACK_APP_TOKEN is not set", "SLACK_BOT_TOKEN is not set", "PAGERDUTY_API_TOKEN is not set"] {
        assert!(run_stderr.contains(variable), "expected {variable:?} in:\n{run_stderr}");
    }

    let secret = "k".repeat(64);
    let envs = [
        ("SLACK_APP_TOKEN", "xapp-1-A0-check"),
        ("SLACK_BOT_TOKEN", "xoxb-check"),
        ("JITGATE_LINK_SECRET", secret.as_str()),
        ("PAGERDUTY_API_TOKEN", "pd-check"),
    ];
    let out = jitgate_with_only(&["--config", &config, "check", "--secrets"], &envs);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("environment: SLACK_APP_TOKEN, SLACK_BOT_TOKEN and JITGATE_LINK_SECRET set"), "{stdout}");
    assert!(!stdout.contains(&secret) && !stdout.contains("xoxb-check"), "values are never printed: {stdout}");

    // A swapped token is named with the fix, its value never printed.
    let swapped = [("SLACK_BOT_TOKEN", "xapp-1-A0-swapped"), envs[0], envs[2], envs[3]];
    let out = jitgate_with_only(&["--config", &config, "check", "--secrets"], &swapped);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("SLACK_BOT_TOKEN is not a bot token (xoxb-…)"), "{stderr}");
    assert!(!stderr.contains("swapped"), "{stderr}");
}

// Secrets mounted as files (`NAME_FILE`), as Kubernetes and Docker mount them: `check --secrets` and `run` read them
// like the variables, and refuse a file they cannot use naming the variable and path, never the content.
#[test]
fn check_with_secrets_reads_secret_files_and_names_the_path_of_a_bad_one() {
    let config = repo_file("jitgate.example.toml");
    let dir = tempfile::tempdir().unwrap();
    let secret = "s".repeat(64);
    let mut envs = Vec::new();
    for (name, value) in [
        ("SLACK_APP_TOKEN", "xapp-1-A0-from-file\n".to_owned()),
        ("SLACK_BOT_TOKEN", "xoxb-from-file\n".to_owned()),
        ("JITGATE_LINK_SECRET", format!("{secret}\n")),
        ("PAGERDUTY_API_TOKEN", "pd-from-file".to_owned()),
    ] {
        let path = dir.path().join(name.to_lowercase());
        std::fs::write(&path, value).unwrap();
        envs.push((format!("{name}_FILE"), path.display().to_string()));
    }
    let run = |args: &[&str], envs: &[(String, String)]| {
        let borrowed: Vec<(&str, &str)> = envs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        jitgate_with_only(args, &borrowed)
    };
    let out = run(&["--config", &config, "check", "--secrets"], &envs);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("environment: SLACK_APP_TOKEN, SLACK_BOT_TOKEN and JITGATE_LINK_SECRET set"), "{stdout}");
    assert!(!stdout.contains("from-file") && !stdout.contains(&secret), "values are never printed: {stdout}");

    // Both the variable and its file: refused, naming both.
    let mut both = envs.clone();
    both.push(("SLACK_BOT_TOKEN".into(), "xoxb-from-env".into()));
    let out = run(&["--config", &config, "check", "--secrets"], &both);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("SLACK_BOT_TOKEN_FILE ("), "{stderr}");
    assert!(stderr.contains(") is set, and so is SLACK_BOT_TOKEN — set only one"), "{stderr}");

    // A path that cannot be read: named with its path, and `run` refuses it the same way.
    let mut missing = envs.clone();
    missing[0].1 = dir.path().join("no-such-file").display().to_string();
    for command in ["check", "run"] {
        let mut args = vec!["--config", config.as_str(), command];
        if command == "check" {
            args.push("--secrets");
        }
        let out = run(&args, &missing);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{command}: {stderr}");
        let expected = format!("error: SLACK_APP_TOKEN_FILE ({}) cannot be read:", missing[0].1);
        assert!(stderr.contains(&expected), "{command}: expected {expected:?} in:\n{stderr}");
        assert!(!stderr.contains("from-file") && !stderr.contains(&secret), "{command}: {stderr}");
    }
}

#[test]
fn a_log_format_variable_that_names_no_format_is_refused() {
    let config = repo_file("jitgate.example.toml");
    let out = jitgate_with_only(&["--config", &config, "run"], &[("JITGATE_LOG_FORMAT", "logfmt")]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("error: JITGATE_LOG_FORMAT `logfmt` is not a log format — use `json` or `text`"),
        "{stderr}"
    );
}

/// Large results wait on disk until they are delivered: a temporary directory that cannot be written stops `run`
/// at start-up with the fix, not the first large result after its query ran.
#[test]
fn run_refuses_to_start_without_a_writable_temporary_directory() {
    let config = repo_file("jitgate.example.toml");
    let out = jitgate_with_only(&["--config", &config, "run"], &[("TMPDIR", "/nonexistent/jitgate-tmp")]);
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains(
            "large query results wait in a temporary file in /nonexistent/jitgate-tmp until they are \
             delivered, but it cannot be written"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("Set TMPDIR to a writable directory"), "{stderr}");
}

/// `jitgate --version` names the commit it was built from: the checkout's when built from one (as here), so an
/// operator can tell which build a replica runs.
#[test]
fn version_names_the_git_commit_it_was_built_from() {
    let out = jitgate(&["--version"], &[]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    let git = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|out| out.status.success());
    let sha = match git {
        Some(out) => text(&out.stdout).trim().to_owned(),
        // A source tree without git (an unpacked archive): build.rs falls back to JITGATE_GIT_SHA or "unknown".
        None => jitgate::build_info::GIT_SHA.to_owned(),
    };
    assert_eq!(stdout.trim(), format!("jitgate {} (git {sha})", env!("CARGO_PKG_VERSION")));
}
