//! A bare socket-mode connection standing in for the bot's listener, so a test can receive an interaction and ack
//! it: modals can only be opened with the `trigger_id` an interaction carries.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use jitgate_emulators::slack::{EnvelopeHandle, FakeSlack};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long to wait for a frame before failing the test.
const FRAME_DEADLINE: Duration = Duration::from_secs(10);

pub struct SocketConnection {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl SocketConnection {
    /// `apps.connections.open` with the app token, then the WebSocket and its `hello`.
    pub async fn open(slack: &FakeSlack) -> SocketConnection {
        let body = reqwest::Client::new()
            .post(format!("{}/apps.connections.open", slack.api_base()))
            .bearer_auth(slack.app_token())
            .send()
            .await
            .expect("apps.connections.open")
            .bytes()
            .await
            .expect("an answer");
        let opened: Value = serde_json::from_slice(&body).expect("a JSON answer");
        let url = opened["url"].as_str().unwrap_or_else(|| panic!("no socket URL in {opened}"));
        let (stream, _) = tokio_tungstenite::connect_async(url).await.expect("WebSocket connect");
        let mut connection = SocketConnection { stream };
        let hello = connection.next_frame().await;
        assert_eq!(hello["type"], "hello", "{hello}");
        connection
    }

    /// Receives the envelope the fake just delivered and acknowledges it without a payload, as the bot's
    /// listener does before handing the work on.
    pub async fn ack(&mut self, envelope: &EnvelopeHandle) {
        let frame = self.next_frame().await;
        assert_eq!(frame["envelope_id"], envelope.envelope_id(), "{frame}");
        let ack = json!({ "envelope_id": envelope.envelope_id() }).to_string();
        self.stream.send(WsMessage::Text(ack.into())).await.expect("send the ack");
        envelope.ack().await.expect("acked in time");
    }

    async fn next_frame(&mut self) -> Value {
        loop {
            let message = tokio::time::timeout(FRAME_DEADLINE, self.stream.next())
                .await
                .unwrap_or_else(|_| panic!("no frame from the fake within {FRAME_DEADLINE:?}"));
            match message {
                Some(Ok(WsMessage::Text(text))) => {
                    return serde_json::from_str(text.as_str()).unwrap_or_else(|e| panic!("frame is not JSON ({e})"));
                }
                Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_))) => continue,
                other => panic!("expected a text frame, got {other:?}"),
            }
        }
    }
}
