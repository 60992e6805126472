//! jitgate: just-in-time, on-call-approved, audited DynamoDB queries from Slack.
//!
//! Dependencies point inward. The pure domain (`ids`, `request`, `runbook`, `clock`) does no I/O beyond reading
//! runbook files. The five clients — `slack`, `aws`, `store`, `oncall`, `audit` — each talk to one outside service
//! and import none of each other, only the domain and the shared plumbing (`pause`, `seal`, `telemetry`, `tls`,
//! `redis_connection`, `result_rows`); a test below
//! holds them to it. `engine` composes the domain with `store`, `aws` and `audit` (recording failures in the words
//! `messages` gives them); `bot` puts Slack and the on-call roster in front of the engine, with every user-visible
//! text from `messages`; `app` is the composition root that builds the clients and adapts one to another where they
//! meet (the Slack directory on-call lookups use). See `docs/design.md` for the flow.

pub mod app;
pub mod audit;
pub mod aws;
pub mod bot;
pub mod build_info;
pub mod cli;
pub mod clock;
pub mod command;
pub mod config;
pub mod engine;
pub mod http;
pub mod ids;
pub mod links;
pub mod live_check;
pub mod messages;
pub mod oncall;
pub mod pause;
pub mod redis_connection;
pub mod request;
pub mod result_rows;
pub mod runbook;
pub mod seal;
pub mod slack;
pub mod store;
pub mod telemetry;
pub mod tls;

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    /// The clients: each talks to one outside service and knows none of the others.
    const CLIENTS: [&str; 5] = ["slack", "aws", "store", "oncall", "audit"];
    /// What a client may use besides itself: the pure domain and the shared plumbing.
    const DOMAIN: [&str; 10] =
        ["ids", "request", "runbook", "clock", "pause", "seal", "telemetry", "tls", "redis_connection", "result_rows"];

    fn rust_files(dir: &Path, into: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display())) {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                rust_files(&path, into);
            } else if path.extension().is_some_and(|e| e == "rs") {
                into.push(path);
            }
        }
    }

    /// The top-level modules a source text reaches through `crate::`, including `use crate::{a, b::c}` groups.
    fn crate_modules(source: &str) -> Vec<String> {
        let mut found = Vec::new();
        for (at, _) in source.match_indices("crate::") {
            let rest = &source[at + "crate::".len()..];
            let names: Vec<&str> = match rest.strip_prefix('{') {
                // A group: the first segment of each item.
                Some(group) => group[..group.find('}').unwrap_or(group.len())]
                    .split(',')
                    .map(|item| item.trim().split("::").next().unwrap_or("").trim())
                    .collect(),
                None => vec![rest.split(|c: char| !(c.is_alphanumeric() || c == '_')).next().unwrap_or("")],
            };
            found.extend(names.into_iter().filter(|n| !n.is_empty()).map(str::to_owned));
        }
        found
    }

    #[test]
    fn clients_import_none_of_each_other() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut offences = Vec::new();
        for client in CLIENTS {
            let mut files = Vec::new();
            rust_files(&src.join(client), &mut files);
            assert!(!files.is_empty(), "no sources found for {client}");
            for file in files {
                let source = std::fs::read_to_string(&file).expect("a readable source file");
                for module in crate_modules(&source) {
                    if module != client && !DOMAIN.contains(&module.as_str()) {
                        offences.push(format!("{} uses crate::{module}", file.display()));
                    }
                }
            }
        }
        assert!(offences.is_empty(), "clients may only use the domain ({DOMAIN:?}):\n{}", offences.join("\n"));
    }

    #[test]
    fn the_import_scan_sees_groups_and_paths() {
        let source = "use crate::{aws::Row, ids};\nfn f() { crate::slack::SlackWeb::new(); }";
        assert_eq!(crate_modules(source), ["aws", "ids", "slack"]);
    }
}
