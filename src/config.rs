//! Configuration: the `jitgate.toml` file plus secrets from the environment, validated once at start-up.
//!
//! The file holds no secrets; tokens and the Redis URL (which may carry a password) come only from the
//! environment (see the table in `docs/design.md`). Every setting is checked here, together with the settings
//! it depends on, so a mistake stops jitgate at start with a message naming the key and the fix instead of
//! surfacing later as a refused request.
//!
//! What only `jitgate run` needs (the approval channel, the tokens, the link secret) is checked by
//! [`Config::approval_channel_for_run`] and [`Secrets::require_for_run`], which `jitgate run` calls at start and
//! `jitgate check` calls too (the secrets with `--secrets`), so `check` refuses exactly what `run` would.
//!
//! The only I/O here is reading the file ([`Config::load`]), the one snapshot of the process environment
//! ([`Environment::from_process`], taken in `main`) and the secrets mounted as files that snapshot names
//! (`NAME_FILE`, read by [`Environment::with_secret_files`]); everything else works on values already read.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

mod secret_files;
pub use secret_files::{FILE_SUFFIX, SECRET_VARIABLES};

/// Default config path when `JITGATE_CONFIG` is not set.
pub const DEFAULT_CONFIG_PATH: &str = "jitgate.toml";
/// Default Redis when `REDIS_URL` is not set.
pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";

/// A snapshot of the process environment. Read once in `main`; tests build their own.
#[derive(Debug, Clone, Default)]
pub struct Environment(BTreeMap<String, String>);

impl Environment {
    /// The real process environment (non-UTF-8 variables are skipped: none of ours can be).
    pub fn from_process() -> Environment {
        Environment(
            std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))).collect(),
        )
    }

    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Environment {
        Environment(pairs.into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect())
    }

    /// A set, non-empty variable.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str).filter(|v| !v.trim().is_empty())
    }
}

/// A configuration mistake: which key, what is wrong, how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    pub key: String,
    pub problem: String,
    pub fix: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {} — {}", self.file.display(), self.key, self.problem, self.fix)
    }
}

impl std::error::Error for ConfigError {}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the file was read from; relative paths in it are resolved against its folder.
    pub path: PathBuf,
    pub runbooks: RunbooksConfig,
    pub aws: AwsConfig,
    pub redis: RedisConfig,
    pub requests: RequestsConfig,
    pub slack: SlackConfig,
    pub oncall: OnCallConfig,
    pub http: HttpConfig,
    pub audit: AuditConfig,
    pub break_glass: BreakGlassConfig,
}

/// `[break_glass]`: how loud break-glass runs are and how often one person may use it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BreakGlassConfig {
    /// Slack mention put on every break-glass card, e.g. `<!here>` or `<!subteam^S0123ABCD>`; none by default.
    #[serde(default)]
    pub mention: Option<String>,
    /// Break-glass runs per person per UTC day.
    #[serde(default = "default_break_glass_daily_limit")]
    pub daily_limit: u32,
    /// How long a break-glass run may stay unreviewed before the sweeper raises an alert.
    #[serde(default = "default_break_glass_review_within", with = "humantime_serde")]
    pub review_within: Duration,
}

fn default_break_glass_daily_limit() -> u32 {
    2
}
fn default_break_glass_review_within() -> Duration {
    Duration::from_secs(30 * 60)
}

/// `[audit]`: checkpoints of the audit chain's head in an S3 bucket with Object Lock (see `audit::anchor`).
/// Optional: without a bucket jitgate writes no checkpoints and `jitgate audit verify` says the chain is unanchored.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// The bucket (versioning and Object Lock enabled) that receives `checkpoints/<seq>.json`.
    #[serde(default)]
    pub checkpoint_bucket: Option<String>,
    /// How often a replica checkpoints the head (when it moved since its last checkpoint).
    #[serde(default = "default_checkpoint_every", with = "humantime_serde")]
    pub checkpoint_every: Duration,
    /// How long each checkpoint is locked in compliance mode: nobody, the account's root included, can delete it
    /// or shorten that before it passes.
    #[serde(default = "default_checkpoint_retention", with = "humantime_serde")]
    pub checkpoint_retention: Duration,
}

/// `[slack]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackConfig {
    /// Channel id (C… or G…) where approval cards are posted. Required by `jitgate run`.
    #[serde(default)]
    pub approval_channel: Option<String>,
    /// Socket-mode connections to keep open (Slack spreads envelopes over them).
    #[serde(default = "default_connections")]
    pub connections: u32,
    /// How often the sweeper expires overdue requests and posts half-way reminders.
    #[serde(default = "default_sweep_interval", with = "humantime_serde")]
    pub sweep_interval: Duration,
}

/// `[oncall]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OnCallConfig {
    /// How long a PagerDuty answer is reused.
    #[serde(default = "default_oncall_cache_ttl", with = "humantime_serde")]
    pub cache_ttl: Duration,
    /// How old a cached answer may be and still be used while PagerDuty cannot be reached (at most 5m).
    #[serde(default = "default_oncall_max_staleness", with = "humantime_serde")]
    pub max_staleness: Duration,
    /// Deepest escalation level that may approve through an escalation policy (1 = first responders).
    #[serde(default = "default_max_escalation_level")]
    pub max_escalation_level: u32,
    /// Email of the PagerDuty user jitgate writes incident notes as (PagerDuty's `From` header). Without it no
    /// notes are added to incidents named with `--incident`.
    #[serde(default)]
    pub incident_notes_from: Option<String>,
    /// For teams without PagerDuty: schedule id → Slack user ids who count as on call for it.
    #[serde(default)]
    pub static_roster: BTreeMap<String, Vec<String>>,
}

/// `[http]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Base URL of jitgate's HTTP server as users reach it; links to audit pages start with it.
    #[serde(default = "default_public_url")]
    pub public_url: String,
    /// Address of the public listener: the signed audit pages (and `/healthz`).
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Address of the operations listener: `/healthz`, `/readyz` and `/metrics`, for probes and Prometheus only.
    #[serde(default = "default_operations_listen")]
    pub operations_listen: SocketAddr,
    /// A connection must send a complete request head within this time, or it is closed.
    #[serde(default = "default_header_read_timeout", with = "humantime_serde")]
    pub header_read_timeout: Duration,
    /// Longest time one request may take to be answered (408 after it).
    #[serde(default = "default_request_timeout", with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Connections the public listener keeps open at once; past it new ones wait to be accepted.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// How long a signed audit page link posted in Slack stays valid.
    #[serde(default = "default_audit_link_ttl", with = "humantime_serde")]
    pub audit_link_ttl: Duration,
}

/// `[runbooks]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunbooksConfig {
    /// Folder of `*.yaml` runbooks, relative to the config file.
    #[serde(default = "default_runbook_dir")]
    pub dir: PathBuf,
    /// Approval window for runbooks that do not set `approval.ttl`.
    #[serde(default = "default_approval_ttl", with = "humantime_serde")]
    pub default_approval_ttl: Duration,
}

/// `[aws]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsConfig {
    /// Region of the runbooks' tables (used in their ARNs). Falls back to `AWS_REGION` / `AWS_DEFAULT_REGION`.
    #[serde(default)]
    pub region: Option<String>,
    /// DynamoDB table of the audit trail, written with jitgate's own credentials.
    #[serde(default = "default_audit_table")]
    pub audit_table: String,
    /// `[aws.timeouts]`: bounds on every AWS call.
    #[serde(default = "default_section")]
    pub timeouts: AwsTimeouts,
}

/// `[aws.timeouts]`: how long an AWS call may wait for an answer. Without them a server that accepts the connection
/// and never answers would hold a request (and the user) forever; with them the call fails as timed out, the
/// request ends Failed (`aws_timed_out`, or `audit_unavailable` for the audit table) and nothing runs later.
///
/// `attempt` bounds each try of one call (the SDK retries a timed-out try, as any transient error, within its
/// usual three attempts); `operation` bounds the call with all its tries. The `sts`, `dynamodb` (the approved
/// queries, each page one call) and `audit` (the audit table) tables may override either for their client; the
/// checkpoint bucket and `jitgate check --live` use the general pair.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwsTimeouts {
    #[serde(default = "default_aws_attempt_timeout", with = "humantime_serde")]
    pub attempt: Duration,
    #[serde(default = "default_aws_operation_timeout", with = "humantime_serde")]
    pub operation: Duration,
    #[serde(default)]
    pub sts: ClientTimeouts,
    #[serde(default)]
    pub dynamodb: ClientTimeouts,
    #[serde(default)]
    pub audit: ClientTimeouts,
}

/// One client's overrides of `[aws.timeouts]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientTimeouts {
    #[serde(default, with = "humantime_serde")]
    pub attempt: Option<Duration>,
    #[serde(default, with = "humantime_serde")]
    pub operation: Option<Duration>,
}

/// The AWS clients whose timeouts can be set apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AwsClient {
    /// Everything else: the checkpoint bucket, `jitgate check --live`, `jitgate audit …`.
    General,
    Sts,
    DynamoDb,
    Audit,
}

/// The timeouts one client uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallTimeouts {
    pub attempt: Duration,
    pub operation: Duration,
}

impl AwsTimeouts {
    /// `client`'s timeouts: its own where set, else the general ones.
    pub fn of(&self, client: AwsClient) -> CallTimeouts {
        let general = ClientTimeouts::default();
        let own = match client {
            AwsClient::General => &general,
            AwsClient::Sts => &self.sts,
            AwsClient::DynamoDb => &self.dynamodb,
            AwsClient::Audit => &self.audit,
        };
        CallTimeouts {
            attempt: own.attempt.unwrap_or(self.attempt),
            operation: own.operation.unwrap_or(self.operation),
        }
    }
}

/// `[redis]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisConfig {
    /// Prefix of every key jitgate writes, so several deployments can share one Redis.
    #[serde(default = "default_key_prefix")]
    pub key_prefix: String,
    /// How long finished requests stay readable (`/jit status`).
    #[serde(default = "default_finished_retention", with = "humantime_serde")]
    pub finished_retention: Duration,
    /// How long an expired pending request is kept so the sweeper can close its card and audit the expiry.
    #[serde(default = "default_pending_grace", with = "humantime_serde")]
    pub pending_grace: Duration,
    /// Bound on a single Redis command, so an unreachable Redis is an error, not a hang.
    #[serde(default = "default_redis_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// `REDIS_URL` lists the seed nodes of a Redis Cluster, comma-separated (`redis://h1:7000,redis://h2:7001`).
    #[serde(default)]
    pub cluster: bool,
    /// CA certificates (PEM) to trust for `rediss://` instead of the OS roots, for a Redis behind a private CA.
    /// Relative to the config file's folder; `REDIS_CA_FILE` when not set here.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

/// `[requests]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestsConfig {
    /// New requests one user may make per `per_user_window`.
    #[serde(default = "default_per_user_limit")]
    pub per_user_limit: u32,
    #[serde(default = "default_per_user_window", with = "humantime_serde")]
    pub per_user_window: Duration,
    /// On SIGTERM, how long running queries may take to finish before they are failed as interrupted.
    #[serde(default = "default_shutdown_drain", with = "humantime_serde")]
    pub shutdown_drain: Duration,
}

/// The file as written: every section optional, unknown keys rejected.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default = "default_section")]
    runbooks: RunbooksConfig,
    #[serde(default = "default_section")]
    aws: AwsConfig,
    #[serde(default = "default_section")]
    redis: RedisConfig,
    #[serde(default = "default_section")]
    requests: RequestsConfig,
    #[serde(default = "default_section")]
    slack: SlackConfig,
    #[serde(default = "default_section")]
    oncall: OnCallConfig,
    #[serde(default = "default_section")]
    http: HttpConfig,
    #[serde(default = "default_section")]
    audit: AuditConfig,
    #[serde(default = "default_section")]
    break_glass: BreakGlassConfig,
}

/// An empty section takes every field's default.
fn default_section<T: serde::de::DeserializeOwned>() -> T {
    toml::from_str("").expect("every field of a config section has a default")
}

fn default_checkpoint_every() -> Duration {
    Duration::from_secs(15 * 60)
}
fn default_checkpoint_retention() -> Duration {
    Duration::from_secs(400 * 24 * 3600)
}
fn default_runbook_dir() -> PathBuf {
    PathBuf::from("runbooks")
}
fn default_approval_ttl() -> Duration {
    Duration::from_secs(30 * 60)
}
fn default_audit_table() -> String {
    "jitgate-audit".to_owned()
}
fn default_aws_attempt_timeout() -> Duration {
    Duration::from_secs(5)
}
fn default_aws_operation_timeout() -> Duration {
    Duration::from_secs(15)
}
fn default_key_prefix() -> String {
    "jitgate".to_owned()
}
fn default_finished_retention() -> Duration {
    Duration::from_secs(30 * 24 * 3600)
}
fn default_pending_grace() -> Duration {
    Duration::from_secs(3600)
}
fn default_redis_timeout() -> Duration {
    Duration::from_secs(2)
}
fn default_per_user_limit() -> u32 {
    10
}
fn default_per_user_window() -> Duration {
    Duration::from_secs(3600)
}
fn default_connections() -> u32 {
    2
}
fn default_shutdown_drain() -> Duration {
    Duration::from_secs(30)
}

fn default_sweep_interval() -> Duration {
    Duration::from_secs(15)
}
fn default_oncall_cache_ttl() -> Duration {
    Duration::from_secs(60)
}
fn default_oncall_max_staleness() -> Duration {
    Duration::from_secs(180)
}
fn default_max_escalation_level() -> u32 {
    1
}
fn default_public_url() -> String {
    "http://127.0.0.1:8080".to_owned()
}
fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}
fn default_operations_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9090))
}
fn default_header_read_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_request_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_max_connections() -> usize {
    1024
}
fn default_audit_link_ttl() -> Duration {
    Duration::from_secs(30 * 24 * 3600)
}

impl Config {
    /// The config path: `JITGATE_CONFIG`, else `jitgate.toml`.
    pub fn path_from(env: &Environment) -> PathBuf {
        PathBuf::from(env.get("JITGATE_CONFIG").unwrap_or(DEFAULT_CONFIG_PATH))
    }

    /// Reads and validates the file at `path`, completing it from `env`.
    pub fn load(path: &Path, env: &Environment) -> Result<Config, Vec<ConfigError>> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            vec![error(
                path,
                "(file)",
                format!("cannot read it: {e}"),
                "create it from jitgate.example.toml, or point JITGATE_CONFIG at it",
            )]
        })?;
        Config::parse(path, &text, env)
    }

    /// Parses and validates config text (as if read from `path`).
    pub fn parse(path: &Path, text: &str, env: &Environment) -> Result<Config, Vec<ConfigError>> {
        let file: ConfigFile = toml::from_str(text).map_err(|e| vec![toml_error(path, text, &e)])?;
        let mut errors = Vec::new();
        let mut config = Config {
            path: path.to_owned(),
            runbooks: file.runbooks,
            aws: file.aws,
            redis: file.redis,
            requests: file.requests,
            slack: file.slack,
            oncall: file.oncall,
            http: file.http,
            audit: file.audit,
            break_glass: file.break_glass,
        };
        if config.aws.region.is_none() {
            config.aws.region = env.get("AWS_REGION").or_else(|| env.get("AWS_DEFAULT_REGION")).map(str::to_owned);
        }
        config.redis.ca_file = match config.redis.ca_file.take() {
            Some(file) => Some(path.parent().unwrap_or(Path::new(".")).join(file)),
            None => env.get("REDIS_CA_FILE").map(PathBuf::from),
        };
        config.validate(&mut errors);
        if errors.is_empty() { Ok(config) } else { Err(errors) }
    }

    /// The runbook folder, resolved against the config file's folder.
    pub fn runbook_dir(&self) -> PathBuf {
        let base = self.path.parent().unwrap_or(Path::new("."));
        base.join(&self.runbooks.dir)
    }

    /// The region, known to be set after validation.
    pub fn region(&self) -> &str {
        self.aws.region.as_deref().unwrap_or_default()
    }

    fn validate(&self, errors: &mut Vec<ConfigError>) {
        let path = &self.path;
        let mut check = |ok: bool, key: &str, problem: String, fix: &str| {
            if !ok {
                errors.push(error(path, key, problem, fix));
            }
        };
        let ttl = self.runbooks.default_approval_ttl;
        check(
            (Duration::from_secs(60)..=Duration::from_secs(24 * 3600)).contains(&ttl),
            "runbooks.default_approval_ttl",
            format!("{} is outside 1m..24h", humantime::format_duration(ttl)),
            "use a window an approver can act in, e.g. \"30m\"",
        );
        match &self.aws.region {
            None => check(
                false,
                "aws.region",
                "no region is set".into(),
                "set aws.region (e.g. \"eu-west-1\") or AWS_REGION",
            ),
            Some(region) => check(
                is_region(region),
                "aws.region",
                format!("`{region}` is not an AWS region name"),
                "use a region like \"eu-west-1\"",
            ),
        }
        check(
            is_table_name(&self.aws.audit_table),
            "aws.audit_table",
            format!("`{}` is not a valid DynamoDB table name", self.aws.audit_table),
            "use 3-255 characters from a-z, A-Z, 0-9, '_', '-', '.'",
        );
        for (client, key) in [
            (AwsClient::General, "aws.timeouts"),
            (AwsClient::Sts, "aws.timeouts.sts"),
            (AwsClient::DynamoDb, "aws.timeouts.dynamodb"),
            (AwsClient::Audit, "aws.timeouts.audit"),
        ] {
            let CallTimeouts { attempt, operation } = self.aws.timeouts.of(client);
            check(
                (Duration::from_millis(100)..=Duration::from_secs(60)).contains(&attempt),
                &format!("{key}.attempt"),
                format!("{} is outside 100ms..60s", humantime::format_duration(attempt)),
                "use \"5s\" (the default): an AWS call normally answers in milliseconds",
            );
            // An approved run holds 15-minute credentials; one call may not eat a sizeable part of that.
            check(
                (attempt..=Duration::from_secs(300)).contains(&operation),
                &format!("{key}.operation"),
                format!(
                    "{} is not between its attempt timeout ({}) and 5m",
                    humantime::format_duration(operation),
                    humantime::format_duration(attempt)
                ),
                "use \"15s\" (the default): room for the SDK's three attempts",
            );
        }
        let prefix_ok = !self.redis.key_prefix.is_empty()
            && self.redis.key_prefix.len() <= 64
            && self.redis.key_prefix.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
        check(
            prefix_ok,
            "redis.key_prefix",
            format!("`{}` is not a usable key prefix", self.redis.key_prefix),
            "use up to 64 letters, digits, '-', '_', '.', ':' (no braces: they are Redis Cluster hash tags)",
        );
        check(
            self.redis.finished_retention >= Duration::from_secs(3600),
            "redis.finished_retention",
            format!("{} is shorter than an hour", humantime::format_duration(self.redis.finished_retention)),
            "keep finished requests at least \"1h\" so /jit status can still answer",
        );
        // The sweeper must find an expired request before Redis drops it, or its card would say "pending" forever.
        check(
            self.redis.pending_grace >= Duration::from_secs(60),
            "redis.pending_grace",
            format!(
                "{} leaves the sweeper no time to close expired cards",
                humantime::format_duration(self.redis.pending_grace)
            ),
            "use at least \"1m\" (default \"1h\")",
        );
        check(
            (Duration::from_millis(100)..=Duration::from_secs(30)).contains(&self.redis.timeout),
            "redis.timeout",
            format!("{} is outside 100ms..30s", humantime::format_duration(self.redis.timeout)),
            "use a bound like \"2s\"",
        );
        if let Some(channel) = &self.slack.approval_channel {
            check(
                is_channel_id(channel),
                "slack.approval_channel",
                format!("`{channel}` is not a channel id"),
                "use the channel's id (C… or G…, from the channel's details in Slack), not its name",
            );
        }
        check(
            (1..=10).contains(&self.slack.connections),
            "slack.connections",
            format!("{} is outside 1..10 (Slack allows up to 10 socket connections)", self.slack.connections),
            "use 2 (the default) for redundancy",
        );
        check(
            (Duration::from_secs(1)..=Duration::from_secs(300)).contains(&self.slack.sweep_interval),
            "slack.sweep_interval",
            format!("{} is outside 1s..5m", humantime::format_duration(self.slack.sweep_interval)),
            "use \"15s\" so expired cards close promptly",
        );
        check(
            self.oncall.max_staleness <= Duration::from_secs(300),
            "oncall.max_staleness",
            format!("{} is longer than approvals accept (5m)", humantime::format_duration(self.oncall.max_staleness)),
            "use at most \"5m\"; an older on-call list is not trusted",
        );
        check(
            !self.oncall.cache_ttl.is_zero() && self.oncall.cache_ttl <= self.oncall.max_staleness,
            "oncall.cache_ttl",
            format!(
                "{} must be above zero and at most oncall.max_staleness",
                humantime::format_duration(self.oncall.cache_ttl)
            ),
            "use \"60s\"",
        );
        check(
            self.oncall.max_escalation_level >= 1,
            "oncall.max_escalation_level",
            "0 admits nobody".to_owned(),
            "use 1 for first responders",
        );
        check(
            (1..=20).contains(&self.break_glass.daily_limit),
            "break_glass.daily_limit",
            format!("{} is outside 1..20", self.break_glass.daily_limit),
            "use 2 (the default): break-glass is for emergencies",
        );
        check(
            (Duration::from_secs(60)..=Duration::from_secs(24 * 3600)).contains(&self.break_glass.review_within),
            "break_glass.review_within",
            format!("{} is outside 1m..24h", humantime::format_duration(self.break_glass.review_within)),
            "use \"30m\" (the default)",
        );
        if let Some(mention) = &self.break_glass.mention {
            let known = ["<!here>", "<!channel>"].contains(&mention.as_str())
                || (mention.starts_with("<!subteam^") || mention.starts_with("<@")) && mention.ends_with('>');
            check(
                known,
                "break_glass.mention",
                format!("`{mention}` is not a Slack mention"),
                "use \"<!here>\", \"<!channel>\", a user group as \"<!subteam^S0123ABCD>\" or a user as \"<@U0123ABCD>\"",
            );
        }
        if let Some(from) = &self.oncall.incident_notes_from {
            check(
                from.split_once('@').is_some_and(|(user, domain)| !user.is_empty() && domain.contains('.')),
                "oncall.incident_notes_from",
                format!("`{from}` is not an email address"),
                "use the email of the PagerDuty user jitgate acts as, e.g. \"jitgate@example.com\"",
            );
        }
        for (schedule, users) in &self.oncall.static_roster {
            let bad: Vec<&String> = users.iter().filter(|u| crate::ids::SlackUserId::parse(u).is_none()).collect();
            check(
                !users.is_empty() && bad.is_empty(),
                &format!("oncall.static_roster.{schedule}"),
                if users.is_empty() { "lists nobody".to_owned() } else { format!("{bad:?} are not Slack user ids") },
                "list Slack user ids like \"U012AB3CD\"",
            );
        }
        check(
            self.http.public_url.starts_with("http://") || self.http.public_url.starts_with("https://"),
            "http.public_url",
            format!("`{}` is not an http(s) URL", self.http.public_url),
            "use the URL people open jitgate's pages at, e.g. \"https://jitgate.example.com\"",
        );
        check(
            (Duration::from_secs(60)..=Duration::from_secs(365 * 24 * 3600)).contains(&self.http.audit_link_ttl),
            "http.audit_link_ttl",
            format!("{} is outside 1m..365d", humantime::format_duration(self.http.audit_link_ttl)),
            "use \"30d\" (the default): long enough to follow up an incident, short enough to age out",
        );
        check(
            (Duration::from_millis(100)..=Duration::from_secs(60)).contains(&self.http.header_read_timeout),
            "http.header_read_timeout",
            format!("{} is outside 100ms..60s", humantime::format_duration(self.http.header_read_timeout)),
            "use \"10s\" (the default): real clients send their headers at once",
        );
        check(
            (Duration::from_secs(1)..=Duration::from_secs(300)).contains(&self.http.request_timeout),
            "http.request_timeout",
            format!("{} is outside 1s..5m", humantime::format_duration(self.http.request_timeout)),
            "use \"30s\" (the default): an audit page reads a few DynamoDB items",
        );
        check(
            (16..=65_536).contains(&self.http.max_connections),
            "http.max_connections",
            format!("{} is outside 16..65536", self.http.max_connections),
            "use 1024 (the default), below the process's file descriptor limit",
        );
        check(
            self.http.listen.port() == 0
                || self.http.listen.port() != self.http.operations_listen.port()
                || self.http.listen.ip() != self.http.operations_listen.ip(),
            "http.operations_listen",
            format!("{} is also http.listen", self.http.operations_listen),
            "give probes and metrics their own port, e.g. \"0.0.0.0:9090\", reachable only inside the cluster",
        );
        check(
            (1..=1000).contains(&self.requests.per_user_limit),
            "requests.per_user_limit",
            format!("{} is outside 1..1000", self.requests.per_user_limit),
            "allow a handful of requests, e.g. 10",
        );
        check(
            (Duration::from_secs(60)..=Duration::from_secs(7 * 24 * 3600)).contains(&self.requests.per_user_window),
            "requests.per_user_window",
            format!("{} is outside 1m..7d", humantime::format_duration(self.requests.per_user_window)),
            "use a window like \"1h\"",
        );
        if let Some(bucket) = &self.audit.checkpoint_bucket {
            check(
                crate::audit::valid_bucket_name(bucket),
                "audit.checkpoint_bucket",
                format!("`{bucket}` is not an S3 bucket name"),
                "use the bucket from the template's CheckpointBucketName output, e.g. \"jitgate-audit-checkpoints-123456789012\"",
            );
        }
        check(
            (Duration::from_secs(60)..=Duration::from_secs(24 * 3600)).contains(&self.audit.checkpoint_every),
            "audit.checkpoint_every",
            format!("{} is outside 1m..24h", humantime::format_duration(self.audit.checkpoint_every)),
            "use \"15m\" (the default): entries after the last checkpoint are what a stolen bot role can still rewrite",
        );
        check(
            (Duration::from_secs(24 * 3600)..=Duration::from_secs(100 * 365 * 24 * 3600))
                .contains(&self.audit.checkpoint_retention),
            "audit.checkpoint_retention",
            format!("{} is outside 1d..100y", humantime::format_duration(self.audit.checkpoint_retention)),
            "use at least as long as you keep the audit table, e.g. \"400d\" (the default)",
        );
        // Kubernetes kills the pod terminationGracePeriodSeconds after SIGTERM; the drain must end well before.
        check(
            self.requests.shutdown_drain <= Duration::from_secs(300),
            "requests.shutdown_drain",
            format!("{} is longer than 5m", humantime::format_duration(self.requests.shutdown_drain)),
            "use \"30s\" (the default) and keep it below the orchestrator's kill deadline",
        );
    }
}

/// Secrets and endpoints that only come from the environment; needed by `jitgate run` (and `jitgate check
/// --secrets`, which checks them with [`Secrets::require_for_run`]), not by plain `jitgate check`.
#[derive(Debug, Clone)]
pub struct Secrets {
    /// `REDIS_URL`: a secret because it may carry a password.
    pub redis_url: SecretString,
    /// `SLACK_APP_TOKEN` (xapp-…), for socket mode.
    pub slack_app_token: Option<SecretString>,
    /// `SLACK_BOT_TOKEN` (xoxb-…), for the Web API.
    pub slack_bot_token: Option<SecretString>,
    /// `SLACK_API_URL`.
    pub slack_api_url: String,
    /// `PAGERDUTY_API_TOKEN`.
    pub pagerduty_token: Option<SecretString>,
    /// `PAGERDUTY_API_URL`.
    pub pagerduty_api_url: String,
    /// `JITGATE_LINK_SECRET`: the HMAC key of signed audit page links (see `links`). Required by `jitgate run`.
    pub link_secret: Option<SecretString>,
}

/// Default Slack Web API base.
pub const DEFAULT_SLACK_API_URL: &str = "https://slack.com/api";
/// Default PagerDuty REST API base.
pub const DEFAULT_PAGERDUTY_API_URL: &str = "https://api.pagerduty.com";

impl Secrets {
    pub fn from_env(env: &Environment) -> Secrets {
        let secret = |name: &str| env.get(name).map(|v| SecretString::from(v.to_owned()));
        Secrets {
            redis_url: SecretString::from(env.get("REDIS_URL").unwrap_or(DEFAULT_REDIS_URL).to_owned()),
            slack_app_token: secret("SLACK_APP_TOKEN"),
            slack_bot_token: secret("SLACK_BOT_TOKEN"),
            slack_api_url: env.get("SLACK_API_URL").unwrap_or(DEFAULT_SLACK_API_URL).to_owned(),
            pagerduty_token: secret("PAGERDUTY_API_TOKEN"),
            pagerduty_api_url: env.get("PAGERDUTY_API_URL").unwrap_or(DEFAULT_PAGERDUTY_API_URL).to_owned(),
            link_secret: secret(crate::links::LINK_SECRET_ENV),
        }
    }
}

impl Config {
    /// The approval channel, which a file may leave out (`jitgate audit …` does not need it) but `jitgate run`
    /// cannot do without: cards would have nowhere to go. `jitgate run` and `jitgate check` both call this.
    pub fn approval_channel_for_run(&self) -> Result<&str, ConfigError> {
        self.slack.approval_channel.as_deref().ok_or_else(|| {
            error(
                &self.path,
                "slack.approval_channel",
                "is not set",
                "set it to the id (C… or G…) of the channel where approval cards go, and invite the app there \
                 (/invite @jitgate)",
            )
        })
    }
}

/// A variable `jitgate run` needs from the environment that is missing or unusable. The text names the variable
/// and the fix, never the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvError {
    pub variable: &'static str,
    pub message: String,
}

impl EnvError {
    fn new(variable: &'static str, problem: &str, fix: &str) -> EnvError {
        EnvError { variable, message: format!("{variable} {problem} — {fix}") }
    }
}

impl fmt::Display for EnvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for EnvError {}

/// The secrets `jitgate run` cannot start without, known to be present and usable.
#[derive(Debug, Clone)]
pub struct RunSecrets {
    pub slack_app_token: SecretString,
    pub slack_bot_token: SecretString,
    pub link_secret: SecretString,
}

impl Secrets {
    /// Checks everything `jitgate run` needs from the environment, before it connects anywhere, and reports every
    /// problem at once. `needs_pagerduty`: some runbook takes approvers from PagerDuty that `[oncall.static_roster]`
    /// does not cover (see `app::pagerduty_required`), so `PAGERDUTY_API_TOKEN` is required. `jitgate run` calls
    /// this at start and `jitgate check --secrets` calls it too, with the same messages.
    pub fn require_for_run(&self, needs_pagerduty: bool) -> Result<RunSecrets, Vec<EnvError>> {
        let mut errors = Vec::new();
        // The two Slack tokens are easy to swap; each is refused in the other's place before Slack is asked.
        let app_token = match &self.slack_app_token {
            None => {
                errors.push(EnvError::new(
                    "SLACK_APP_TOKEN",
                    "is not set",
                    "create an app-level token (xapp-…) with connections:write",
                ));
                None
            }
            Some(token) if !token.expose_secret().trim().starts_with("xapp-") => {
                errors.push(EnvError::new(
                    "SLACK_APP_TOKEN",
                    "is not an app-level token (xapp-…)",
                    "create one under Basic Information → App-Level Tokens with connections:write; the bot token \
                     (xoxb-…) belongs in SLACK_BOT_TOKEN",
                ));
                None
            }
            Some(token) => Some(token.clone()),
        };
        let bot_token = match &self.slack_bot_token {
            None => {
                errors.push(EnvError::new(
                    "SLACK_BOT_TOKEN",
                    "is not set",
                    "install the app and copy its bot token (xoxb-…)",
                ));
                None
            }
            Some(token) if !token.expose_secret().trim().starts_with("xoxb-") => {
                errors.push(EnvError::new(
                    "SLACK_BOT_TOKEN",
                    "is not a bot token (xoxb-…)",
                    "use the app's Bot User OAuth Token (Install App); the app-level token (xapp-…) belongs in \
                     SLACK_APP_TOKEN",
                ));
                None
            }
            Some(token) => Some(token.clone()),
        };
        // Audit pages are only served through signed links: without a key there would be no safe way to serve them.
        let link_secret = match &self.link_secret {
            None => {
                errors.push(EnvError::new(
                    crate::links::LINK_SECRET_ENV,
                    "is not set",
                    "it signs the audit page links posted in Slack; make one with `openssl rand -hex 32`",
                ));
                None
            }
            Some(secret) => match crate::links::check_secret(secret) {
                Ok(()) => Some(secret.clone()),
                Err(message) => {
                    errors.push(EnvError { variable: crate::links::LINK_SECRET_ENV, message });
                    None
                }
            },
        };
        if needs_pagerduty && self.pagerduty_token.is_none() {
            errors.push(EnvError::new(
                "PAGERDUTY_API_TOKEN",
                "is not set, but runbooks name PagerDuty schedules or escalation policies",
                "set it, or list those schedules under [oncall.static_roster]",
            ));
        }
        // Parsing only; whether Redis answers is for start-up (and /readyz) to find out. The URL may hold a
        // password, so neither it nor the parser's message (which can quote it) is repeated.
        // A Redis Cluster's seeds are several URLs separated by commas.
        let urls = self.redis_url.expose_secret().split(',').map(str::trim);
        if urls.clone().any(|url| redis::IntoConnectionInfo::into_connection_info(url).is_err()) {
            errors.push(EnvError::new(
                "REDIS_URL",
                "is not a valid Redis URL",
                "use redis://host:6379 (rediss:// for TLS), with the user and password in the URL if Redis needs \
                 them; for a Redis Cluster, seed URLs separated by commas",
            ));
        }
        match (app_token, bot_token, link_secret) {
            (Some(slack_app_token), Some(slack_bot_token), Some(link_secret)) if errors.is_empty() => {
                Ok(RunSecrets { slack_app_token, slack_bot_token, link_secret })
            }
            _ => Err(errors),
        }
    }
}

fn error(path: &Path, key: &str, problem: impl Into<String>, fix: &str) -> ConfigError {
    ConfigError { file: path.to_owned(), key: key.to_owned(), problem: problem.into(), fix: fix.to_owned() }
}

/// Turns a TOML error into one that names the key and line.
fn toml_error(path: &Path, text: &str, err: &toml::de::Error) -> ConfigError {
    let line = err
        .span()
        .map(|span| text.as_bytes()[..span.start.min(text.len())].iter().filter(|&&b| b == b'\n').count() + 1);
    let key = match line {
        Some(line) => format!("line {line}"),
        None => "(file)".to_owned(),
    };
    let message = err.message().to_owned();
    let fix = if message.contains("unknown field") {
        "remove or correct the key; every key is documented in jitgate.example.toml"
    } else {
        "fix the value; every key is documented in jitgate.example.toml"
    };
    error(path, &key, message, fix)
}

fn is_region(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() >= 3
        && parts.iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()))
        && parts.last().is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit()))
}

fn is_channel_id(s: &str) -> bool {
    s.len() >= 3
        && s.len() <= 32
        && matches!(s.as_bytes()[0], b'C' | b'G')
        && s.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

fn is_table_name(s: &str) -> bool {
    (3..=255).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, Vec<ConfigError>> {
        Config::parse(Path::new("jitgate.toml"), text, &Environment::default())
    }

    fn first_error(text: &str) -> String {
        parse(text).unwrap_err()[0].to_string()
    }

    #[test]
    fn checkpoints_are_optional_and_their_settings_checked() {
        let base = "[aws]\nregion = \"us-east-1\"\n";
        let config = parse(base).unwrap();
        assert_eq!(config.audit.checkpoint_bucket, None, "no bucket: jitgate runs unanchored, as before");
        let config = parse(&format!("{base}[audit]\ncheckpoint_bucket = \"jitgate-checkpoints-1\"\n")).unwrap();
        assert_eq!(config.audit.checkpoint_bucket.as_deref(), Some("jitgate-checkpoints-1"));
        assert_eq!(config.audit.checkpoint_every, Duration::from_secs(900));
        let err = first_error(&format!("{base}[audit]\ncheckpoint_bucket = \"Not_A_Bucket\"\n"));
        assert!(err.contains("audit.checkpoint_bucket"), "{err}");
        let err = first_error(&format!("{base}[audit]\ncheckpoint_retention = \"1h\"\n"));
        assert!(err.contains("audit.checkpoint_retention"), "{err}");
        let err = first_error(&format!("{base}[audit]\ncheckpoint_every = \"10s\"\n"));
        assert!(err.contains("audit.checkpoint_every"), "{err}");
    }

    #[test]
    fn aws_timeouts_have_defaults_per_client_overrides_and_bounds() {
        let base = "[aws]\nregion = \"us-east-1\"\n";
        let config = parse(base).unwrap();
        let default = CallTimeouts { attempt: Duration::from_secs(5), operation: Duration::from_secs(15) };
        for client in [AwsClient::General, AwsClient::Sts, AwsClient::DynamoDb, AwsClient::Audit] {
            assert_eq!(config.aws.timeouts.of(client), default, "{client:?}");
        }
        let text = format!("{base}[aws.timeouts]\nattempt = \"2s\"\n[aws.timeouts.dynamodb]\noperation = \"1m\"\n");
        let timeouts = parse(&text).unwrap().aws.timeouts;
        assert_eq!(
            timeouts.of(AwsClient::Sts),
            CallTimeouts { attempt: Duration::from_secs(2), operation: Duration::from_secs(15) }
        );
        assert_eq!(timeouts.of(AwsClient::DynamoDb).operation, Duration::from_secs(60));
        let err = first_error(&format!("{base}[aws.timeouts.sts]\nattempt = \"20s\"\n"));
        assert!(
            err.contains("aws.timeouts.sts.operation: 15s is not between its attempt timeout (20s) and 5m"),
            "{err}"
        );
        let err = first_error(&format!("{base}[aws.timeouts]\nattempt = \"0s\"\n"));
        assert!(err.contains("aws.timeouts.attempt: 0s is outside 100ms..60s"), "{err}");
        let err = first_error(&format!("{base}[aws.timeouts.audit]\ntimeout = \"1s\"\n"));
        assert!(err.contains("unknown field `timeout`"), "{err}");
    }

    #[test]
    fn break_glass_and_incident_note_settings_are_checked() {
        let base = "[aws]\nregion = \"us-east-1\"\n";
        let config = parse(base).unwrap();
        assert_eq!((config.break_glass.daily_limit, config.break_glass.mention), (2, None));
        assert_eq!(config.break_glass.review_within, Duration::from_secs(1800));
        for mention in ["<!here>", "<!channel>", "<!subteam^S0123ABCD>", "<@U0123ABCD>"] {
            parse(&format!("{base}[break_glass]\nmention = \"{mention}\"\n")).unwrap();
        }
        let err = first_error(&format!("{base}[break_glass]\nmention = \"@here\"\n"));
        assert!(err.contains("break_glass.mention"), "{err}");
        let err = first_error(&format!("{base}[break_glass]\ndaily_limit = 0\n"));
        assert!(err.contains("break_glass.daily_limit"), "{err}");
        let err = first_error(&format!("{base}[break_glass]\nreview_within = \"10s\"\n"));
        assert!(err.contains("break_glass.review_within"), "{err}");
        let err = first_error(&format!("{base}[oncall]\nincident_notes_from = \"jitgate\"\n"));
        assert!(err.contains("oncall.incident_notes_from"), "{err}");
    }

    #[test]
    fn the_shipped_example_is_valid() {
        let text = include_str!("../jitgate.example.toml");
        let config = parse(text).unwrap();
        assert_eq!(config.region(), "us-east-1");
        assert_eq!(config.runbooks.default_approval_ttl, Duration::from_secs(1800));
    }

    #[test]
    fn the_dev_config_is_valid_with_what_make_dev_adds() {
        let added = "\n[slack]\napproval_channel = \"C0123ABCD\"\n[http]\nlisten = \"127.0.0.1:8080\"\n\
                     [oncall.static_roster]\nPORDERS1 = [\"U0AAA1\"]\n";
        let config = parse(&format!("{}{added}", include_str!("../jitgate.dev.toml"))).unwrap();
        assert_eq!((config.region(), config.redis.key_prefix.as_str()), ("us-east-1", "jitgate-dev"));
    }

    #[test]
    fn defaults_fill_an_almost_empty_file() {
        let config = parse("[aws]\nregion = \"eu-west-1\"\n").unwrap();
        assert_eq!(config.aws.audit_table, "jitgate-audit");
        assert_eq!(config.redis.key_prefix, "jitgate");
        assert_eq!(config.runbook_dir(), PathBuf::from("runbooks"));
        assert_eq!(config.requests.per_user_limit, 10);
        assert_eq!(config.http.listen, SocketAddr::from(([127, 0, 0, 1], 8080)));
        assert_eq!(config.http.audit_link_ttl, Duration::from_secs(30 * 24 * 3600));
    }

    #[test]
    fn region_falls_back_to_the_environment() {
        let env = Environment::from_pairs([("AWS_REGION", "eu-central-1")]);
        let config = Config::parse(Path::new("x/jitgate.toml"), "", &env).unwrap();
        assert_eq!(config.region(), "eu-central-1");
        assert_eq!(config.runbook_dir(), PathBuf::from("x/runbooks"));
        assert!(first_error("").contains("aws.region: no region is set — set aws.region"));
    }

    #[test]
    fn unknown_keys_are_named_with_their_line() {
        let err = first_error("[aws]\nregion = \"us-east-1\"\naudit_tabel = \"x\"\n");
        assert!(
            err.starts_with(
                "jitgate.toml: line 3: unknown field `audit_tabel`, expected one of `region`, `audit_table`, `timeouts`"
            ),
            "{err}"
        );
        assert!(err.contains("jitgate.example.toml"), "{err}");
    }

    #[test]
    fn bad_durations_and_values_name_key_and_fix() {
        let cases = [
            ("[runbooks]\ndefault_approval_ttl = \"10s\"", "runbooks.default_approval_ttl: 10s is outside 1m..24h"),
            ("[runbooks]\ndefault_approval_ttl = \"soon\"", "line 2"),
            ("[aws]\nregion = \"Europe\"", "aws.region: `Europe` is not an AWS region name"),
            ("[aws]\naudit_table = \"a b\"", "aws.audit_table: `a b` is not a valid DynamoDB table name"),
            ("[redis]\nkey_prefix = \"x{y}\"", "redis.key_prefix: `x{y}` is not a usable key prefix"),
            ("[redis]\npending_grace = \"5s\"", "redis.pending_grace"),
            ("[redis]\nfinished_retention = \"5m\"", "redis.finished_retention"),
            ("[redis]\ntimeout = \"1m\"", "redis.timeout"),
            ("[requests]\nper_user_limit = 0", "requests.per_user_limit: 0 is outside 1..1000"),
            ("[requests]\nper_user_window = \"1s\"", "requests.per_user_window"),
            ("[requests]\nshutdown_drain = \"10m\"", "requests.shutdown_drain"),
            ("[slack]\napproval_channel = \"#oncall\"", "slack.approval_channel: `#oncall` is not a channel id"),
            ("[slack]\nconnections = 0", "slack.connections"),
            ("[oncall]\nmax_staleness = \"10m\"", "oncall.max_staleness"),
            ("[oncall.static_roster]\nPSCHED = [\"bob\"]", "oncall.static_roster.PSCHED"),
            ("[http]\npublic_url = \"jitgate.example.com\"", "http.public_url"),
            ("[http]\naudit_link_ttl = \"10s\"", "http.audit_link_ttl: 10s is outside 1m..365d"),
            ("[http]\nlisten = \"localhost\"", "line 2"),
        ];
        for (text, expected) in cases {
            let env = Environment::from_pairs([("AWS_REGION", "us-east-1")]);
            let errors = Config::parse(Path::new("jitgate.toml"), text, &env).unwrap_err();
            let all: Vec<String> = errors.iter().map(ToString::to_string).collect();
            assert!(all.iter().any(|e| e.contains(expected)), "{text:?}: expected {expected:?} in {all:?}");
        }
    }

    #[test]
    fn the_redis_ca_file_is_relative_to_the_config_file_or_comes_from_redis_ca_file() {
        let text = "[aws]\nregion = \"eu-west-1\"\n[redis]\ncluster = true\nca_file = \"certs/ca.pem\"\n";
        let config = Config::parse(Path::new("/etc/jitgate/jitgate.toml"), text, &Environment::default()).unwrap();
        assert!(config.redis.cluster);
        assert_eq!(config.redis.ca_file, Some(PathBuf::from("/etc/jitgate/certs/ca.pem")));
        let env = Environment::from_pairs([("REDIS_CA_FILE", "/run/secrets/redis-ca.pem")]);
        let config = Config::parse(Path::new("jitgate.toml"), "[aws]\nregion = \"eu-west-1\"\n", &env).unwrap();
        assert_eq!(config.redis.ca_file, Some(PathBuf::from("/run/secrets/redis-ca.pem")));
        assert!(!config.redis.cluster, "one Redis unless told otherwise");
    }

    #[test]
    fn a_cluster_seed_list_is_a_valid_redis_url() {
        let base = [
            ("SLACK_APP_TOKEN", "xapp-1"),
            ("SLACK_BOT_TOKEN", "xoxb-1"),
            ("JITGATE_LINK_SECRET", "0123456789abcdef0123456789abcdef"),
        ];
        let with = |url: &'static str| {
            let mut pairs = base.to_vec();
            pairs.push(("REDIS_URL", url));
            Secrets::from_env(&Environment::from_pairs(pairs)).require_for_run(false).err().unwrap_or_default()
        };
        let redis_errors = |url| with(url).iter().filter(|e| e.variable == "REDIS_URL").count();
        assert_eq!(redis_errors("rediss://u:p@h1:7000,rediss://u:p@h2:7001"), 0);
        assert_eq!(redis_errors("redis://h1:7000,http://h2"), 1);
    }

    #[test]
    fn secrets_come_from_the_environment_only() {
        use secrecy::ExposeSecret;
        let secrets = Secrets::from_env(&Environment::default());
        assert_eq!(secrets.redis_url.expose_secret(), DEFAULT_REDIS_URL);
        assert!(secrets.link_secret.is_none());
        let env = Environment::from_pairs([
            ("REDIS_URL", "redis://:hunter2@cache:6379"),
            ("JITGATE_LINK_SECRET", "correct-horse-battery-staple"),
        ]);
        let secrets = Secrets::from_env(&env);
        assert!(!format!("{secrets:?}").contains("hunter2"));
        assert!(!format!("{secrets:?}").contains("correct-horse"));
        assert_eq!(
            secrets.link_secret.map(|s| s.expose_secret().to_owned()).as_deref(),
            Some("correct-horse-battery-staple")
        );
    }
    #[test]
    fn run_needs_an_approval_channel_that_other_commands_do_without() {
        let config = parse("[aws]\nregion = \"eu-west-1\"\n").expect("valid for audit commands");
        let err = config.approval_channel_for_run().unwrap_err().to_string();
        assert!(err.starts_with("jitgate.toml: slack.approval_channel: is not set — set it to the id"), "{err}");
        assert!(err.contains("/invite @jitgate"), "{err}");
        let config = parse("[aws]\nregion = \"eu-west-1\"\n[slack]\napproval_channel = \"C0123ABCD\"\n").unwrap();
        assert_eq!(config.approval_channel_for_run(), Ok("C0123ABCD"));
    }

    #[test]
    fn run_secrets_name_every_missing_or_swapped_variable_and_never_a_value() {
        let missing = Secrets::from_env(&Environment::default()).require_for_run(true).unwrap_err();
        let named: Vec<&str> = missing.iter().map(|e| e.variable).collect();
        assert_eq!(named, ["SLACK_APP_TOKEN", "SLACK_BOT_TOKEN", "JITGATE_LINK_SECRET", "PAGERDUTY_API_TOKEN"]);
        assert!(missing.iter().all(|e| e.to_string().contains(" — ")), "each says how to fix it: {missing:?}");
        let without_pagerduty = Secrets::from_env(&Environment::default()).require_for_run(false).unwrap_err();
        assert_eq!(without_pagerduty.len(), 3, "{without_pagerduty:?}");

        let swapped = Environment::from_pairs([
            ("SLACK_APP_TOKEN", "xoxb-secret-bot"),
            ("SLACK_BOT_TOKEN", "xapp-secret-app"),
            ("JITGATE_LINK_SECRET", "swordfish"),
            ("REDIS_URL", "http://:hunter2@cache"),
        ]);
        let errors = Secrets::from_env(&swapped).require_for_run(false).unwrap_err();
        let all: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(errors.len(), 4, "{all:?}");
        assert!(all[0].starts_with("SLACK_APP_TOKEN is not an app-level token (xapp-…)"), "{all:?}");
        assert!(all[1].starts_with("SLACK_BOT_TOKEN is not a bot token (xoxb-…)"), "{all:?}");
        assert!(all[2].starts_with("JITGATE_LINK_SECRET is 9 bytes long"), "{all:?}");
        assert!(all[3].starts_with("REDIS_URL is not a valid Redis URL"), "{all:?}");
        for secret in ["secret-bot", "secret-app", "swordfish", "hunter2"] {
            assert!(all.iter().all(|e| !e.contains(secret)), "{secret} printed: {all:?}");
        }

        let complete = Environment::from_pairs([
            ("SLACK_APP_TOKEN", "xapp-1-A0-1"),
            ("SLACK_BOT_TOKEN", "xoxb-1"),
            ("JITGATE_LINK_SECRET", &"k".repeat(64)),
            ("PAGERDUTY_API_TOKEN", "pd"),
        ]);
        let ready = Secrets::from_env(&complete).require_for_run(true).expect("complete");
        assert_eq!(ready.slack_bot_token.expose_secret(), "xoxb-1");
    }
}
