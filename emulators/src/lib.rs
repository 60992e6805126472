//! Local emulators of the two SaaS APIs jitgate talks to, faithful to their wire formats: Slack (Web API and
//! socket mode over a real WebSocket) and PagerDuty (REST). The test suite and the local demo use the same code.

pub mod pagerduty;
pub mod slack;
pub mod world;
