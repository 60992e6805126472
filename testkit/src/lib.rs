//! jitgate's test kit, shared by the integration tests (`tests/`) and the benchmarks (`benches/`): connections to
//! the real Redis and local DynamoDB/STS server that `scripts/with-services.sh` starts, names that keep tests from
//! seeing each other's data, the in-process [`harness`], [`fixtures`], the DynamoDB [`gate`], the [`silent`] AWS proxy,
//! [`pauses`], and a [`fleet`] of `jitgate run` processes for the benchmarks.
//!
//! Integration tests never mock Redis or the AWS SDK. Each test uses its own Redis key prefix and its own
//! DynamoDB table names, so tests run in parallel against one server.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;

/// Redis URL of the test server. Panics with the fix when the tests were not started by the test command.
pub fn redis_url() -> String {
    std::env::var("JITGATE_TEST_REDIS_URL").unwrap_or_else(|_| {
        panic!(
            "JITGATE_TEST_REDIS_URL is not set: run the tests with `make test` (or scripts/with-services.sh cargo test)"
        )
    })
}

/// Endpoint of the local DynamoDB/STS server.
pub fn aws_endpoint() -> String {
    std::env::var("JITGATE_TEST_AWS_ENDPOINT").unwrap_or_else(|_| {
        panic!("JITGATE_TEST_AWS_ENDPOINT is not set: run the tests with `make test` (or scripts/with-services.sh cargo test)")
    })
}

/// The region the local server and the test runbooks use.
pub const REGION: &str = "us-east-1";
/// The account id the local server reports.
pub const ACCOUNT: &str = "123456789012";

/// An `SdkConfig` for the bot's own identity, pointed at `endpoint`.
pub fn aws_config_for(endpoint: &str, access_key: &str, secret_key: &str) -> SdkConfig {
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .endpoint_url(endpoint)
        .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(Credentials::new(
            access_key,
            secret_key,
            None,
            None,
            "jitgate-tests",
        )))
        .build()
}

/// An `SdkConfig` for the shared local server (IAM checks off: any credentials work).
pub fn aws_config() -> SdkConfig {
    aws_config_for(&aws_endpoint(), "AKIAJITGATETESTS0001", "test-secret")
}

/// A name no other test in this run uses: `<prefix>-<pid>-<n>`.
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!("{prefix}-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}
/// The repository's root folder (the shipped runbooks, manifests and docs are read from there).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("testkit/ sits in the repository root").to_path_buf()
}

pub mod fixtures;
pub mod fleet;
pub mod gate;
pub mod harness;
pub mod pauses;
pub mod redis_proxy;
pub mod redis_servers;
pub mod silent;
