//! Every command in README.md is checked here or run by `.ci/run`, so the README cannot rot:
//!
//! - `make X`: the Makefile has the target and `make -n X` accepts it; `.ci/run` runs it, or (for `make dev`,
//!   which needs a Slack workspace) the test names why not;
//! - `cp A B`: A is in the repo and B is ignored by git (it will hold secrets);
//! - `docker compose …`, `kubectl apply -k …`, `aws cloudformation deploy …`: the files they name exist (their
//!   contents are validated in `tests/it/manifests.rs`), with the flags the files need;
//! - `jitgate …` in the command list: clap accepts the arguments;
//! - `/jit …` in Slack: the command parser accepts it, and the opening example renders against the shipped
//!   runbooks and finds rows in the demo data `make dev` seeds.
//!
//! A shell line of any other shape fails the test: add a check for it here before adding it to the README.

use std::path::{Path, PathBuf};
use std::process::Command;

use clap::Parser as _;

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The fenced code blocks of the README: (info string, lines), with `\` continuations joined.
fn code_blocks() -> Vec<(String, Vec<String>)> {
    let readme = read("README.md");
    let mut blocks = Vec::new();
    let mut current: Option<(String, Vec<String>)> = None;
    for line in readme.lines() {
        let trimmed = line.trim_start();
        if let Some(info) = trimmed.strip_prefix("```") {
            match current.take() {
                Some(block) => blocks.push(block),
                None => current = Some((info.trim().to_owned(), Vec::new())),
            }
            continue;
        }
        if let Some((_, lines)) = current.as_mut() {
            match lines.last_mut() {
                Some(last) if last.ends_with('\\') => {
                    last.pop();
                    last.push_str(trimmed);
                }
                _ => lines.push(trimmed.to_owned()),
            }
        }
    }
    assert!(current.is_none(), "README.md has an unclosed code block");
    blocks
}

fn shell_lines() -> Vec<String> {
    code_blocks()
        .into_iter()
        .filter(|(info, _)| info == "sh")
        .flat_map(|(_, lines)| lines)
        .map(|line| line.split(" # ").next().unwrap_or_default().trim().to_owned())
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .collect()
}

fn words(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

fn flag_value<'a>(words: &[&'a str], flag: &str) -> Option<&'a str> {
    words.iter().position(|w| *w == flag).and_then(|i| words.get(i + 1).copied())
}

fn check_make(target: &str, ci: &str) {
    let makefile = read("Makefile");
    assert!(makefile.lines().any(|l| l.starts_with(&format!("{target}:"))), "the Makefile has no `{target}` target");
    let dry = Command::new("make").arg("-n").arg(target).current_dir(repo(".")).output().expect("make runs");
    assert!(dry.status.success(), "make -n {target}: {}", String::from_utf8_lossy(&dry.stderr));
    let run_by_ci = ci.lines().any(|l| l.trim() == format!("make {target}"));
    // `make dev` connects to the reader's own Slack workspace, which CI does not have; the services, seeding and
    // config it uses are the ones `make demo` runs, and its .env checks are in scripts/local-stack.sh.
    assert!(run_by_ci || target == "dev", "README shows `make {target}`, but .ci/run does not run it");
}

fn check_copy(words: &[&str]) {
    let [_, from, to] = words else { panic!("cp with other than two arguments: {words:?}") };
    assert!(repo(from).is_file(), "README copies {from}, which is not in the repo");
    let ignored = Command::new("git").args(["check-ignore", "-q", to]).current_dir(repo(".")).status().expect("git");
    assert!(ignored.success(), "README copies to {to}, which git does not ignore: secrets would be committed");
}

fn check_shell_line(line: &str, ci: &str) {
    let w = words(line);
    match w.as_slice() {
        ["make", target, ..] => check_make(target, ci),
        ["cp", ..] => check_copy(&w),
        ["docker", "compose", sub, ..] => {
            assert!(["up", "down", "restart", "logs"].contains(sub), "docker compose {sub}");
            assert!(repo("docker-compose.yml").is_file() && repo("Dockerfile").is_file());
            if w.contains(&"--build") {
                assert!(read("docker-compose.yml").contains("build: ."), "--build, but no service builds the repo");
            }
        }
        ["kubectl", "apply", "-k", dir] => {
            assert!(repo(dir).join("kustomization.yaml").is_file(), "{dir} has no kustomization.yaml");
        }
        // A single object applied on its own (tests/it/manifests.rs checks its content).
        ["kubectl", "apply", "-f", file] => {
            let text = read(file);
            assert!(text.contains("\napiVersion: ") && text.contains("\nkind: "), "{file} is not a Kubernetes object");
        }
        ["aws", "cloudformation", "deploy", ..] => {
            let template = flag_value(&w, "--template-file").expect("--template-file");
            let text = read(template);
            assert!(flag_value(&w, "--stack-name").is_some(), "deploy needs --stack-name: {line}");
            // Roles with explicit names need CAPABILITY_NAMED_IAM, or CloudFormation refuses the deploy.
            if text.contains("RoleName:") {
                assert_eq!(flag_value(&w, "--capabilities"), Some("CAPABILITY_NAMED_IAM"), "{line}");
            }
        }
        _ => panic!("README shows `{line}`, which tests/it/readme.rs does not know how to check: add a check"),
    }
}

#[test]
fn every_shell_command_in_the_readme_is_checked_or_run_by_ci() {
    let ci = read(".ci/run");
    let lines = shell_lines();
    assert!(lines.iter().any(|l| l == "make demo") && lines.iter().any(|l| l == "make test"), "{lines:?}");
    for line in &lines {
        check_shell_line(line, &ci);
    }
}

#[test]
fn the_shell_checks_catch_a_stale_command() {
    let ci = read(".ci/run");
    for stale in ["make deploy", "cp jitgate.toml.sample .env", "kubectl apply -k manifests/helm", "helm install x"] {
        let caught = std::panic::catch_unwind(|| check_shell_line(stale, &ci)).is_err();
        assert!(caught, "`{stale}` should fail the README check");
    }
}

/// `jitgate …` lines of the command list: the command is what comes before two spaces (its description after);
/// `;` separates two commands on one line.
fn jitgate_commands() -> Vec<String> {
    let mut commands = Vec::new();
    for (info, lines) in code_blocks() {
        if !info.is_empty() {
            continue;
        }
        for line in lines {
            for part in line.split(';') {
                let part = part.trim();
                if part.starts_with("jitgate ") {
                    commands.push(part.split("  ").next().unwrap_or_default().trim().to_owned());
                }
            }
        }
    }
    commands
}

#[test]
fn every_jitgate_command_in_the_readme_parses() {
    let commands = jitgate_commands();
    assert!(commands.len() >= 8, "the command list went missing: {commands:?}");
    for command in commands {
        let args = command.split_whitespace();
        if let Err(err) = jitgate::cli::Cli::try_parse_from(args) {
            panic!("README shows `{command}`, which jitgate does not accept:\n{err}");
        }
    }
}

/// The `/jit …` texts of the README, without the `/jit ` prefix; placeholders (`<…>`, `[…]`, `…`) are skipped.
fn slash_commands() -> Vec<String> {
    let readme = read("README.md");
    let mut found = Vec::new();
    for chunk in readme
        .split('`')
        .chain(code_blocks().into_iter().flat_map(|(_, lines)| lines).collect::<Vec<_>>().iter().map(String::as_str))
    {
        let chunk = chunk.trim();
        if let Some(text) = chunk.strip_prefix("/jit ")
            && !text.contains(['<', '[', '…'])
        {
            found.push(text.to_owned());
        }
    }
    found
}

#[test]
fn every_slash_command_in_the_readme_parses_and_the_example_finds_demo_rows() {
    let commands = slash_commands();
    assert!(commands.iter().any(|c| c == "help"), "{commands:?}");
    let runbooks =
        jitgate::runbook::RunbookSet::load_dir(&repo("runbooks"), &jitgate::runbook::RunbookDefaults::default())
            .expect("the shipped runbooks load");
    let demo = jitgate::aws::demo_table::demo_orders(50, 30);
    let mut queries = 0;
    for text in commands {
        let parsed = jitgate::command::parse(&text).unwrap_or_else(|e| panic!("/jit {text}: {e:?}"));
        let jitgate::command::Command::Query { runbook: Some(runbook), args, reason, unmask, .. } = parsed else {
            continue;
        };
        queries += 1;
        assert!(reason.is_some(), "the example gives a reason: {text}");
        let id = jitgate::ids::RunbookId::parse(&runbook).expect("a runbook id");
        let book = runbooks.get(&id).unwrap_or_else(|| panic!("/jit {text}: no runbook {runbook}"));
        let query = book.render(&args, "us-east-1").unwrap_or_else(|e| panic!("/jit {text}: {e:?}"));
        book.unmask(query, &unmask).unwrap_or_else(|e| panic!("/jit {text}: {e}"));
        if runbook != "orders-by-customer" {
            // The other examples name seeded orders by id; rendering them is the check.
            continue;
        }
        // orders-by-customer: the customer's orders from one day up to (not including) another.
        let (customer, from, until) = (&args["customer_id"], &args["from"], &args["until"]);
        let rows = demo
            .iter()
            .filter(|o| &o.customer_id == customer && o.created_at.as_str() >= from.as_str())
            .filter(|o| o.created_at.as_str() < until.as_str())
            .count();
        assert!(rows > 0, "/jit {text} finds nothing in the data make dev seeds");
    }
    assert!(queries >= 1, "the README's example query went missing");
}

/// Every command clap knows, as words after `jitgate` (`run`, `audit verify`, …): the leaves of the command tree.
fn clap_commands() -> Vec<String> {
    fn leaves(command: &clap::Command, prefix: &str, out: &mut Vec<String>) {
        for sub in command.get_subcommands().filter(|s| s.get_name() != "help") {
            let path = format!("{prefix}{}", sub.get_name());
            if sub.has_subcommands() {
                leaves(sub, &format!("{path} "), out);
            } else {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    leaves(&<jitgate::cli::Cli as clap::CommandFactory>::command(), "", &mut out);
    out
}

#[test]
fn every_command_and_check_flag_is_in_the_readme_list_and_the_cli_header() {
    let commands = clap_commands();
    assert!(commands.len() >= 7 && commands.contains(&"audit export".to_owned()), "{commands:?}");
    let listed = jitgate_commands();
    // The cli.rs header as one line, so a name broken across comment lines still reads as one.
    let source = read("src/cli.rs");
    let header: Vec<&str> = source.lines().map_while(|l| l.strip_prefix("//!")).map(str::trim).collect();
    let header = header.join(" ");
    for command in &commands {
        let words = format!("jitgate {command}");
        assert!(
            listed.iter().any(|l| l == &words || l.starts_with(&format!("{words} "))),
            "README's command list lacks `{words}`: {listed:?}"
        );
        assert!(header.contains(&format!("`{words}")), "the src/cli.rs header does not name `{words}`: {header}");
    }
    let check = <jitgate::cli::Cli as clap::CommandFactory>::command();
    let check = check.find_subcommand("check").expect("a check command");
    let flags: Vec<&str> =
        check.get_arguments().filter_map(|a| a.get_long()).filter(|f| !["config", "log-format"].contains(f)).collect();
    assert!(flags.contains(&"live") && flags.contains(&"secrets"), "{flags:?}");
    for flag in flags {
        let words = format!("jitgate check --{flag}");
        assert!(listed.contains(&words), "README's command list lacks `{words}`: {listed:?}");
        assert!(header.contains(&format!("--{flag}")), "the src/cli.rs header does not name `{words}`: {header}");
    }
}

/// `docs/security.md` backs every claim with a test: each `module::test_name` it names must be a test of
/// `tests/it/module.rs`, and each bare test name after a path (`src/…`: `name`) a test in that file. A renamed or
/// deleted test fails here rather than leaving the security model citing nothing.
#[test]
fn every_test_docs_security_cites_exists() {
    let doc = read("docs/security.md");
    let cited = regex::Regex::new(r"`([a-z_]+)::([a-z0-9_]+)`").unwrap();
    let mut checked = 0;
    for capture in cited.captures_iter(&doc) {
        let (module, test) = (&capture[1], &capture[2]);
        let file = format!("tests/it/{module}.rs");
        let source = read(&file);
        assert!(source.contains(&format!("fn {test}(")), "docs/security.md cites {module}::{test}, not in {file}");
        checked += 1;
    }
    let in_file = regex::Regex::new(r"`((?:src|tests)/[a-z0-9_/]+\.rs)`: ((?:`[a-z0-9_]+`(?:, )?)+)").unwrap();
    let name = regex::Regex::new(r"`([a-z0-9_]+)`").unwrap();
    for capture in in_file.captures_iter(&doc) {
        let source = read(&capture[1]);
        for test in name.captures_iter(&capture[2]) {
            assert!(
                source.contains(&format!("fn {}(", &test[1])),
                "docs/security.md cites {} in {}",
                &test[1],
                &capture[1]
            );
            checked += 1;
        }
    }
    assert!(checked >= 20, "only {checked} tests cited: the pattern no longer matches the document");
}
