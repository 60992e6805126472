//! Slack: socket-mode transport and our own event type.

pub mod event;
pub mod socket;
