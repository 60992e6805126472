//! The PagerDuty emulator against PagerDuty's own example payloads (`samples/pagerduty/`, each with a
//! `.source.txt` saying where it comes from) and the behaviour the schema documents.

use std::path::PathBuf;

use jitgate_emulators::pagerduty::{API_KEY, FakePagerDuty, Incident, OnCall};
use reqwest::StatusCode;
use serde_json::Value;
use time::macros::{datetime, offset};
use time::{Duration, OffsetDateTime};

const NOW: OffsetDateTime = datetime!(2026-11-28 12:00 UTC);

/// Tim is on call through the Orders primary schedule at level 1 today; Ana at level 2 directly; Bo tomorrow.
async fn world() -> FakePagerDuty {
    let pd = FakePagerDuty::start().await;
    pd.set_now(NOW);
    pd.add_user("PTIM001", "Tim Wright", "tim@example.com");
    pd.add_user("PANA001", "Ana Lima", "ana@example.com");
    pd.add_user("PBOB001", "Bo Berg", "bo@example.com");
    pd.add_schedule("PORDERS1", "Orders primary");
    pd.add_escalation_policy("PEPORD1", "Orders escalation");
    let today = (datetime!(2026-11-28 08:00 UTC), datetime!(2026-11-29 08:00 UTC));
    pd.add_oncall(OnCall::new("PTIM001", "PEPORD1", 1).via_schedule("PORDERS1").between(today.0, today.1));
    pd.add_oncall(OnCall::new("PANA001", "PEPORD1", 2));
    pd.add_oncall(
        OnCall::new("PBOB001", "PEPORD1", 1).via_schedule("PORDERS1").between(today.1, today.1 + Duration::days(1)),
    );
    pd.add_service("PORDERSVC", "Orders");
    pd.add_incident(Incident {
        id: "PT4KHLK".into(),
        number: 1234,
        title: "Orders stuck in paid".into(),
        status: "acknowledged".into(),
        service: "PORDERSVC".into(),
        escalation_policy: Some("PEPORD1".into()),
    });
    pd
}

/// `POST path` with a JSON body and a `From` header.
async fn post(pd: &FakePagerDuty, path: &str, from: Option<&str>, body: &Value) -> (StatusCode, Value) {
    let mut request = reqwest::Client::new()
        .post(format!("{}{path}", pd.base_url()))
        .header("Authorization", format!("Token token={API_KEY}"))
        .header("Accept", "application/vnd.pagerduty+json;version=2")
        .json(body);
    if let Some(from) = from {
        request = request.header("From", from);
    }
    let response = request.send().await.expect("the emulator answers");
    let status = response.status();
    (status, response.json().await.expect("a JSON body"))
}

async fn get(pd: &FakePagerDuty, path_and_query: &str) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    get_with(pd, path_and_query, Some(&format!("Token token={API_KEY}"))).await
}

async fn get_with(
    pd: &FakePagerDuty,
    path_and_query: &str,
    authorization: Option<&str>,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let mut request = reqwest::Client::new()
        .get(format!("{}{path_and_query}", pd.base_url()))
        .header("Accept", "application/vnd.pagerduty+json;version=2");
    if let Some(authorization) = authorization {
        request = request.header("Authorization", authorization);
    }
    let response = request.send().await.expect("the emulator answers");
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.json().await.expect("a JSON body");
    (status, headers, body)
}

/// Differences in shape (object keys and JSON types, arrays compared by their first element) between a sample
/// and what the emulator sent.
fn shape_differences(sample: &Value, ours: &Value, at: &str) -> Vec<String> {
    match (sample, ours) {
        (Value::Object(a), Value::Object(b)) => {
            let mut out = Vec::new();
            for key in a.keys().filter(|k| !b.contains_key(*k)) {
                out.push(format!("{at}.{key} missing"));
            }
            for key in b.keys().filter(|k| !a.contains_key(*k)) {
                out.push(format!("{at}.{key} not in the sample"));
            }
            for (key, value) in a.iter().filter_map(|(k, v)| Some((k, v, b.get(k)?))).map(|(k, v, w)| (k, (v, w))) {
                out.extend(shape_differences(value.0, value.1, &format!("{at}.{key}")));
            }
            out
        }
        (Value::Array(a), Value::Array(b)) => match (a.first(), b.first()) {
            (Some(x), Some(y)) => shape_differences(x, y, &format!("{at}[0]")),
            (Some(_), None) => vec![format!("{at} is empty, the sample is not")],
            _ => Vec::new(),
        },
        (a, b) if std::mem::discriminant(a) == std::mem::discriminant(b) => Vec::new(),
        (a, b) => vec![format!("{at}: sample has {a}, emulator sent {b}")],
    }
}

fn samples_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../samples/pagerduty")
}

#[tokio::test]
async fn every_sample_has_the_shape_the_emulator_sends() {
    let pd = world().await;
    // Which request reproduces each sample. A new sample without an entry here fails the test.
    let requests = [
        ("oncalls.list.json", "/oncalls?schedule_ids[]=PORDERS1"),
        ("oncalls.list.include_users.derived.json", "/oncalls?schedule_ids[]=PORDERS1&include[]=users"),
        ("users.get.json", "/users/PTIM001"),
        ("error.not_found.derived.json", "/users/PNOBODY"),
        ("incidents.get.derived.json", "/incidents/PT4KHLK"),
        // A POST: compared in its own test below, listed here so the folder check knows it.
        ("incidents.notes.create.derived.json", ""),
    ];
    let mut samples: Vec<String> = std::fs::read_dir(samples_dir())
        .expect("the samples folder")
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter(|name| name.ends_with(".json"))
        .collect();
    samples.sort();
    let mut covered: Vec<String> = requests.iter().map(|(name, _)| (*name).to_owned()).collect();
    covered.sort();
    assert_eq!(samples, covered, "every sample is compared with a response");

    for (name, request) in requests.into_iter().filter(|(_, request)| !request.is_empty()) {
        let text = std::fs::read_to_string(samples_dir().join(name)).expect("read the sample");
        let sample: Value = serde_json::from_str(&text).expect("samples are JSON");
        assert!(samples_dir().join(format!("{name}.source.txt")).exists(), "{name} says where it comes from");
        let (_, _, ours) = get(&pd, request).await;
        let differences = shape_differences(&sample, &ours, "$");
        assert!(differences.is_empty(), "{name} vs GET {request}: {differences:#?}\nemulator sent {ours:#}");
    }
}

#[tokio::test]
async fn an_incident_is_found_by_id_or_number_and_notes_need_a_known_from_address() {
    let pd = world().await;
    let (status, _, by_number) = get(&pd, "/incidents/1234").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(by_number["incident"]["id"], "PT4KHLK");
    assert_eq!(by_number["incident"]["service"]["id"], "PORDERSVC");
    let (status, _, _) = get(&pd, "/incidents/9999").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let note = serde_json::json!({ "note": { "content": "jitgate JIT-AAAAAA approved" } });
    let (status, created) = post(&pd, "/incidents/PT4KHLK/notes", Some("tim@example.com"), &note).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let sample: Value = serde_json::from_str(
        &std::fs::read_to_string(samples_dir().join("incidents.notes.create.derived.json")).expect("read the sample"),
    )
    .expect("JSON");
    let differences = shape_differences(&sample, &created, "$");
    assert!(differences.is_empty(), "{differences:#?}\nemulator sent {created:#}");
    assert_eq!(created["note"]["user"]["id"], "PTIM001");

    let (status, body) = post(&pd, "/incidents/PT4KHLK/notes", None, &note).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let (status, _) = post(&pd, "/incidents/PT4KHLK/notes", Some("nobody@example.com"), &note).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let empty = serde_json::json!({ "note": { "content": " " } });
    let (status, _) = post(&pd, "/incidents/1234/notes", Some("tim@example.com"), &empty).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let notes = pd.notes();
    assert_eq!(notes.len(), 1, "only the valid note was kept: {notes:?}");
    assert_eq!((notes[0].incident.as_str(), notes[0].from.as_str()), ("PT4KHLK", "tim@example.com"));
}

#[tokio::test]
async fn requests_without_a_valid_api_key_get_401_with_the_error_body() {
    let pd = world().await;
    for authorization in [None, Some("Token token=wrong"), Some(&*format!("Bearer {API_KEY}")), Some(API_KEY)] {
        let (status, _, body) = get_with(&pd, "/oncalls", authorization).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{authorization:?}");
        assert!(body["error"]["message"].is_string() && body["error"]["code"].is_number(), "{body}");
        assert!(body.get("oncalls").is_none());
    }
    pd.add_api_key("second-key");
    let (status, _, _) = get_with(&pd, "/users/PTIM001", Some("Token token=second-key")).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn oncalls_are_filtered_by_the_window_and_ids_with_either_bracket_form() {
    let pd = world().await;
    let users = |body: &Value| -> Vec<String> {
        body["oncalls"]
            .as_array()
            .expect("oncalls")
            .iter()
            .map(|o| o["user"]["id"].as_str().unwrap_or("").to_owned())
            .collect()
    };
    // Default window is "now": Tim (schedule, level 1) and Ana (direct, level 2), not Bo (tomorrow).
    let (_, _, all) = get(&pd, "/oncalls?escalation_policy_ids[]=PEPORD1").await;
    assert_eq!(users(&all), ["PTIM001", "PANA001"]);
    let (_, _, encoded) = get(&pd, "/oncalls?escalation_policy_ids%5B%5D=PEPORD1").await;
    assert_eq!(users(&encoded), ["PTIM001", "PANA001"]);
    let (_, _, by_schedule) = get(&pd, "/oncalls?schedule_ids%5B%5D=PORDERS1").await;
    assert_eq!(users(&by_schedule), ["PTIM001"]);
    assert_eq!(by_schedule["oncalls"][0]["schedule"]["id"], "PORDERS1");
    // Filters combine: the schedule AND the user.
    let (_, _, none) = get(&pd, "/oncalls?schedule_ids[]=PORDERS1&user_ids[]=PANA001").await;
    assert_eq!(users(&none), Vec::<String>::new());
    // A direct target has no schedule.
    let (_, _, ana) = get(&pd, "/oncalls?user_ids[]=PANA001").await;
    assert_eq!(ana["oncalls"][0]["schedule"], Value::Null);
    assert_eq!(ana["oncalls"][0]["start"], Value::Null);
    // The window overlaps tomorrow: Bo appears; the shift end is exclusive.
    let (_, _, tomorrow) =
        get(&pd, "/oncalls?schedule_ids[]=PORDERS1&since=2026-11-29T08:00:00Z&until=2026-11-29T08:00:00Z").await;
    assert_eq!(users(&tomorrow), ["PBOB001"]);
    let (_, _, both) =
        get(&pd, "/oncalls?schedule_ids[]=PORDERS1&since=2026-11-28T12:00:00Z&until=2026-11-29T09:00:00Z").await;
    assert_eq!(users(&both), ["PTIM001", "PBOB001"]);
    pd.add_oncall(
        OnCall::new("PTIM001", "PEPORD1", 1)
            .via_schedule("PORDERS1")
            .between(datetime!(2026-11-30 08:00 UTC), datetime!(2026-12-01 08:00 UTC)),
    );
    let (_, _, three) =
        get(&pd, "/oncalls?schedule_ids[]=PORDERS1&since=2026-11-28T12:00:00Z&until=2026-12-01T00:00:00Z").await;
    assert_eq!(users(&three), ["PTIM001", "PBOB001", "PTIM001"]);
    let (_, _, earliest) = get(
        &pd,
        "/oncalls?schedule_ids[]=PORDERS1&since=2026-11-28T12:00:00Z&until=2026-12-01T00:00:00Z&earliest=true",
    )
    .await;
    assert_eq!(users(&earliest), ["PTIM001", "PBOB001"], "one per policy, level and user");
    // The emulator's "now" moves: tomorrow Bo is on call.
    pd.set_now(NOW + Duration::days(1));
    let (_, _, later) = get(&pd, "/oncalls?schedule_ids[]=PORDERS1").await;
    assert_eq!(users(&later), ["PBOB001"]);
    // Invalid input is a 400 with the error body.
    let (status, _, body) = get(&pd, "/oncalls?since=2026-11-29T00:00:00Z&until=2026-11-28T00:00:00Z").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"]["errors"][0].is_string(), "{body}");
    let (status, _, _) = get(&pd, "/oncalls?since=yesterday").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn include_users_expands_the_user_with_its_email() {
    let pd = world().await;
    let (_, _, plain) = get(&pd, "/oncalls?schedule_ids[]=PORDERS1").await;
    assert_eq!(plain["oncalls"][0]["user"]["type"], "user_reference");
    assert!(plain["oncalls"][0]["user"].get("email").is_none());
    let (_, _, expanded) = get(&pd, "/oncalls?schedule_ids[]=PORDERS1&include%5B%5D=users").await;
    assert_eq!(expanded["oncalls"][0]["user"]["type"], "user");
    assert_eq!(expanded["oncalls"][0]["user"]["email"], "tim@example.com");
    assert_eq!(expanded["oncalls"][0]["user"]["name"], "Tim Wright");
}

#[tokio::test]
async fn pages_follow_limit_and_offset_until_more_is_false() {
    let pd = world().await;
    for n in 0..7 {
        let id = format!("PUSER{n:02}");
        pd.add_user(&id, &format!("User {n}"), &format!("u{n}@example.com"));
        pd.add_oncall(OnCall::new(&id, "PEPORD1", 1).via_schedule("PORDERS1"));
    }
    let mut seen = Vec::new();
    let mut offset = 0;
    loop {
        let (_, _, page) = get(&pd, &format!("/oncalls?schedule_ids[]=PORDERS1&limit=3&offset={offset}")).await;
        assert_eq!(page["limit"], 3);
        assert_eq!(page["offset"], offset);
        assert_eq!(page["total"], Value::Null, "total is null unless asked for");
        seen.extend(page["oncalls"].as_array().expect("oncalls").iter().map(|o| o["user"]["id"].clone()));
        if page["more"] == false {
            break;
        }
        offset += 3;
    }
    assert_eq!(seen.len(), 8, "7 permanent shifts and Tim's: {seen:?}");
    let (_, _, counted) = get(&pd, "/oncalls?schedule_ids[]=PORDERS1&total=true&limit=500").await;
    assert_eq!(counted["total"], 8);
    assert_eq!(counted["limit"], 100, "pages hold at most 100");
    let (_, _, default) = get(&pd, "/oncalls").await;
    assert_eq!(default["limit"], 25);
}

#[tokio::test]
async fn times_are_rendered_in_the_account_time_zone() {
    let pd = world().await;
    pd.set_account_offset(offset!(-5));
    let (_, _, body) = get(&pd, "/oncalls?schedule_ids[]=PORDERS1").await;
    assert_eq!(body["oncalls"][0]["start"], "2026-11-28T03:00:00-05:00");
    assert_eq!(body["oncalls"][0]["end"], "2026-11-29T03:00:00-05:00");
}

#[tokio::test]
async fn schedules_and_escalation_policies_can_be_read_or_are_404() {
    let pd = world().await;
    let (status, _, schedule) = get(&pd, "/schedules/PORDERS1").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(schedule["schedule"]["name"], "Orders primary");
    assert_eq!(schedule["schedule"]["type"], "schedule");
    assert_eq!(schedule["schedule"]["escalation_policies"][0]["id"], "PEPORD1");
    let (status, _, policy) = get(&pd, "/escalation_policies/PEPORD1").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(policy["escalation_policy"]["name"], "Orders escalation");
    assert_eq!(policy["escalation_policy"]["escalation_rules"][0]["targets"][0]["id"], "PORDERS1");
    assert_eq!(policy["escalation_policy"]["escalation_rules"][1]["targets"][0]["id"], "PANA001");
    for missing in ["/schedules/PNOPE", "/escalation_policies/PNOPE", "/users/PNOPE", "/services"] {
        let (status, _, body) = get(&pd, missing).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{missing}");
        assert_eq!(body["error"]["code"], 2100, "{missing}");
    }
}

#[tokio::test]
async fn injected_faults_come_in_order_then_service_resumes() {
    let pd = world().await;
    pd.rate_limit_next(2, 7);
    pd.fail_next(503);
    for _ in 0..2 {
        let (status, headers, body) = get(&pd, "/oncalls").await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(headers["ratelimit-reset"], "7");
        assert_eq!(headers["ratelimit-remaining"], "0");
        assert!(headers.contains_key("ratelimit-limit"));
        assert!(body["error"]["message"].is_string());
    }
    let (status, _, _) = get(&pd, "/oncalls").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let (status, _, _) = get(&pd, "/oncalls").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_server_that_went_down_refuses_connections_until_it_comes_back() {
    let pd = world().await;
    let client = reqwest::Client::new();
    let url = format!("{}/users/PTIM001", pd.base_url());
    let auth = format!("Token token={API_KEY}");
    assert!(client.get(&url).header("Authorization", &auth).send().await.is_ok());
    pd.go_down().await;
    let refused = reqwest::Client::new().get(&url).header("Authorization", &auth).send().await;
    let error = refused.expect_err("nobody listens");
    assert!(error.is_connect(), "{error:?}");
    pd.come_back().await;
    let (status, _, _) = get(&pd, "/users/PTIM001").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn every_request_is_recorded_with_its_query_and_headers() {
    let pd = world().await;
    get(&pd, "/oncalls?schedule_ids%5B%5D=PORDERS1&schedule_ids[]=PX&include[]=users").await;
    get_with(&pd, "/users/PTIM001", None).await;
    let requests = pd.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].path, "/oncalls");
    assert_eq!(requests[0].params("schedule_ids[]"), ["PORDERS1", "PX"]);
    assert_eq!(requests[0].param("include[]"), Some("users"));
    assert_eq!(requests[0].raw_query, "schedule_ids%5B%5D=PORDERS1&schedule_ids[]=PX&include[]=users");
    assert_eq!(requests[0].accept.as_deref(), Some("application/vnd.pagerduty+json;version=2"));
    assert_eq!(requests[1].authorization, None, "the rejected request is recorded too");
    assert_eq!(pd.requests_to("/users/PTIM001").len(), 1);
}
