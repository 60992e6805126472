//! The emulators' tests, one binary: each module was once a test binary of its own. They speak the wire formats
//! directly (reqwest, tokio-tungstenite) or through the real slack-morphism client, and check the emulators
//! against the recorded samples in `samples/`.

mod pagerduty;
mod slack_morphism_client;
mod slack_samples;
mod slack_socket_mode;
mod slack_web_api;
mod support;
