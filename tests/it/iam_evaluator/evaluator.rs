//! Runs `tests/iam/evaluate.mjs` (the independent IAM evaluator, @cloud-copilot/iam-simulate under Node) on a batch
//! of cases and reads its decisions back. The evaluator is installed by `scripts/install-deps.sh test`; when it is
//! missing the test fails with that fix rather than skipping, so `make test` can never pass without it.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The account of every ARN in the cases (the shipped runbooks' role account).
pub const ACCOUNT: &str = "123456789012";
/// The principal the credentials act as: an assumed-role session of the query role, named as jitgate names it.
pub const PRINCIPAL: &str = "arn:aws:sts::123456789012:assumed-role/jitgate-orders-read/jit-JIT-7Q2M4X";

fn iam_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/iam")
}

/// Panics, naming the fix, when Node or the pinned evaluator is not installed.
pub fn require_installed() {
    let marker = iam_dir().join("node_modules/@cloud-copilot/iam-simulate/package.json");
    assert!(
        marker.is_file(),
        "the IAM evaluator is not installed ({} is missing) — run `scripts/install-deps.sh test` (it runs `npm ci` \
         in tests/iam from the committed package-lock.json)",
        marker.display()
    );
    let node = Command::new("node").arg("--version").output();
    assert!(
        node.as_ref().is_ok_and(|o| o.status.success()),
        "`node` cannot be run ({node:?}) — run `scripts/install-deps.sh test`, which installs Node.js and npm"
    );
}

/// One request to evaluate: the session policy jitgate would pass, and the call made with the credentials.
#[derive(Debug, Clone, Serialize)]
pub struct Case {
    pub id: String,
    pub session_policy: Value,
    pub action: String,
    pub resource: String,
    pub context: BTreeMap<String, Value>,
}

/// The evaluator's answer for one case.
#[derive(Debug, Clone, Deserialize)]
pub struct Decision {
    pub id: String,
    /// With the session policy in the evaluator's session-policy slot.
    pub session: Option<String>,
    /// With the session policy as a permission boundary.
    pub boundary: Option<String>,
    pub error: Option<String>,
    #[serde(default)]
    pub ignored_context_keys: Vec<String>,
}

/// An action of the service, as the evaluator's IAM data describes it.
#[derive(Debug, Clone, Deserialize)]
pub struct ActionInfo {
    pub action: String,
    pub wildcard_only: bool,
    pub resource_types: Vec<ResourceType>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ResourceType {
    pub name: String,
    /// ARN format with `${Partition}`-style placeholders.
    pub arn: String,
}

fn run(input: &Value) -> Value {
    let mut child = Command::new("node")
        .arg("evaluate.mjs")
        .current_dir(iam_dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node starts (run scripts/install-deps.sh test)");
    let body = serde_json::to_vec(input).expect("cases serialize");
    child.stdin.take().expect("stdin").write_all(&body).expect("cases written to the evaluator");
    let out = child.wait_with_output().expect("the evaluator ends");
    assert!(
        out.status.success(),
        "the IAM evaluator failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the evaluator prints JSON")
}

/// Every action of `service` in the evaluator's IAM data.
pub fn actions(service: &str) -> Vec<ActionInfo> {
    let out = run(&json!({ "list_actions": service }));
    serde_json::from_value(out["actions"].clone()).expect("an action list")
}

/// Evaluates every case under `identity_policy` (the role's permissions), keyed by case id.
pub fn evaluate(identity_policy: &Value, cases: &[Case]) -> BTreeMap<String, Decision> {
    let out = run(&json!({
        "principal": PRINCIPAL,
        "account": ACCOUNT,
        "identity_policy": identity_policy,
        "cases": cases,
    }));
    let decisions: Vec<Decision> = serde_json::from_value(out["decisions"].clone()).expect("decisions");
    assert_eq!(decisions.len(), cases.len(), "one decision per case");
    decisions.into_iter().map(|d| (d.id.clone(), d)).collect()
}
