//! The process-wide TLS crypto provider.
//!
//! Every rustls user in jitgate — the AWS SDK, reqwest (Slack Web API, PagerDuty, OTLP export), hyper-rustls
//! (slack-morphism's Web API calls), tokio-tungstenite (socket mode's wss://) and any later TLS client such as a
//! `rediss://` connection — builds its configuration from rustls's default provider. aws-lc-rs is the only back end
//! compiled in (`deny.toml` bans `ring`), so rustls would pick it on its own; installing it explicitly makes the choice
//! visible and keeps it if a dependency ever turns on a second back end, in which case rustls would refuse to guess.

/// Installs aws-lc-rs as rustls's default provider unless one is installed already. Cheap; call before any TLS use.
pub fn install_crypto_provider() {
    // Err only means a provider is installed already (an earlier call, or a test that installed its own).
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_installed_provider_is_aws_lc_rs() {
        super::install_crypto_provider();
        let provider = rustls::crypto::CryptoProvider::get_default().expect("a provider is installed");
        let aws_lc = rustls::crypto::aws_lc_rs::default_provider();
        let names = |p: &rustls::crypto::CryptoProvider| {
            p.cipher_suites.iter().map(|s| format!("{:?}", s.suite())).collect::<Vec<_>>()
        };
        assert_eq!(names(provider), names(&aws_lc));
    }
}
