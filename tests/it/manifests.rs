//! The deployment artefacts, judged by the ecosystem's own validators and by jitgate itself:
//!
//! - `Dockerfile`: hadolint; the runtime stage's user, health check and entry point; the files it copies laid out
//!   as in the image pass `jitgate check`; `.dockerignore` lets every copied file through.
//! - `docker-compose.yml`: the services, health checks, persistence, non-root settings and wiring; the config and
//!   runbooks laid out as its bind mounts place them pass `jitgate check`; `.env.example` names only real variables.
//! - `manifests/k8s/`: kubernetes-validate (the Kubernetes JSON schemas, strict) on every manifest and on what
//!   `kubectl kustomize` renders from them; the Deployment's security settings and probes; the kustomization lists
//!   every manifest; the generated ConfigMap's runbooks are the shipped ones, its name follows its content (so a
//!   change rolls the pods), and its config and runbooks mounted as the Deployment mounts them pass `jitgate check`;
//!   the namespace's Pod Security labels; the NetworkPolicy's ports against the Deployment's; the ServiceMonitor
//!   against the Service.
//! - `manifests/iam/jitgate.yaml`: cfn-lint; parliament on every policy document in it; the audit table it defines is
//!   one jitgate's audit log accepts and writes (in the local DynamoDB), and the bot's policy covers exactly the
//!   keys written; the query role's trust policy admits jitgate's real session name and tags.
//! - `manifests/slack-app.yaml`: Slack's published app manifest JSON schema (vendored in tests/schemas/);
//!   tests/it/slack_web.rs checks socket mode, interactivity, `/jit` and the scopes against `REQUIRED_BOT_SCOPES`;
//!   here only what that test does not cover.
//!
//! Each validator is first shown a real mistake and must reject it, so a validator that judges nothing fails the
//! test. The validators come from the tools venv (`scripts/install-deps.sh`), on PATH through
//! `scripts/with-services.sh`.

use jitgate_testkit as support;

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType,
};
use jitgate::audit::{AuditEvent, AuditLog};
use jitgate::aws::AssumeRoleRequest;
use jitgate::aws::sts::{TAG_APPROVERS, TAG_REQUEST_ID, TAG_RUNBOOK};
use jitgate::clock::ManualClock;
use jitgate::ids::{RequestId, RunbookId, SlackUserId};
use jitgate::runbook::Operation;
use serde_json::Value;

/// The UID and GID the image runs as; the compose file and the Deployment must use the same.
const UID: u64 = 10001;

// ---------------------------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------------------------

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo(rel)).unwrap_or_else(|e| panic!("cannot read {rel}: {e}"))
}

/// A YAML file as JSON values (every file here has string keys).
fn yaml(rel: &str) -> Value {
    serde_saphyr::from_str(&read(rel)).unwrap_or_else(|e| panic!("{rel} is not valid YAML: {e}"))
}

/// The value at a path of object keys, or a panic naming the path and the file.
fn at<'a>(value: &'a Value, path: &[&str], what: &str) -> &'a Value {
    path.iter().try_fold(value, |node, key| node.get(*key)).unwrap_or_else(|| panic!("{what}: no {}", path.join(".")))
}

fn strings(value: &Value) -> Vec<String> {
    match value {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items.iter().map(|v| v.as_str().expect("a string").to_owned()).collect(),
        other => panic!("expected a string or a list of strings, got {other}"),
    }
}

/// Runs a validator from the tools venv.
fn validator<S: AsRef<OsStr>>(program: &str, args: &[S]) -> Output {
    Command::new(program).args(args).output().unwrap_or_else(|e| {
        panic!(
            "cannot run `{program}` ({e}): install it with scripts/install-deps.sh and run the tests through \
             scripts/with-services.sh (or `make test`)"
        )
    })
}

fn output_text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// The shipped runbooks: file name → contents.
fn shipped_runbooks() -> BTreeMap<String, String> {
    let mut runbooks = BTreeMap::new();
    for entry in std::fs::read_dir(repo("runbooks")).expect("runbooks/") {
        let path = entry.expect("a directory entry").path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            runbooks.insert(name, std::fs::read_to_string(&path).expect("a runbook"));
        }
    }
    assert!(!runbooks.is_empty(), "no runbooks in runbooks/");
    runbooks
}

/// Copies a file or a folder from the repo to `path` (absolute, as inside a container) under `root`.
fn place(root: &Path, container_path: &str, source: &Path) {
    let target = root.join(container_path.trim_start_matches('/'));
    if source.is_dir() {
        std::fs::create_dir_all(&target).expect("create a folder");
        for entry in std::fs::read_dir(source).expect("read a folder") {
            let entry = entry.expect("a directory entry");
            let inner = format!("{}/{}", container_path.trim_end_matches('/'), entry.file_name().to_string_lossy());
            place(root, &inner, &entry.path());
        }
    } else {
        std::fs::create_dir_all(target.parent().expect("a parent")).expect("create a folder");
        std::fs::copy(source, &target)
            .unwrap_or_else(|e| panic!("copy {} to {}: {e}", source.display(), target.display()));
    }
}

/// `jitgate --config CONFIG check` must pass and find every shipped runbook.
fn assert_jitgate_check_passes(config: &Path, what: &str) {
    let out = Command::new(env!("CARGO_BIN_EXE_jitgate"))
        .arg("--config")
        .arg(config)
        .arg("check")
        .env_remove("JITGATE_CONFIG")
        .env_remove("AWS_REGION")
        .env_remove("AWS_DEFAULT_REGION")
        .output()
        .expect("run jitgate");
    let text = output_text(&out);
    assert!(out.status.success(), "`jitgate check` rejects {what}:\n{text}");
    let expected = format!("{} runbook(s) valid", shipped_runbooks().len());
    assert!(text.contains(&expected), "{what}: expected {expected:?} in\n{text}");
}

/// `*` matches any run of characters, as in IAM's StringLike.
fn glob_matches(pattern: &str, text: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == text,
        Some((head, rest)) => {
            text.starts_with(head) && (0..=text.len() - head.len()).any(|i| glob_matches(rest, &text[head.len() + i..]))
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Dockerfile
// ---------------------------------------------------------------------------------------------------------------

/// One instruction: its keyword (upper case) and the rest of the line, continuation lines joined.
#[derive(Debug, Clone)]
struct Instruction {
    keyword: String,
    args: String,
}

/// The Dockerfile's stages, each starting with its FROM.
fn dockerfile_stages() -> Vec<Vec<Instruction>> {
    let mut logical = Vec::new();
    let mut pending = String::new();
    for line in read("Dockerfile").lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && pending.is_empty()) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(part) => pending.push_str(&format!("{part} ")),
            None => {
                pending.push_str(trimmed);
                logical.push(std::mem::take(&mut pending));
            }
        }
    }
    let mut stages: Vec<Vec<Instruction>> = Vec::new();
    for line in logical {
        let (keyword, args) = line.split_once(char::is_whitespace).unwrap_or((&line, ""));
        let instruction = Instruction { keyword: keyword.to_uppercase(), args: args.trim().to_owned() };
        if instruction.keyword == "FROM" {
            stages.push(Vec::new());
        }
        stages.last_mut().expect("the Dockerfile starts with FROM").push(instruction);
    }
    stages
}

fn only<'a>(stage: &'a [Instruction], keyword: &str) -> &'a str {
    let found: Vec<&Instruction> = stage.iter().filter(|i| i.keyword == keyword).collect();
    assert_eq!(found.len(), 1, "the stage needs exactly one {keyword}: {stage:?}");
    &found[0].args
}

fn json_array(text: &str) -> Vec<String> {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("`{text}` is not the exec form [\"…\"]: {e}"))
}

/// The runtime stage's `COPY` instructions from the build context: (sources, destination).
fn context_copies(stage: &[Instruction]) -> Vec<(Vec<String>, String)> {
    let mut copies = Vec::new();
    for copy in stage.iter().filter(|i| i.keyword == "COPY" || i.keyword == "ADD") {
        let words: Vec<&str> = copy.args.split_whitespace().collect();
        if words.iter().any(|w| w.starts_with("--from")) {
            continue;
        }
        let mut paths: Vec<String> = words.iter().filter(|w| !w.starts_with("--")).map(|w| w.to_string()).collect();
        let destination = paths.pop().expect("COPY has a destination");
        copies.push((paths, destination));
    }
    copies
}

fn version_tuple(text: &str) -> Vec<u64> {
    text.split('.').map(|part| part.parse().unwrap_or_else(|_| panic!("`{text}` is not a version"))).collect()
}

#[test]
fn hadolint_finds_nothing_in_the_dockerfile() {
    // First prove the linter is live and judging: an unpinned base image and unpinned, uncleaned apt must fail.
    let dir = tempfile::tempdir().expect("temp dir");
    let bad = dir.path().join("Dockerfile");
    std::fs::write(&bad, "FROM ubuntu:latest\nRUN apt-get update && apt-get install -y curl\n").unwrap();
    let out = validator("hadolint", &[OsStr::new("--no-color"), bad.as_os_str()]);
    let text = output_text(&out);
    assert!(!out.status.success() && text.contains("DL3007"), "hadolint accepted FROM ubuntu:latest:\n{text}");

    let out = validator("hadolint", &[OsStr::new("--no-color"), repo("Dockerfile").as_os_str()]);
    let text = output_text(&out);
    assert!(out.status.success() && text.trim().is_empty(), "hadolint reports findings for the Dockerfile:\n{text}");
}

#[test]
fn the_image_builds_locked_and_runs_as_a_fixed_non_root_user_with_a_health_check() {
    let stages = dockerfile_stages();
    assert_eq!(stages.len(), 2, "a builder stage and a runtime stage");
    let (builder, runtime) = (&stages[0], &stages[1]);

    // The builder: the official Rust image, at least the crate's rust-version, building exactly Cargo.lock.
    let from = only(builder, "FROM");
    let tag =
        from.strip_prefix("rust:").unwrap_or_else(|| panic!("the builder is not the official Rust image: {from}"));
    let rust = tag.split(['-', ' ']).next().unwrap();
    let manifest: toml::Value = toml::from_str(&read("Cargo.toml")).expect("Cargo.toml");
    let msrv = manifest["package"]["rust-version"].as_str().expect("rust-version");
    assert!(version_tuple(rust) >= version_tuple(msrv), "builder Rust {rust} is older than rust-version {msrv}");
    assert!(
        builder.iter().any(|i| i.keyword == "RUN" && i.args.contains("cargo build --release --locked -p jitgate")),
        "the builder must run `cargo build --release --locked -p jitgate`"
    );

    // The runtime: Debian slim, a fixed numeric non-root user, the probe jitgate ships.
    let from = only(runtime, "FROM");
    assert!(from.starts_with("debian:") && from.contains("-slim"), "runtime base {from}");
    assert_eq!(only(runtime, "USER"), format!("{UID}:{UID}"), "a numeric user, so runAsNonRoot can verify it");
    assert_eq!(json_array(only(runtime, "ENTRYPOINT")), ["jitgate"]);
    assert_eq!(json_array(only(runtime, "CMD")), ["run"]);
    let healthcheck = only(runtime, "HEALTHCHECK");
    let (_, probe) = healthcheck.split_once("CMD ").expect("HEALTHCHECK … CMD [\"…\"]");
    assert_eq!(json_array(probe), ["jitgate", "healthcheck"]);
    let exposed: Vec<u16> =
        only(runtime, "EXPOSE").split_whitespace().map(|p| p.parse().expect("a port number")).collect();

    // The config it bakes in listens on those ports, on every address: the audit pages, then probes and metrics.
    let config_path = only(runtime, "ENV").strip_prefix("JITGATE_CONFIG=").expect("ENV JITGATE_CONFIG=…").to_owned();
    let copies = context_copies(runtime);
    let (sources, _) = copies.iter().find(|(_, dest)| *dest == config_path).expect("a COPY of the config");
    let config: toml::Value = toml::from_str(&read(&sources[0])).expect("the baked config is TOML");
    let listens: Vec<std::net::SocketAddr> =
        ["listen", "operations_listen"].map(|key| config["http"][key].as_str().unwrap().parse().unwrap()).to_vec();
    assert!(listens.iter().all(|l| l.ip().is_unspecified()), "{listens:?} on every address");
    assert_eq!(listens.iter().map(|l| l.port()).collect::<Vec<_>>(), exposed, "http listeners vs EXPOSE");
}

#[test]
fn the_config_and_runbooks_as_the_image_lays_them_out_pass_jitgate_check() {
    let stages = dockerfile_stages();
    let runtime = stages.last().expect("a runtime stage");
    let root = tempfile::tempdir().expect("temp dir");
    let copies = context_copies(runtime);
    assert!(copies.len() >= 2, "the image copies a config and the runbooks: {copies:?}");
    for (sources, destination) in &copies {
        for source in sources {
            place(root.path(), destination, &repo(source));
        }
    }
    let config = only(runtime, "ENV").strip_prefix("JITGATE_CONFIG=").expect("ENV JITGATE_CONFIG=…").to_owned();
    assert_jitgate_check_passes(&root.path().join(config.trim_start_matches('/')), "the image's config");
}

#[test]
fn dockerignore_lets_through_exactly_what_the_build_copies() {
    let patterns: Vec<String> = read(".dockerignore")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect();
    assert_eq!(patterns.first().map(String::as_str), Some("*"), "exclude everything first, then list what goes in");
    let allowed: Vec<String> =
        patterns.iter().filter_map(|p| p.strip_prefix('!')).map(|p| p.trim_end_matches('/').to_owned()).collect();
    let included = |path: &str| {
        let path = path.trim_end_matches('/');
        allowed.iter().any(|a| path == a || path.starts_with(&format!("{a}/")) || a.starts_with(&format!("{path}/")))
    };
    for stage in dockerfile_stages() {
        for (sources, _) in context_copies(&stage) {
            for source in sources.iter().filter(|s| *s != "." && *s != "./") {
                assert!(included(source), "COPY {source} is excluded by .dockerignore: the build would fail");
            }
        }
    }
    for secret in [".env", "target"] {
        assert!(!included(secret), ".dockerignore lets {secret} into the build context");
    }
}

// ---------------------------------------------------------------------------------------------------------------
// docker-compose.yml
// ---------------------------------------------------------------------------------------------------------------

fn compose_service<'a>(compose: &'a Value, name: &str) -> &'a Value {
    at(compose, &["services", name], "docker-compose.yml")
}

/// The host of a URL like `redis://redis:6379` or `http://moto:5000`.
fn url_host_port(url: &str) -> (String, u16) {
    let parsed = url::Url::parse(url).unwrap_or_else(|e| panic!("`{url}` is not a URL: {e}"));
    (parsed.host_str().expect("a host").to_owned(), parsed.port_or_known_default().expect("a port"))
}

#[test]
fn docker_compose_wires_redis_the_local_aws_server_the_seed_job_and_jitgate() {
    let compose = yaml("docker-compose.yml");
    let services = at(&compose, &["services"], "docker-compose.yml").as_object().expect("services");
    let names: BTreeSet<&str> = services.keys().map(String::as_str).collect();
    assert_eq!(names, BTreeSet::from(["redis", "moto", "seed-demo", "jitgate"]));

    // Redis keeps its data: the append-only file in a declared named volume.
    let redis = compose_service(&compose, "redis");
    let command = strings(at(redis, &["command"], "redis")).join(" ");
    assert!(command.contains("--appendonly yes"), "redis persistence is off: {command}");
    let volumes = strings(at(redis, &["volumes"], "redis"));
    let named = volumes.iter().find_map(|v| v.strip_suffix(":/data")).expect("a volume at /data");
    assert!(compose["volumes"].get(named).is_some(), "volume {named} is not declared at the top level");

    // The local AWS server is the moto version the test suite runs against.
    let moto = compose_service(&compose, "moto");
    let install = read("scripts/install-deps.sh");
    let moto_version = install
        .lines()
        .find_map(|l| l.strip_prefix("MOTO_VERSION="))
        .map(|v| v.trim_matches('"'))
        .expect("MOTO_VERSION in scripts/install-deps.sh");
    assert_eq!(moto["image"].as_str(), Some(format!("motoserver/moto:{moto_version}").as_str()));

    // Every long-running service reports health; compose waits on it.
    for name in ["redis", "moto", "jitgate"] {
        let test = strings(at(compose_service(&compose, name), &["healthcheck", "test"], name));
        assert_eq!(test.first().map(String::as_str), Some("CMD"), "{name}: exec-form health check {test:?}");
    }
    let jitgate = compose_service(&compose, "jitgate");
    assert_eq!(strings(&jitgate["healthcheck"]["test"]), ["CMD", "jitgate", "healthcheck"]);

    // The seed job and jitgate: the image built from this repo, configured from .env, locked down like the image.
    for name in ["seed-demo", "jitgate"] {
        let service = compose_service(&compose, name);
        assert_eq!(service["build"].as_str(), Some("."), "{name} is built from the repo's Dockerfile");
        assert_eq!(service["image"], jitgate["image"], "{name} and jitgate run the same image");
        assert_eq!(strings(&service["env_file"]), [".env"], "{name}: env_file");
        assert_eq!(service["user"].as_str(), Some(format!("{UID}:{UID}").as_str()), "{name}: the image's non-root UID");
        assert_eq!(service["read_only"].as_bool(), Some(true), "{name}: read-only root filesystem");
        assert_eq!(strings(&service["cap_drop"]), ["ALL"], "{name}: drop every capability");
        assert!(
            strings(&service["security_opt"]).iter().any(|o| o.starts_with("no-new-privileges")),
            "{name}: no-new-privileges"
        );
        let env = at(service, &["environment"], name);
        let (host, _) = url_host_port(env["AWS_ENDPOINT_URL"].as_str().expect("AWS_ENDPOINT_URL"));
        assert_eq!(host, "moto", "{name}: AWS_ENDPOINT_URL must point at the moto service");
    }
    assert_eq!(strings(&compose_service(&compose, "seed-demo")["command"]), ["seed-demo"]);
    assert_eq!(compose_service(&compose, "seed-demo")["depends_on"]["moto"]["condition"], "service_healthy");

    let (host, port) = url_host_port(jitgate["environment"]["REDIS_URL"].as_str().expect("REDIS_URL"));
    assert_eq!((host.as_str(), port), ("redis", 6379), "jitgate's REDIS_URL must point at the redis service");
    let depends = at(jitgate, &["depends_on"], "jitgate");
    assert_eq!(depends["redis"]["condition"], "service_healthy");
    assert_eq!(depends["seed-demo"]["condition"], "service_completed_successfully");
    // Published on loopback only: the audit pages are not for the whole network.
    for port in strings(&jitgate["ports"]) {
        assert!(port.starts_with("127.0.0.1:"), "jitgate publishes {port} beyond localhost");
    }
}

#[test]
fn the_compose_config_and_runbooks_as_mounted_pass_jitgate_check() {
    let compose = yaml("docker-compose.yml");
    for name in ["jitgate", "seed-demo"] {
        let service = compose_service(&compose, name);
        let root = tempfile::tempdir().expect("temp dir");
        for volume in strings(at(service, &["volumes"], name)) {
            let parts: Vec<&str> = volume.split(':').collect();
            assert!(parts[0].starts_with("./"), "{name}: {volume} is not a bind mount from the repo");
            assert_eq!(parts.get(2), Some(&"ro"), "{name}: mount {volume} read-only");
            place(root.path(), parts[1], &repo(parts[0].trim_start_matches("./")));
        }
        let config = service["environment"]["JITGATE_CONFIG"].as_str().expect("JITGATE_CONFIG");
        assert_jitgate_check_passes(&root.path().join(config.trim_start_matches('/')), &format!("compose {name}"));
    }
}

#[test]
fn env_example_names_only_variables_jitgate_reads() {
    // The environment table of docs/design.md; AWS_* is the SDK's own chain.
    let known = [
        "SLACK_APP_TOKEN",
        "SLACK_BOT_TOKEN",
        "SLACK_API_URL",
        "PAGERDUTY_API_TOKEN",
        "PAGERDUTY_API_URL",
        "REDIS_URL",
        "REDIS_CA_FILE",
        "JITGATE_CONFIG",
        "JITGATE_LINK_SECRET",
        "JITGATE_LOG_FORMAT",
    ];
    // And every secret as a file (NAME_FILE).
    let secret_file = |name: &str| {
        name.strip_suffix(jitgate::config::FILE_SUFFIX).is_some_and(|n| jitgate::config::SECRET_VARIABLES.contains(&n))
    };
    let text = read(".env.example");
    let mut named = BTreeSet::new();
    for line in text.lines().map(|l| l.trim().trim_start_matches("# ")) {
        let Some((name, _)) = line.split_once('=') else { continue };
        if name.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_') && !name.is_empty() {
            // JITGATE_DEV_* are make dev's own settings (scripts/local-stack.sh), not jitgate's.
            // OTEL_* are OpenTelemetry's standard variables (src/telemetry/traces.rs and the SDK read them).
            let ours = known.contains(&name)
                || secret_file(name)
                || name.starts_with("AWS_")
                || name.starts_with("JITGATE_DEV_")
                || name.starts_with("OTEL_");
            assert!(ours || name == "RUST_LOG", ".env.example names unknown {name}");
            named.insert(name.to_owned());
        }
    }
    for required in ["SLACK_APP_TOKEN", "SLACK_BOT_TOKEN", "JITGATE_LINK_SECRET", "PAGERDUTY_API_TOKEN"] {
        assert!(named.contains(required), ".env.example lacks {required}");
    }
    // An empty link secret makes jitgate refuse to start; a placeholder long enough would be accepted as a key.
    assert!(text.lines().any(|l| l == "JITGATE_LINK_SECRET="), "leave JITGATE_LINK_SECRET empty in the example");
}

// ---------------------------------------------------------------------------------------------------------------
// Kubernetes
// ---------------------------------------------------------------------------------------------------------------

const K8S: &str = "manifests/k8s";

fn k8s_files() -> BTreeSet<String> {
    std::fs::read_dir(repo(K8S))
        .expect("manifests/k8s")
        .map(|e| e.expect("a directory entry").file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".yaml"))
        .collect()
}

fn kubernetes_validate(path: &Path) -> Output {
    validator("kubernetes-validate", &[OsStr::new("--strict"), path.as_os_str()])
}

/// Not applied by the kustomization: the Secret example holds placeholders only (applying it would overwrite the real
/// Secret), and the ServiceMonitor needs the Prometheus Operator's CRDs.
const APPLIED_ON_THEIR_OWN: [&str; 2] = ["secret.example.yaml", "servicemonitor.yaml"];

/// The config file of the generated ConfigMap (kustomize reads it from here).
const K8S_CONFIG: &str = "manifests/k8s/config/jitgate.toml";

/// `kubectl kustomize DIR`, as `kubectl apply -k DIR` would render it: its text, and its objects.
fn kustomize(dir: &Path) -> (String, Vec<Value>) {
    let out = validator("kubectl", &[OsStr::new("kustomize"), dir.as_os_str()]);
    let text = output_text(&out);
    assert!(out.status.success(), "kubectl kustomize {}:\n{text}", dir.display());
    let rendered = String::from_utf8(out.stdout).expect("UTF-8");
    let objects = rendered
        .split("\n---\n")
        .map(|doc| serde_saphyr::from_str::<Value>(doc).unwrap_or_else(|e| panic!("rendered YAML: {e}\n{doc}")))
        .collect();
    (rendered, objects)
}

/// The one rendered object of `kind`.
fn object<'a>(objects: &'a [Value], kind: &str) -> &'a Value {
    let found: Vec<&Value> = objects.iter().filter(|o| o["kind"] == kind).collect();
    assert_eq!(found.len(), 1, "one {kind} in the rendered kustomization");
    found[0]
}

/// Copies `manifests/k8s` (with its config folder) into a fresh folder, for renders of an edited copy.
fn copy_of_k8s() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    place(dir.path(), "/k8s", &repo(K8S));
    dir
}

#[test]
fn kubernetes_validate_accepts_every_manifest() {
    // First prove the validator judges: a misspelt field in the real Deployment must fail strict validation.
    let dir = tempfile::tempdir().expect("temp dir");
    let broken = dir.path().join("deployment.yaml");
    let deployment = read(&format!("{K8S}/deployment.yaml"));
    assert!(deployment.contains("readOnlyRootFilesystem"));
    std::fs::write(&broken, deployment.replace("readOnlyRootFilesystem", "readOnlyRootFilesytem")).unwrap();
    let out = kubernetes_validate(&broken);
    assert!(!out.status.success(), "kubernetes-validate accepted a misspelt field:\n{}", output_text(&out));

    let files = k8s_files();
    assert!(files.len() >= 8, "{files:?}");
    // The kustomization is kustomize's own file, not a Kubernetes object: it is checked rendered, below. The
    // ServiceMonitor is a custom resource kubernetes-validate has no schema for (it only warns): its fields are
    // checked in the_service_monitor_scrapes_the_ops_port_of_the_service instead.
    for file in files.iter().filter(|f| *f != "kustomization.yaml" && *f != "servicemonitor.yaml") {
        let out = kubernetes_validate(&repo(&format!("{K8S}/{file}")));
        let text = output_text(&out);
        // It exits 0 with a warning for a kind it has no schema for: only "passed" counts.
        assert!(
            out.status.success() && text.contains("passed") && !text.contains("WARN") && !text.contains("ERROR"),
            "kubernetes-validate on {K8S}/{file}:\n{text}"
        );
    }

    // And what `kubectl apply -k` applies: every object the kustomization renders, the generated ConfigMap included.
    let (rendered, objects) = kustomize(&repo(K8S));
    let path = dir.path().join("rendered.yaml");
    std::fs::write(&path, &rendered).unwrap();
    let out = kubernetes_validate(&path);
    let text = output_text(&out);
    assert!(out.status.success() && !text.contains("WARN") && !text.contains("ERROR"), "rendered:\n{text}");
    assert_eq!(text.matches("passed").count(), objects.len(), "every rendered object validated:\n{text}");
}

#[test]
fn the_kustomization_lists_every_manifest_but_those_applied_on_their_own() {
    let kustomization = yaml(&format!("{K8S}/kustomization.yaml"));
    assert_eq!(kustomization["kind"], "Kustomization");
    let listed: BTreeSet<String> = strings(at(&kustomization, &["resources"], "kustomization")).into_iter().collect();
    let mut expected = k8s_files();
    expected.remove("kustomization.yaml");
    for file in APPLIED_ON_THEIR_OWN {
        assert!(expected.remove(file), "{K8S}/{file} exists");
    }
    assert_eq!(listed, expected);
    let deployment = yaml(&format!("{K8S}/deployment.yaml"));
    let image = deployment["spec"]["template"]["spec"]["containers"][0]["image"].as_str().expect("an image");
    let name = image.split(':').next().unwrap();
    let images = kustomization["images"].as_array().expect("images");
    assert!(images.iter().any(|i| i["name"] == name), "kustomization images: does not set {name}");
}

/// The root file system is read-only, but a large result waits in a file in /tmp until it is uploaded (and `run`
/// refuses to start without a writable one): the Deployment mounts a disk-backed emptyDir there — a tmpfs would
/// count against the memory limit the spilling keeps results out of — and compose a tmpfs.
#[test]
fn jitgate_has_a_writable_tmp_on_disk_beside_its_read_only_root() {
    let deployment = yaml(&format!("{K8S}/deployment.yaml"));
    let pod = &deployment["spec"]["template"]["spec"];
    let mounts = pod["containers"][0]["volumeMounts"].as_array().expect("volumeMounts");
    let mount = mounts.iter().find(|m| m["mountPath"] == "/tmp").expect("a volume at /tmp");
    assert_ne!(mount["readOnly"], true);
    let volumes = pod["volumes"].as_array().expect("volumes");
    let volume = volumes.iter().find(|v| v["name"] == mount["name"]).expect("the /tmp volume");
    let empty_dir = volume.get("emptyDir").expect("an emptyDir");
    assert_ne!(empty_dir["medium"], "Memory", "on the node's disk");
    assert!(empty_dir["sizeLimit"].is_string(), "bounded");

    let compose = yaml("docker-compose.yml");
    let jitgate = compose_service(&compose, "jitgate");
    assert_eq!(jitgate["read_only"], true);
    assert!(strings(&jitgate["tmpfs"]).iter().any(|t| t.starts_with("/tmp:mode=1777")), "{:?}", jitgate["tmpfs"]);
}

#[test]
fn the_deployment_runs_locked_down_with_probes_limits_and_the_secret() {
    let deployment = yaml(&format!("{K8S}/deployment.yaml"));
    let spec = &deployment["spec"];
    assert_eq!(spec["replicas"], 2);
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["terminationGracePeriodSeconds"], 60, "longer than jitgate's shutdown drain");
    assert_eq!(pod["automountServiceAccountToken"], false);
    let pod_security = &pod["securityContext"];
    assert_eq!(pod_security["runAsNonRoot"], true);
    assert_eq!(pod_security["runAsUser"], UID);
    assert_eq!(pod_security["seccompProfile"]["type"], "RuntimeDefault");

    let containers = pod["containers"].as_array().expect("containers");
    assert_eq!(containers.len(), 1);
    let container = &containers[0];
    let security = &container["securityContext"];
    assert_eq!(security["runAsNonRoot"], true);
    assert_eq!(security["runAsUser"], UID, "the Dockerfile's UID");
    assert_eq!(security["readOnlyRootFilesystem"], true);
    assert_eq!(security["allowPrivilegeEscalation"], false);
    assert_eq!(strings(&security["capabilities"]["drop"]), ["ALL"]);
    assert_eq!(security["seccompProfile"]["type"], "RuntimeDefault");
    for kind in ["requests", "limits"] {
        for resource in ["cpu", "memory"] {
            assert!(container["resources"][kind][resource].is_string(), "resources.{kind}.{resource}");
        }
    }

    // The audit pages on `http`, probes on `ops`: each port is the one the ConfigMap's config listens on.
    let port = |name: &str| {
        container["ports"].as_array().expect("ports").iter().find(|p| p["name"] == name).expect("port").clone()
    };
    let config: toml::Value = toml::from_str(&read(K8S_CONFIG)).unwrap();
    for (key, name) in [("listen", "http"), ("operations_listen", "ops")] {
        let listen: std::net::SocketAddr = config["http"][key].as_str().unwrap().parse().unwrap();
        assert!(listen.ip().is_unspecified(), "the kubelet probes the pod's address: {key} on every address");
        assert_eq!(port(name)["containerPort"], listen.port(), "{key}");
    }
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(container["livenessProbe"]["httpGet"]["port"], "ops");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(container["readinessProbe"]["httpGet"]["port"], "ops");

    // Secrets only from the Secret, mounted as files (NAME_FILE pointing at the file of key NAME), and exactly the
    // keys the example Secret shows.
    let secret = yaml(&format!("{K8S}/secret.example.yaml"));
    let example_keys: BTreeSet<String> =
        secret["stringData"].as_object().expect("stringData").keys().cloned().collect();
    let volume = pod["volumes"].as_array().expect("volumes").iter().find(|v| v.get("secret").is_some());
    let volume = volume.expect("a volume from the Secret");
    assert_eq!(volume["secret"]["secretName"], secret["metadata"]["name"]);
    let mounts = container["volumeMounts"].as_array().expect("volumeMounts");
    let mount = mounts.iter().find(|m| m["name"] == volume["name"]).expect("the Secret volume is mounted");
    assert_eq!(mount["readOnly"], true);
    let dir = mount["mountPath"].as_str().unwrap();
    let mut from_secret = BTreeSet::new();
    for env in container["env"].as_array().expect("env") {
        let name = env["name"].as_str().unwrap();
        assert!(env.get("valueFrom").is_none(), "{name}: secrets come as files, not environment values");
        if let Some(key) = name.strip_suffix("_FILE") {
            assert!(jitgate::config::SECRET_VARIABLES.contains(&key), "jitgate reads no {name}");
            assert_eq!(env["value"].as_str(), Some(format!("{dir}/{key}").as_str()), "{name}");
            from_secret.insert(key.to_owned());
        } else {
            assert!(name == "JITGATE_CONFIG", "only JITGATE_CONFIG is set in the clear, not {name}");
        }
    }
    assert_eq!(from_secret, example_keys);
    for (key, value) in secret["stringData"].as_object().unwrap() {
        assert!(value.as_str().unwrap().contains("REPLACE-ME"), "secret.example.yaml {key} is not a placeholder");
    }

    // The Service and the PodDisruptionBudget select these pods.
    let labels = &spec["template"]["metadata"]["labels"];
    assert_eq!(&spec["selector"]["matchLabels"], labels);
    let service = yaml(&format!("{K8S}/service.yaml"));
    assert_eq!(&service["spec"]["selector"], labels);
    assert_eq!(service["spec"]["ports"][0]["targetPort"], "http");
    let pdb = yaml(&format!("{K8S}/pdb.yaml"));
    assert_eq!(pdb["spec"]["minAvailable"], 1);
    assert_eq!(&pdb["spec"]["selector"]["matchLabels"], labels);
    assert_eq!(pod["serviceAccountName"], yaml(&format!("{K8S}/serviceaccount.yaml"))["metadata"]["name"]);
}

#[test]
fn the_generated_configmap_holds_the_shipped_runbooks_and_as_mounted_passes_jitgate_check() {
    let (_, objects) = kustomize(&repo(K8S));
    let configmap = object(&objects, "ConfigMap");
    let data = configmap["data"].as_object().expect("data");
    let shipped = shipped_runbooks();
    for (name, text) in &shipped {
        let copy = data.get(name).and_then(Value::as_str);
        assert!(
            copy == Some(text.as_str()),
            "{K8S}/config/runbooks/{name} differs from runbooks/{name} (or is not in the configMapGenerator): copy \
             the file there and list it in kustomization.yaml"
        );
    }
    let in_map: BTreeSet<&str> = data.keys().map(String::as_str).filter(|k| k.ends_with(".yaml")).collect();
    assert_eq!(in_map, shipped.keys().map(String::as_str).collect(), "the ConfigMap's runbooks are the shipped ones");
    assert_eq!(data["jitgate.toml"], read(K8S_CONFIG).as_str());

    // Lay the ConfigMap out as the Deployment mounts it, and check it with jitgate.
    let deployment = object(&objects, "Deployment");
    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    let mount = container["volumeMounts"].as_array().unwrap().iter().find(|m| m["name"] == "config").expect("mount");
    let mount_path = mount["mountPath"].as_str().unwrap();
    let volume = pod["volumes"].as_array().unwrap().iter().find(|v| v["name"] == "config").expect("volume config");
    assert_eq!(volume["configMap"]["name"], configmap["metadata"]["name"]);
    let items = volume["configMap"]["items"].as_array().expect("items");
    let mapped: BTreeSet<&str> = items.iter().map(|i| i["key"].as_str().unwrap()).collect();
    assert_eq!(mapped, data.keys().map(String::as_str).collect(), "every ConfigMap entry needs an item in the volume");
    let root = tempfile::tempdir().expect("temp dir");
    for item in items {
        let key = item["key"].as_str().unwrap();
        let target = root.path().join(mount_path.trim_start_matches('/')).join(item["path"].as_str().unwrap());
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::write(&target, data[key].as_str().unwrap()).unwrap();
    }
    let env = container["env"].as_array().unwrap();
    let config = env.iter().find(|e| e["name"] == "JITGATE_CONFIG").expect("JITGATE_CONFIG")["value"].as_str().unwrap();
    assert!(config.starts_with(mount_path), "JITGATE_CONFIG {config} is outside the mount {mount_path}");
    assert_jitgate_check_passes(&root.path().join(config.trim_start_matches('/')), "the ConfigMap");
}

#[test]
fn changing_a_runbook_or_the_config_renames_the_configmap_so_the_deployment_rolls() {
    let name_of = |dir: &Path| {
        let (_, objects) = kustomize(dir);
        let name = object(&objects, "ConfigMap")["metadata"]["name"].as_str().expect("a name").to_owned();
        let deployment = object(&objects, "Deployment");
        let volumes = deployment["spec"]["template"]["spec"]["volumes"].as_array().expect("volumes");
        let config = volumes.iter().find(|v| v["name"] == "config").expect("volume config");
        assert_eq!(config["configMap"]["name"], name.as_str(), "the Deployment mounts the generated ConfigMap");
        name
    };
    let original = name_of(&repo(K8S));
    let suffix = original.strip_prefix("jitgate-").unwrap_or_else(|| panic!("{original}: not jitgate-<hash>"));
    assert!(!suffix.is_empty() && suffix.chars().all(|c| c.is_ascii_alphanumeric()), "{original}");

    let unchanged = copy_of_k8s();
    assert_eq!(name_of(&unchanged.path().join("k8s")), original, "the same files give the same name");

    for file in ["config/runbooks/order-by-id.yaml", "config/jitgate.toml"] {
        let edited = copy_of_k8s();
        let path = edited.path().join("k8s").join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, format!("{text}# edited\n")).unwrap();
        let renamed = name_of(&edited.path().join("k8s"));
        assert_ne!(renamed, original, "editing {file} must change the ConfigMap's name, which rolls the pods");
    }
}

#[test]
fn everything_lands_in_a_namespace_that_enforces_the_restricted_pod_security_standard() {
    let (_, objects) = kustomize(&repo(K8S));
    let namespace = object(&objects, "Namespace");
    let name = namespace["metadata"]["name"].as_str().expect("a name");
    let labels = &namespace["metadata"]["labels"];
    for mode in ["enforce", "audit", "warn"] {
        assert_eq!(labels[format!("pod-security.kubernetes.io/{mode}")], "restricted", "{mode}");
        assert_eq!(labels[format!("pod-security.kubernetes.io/{mode}-version")], "latest", "{mode}-version");
    }
    for o in objects.iter().filter(|o| o["kind"] != "Namespace") {
        assert_eq!(o["metadata"]["namespace"], name, "{} {} is in the namespace", o["kind"], o["metadata"]["name"]);
    }
    // The ServiceMonitor, applied on its own, names it itself.
    assert_eq!(yaml(&format!("{K8S}/servicemonitor.yaml"))["metadata"]["namespace"], name);
}

/// (port, protocol) pairs of a NetworkPolicy rule.
fn rule_ports(rule: &Value) -> BTreeSet<(String, String)> {
    rule["ports"]
        .as_array()
        .expect("every rule names its ports")
        .iter()
        .map(|p| {
            let port = p["port"].as_str().map(str::to_owned).unwrap_or_else(|| p["port"].to_string());
            (port, p["protocol"].as_str().expect("a protocol").to_owned())
        })
        .collect()
}

#[test]
fn the_network_policy_admits_the_audit_pages_and_metrics_separately_and_lets_out_only_dns_redis_and_https() {
    let policy = yaml(&format!("{K8S}/networkpolicy.yaml"));
    let deployment = yaml(&format!("{K8S}/deployment.yaml"));
    let spec = &policy["spec"];
    assert_eq!(spec["podSelector"]["matchLabels"], deployment["spec"]["template"]["metadata"]["labels"]);
    // With both types listed, whatever no rule admits is dropped, in and out.
    assert_eq!(strings(&spec["policyTypes"]), ["Ingress", "Egress"]);

    // In: one rule per port, each from a namespace of its own, each port one the container serves.
    let container_ports: BTreeSet<String> = deployment["spec"]["template"]["spec"]["containers"][0]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect();
    let ingress = spec["ingress"].as_array().expect("ingress rules");
    let mut sources = BTreeSet::new();
    let admitted: Vec<BTreeSet<(String, String)>> = ingress
        .iter()
        .map(|rule| {
            let from = rule["from"].as_array().expect("every ingress rule says from where");
            assert_eq!(from.len(), 1, "{rule}");
            sources.insert(from[0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"].to_string());
            rule_ports(rule)
        })
        .collect();
    let one = |port: &str| BTreeSet::from([(port.to_owned(), "TCP".to_owned())]);
    assert_eq!(admitted, [one("http"), one("ops")], "the audit pages and the operations port, in separate rules");
    assert_eq!(sources.len(), 2, "the two ports are reached from different namespaces: {sources:?}");
    assert_eq!(container_ports, ["http", "ops"].map(String::from).into(), "the container serves exactly these");
    let config: toml::Value = toml::from_str(&read(K8S_CONFIG)).unwrap();
    let ops: std::net::SocketAddr = config["http"]["operations_listen"].as_str().unwrap().parse().unwrap();
    assert_eq!(ops.port(), 9090, "the metrics port the docs name");

    // Out: DNS to the cluster's DNS pods, Redis, HTTPS, and the Pod Identity agent; nothing else.
    let egress = spec["egress"].as_array().expect("egress rules");
    let mut out = BTreeSet::new();
    for rule in egress {
        let ports = rule_ports(rule);
        if ports.contains(&("53".to_owned(), "UDP".to_owned())) {
            assert_eq!(rule["to"][0]["podSelector"]["matchLabels"]["k8s-app"], "kube-dns", "{rule}");
        }
        if ports.contains(&("80".to_owned(), "TCP".to_owned())) {
            assert_eq!(rule["to"], serde_json::json!([{ "ipBlock": { "cidr": "169.254.170.23/32" } }]), "{rule}");
        }
        out.extend(ports);
    }
    let expected: BTreeSet<(String, String)> =
        [("53", "UDP"), ("53", "TCP"), ("6379", "TCP"), ("443", "TCP"), ("80", "TCP")]
            .map(|(p, t)| (p.to_owned(), t.to_owned()))
            .into();
    assert_eq!(out, expected);
}

#[test]
fn the_service_monitor_scrapes_the_ops_port_of_the_service() {
    let monitor = yaml(&format!("{K8S}/servicemonitor.yaml"));
    assert_eq!(monitor["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(monitor["kind"], "ServiceMonitor");
    let service = yaml(&format!("{K8S}/service.yaml"));
    let spec = &monitor["spec"];
    assert_eq!(spec["selector"]["matchLabels"], service["metadata"]["labels"], "selects the Service by its labels");
    assert_eq!(
        strings(&spec["namespaceSelector"]["matchNames"]),
        [yaml(&format!("{K8S}/namespace.yaml"))["metadata"]["name"].as_str().unwrap()]
    );
    let endpoints = spec["endpoints"].as_array().expect("endpoints");
    assert_eq!(endpoints.len(), 1);
    let ports = service["spec"]["ports"].as_array().unwrap();
    let ops = ports.iter().find(|p| p["name"] == endpoints[0]["port"]).expect("the endpoint names a Service port");
    assert_eq!(ops["targetPort"], "ops", "metrics are on the operations port, not the public one");
    assert_eq!(endpoints[0]["path"], "/metrics");
    // Only the fields this test knows: a typo (which kubernetes-validate cannot catch for a custom resource) fails.
    let known = |v: &Value, keys: &[&str]| {
        for key in v.as_object().unwrap().keys() {
            assert!(keys.contains(&key.as_str()), "servicemonitor.yaml: unexpected field {key}");
        }
    };
    known(&monitor, &["apiVersion", "kind", "metadata", "spec"]);
    known(spec, &["selector", "namespaceSelector", "endpoints"]);
    known(&endpoints[0], &["port", "path", "interval", "scheme"]);
}

// ---------------------------------------------------------------------------------------------------------------
// CloudFormation: manifests/iam/jitgate.yaml
// ---------------------------------------------------------------------------------------------------------------

const TEMPLATE: &str = "manifests/iam/jitgate.yaml";
const ACCOUNT: &str = "123456789012";
const REGION: &str = "us-east-1";

/// The template with its parameters at their defaults, resolving the intrinsic functions it uses the way
/// CloudFormation would in account 123456789012, us-east-1, so its policies can be linted as IAM will see them.
struct Template {
    doc: Value,
}

impl Template {
    fn load() -> Template {
        Template { doc: yaml(TEMPLATE) }
    }

    fn resource(&self, name: &str) -> &Value {
        at(&self.doc, &["Resources", name], TEMPLATE)
    }

    fn parameter(&self, name: &str) -> String {
        at(&self.doc, &["Parameters", name, "Default"], TEMPLATE).as_str().expect("a string default").to_owned()
    }

    /// `Ref`: a parameter's value, a pseudo parameter, or a resource's physical id (its name).
    fn reference(&self, name: &str) -> String {
        match name {
            "AWS::Partition" => "aws".into(),
            "AWS::Region" => REGION.into(),
            "AWS::AccountId" => ACCOUNT.into(),
            _ if self.doc["Parameters"].get(name).is_some() => self.parameter(name),
            _ => self.physical_name(name),
        }
    }

    fn physical_name(&self, resource: &str) -> String {
        let props = &self.resource(resource)["Properties"];
        let name =
            ["RoleName", "TableName", "BucketName"].iter().find_map(|k| props.get(*k)).expect("a named resource");
        self.resolve(name).as_str().expect("a name").to_owned()
    }

    /// `Fn::GetAtt [resource, Arn]`.
    fn arn(&self, resource: &str) -> String {
        let name = self.physical_name(resource);
        match self.resource(resource)["Type"].as_str() {
            Some("AWS::IAM::Role") => format!("arn:aws:iam::{ACCOUNT}:role/{name}"),
            Some("AWS::DynamoDB::Table") => format!("arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}"),
            other => panic!("no Arn for {resource} of type {other:?}"),
        }
    }

    fn resolve(&self, value: &Value) -> Value {
        match value {
            Value::Object(map)
                if map.len() == 1 && map.keys().next().is_some_and(|k| k == "Ref" || k.starts_with("Fn::")) =>
            {
                let (function, argument) = map.iter().next().unwrap();
                match function.as_str() {
                    "Ref" => Value::String(self.reference(argument.as_str().expect("Ref NAME"))),
                    "Fn::GetAtt" => {
                        let parts = strings(argument);
                        assert_eq!(parts.get(1).map(String::as_str), Some("Arn"), "only GetAtt …Arn is resolved");
                        Value::String(self.arn(&parts[0]))
                    }
                    "Fn::Sub" => {
                        let text = argument.as_str().expect("the one-argument form of Fn::Sub");
                        let mut out = String::new();
                        let mut rest = text;
                        while let Some(start) = rest.find("${") {
                            let end = rest[start..].find('}').expect("a closing }") + start;
                            out.push_str(&rest[..start]);
                            let name = &rest[start + 2..end];
                            out.push_str(&match name.split_once('.') {
                                Some((resource, "Arn")) => self.arn(resource),
                                Some(other) => panic!("Fn::Sub attribute {other:?} is not resolved here"),
                                None => self.reference(name),
                            });
                            rest = &rest[end + 1..];
                        }
                        out.push_str(rest);
                        Value::String(out)
                    }
                    other => panic!("{other} is not resolved here; extend Template::resolve"),
                }
            }
            Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), self.resolve(v))).collect()),
            Value::Array(items) => Value::Array(items.iter().map(|v| self.resolve(v)).collect()),
            other => other.clone(),
        }
    }

    /// Every policy document, resolved: "Resource/PolicyName" → document. A trust policy's resource is the role
    /// itself, implicitly; it is written out so that parliament, which lints every policy as one naming resources,
    /// can check the actions and condition keys.
    fn policies(&self) -> BTreeMap<String, Value> {
        let mut policies = BTreeMap::new();
        for (name, resource) in self.doc["Resources"].as_object().expect("Resources") {
            let props = &resource["Properties"];
            if let Some(trust) = props.get("AssumeRolePolicyDocument") {
                let mut trust = self.resolve(trust);
                for statement in trust["Statement"].as_array_mut().expect("statements") {
                    statement["Resource"] = Value::String(self.arn(name));
                }
                policies.insert(format!("{name}/trust"), trust);
            }
            for policy in props.get("Policies").and_then(Value::as_array).into_iter().flatten() {
                let policy_name = policy["PolicyName"].as_str().expect("PolicyName");
                policies.insert(format!("{name}/{policy_name}"), self.resolve(&policy["PolicyDocument"]));
            }
            if let Some(document) = props.get("PolicyDocument") {
                // A bucket policy has no name of its own.
                let policy_name = props.get("PolicyName").map_or("bucket-policy", |n| n.as_str().expect("PolicyName"));
                policies.insert(format!("{name}/{policy_name}"), self.resolve(document));
            }
        }
        policies
    }

    /// The statement with this Sid in a resolved policy.
    fn statement<'a>(policy: &'a Value, sid: &str) -> &'a Value {
        policy["Statement"].as_array().unwrap().iter().find(|s| s["Sid"] == sid).unwrap_or_else(|| panic!("no {sid}"))
    }
}

/// Runs parliament on a policy. Parliament skips the keys of `Null` conditions entirely (it does not even check that
/// they exist), so the linted copy restates each of them under `StringLike` with the value `*`: the key names are
/// then checked against the statement's actions like every other key. The policy deployed is not changed.
fn parliament(policy: &Value) -> Output {
    let mut linted = policy.clone();
    for statement in linted["Statement"].as_array_mut().into_iter().flatten() {
        let Some(condition) = statement.get_mut("Condition").and_then(Value::as_object_mut) else { continue };
        let keys: Vec<String> =
            condition.get("Null").and_then(Value::as_object).into_iter().flatten().map(|(k, _)| k.clone()).collect();
        let like = condition.entry("StringLike").or_insert_with(|| Value::Object(Default::default()));
        for key in keys {
            like.as_object_mut()
                .expect("StringLike is an object")
                .entry(key)
                .or_insert_with(|| Value::String("*".into()));
        }
    }
    validator("parliament", &["--string".to_owned(), linted.to_string()])
}

#[test]
fn cfn_lint_finds_nothing_in_the_template() {
    // First prove the linter judges this template: a misspelt property of the audit table must fail.
    let dir = tempfile::tempdir().expect("temp dir");
    let broken = dir.path().join("jitgate.yaml");
    let text = read(TEMPLATE);
    assert!(text.contains("PointInTimeRecoverySpecification:"));
    std::fs::write(&broken, text.replace("PointInTimeRecoverySpecification:", "PointInTimeRecoverySpecifcation:"))
        .unwrap();
    let out = validator("cfn-lint", &[broken.as_os_str()]);
    let output = output_text(&out);
    assert!(!out.status.success() && output.contains("E3002"), "cfn-lint accepted a misspelt property:\n{output}");

    let out = validator("cfn-lint", &[repo(TEMPLATE).as_os_str()]);
    let output = output_text(&out);
    assert!(out.status.success() && output.trim().is_empty(), "cfn-lint reports findings for {TEMPLATE}:\n{output}");
}

#[test]
fn parliament_finds_nothing_in_any_policy_of_the_template() {
    let template = Template::load();
    let policies = template.policies();
    let names: Vec<&str> = policies.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "BotAssumeQueryRoles/assume-query-roles",
            "BotRole/audit-checkpoints",
            "BotRole/audit-trail",
            "BotRole/trust",
            "CheckpointBucketPolicy/bucket-policy",
            "QueryRole/read-table",
            "QueryRole/trust",
            "WriteRole/trust",
            "WriteRole/write-items"
        ]
    );

    // First prove parliament judges these documents: a condition key the action does not support must be reported
    // (sts:RoleSessionName is documented for sts:AssumeRole, not for sts:TagSession).
    let mut misplaced = policies["QueryRole/trust"].clone();
    let statements = misplaced["Statement"].as_array_mut().unwrap();
    let tag = statements.iter_mut().find(|s| s["Action"] == "sts:TagSession").expect("the TagSession statement");
    tag["Condition"]["StringLike"]["sts:RoleSessionName"] = Value::String("jit-JIT-*".into());
    assert!(!parliament(&misplaced).status.success(), "parliament accepted a condition key on the wrong action");
    // And a misspelt key in a Null condition (see `parliament` for why that needs help).
    let mut misspelt = policies["QueryRole/trust"].clone();
    let source =
        misspelt["Statement"].as_array_mut().unwrap().iter_mut().find(|s| s["Action"] == "sts:SetSourceIdentity");
    let source = source.expect("the SetSourceIdentity statement");
    source["Condition"]["Null"] = serde_json::json!({ "sts:SourceIdentty": "false" });
    assert!(!parliament(&misspelt).status.success(), "parliament accepted a misspelt condition key");

    for (name, policy) in &policies {
        let out = parliament(policy);
        let text = output_text(&out);
        assert!(
            out.status.success() && text.trim().is_empty(),
            "parliament reports findings for {name} in {TEMPLATE}:\n{text}\npolicy: {policy}"
        );
    }
}

#[test]
fn the_query_role_admits_only_the_bot_with_jitgates_session_name_source_identity_and_tags() {
    let template = Template::load();
    let policies = template.policies();
    let trust = &policies["QueryRole/trust"];
    let bot = template.arn("BotRole");
    for statement in trust["Statement"].as_array().unwrap() {
        assert_eq!(statement["Effect"], "Allow");
        assert_eq!(statement["Principal"], serde_json::json!({ "AWS": bot }), "only the bot's role");
    }

    // A request as jitgate makes it (src/aws/sts.rs).
    let request = AssumeRoleRequest {
        role_arn: template.arn("QueryRole"),
        session_policy: "{}".into(),
        request_id: RequestId::generate(),
        requester: SlackUserId::parse("U0123ALICE").expect("a Slack id"),
        runbook: RunbookId::parse("orders-by-customer").expect("a runbook id"),
        approvers: vec![SlackUserId::parse("U0456BOB").expect("a Slack id")],
    };
    let tags: BTreeMap<&str, String> = request.session_tags().into_iter().collect();
    let tag_keys: BTreeSet<String> = tags.keys().map(|k| k.to_string()).collect();
    assert_eq!(tag_keys, BTreeSet::from([TAG_REQUEST_ID, TAG_RUNBOOK, TAG_APPROVERS].map(String::from)));
    let request_tag = format!("aws:RequestTag/{TAG_REQUEST_ID}");

    let assume = Template::statement(trust, "AssumeForOneApprovedRequest");
    assert_eq!(assume["Action"], "sts:AssumeRole");
    let condition = &assume["Condition"];
    assert_eq!(condition["Null"]["sts:SourceIdentity"], "false", "the requester must be named");
    assert_eq!(condition["Null"][&request_tag], "false", "the request id tag must be present");
    let session_glob = condition["StringLike"]["sts:RoleSessionName"].as_str().expect("a session name condition");
    assert!(glob_matches(session_glob, &request.session_name()), "{session_glob} vs {}", request.session_name());
    assert!(!glob_matches(session_glob, "someone-else"));
    let id_glob = condition["StringLike"][&request_tag].as_str().expect("a request id condition");
    assert!(glob_matches(id_glob, &tags[TAG_REQUEST_ID]), "{id_glob} vs {}", tags[TAG_REQUEST_ID]);
    // `jitgate check --live` assumes the role the same way (with a deny-everything session policy), so it passes.
    let live = jitgate::live_check::LIVE_CHECK_REQUEST_ID;
    assert!(glob_matches(session_glob, &format!("jit-{live}")) && glob_matches(id_glob, live), "{live}");
    let allowed_keys: BTreeSet<String> =
        strings(&condition["ForAllValues:StringEquals"]["aws:TagKeys"]).into_iter().collect();
    assert_eq!(allowed_keys, tag_keys, "exactly jitgate's session tags");

    let source = Template::statement(trust, "NameTheRequester");
    assert_eq!(source["Action"], "sts:SetSourceIdentity");
    assert_eq!(source["Condition"]["Null"]["sts:SourceIdentity"], "false");

    let tagging = Template::statement(trust, "TagWithTheRequest");
    assert_eq!(tagging["Action"], "sts:TagSession");
    assert_eq!(tagging["Condition"]["Null"][&request_tag], "false");
    assert!(glob_matches(tagging["Condition"]["StringLike"][&request_tag].as_str().unwrap(), &tags[TAG_REQUEST_ID]));
    let tagging_keys: BTreeSet<String> =
        strings(&tagging["Condition"]["ForAllValues:StringEquals"]["aws:TagKeys"]).into_iter().collect();
    assert_eq!(tagging_keys, tag_keys);

    // The bot may assume the query role, with a source identity and tags, and nothing else through STS.
    let assume_policy = &policies["BotAssumeQueryRoles/assume-query-roles"];
    let statement = Template::statement(assume_policy, "AssumeQueryRoles");
    let actions: BTreeSet<String> = strings(&statement["Action"]).into_iter().collect();
    assert_eq!(
        actions,
        BTreeSet::from(["sts:AssumeRole", "sts:SetSourceIdentity", "sts:TagSession"].map(String::from))
    );
    assert_eq!(strings(&statement["Resource"]), [template.arn("QueryRole"), template.arn("WriteRole")]);
    // The write role admits the bot exactly as the query role does (the documents differ only in the role named).
    let write_trust =
        policies["WriteRole/trust"].to_string().replace(&template.arn("WriteRole"), &template.arn("QueryRole"));
    assert_eq!(write_trust, policies["QueryRole/trust"].to_string());
}

#[test]
fn the_query_role_reads_what_runbooks_can_run_on_the_table_the_shipped_runbooks_use() {
    let template = Template::load();
    let policy = &template.policies()["QueryRole/read-table"];
    let statement = Template::statement(policy, "ReadTableAndIndexes");
    let actions: BTreeSet<String> = strings(&statement["Action"]).into_iter().collect();
    let every_operation = [Operation::Query, Operation::GetItem, Operation::Scan];
    for operation in every_operation {
        // A new operation must be considered here (and granted in the template) before this compiles.
        match operation {
            Operation::Query | Operation::GetItem | Operation::Scan => {}
            // Writes never run as the query role: their runbooks name the write role (checked below).
            Operation::UpdateItem => {}
        }
    }
    let needed: BTreeSet<String> = every_operation.iter().map(|op| op.iam_action().to_owned()).collect();
    assert_eq!(actions, needed, "the read actions a runbook can declare, and nothing else");
    let table = template.parameter("QueryTableName");
    let table_arn = format!("arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{table}");
    assert_eq!(strings(&statement["Resource"]), [table_arn.clone(), format!("{table_arn}/index/*")]);

    // The shipped runbooks name this role and this table, so the defaults deploy a working demo.
    let role = template.parameter("QueryRoleName");
    for (name, text) in shipped_runbooks() {
        let runbook: Value = serde_saphyr::from_str(&text).expect("a runbook");
        assert_eq!(runbook["table"]["name"], table.as_str(), "runbooks/{name}");
        let arn = runbook["role_arn"].as_str().expect("role_arn");
        if runbook["operation"] == "update_item" {
            // A write runs as the write role, which may only UpdateItem on the same table.
            let write_role = template.parameter("WriteRoleName");
            assert!(arn.ends_with(&format!(":role/{write_role}")), "runbooks/{name}: {arn} is not the write role");
            continue;
        }
        assert!(arn.ends_with(&format!(":role/{role}")), "runbooks/{name}: {arn} is not the template's query role");
    }
}

#[tokio::test]
async fn the_templates_audit_table_is_the_one_jitgate_writes_and_the_bot_may_write_exactly_its_keys() {
    let template = Template::load();
    let table = &template.resource("AuditTable")["Properties"];
    assert_eq!(table["BillingMode"], "PAY_PER_REQUEST");
    assert_eq!(table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"], true);
    assert_eq!(table["DeletionProtectionEnabled"], true);
    assert_eq!(template.resource("AuditTable")["DeletionPolicy"], "Retain");
    let audit_table = template.parameter("AuditTableName");
    for config in ["jitgate.example.toml", "deploy/jitgate.toml", "deploy/compose/jitgate.toml"] {
        let parsed: toml::Value = toml::from_str(&read(config)).expect("TOML");
        assert_eq!(parsed["aws"]["audit_table"].as_str(), Some(audit_table.as_str()), "{config}");
    }

    // Create the table exactly as the template defines it, in the local DynamoDB.
    let name = support::unique("cfn-audit");
    let client = aws_sdk_dynamodb::Client::new(&support::aws_config());
    let key = |k: &Value| {
        KeySchemaElement::builder()
            .attribute_name(k["AttributeName"].as_str().unwrap())
            .key_type(KeyType::from(k["KeyType"].as_str().unwrap()))
            .build()
            .unwrap()
    };
    let mut create =
        client.create_table().table_name(&name).billing_mode(BillingMode::from(table["BillingMode"].as_str().unwrap()));
    for definition in table["AttributeDefinitions"].as_array().unwrap() {
        create = create.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(definition["AttributeName"].as_str().unwrap())
                .attribute_type(ScalarAttributeType::from(definition["AttributeType"].as_str().unwrap()))
                .build()
                .unwrap(),
        );
    }
    for k in table["KeySchema"].as_array().unwrap() {
        create = create.key_schema(key(k));
    }
    for index in table["GlobalSecondaryIndexes"].as_array().unwrap() {
        let mut gsi = GlobalSecondaryIndex::builder().index_name(index["IndexName"].as_str().unwrap()).projection(
            Projection::builder()
                .projection_type(ProjectionType::from(index["Projection"]["ProjectionType"].as_str().unwrap()))
                .build(),
        );
        for k in index["KeySchema"].as_array().unwrap() {
            gsi = gsi.key_schema(key(k));
        }
        create = create.global_secondary_indexes(gsi.build().unwrap());
    }
    create.send().await.expect("create the template's audit table");

    // jitgate accepts its layout and writes its chain into it.
    let clock = ManualClock::new(time::macros::datetime!(2026-11-28 12:00 UTC));
    let log = AuditLog::new(&support::aws_config(), name.clone(), clock);
    log.check().await.expect("jitgate accepts the template's audit table layout");
    for n in 0..2 {
        let event =
            AuditEvent::Failed { request: RequestId::generate(), code: None, reason: format!("test entry {n}") };
        log.append(event).await.expect("append to the template's audit table");
    }
    let items = client.scan().table_name(&name).send().await.expect("scan").items.unwrap_or_default();
    assert_eq!(items.len(), 3, "two entries and the head");

    // The bot's policy lets it Put the entries and Update the head, and neither the other way round.
    let policy = &template.policies()["BotRole/audit-trail"];
    let put = Template::statement(policy, "AppendEntries");
    assert_eq!(put["Action"], "dynamodb:PutItem");
    let entry_globs = strings(&put["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]);
    let update = Template::statement(policy, "MoveTheHead");
    assert_eq!(update["Action"], "dynamodb:UpdateItem");
    let head_keys = strings(&update["Condition"]["ForAllValues:StringEquals"]["dynamodb:LeadingKeys"]);
    for item in &items {
        let pk = item["pk"].as_s().expect("a string partition key");
        let is_entry = item.contains_key("event");
        let puttable = entry_globs.iter().any(|g| glob_matches(g, pk));
        let updatable = head_keys.contains(pk);
        assert_eq!((puttable, updatable), (is_entry, !is_entry), "item {pk}: entry {is_entry}");
    }

    // And nothing else: the reads jitgate makes, on this table and its request index only, and no deletes.
    let mut actions = BTreeSet::new();
    for statement in policy["Statement"].as_array().unwrap() {
        assert_eq!(statement["Effect"], "Allow");
        for resource in strings(&statement["Resource"]) {
            let table_arn = template.arn("AuditTable");
            assert!(resource == table_arn || resource == format!("{table_arn}/index/by-request"), "{resource}");
        }
        actions.extend(strings(&statement["Action"]));
    }
    let expected = [
        "dynamodb:DescribeTable",
        "dynamodb:GetItem",
        "dynamodb:BatchGetItem",
        "dynamodb:Query",
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
    ];
    assert_eq!(actions, expected.map(String::from).into_iter().collect::<BTreeSet<_>>());
    assert_eq!(jitgate::audit::REQUEST_INDEX, "by-request");
}

// ---------------------------------------------------------------------------------------------------------------
// The Slack app manifest (the rest is checked in tests/it/slack_web.rs)
// ---------------------------------------------------------------------------------------------------------------

#[test]
fn the_slack_app_keeps_token_rotation_off() {
    // jitgate reads SLACK_BOT_TOKEN once and never refreshes it: with rotation on, the token dies after 12 hours.
    let manifest = yaml("manifests/slack-app.yaml");
    assert_eq!(at(&manifest, &["settings", "token_rotation_enabled"], "slack-app.yaml"), false);
    // Socket mode delivers commands and clicks over the WebSocket: a request URL would be a second, unused way in.
    assert!(manifest["features"]["slash_commands"][0].get("url").is_none());
    assert!(manifest["settings"]["interactivity"].get("request_url").is_none());
}

/// Slack's app manifest JSON schema, vendored (source and commit in tests/schemas/README.md and the file's `$comment`).
const SLACK_MANIFEST_SCHEMA: &str = "tests/schemas/slack-app-manifest.schema.1.0.0.json";

/// What Slack's manifest schema says is wrong with `manifest`, one line per problem with where it is.
fn slack_manifest_problems(manifest: &Value) -> Vec<String> {
    let schema: Value = serde_json::from_str(&read(SLACK_MANIFEST_SCHEMA)).expect("the vendored schema is JSON");
    assert!(schema["$comment"].as_str().is_some_and(|c| c.contains("slackapi/manifest-schema")), "its source");
    let validator = jsonschema::validator_for(&schema).unwrap_or_else(|e| panic!("{SLACK_MANIFEST_SCHEMA}: {e}"));
    validator.iter_errors(manifest).map(|e| format!("{} at {}", e, e.instance_path())).collect()
}

#[test]
fn the_slack_app_manifest_follows_slacks_published_schema() {
    // First prove the schema judges: each of these breaks a rule of Slack's and must be refused.
    let manifest = yaml("manifests/slack-app.yaml");
    let broken = |what: &str, edit: &dyn Fn(&mut Value)| {
        let mut copy = manifest.clone();
        edit(&mut copy);
        assert!(!slack_manifest_problems(&copy).is_empty(), "the schema accepted a manifest with {what}");
    };
    broken("an app name over 35 characters", &|m| m["display_information"]["name"] = "j".repeat(36).into());
    broken("a long description under 175 characters", &|m| {
        m["display_information"]["long_description"] = "short".into()
    });
    broken("a misspelt setting", &|m| m["settings"]["socket_mode"] = true.into());
    broken("a command without its slash", &|m| m["features"]["slash_commands"][0]["command"] = "jit".into());
    broken("interactivity without is_enabled", &|m| m["settings"]["interactivity"] = serde_json::json!({}));
    broken("a scope list that is not a list", &|m| m["oauth_config"]["scopes"]["bot"] = "commands".into());

    let problems = slack_manifest_problems(&manifest);
    assert!(problems.is_empty(), "manifests/slack-app.yaml against Slack's manifest schema:\n{}", problems.join("\n"));
}

/// `requests.shutdown_drain` of a config text, plus the time interrupted runs get to record their failure.
fn shutdown_needs(config_text: &str) -> std::time::Duration {
    let env = jitgate::config::Environment::from_pairs([("AWS_REGION", "us-east-1")]);
    let config = jitgate::config::Config::parse(Path::new("jitgate.toml"), config_text, &env).expect("a valid config");
    config.requests.shutdown_drain + jitgate::app::INTERRUPT_CLEANUP
}

#[test]
fn orchestrators_give_jitgate_time_to_drain_and_record_interruptions_before_killing_it() {
    // Kubernetes sends SIGKILL terminationGracePeriodSeconds after SIGTERM, compose stop_grace_period after: a
    // kill mid-drain would leave runs for the sweeper to fail 16 minutes later instead of at once.
    let k8s_needs = shutdown_needs(&read(K8S_CONFIG));
    let deployment = yaml(&format!("{K8S}/deployment.yaml"));
    let grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"].as_u64().expect("grace");
    assert!(k8s_needs.as_secs() < grace, "drain + clean-up {k8s_needs:?} must end before the kill after {grace}s");

    let compose_needs = shutdown_needs(&read("deploy/compose/jitgate.toml"));
    let compose = yaml("docker-compose.yml");
    let stop = compose["services"]["jitgate"]["stop_grace_period"].as_str().expect("stop_grace_period");
    let stop = humantime::parse_duration(stop).expect("a duration");
    assert!(compose_needs < stop, "drain + clean-up {compose_needs:?} must end before compose kills after {stop:?}");
}
