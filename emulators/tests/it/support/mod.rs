//! Shared by the Slack emulator tests: the world, a raw Web API client (reqwest) and a raw socket-mode
//! client (tokio-tungstenite) that speak the wire format directly, so the tests check bytes, not a library.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use jitgate_emulators::slack::{FakeSlack, SlackConfig};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub use jitgate_emulators::world::{ALICE, BOB, HIDDEN, OLD, ONCALL, RANDOM, SECRET};

/// How long a raw client waits for a frame before failing the test.
const FRAME_DEADLINE: Duration = Duration::from_secs(10);

/// reqwest and rustls need one process-wide crypto provider; the workspace enables more than one.
pub fn install_crypto() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// The world with its edge cases ([`jitgate_emulators::world::slack_config_with_edge_cases`]): #oncall (bot
/// member), #random (bot not invited), #old (archived), a private channel with only Alice, and a private channel
/// the bot is not in.
pub fn world() -> SlackConfig {
    install_crypto();
    jitgate_emulators::world::slack_config_with_edge_cases()
}

thread_local! {
    // Building a client loads the TLS roots (tens of milliseconds); each test runs on its own thread and
    // runtime, so one client per thread is both cheap and never shared across runtimes.
    static HTTP: reqwest::Client = {
        install_crypto();
        reqwest::Client::new()
    };
}

fn http_client() -> reqwest::Client {
    HTTP.with(Clone::clone)
}

/// A Web API caller with a given token.
pub struct Api {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

/// One HTTP answer.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Answer {
    /// The `error` code, or panics if the call succeeded.
    pub fn error(&self) -> &str {
        assert_eq!(self.body["ok"], json!(false), "expected an error, got {}", self.body);
        self.body["error"].as_str().unwrap_or_default()
    }

    /// The body, or panics if `ok` is not true.
    pub fn ok(&self) -> &Value {
        assert_eq!(self.body["ok"], json!(true), "expected ok, got {}", self.body);
        &self.body
    }
}

impl Api {
    pub fn bot(slack: &FakeSlack) -> Api {
        Api::with_token(slack, Some(slack.bot_token()))
    }

    pub fn app(slack: &FakeSlack) -> Api {
        Api::with_token(slack, Some(slack.app_token()))
    }

    pub fn with_token(slack: &FakeSlack, token: Option<&str>) -> Api {
        Api { http: http_client(), base: slack.api_url(), token: token.map(str::to_owned) }
    }

    fn request(&self, builder: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.token {
            Some(token) => builder.bearer_auth(token),
            None => builder,
        }
    }

    /// POST with a JSON body, as slack-morphism does.
    pub async fn json(&self, method: &str, body: Value) -> Answer {
        let request = self.request(self.http.post(format!("{}{method}", self.base)).json(&body));
        answer(request).await
    }

    /// POST form-encoded, as Slack's docs and most SDKs do.
    pub async fn form(&self, method: &str, fields: &[(&str, &str)]) -> Answer {
        let request = self.request(self.http.post(format!("{}{method}", self.base)).form(fields));
        answer(request).await
    }

    /// GET with a query string, as slack-morphism does for read methods.
    pub async fn get(&self, method: &str, query: &[(&str, &str)]) -> Answer {
        let request = self.request(self.http.get(format!("{}{method}", self.base)).query(query));
        answer(request).await
    }

    /// POST raw bytes to a URL (upload URL, response_url).
    pub async fn post_bytes(&self, url: &str, content_type: &str, bytes: Vec<u8>) -> Answer {
        let request = self.http.post(url).header("content-type", content_type).body(bytes);
        answer(request).await
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }
}

pub async fn answer(request: reqwest::RequestBuilder) -> Answer {
    let response = request.send().await.expect("HTTP request to the fake");
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.expect("response body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Answer { status, headers, body }
}

/// A raw socket-mode client: `apps.connections.open`, connect, then frames.
pub struct SocketClient {
    pub url: String,
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl SocketClient {
    /// Opens a connection and returns it with its `hello` frame.
    pub async fn connect(slack: &FakeSlack) -> (SocketClient, Value) {
        let opened = Api::app(slack).json("apps.connections.open", json!({})).await;
        let url = opened.ok()["url"].as_str().expect("url").to_owned();
        let (stream, _) = tokio_tungstenite::connect_async(&url).await.expect("WebSocket connect");
        let mut client = SocketClient { url, stream };
        let hello = client.next_frame().await;
        (client, hello)
    }

    /// The next text frame, parsed (panics after a deadline or on close).
    pub async fn next_frame(&mut self) -> Value {
        let text = self.next_text().await;
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("frame is not JSON ({e}): {text}"))
    }

    /// The next text frame as sent.
    pub async fn next_text(&mut self) -> String {
        loop {
            match self.next_message().await {
                Some(WsMessage::Text(text)) => return text.to_string(),
                Some(WsMessage::Ping(_) | WsMessage::Pong(_)) => continue,
                other => panic!("expected a text frame, got {other:?}"),
            }
        }
    }

    /// The next WebSocket message (`None` when the stream ended).
    pub async fn next_message(&mut self) -> Option<WsMessage> {
        match tokio::time::timeout(FRAME_DEADLINE, self.stream.next()).await {
            Ok(Some(Ok(message))) => Some(message),
            Ok(Some(Err(_)) | None) => None,
            Err(_) => panic!("no frame from the fake within {FRAME_DEADLINE:?}"),
        }
    }

    /// Waits until the server closes the socket (a Close frame or the end of the stream).
    pub async fn expect_closed(&mut self) {
        loop {
            match self.next_message().await {
                None | Some(WsMessage::Close(_)) => return,
                Some(WsMessage::Ping(_) | WsMessage::Pong(_)) => continue,
                Some(other) => panic!("expected the socket to close, got {other:?}"),
            }
        }
    }

    /// Acknowledges an envelope, optionally with a payload.
    pub async fn ack(&mut self, envelope: &Value, payload: Option<Value>) {
        let mut ack = json!({ "envelope_id": envelope["envelope_id"] });
        if let Some(payload) = payload {
            ack["payload"] = payload;
        }
        self.send_text(ack.to_string()).await;
    }

    pub async fn send_text(&mut self, text: String) {
        self.stream.send(WsMessage::Text(text.into())).await.expect("send frame");
    }

    pub async fn send(&mut self, message: WsMessage) {
        self.stream.send(message).await.expect("send frame");
    }
}

/// A message card with Approve / Deny buttons, like the bot's approval card.
pub fn approval_card(request: &str) -> Value {
    json!([
        {"type": "section", "block_id": "summary", "text": {"type": "mrkdwn", "text": format!("*{request}* wants to query orders")}},
        {"type": "actions", "block_id": "decision", "elements": [
            {"type": "button", "action_id": "approve", "style": "primary", "value": request,
             "text": {"type": "plain_text", "text": "Approve"}},
            {"type": "button", "action_id": "deny", "style": "danger", "value": request,
             "text": {"type": "plain_text", "text": "Deny"}}
        ]}
    ])
}
