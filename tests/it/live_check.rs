//! `jitgate check --live` against the local DynamoDB/STS server and the PagerDuty emulator: a correct setup passes
//! every line, and a runbook naming a missing index or schedule fails with the reason.

use jitgate_testkit as support;

use std::path::Path;
use std::process::Command;

use jitgate::aws::demo_table::create_demo_orders_table;
use jitgate_emulators::pagerduty::FakePagerDuty;

/// A config folder with the shipped runbooks pointed at `table`, each runbook's text passed through `edit`.
fn setup(dir: &Path, table: &str, edit: impl Fn(&str, String) -> String) {
    std::fs::write(dir.join("jitgate.toml"), "[aws]\nregion = \"us-east-1\"\n").unwrap();
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

fn check_live(dir: &Path, pagerduty: &FakePagerDuty) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_jitgate"))
        .args(["--config", dir.join("jitgate.toml").to_str().unwrap(), "check", "--live"])
        .env("AWS_ENDPOINT_URL", support::aws_endpoint())
        .env("AWS_ACCESS_KEY_ID", "AKIAJITGATETESTS0001")
        .env("AWS_SECRET_ACCESS_KEY", "test-secret")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("PAGERDUTY_API_URL", pagerduty.base_url())
        .env("PAGERDUTY_API_TOKEN", pagerduty.api_key())
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

    let good = tempfile::tempdir().unwrap();
    setup(good.path(), &table, |_, text| text);
    let (code, output) = check_live(good.path(), &pagerduty);
    assert_eq!(code, Some(0), "{output}");
    assert_eq!(output.lines().filter(|l| l.starts_with("ok    table")).count(), 3, "{output}");
    assert!(output.contains("ok    assume role") && output.contains("ok    pagerduty schedule   PORDERS1"), "{output}");
    assert!(output.contains("live checks: 5 ok, 0 failing"), "{output}");

    let bad = tempfile::tempdir().unwrap();
    setup(bad.path(), &table, |name, text| match name {
        "orders-by-status.yaml" => text.replace("name: status-created-index", "name: status-index"),
        "order-by-id.yaml" => text.replace("[PORDERS1]", "[PNOPE01]"),
        _ => text,
    });
    let (code, output) = check_live(bad.path(), &pagerduty);
    assert_eq!(code, Some(1), "{output}");
    assert!(output.contains("FAIL  table") && output.contains("no index status-index"), "{output}");
    assert!(
        output.contains("FAIL  pagerduty schedule   PNOPE01") && output.contains("not found in PagerDuty"),
        "{output}"
    );
}
