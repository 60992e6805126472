//! The command line: `jitgate run`, `jitgate check [--secrets] [--live]`, `jitgate audit verify`, `jitgate audit
//! show`, `jitgate audit export`, `jitgate healthcheck` and `jitgate seed-demo`. Each command returns the text to
//! print and an exit code, so `main` stays a thin shell and the commands are testable as functions and as a binary.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::audit::AuditLog;
use crate::clock::{SharedClock, SystemClock};
use crate::config::{Config, ConfigError, Environment};
use crate::runbook::{Operation, Runbook, RunbookDefaults, RunbookSet};

/// Just-in-time, on-call-approved, audited DynamoDB queries from Slack.
#[derive(Debug, Parser)]
#[command(name = "jitgate", version = crate::build_info::VERSION_LINE, about)]
pub struct Cli {
    /// Config file [default: $JITGATE_CONFIG, else jitgate.toml]
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Log format: readable text for a terminal, or one JSON object per line for production log pipelines
    /// [default: $JITGATE_LOG_FORMAT, else text]
    #[arg(long, global = true, value_enum)]
    pub log_format: Option<LogFormat>,
    #[command(subcommand)]
    pub command: Command,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// The variable that selects the log format when `--log-format` is not given (`json` or `text`).
pub const LOG_FORMAT_ENV: &str = "JITGATE_LOG_FORMAT";

/// The log format: `--log-format` if given, else [`LOG_FORMAT_ENV`], else text. A value that is neither format is
/// an error naming the variable, rather than a silent fallback: a JSON pipeline fed text lines drops them.
pub fn log_format(flag: Option<LogFormat>, env: &Environment) -> Result<LogFormat, String> {
    use clap::ValueEnum as _;
    match (flag, env.get(LOG_FORMAT_ENV)) {
        (Some(format), _) => Ok(format),
        (None, None) => Ok(LogFormat::Text),
        (None, Some(value)) => LogFormat::from_str(value.trim(), true)
            .map_err(|_| format!("{LOG_FORMAT_ENV} `{value}` is not a log format — use `json` or `text`")),
    }
}

/// The default filter: jitgate at info, the SDKs' chatter at warn. Libraries' debug and trace levels are never
/// on by default: slack-morphism logs socket URLs at debug and whole envelopes (user data) at trace.
pub const DEFAULT_LOG_FILTER: &str = "info,aws_config=warn,aws_smithy_runtime=warn,slack_morphism=info";

/// Installs the global log subscriber. Every line carries the fields of the spans it is in, so a line about a
/// request names its `request_id`. `RUST_LOG` overrides the filter.
pub fn init_logging(
    format: LogFormat,
    writer: impl for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG_FILTER));
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    // Spans also go to an OpenTelemetry collector when the OTEL_* variables name one (src/telemetry/traces.rs).
    let _ = match format {
        LogFormat::Text => {
            let logs = text_logs(filter, writer).finish();
            let traces = crate::telemetry::traces::layer_from_env();
            logs.with(traces).try_init()
        }
        LogFormat::Json => {
            let logs = tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_writer(writer)
                .json()
                .with_current_span(true)
                .with_span_list(true)
                .finish();
            let traces = crate::telemetry::traces::layer_from_env();
            logs.with(traces).try_init()
        }
    };
}

/// The text-format subscriber: tracing's own line format, with fields written by [`EscapedFields`].
fn text_logs<W>(
    filter: tracing_subscriber::EnvFilter,
    writer: W,
) -> tracing_subscriber::fmt::SubscriberBuilder<
    EscapedFields,
    tracing_subscriber::fmt::format::Format,
    tracing_subscriber::EnvFilter,
    W,
>
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer).fmt_fields(EscapedFields)
}

/// Writes a log line's fields (and its message) as tracing's default text format does, `name=value` separated by
/// spaces, with every control character escaped (`\n`, `\r`, `\u{1b}`, …).
///
/// Fields carry text users chose (a runbook name, a button value, an error quoting a command). Written raw, a
/// newline in it would start a new line that log readers and pipelines take for one jitgate wrote, e.g. a forged
/// "approved by" line; an escape sequence could rewrite a terminal. The JSON format escapes on its own.
#[derive(Debug, Clone, Copy, Default)]
pub struct EscapedFields;

impl<'writer> tracing_subscriber::fmt::FormatFields<'writer> for EscapedFields {
    fn format_fields<R: tracing_subscriber::field::RecordFields>(
        &self,
        mut writer: tracing_subscriber::fmt::format::Writer<'writer>,
        fields: R,
    ) -> std::fmt::Result {
        let mut visitor = EscapingVisitor { writer: &mut writer, result: Ok(()), first: true };
        fields.record(&mut visitor);
        visitor.result
    }
}

struct EscapingVisitor<'a, 'w> {
    writer: &'a mut tracing_subscriber::fmt::format::Writer<'w>,
    result: std::fmt::Result,
    first: bool,
}

impl tracing::field::Visit for EscapingVisitor<'_, '_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        // `log.*` fields are the `log` crate's metadata, already shown as the line's target (as tracing does).
        if self.result.is_err() || field.name().starts_with("log.") {
            return;
        }
        let raw = format!("{value:?}");
        let text = escape_control_chars(&raw);
        let separator = if std::mem::take(&mut self.first) { "" } else { " " };
        self.result = if field.name() == "message" {
            write!(self.writer, "{separator}{text}")
        } else {
            write!(self.writer, "{separator}{}={text}", field.name())
        };
    }
}

/// `text` with control characters (and the Unicode line and paragraph separators) written as escapes, so it stays
/// on one line and cannot drive a terminal.
pub fn escape_control_chars(text: &str) -> std::borrow::Cow<'_, str> {
    let unsafe_char = |c: char| c.is_control() || c == '\u{2028}' || c == '\u{2029}';
    if !text.chars().any(unsafe_char) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if unsafe_char(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Connect to Slack (socket mode) and serve requests until SIGTERM or Ctrl-C.
    Run,
    /// Validate the config and every runbook as `jitgate run` would, and print one line per runbook.
    Check {
        /// Also compare each runbook with its real table and index, assume each role, look up each PagerDuty
        /// schedule and escalation policy, and ask Slack whether the bot is in the approval channel; print what
        /// passed and what did not.
        #[arg(long)]
        live: bool,
        /// Also require what `jitgate run` needs from the environment (SLACK_APP_TOKEN, SLACK_BOT_TOKEN,
        /// JITGATE_LINK_SECRET, PAGERDUTY_API_TOKEN when runbooks need PagerDuty, a valid REDIS_URL); leave it off
        /// where the secrets are not available, such as CI.
        #[arg(long)]
        secrets: bool,
    },
    /// Inspect the audit trail.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Probe a running jitgate's /healthz: exit 0 on HTTP 200, else 1 with the reason (for container health
    /// checks in images without curl).
    Healthcheck {
        /// URL to probe [default: http://<http.operations_listen>/healthz, on loopback when it listens on all addresses]
        #[arg(long, value_name = "URL")]
        url: Option<String>,
        /// Give up after this long, e.g. 3s or 500ms.
        #[arg(long, value_name = "DURATION", default_value = "3s", value_parser = humantime::parse_duration)]
        timeout: std::time::Duration,
    },
    /// Create (if missing) and fill the demo Orders table in a local DynamoDB, for `make demo` and `make dev`.
    /// Refuses unless AWS_ENDPOINT_URL (or AWS_ENDPOINT_URL_DYNAMODB) points outside AWS, or --allow-aws is given.
    SeedDemo {
        /// The table to create and fill; the shipped runbooks read `Orders`.
        #[arg(long, default_value = "Orders")]
        table: String,
        /// Customers C000001, C000002, … to write orders for.
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=10_000))]
        customers: u32,
        /// Orders per customer, one hour apart from 2026-01-01T00:00:00Z.
        #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=1_000))]
        orders_per_customer: u32,
        /// Write the demo data wherever the AWS SDK points, even into a real AWS account.
        #[arg(long)]
        allow_aws: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Walk the whole hash chain and report the first edited, missing or unlinked entry; with `[audit]
    /// checkpoint_bucket` set, also check it against the checkpoints and name the first rewritten entry.
    Verify,
    /// Print one request's audit trail, oldest first.
    Show {
        /// The request id, e.g. JIT-7Q2M4X.
        request_id: String,
    },
    /// Print entries as JSON lines (one entry per line), for shipping to a SIEM.
    Export {
        /// Only entries at or after this time: RFC 3339 (2026-11-01T00:00:00Z) or an age such as 24h or 7d.
        #[arg(long)]
        since: Option<String>,
        /// Output format; only jsonl for now.
        #[arg(long, default_value = "jsonl", value_parser = ["jsonl"])]
        format: String,
    },
}

/// Runs one command. Errors are printed to stderr with what to fix; the exit code is 0 on success, 1 when the
/// audit chain is broken, 2 when the config or a runbook is invalid or a service cannot be reached.
pub async fn execute(cli: Cli, env: Environment) -> ExitCode {
    // The commands that use secrets read the files mounted for them (`NAME_FILE`) here, once; a problem with one
    // stops them before anything is connected, as a missing secret does.
    let reads_secrets =
        matches!(cli.command, Command::Run | Command::Check { secrets: true, .. } | Command::Check { live: true, .. });
    let env = match reads_secrets.then(|| env.with_secret_files()) {
        None => env,
        Some(Ok(resolved)) => resolved,
        Some(Err(errors)) => {
            for error in &errors {
                eprintln!("error: {error}");
            }
            eprintln!("the environment is invalid: {} problem(s)", errors.len());
            return ExitCode::from(2);
        }
    };
    let log_format = match log_format(cli.log_format, &env) {
        Ok(format) => format,
        Err(problem) => {
            eprintln!("error: {problem}");
            return ExitCode::from(2);
        }
    };
    let path = cli.config.clone().unwrap_or_else(|| Config::path_from(&env));
    let config = match Config::load(&path, &env) {
        Ok(config) => config,
        // A probe given --url needs no config; without it, an unreadable config makes it unhealthy: exit 1, since
        // Docker reserves exit code 2 in health checks.
        Err(errors) => match cli.command {
            Command::Healthcheck { url: Some(url), timeout } => return healthcheck(&url, timeout).await,
            Command::Healthcheck { url: None, .. } => {
                let first = errors.first().map(ToString::to_string).unwrap_or_default();
                eprintln!("unhealthy: cannot tell which URL to probe: {first}");
                return ExitCode::from(1);
            }
            _ => return invalid("config", &errors),
        },
    };
    match cli.command {
        Command::Check { live, secrets } => match (check(&config, secrets.then_some(&env)), live) {
            (code, false) => code,
            (code, true) if code != ExitCode::SUCCESS => code,
            (_, true) => live_check(&config, &env).await,
        },
        Command::Run => {
            init_logging(log_format, std::io::stderr);
            run(&config, &env).await
        }
        Command::Audit { command: AuditCommand::Verify } => audit_verify(&config).await,
        Command::Audit { command: AuditCommand::Show { request_id } } => audit_show(&config, &request_id).await,
        Command::Audit { command: AuditCommand::Export { since, format: _ } } => {
            audit_export(&config, since.as_deref()).await
        }
        Command::SeedDemo { table, customers, orders_per_customer, allow_aws } => {
            let seed = SeedDemo { table, customers, orders_per_customer, allow_aws };
            seed_demo(&config, &env, &seed).await
        }
        Command::Healthcheck { url, timeout } => {
            healthcheck(&url.unwrap_or_else(|| healthz_url(config.http.operations_listen)), timeout).await
        }
    }
}

/// `/healthz` on the address jitgate listens on; an unspecified address (0.0.0.0, ::) is probed on loopback.
pub fn healthz_url(listen: std::net::SocketAddr) -> String {
    let mut addr = listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr.ip() {
            std::net::IpAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::IpAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    format!("http://{addr}/healthz")
}

/// One GET, no redirects followed: 200 is healthy (exit 0); anything else prints one line saying why (exit 1).
async fn healthcheck(url: &str, timeout: std::time::Duration) -> ExitCode {
    let client = match reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
    {
        Ok(client) => client,
        Err(err) => {
            eprintln!("unhealthy: cannot build an HTTP client: {err}");
            return ExitCode::from(1);
        }
    };
    match client.get(url).send().await {
        Ok(response) if response.status() == reqwest::StatusCode::OK => {
            println!("healthy: {url} answered 200");
            ExitCode::SUCCESS
        }
        Ok(response) => {
            eprintln!("unhealthy: {url} answered {}", response.status());
            ExitCode::from(1)
        }
        Err(err) if err.is_timeout() => {
            eprintln!("unhealthy: {url}: no answer within {}", humantime::format_duration(timeout));
            ExitCode::from(1)
        }
        Err(err) => {
            // reqwest's own message is generic ("error sending request for url"); the root cause says what failed.
            let mut cause: &dyn std::error::Error = &err;
            while let Some(source) = cause.source() {
                cause = source;
            }
            eprintln!("unhealthy: {url}: {cause}");
            ExitCode::from(1)
        }
    }
}

fn invalid(what: &str, errors: &[ConfigError]) -> ExitCode {
    for error in errors {
        eprintln!("error: {error}");
    }
    eprintln!("{what} is invalid: {} problem(s)", errors.len());
    ExitCode::from(2)
}

/// Loads the runbooks the config points at.
pub fn load_runbooks(config: &Config) -> Result<RunbookSet, Vec<crate::runbook::RunbookError>> {
    RunbookSet::load_dir(&config.runbook_dir(), &RunbookDefaults { ttl: config.runbooks.default_approval_ttl })
}

/// `jitgate check`: the config as `jitgate run` needs it, every runbook and, given the environment (`--secrets`),
/// the secrets `run` requires: the same functions `run` calls at start, so `check` refuses what `run` would. Every
/// problem is printed, not only the first.
fn check(config: &Config, env: Option<&Environment>) -> ExitCode {
    let mut problems = 0;
    if let Err(error) = config.approval_channel_for_run() {
        eprintln!("error: {error}");
        problems += 1;
    }
    let runbooks = match load_runbooks(config) {
        Ok(runbooks) => Some(runbooks),
        Err(errors) => {
            for error in &errors {
                eprintln!("error: {error}");
            }
            eprintln!("runbooks are invalid: {} problem(s) in {}", errors.len(), config.runbook_dir().display());
            problems += errors.len();
            None
        }
    };
    let mut environment = None;
    if let Some(env) = env {
        // Without the runbooks it is unknown whether PagerDuty is needed; their errors already fail the check.
        let needs_pagerduty = runbooks.as_ref().is_some_and(|r| crate::app::pagerduty_required(config, r));
        match crate::config::Secrets::from_env(env).require_for_run(needs_pagerduty) {
            Ok(_) => environment = Some(secrets_line(needs_pagerduty)),
            Err(errors) => {
                for error in &errors {
                    eprintln!("error: {error}");
                }
                problems += errors.len();
            }
        }
    }
    let Some(runbooks) = runbooks.filter(|_| problems == 0) else {
        eprintln!("jitgate run would refuse this setup: {problems} problem(s)");
        return ExitCode::from(2);
    };
    println!(
        "config {} is valid (region {}, audit table {})",
        config.path.display(),
        config.region(),
        config.aws.audit_table
    );
    for runbook in runbooks.iter() {
        println!("ok  {}", runbook_line(runbook));
    }
    println!("{} runbook(s) valid in {}", runbooks.len(), config.runbook_dir().display());
    if let Some(environment) = environment {
        println!("environment: {environment}");
    }
    ExitCode::SUCCESS
}

async fn live_check(config: &Config, env: &Environment) -> ExitCode {
    let Ok(runbooks) = load_runbooks(config) else { return ExitCode::from(2) };
    let secrets = crate::config::Secrets::from_env(env);
    let pagerduty = match &secrets.pagerduty_token {
        Some(token) => match crate::oncall::PagerDutyClient::new(
            &secrets.pagerduty_api_url,
            token.clone(),
            crate::oncall::PagerDutySettings::default(),
        ) {
            Ok(client) => Some(client),
            Err(err) => {
                eprintln!("error: {err:#}");
                return ExitCode::from(2);
            }
        },
        None => None,
    };
    let static_schedules = config.oncall.static_roster.keys().cloned().collect();
    let sdk = sdk_config(config).await;
    let mut lines = crate::live_check::run(&runbooks, &sdk, pagerduty.as_ref(), &static_schedules).await;
    if let Ok(channel) = config.approval_channel_for_run() {
        let slack = match &secrets.slack_bot_token {
            Some(token) => crate::slack::SlackWeb::new(&secrets.slack_api_url, token.clone(), Default::default())
                .map_err(|err| format!("{err:#}")),
            None => Err("SLACK_BOT_TOKEN is not set, so Slack cannot be asked about the channel".to_owned()),
        };
        lines.push(crate::live_check::approval_channel_line(slack.as_ref().map_err(Clone::clone), channel).await);
    }
    println!("live checks:");
    for line in &lines {
        println!("{line}");
    }
    let failed = lines.iter().filter(|l| !l.passed).count();
    println!("live checks: {} ok, {failed} failing", lines.len() - failed);
    if failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) }
}

/// One line summing up a runbook: what it reads, with which parameters, and who approves.
pub fn runbook_line(runbook: &Runbook) -> String {
    let target = match runbook.index() {
        Some(index) => format!("{} index {}", runbook.table().name(), index.name()),
        None => runbook.table().name().to_owned(),
    };
    let operation = match runbook.operation() {
        Operation::Query => "query",
        Operation::GetItem => "get_item",
        Operation::Scan => "scan",
        Operation::UpdateItem => "update_item (write)",
    };
    let params: Vec<&str> = runbook.parameters().iter().map(|p| p.name()).collect();
    let policy = runbook.approval();
    let mut approvers: Vec<String> = Vec::new();
    approvers.extend(policy.approvers.pagerduty_schedules.iter().map(|s| format!("schedule {s}")));
    approvers.extend(policy.approvers.pagerduty_escalation_policies.iter().map(|s| format!("escalation policy {s}")));
    approvers.extend(policy.approvers.slack_users.iter().map(|u| format!("user {u}")));
    format!(
        "{}: {operation} {target}; params [{}]; cap {}; {} approval(s) from {}; ttl {}",
        runbook.id(),
        params.join(", "),
        runbook.max_items(),
        policy.required_approvals,
        approvers.join(", "),
        humantime::format_duration(policy.ttl),
    )
}

/// What `check --secrets` found, by name only: the values are secrets.
fn secrets_line(needs_pagerduty: bool) -> String {
    let pagerduty = if needs_pagerduty {
        "PAGERDUTY_API_TOKEN set"
    } else {
        "PAGERDUTY_API_TOKEN not required (no runbook needs PagerDuty beyond [oncall.static_roster])"
    };
    format!("SLACK_APP_TOKEN, SLACK_BOT_TOKEN and JITGATE_LINK_SECRET set, REDIS_URL valid, {pagerduty}")
}

/// The AWS SDK configuration: the standard chain (credentials, `AWS_ENDPOINT_URL`…) in the config's region, with
/// the general `[aws.timeouts]` (`jitgate run` gives each of its clients its own, see `app::start`).
async fn sdk_config(config: &Config) -> aws_config::SdkConfig {
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(config.region().to_owned()))
        .load()
        .await;
    crate::app::with_timeouts(&sdk, config.aws.timeouts.of(crate::config::AwsClient::General))
}

async fn run(config: &Config, env: &Environment) -> ExitCode {
    let runbooks = match load_runbooks(config) {
        Ok(runbooks) => runbooks,
        Err(errors) => {
            for error in &errors {
                eprintln!("error: {error}");
            }
            return ExitCode::from(2);
        }
    };
    let secrets = crate::config::Secrets::from_env(env);
    let sdk = sdk_config(config).await;
    let clock: SharedClock = std::sync::Arc::new(SystemClock);
    let outcome = crate::app::run(config, &secrets, runbooks, &sdk, clock, shutdown_signal()).await;
    // The last requests' spans, when traces are on.
    crate::telemetry::traces::shutdown().await;
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}

/// Completes on SIGTERM (what Kubernetes and docker send) or Ctrl-C.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(term) => term,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// `jitgate audit verify`: the chain, and with `[audit] checkpoint_bucket` set, the chain against its checkpoints.
/// The verdict comes first, then one line saying what anchored it (or that nothing did).
async fn audit_verify(config: &Config) -> ExitCode {
    let sdk = sdk_config(config).await;
    let log = audit_log(config, &sdk);
    let anchor = config.audit.checkpoint_bucket.as_ref().map(|bucket| {
        let clock: SharedClock = std::sync::Arc::new(SystemClock);
        crate::audit::Anchor::new(&sdk, bucket.clone(), config.audit.checkpoint_retention, clock)
    });
    match log.verify_anchored(anchor.as_ref()).await {
        Ok(report) if report.is_intact() => {
            println!("{report}");
            println!("{}", report.anchoring_line());
            ExitCode::SUCCESS
        }
        Ok(report) => {
            println!("{report}");
            println!("{}", report.anchoring_line());
            ExitCode::from(1)
        }
        Err(err) => {
            eprintln!("error: cannot verify the audit trail: {err}");
            ExitCode::from(2)
        }
    }
}

fn audit_log(config: &Config, sdk: &aws_config::SdkConfig) -> AuditLog {
    let clock: SharedClock = std::sync::Arc::new(SystemClock);
    AuditLog::new(sdk, config.aws.audit_table.clone(), clock)
}

async fn audit_show(config: &Config, request_id: &str) -> ExitCode {
    let Some(id) = crate::ids::RequestId::parse(request_id) else {
        eprintln!("error: `{request_id}` is not a request id like JIT-7Q2M4X");
        return ExitCode::from(2);
    };
    let log = audit_log(config, &sdk_config(config).await);
    match log.entries_for(&id).await {
        Ok(entries) if entries.is_empty() => {
            eprintln!("no audit entries for {id}");
            ExitCode::from(1)
        }
        Ok(entries) => {
            for entry in entries {
                let at = entry.at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
                let event = serde_json::to_string(&entry.event).unwrap_or_default();
                println!("#{} {at} {} {} {event}", entry.seq, entry.actor, entry.event.kind());
            }
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("error: cannot read the audit trail: {err}");
            ExitCode::from(2)
        }
    }
}

/// `--since`: an RFC 3339 instant, or an age before now ("24h", "7d").
fn parse_since(text: &str, now: time::OffsetDateTime) -> Option<time::OffsetDateTime> {
    if let Ok(at) = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339) {
        return Some(at);
    }
    let age = humantime::parse_duration(text).ok()?;
    Some(now - time::Duration::try_from(age).ok()?)
}

async fn audit_export(config: &Config, since: Option<&str>) -> ExitCode {
    let since = match since.map(|s| (s, parse_since(s, time::OffsetDateTime::now_utc()))) {
        None => None,
        Some((_, Some(at))) => Some(at),
        Some((text, None)) => {
            eprintln!("error: --since `{text}` is neither an RFC 3339 time nor an age like 24h");
            return ExitCode::from(2);
        }
    };
    let log = audit_log(config, &sdk_config(config).await);
    let mut out = std::io::stdout().lock();
    let mut failed = None;
    let result = log
        .for_each_entry(|entry| {
            if failed.is_some() || since.is_some_and(|since| entry.at < since) {
                return;
            }
            use std::io::Write as _;
            let line = serde_json::to_string(&entry).unwrap_or_default();
            if let Err(err) = writeln!(out, "{line}") {
                failed = Some(err);
            }
        })
        .await;
    match (result, failed) {
        (Ok(_), None) => ExitCode::SUCCESS,
        (_, Some(err)) => {
            eprintln!("error: writing the export: {err}");
            ExitCode::from(2)
        }
        (Err(err), None) => {
            eprintln!("error: cannot export the audit trail: {err}");
            ExitCode::from(2)
        }
    }
}

/// What `jitgate seed-demo` was asked to write.
struct SeedDemo {
    table: String,
    customers: u32,
    orders_per_customer: u32,
    allow_aws: bool,
}

/// `jitgate seed-demo`: the demo table, created if missing and filled with the deterministic demo orders. Writing
/// the same items again changes nothing, so a second run is harmless.
async fn seed_demo(config: &Config, env: &Environment, seed: &SeedDemo) -> ExitCode {
    use crate::aws::demo_table::{
        check_demo_orders_layout, create_demo_orders_table, demo_customer_id, local_endpoint, seed_demo_orders,
    };
    let sdk = sdk_config(config).await;
    // The SDK prefers the DynamoDB-specific variable, so the check does too; the client is then pinned to the
    // endpoint that was checked, whatever else the SDK's profile files say.
    let endpoint = env.get("AWS_ENDPOINT_URL_DYNAMODB").or_else(|| env.get("AWS_ENDPOINT_URL"));
    let ignored = env.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let (client, target) = match (local_endpoint(endpoint, ignored), seed.allow_aws) {
        (Ok(url), _) => {
            let dynamo = aws_sdk_dynamodb::config::Builder::from(&sdk).endpoint_url(url.as_str()).build();
            (aws_sdk_dynamodb::Client::from_conf(dynamo), url.as_str().trim_end_matches('/').to_owned())
        }
        (Err(_), true) => {
            (aws_sdk_dynamodb::Client::new(&sdk), format!("the AWS account of your credentials ({})", config.region()))
        }
        (Err(why), false) => {
            eprintln!("error: seed-demo refuses to write demo data to AWS: {why}.");
            eprintln!(
                "Point AWS_ENDPOINT_URL at a local DynamoDB (make demo and make dev start one), or pass --allow-aws to \
                 create and fill table `{}` in the AWS account of your credentials.",
                seed.table
            );
            return ExitCode::from(2);
        }
    };
    let existed = match check_demo_orders_layout(&client, &seed.table).await {
        Ok(existed) => existed,
        Err(err) => {
            eprintln!("error: {err:#}");
            return ExitCode::from(2);
        }
    };
    if !existed && let Err(err) = create_demo_orders_table(&client, &seed.table).await {
        eprintln!("error: {err:#}");
        return ExitCode::from(2);
    }
    let orders = match seed_demo_orders(&client, &seed.table, seed.customers, seed.orders_per_customer).await {
        Ok(orders) => orders,
        Err(err) => {
            eprintln!("error: {err:#}");
            return ExitCode::from(2);
        }
    };
    let what = if existed { "already there, layout checked" } else { "created with its two indexes" };
    println!("table {} at {target}: {what}", seed.table);
    let span = match (orders.first(), orders.last()) {
        (Some(first), Some(last)) => format!(", created {} … {}", first.created_at, last.created_at),
        _ => String::new(),
    };
    println!(
        "seeded {} orders: customers C000001…{} × {} orders each{span}",
        orders.len(),
        demo_customer_id(seed.customers),
        seed.orders_per_customer
    );
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// Collects log output in memory.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap_or_else(|p| p.into_inner()).extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
        type Writer = Captured;
        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    #[test]
    fn user_text_with_newlines_stays_on_its_log_line() {
        let logs = Captured::default();
        let subscriber = text_logs(tracing_subscriber::EnvFilter::new("info"), logs.clone())
            .with_ansi(false)
            .without_time()
            .finish();
        // A command text carrying a forged line, in a span field, an event field and the message itself.
        let forged = "orders\n INFO jitgate::engine::decide: approved approver=UBOSS request_id=JIT-AAAAAA\r\u{1b}[2K";
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("event", command = %forged);
            let _entered = span.enter();
            tracing::warn!(text = %forged, debug = ?forged, "slash command {forged} not understood");
        });
        let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(!text.contains('\r') && !text.contains('\u{1b}'), "{text:?}");
        assert!(text.contains(r"text=orders\n INFO jitgate::engine::decide: approved"), "{text}");
        assert!(text.contains(r"command=orders\n"), "{text}");
        assert!(text.contains(r"slash command orders\n INFO"), "{text}");
    }

    #[test]
    fn the_log_format_comes_from_the_flag_then_the_environment() {
        let env = |value: &str| Environment::from_pairs([(LOG_FORMAT_ENV, value)]);
        assert_eq!(log_format(None, &Environment::default()), Ok(LogFormat::Text));
        assert_eq!(log_format(None, &env("json")), Ok(LogFormat::Json));
        assert_eq!(log_format(None, &env("JSON\n")), Ok(LogFormat::Json));
        assert_eq!(log_format(Some(LogFormat::Text), &env("json")), Ok(LogFormat::Text), "the flag wins");
        let err = log_format(None, &env("logfmt")).unwrap_err();
        assert_eq!(err, "JITGATE_LOG_FORMAT `logfmt` is not a log format — use `json` or `text`");
    }

    #[test]
    fn ordinary_text_is_left_alone() {
        assert!(matches!(escape_control_chars("UREQ asks for C000042 — ok"), std::borrow::Cow::Borrowed(_)));
        assert_eq!(escape_control_chars("a\tb\u{2028}c\u{7f}"), r"a\tb\u{2028}c\u{7f}");
    }
}
