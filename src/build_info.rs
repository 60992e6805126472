//! What this binary is: its version and the git commit it was built from (recorded by `build.rs`), shown by
//! `jitgate --version` and exported as `jitgate_build_info{version,git_sha} 1` at `/metrics`.

/// The package version, from `Cargo.toml`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The commit built from: 12 hex digits from git, or the `JITGATE_GIT_SHA` build variable, or `unknown`.
pub const GIT_SHA: &str = env!("JITGATE_GIT_SHA");

/// `jitgate --version`'s text after the program name, e.g. `0.1.0 (git 3f2a9c81d0e4)`.
pub const VERSION_LINE: &str = concat!(env!("CARGO_PKG_VERSION"), " (git ", env!("JITGATE_GIT_SHA"), ")");
