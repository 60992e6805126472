//! The request store against a TLS-only `redis-server` (`--port 0 --tls-port …`) whose only user is an ACL user, as
//! managed Redis services run it: certificates are made here (a private CA and a server certificate for
//! 127.0.0.1), the server is started by the test. A certificate jitgate cannot trust, and a wrong password, are clear
//! errors at start-up that never show the password.

use jitgate_testkit as support;

use std::path::PathBuf;

use jitgate::store::{Admission, Created, RateLimit, RequestStore, StoreError, StoreSettings};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use support::fixtures::{pending_request, user, wall_clock_now};
use support::redis_servers::TlsRedis;

const USER: &str = "jitgate-bot";
const PASSWORD: &str = "tls-test-password-7f3a";

/// A private CA: its certificate (PEM) and what signs with it.
struct Ca {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

fn make_ca(name: &str) -> Ca {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    let key = KeyPair::generate().expect("CA key");
    let pem = params.self_signed(&key).expect("self-signed CA").pem();
    Ca { pem, issuer: Issuer::new(params, key) }
}

/// A server certificate for 127.0.0.1 signed by `ca`: (certificate PEM, key PEM).
fn server_certificate(ca: &Ca) -> (String, String) {
    let params = CertificateParams::new(vec!["127.0.0.1".to_owned()]).expect("server params");
    let key = KeyPair::generate().expect("server key");
    let cert = params.signed_by(&key, &ca.issuer).expect("signed by the CA");
    (cert.pem(), key.serialize_pem())
}

/// A TLS Redis with a certificate from a fresh private CA, and that CA's PEM file.
fn tls_redis() -> (TlsRedis, PathBuf) {
    let ca = make_ca("jitgate test CA");
    let (cert, key) = server_certificate(&ca);
    let server = TlsRedis::start(&cert, &key, USER, PASSWORD);
    let ca_file = server.dir().join("ca.pem");
    std::fs::write(&ca_file, &ca.pem).expect("write the CA file");
    (server, ca_file)
}

fn settings(ca_file: Option<PathBuf>) -> StoreSettings {
    StoreSettings { key_prefix: support::unique("tls"), ca_file, ..StoreSettings::default() }
}

fn url(server: &TlsRedis, password: &str) -> String {
    format!("rediss://{USER}:{password}@127.0.0.1:{}", server.port)
}

#[tokio::test]
async fn a_tls_only_redis_with_an_acl_user_is_used_with_the_configured_ca() {
    let (server, ca_file) = tls_redis();
    let store = RequestStore::connect(&url(&server, PASSWORD), settings(Some(ca_file)))
        .await
        .unwrap_or_else(|err| panic!("connects over TLS as the ACL user: {err}\n{}", server.log()));

    let request = pending_request(wall_clock_now(), 1, std::time::Duration::from_secs(600));
    assert_eq!(store.create(&request).await.expect("create"), Created::Inserted);
    assert_eq!(store.load(&request.id).await.expect("load"), Some(request));
    let limit = RateLimit { max: 1, window: std::time::Duration::from_secs(60) };
    assert_eq!(store.admit_new_request(&user("UALICE"), limit, wall_clock_now()).await.unwrap(), Admission::Admitted);
    assert!(store.first_delivery("tls-envelope-1", std::time::Duration::from_secs(60)).await.unwrap());
}

#[tokio::test]
async fn a_certificate_from_another_ca_is_a_clear_start_up_error() {
    let (server, _right_ca) = tls_redis();
    let other = make_ca("some other CA");
    let wrong_ca = server.dir().join("other-ca.pem");
    std::fs::write(&wrong_ca, &other.pem).expect("write the other CA");

    let err = RequestStore::connect(&url(&server, PASSWORD), settings(Some(wrong_ca)))
        .await
        .expect_err("the server's certificate is not from the configured CA");
    assert!(matches!(err, StoreError::UntrustedCertificate { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains(&format!("the TLS certificate of Redis at 127.0.0.1:{} is not trusted", server.port)),
        "{text}"
    );
    assert!(text.contains("REDIS_CA_FILE"), "says what to do: {text}");
    assert!(!text.contains(PASSWORD), "{text}");
}

#[tokio::test]
async fn without_a_ca_file_only_the_os_roots_are_trusted() {
    // The private CA is not among the OS roots, so the certificate is refused: TLS is never "accept anything".
    let (server, _ca_file) = tls_redis();
    let err = RequestStore::connect(&url(&server, PASSWORD), settings(None)).await.expect_err("private CA");
    assert!(matches!(err, StoreError::UntrustedCertificate { .. }), "{err:?}");
}

#[tokio::test]
async fn a_wrong_password_is_a_clear_error_that_does_not_show_it() {
    let (server, ca_file) = tls_redis();
    let wrong = "not-the-password-91c2";
    let err = RequestStore::connect(&url(&server, wrong), settings(Some(ca_file))).await.expect_err("wrong password");
    assert!(matches!(err, StoreError::AuthenticationFailed { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("refused the user name and password in REDIS_URL"), "{text}");
    assert!(!text.contains(wrong) && !text.contains(PASSWORD), "{text}");
}

#[tokio::test]
async fn a_ca_file_with_a_plain_redis_url_is_refused_as_a_setting() {
    let (server, ca_file) = tls_redis();
    let plain = format!("redis://{USER}:{PASSWORD}@127.0.0.1:{}", server.port);
    let err = RequestStore::connect(&plain, settings(Some(ca_file))).await.expect_err("CA file without TLS");
    assert!(matches!(err, StoreError::InvalidSettings(_)), "{err:?}");
    assert!(err.to_string().contains("use rediss://"), "{err}");
}
