//! What jitgate writes to its logs during a whole flow: every line about a request names it, and no secret and
//! no result row ever appears. One test per binary: it installs the process-wide log subscriber.

use jitgate_testkit as support;

use std::io::Write;
use std::sync::{Arc, Mutex};

use jitgate::aws::demo_table::demo_orders;
use jitgate::cli::{LogFormat, init_logging};
use jitgate::messages::APPROVE_ACTION;
use support::harness::*;

/// Collects every log line in memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_flow_logs_request_ids_but_never_secrets_or_rows() {
    let logs = Captured::default();
    // SAFETY of the test: this binary has one test, so nothing else reads RUST_LOG concurrently.
    unsafe { std::env::set_var("RUST_LOG", "info,jitgate=trace") };
    init_logging(LogFormat::Json, logs.clone());

    let h = Harness::start().await;
    let card = h
        .request(ALICE, "orders-by-customer customer_id=C000002 from=2026-01-02 until=2026-01-03 --reason \"INC-812\"")
        .await;
    h.click(MALLORY, &card, APPROVE_ACTION).await;
    h.ephemeral_for(MALLORY).await;
    h.click(BOB, &card, APPROVE_ACTION).await;
    h.card_update_containing(&card, "ran:").await;
    let results = h.thread_reply(&card).await;
    h.dm_for(ALICE).await;
    let link =
        results.all_text().split(['<', '|']).find(|p| p.starts_with("https://jitgate.test/audit/")).unwrap().to_owned();
    let signature = link.split("sig=").nth(1).unwrap().to_owned();
    let (bot_token, app_token, pagerduty_key) =
        (h.slack.bot_token().to_owned(), h.slack.app_token().to_owned(), h.pagerduty.api_key().to_owned());
    h.shutdown().await;

    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<serde_json::Value> =
        text.lines().map(|l| serde_json::from_str(l).expect("one JSON object per line")).collect();
    let about_request: Vec<&serde_json::Value> =
        lines.iter().filter(|l| l.to_string().contains(&format!("\"request_id\":\"{}\"", card.id))).collect();
    assert!(about_request.len() >= 3, "the request's lines carry its id:\n{text}");

    let mut forbidden: Vec<(String, &str)> = vec![
        (bot_token, "the Slack bot token"),
        (app_token, "the Slack app token"),
        (pagerduty_key, "the PagerDuty key"),
        ("test-link-secret-".to_owned(), "the link secret"),
        ("test-secret".to_owned(), "the AWS secret key"),
        (signature, "a signed link"),
    ];
    // Every value of every delivered row (emails and addresses are masked in results, but must not leak from logs
    // either), for the orders this request returned.
    for order in demo_orders(CUSTOMERS, ORDERS_PER_CUSTOMER).iter().filter(|o| o.customer_id == "C000002") {
        forbidden.push((order.email.clone(), "a row's email"));
        forbidden.push((order.shipping_address.clone(), "a row's address"));
        forbidden.push((format!("\"{}\"", order.total), "a row's total"));
        forbidden.push((order.order_id.clone(), "a row's order id"));
    }
    for (value, what) in &forbidden {
        assert!(
            !text.contains(value.as_str()),
            "{what} appears in the logs:\n{}",
            text.lines().find(|l| l.contains(value.as_str())).unwrap()
        );
    }
}
