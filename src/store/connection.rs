//! How the store reaches Redis: one node through a [`ConnectionManager`], or a Redis Cluster through the async
//! cluster client; plain TCP or TLS (`rediss://`) with the OS roots or a configured CA file.
//!
//! Both kinds of connection reconnect by themselves. The cluster client also follows `MOVED`/`ASK` redirections
//! and refreshes its slot map after a failover, so a promoted replica is found without a restart. Every script and
//! pipeline the store sends works on keys of one hash slot (see `keys`), which is what lets them run unchanged on
//! a cluster.

use std::path::Path;
use std::sync::Arc;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::{ConnectionInfo, IntoConnectionInfo, TlsCertificates};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use secrecy::{ExposeSecret, SecretString};

use crate::redis_connection::Connection;

use super::{MAX_RECONNECT_DELAY, MIN_RECONNECT_DELAY, StoreError, StoreSettings, error};

/// An open connection with what error messages may say about it.
pub(super) struct Opened {
    pub(super) conn: Connection,
    /// `host:port` (several, comma-separated, for a cluster's seeds); never the URL, which may carry a password.
    pub(super) endpoint: Arc<str>,
    /// Kept only to scrub it from error messages.
    pub(super) password: Option<Arc<SecretString>>,
}

/// Connects to the Redis (or the cluster seeds) in `url`, as `settings.cluster` says.
pub(super) async fn open(url: &str, settings: &StoreSettings) -> Result<Opened, StoreError> {
    let nodes = parse_nodes(url, settings.cluster)?;
    let tls = nodes.iter().any(|node| matches!(node.addr(), redis::ConnectionAddr::TcpTls { .. }));
    if tls && nodes.iter().any(|node| !matches!(node.addr(), redis::ConnectionAddr::TcpTls { .. })) {
        return Err(StoreError::InvalidUrl("mixes rediss:// and redis:// nodes; use one scheme for all".to_owned()));
    }
    let certificates = match &settings.ca_file {
        Some(path) if tls => Some(read_ca_file(path)?),
        Some(_) => {
            return Err(StoreError::InvalidSettings(
                "a CA file is set (redis.ca_file or REDIS_CA_FILE) but REDIS_URL is not rediss://; \
                 use rediss:// to connect with TLS, or remove the CA file"
                    .to_owned(),
            ));
        }
        None => None,
    };
    if tls {
        // rustls takes the process's default crypto provider (aws-lc-rs, the only one compiled in).
        crate::tls::install_crypto_provider();
    }
    let endpoint: Arc<str> = nodes.iter().map(|node| node.addr().to_string()).collect::<Vec<_>>().join(",").into();
    let password = nodes[0].redis_settings().password().map(|p| Arc::new(SecretString::from(p.to_owned())));
    let secret = password.as_ref().map(|p| p.expose_secret().to_owned());
    let classify = |err: &redis::RedisError| error::classify(&endpoint, secret.as_deref(), err);

    let connecting = async {
        if settings.cluster {
            let mut builder = ClusterClient::builder(nodes)
                .connection_timeout(settings.connect_timeout)
                .response_timeout(settings.response_timeout)
                .retries(u32::try_from(settings.reconnect_attempts).unwrap_or(u32::MAX))
                .min_retry_wait(u64::try_from(MIN_RECONNECT_DELAY.as_millis()).unwrap_or(u64::MAX))
                .max_retry_wait(u64::try_from(MAX_RECONNECT_DELAY.as_millis()).unwrap_or(u64::MAX));
            if let Some(certificates) = certificates {
                builder = builder.certs(certificates);
            }
            let client = builder.build().map_err(|err| classify(&err))?;
            let conn = client.get_async_connection().await.map_err(|err| classify(&err))?;
            Ok(Connection::Cluster(conn))
        } else {
            let node = nodes.into_iter().next().expect("parse_nodes returns at least one node");
            let client = match certificates {
                Some(certificates) => redis::Client::build_with_tls(node, certificates),
                None => redis::Client::open(node),
            }
            .map_err(|err| classify(&err))?;
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(settings.connect_timeout))
                .set_response_timeout(Some(settings.response_timeout))
                .set_number_of_retries(settings.reconnect_attempts)
                .set_min_delay(MIN_RECONNECT_DELAY)
                .set_max_delay(MAX_RECONNECT_DELAY);
            let conn = ConnectionManager::new_with_config(client, config).await.map_err(|err| classify(&err))?;
            Ok(Connection::Single(conn))
        }
    };
    let conn = match tokio::time::timeout(settings.operation_timeout, connecting).await {
        Ok(result) => result?,
        Err(_) => return Err(super::timed_out(&endpoint, settings.operation_timeout)),
    };
    Ok(Opened { conn, endpoint, password })
}

/// The nodes in `url`: one URL, or (for a cluster) one or more seed URLs separated by commas.
pub(super) fn parse_nodes(url: &str, cluster: bool) -> Result<Vec<ConnectionInfo>, StoreError> {
    let parts: Vec<&str> = url.split(',').map(str::trim).collect();
    if parts.iter().any(|part| part.is_empty()) {
        return Err(StoreError::InvalidUrl(
            "it has an empty entry; separate cluster seed URLs by single commas".into(),
        ));
    }
    if parts.len() > 1 && !cluster {
        return Err(StoreError::InvalidUrl(format!(
            "it lists {} URLs; that is a Redis Cluster's seed list: set `cluster = true` under [redis]",
            parts.len()
        )));
    }
    parts
        .into_iter()
        .map(|part| {
            // The client's parse errors are fixed texts, but the URL may hold a password: never echo it.
            part.into_connection_info().map_err(|err| StoreError::InvalidUrl(err.to_string()))
        })
        .collect()
}

/// Reads the CA certificates to trust instead of the OS roots, refusing a file without any.
fn read_ca_file(path: &Path) -> Result<TlsCertificates, StoreError> {
    let shown = path.display();
    let pem = std::fs::read(path)
        .map_err(|err| StoreError::InvalidSettings(format!("cannot read the Redis CA file {shown}: {err}")))?;
    let certificates = CertificateDer::pem_slice_iter(&pem).collect::<Result<Vec<_>, _>>().map_err(|err| {
        StoreError::InvalidSettings(format!("the Redis CA file {shown} is not PEM certificates: {err}"))
    })?;
    if certificates.is_empty() {
        return Err(StoreError::InvalidSettings(format!(
            "the Redis CA file {shown} holds no certificate (expected -----BEGIN CERTIFICATE----- blocks)"
        )));
    }
    Ok(TlsCertificates { client_tls: None, root_cert: Some(pem) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn several_urls_need_cluster_mode() {
        let two = "redis://h1:7000,redis://h2:7001";
        let err = parse_nodes(two, false).expect_err("two URLs, one node expected");
        assert!(err.to_string().contains("set `cluster = true` under [redis]"), "{err}");
        let nodes = parse_nodes(two, true).expect("a seed list");
        assert_eq!(nodes.iter().map(|n| n.addr().to_string()).collect::<Vec<_>>(), ["h1:7000", "h2:7001"]);
        assert!(parse_nodes("redis://h1:7000,", true).is_err());
        assert_eq!(parse_nodes("redis://h1:7000", true).expect("one seed").len(), 1);
    }

    #[test]
    fn a_ca_file_without_certificates_is_refused() {
        let dir = std::env::temp_dir().join(format!("jitgate-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").expect("write");
        let err = read_ca_file(&empty).expect_err("no certificate in it");
        assert!(err.to_string().contains("holds no certificate"), "{err}");
        let missing = read_ca_file(&dir.join("missing.pem")).expect_err("no such file");
        assert!(missing.to_string().contains("cannot read the Redis CA file"), "{missing}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
