//! What can go wrong talking to Redis, sorted by what the caller does about it.
//!
//! [`StoreError::Unavailable`] (Redis down or slow: the outcome of a write is unknown, readiness reports not-ready)
//! can be told apart from everything else (a bug or a damaged record). Either way nothing is approved or run: the bot
//! shows the user its generic internal error with a reference, and the log line carries this error's text.
//! Messages name the Redis endpoint but never the credentials from the URL.

use redis::{ErrorKind, RedisError, ServerErrorKind};

/// A failure of the request store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The Redis URL does not parse. The URL itself is not repeated: it may hold a password.
    #[error("the Redis URL is not valid: {0}")]
    InvalidUrl(String),
    /// A store setting (or a value passed to the store, like a rate limit) makes no sense.
    #[error("invalid store setting: {0}")]
    InvalidSettings(String),
    /// Redis cannot be reached, dropped the connection, is loading, read-only or did not answer in time.
    ///
    /// For a write (`create`, `transition`, `first_delivery`, `admit_new_request`) the outcome is then unknown:
    /// the command may have landed before the connection broke. Load the record again before deciding anything.
    #[error("Redis at {endpoint} is unreachable: {detail}")]
    Unavailable { endpoint: String, detail: String },
    /// The server's TLS certificate was not accepted: signed by a CA jitgate does not trust, or for another name.
    #[error(
        "the TLS certificate of Redis at {endpoint} is not trusted: {detail}; if it is signed by a private CA, \
         set redis.ca_file (or REDIS_CA_FILE) to that CA's PEM file, and check that REDIS_URL names the host the \
         certificate was issued for"
    )]
    UntrustedCertificate { endpoint: String, detail: String },
    /// Redis refused the user name and password from the URL.
    #[error(
        "Redis at {endpoint} refused the user name and password in REDIS_URL ({detail}); check them, and that the \
         ACL user is enabled"
    )]
    AuthenticationFailed { endpoint: String, detail: String },
    /// Redis answered with an error that retrying will not fix (wrong credentials, no permission, wrong key type).
    #[error("Redis at {endpoint} refused a command: {detail}")]
    Rejected { endpoint: String, detail: String },
    /// A stored record (or a script's reply) does not have the shape jitgate writes.
    #[error("the record stored for {what} is corrupt: {detail}")]
    Corrupt { what: String, detail: String },
    /// The caller asked for a transition the state machine cannot have produced (a bug, not a race).
    #[error("refused to store an invalid transition of {id}: {detail}")]
    InvalidTransition { id: String, detail: String },
    /// An envelope id that is empty or too long to be one Slack sent.
    #[error("envelope id not accepted: {0}")]
    InvalidEnvelopeId(String),
}

impl StoreError {
    /// True when Redis could not be used at all (as opposed to a bug or damaged data).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable { .. })
    }
}

/// Translates a client error into a [`StoreError`], naming `endpoint` and never `password`.
pub(super) fn classify(endpoint: &str, password: Option<&str>, err: &RedisError) -> StoreError {
    let detail = redact(&err.to_string(), password);
    let endpoint = endpoint.to_owned();
    // rustls's refusal reaches us as an I/O error; told apart here because no retry will fix it.
    if is_certificate_error(err) {
        return StoreError::UntrustedCertificate { endpoint, detail };
    }
    // `WRONGPASS` when logging in: the client reports it as failed authentication.
    if err.kind() == ErrorKind::AuthenticationFailed || detail.contains("WRONGPASS") {
        return StoreError::AuthenticationFailed { endpoint, detail };
    }
    let unavailable = err.is_io_error()
        || err.is_timeout()
        || err.is_connection_dropped()
        || err.is_connection_refusal()
        || matches!(
            err.kind(),
            ErrorKind::Server(
                ServerErrorKind::BusyLoading
                    | ServerErrorKind::TryAgain
                    | ServerErrorKind::ClusterDown
                    | ServerErrorKind::MasterDown
                    | ServerErrorKind::ReadOnly
            )
        );
    if unavailable {
        return StoreError::Unavailable { endpoint, detail };
    }
    match err.kind() {
        ErrorKind::Parse | ErrorKind::UnexpectedReturnType => {
            StoreError::Corrupt { what: "a Redis reply".to_owned(), detail }
        }
        _ => StoreError::Rejected { endpoint, detail },
    }
}

/// True when the error is rustls refusing the server's certificate, wherever the client wrapped it.
fn is_certificate_error(err: &RedisError) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(current) = source {
        if let Some(tls) = current.downcast_ref::<rustls::Error>() {
            return matches!(tls, rustls::Error::InvalidCertificate(_));
        }
        source = current.source();
    }
    // Some client paths keep only the text of the I/O error.
    err.to_string().contains("invalid peer certificate")
}

/// Removes the URL's password from a message, in case a client error ever echoes it.
pub(super) fn redact(message: &str, password: Option<&str>) -> String {
    match password {
        Some(secret) if !secret.is_empty() => message.replace(secret, "<redacted>"),
        _ => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_removes_the_password_wherever_it_appears() {
        assert_eq!(redact("auth hunter2 failed (hunter2)", Some("hunter2")), "auth <redacted> failed (<redacted>)");
        assert_eq!(redact("connection refused", None), "connection refused");
        assert_eq!(redact("connection refused", Some("")), "connection refused");
    }

    #[test]
    fn io_errors_are_unavailable_and_server_errors_are_rejected() {
        let refused = RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        let err = classify("127.0.0.1:6379", None, &refused);
        assert!(err.is_unavailable(), "{err:?}");
        assert!(err.to_string().starts_with("Redis at 127.0.0.1:6379 is unreachable: "), "{err}");

        let noperm = RedisError::from((ErrorKind::Server(ServerErrorKind::NoPerm), "no permission"));
        assert!(matches!(classify("h:1", None, &noperm), StoreError::Rejected { .. }));
        let loading = RedisError::from((ErrorKind::Server(ServerErrorKind::BusyLoading), "loading"));
        assert!(classify("h:1", None, &loading).is_unavailable());
    }
}
