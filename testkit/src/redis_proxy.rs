//! A TCP forwarder to the test Redis that a test can cut and restore: while cut, every open connection is dropped
//! and new ones are closed at once, as when Redis is unreachable. The bot (or a store) connects through it, so
//! nothing else sharing the test Redis is disturbed.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub struct RedisProxy {
    addr: SocketAddr,
    cut: Arc<AtomicBool>,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
}

impl RedisProxy {
    /// Starts forwarding a free loopback port to the Redis at `redis_url`.
    pub async fn start(redis_url: &str) -> RedisProxy {
        let target = redis_url.trim_start_matches("redis://").trim_end_matches('/').to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr");
        let cut = Arc::new(AtomicBool::new(false));
        let tasks: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (is_cut, spawned) = (cut.clone(), tasks.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if is_cut.load(Ordering::SeqCst) {
                    continue; // dropped: closed at once
                }
                let target = target.clone();
                let task = tokio::spawn(async move {
                    if let Ok(mut upstream) = tokio::net::TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                    }
                });
                spawned.lock().expect("tasks").push(task);
            }
        });
        RedisProxy { addr, cut, tasks, accept }
    }

    /// The URL to give the bot or a store instead of the test Redis's own.
    pub fn url(&self) -> String {
        format!("redis://{}", self.addr)
    }

    /// Drops every forwarded connection and refuses new ones until [`RedisProxy::restore`].
    pub fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for task in self.tasks.lock().expect("tasks").drain(..) {
            task.abort();
        }
    }

    /// Forwards new connections again.
    pub fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

impl Drop for RedisProxy {
    fn drop(&mut self) {
        self.accept.abort();
        for task in self.tasks.lock().expect("tasks").drain(..) {
            task.abort();
        }
    }
}
