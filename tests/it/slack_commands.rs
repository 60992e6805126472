//! What people type: every malformed command gets an answer saying what was wrong and the right usage, the form
//! opens when something is missing, and the informational commands answer.

use jitgate_testkit as support;

use support::harness::*;

/// Where the answer to a command is expected.
enum Answer {
    /// In the ack itself (instant, no I/O).
    Ack(&'static str),
    /// As an ephemeral message after the ack.
    Ephemeral(&'static str),
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_commands_each_get_a_precise_answer_and_nothing_is_requested() {
    let h = Harness::start().await;
    let cases: Vec<(&str, Answer)> = vec![
        ("qeury orders-by-customer", Answer::Ack("`qeury` is not a jitgate command. Did you mean `query`?")),
        ("stauts", Answer::Ack("Did you mean `status`?")),
        ("deploy prod", Answer::Ack("`deploy` is not a jitgate command.")),
        ("query orders-by-customer customer_id=\"C000002", Answer::Ack("A quote is opened but never closed.")),
        ("query orders-by-customer customer_id=C000002 --reason", Answer::Ack("`--reason` needs a text")),
        ("query orders-by-customer --reason a --reason b", Answer::Ack("`--reason` is given twice")),
        ("query orders-by-customer --force", Answer::Ack("`--force` is not an option")),
        (
            "query orders-by-customer C000002",
            Answer::Ack("`C000002` is not a parameter: write parameters as name=value."),
        ),
        ("query orders-by-customer =C000002", Answer::Ack("has no parameter name before `=`")),
        (
            "query orders-by-customer customer_id=C1 customer_id=C2",
            Answer::Ack("Parameter `customer_id` is given more than once."),
        ),
        ("cancel", Answer::Ack("`cancel` needs a request id.")),
        ("cancel 42", Answer::Ack("`42` is not a request id.")),
        ("status JIT-7Q2M4X extra", Answer::Ack("`status` takes no `extra`.")),
        ("runbooks please", Answer::Ack("`runbooks` takes no `please`.")),
        ("help me", Answer::Ack("`help` takes no `me`.")),
        (
            "query order-by-customer customer_id=C000002 from=2026-01-01 until=2026-01-02 --reason x",
            Answer::Ephemeral("There is no runbook `order-by-customer`. Did you mean `orders-by-customer`?"),
        ),
        ("query drop-table x=1 --reason x", Answer::Ephemeral("There is no runbook `drop-table`.")),
        (
            "query orders-by-customer customer_id=42 from=2026-01-01 until=2026-01-02 --reason x",
            Answer::Ephemeral("customer_id"),
        ),
        (
            "query orders-by-customer customer_id=C000002 from=2026-13-01 until=2026-01-02 --reason x",
            Answer::Ephemeral("from"),
        ),
        (
            "query orders-by-customer customer_id=C000002 from=2026-02-01 until=2026-01-01 --reason x",
            Answer::Ephemeral("was not requested"),
        ),
        (
            "query orders-by-customer customer_id=C000002 from=2026-01-01 until=2026-01-02 colour=red --reason x",
            Answer::Ephemeral("colour"),
        ),
        ("query orders-by-status status=lost since=2026-01-01T00:00:00Z --reason x", Answer::Ephemeral("status")),
        ("query orders-by-status status=paid since=yesterday --reason x", Answer::Ephemeral("since")),
        (
            "query orders-by-status status=paid since=2026-01-01T00:00:00Z min_total=-5 --reason x",
            Answer::Ephemeral("min_total"),
        ),
        ("query order-by-id order_id=\"O1 OR 1=1\" --reason x", Answer::Ephemeral("order_id")),
        ("status JIT-ZZZZZZ", Answer::Ephemeral("JIT-ZZZZZZ does not exist")),
        ("cancel JIT-ZZZZZZ", Answer::Ephemeral("JIT-ZZZZZZ does not exist")),
    ];
    assert!(cases.len() >= 20);
    for (text, answer) in &cases {
        let envelope = h.slash(ALICE, text).await;
        let ack = envelope.ack().await.unwrap_or_else(|e| panic!("{text}: not acked: {e:?}"));
        match answer {
            Answer::Ack(expected) => {
                let payload = ack.payload.clone().unwrap_or_default();
                let shown = payload["text"].as_str().unwrap_or_default();
                assert!(shown.contains(expected), "{text}: expected {expected:?} in the ack, got {shown:?}");
                assert!(shown.contains("Usage: `/jit"), "{text}: the ack shows the right usage: {shown:?}");
                assert_eq!(payload["response_type"], "ephemeral", "{text}");
            }
            Answer::Ephemeral(expected) => {
                assert!(ack_is_bare(&ack), "{text}: {ack:?}");
                let shown = h.ephemeral_for(ALICE).await;
                assert!(shown.contains(expected), "{text}: expected {expected:?}, got {shown:?}");
            }
        }
    }
    // Nothing reached the approval channel, and every malformed attempt is on the record.
    // All but the last two (looking up or cancelling an unknown id is an answer, not a refused request).
    let refusals = cases.len() as u64 - 2;
    // One by one up to the per-user limit, the rest by count once the limit's window is over.
    let appended = refusals.min(u64::from(jitgate::engine::REFUSALS_APPENDED.max));
    h.refusals_recorded(ALICE, refusals).await;
    let report = h.audit_entries_at_least(appended).await;
    assert!(report.is_intact(), "{report}");
    assert_eq!(report.verified, appended, "{report}");
    h.clock.advance(time::Duration::try_from(jitgate::engine::REFUSALS_APPENDED.window).unwrap());
    h.sweep().await;
    let mut audited = 0;
    h.audit()
        .for_each_entry(|entry| match entry.event {
            jitgate::audit::AuditEvent::Refused { .. } => audited += 1,
            jitgate::audit::AuditEvent::RefusalsCounted { count, .. } => audited += count,
            _ => {}
        })
        .await
        .unwrap();
    assert_eq!(audited, refusals, "every refusal is audited once, one by one or by count");
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_parameters_open_a_form_that_validates_before_requesting() {
    let h = Harness::start().await;
    let envelope = h.slash(ALICE, "query orders-by-customer customer_id=C000002").await;
    assert!(ack_is_bare(&envelope.ack().await.unwrap()));
    let view = h.slack.next_view_opened_for(ALICE).await;
    assert_eq!(view.view["callback_id"], "jit_query");
    let blocks = view.view["blocks"].as_array().unwrap();
    let customer = blocks.iter().find(|b| b["block_id"] == "customer_id").expect("a customer_id input");
    assert_eq!(customer["element"]["initial_value"], "C000002", "what was typed is kept");
    assert!(blocks.iter().any(|b| b["block_id"] == "from" && b["element"]["type"] == "datepicker"));

    // A wrong value is shown next to its input, and the form stays open.
    let bad = serde_json::json!({
        "customer_id": { "value": { "type": "plain_text_input", "value": "nobody" } },
        "from": { "value": { "type": "datepicker", "selected_date": "2026-01-02" } },
        "until": { "value": { "type": "datepicker", "selected_date": "2026-01-03" } },
        "reason": { "value": { "type": "plain_text_input", "value": "" } },
    });
    let submitted = h.slack.send_view_submission(ALICE, &view.view_id, bad).await;
    let ack = submitted.ack().await.unwrap();
    let payload = ack.payload.expect("errors in the ack");
    assert_eq!(payload["response_action"], "errors");
    assert!(payload["errors"]["customer_id"].as_str().unwrap().contains("pattern"), "{payload}");
    assert!(payload["errors"]["reason"].as_str().unwrap().contains("reason is required"), "{payload}");

    let good = serde_json::json!({
        "customer_id": { "value": { "type": "plain_text_input", "value": "C000002" } },
        "from": { "value": { "type": "datepicker", "selected_date": "2026-01-02" } },
        "until": { "value": { "type": "datepicker", "selected_date": "2026-01-03" } },
        "reason": { "value": { "type": "plain_text_input", "value": "INC-900" } },
    });
    let submitted = h.slack.send_view_submission(ALICE, &view.view_id, good).await;
    assert!(ack_is_bare(&submitted.ack().await.unwrap()));
    let card = h.slack.next_message_in(ONCALL).await;
    assert!(card.all_text().contains("INC-900") && card.all_text().contains("\"C000002\""), "{}", card.all_text());
    assert!(h.ephemeral_for(ALICE).await.contains("submitted"));
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bare_query_offers_the_runbooks_then_their_form() {
    let h = Harness::start().await;
    let envelope = h.slash(ALICE, "query").await;
    assert!(ack_is_bare(&envelope.ack().await.unwrap()));
    let picker = h.slack.next_view_opened_for(ALICE).await;
    assert_eq!(picker.view["callback_id"], "jit_pick");
    let chosen = serde_json::json!({
        "runbook": { "value": { "type": "static_select", "selected_option": {
            "text": { "type": "plain_text", "text": "order-by-id" }, "value": "order-by-id" }  } },
    });
    let submitted = h.slack.send_view_submission(ALICE, &picker.view_id, chosen).await;
    let payload = submitted.ack().await.unwrap().payload.expect("the form replaces the picker");
    assert_eq!(payload["response_action"], "update");
    assert_eq!(payload["view"]["callback_id"], "jit_query");
    h.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn help_runbooks_and_status_answer_the_user() {
    let h = Harness::start().await;
    let help = h.slash(ALICE, "help").await.ack().await.unwrap();
    assert!(help.payload.unwrap()["text"].as_str().unwrap().contains("/jit query <runbook>"));

    let runbooks = h.slash(ALICE, "runbooks").await;
    assert!(ack_is_bare(&runbooks.ack().await.unwrap()));
    let list = h.ephemeral_for(ALICE).await;
    for id in ["*order-by-id* order_id=…", "*orders-by-customer* customer_id=… from=… until=…", "[min_total=…]"]
    {
        assert!(list.contains(id), "{list}");
    }

    let card = h.request(ALICE, "order-by-id order_id=O000010001 --reason \"INC-1 lookup\"").await;
    let status = h.slash(ALICE, &format!("status {}", card.id)).await;
    status.ack().await.unwrap();
    let shown = h.ephemeral_for(ALICE).await;
    assert!(shown.contains(card.id.as_str()) && shown.contains("Waiting for approval"), "{shown}");
    let recent = h.slash(ALICE, "status").await;
    recent.ack().await.unwrap();
    assert!(h.ephemeral_for(ALICE).await.contains(card.id.as_str()));
    h.shutdown().await;
}
