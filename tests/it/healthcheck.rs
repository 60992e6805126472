//! `jitgate healthcheck`, the container health probe (the runtime image has no curl), run as the binary the
//! Dockerfile's HEALTHCHECK runs: against a tiny in-test server answering 200, one answering 503, a closed port, a
//! server that accepts and never answers, and with the URL derived from the config's `http.operations_listen`. Exit 0 only on
//! 200; otherwise exit 1 and exactly one line saying why.

use std::net::SocketAddr;
use std::process::Output;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use tokio::net::TcpListener;

/// Serves `status` at `/healthz` on a free loopback port until the test's runtime ends.
async fn serve(status: StatusCode) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind a free port");
    let addr = listener.local_addr().expect("local address");
    let app = Router::new().route("/healthz", get(move || async move { (status, "from the test server") }));
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// Runs `jitgate ARGS` with no config from the environment.
async fn jitgate(args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_jitgate"))
        .args(args)
        .env_remove("JITGATE_CONFIG")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .await
        .expect("run jitgate")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Asserts exit 1 with a single line on stderr containing `expected`, and returns that line.
fn assert_unhealthy(out: &Output, expected: &str) -> String {
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "stdout: {stdout}\nstderr: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line of reason: {stderr:?}");
    assert!(stderr.starts_with("unhealthy: ") && stderr.contains(expected), "expected {expected:?} in {stderr:?}");
    assert!(stdout.is_empty(), "{stdout}");
    stderr
}

#[tokio::test]
async fn a_server_answering_200_is_healthy() {
    let addr = serve(StatusCode::OK).await;
    let url = format!("http://{addr}/healthz");
    let out = jitgate(&["healthcheck", "--url", &url]).await;
    assert!(out.status.success(), "{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(text(&out.stdout), format!("healthy: {url} answered 200\n"));
}

#[tokio::test]
async fn a_server_answering_503_is_unhealthy() {
    let addr = serve(StatusCode::SERVICE_UNAVAILABLE).await;
    let url = format!("http://{addr}/healthz");
    let out = jitgate(&["healthcheck", "--url", &url]).await;
    assert_unhealthy(&out, &format!("{url} answered 503 Service Unavailable"));
}

#[tokio::test]
async fn only_200_counts_not_any_answer() {
    let addr = serve(StatusCode::OK).await;
    let out = jitgate(&["healthcheck", "--url", &format!("http://{addr}/elsewhere")]).await;
    assert_unhealthy(&out, "answered 404 Not Found");
}

#[tokio::test]
async fn a_closed_port_is_unhealthy_with_the_cause() {
    // A port that was free a moment ago and is closed now: nothing listens on it.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind a free port");
    let addr = listener.local_addr().expect("local address");
    drop(listener);
    let out = jitgate(&["healthcheck", "--url", &format!("http://{addr}/healthz")]).await;
    assert_unhealthy(&out, "Connection refused");
}

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind a free port");
    let addr = listener.local_addr().expect("local address");
    // Accept connections and hold them open without a byte in reply, until the test ends.
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    let out = jitgate(&["healthcheck", "--url", &format!("http://{addr}/healthz"), "--timeout", "200ms"]).await;
    assert_unhealthy(&out, "no answer within 200ms");
}

#[tokio::test]
async fn the_default_url_comes_from_http_operations_listen_probed_on_loopback() {
    let addr = serve(StatusCode::OK).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("jitgate.toml");
    // Listening on every address (as in a container) is probed on 127.0.0.1, where the test server is.
    // Probes belong to the operations listener, not the public one (whose port here has nothing behind it).
    let toml = format!(
        "[aws]\nregion = \"us-east-1\"\n\n[http]\nlisten = \"0.0.0.0:1\"\noperations_listen = \"0.0.0.0:{}\"\n",
        addr.port()
    );
    std::fs::write(&config, toml).expect("write config");
    let out = jitgate(&["--config", &config.display().to_string(), "healthcheck"]).await;
    assert!(out.status.success(), "{}{}", text(&out.stdout), text(&out.stderr));
    assert_eq!(text(&out.stdout), format!("healthy: http://127.0.0.1:{}/healthz answered 200\n", addr.port()));
}

#[tokio::test]
async fn without_a_url_or_a_config_it_is_unhealthy_not_a_usage_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("jitgate.toml").display().to_string();
    let out = jitgate(&["--config", &missing, "healthcheck"]).await;
    assert_unhealthy(&out, "cannot tell which URL to probe");
}

#[test]
fn healthz_url_keeps_a_specific_address_and_maps_unspecified_ones_to_loopback() {
    use jitgate::cli::healthz_url;
    assert_eq!(healthz_url("10.1.2.3:9000".parse().unwrap()), "http://10.1.2.3:9000/healthz");
    assert_eq!(healthz_url("0.0.0.0:8080".parse().unwrap()), "http://127.0.0.1:8080/healthz");
    assert_eq!(healthz_url("[::]:8080".parse().unwrap()), "http://[::1]:8080/healthz");
    assert_eq!(healthz_url("127.0.0.1:8080".parse().unwrap()), "http://127.0.0.1:8080/healthz");
}
