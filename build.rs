//! Build script: records the git commit jitgate is built from as `JITGATE_GIT_SHA`, shown by `jitgate --version`
//! and exported as the `git_sha` label of `jitgate_build_info` (see `src/build_info.rs`).
//!
//! From `git rev-parse` when the sources are a git checkout; else from the `JITGATE_GIT_SHA` environment variable
//! (container builds copy no `.git`: the Dockerfile passes it as a build argument); else `unknown`. Never fails the
//! build: a version label is not worth a broken build.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=JITGATE_GIT_SHA");
    let sha = from_git().or_else(from_env).unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=JITGATE_GIT_SHA={sha}");
}

fn manifest_dir() -> PathBuf {
    PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| ".".into()))
}

/// `git <args>` in the package's folder: its trimmed output when it succeeded.
fn git(args: &[&str]) -> Option<String> {
    let output = Command::new("git").args(args).current_dir(manifest_dir()).output().ok()?;
    let text = String::from_utf8(output.stdout).ok()?.trim().to_owned();
    (output.status.success() && !text.is_empty()).then_some(text)
}

/// The checkout's commit, 12 hex digits; cargo is told to run this again when HEAD or the branch it names moves.
fn from_git() -> Option<String> {
    let sha = git(&["rev-parse", "--short=12", "HEAD"])?;
    // A worktree keeps HEAD in its own git folder and the branches in the shared one: `--git-path` finds both.
    let mut watched = vec!["HEAD".to_owned(), "packed-refs".to_owned()];
    watched.extend(git(&["symbolic-ref", "-q", "HEAD"]));
    for name in watched {
        if let Some(path) = git(&["rev-parse", "--git-path", &name]) {
            let path = manifest_dir().join(Path::new(&path));
            // A path that does not exist would make cargo run this script on every build.
            if path.exists() {
                println!("cargo:rerun-if-changed={}", path.display());
            }
        }
    }
    Some(sha)
}

/// `JITGATE_GIT_SHA` when it looks like a commit id (hex, 7 to 40 digits); anything else is reported and ignored.
fn from_env() -> Option<String> {
    let value = std::env::var("JITGATE_GIT_SHA").ok()?;
    let value = value.trim();
    if (7..=40).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Some(value.to_ascii_lowercase());
    }
    if !value.is_empty() {
        println!("cargo:warning=JITGATE_GIT_SHA `{value}` is not a commit id (7-40 hex digits); using `unknown`");
    }
    None
}
