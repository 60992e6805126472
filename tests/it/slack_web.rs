//! The Slack Web API client against the Slack emulator: what each call puts in front of people, how each refusal
//! reads and what it tells the operator to do, rate limits waited out or given up on, a Slack that cannot be
//! reached, and the app manifest asking for exactly the scopes the client needs.

mod socket_user;
use jitgate_testkit as support;

use std::collections::BTreeSet;
use std::io::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jitgate::app::SlackWebDirectory;
use jitgate::ids::SlackUserId;
use jitgate::messages::SlackMessage;
use jitgate::oncall::SlackDirectory;
use jitgate::slack::{Conversation, MessageRef, REQUIRED_BOT_SCOPES, SlackError, SlackWeb, UploadContent, WebSettings};
use jitgate_emulators::slack::{CallOutcome, EphemeralSource, FakeSlack};
use jitgate_emulators::world::{ALICE, BOB, HIDDEN, OLD, ONCALL, RANDOM, SECRET};
use secrecy::SecretString;
use serde_json::{Value, json};
use socket_user::SocketConnection;
use support::pauses::RecordedPauses;

/// The world with its edge cases, and the client pointed at it: #oncall (bot member), #random (not invited), #old
/// (archived), #secret (private, with the bot and Alice), #hidden (private, without the bot); Carol is deactivated.
struct World {
    slack: FakeSlack,
    web: SlackWeb,
    pauses: Arc<RecordedPauses>,
}

async fn world() -> World {
    world_with(WebSettings::default()).await
}

async fn world_with(settings: WebSettings) -> World {
    let slack = FakeSlack::start(jitgate_emulators::world::slack_config_with_edge_cases()).await;
    let pauses = Arc::new(RecordedPauses::default());
    let web = client(&slack.api_url(), slack.bot_token(), settings).with_pause(pauses.clone());
    World { slack, web, pauses }
}

fn client(base_url: &str, token: &str, settings: WebSettings) -> SlackWeb {
    SlackWeb::new(base_url, SecretString::from(token.to_owned()), settings).expect("a Slack client")
}

fn user(id: &str) -> SlackUserId {
    SlackUserId::parse(id).expect("a Slack user id")
}

/// A message as `messages.rs` builds them: fallback text plus a section.
fn message(text: &str) -> SlackMessage {
    SlackMessage {
        text: text.to_owned(),
        blocks: vec![json!({"type": "section", "text": {"type": "mrkdwn", "text": format!("*{text}*")}})],
    }
}

fn modal(title: &str) -> Value {
    json!({
        "type": "modal",
        "callback_id": "jit_deny_reason",
        "title": {"type": "plain_text", "text": title},
        "submit": {"type": "plain_text", "text": "Deny"},
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "Why deny JIT-7Q2M4X?"}}]
    })
}

fn outcomes(slack: &FakeSlack, method: &str) -> Vec<CallOutcome> {
    slack.calls_to(method).into_iter().map(|c| c.outcome).collect()
}

// ---------------------------------------------------------------------------------------------------------------
// What each call puts into Slack
// ---------------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn an_approval_card_lands_in_the_channel_exactly_as_built() {
    let w = world().await;
    let card = message("JIT-7Q2M4X wants to query orders");

    let posted = w.web.post_message(ONCALL, &card, None).await.expect("posted");

    let seen = w.slack.next_message_in(ONCALL).await;
    assert_eq!(posted, MessageRef { channel: ONCALL.to_owned(), ts: seen.ts.clone() });
    assert_eq!(seen.thread_ts, None);
    assert_eq!(seen.user, w.slack.config().bot.user_id);
    assert_eq!(seen.text.as_deref(), Some(card.text.as_str()));
    assert_eq!(seen.blocks, Some(Value::from(card.blocks.clone())));
    // Exactly these parameters went over the wire, and no token among them.
    let calls = w.slack.calls_to("chat.postMessage");
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].params, json!({"channel": ONCALL, "text": card.text, "blocks": card.blocks}));
}

#[tokio::test]
async fn a_results_reply_goes_into_the_thread_of_the_card() {
    let w = world().await;
    let card = w.web.post_message(ONCALL, &message("card"), None).await.expect("card posted");
    let _ = w.slack.next_message_in(ONCALL).await;

    let reply = w.web.post_message(ONCALL, &message("3 rows"), Some(&card.ts)).await.expect("reply posted");

    let seen = w.slack.next_thread_reply(ONCALL, &card.ts).await;
    assert_eq!(seen.ts, reply.ts);
    assert_eq!(seen.thread_ts.as_deref(), Some(card.ts.as_str()));
    assert_eq!(seen.text.as_deref(), Some("3 rows"));
    assert_eq!(seen.params["thread_ts"], json!(card.ts));
}

#[tokio::test]
async fn a_text_only_message_is_posted_without_an_empty_blocks_array() {
    let w = world().await;
    let plain = SlackMessage { text: "JIT-7Q2M4X expired".to_owned(), blocks: Vec::new() };

    w.web.post_message(ONCALL, &plain, None).await.expect("posted");

    let seen = w.slack.next_message_in(ONCALL).await;
    assert_eq!(seen.params, json!({"channel": ONCALL, "text": "JIT-7Q2M4X expired"}));
}

#[tokio::test]
async fn updating_the_card_replaces_its_text_and_blocks() {
    let w = world().await;
    let card = w.web.post_message(ONCALL, &message("pending"), None).await.expect("card posted");
    let _ = w.slack.next_message_in(ONCALL).await;

    let approved = message("Approved by @bob");
    w.web.update_message(&card, &approved).await.expect("updated");
    let seen = w.slack.next_update_of(ONCALL, &card.ts).await;
    assert_eq!(seen.text.as_deref(), Some("Approved by @bob"));
    assert_eq!(seen.blocks, Some(Value::from(approved.blocks.clone())));

    // A text-only update must not leave the old buttons behind.
    w.web.update_message(&card, &SlackMessage { text: "Expired".into(), blocks: Vec::new() }).await.expect("updated");
    let seen = w.slack.next_update_of(ONCALL, &card.ts).await;
    assert_eq!((seen.text.as_deref(), seen.blocks), (Some("Expired"), None));
    assert_eq!(w.slack.message(ONCALL, &card.ts).and_then(|m| m.text), Some("Expired".to_owned()));
}

#[tokio::test]
async fn an_ephemeral_reply_is_shown_to_the_requester_only() {
    let w = world().await;
    let refusal = message("runbook orders-by-customer needs customer_id");

    w.web.post_ephemeral(ONCALL, &user(ALICE), &refusal).await.expect("shown");

    let seen = w.slack.next_ephemeral_for(ALICE).await;
    assert_eq!((seen.channel.as_str(), seen.via), (ONCALL, EphemeralSource::PostEphemeral));
    assert_eq!(seen.text.as_deref(), Some(refusal.text.as_str()));
    assert_eq!(seen.blocks, Some(Value::from(refusal.blocks)));
}

#[tokio::test]
async fn a_direct_message_opens_the_conversation_then_posts_into_it() {
    let w = world().await;

    let sent = w.web.send_dm(&user(BOB), &message("You were asked to approve JIT-7Q2M4X")).await.expect("sent");

    let seen = w.slack.next_message_in(BOB).await;
    assert!(sent.channel.starts_with('D'), "a DM channel id, got {}", sent.channel);
    assert_eq!((seen.channel.as_str(), seen.ts.as_str()), (sent.channel.as_str(), sent.ts.as_str()));
    assert_eq!(seen.text.as_deref(), Some("You were asked to approve JIT-7Q2M4X"));
    let methods: Vec<String> = w.slack.calls().into_iter().map(|c| c.method).collect();
    assert_eq!(methods, ["conversations.open", "chat.postMessage"]);
    assert_eq!(w.slack.calls_to("conversations.open")[0].params, json!({"users": BOB}));
}

#[tokio::test]
async fn a_modal_opens_with_the_trigger_of_the_command_and_can_be_updated() {
    let w = world().await;
    let mut socket = SocketConnection::open(&w.slack).await;
    let command = w.slack.send_slash_command(ALICE, ONCALL, "/jit", "deny JIT-7Q2M4X").await;
    socket.ack(&command).await;
    let trigger = command.trigger_id().expect("slash commands carry a trigger").to_owned();

    let view_id = w.web.open_view(&trigger, modal("Deny JIT-7Q2M4X")).await.expect("opened");

    let opened = w.slack.next_view_opened_for(ALICE).await;
    assert_eq!((opened.view_id.as_str(), opened.trigger_id.as_str()), (view_id.as_str(), trigger.as_str()));
    assert_eq!(opened.view["title"]["text"], "Deny JIT-7Q2M4X");
    assert_eq!(opened.view["callback_id"], "jit_deny_reason");

    w.web.update_view(&view_id, modal("Denied")).await.expect("updated");
    let updated = w.slack.next_view_update(&view_id).await;
    assert_eq!(updated.view["title"]["text"], "Denied");

    // A trigger works once; a second dialog needs a new interaction.
    let again = w.web.open_view(&trigger, modal("again")).await.expect_err("trigger already used");
    assert_eq!(again.code(), "exchanged_trigger_id");
    assert!(again.user_hint().is_some_and(|h| h.contains("run the command again")), "{again:?}");

    // Slack's 3-second window passes before the bot gets to it.
    let late = w.slack.send_slash_command(ALICE, ONCALL, "/jit", "deny JIT-7Q2M4X").await;
    socket.ack(&late).await;
    w.slack.expire_triggers();
    let expired = w.web.open_view(late.trigger_id().unwrap_or_default(), modal("late")).await.expect_err("expired");
    assert!(
        matches!(&expired, SlackError::Api { method, error, .. } if method == "views.open" && error == "expired_trigger_id")
    );
    assert!(expired.user_hint().is_some_and(|h| h.contains("3 seconds")), "{expired:?}");
}

#[tokio::test]
async fn on_call_people_are_found_by_email_and_unknown_or_deactivated_ones_are_not() {
    let w = world().await;
    let directory: &dyn SlackDirectory = &SlackWebDirectory::new(w.web.clone());

    assert_eq!(directory.user_by_email("alice@example.com").await.expect("looked up"), Some(user(ALICE)));
    assert_eq!(w.web.user_by_email("nobody@example.com").await.expect("a miss is an answer"), None);
    // Carol's account is deactivated: she cannot approve anything in Slack.
    assert_eq!(w.web.user_by_email("carol@example.com").await.expect("looked up"), None);

    let calls = w.slack.calls_to("users.lookupByEmail");
    assert_eq!(calls[0].params, json!({"email": "alice@example.com"}));
    assert_eq!(calls[1].outcome, CallOutcome::Error("users_not_found".into()));
}

#[tokio::test]
async fn a_failing_lookup_is_an_error_not_a_missing_account() {
    let w = world().await;
    w.slack.fail_next("users.lookupByEmail", "fatal_error");

    let failure = w.web.user_by_email("alice@example.com").await.expect_err("Slack failed");

    assert_eq!(failure.code(), "fatal_error");
}

#[tokio::test]
async fn auth_test_names_the_bot_and_its_workspace() {
    let w = world().await;

    let me = w.web.auth_test().await.expect("the token works");

    let config = w.slack.config();
    assert_eq!(me.user_id, user(&config.bot.user_id));
    assert_eq!(me.bot_id.as_deref(), Some(config.bot.bot_id.as_str()));
    assert_eq!((me.team_id.as_str(), me.team.as_str()), (config.team.id.as_str(), config.team.name.as_str()));
}

#[tokio::test]
async fn conversation_info_tells_readiness_checks_where_the_bot_can_post() {
    let w = world().await;
    let info = |id: &str, name: &str, private: bool, member: bool, archived: bool| Conversation {
        id: id.into(),
        name: name.into(),
        is_private: private,
        is_member: member,
        is_archived: archived,
    };

    let seen = w.web.conversation_info(ONCALL).await.expect("answered");
    assert_eq!(seen, Some(info(ONCALL, "oncall", false, true, false)));
    let seen = w.web.conversation_info(RANDOM).await.expect("answered");
    assert_eq!(seen, Some(info(RANDOM, "random", false, false, false)));
    let seen = w.web.conversation_info(OLD).await.expect("answered");
    assert_eq!(seen, Some(info(OLD, "old", false, true, true)));
    let seen = w.web.conversation_info(SECRET).await.expect("answered");
    assert_eq!(seen, Some(info(SECRET, "secret", true, true, false)));
    // A private channel the bot is not in looks exactly like one that does not exist.
    assert_eq!(w.web.conversation_info(HIDDEN).await.expect("answered"), None);
    assert_eq!(w.web.conversation_info("C0NOPE").await.expect("answered"), None);
    assert_eq!(w.slack.calls_to("conversations.info")[0].params, json!({"channel": ONCALL}));
}

#[tokio::test]
async fn permalinks_open_the_card_and_the_reply_in_its_thread() {
    let w = world().await;
    let card = w.web.post_message(ONCALL, &message("card"), None).await.expect("card posted");
    let reply = w.web.post_message(ONCALL, &message("rows"), Some(&card.ts)).await.expect("reply posted");
    let _ = (w.slack.next_message_in(ONCALL).await, w.slack.next_thread_reply(ONCALL, &card.ts).await);

    let card_link = w.web.permalink(&card).await.expect("a link");
    let reply_link = w.web.permalink(&reply).await.expect("a link");

    assert!(card_link.ends_with(&format!("/archives/{ONCALL}/p{}", card.ts.replace('.', ""))), "{card_link}");
    assert!(reply_link.contains(&format!("thread_ts={}", card.ts)), "{reply_link}");
    assert_eq!(w.slack.calls_to("chat.getPermalink")[0].params, json!({"channel": ONCALL, "message_ts": card.ts}));
}

#[tokio::test]
async fn csv_results_are_uploaded_into_the_thread_of_the_card_streamed_from_a_file() {
    let w = world().await;
    let card = w.web.post_message(ONCALL, &message("card"), None).await.expect("card posted");
    let _ = w.slack.next_message_in(ONCALL).await;
    // Over 2 MB, as a large result's CSV is: the upload URL takes files up to Slack's 1 GB.
    let csv = "order_id,customer_id,total\nO-1,C000042,19.90\nO-2,C000042,5.00\n".repeat(40_000);
    let (file, len) =
        jitgate::result_rows::write_temp_file(|out| out.write_all(csv.as_bytes())).expect("temporary file written");

    let content = UploadContent::File { file, len };
    let file_id = w
        .web
        .upload_file(ONCALL, Some(&card.ts), "JIT-7Q2M4X.csv", "JIT-7Q2M4X results", content)
        .await
        .expect("uploaded");

    let file = w.slack.next_upload_in(ONCALL).await;
    assert_eq!(file.file_id, file_id);
    assert_eq!(file.filename, "JIT-7Q2M4X.csv");
    assert_eq!(file.content.as_deref(), Some(csv.as_bytes()));
    assert_eq!(file.declared_length, csv.len() as u64);
    assert_eq!(file.title.as_deref(), Some("JIT-7Q2M4X results"));
    assert_eq!(file.thread_ts.as_deref(), Some(card.ts.as_str()));
    assert!(file.completed);
    // The documented encodings: form fields for the ticket, JSON with a `files` array to complete.
    let ticket = &w.slack.calls_to("files.getUploadURLExternal")[0].params;
    assert_eq!(ticket, &json!({"filename": "JIT-7Q2M4X.csv", "length": csv.len().to_string()}));
    let complete = &w.slack.calls_to("files.completeUploadExternal")[0].params;
    assert_eq!(
        complete,
        &json!({"files": [{"id": file_id, "title": "JIT-7Q2M4X results"}], "channel_id": ONCALL, "thread_ts": card.ts})
    );
}

#[tokio::test]
async fn an_upload_into_a_channel_without_the_bot_says_to_invite_it() {
    let w = world().await;

    let refused = w
        .web
        .upload_file(RANDOM, None, "rows.csv", "rows", UploadContent::Bytes(b"a,b\n1,2\n".to_vec()))
        .await
        .expect_err("not a member");

    assert_eq!((refused.method(), refused.code()), ("files.completeUploadExternal", "not_in_channel"));
    assert!(refused.user_hint().is_some_and(|h| h.contains("invite the jitgate app") && h.contains(RANDOM)));
    // The bytes were uploaded but never shared: nobody sees them.
    let files = w.slack.uploaded_files();
    assert_eq!(files.len(), 1);
    assert!(!files[0].completed && files[0].channel_id.is_none());
}

// ---------------------------------------------------------------------------------------------------------------
// Refusals keep Slack's code and say what to do
// ---------------------------------------------------------------------------------------------------------------

/// Checks an Api error: method, code, and a hint containing every one of `hint_has`.
#[track_caller]
fn assert_refusal(error: &SlackError, method: &str, code: &str, hint_has: &[&str]) {
    let SlackError::Api { method: got_method, error: got_code, .. } = error else {
        panic!("expected Slack's refusal, got {error:?}")
    };
    assert_eq!((got_method.as_str(), got_code.as_str()), (method, code));
    assert_eq!(error.code(), code);
    let hint = error.user_hint().unwrap_or_else(|| panic!("no hint for {code}"));
    for part in hint_has {
        assert!(hint.contains(part), "hint for {code} lacks {part:?}: {hint}");
    }
}

#[tokio::test]
async fn posting_where_the_bot_cannot_post_explains_what_to_change() {
    let w = world().await;
    let card = message("card");

    let error = w.web.post_message(RANDOM, &card, None).await.expect_err("bot not invited");
    assert_refusal(&error, "chat.postMessage", "not_in_channel", &["invite the jitgate app", RANDOM]);

    let error = w.web.post_message("C0NOPE", &card, None).await.expect_err("no such channel");
    assert_refusal(&error, "chat.postMessage", "channel_not_found", &["C0NOPE", "jitgate.toml"]);

    let error = w.web.post_message(HIDDEN, &card, None).await.expect_err("private, bot not in it");
    assert_refusal(&error, "chat.postMessage", "channel_not_found", &["invited"]);

    let error = w.web.post_message(OLD, &card, None).await.expect_err("archived");
    assert_refusal(&error, "chat.postMessage", "is_archived", &[OLD, "unarchive"]);

    let error = w.web.post_ephemeral(SECRET, &user(BOB), &card).await.expect_err("Bob is not in #secret");
    assert_refusal(&error, "chat.postEphemeral", "user_not_in_channel", &[SECRET]);

    assert_eq!(outcomes(&w.slack, "chat.postMessage").len(), 4);
}

#[tokio::test]
async fn a_message_slack_cannot_render_is_reported_as_a_bug_with_slacks_explanation() {
    let w = world().await;
    let too_long_section = SlackMessage {
        text: "rows".into(),
        blocks: vec![json!({"type": "section", "text": {"type": "mrkdwn", "text": "x".repeat(3001)}})],
    };

    let error = w.web.post_message(ONCALL, &too_long_section, None).await.expect_err("invalid blocks");
    assert_refusal(&error, "chat.postMessage", "invalid_blocks", &["bug in jitgate"]);
    let SlackError::Api { details, .. } = &error else { unreachable!() };
    assert!(details.iter().any(|d| d.contains("/blocks/0/text")), "Slack's pointer to the bad block: {details:?}");

    // Each section is fine; together they exceed what Slack accepts in one message.
    let section = json!({"type": "section", "text": {"type": "mrkdwn", "text": "y".repeat(2900)}});
    let too_much = SlackMessage { text: "rows".into(), blocks: vec![section; 5] };
    let error = w.web.post_message(ONCALL, &too_much, None).await.expect_err("too long");
    assert_refusal(&error, "chat.postMessage", "msg_blocks_too_long", &["bug in jitgate"]);
}

#[tokio::test]
async fn a_card_that_can_no_longer_be_updated_says_so() {
    let w = world().await;
    let card = w.web.post_message(ONCALL, &message("pending"), None).await.expect("posted");
    let _ = w.slack.next_message_in(ONCALL).await;
    w.slack.fail_next("chat.update", "cant_update_message");

    let error = w.web.update_message(&card, &message("Approved")).await.expect_err("refused");

    assert_refusal(&error, "chat.update", "cant_update_message", &["cannot be changed"]);
    let never = MessageRef { channel: ONCALL.into(), ts: "1700000000.000001".into() };
    let error = w.web.update_message(&never, &message("Approved")).await.expect_err("no such message");
    assert_refusal(&error, "chat.update", "message_not_found", &["deleted"]);
}

#[tokio::test]
async fn a_wrong_bot_token_is_refused_with_the_setting_to_fix() {
    let w = world().await;
    let wrong = client(&w.slack.api_url(), "xoxb-1111-2222-wrongtokenvalue", WebSettings::default());

    let error = wrong.post_message(ONCALL, &message("card"), None).await.expect_err("bad token");

    assert_refusal(&error, "chat.postMessage", "invalid_auth", &["SLACK_BOT_TOKEN", "xoxb-"]);
    assert!(!format!("{error} {error:?}").contains("wrongtokenvalue"));
}

// ---------------------------------------------------------------------------------------------------------------
// Rate limits and an unreachable Slack
// ---------------------------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_rate_limit_is_waited_out_for_as_long_as_slack_asks() {
    let w = world().await;
    w.slack.rate_limit_next("chat.postMessage", 7);

    let posted = w.web.post_message(ONCALL, &message("card"), None).await.expect("posted after the wait");

    assert_eq!(w.pauses.taken(), [Duration::from_secs(7)]);
    assert_eq!(
        outcomes(&w.slack, "chat.postMessage"),
        [CallOutcome::RateLimited { retry_after_secs: 7 }, CallOutcome::Ok]
    );
    assert_eq!(w.slack.next_message_in(ONCALL).await.ts, posted.ts);
}

#[tokio::test]
async fn an_endless_rate_limit_ends_after_the_allowed_attempts() {
    let settings = WebSettings { max_attempts: 3, ..WebSettings::default() };
    let w = world_with(settings).await;
    for _ in 0..10 {
        w.slack.rate_limit_next("users.lookupByEmail", 2);
    }

    let error = w.web.user_by_email("alice@example.com").await.expect_err("still limited");

    assert_eq!(
        error,
        SlackError::RateLimited {
            method: "users.lookupByEmail".into(),
            attempts: 3,
            retry_after: Some(Duration::from_secs(2))
        }
    );
    assert!(error.user_hint().is_some_and(|h| h.contains("try again")));
    assert_eq!(w.pauses.taken(), [Duration::from_secs(2); 2]);
    assert_eq!(w.slack.calls_to("users.lookupByEmail").len(), 3);
}

#[tokio::test]
async fn waits_stop_at_the_time_budget_and_at_the_longest_single_wait() {
    let settings = WebSettings {
        max_attempts: 10,
        max_retry_wait: Duration::from_secs(30),
        total_budget: Duration::from_secs(30),
        ..WebSettings::default()
    };
    let w = world_with(settings).await;
    // 20 s fits the budget once; a second 20 s would not.
    for _ in 0..3 {
        w.slack.rate_limit_next("chat.postMessage", 20);
    }
    let error = w.web.post_message(ONCALL, &message("card"), None).await.expect_err("over budget");
    assert_eq!(w.pauses.taken(), [Duration::from_secs(20)]);
    assert!(matches!(error, SlackError::RateLimited { attempts: 2, .. }), "{error:?}");

    // Slack asks for two minutes: waiting less would only earn another 429, so the call ends at once.
    w.slack.rate_limit_next("chat.update", 120);
    let card = MessageRef { channel: ONCALL.into(), ts: "1700000000.000001".into() };
    let error = w.web.update_message(&card, &message("Approved")).await.expect_err("too long a wait");
    assert_eq!(
        error,
        SlackError::RateLimited {
            method: "chat.update".into(),
            attempts: 1,
            retry_after: Some(Duration::from_secs(120))
        }
    );
    assert_eq!(w.pauses.taken().len(), 1, "no second wait");
    assert_eq!(w.slack.calls_to("chat.update").len(), 1);
}

#[tokio::test]
async fn an_unreachable_slack_fails_fast_and_says_where_it_looked() {
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        listener.local_addr().expect("its address")
    };
    let base = format!("http://{closed}/api/");
    let settings = WebSettings { request_timeout: Duration::from_secs(2), ..WebSettings::default() };
    let pauses = Arc::new(RecordedPauses::default());
    let web = client(&base, "xoxb-1111-2222-unreachabletoken", settings).with_pause(pauses.clone());

    let started = Instant::now();
    let error = web.post_message(ONCALL, &message("card"), None).await.expect_err("nobody listens");

    assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());
    let SlackError::Unreachable { method, base_url, .. } = &error else { panic!("{error:?}") };
    assert_eq!((method.as_str(), base_url.as_str()), ("chat.postMessage", format!("http://{closed}/api").as_str()));
    assert!(error.user_hint().is_some_and(|h| h.contains("SLACK_API_URL")));
    assert!(pauses.taken().is_empty(), "a refused connection is not retried");
}

#[tokio::test]
async fn a_slack_that_never_answers_times_out() {
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a free port");
    let addr = silent.local_addr().expect("its address");
    // Accept connections and hold them open without a byte of answer.
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            held.push(socket);
        }
    });
    let settings = WebSettings { request_timeout: Duration::from_millis(300), ..WebSettings::default() };
    let web = client(&format!("http://{addr}/api"), "xoxb-1111-2222-silenttoken", settings);

    let error = web.auth_test().await.expect_err("no answer");

    assert_eq!(error.code(), "unreachable");
    assert!(error.to_string().contains("no answer in time"), "{error}");
    holder.abort();
}

#[tokio::test]
async fn a_base_url_that_is_not_the_web_api_is_named_as_the_problem() {
    let w = world().await;
    // The emulator's root, without `/api`: every method is a 404.
    let web = client(w.slack.base_url(), w.slack.bot_token(), WebSettings::default());

    let error = web.auth_test().await.expect_err("not the Web API");

    assert_eq!(error.code(), "bad_response");
    assert!(error.to_string().contains("404"), "{error}");
    assert!(error.user_hint().is_some_and(|h| h.contains("SLACK_API_URL")));
}

#[tokio::test]
async fn the_token_appears_in_no_error_and_no_debug_output() {
    let w = world().await;
    let token = w.slack.bot_token().to_owned();
    let mut errors = Vec::new();
    w.slack.fail_next("chat.postMessage", "fatal_error");
    errors.push(w.web.post_message(ONCALL, &message("card"), None).await.expect_err("Slack failed"));
    errors.push(w.web.post_message(RANDOM, &message("card"), None).await.expect_err("not in channel"));
    w.slack.rate_limit_next("auth.test", 600);
    errors.push(w.web.auth_test().await.expect_err("rate limited"));
    errors.push(client(w.slack.base_url(), &token, WebSettings::default()).auth_test().await.expect_err("404"));
    let closed = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port");
    let nowhere = client(&format!("http://{closed}/api"), &token, WebSettings::default());
    errors.push(nowhere.auth_test().await.expect_err("unreachable"));

    let codes: BTreeSet<&str> = errors.iter().map(SlackError::code).collect();
    assert_eq!(codes.len(), 5, "five different failures: {codes:?}");
    for error in &errors {
        let shown = format!("{error} | {error:?} | {}", error.user_hint().unwrap_or_default());
        assert!(!shown.contains(&token), "token leaked: {shown}");
    }
    for web in [&w.web, &nowhere] {
        assert!(!format!("{web:?}").contains(&token));
    }
}

#[tokio::test]
async fn a_base_url_without_trailing_slash_works_the_same() {
    let w = world().await;
    let web = client(&w.slack.api_base(), w.slack.bot_token(), WebSettings::default());

    web.post_message(ONCALL, &message("card"), None).await.expect("posted");

    assert_eq!(w.slack.next_message_in(ONCALL).await.text.as_deref(), Some("card"));
}

// ---------------------------------------------------------------------------------------------------------------
// The app manifest
// ---------------------------------------------------------------------------------------------------------------

#[test]
fn the_app_manifest_asks_for_socket_mode_the_command_and_exactly_the_scopes_the_client_needs() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/manifests/slack-app.yaml");
    let text = std::fs::read_to_string(path).expect("manifests/slack-app.yaml");
    let manifest: serde_json::Value = serde_saphyr::from_str(&text).expect("valid YAML");
    let at = |pointer: &[&str]| {
        pointer.iter().try_fold(&manifest, |node, key| node.get(*key)).unwrap_or_else(|| panic!("no {pointer:?}"))
    };

    assert_eq!(at(&["_metadata", "major_version"]).as_u64(), Some(1));
    assert_eq!(at(&["_metadata", "minor_version"]).as_u64(), Some(1));
    assert_eq!(at(&["display_information", "name"]).as_str(), Some("jitgate"));
    assert_eq!(at(&["features", "bot_user", "display_name"]).as_str(), Some("jitgate"));
    assert_eq!(at(&["settings", "socket_mode_enabled"]).as_bool(), Some(true));
    assert_eq!(at(&["settings", "interactivity", "is_enabled"]).as_bool(), Some(true));

    let commands = at(&["features", "slash_commands"]).as_array().expect("a list of commands");
    let jit = commands.iter().find(|c| c.get("command").and_then(|v| v.as_str()) == Some("/jit")).expect("/jit");
    assert_eq!(jit.get("should_escape").and_then(|v| v.as_bool()), Some(false));
    assert!(jit.get("description").and_then(|v| v.as_str()).is_some_and(|d| !d.is_empty()));
    let hint = jit.get("usage_hint").and_then(|v| v.as_str()).unwrap_or_default();
    assert!(hint.starts_with("query <runbook>") && hint.contains("--reason"), "{hint}");

    let scopes: Vec<&str> = at(&["oauth_config", "scopes", "bot"])
        .as_array()
        .expect("a list of bot scopes")
        .iter()
        .map(|s| s.as_str().expect("a scope name"))
        .collect();
    let requested: BTreeSet<&str> = scopes.iter().copied().collect();
    assert_eq!(requested.len(), scopes.len(), "duplicate scopes: {scopes:?}");
    assert_eq!(requested, REQUIRED_BOT_SCOPES.iter().copied().collect::<BTreeSet<_>>());
    assert!(manifest.get("oauth_config").and_then(|o| o.get("scopes")).and_then(|s| s.get("user")).is_none());
}
