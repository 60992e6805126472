//! Faithfulness: for every recorded Slack sample in `samples/slack/`, the fake produces the same
//! shape (same top-level keys, same JSON types) for the same method, error or envelope. A sample nobody maps
//! here fails the test, so new samples cannot be silently ignored.

use crate::support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use jitgate_emulators::slack::FakeSlack;
use serde_json::{Value, json};
use support::{ALICE, Api, OLD, ONCALL, RANDOM, SocketClient, world};

fn samples_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../samples/slack");
    assert!(dir.is_dir(), "Slack samples not found at {}", dir.display());
    dir
}

/// Top-level key → JSON type name.
fn shape(value: &Value) -> BTreeMap<String, &'static str> {
    let kind = |v: &Value| match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    value.as_object().map(|o| o.iter().map(|(k, v)| (k.clone(), kind(v))).collect()).unwrap_or_default()
}

/// Keys the fake may add beyond a sample, each with the evidence that real Slack sends them.
fn allowed_extras(sample: &str) -> BTreeSet<&'static str> {
    match sample {
        // Real invalid_blocks answers carry the problems (public bug reports, e.g.
        // ryanrosello-og/playwright-slack-report#180); the sample is derived with the bare error only.
        "chat.postMessage.error.invalid_blocks.derived.json" => BTreeSet::from(["errors", "response_metadata"]),
        _ => BTreeSet::new(),
    }
}

fn assert_same_shape(sample_name: &str, sample: &Value, produced: &Value) {
    let (want, got) = (shape(sample), shape(produced));
    let extras = allowed_extras(sample_name);
    let unexplained: Vec<&String> =
        got.keys().filter(|k| !want.contains_key(*k) && !extras.contains(k.as_str())).collect();
    let missing: Vec<&String> = want.keys().filter(|k| !got.contains_key(*k)).collect();
    let mistyped: Vec<String> = want
        .iter()
        .filter_map(|(k, t)| {
            got.get(k).filter(|g| *g != t && *t != "null").map(|g| format!("{k}: sample {t}, fake {g}"))
        })
        .collect();
    assert!(
        unexplained.is_empty() && missing.is_empty() && mistyped.is_empty(),
        "{sample_name}: shape differs\n  missing {missing:?}\n  extra {unexplained:?}\n  types {mistyped:?}\n  sample {sample}\n  fake   {produced}"
    );
}

/// What the fake produces for each sample.
struct Producer {
    slack: FakeSlack,
    socket: SocketClient,
    hello: Value,
}

impl Producer {
    async fn new() -> Producer {
        let slack = FakeSlack::start(world()).await;
        let (socket, hello) = SocketClient::connect(&slack).await;
        Producer { slack, socket, hello }
    }

    async fn posted_ts(&self) -> String {
        let posted = Api::bot(&self.slack)
            .json(
                "chat.postMessage",
                json!({"channel": ONCALL, "text": "card",
            "blocks": support::approval_card("JIT-1")}),
            )
            .await;
        posted.ok()["ts"].as_str().unwrap_or_default().to_owned()
    }

    async fn trigger(&mut self) -> String {
        let command = self.slack.send_slash_command(ALICE, ONCALL, "/jit", "query").await;
        let envelope = self.socket.next_frame().await;
        self.socket.ack(&envelope, None).await;
        command.ack().await.expect("acked");
        command.trigger_id().unwrap_or_default().to_owned()
    }

    async fn open_view(&mut self) -> String {
        let trigger = self.trigger().await;
        let view = json!({"type": "modal", "title": {"type": "plain_text", "text": "t"}, "blocks": [],
            "submit": {"type": "plain_text", "text": "Send"}, "close": {"type": "plain_text", "text": "Cancel"}});
        let opened = Api::bot(&self.slack).json("views.open", json!({"trigger_id": trigger, "view": view})).await;
        opened.ok()["view"]["id"].as_str().unwrap_or_default().to_owned()
    }

    async fn uploaded_file(&self) -> String {
        let api = Api::bot(&self.slack);
        let got = api.get("files.getUploadURLExternal", &[("filename", "a.csv"), ("length", "3")]).await;
        let url = got.ok()["upload_url"].as_str().unwrap_or_default().to_owned();
        api.post_bytes(&url, "text/csv", b"a,b".to_vec()).await;
        got.body["file_id"].as_str().unwrap_or_default().to_owned()
    }

    /// The fake's counterpart of one sample file, or `None` for samples that are not something the fake
    /// sends (acks are sent by the app).
    async fn produce(&mut self, name: &str) -> Option<Value> {
        let bot = Api::bot(&self.slack);
        let bad = Api::with_token(&self.slack, Some("xoxb-invalid"));
        let body = match name {
            "apps.connections.open.ok.json" => {
                Api::app(&self.slack).json("apps.connections.open", json!({})).await.body
            }
            "hello.json" | "hello.docs.txt" => self.hello.clone(),
            "chat.postMessage.ok.json" => {
                bot.json("chat.postMessage", json!({"channel": ONCALL, "text": "hi"})).await.body
            }
            "chat.postMessage.error.channel_not_found.derived.json" => {
                bot.json("chat.postMessage", json!({"channel": "C0NOPE", "text": "hi"})).await.body
            }
            "chat.postMessage.error.not_in_channel.derived.json" => {
                bot.json("chat.postMessage", json!({"channel": RANDOM, "text": "hi"})).await.body
            }
            "chat.postMessage.error.is_archived.derived.json" => {
                bot.json("chat.postMessage", json!({"channel": OLD, "text": "hi"})).await.body
            }
            "chat.postMessage.error.invalid_blocks.derived.json" => {
                let blocks = json!([{"type": "section", "text": {"type": "mrkdwn", "text": "x".repeat(3001)}}]);
                bot.json("chat.postMessage", json!({"channel": ONCALL, "blocks": blocks})).await.body
            }
            "chat.postMessage.error.msg_blocks_too_long.derived.json" => {
                let blocks: Vec<Value> = (0..5)
                    .map(|_| json!({"type": "section", "text": {"type": "mrkdwn", "text": "x".repeat(2900)}}))
                    .collect();
                bot.json("chat.postMessage", json!({"channel": ONCALL, "blocks": blocks})).await.body
            }
            "chat.postMessage.error.too_many_attachments.json" => {
                let attachments: Vec<Value> = (0..101).map(|_| json!({"text": "a"})).collect();
                bot.json("chat.postMessage", json!({"channel": ONCALL, "attachments": attachments})).await.body
            }
            "chat.update.ok.json" => {
                let ts = self.posted_ts().await;
                bot.json("chat.update", json!({"channel": ONCALL, "ts": ts, "text": "updated"})).await.body
            }
            "chat.update.error.cant_update_message.json" => {
                self.slack.fail_next("chat.update", "cant_update_message");
                bot.json("chat.update", json!({"channel": ONCALL, "ts": "1.1", "text": "x"})).await.body
            }
            "chat.postEphemeral.ok.json" => {
                bot.json("chat.postEphemeral", json!({"channel": ONCALL, "user": ALICE, "text": "psst"})).await.body
            }
            "chat.postEphemeral.error.user_not_in_channel.json" => {
                bot.json("chat.postEphemeral", json!({"channel": support::SECRET, "user": support::BOB, "text": "x"}))
                    .await
                    .body
            }
            "conversations.info.ok.json" => bot.get("conversations.info", &[("channel", ONCALL)]).await.body,
            "conversations.info.error.channel_not_found.json" => {
                bot.get("conversations.info", &[("channel", "C0NOPE")]).await.body
            }
            "users.info.ok.json" => bot.get("users.info", &[("user", ALICE)]).await.body,
            "users.info.error.user_not_found.json" => bot.get("users.info", &[("user", "U0NOPE")]).await.body,
            "users.lookupByEmail.ok.json" => {
                bot.get("users.lookupByEmail", &[("email", "alice@example.com")]).await.body
            }
            "users.lookupByEmail.error.users_not_found.json" => {
                bot.get("users.lookupByEmail", &[("email", "nobody@example.com")]).await.body
            }
            "views.open.ok.json" => {
                let trigger = self.trigger().await;
                let view = json!({"type": "modal", "title": {"type": "plain_text", "text": "t"}, "blocks": []});
                bot.json("views.open", json!({"trigger_id": trigger, "view": view})).await.body
            }
            "views.open.error.invalid_arguments.json" => {
                let view = json!({"type": "modal", "title": {"type": "plain_text", "text": "t"}, "blocks": []});
                bot.json("views.open", json!({"trigger_id": "1.2.3", "view": view})).await.body
            }
            "files.getUploadURLExternal.ok.json" => {
                bot.get("files.getUploadURLExternal", &[("filename", "a.csv"), ("length", "3")]).await.body
            }
            "files.getUploadURLExternal.error.invalid_auth.json" => {
                bad.get("files.getUploadURLExternal", &[("filename", "a.csv"), ("length", "3")]).await.body
            }
            "files.completeUploadExternal.ok.json" => {
                let id = self.uploaded_file().await;
                bot.json(
                    "files.completeUploadExternal",
                    json!({"files": [{"id": id, "title": "t"}], "channel_id": ONCALL}),
                )
                .await
                .body
            }
            "files.completeUploadExternal.error.invalid_auth.json" => {
                bad.json("files.completeUploadExternal", json!({"files": [{"id": "F1"}]})).await.body
            }
            "ratelimited.http429.derived.txt" => {
                self.slack.rate_limit_next("auth.test", 30);
                let answer = bot.json("auth.test", json!({})).await;
                assert_eq!(answer.status.as_u16(), 429);
                assert_eq!(answer.headers.get("retry-after").and_then(|v| v.to_str().ok()), Some("30"));
                answer.body
            }
            "disconnect_refresh_requested.json" => {
                let (mut extra, _) = SocketClient::connect(&self.slack).await;
                let ids = self.slack.wait_for_connections(2).await;
                self.slack.disconnect_connection(ids[1], "refresh_requested");
                extra.next_frame().await
            }
            "slash_commands.envelope.python-sdk.json" => {
                let command = self.slack.send_slash_command(ALICE, ONCALL, "/jit", "help").await;
                let envelope = self.socket.next_frame().await;
                self.socket.ack(&envelope, None).await;
                command.ack().await.expect("acked");
                assert_same_shape(&format!("{name} payload"), &self.sample(name)["payload"], &envelope["payload"]);
                envelope
            }
            "interactive.block_actions.envelope.wrapped-bolt.json" | "block_actions.payload.bolt-python.json" => {
                // The sample is a click on an ephemeral message (no `message` in the payload).
                let ephemeral = bot
                    .json(
                        "chat.postEphemeral",
                        json!({"channel": ONCALL, "user": ALICE, "text": "x",
                        "blocks": support::approval_card("JIT-1")}),
                    )
                    .await;
                let ts = ephemeral.ok()["message_ts"].as_str().unwrap_or_default().to_owned();
                self.slack.next_ephemeral_for(ALICE).await;
                let click = self.slack.send_block_action(ALICE, ONCALL, &ts, "approve", "JIT-1").await;
                let envelope = self.socket.next_frame().await;
                self.socket.ack(&envelope, None).await;
                click.ack().await.expect("acked");
                if name.starts_with("interactive") {
                    assert_same_shape(&format!("{name} payload"), &self.sample(name)["payload"], &envelope["payload"]);
                    envelope
                } else {
                    envelope["payload"].clone()
                }
            }
            "interactive.view_submission.envelope.wrapped-bolt.json"
            | "view_submission.payload.bolt-python.json"
            | "view_submission.envelope.docs.txt" => {
                let view_id = self.open_view().await;
                self.slack.next_view_opened_for(ALICE).await;
                let submission = self.slack.send_view_submission(ALICE, &view_id, json!({})).await;
                let envelope = self.socket.next_frame().await;
                self.socket.ack(&envelope, None).await;
                submission.ack().await.expect("acked");
                let sample = self.sample(name);
                match name {
                    "interactive.view_submission.envelope.wrapped-bolt.json" => {
                        assert_same_shape(&format!("{name} payload"), &sample["payload"], &envelope["payload"]);
                        assert_same_shape(
                            &format!("{name} view"),
                            &sample["payload"]["view"],
                            &envelope["payload"]["view"],
                        );
                        envelope
                    }
                    "view_submission.payload.bolt-python.json" => {
                        assert_same_shape(&format!("{name} view"), &sample["view"], &envelope["payload"]["view"]);
                        envelope["payload"].clone()
                    }
                    _ => envelope,
                }
            }
            // Frames the app sends (acks), not the fake: their shape is checked by the socket tests.
            "slash_commands.ack_with_payload.docs.json" | "view_submission.ack_response_action_update.docs.json" => {
                return None;
            }
            other => panic!("sample {other} is not mapped to anything the fake produces; add it to slack_samples.rs"),
        };
        Some(body)
    }

    fn sample(&self, name: &str) -> Value {
        parse_sample(name).unwrap_or_else(|| panic!("sample {name} is not parseable"))
    }
}

/// A sample as JSON: `.json` files directly; `.txt` files are parsed as far as possible (the HTTP 429
/// transcript's body; the docs' snippets after repairing their published typos; `{ ... }` placeholders
/// become empty objects).
fn parse_sample(name: &str) -> Option<Value> {
    let text = std::fs::read_to_string(samples_dir().join(name)).ok()?;
    if name.ends_with(".json") {
        return Some(serde_json::from_str(&text).unwrap_or_else(|e| panic!("sample {name} is not valid JSON: {e}")));
    }
    if let Some((_, body)) = text.split_once("\n\n")
        && let Ok(value) = serde_json::from_str(body.trim())
    {
        return Some(value);
    }
    let repaired = text.replace("\"started\" \"", "\"started\": \"").replace("{ ... }", "{}").replace("[ ... ]", "[]");
    serde_json::from_str(&repaired).ok()
}

#[tokio::test]
async fn every_sample_has_the_shape_the_fake_produces() {
    let mut names: Vec<String> = std::fs::read_dir(samples_dir())
        .expect("listing the samples")
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| !name.ends_with(".source.txt"))
        .collect();
    names.sort();
    assert!(names.len() >= 30, "expected the full sample set, found {names:?}");

    let mut producer = Producer::new().await;
    let mut checked = 0;
    for name in &names {
        let Some(sample) = parse_sample(name) else {
            panic!("sample {name} could not be parsed even after repairs");
        };
        let Some(produced) = producer.produce(name).await else { continue };
        assert_same_shape(name, &sample, &produced);
        // The directory objects are compared one level deeper: the bot reads fields inside them.
        for key in ["user", "channel"] {
            if name.ends_with(".ok.json") && sample.get(key).is_some_and(Value::is_object) {
                assert_same_shape(&format!("{name} {key}"), &sample[key], &produced[key]);
            }
        }
        checked += 1;
    }
    assert!(checked >= 30, "only {checked} samples compared");
    // The messages, modals and files posted and the findings provoked only to get each answer's shape are not
    // what this test checks.
    producer.slack.discard_unread();
}

#[test]
fn every_sample_has_its_source_note() {
    for entry in std::fs::read_dir(samples_dir()).expect("listing the samples") {
        let name = entry.expect("entry").file_name().into_string().unwrap_or_default();
        if !name.ends_with(".source.txt") {
            assert!(samples_dir().join(format!("{name}.source.txt")).is_file(), "{name} has no .source.txt");
        }
    }
}
