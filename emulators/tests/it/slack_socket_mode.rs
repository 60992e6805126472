//! Socket mode over a real WebSocket, driven by a raw tokio-tungstenite client: hello, envelopes and acks,
//! missed acks and redelivery, disconnects, duplicates, and the payloads of user interactions.

use crate::support;

use std::collections::BTreeSet;
use std::time::Duration;

use futures::FutureExt;
use jitgate_emulators::slack::{AckError, FakeSlack};
use serde_json::{Value, json};
use support::{ALICE, Api, BOB, ONCALL, SocketClient, approval_card, world};
use tokio_tungstenite::tungstenite::Message as WsMessage;

fn keys(value: &Value) -> BTreeSet<&str> {
    value.as_object().map(|o| o.keys().map(String::as_str).collect()).unwrap_or_default()
}

#[tokio::test]
async fn connecting_gets_a_hello_with_what_slack_morphism_requires() {
    let slack = FakeSlack::start(world()).await;
    let (first, hello) = SocketClient::connect(&slack).await;
    assert!(first.url.starts_with(&format!("ws://{}/link/?ticket=", slack.addr())), "{}", first.url);
    assert_eq!(hello["type"], "hello");
    assert_eq!(hello["connection_info"]["app_id"], "A0JITGATE");
    assert_eq!(hello["num_connections"], 1);
    assert!(hello["debug_info"]["host"].as_str().is_some_and(|h| !h.is_empty()));
    assert_eq!(slack.wait_for_connections(1).await.len(), 1);

    let (_second, hello) = SocketClient::connect(&slack).await;
    assert_eq!(hello["num_connections"], 2);
    assert_eq!(slack.connections(), 2);

    // A ticket is good for one connection only.
    let reused = tokio_tungstenite::connect_async(first.url.as_str()).await;
    assert!(reused.is_err(), "a used ticket must be refused");
    let findings = slack.take_findings();
    assert!(findings.iter().any(|f| f.contains("already used ticket")), "{findings:?}");
}

#[tokio::test]
async fn slash_command_is_delivered_once_and_its_ack_payload_returned() {
    let slack = FakeSlack::start(world()).await;
    let (mut socket, _) = SocketClient::connect(&slack).await;

    let command = slack.send_slash_command(ALICE, "#oncall", "/jit", "query orders customer_id=C1").await;
    let envelope = socket.next_frame().await;
    assert_eq!(envelope["type"], "slash_commands");
    assert_eq!(envelope["accepts_response_payload"], true);
    assert_eq!(envelope["envelope_id"], command.envelope_id());
    let payload = &envelope["payload"];
    assert_eq!((&payload["command"], &payload["text"]), (&json!("/jit"), &json!("query orders customer_id=C1")));
    assert_eq!(
        (&payload["user_id"], &payload["channel_id"], &payload["channel_name"]),
        (&json!(ALICE), &json!(ONCALL), &json!("oncall"))
    );
    assert_eq!(payload["trigger_id"].as_str(), command.trigger_id());

    let reply = json!({"text": "JIT-1 submitted", "response_type": "ephemeral"});
    socket.ack(&envelope, Some(reply.clone())).await;
    let ack = command.ack().await.expect("acked in time");
    assert_eq!(ack.payload, Some(reply));
    assert_eq!(ack.retry_attempt, 0);
    assert!(ack.in_time);
    assert_eq!(command.deliveries().len(), 1);

    let other = slack.send_slash_command(BOB, ONCALL, "/jit", "help").await;
    let second = socket.next_frame().await;
    assert_ne!(second["envelope_id"], envelope["envelope_id"], "fresh envelope ids");
    assert_ne!(second["payload"]["trigger_id"], envelope["payload"]["trigger_id"], "fresh trigger ids");
    socket.ack(&second, None).await;
    assert_eq!(other.ack().await.expect("acked").payload, None);
}

#[tokio::test]
async fn an_ack_payload_nobody_looked_at_is_unread_output() {
    let slack = FakeSlack::start(world()).await;
    let (mut socket, _) = SocketClient::connect(&slack).await;
    let command = slack.send_slash_command(ALICE, ONCALL, "/jit", "help").await;
    let envelope = socket.next_frame().await;
    socket.ack(&envelope, Some(json!({"text": "usage: /jit query …"}))).await;
    // Frames on one socket are handled in order: once the next envelope's ack is in, so is this one.
    let next = slack.send_slash_command(BOB, ONCALL, "/jit", "help").await;
    let second = socket.next_frame().await;
    socket.ack(&second, None).await;
    next.ack().await.expect("acked");
    let unread = slack.unread();
    assert!(unread.iter().any(|line| line.contains("ack payload") && line.contains("usage: /jit query")), "{unread:?}");
    command.ack().await.expect("acked");
}

#[tokio::test]
async fn a_missed_ack_is_redelivered_to_another_connection() {
    let slack = FakeSlack::start(world().with_ack_timeout(Duration::from_secs(1)).with_redeliveries(2)).await;
    let (mut a, _) = SocketClient::connect(&slack).await;
    let (mut b, _) = SocketClient::connect(&slack).await;

    let command = slack.send_slash_command(ALICE, ONCALL, "/jit", "status").await;
    let first = command.deliveries()[0].connection;
    let (silent, responsive) = if first == slack.connection_ids()[0] { (&mut a, &mut b) } else { (&mut b, &mut a) };
    let missed = silent.next_frame().await;
    // The silent replica never acks; Slack tries the other connection.
    let again = responsive.next_text().await;
    assert_eq!(
        serde_json::from_str::<Value>(&again).ok(),
        Some(missed.clone()),
        "identical envelope, same envelope_id"
    );
    responsive.ack(&missed, None).await;

    let ack = command.ack().await.expect("the redelivery was acked");
    assert_eq!(ack.retry_attempt, 1);
    assert_ne!(ack.connection, first);
    let deliveries = command.deliveries();
    assert_eq!(deliveries.iter().map(|d| d.retry_attempt).collect::<Vec<_>>(), [0, 1]);
    assert_ne!(deliveries[0].connection, deliveries[1].connection);
}

#[tokio::test]
async fn an_envelope_never_acked_fails_after_the_last_redelivery() {
    let slack = FakeSlack::start(world().with_ack_timeout(Duration::from_millis(150)).with_redeliveries(1)).await;
    let (mut socket, _) = SocketClient::connect(&slack).await;
    let command = slack.send_slash_command(ALICE, ONCALL, "/jit", "status").await;
    let original = socket.next_frame().await;
    let retried = socket.next_frame().await;
    assert_eq!(original, retried, "with one connection the redelivery goes to the same one");

    let error = command.ack().await.expect_err("never acked");
    assert!(matches!(error, AckError::NotAcked { deliveries: 2, .. }), "{error:?}");
    assert!(error.to_string().contains("not acked within 150ms"), "{error}");

    // An ack after Slack gave up is recorded as late.
    socket.ack(&original, None).await;
    let late = command.wait_for_acks(1).await;
    assert!(!late[0].in_time);
    assert!(matches!(command.ack().await, Err(AckError::Late { .. })));
}

#[tokio::test]
async fn disconnect_sends_slacks_frame_then_closes_the_socket() {
    let slack = FakeSlack::start(world()).await;
    let (mut socket, _) = SocketClient::connect(&slack).await;
    let connection = slack.wait_for_connections(1).await[0];

    assert_eq!(slack.disconnect("refresh_requested"), connection);
    let frame = socket.next_frame().await;
    assert_eq!(frame["type"], "disconnect");
    assert_eq!(frame["reason"], "refresh_requested");
    assert!(frame["debug_info"]["host"].is_string(), "slack-morphism needs debug_info.host: {frame}");
    socket.expect_closed().await;
    slack.wait_for_closed(connection).await;
    assert_eq!(slack.connections(), 0);

    // A warning leaves the socket open.
    let (mut warned, _) = SocketClient::connect(&slack).await;
    slack.disconnect("warning");
    assert_eq!(warned.next_frame().await["reason"], "warning");
    assert_eq!(slack.connections(), 1);
    warned.send(WsMessage::Ping(vec![1, 2, 3].into())).await;
    assert_eq!(warned.next_message().await, Some(WsMessage::Pong(vec![1, 2, 3].into())), "pings are answered");
}

#[tokio::test]
async fn a_duplicate_reaches_another_replica_with_the_same_envelope_id() {
    let slack = FakeSlack::start(world()).await;
    let (mut a, _) = SocketClient::connect(&slack).await;
    let (mut b, _) = SocketClient::connect(&slack).await;
    let ids = slack.wait_for_connections(2).await;

    let command = slack.send_slash_command(ALICE, ONCALL, "/jit", "cancel JIT-1").await;
    let first = command.deliveries()[0].connection;
    let duplicate_to = slack.send_duplicate(&command);
    assert_ne!(duplicate_to, first);
    let (text_a, text_b) = (a.next_text().await, b.next_text().await);
    assert_eq!(text_a, text_b, "byte-identical frames");
    assert_eq!(ids.len(), 2);

    let envelope: Value = serde_json::from_str(&text_a).unwrap_or_default();
    a.ack(&envelope, None).await;
    b.ack(&envelope, None).await;
    let acks = command.wait_for_acks(2).await;
    assert_eq!(acks.iter().map(|a| a.connection).collect::<BTreeSet<_>>().len(), 2);
    assert!(command.deliveries()[1].duplicate);
}

#[tokio::test]
async fn envelopes_are_spread_over_connections_one_copy_each() {
    let slack = FakeSlack::start(world()).await;
    let (mut a, _) = SocketClient::connect(&slack).await;
    let (mut b, _) = SocketClient::connect(&slack).await;
    let mut handles = Vec::new();
    for n in 0..4 {
        handles.push(slack.send_slash_command(ALICE, ONCALL, "/jit", &format!("status JIT-{n}")).await);
    }
    let per_connection: Vec<usize> = slack
        .connection_ids()
        .iter()
        .map(|c| handles.iter().filter(|h| h.deliveries()[0].connection == *c).count())
        .collect();
    assert!(per_connection.iter().all(|n| *n > 0), "both connections get envelopes: {per_connection:?}");
    assert!(handles.iter().all(|h| h.deliveries().len() == 1));
    for _ in 0..per_connection[0] {
        let frame = a.next_frame().await;
        a.ack(&frame, None).await;
    }
    for _ in 0..per_connection[1] {
        let frame = b.next_frame().await;
        b.ack(&frame, None).await;
    }
    for handle in &handles {
        handle.ack().await.expect("acked");
    }
}

#[tokio::test]
async fn clicking_a_button_sends_block_actions_with_the_card() {
    let slack = FakeSlack::start(world()).await;
    let api = Api::bot(&slack);
    let (mut socket, _) = SocketClient::connect(&slack).await;
    let posted = api
        .json("chat.postMessage", json!({"channel": ONCALL, "text": "JIT-9", "blocks": approval_card("JIT-9")}))
        .await;
    let ts = posted.ok()["ts"].as_str().unwrap_or_default().to_owned();
    let card = slack.next_message_in(ONCALL).await;
    assert_eq!(card.buttons().iter().map(|b| b.action_id.as_str()).collect::<Vec<_>>(), ["approve", "deny"]);

    let click = slack.send_block_action(BOB, ONCALL, &ts, "approve", "JIT-9").await;
    let envelope = socket.next_frame().await;
    assert_eq!((&envelope["type"], &envelope["accepts_response_payload"]), (&json!("interactive"), &json!(false)));
    let payload = &envelope["payload"];
    assert_eq!(payload["type"], "block_actions");
    assert_eq!(payload["user"]["id"], BOB);
    assert_eq!(
        payload["container"],
        json!({"type": "message", "message_ts": ts, "channel_id": ONCALL, "is_ephemeral": false})
    );
    assert_eq!(payload["actions"][0]["action_id"], "approve");
    assert_eq!(payload["actions"][0]["block_id"], "decision");
    assert_eq!(payload["actions"][0]["value"], "JIT-9");
    assert_eq!(payload["message"]["ts"], ts.as_str());
    assert_eq!(payload["message"]["blocks"], approval_card("JIT-9"));
    socket.ack(&envelope, None).await;
    assert_eq!(click.ack().await.expect("acked").payload, None);

    // A user cannot click a button the card does not have.
    let missing = std::panic::AssertUnwindSafe(slack.send_block_action(BOB, ONCALL, &ts, "escalate", "JIT-9"))
        .catch_unwind()
        .await;
    let message = missing.expect_err("no such button").downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(message.contains("no button \"escalate\""), "{message}");

    // Buttons on an ephemeral are clicked without a `message` in the payload.
    let ephemeral = api
        .json(
            "chat.postEphemeral",
            json!({"channel": ONCALL, "user": ALICE, "text": "sure?", "blocks": approval_card("JIT-10")}),
        )
        .await;
    let ephemeral_ts = ephemeral.ok()["message_ts"].as_str().unwrap_or_default().to_owned();
    slack.next_ephemeral_for(ALICE).await;
    let click = slack.send_block_action(ALICE, ONCALL, &ephemeral_ts, "deny", "JIT-10").await;
    let envelope = socket.next_frame().await;
    assert_eq!(envelope["payload"]["container"]["is_ephemeral"], true);
    assert!(envelope["payload"].get("message").is_none());
    socket.ack(&envelope, None).await;
    click.ack().await.expect("acked");
}

#[tokio::test]
async fn submitting_a_modal_sends_its_state_and_the_ack_can_answer_with_errors() {
    let slack = FakeSlack::start(world()).await;
    let api = Api::bot(&slack);
    let (mut socket, _) = SocketClient::connect(&slack).await;
    let command = slack.send_slash_command(ALICE, ONCALL, "/jit", "query").await;
    let envelope = socket.next_frame().await;
    socket.ack(&envelope, None).await;
    command.ack().await.expect("acked");
    let modal = json!({"type": "modal", "callback_id": "reason", "notify_on_close": true,
        "title": {"type": "plain_text", "text": "Why?"}, "submit": {"type": "plain_text", "text": "Send"},
        "blocks": [{"type": "input", "block_id": "why", "label": {"type": "plain_text", "text": "Reason"},
                    "element": {"type": "plain_text_input", "action_id": "text"}}]});
    let opened = api.json("views.open", json!({"trigger_id": command.trigger_id(), "view": modal})).await;
    let view_id = opened.ok()["view"]["id"].as_str().unwrap_or_default().to_owned();
    slack.next_view_opened_for(ALICE).await;

    let values = json!({"why": {"text": {"type": "plain_text_input", "value": "INC-812"}}});
    let submission = slack.send_view_submission(ALICE, &view_id, values.clone()).await;
    let envelope = socket.next_frame().await;
    assert_eq!((&envelope["type"], &envelope["accepts_response_payload"]), (&json!("interactive"), &json!(true)));
    let payload = &envelope["payload"];
    assert_eq!(payload["type"], "view_submission");
    assert_eq!(payload["view"]["id"], view_id.as_str());
    assert_eq!(payload["view"]["state"]["values"], values);
    assert_eq!(payload["view"]["callback_id"], "reason");
    let errors = json!({"response_action": "errors", "errors": {"why": "Say which incident"}});
    socket.ack(&envelope, Some(errors.clone())).await;
    assert_eq!(submission.ack().await.expect("acked").payload, Some(errors));

    let closed = slack.send_view_closed(ALICE, &view_id).await;
    let envelope = socket.next_frame().await;
    assert_eq!(envelope["payload"]["type"], "view_closed");
    assert_eq!(keys(&envelope), BTreeSet::from(["accepts_response_payload", "envelope_id", "payload", "type"]));
    socket.ack(&envelope, None).await;
    closed.ack().await.expect("acked");
}

#[tokio::test]
async fn malformed_frames_and_stray_acks_become_findings() {
    let slack = FakeSlack::start(world()).await;
    let (mut socket, _) = SocketClient::connect(&slack).await;
    socket.send(WsMessage::Binary(vec![1, 2].into())).await;
    socket.send_text("not json".into()).await;
    socket.send_text(json!({"hello": "there"}).to_string()).await;
    socket.send_text(json!({"envelope_id": "nobody-sent-this"}).to_string()).await;
    // The findings arrive asynchronously over the socket; a command round trip orders them before us.
    let command = slack.send_slash_command(ALICE, ONCALL, "/jit", "help").await;
    let envelope = socket.next_frame().await;
    socket.ack(&envelope, None).await;
    command.ack().await.expect("acked");

    let findings = slack.take_findings();
    assert_eq!(findings.len(), 4, "{findings:?}");
    assert!(findings[0].contains("binary frame"));
    assert!(findings[1].contains("not a JSON object"));
    assert!(findings[2].contains("without envelope_id"));
    assert!(findings[3].contains("unknown envelope_id"));
}
