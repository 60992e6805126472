//! `jitgate run` as child processes, for the benchmarks that measure whole processes (the load program's replicas,
//! the memory figures): the binary cargo builds beside the benchmark, started any number of times, each with its
//! own config file (its own HTTP and operations ports) and log, all sharing one Redis key prefix, one audit table,
//! one link secret and the one Slack emulator — each opens its own socket-mode connection to it, as replicas do to
//! Slack, and the emulator hands envelopes to the open connections in turn. Start-up is awaited by polling
//! `/readyz` and the emulator's connection count; the stop is SIGTERM.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use jitgate_emulators::pagerduty::FakePagerDuty;
use jitgate_emulators::slack::FakeSlack;
use tokio::process::{Child, Command};

/// Socket-mode connections per replica: one, so the three are open at once (a second one is opened only 5 s after
/// the first, as Slack rate-limits `apps.connections.open`).
const CONNECTIONS: usize = 1;
const POLL: Duration = Duration::from_millis(50);

/// What every replica shares.
pub struct Shared<'a> {
    pub binary: &'a Path,
    pub runbooks: &'a Path,
    pub redis_url: &'a str,
    pub redis_cluster: bool,
    pub key_prefix: &'a str,
    pub audit_table: &'a str,
    pub aws_endpoint: &'a str,
    pub link_secret: &'a str,
}

pub struct Replica {
    child: Child,
    pub pid: u32,
    config: PathBuf,
    pub log: PathBuf,
    pub operations_url: String,
}

pub struct Fleet {
    pub dir: tempfile::TempDir,
    binary: PathBuf,
    env: Vec<(String, String)>,
    pub replicas: Vec<Replica>,
}

impl Fleet {
    /// Starts `count` replicas and waits until every one answers `/readyz` and all their sockets are open.
    pub async fn start(
        shared: &Shared<'_>,
        slack: &FakeSlack,
        pagerduty: &FakePagerDuty,
        count: usize,
        within: Duration,
    ) -> anyhow::Result<Fleet> {
        ensure!(shared.binary.is_file(), "no jitgate binary at {}", shared.binary.display());
        let dir = tempfile::Builder::new().prefix("jitgate-load.").tempdir().context("a temporary folder")?;
        let env = environment(shared, slack, pagerduty);
        let mut fleet = Fleet { dir, binary: shared.binary.to_owned(), env, replicas: Vec::new() };
        for n in 0..count {
            let replica = fleet.start_one(shared, n)?;
            fleet.replicas.push(replica);
        }
        fleet.wait_until_ready(slack, within).await?;
        Ok(fleet)
    }

    fn start_one(&self, shared: &Shared<'_>, n: usize) -> anyhow::Result<Replica> {
        let (port, operations_port) = (free_port()?, free_port()?);
        let quoted = serde_json::Value::from(shared.runbooks.display().to_string()).to_string();
        let text = format!(
            "[runbooks]\ndir = {quoted}\n\n\
             [aws]\nregion = \"us-east-1\"\naudit_table = \"{}\"\n\n\
             [redis]\nkey_prefix = \"{}\"\ncluster = {}\n\n\
             [requests]\nper_user_limit = 1000\n\n\
             [slack]\napproval_channel = \"{}\"\nconnections = {CONNECTIONS}\n\n\
             [http]\npublic_url = \"http://127.0.0.1:{port}\"\nlisten = \"127.0.0.1:{port}\"\n\
             operations_listen = \"127.0.0.1:{operations_port}\"\n",
            shared.audit_table,
            shared.key_prefix,
            shared.redis_cluster,
            jitgate_emulators::world::ONCALL,
        );
        let config = self.dir.path().join(format!("replica-{n}.toml"));
        std::fs::write(&config, text).with_context(|| format!("writing {}", config.display()))?;
        let log = self.dir.path().join(format!("replica-{n}.log"));
        let file = std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let mut command = self.command(&config, &["run"]);
        command.stdout(file.try_clone()?).stderr(file);
        let child = command.spawn().with_context(|| format!("starting {}", self.binary.display()))?;
        let pid = child.id().context("jitgate exited as soon as it started")?;
        Ok(Replica { child, pid, config, log, operations_url: format!("http://127.0.0.1:{operations_port}") })
    }

    fn command(&self, config: &Path, args: &[&str]) -> Command {
        let mut command = Command::new(&self.binary);
        command.arg("--config").arg(config).args(args).env_clear().envs(self.env.iter().cloned());
        command.stdin(Stdio::null()).kill_on_drop(true);
        command
    }

    async fn wait_until_ready(&mut self, slack: &FakeSlack, within: Duration) -> anyhow::Result<()> {
        let started = Instant::now();
        let http = reqwest::Client::builder().timeout(Duration::from_secs(2)).build()?;
        let wanted = CONNECTIONS * self.replicas.len();
        loop {
            let mut ready = 0;
            for replica in &mut self.replicas {
                if let Some(status) = replica.child.try_wait()? {
                    bail!("replica {} exited during start-up ({status}); see {}", replica.pid, replica.log.display());
                }
                let url = format!("{}/readyz", replica.operations_url);
                if http.get(&url).send().await.is_ok_and(|r| r.status().is_success()) {
                    ready += 1;
                }
            }
            if ready == self.replicas.len() && slack.connections() >= wanted {
                return Ok(());
            }
            ensure!(
                started.elapsed() < within,
                "{ready} of {} replicas ready and {} of {wanted} sockets open after {within:?}",
                self.replicas.len(),
                slack.connections()
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// `GET /metrics` of every replica.
    pub async fn metrics(&self) -> anyhow::Result<Vec<String>> {
        let mut texts = Vec::new();
        for replica in &self.replicas {
            let url = format!("{}/metrics", replica.operations_url);
            texts.push(reqwest::get(&url).await.context("scraping /metrics")?.text().await?);
        }
        Ok(texts)
    }

    /// `jitgate audit verify` with the first replica's config: its exit status and output.
    pub async fn audit_verify(&self) -> anyhow::Result<(bool, String)> {
        let mut command = self.command(&self.replicas[0].config, &["audit", "verify"]);
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        let output = tokio::time::timeout(Duration::from_secs(120), command.output())
            .await
            .context("`jitgate audit verify` did not finish within 120 s")??;
        let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        Ok((output.status.success(), text.trim().to_owned()))
    }

    /// SIGTERM to every replica, then waits for each to finish its shutdown (killed after `within`).
    pub async fn stop(&mut self, within: Duration) -> anyhow::Result<()> {
        for replica in &self.replicas {
            // Our own children, by pid: `kill -TERM` is the orchestrator's stop.
            let _ = Command::new("kill").arg("-TERM").arg(replica.pid.to_string()).status().await;
        }
        let mut problems = Vec::new();
        for replica in &mut self.replicas {
            match tokio::time::timeout(within, replica.child.wait()).await {
                Ok(Ok(status)) if status.success() => {}
                Ok(status) => problems.push(format!("replica {} ended with {status:?}", replica.pid)),
                Err(_) => {
                    let _ = replica.child.kill().await;
                    problems.push(format!("replica {} did not stop within {within:?}", replica.pid));
                }
            }
        }
        ensure!(problems.is_empty(), "{}", problems.join("; "));
        Ok(())
    }
}

fn environment(shared: &Shared<'_>, slack: &FakeSlack, pagerduty: &FakePagerDuty) -> Vec<(String, String)> {
    let mut env = jitgate_emulators::world::jitgate_environment(
        slack,
        pagerduty,
        shared.redis_url,
        shared.aws_endpoint,
        shared.link_secret,
    );
    for name in ["PATH", "RUST_LOG"] {
        if let Ok(value) = std::env::var(name) {
            env.push((name.into(), value));
        }
    }
    env
}

/// A free loopback port, found by binding port 0 and letting it go.
fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}
