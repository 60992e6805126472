//! The real `jitgate` binary as a child process: its config file and log in a private temporary folder, its
//! environment pointing at the emulators, Redis and the local DynamoDB/STS server, start-up awaited by polling
//! `/readyz` and the Slack emulator's socket connections, and a stop by SIGTERM as an orchestrator would send.
//!
//! The child is started with `kill_on_drop`, so it cannot outlive the demo even when the demo fails half-way.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use jitgate_emulators::pagerduty::FakePagerDuty;
use jitgate_emulators::slack::FakeSlack;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use rand::Rng as _;
use tokio::process::{Child, Command};

use crate::world;

/// Socket-mode connections jitgate opens (`slack.connections`). One: jitgate opens a second one only 5 s after the
/// first (Slack rate-limits `apps.connections.open`), which would double the demo's run time. The Slack stories in
/// `tests/` cover two connections, reconnection and two replicas.
const CONNECTIONS: usize = 1;
/// How often start-up and shutdown are polled.
const POLL: Duration = Duration::from_millis(50);

/// Where jitgate's dependencies are, from the demo's environment.
#[derive(Debug, Clone)]
pub struct Services {
    pub redis_url: String,
    pub aws_endpoint: String,
}

impl Services {
    /// `REDIS_URL` and `AWS_ENDPOINT_URL`, which `make demo` sets to the Redis and local DynamoDB/STS it started.
    pub fn from_env() -> anyhow::Result<Services> {
        let get = |name: &str| {
            std::env::var(name).ok().filter(|v| !v.trim().is_empty()).with_context(|| {
                format!(
                    "{name} is not set — run the demo with `make demo`, which starts Redis and the local DynamoDB/STS \
                     server and sets REDIS_URL and AWS_ENDPOINT_URL"
                )
            })
        };
        Ok(Services { redis_url: get("REDIS_URL")?, aws_endpoint: get("AWS_ENDPOINT_URL")? })
    }
}

/// A jitgate ready to run: binary, config file, log file and environment.
pub struct Jitgate {
    binary: PathBuf,
    dir: tempfile::TempDir,
    config: PathBuf,
    log: PathBuf,
    env: Vec<(String, String)>,
    /// `http://127.0.0.1:PORT`: `http.public_url` and where `http.listen` binds.
    pub base_url: String,
    /// Where `http.operations_listen` binds (`/readyz`).
    operations_url: String,
}

/// A running `jitgate run`.
pub struct Running {
    child: Child,
    pub pid: u32,
}

impl Jitgate {
    /// Writes the config (the shipped runbooks in `runbooks`, cards to the approval channel, HTTP on a free port)
    /// into a fresh temporary folder and prepares the environment. `JITGATE_LINK_SECRET` is random for each run.
    pub fn prepare(
        binary: &Path,
        runbooks: &[&Path],
        services: &Services,
        slack: &FakeSlack,
        pagerduty: &FakePagerDuty,
    ) -> anyhow::Result<Jitgate> {
        if !binary.is_file() {
            bail!(
                "no jitgate binary at {} — build it with `cargo build --bin jitgate`, or pass --jitgate",
                binary.display()
            );
        }
        let dir = tempfile::Builder::new().prefix("jitgate-demo.").tempdir().context("creating a temporary folder")?;
        // jitgate serves one folder: the shipped runbooks and the demo's own, copied side by side.
        let served = dir.path().join("runbooks");
        std::fs::create_dir(&served).context("creating the runbooks folder")?;
        for folder in runbooks {
            let entries = std::fs::read_dir(folder)
                .with_context(|| format!("the runbooks folder {} (pass --runbooks)", folder.display()))?;
            for entry in entries {
                let path = entry?.path();
                if path.extension().is_some_and(|e| e == "yaml") {
                    let name = path.file_name().context("a runbook file name")?;
                    std::fs::copy(&path, served.join(name)).with_context(|| format!("copying {}", path.display()))?;
                }
            }
        }
        let runbooks = served;
        let port = free_port()?;
        let operations_port = free_port()?;
        let base_url = format!("http://127.0.0.1:{port}");
        let operations_url = format!("http://127.0.0.1:{operations_port}");
        // JSON string literals are TOML basic strings too, which quotes any path safely.
        let quoted = serde_json::Value::from(runbooks.display().to_string()).to_string();
        let config_text = format!(
            "# Written by jitgate-demo for one run.\n\
             [runbooks]\ndir = {quoted}\n\n\
             [aws]\nregion = \"us-east-1\"\naudit_table = \"jitgate-audit\"\n\n\
             [redis]\nkey_prefix = \"jitgate-demo\"\n\n\
             [slack]\napproval_channel = \"{}\"\nconnections = {CONNECTIONS}\n\n\
             [oncall]\nincident_notes_from = \"{}\"\n\n\
             [break_glass]\nmention = \"<!here>\"\n\n\
             [http]\npublic_url = \"{base_url}\"\nlisten = \"127.0.0.1:{port}\"\n\
             operations_listen = \"127.0.0.1:{operations_port}\"\n",
            world::ONCALL,
            world::NOTES_FROM,
        );
        let config = dir.path().join("jitgate.toml");
        std::fs::write(&config, config_text).with_context(|| format!("writing {}", config.display()))?;
        let log = dir.path().join("jitgate.log");
        let secret: [u8; 32] = rand::rng().random();
        let link_secret: String = secret.iter().map(|b| format!("{b:02x}")).collect();
        let mut env = jitgate_emulators::world::jitgate_environment(
            slack,
            pagerduty,
            &services.redis_url,
            &services.aws_endpoint,
            &link_secret,
        );
        for name in ["PATH", "RUST_LOG", "RUST_BACKTRACE"] {
            if let Ok(value) = std::env::var(name) {
                env.push((name.into(), value));
            }
        }
        Ok(Jitgate { binary: binary.to_owned(), dir, config, log, env, base_url, operations_url })
    }

    /// The log file jitgate writes (stdout and stderr).
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// A `jitgate --config … ARGS` command with only the demo's environment.
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.binary);
        command.arg("--config").arg(&self.config).args(args).env_clear().envs(self.env.iter().cloned());
        command.stdin(Stdio::null()).kill_on_drop(true);
        command
    }

    /// Starts `jitgate run` with its output going to the log file.
    pub fn start(&self) -> anyhow::Result<Running> {
        let log = std::fs::File::create(&self.log).with_context(|| format!("creating {}", self.log.display()))?;
        let mut command = self.command(&["run"]);
        command.stdout(log.try_clone().context("opening the log file twice")?).stderr(log);
        let child = command.spawn().with_context(|| format!("starting {}", self.binary.display()))?;
        let pid = child.id().context("jitgate exited as soon as it started")?;
        Ok(Running { child, pid })
    }

    /// Waits until jitgate answers `/readyz` with 200 and has its socket connections open, or fails when it
    /// exits or `within` passes.
    pub async fn wait_until_ready(
        &self,
        running: &mut Running,
        slack: &FakeSlack,
        within: Duration,
    ) -> anyhow::Result<Duration> {
        let started = Instant::now();
        let http = reqwest::Client::builder().timeout(Duration::from_secs(2)).build()?;
        let readyz = format!("{}/readyz", self.operations_url);
        let mut last = "no answer yet".to_owned();
        loop {
            if let Some(status) = running.child.try_wait()? {
                bail!("jitgate exited during start-up ({status})");
            }
            let ready = match http.get(&readyz).send().await {
                Ok(response) if response.status().is_success() => true,
                Ok(response) => {
                    last = format!("{} {}", response.status(), response.text().await.unwrap_or_default());
                    false
                }
                Err(err) => {
                    last = err.to_string();
                    false
                }
            };
            let sockets = slack.connections();
            if ready && sockets >= CONNECTIONS {
                return Ok(started.elapsed());
            }
            if started.elapsed() > within {
                bail!(
                    "jitgate was not ready within {within:?}: {sockets} of {CONNECTIONS} socket connection(s) open, \
                     /readyz: {last}"
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Runs `jitgate ARGS` to completion (bounded by `within`); returns its exit status and output.
    pub async fn run_command(&self, args: &[&str], within: Duration) -> anyhow::Result<(ExitStatus, String)> {
        let mut command = self.command(args);
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        let output = tokio::time::timeout(within, command.output())
            .await
            .with_context(|| format!("`jitgate {}` did not finish within {within:?}", args.join(" ")))?
            .with_context(|| format!("running `jitgate {}`", args.join(" ")))?;
        let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        Ok((output.status, text))
    }

    /// The last `lines` lines of the log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Keeps the temporary folder (config and log) after the demo ends, for a look after a failure.
    pub fn keep_files(self) -> PathBuf {
        self.dir.keep()
    }
}

impl Running {
    /// Sends SIGTERM and waits up to `within` for jitgate to finish its shutdown; kills it after that. A jitgate
    /// that already stopped (Ctrl-C in a terminal reaches it too) reports how it ended.
    pub async fn stop(mut self, within: Duration) -> anyhow::Result<ExitStatus> {
        if let Some(status) = self.child.try_wait()? {
            return Ok(status);
        }
        let pid = i32::try_from(self.pid).context("pid out of range")?;
        kill(Pid::from_raw(pid), Signal::SIGTERM).context("sending SIGTERM to jitgate")?;
        match tokio::time::timeout(within, self.child.wait()).await {
            Ok(status) => Ok(status?),
            Err(_) => {
                let _ = self.child.kill().await;
                bail!("jitgate did not stop within {within:?} of SIGTERM; it was killed")
            }
        }
    }
}

/// A free loopback port, found by binding port 0 and letting it go.
fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}
