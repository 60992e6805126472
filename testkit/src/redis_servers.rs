//! Redis servers a test starts for itself, for what the shared test Redis cannot show: a TLS-only Redis with an
//! ACL user ([`TlsRedis`]), and a Redis Cluster of 3 masters with 1 replica each ([`RedisCluster`]) that a test may
//! fail over or break. Each stops its processes and removes its files when dropped, also when the test fails.
//! Every wait is a bounded poll of the servers' own state, never a fixed sleep.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a server may take to answer, or a cluster to settle after a change.
const SETTLE: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(50);

/// A folder of its own under the system temp folder, removed by its owner's `Drop`.
fn scratch_dir(what: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(crate::unique(&format!("jitgate-{what}")));
    std::fs::create_dir_all(&dir).expect("create a scratch folder");
    dir
}

/// A loopback port nothing listens on at the moment.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind port 0");
    listener.local_addr().expect("local addr").port()
}

/// Polls `done` until it is true, for at most [`SETTLE`]; panics naming `what` otherwise.
pub fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + SETTLE;
    while !done() {
        assert!(Instant::now() < deadline, "{what} did not happen within {SETTLE:?}");
        std::thread::sleep(POLL);
    }
}

/// A `redis-server` listening only with TLS (`--port 0 --tls-port …`), with the `default` user switched off and
/// one ACL user, `user` / `password`.
pub struct TlsRedis {
    child: Child,
    dir: PathBuf,
    pub port: u16,
}

impl TlsRedis {
    /// Starts it with the server certificate and key in PEM (`cert_pem`, `key_pem`).
    pub fn start(cert_pem: &str, key_pem: &str, user: &str, password: &str) -> TlsRedis {
        let dir = scratch_dir("tls-redis");
        let (cert, key) = (dir.join("server.pem"), dir.join("server.key"));
        std::fs::write(&cert, cert_pem).expect("write the certificate");
        std::fs::write(&key, key_pem).expect("write the key");
        let port = free_port();
        let log = std::fs::File::create(dir.join("redis.log")).expect("log file");
        let child = Command::new("redis-server")
            .args(["--port", "0", "--tls-port", &port.to_string(), "--bind", "127.0.0.1"])
            .arg("--tls-cert-file")
            .arg(&cert)
            .arg("--tls-key-file")
            .arg(&key)
            .args(["--tls-auth-clients", "no", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&dir)
            .args(["--user", user, "on", &format!(">{password}"), "~*", "&*", "+@all"])
            .args(["--user", "default", "off"])
            .stdout(Stdio::from(log.try_clone().expect("log")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start redis-server (scripts/install-deps.sh installs it)");
        let server = TlsRedis { child, dir, port };
        // Listening is enough: the TLS handshake is what the tests examine.
        wait_until(&format!("TLS redis-server listening on {port}"), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        server
    }

    /// Its log, to show when a test fails.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("redis.log")).unwrap_or_default()
    }

    /// A folder that is removed with the server, for the test's own files (a CA file).
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `scripts/redis-cluster.sh`, which both the test command and [`RedisCluster`] use to start a cluster.
fn cluster_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/redis-cluster.sh")
}

/// Runs `redis-cli -p port args…` and returns what it printed.
pub fn redis_cli(port: u16, args: &[&str]) -> String {
    let output = Command::new("redis-cli").arg("-p").arg(port.to_string()).args(args).output().expect("redis-cli");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A private Redis Cluster: 3 masters, 1 replica each, on free loopback ports (`scripts/redis-cluster.sh`).
pub struct RedisCluster {
    dir: PathBuf,
    url: String,
    pub ports: Vec<u16>,
}

impl RedisCluster {
    /// Starts it and returns once every node reports `cluster_state:ok` and every replica is in sync.
    pub fn start() -> RedisCluster {
        let dir = scratch_dir("cluster");
        let output = Command::new(cluster_script()).arg("start").arg(&dir).output().expect("run redis-cluster.sh");
        if !output.status.success() {
            let _ = Command::new(cluster_script()).arg("stop").arg(&dir).status();
            panic!("the cluster did not start: {}", String::from_utf8_lossy(&output.stderr));
        }
        let url = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        let ports = url
            .split(',')
            .map(|node| node.rsplit(':').next().and_then(|p| p.parse().ok()).expect("redis://127.0.0.1:PORT"))
            .collect();
        RedisCluster { dir, url, ports }
    }

    /// The seed list for `REDIS_URL`: every node, comma-separated.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The nodes that are alive, as `CLUSTER NODES` on `port` lists them: (port, role, master's node id, own id).
    fn nodes(&self, port: u16) -> Vec<(u16, String, String, String)> {
        redis_cli(port, &["cluster", "nodes"])
            .lines()
            .filter(|line| !line.contains("fail"))
            .filter_map(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                let node_port = fields.get(1)?.split('@').next()?.rsplit(':').next()?.parse().ok()?;
                let role = if fields.get(2)?.contains("master") { "master" } else { "replica" };
                Some((node_port, role.to_owned(), fields.get(3)?.to_string(), fields.first()?.to_string()))
            })
            .collect()
    }

    /// A node that is still running, to ask about the cluster.
    fn any_live_port(&self) -> u16 {
        *self.ports.iter().find(|port| redis_cli(**port, &["ping"]).trim() == "PONG").expect("a live node")
    }

    /// The port of the master serving `key`'s slot now.
    pub fn master_for(&self, key: &str) -> u16 {
        let asked = self.any_live_port();
        let slot: u16 = redis_cli(asked, &["cluster", "keyslot", key]).trim().parse().expect("a slot number");
        for line in redis_cli(asked, &["cluster", "nodes"]).lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if !fields.get(2).is_some_and(|flags| flags.contains("master") && !flags.contains("fail")) {
                continue;
            }
            let serves = fields.iter().skip(8).any(|range| match range.split_once('-') {
                Some((from, to)) => (from.parse::<u16>().unwrap_or(u16::MAX)..=to.parse().unwrap_or(0)).contains(&slot),
                None => range.parse::<u16>().ok() == Some(slot),
            });
            if serves {
                return fields[1].split('@').next().and_then(|a| a.rsplit(':').next()).unwrap().parse().unwrap();
            }
        }
        panic!("no master serves slot {slot}");
    }

    /// The port of a live replica of the master on `master_port`.
    pub fn replica_of(&self, master_port: u16) -> u16 {
        let nodes = self.nodes(master_port);
        let master_id = nodes.iter().find(|n| n.0 == master_port).map(|n| n.3.clone()).expect("the master is listed");
        nodes.iter().find(|n| n.1 == "replica" && n.2 == master_id).map(|n| n.0).expect("the master has a replica")
    }

    /// Waits until the replica on `replica_port` has everything its master wrote (equal replication offsets).
    pub fn wait_replicated(&self, master_port: u16, replica_port: u16) {
        let offset = |port: u16, field: &str| -> Option<u64> {
            redis_cli(port, &["info", "replication"])
                .lines()
                .find_map(|line| line.strip_prefix(field).and_then(|v| v.trim().parse().ok()))
        };
        wait_until(&format!("replica {replica_port} catching up with {master_port}"), || {
            let master = offset(master_port, "master_repl_offset:");
            master.is_some() && offset(replica_port, "slave_repl_offset:") == master
        });
    }

    /// `CLUSTER FAILOVER` on the replica (a manual failover: the master stops, the replica catches up, they swap),
    /// then waits until the replica reports itself master and every live node says `cluster_state:ok`.
    pub fn failover(&self, replica_port: u16) {
        assert_eq!(redis_cli(replica_port, &["cluster", "failover"]).trim(), "OK");
        wait_until(&format!("{replica_port} becoming a master"), || {
            redis_cli(replica_port, &["role"]).lines().next() == Some("master")
        });
        self.wait_ok();
    }

    /// Kills the master on `port` (SIGKILL: no goodbye to the cluster) and waits until its replica has taken over
    /// and the cluster reports `cluster_state:ok` again.
    pub fn kill_master(&self, port: u16) {
        let replica = self.replica_of(port);
        let pid = std::fs::read_to_string(self.dir.join(format!("redis-{port}.pid"))).expect("the node's pid file");
        let status = Command::new("kill").args(["-9", pid.trim()]).status().expect("kill");
        assert!(status.success(), "could not kill the node on {port}");
        wait_until(&format!("the node on {port} going away"), || redis_cli(port, &["ping"]).trim() != "PONG");
        // cluster_state stays ok until the others mark the master as failed: wait for the promotion itself.
        wait_until(&format!("replica {replica} taking over from {port}"), || {
            redis_cli(replica, &["role"]).lines().next() == Some("master")
        });
        self.wait_ok();
    }

    /// Waits until every live node reports `cluster_state:ok` and sees no master marked as failing.
    pub fn wait_ok(&self) {
        wait_until("the cluster reporting cluster_state:ok", || {
            let live: Vec<u16> =
                self.ports.iter().copied().filter(|port| redis_cli(*port, &["ping"]).trim() == "PONG").collect();
            !live.is_empty()
                && live.iter().all(|port| redis_cli(*port, &["cluster", "info"]).contains("cluster_state:ok"))
        });
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        let _ = Command::new(cluster_script()).arg("stop").arg(&self.dir).status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Seed list of the cluster `scripts/with-services.sh` started for the whole test run, shared by tests that do
/// not fail it over. Panics with the fix when the tests were not started by the test command.
pub fn shared_cluster_url() -> String {
    std::env::var("JITGATE_TEST_REDIS_CLUSTER_URL").unwrap_or_else(|_| {
        panic!(
            "JITGATE_TEST_REDIS_CLUSTER_URL is not set: run the tests with `make test` (or scripts/with-services.sh cargo test)"
        )
    })
}
