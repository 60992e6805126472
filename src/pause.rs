//! How clients wait before retrying an external service. Production sleeps; tests inject a pause that records the
//! wait and returns at once, so retry behaviour is asserted without slow or timing-dependent tests.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;

/// How a client waits before retrying. Production sleeps; tests record the wait and return at once.
#[async_trait]
pub trait Pause: Send + Sync + fmt::Debug {
    async fn pause(&self, duration: Duration);
}

/// Waits with `tokio::time::sleep`.
#[derive(Debug, Default, Clone, Copy)]
pub struct TokioPause;

#[async_trait]
impl Pause for TokioPause {
    async fn pause(&self, duration: Duration) {
        tokio::time::sleep(duration).await;
    }
}
