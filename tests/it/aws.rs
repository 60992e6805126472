//! The AWS layer against a real local DynamoDB/STS server (moto): an approved query is turned into 15-minute
//! credentials, run with those credentials only, paged up to its cap, masked, and refused whenever what would run
//! is not what was approved or the credentials are no longer fresh.

use jitgate_testkit as support;

use std::collections::{BTreeMap, BTreeSet};
use std::net::TcpListener;
use std::num::NonZeroU32;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use aws_config::SdkConfig;
use jitgate::aws::demo_table::{
    CUSTOMER_CREATED_INDEX, DemoOrder, create_demo_orders_table, demo_customer_id, seed_demo_orders,
};
use jitgate::aws::{
    AssumeRoleRequest, AwsFailure, ExecutionResult, Executor, Row, StsBroker, TemporaryCredentials, Value,
};
use jitgate::clock::{Clock, ManualClock, SharedClock};
use jitgate::ids::{RequestId, RunbookId, SlackUserId};
use jitgate::request::{AccessRequest, ApproveOutcome, ApprovedQuery, NewRequest, Roster, RosterSource, approve};
use jitgate::result_rows::ROWS_IN_MEMORY;
use jitgate::runbook::{ApprovalPolicy, ApproverSources, BoundValue, KeyValue, Operation, RenderedQuery};
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

const ROLE_ARN: &str = "arn:aws:iam::123456789012:role/jitgate-orders-read";
const MASK: &str = "••••";

/// What the user reads for a failure: the reason the request records, rendered by `messages`.
trait UserMessage {
    fn user_message(&self) -> String;
}

impl UserMessage for AwsFailure {
    fn user_message(&self) -> String {
        jitgate::messages::failure_reason(&self.reason())
    }
}

// ---------------------------------------------------------------------------------------------------------------
// The world: a seeded Orders table, rendered queries, and the one legal way to get an ApprovedQuery.

fn user(id: &str) -> SlackUserId {
    SlackUserId::parse(id).expect("test user id")
}

fn dynamodb(config: &SdkConfig) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(config)
}

/// A fresh Orders table on `config`'s server, seeded with `customers` × `orders` demo orders.
async fn seeded_table(config: &SdkConfig, customers: u32, orders: u32) -> (String, Vec<DemoOrder>) {
    let table = support::unique("Orders");
    let client = dynamodb(config);
    create_demo_orders_table(&client, &table).await.expect("create table");
    let seeded = seed_demo_orders(&client, &table, customers, orders).await.expect("seed table");
    (table, seeded)
}

/// What the executor should deliver for an order (before masking).
fn row_of(order: &DemoOrder) -> Row {
    let s = |v: &str| Value::S(v.to_owned());
    BTreeMap::from([
        ("order_id".to_owned(), s(&order.order_id)),
        ("customer_id".to_owned(), s(&order.customer_id)),
        ("created_at".to_owned(), s(&order.created_at)),
        ("status".to_owned(), s(&order.status)),
        ("total".to_owned(), Value::N(order.total.clone())),
        ("currency".to_owned(), s(&order.currency)),
        ("email".to_owned(), s(&order.email)),
        ("shipping_address".to_owned(), s(&order.shipping_address)),
    ])
}

fn table_arn(table: &str) -> String {
    format!("arn:aws:dynamodb:{}:{}:table/{table}", support::REGION, support::ACCOUNT)
}

/// A query skeleton on `table`; callers fill in the operation-specific parts.
fn query_on(table: &str, operation: Operation, item_cap: u32) -> RenderedQuery {
    RenderedQuery {
        runbook: RunbookId::parse("orders-by-customer").expect("runbook id"),
        role_arn: ROLE_ARN.into(),
        table: table.into(),
        table_arn: table_arn(table),
        index: None,
        index_arn: None,
        operation,
        key: vec![],
        partition_key: None,
        key_condition_expression: None,
        filter_expression: None,
        projection_expression: None,
        expression_attribute_names: BTreeMap::new(),
        expression_attribute_values: BTreeMap::new(),
        projected_attributes: vec![],
        accessed_attributes: vec![],
        masked_attributes: vec![],
        item_cap,
        update: None,
        unmasked_attributes: vec![],
    }
}

/// `orders-by-customer`: Query the customer-created index for one customer.
fn orders_by_customer(table: &str, customer: &str, item_cap: u32) -> RenderedQuery {
    let value = BoundValue::S(customer.into());
    RenderedQuery {
        index: Some(CUSTOMER_CREATED_INDEX.into()),
        index_arn: Some(format!("{}/index/{CUSTOMER_CREATED_INDEX}", table_arn(table))),
        partition_key: Some(KeyValue { attribute: "customer_id".into(), value: value.clone() }),
        key_condition_expression: Some("#pk = :pk".into()),
        expression_attribute_names: BTreeMap::from([("#pk".into(), "customer_id".into())]),
        expression_attribute_values: BTreeMap::from([(":pk".into(), value)]),
        accessed_attributes: vec!["customer_id".into()],
        ..query_on(table, Operation::Query, item_cap)
    }
}

/// Query the base table by its partition key.
fn order_by_id(table: &str, order_id: &str) -> RenderedQuery {
    let value = BoundValue::S(order_id.into());
    RenderedQuery {
        partition_key: Some(KeyValue { attribute: "order_id".into(), value: value.clone() }),
        key_condition_expression: Some("#pk = :pk".into()),
        expression_attribute_names: BTreeMap::from([("#pk".into(), "order_id".into())]),
        expression_attribute_values: BTreeMap::from([(":pk".into(), value)]),
        accessed_attributes: vec!["order_id".into()],
        ..query_on(table, Operation::Query, 10)
    }
}

/// GetItem by primary key.
fn get_order(table: &str, order_id: &str) -> RenderedQuery {
    let key = KeyValue { attribute: "order_id".into(), value: BoundValue::S(order_id.into()) };
    RenderedQuery {
        key: vec![key.clone()],
        partition_key: Some(key),
        accessed_attributes: vec!["order_id".into()],
        ..query_on(table, Operation::GetItem, 1)
    }
}

/// A request by UREQ, approved by UBOB (named approver), through the state machine.
fn approved(query: RenderedQuery) -> ApprovedQuery {
    approved_after(query, |_| {})
}

/// Like [`approved`], but `tamper` may change the stored request between creation and approval.
fn approved_after(query: RenderedQuery, tamper: impl FnOnce(&mut AccessRequest)) -> ApprovedQuery {
    let now = OffsetDateTime::now_utc();
    let policy = ApprovalPolicy {
        approvers: ApproverSources { slack_users: BTreeSet::from([user("UBOB")]), ..ApproverSources::default() },
        required_approvals: 1,
        require_reason: true,
        ttl: StdDuration::from_secs(30 * 60),
        escalation: None,
    };
    let new = NewRequest {
        id: RequestId::generate(),
        requester: user("UREQ"),
        reason: Some("INC-812".into()),
        query,
        policy,
        incident: None,
    };
    let mut request = AccessRequest::create(new, now).expect("request is valid");
    tamper(&mut request);
    let roster = Roster::new(now).with(user("UBOB"), RosterSource::NamedApprover, "named in the runbook");
    match approve(&request, &user("UBOB"), &roster, now) {
        ApproveOutcome::Approved { query, .. } => query,
        other => panic!("expected approval, got {other:?}"),
    }
}

/// A session policy as the runbook module would generate it (moto does not enforce session policies).
fn session_policy(query: &RenderedQuery) -> String {
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Action": query.operation.iam_action(),
            "Resource": [query.table_arn.clone()],
        }]
    })
    .to_string()
}

async fn assume_on(config: &SdkConfig, approved: &ApprovedQuery) -> Result<TemporaryCredentials, AwsFailure> {
    StsBroker::new(config).assume(&AssumeRoleRequest::for_approved(approved, session_policy(approved.query()))).await
}

async fn credentials_for(approved: &ApprovedQuery) -> TemporaryCredentials {
    assume_on(&support::aws_config(), approved).await.expect("assume role")
}

fn clock_now() -> Arc<ManualClock> {
    ManualClock::new(OffsetDateTime::now_utc())
}

fn executor() -> Executor {
    Executor::new(support::aws_config(), clock_now())
}

/// Approves and runs `query` on the shared server with fresh credentials.
/// The rows a run delivered, read back as JSON.
fn delivered(result: &ExecutionResult) -> serde_json::Value {
    result.rows.to_json().expect("the delivered rows read back")
}

/// Expected rows in the form a run delivers them.
fn json_of(rows: &[Row]) -> serde_json::Value {
    serde_json::to_value(rows).expect("rows are JSON")
}

async fn run(executor: &Executor, query: RenderedQuery) -> Result<ExecutionResult, AwsFailure> {
    let approved = approved(query);
    let credentials = credentials_for(&approved).await;
    executor.run(&approved, credentials).await
}

// ---------------------------------------------------------------------------------------------------------------
// STS

#[tokio::test]
async fn assume_role_returns_fifteen_minute_credentials_named_after_the_request() {
    let approved = approved(orders_by_customer("Orders", "C000001", 10));
    let before = OffsetDateTime::now_utc();
    let credentials = credentials_for(&approved).await;
    let after = OffsetDateTime::now_utc();

    let earliest = before + Duration::seconds(900) - Duration::seconds(5);
    let latest = after + Duration::seconds(900) + Duration::seconds(5);
    assert!(
        (earliest..=latest).contains(&credentials.expiration()),
        "expiry {} is not now + 900 s ({earliest}..{latest})",
        credentials.expiration()
    );
    let session = format!("jit-{}", approved.request_id());
    assert!(credentials.assumed_role_id().ends_with(&format!(":{session}")), "{}", credentials.assumed_role_id());
    assert!(credentials.assumed_role_arn().contains("jitgate-orders-read"), "{}", credentials.assumed_role_arn());
    assert!(credentials.assumed_role_arn().ends_with(&session), "{}", credentials.assumed_role_arn());
    assert!(!credentials.session_token().expose_secret().is_empty());
    let summary = credentials.summary();
    assert_eq!(summary.access_key_id, credentials.access_key_id().expose_secret());
}

#[tokio::test]
async fn credentials_debug_never_shows_the_secrets() {
    let credentials = credentials_for(&approved(orders_by_customer("Orders", "C000001", 10))).await;
    let debug = format!("{credentials:?}");
    for secret in [
        credentials.access_key_id().expose_secret(),
        credentials.secret_access_key().expose_secret(),
        credentials.session_token().expose_secret(),
    ] {
        assert!(!debug.contains(secret), "Debug shows a secret: {debug}");
    }
    assert!(debug.contains(credentials.assumed_role_id()), "{debug}");
}

#[tokio::test]
async fn credentials_living_longer_than_asked_are_refused() {
    // Seen from a clock an hour behind STS, the credentials live 4500 s: more than jitgate asked for. Whether STS
    // is misconfigured or the clocks disagree, the lifetime promise would not hold, so nothing is accepted.
    let approved = approved(orders_by_customer("Orders", "C000001", 10));
    let behind = ManualClock::new(OffsetDateTime::now_utc() - Duration::hours(1));
    let broker = StsBroker::new(&support::aws_config()).with_clock(behind);
    let err = broker
        .assume(&AssumeRoleRequest::for_approved(&approved, session_policy(approved.query())))
        .await
        .expect_err("long-lived credentials must be refused");
    assert!(matches!(err, AwsFailure::UnacceptableCredentials { .. }), "{err:?}");
    assert!(err.user_message().contains("longer than the 900 s"), "{}", err.user_message());
}

// ---------------------------------------------------------------------------------------------------------------
// Running queries

#[tokio::test]
async fn query_on_the_customer_index_returns_exactly_that_customers_orders() {
    let config = support::aws_config();
    let (table, orders) = seeded_table(&config, 3, 4).await;
    let customer = demo_customer_id(2);

    let result = run(&executor(), orders_by_customer(&table, &customer, 100)).await.expect("query runs");

    let mut expected: Vec<&DemoOrder> = orders.iter().filter(|o| o.customer_id == customer).collect();
    expected.sort_by(|a, b| a.created_at.cmp(&b.created_at));
    let expected: Vec<Row> = expected.into_iter().map(row_of).collect();
    assert_eq!(expected.len(), 4);
    assert_eq!(delivered(&result), json_of(&expected), "the customer's orders, oldest first, every attribute");
    assert_eq!(result.row_count, 4);
    assert!(!result.truncated);
    assert_eq!(result.pages, 1);
    assert!(result.consumed_capacity > 0.0);
}

#[tokio::test]
async fn base_table_query_and_get_item_return_the_one_order() {
    let config = support::aws_config();
    let (table, orders) = seeded_table(&config, 2, 3).await;
    let order = &orders[4];
    let executor = executor();

    let by_query = run(&executor, order_by_id(&table, &order.order_id)).await.expect("query runs");
    assert_eq!(delivered(&by_query), json_of(&[row_of(order)]));

    let by_key = run(&executor, get_order(&table, &order.order_id)).await.expect("get item runs");
    assert_eq!(delivered(&by_key), json_of(&[row_of(order)]));
    assert_eq!((by_key.row_count, by_key.pages, by_key.truncated), (1, 1, false));
    assert!(by_key.consumed_capacity > 0.0);

    let missing = run(&executor, get_order(&table, "O999999-0001")).await.expect("get item runs");
    assert!(missing.rows.is_empty());
    assert_eq!(missing.row_count, 0);
}

#[tokio::test]
async fn projection_returns_only_the_named_attributes() {
    let config = support::aws_config();
    let (table, orders) = seeded_table(&config, 1, 2).await;
    let query = RenderedQuery {
        projection_expression: Some("#o, #t".into()),
        expression_attribute_names: BTreeMap::from([
            ("#pk".into(), "customer_id".into()),
            ("#o".into(), "order_id".into()),
            ("#t".into(), "total".into()),
        ]),
        projected_attributes: vec!["order_id".into(), "total".into()],
        ..orders_by_customer(&table, &demo_customer_id(1), 10)
    };
    let result = run(&executor(), query).await.expect("query runs");
    let expected: Vec<Row> = orders
        .iter()
        .map(|o| {
            BTreeMap::from([
                ("order_id".to_owned(), Value::S(o.order_id.clone())),
                ("total".to_owned(), Value::N(o.total.clone())),
            ])
        })
        .collect();
    assert_eq!(delivered(&result), json_of(&expected));
}

#[tokio::test]
async fn masked_attributes_never_leave_the_executor() {
    let config = support::aws_config();
    let (table, orders) = seeded_table(&config, 2, 3).await;
    let customer = demo_customer_id(1);
    let query = RenderedQuery {
        masked_attributes: vec!["email".into(), "shipping_address".into()],
        ..orders_by_customer(&table, &customer, 100)
    };

    let result = run(&executor(), query).await.expect("query runs");

    assert_eq!(result.row_count, 3);
    let rows = delivered(&result);
    let json = rows.to_string();
    let debug = format!("{result:?}");
    for order in orders.iter().filter(|o| o.customer_id == customer) {
        for secret in [&order.email, &order.shipping_address] {
            assert!(!json.contains(secret.as_str()), "{secret} leaked into the JSON");
            assert!(!debug.contains(secret.as_str()), "{secret} leaked into Debug");
        }
    }
    for row in rows.as_array().expect("an array of rows") {
        assert_eq!(row["email"], MASK);
        assert_eq!(row["shipping_address"], MASK);
        assert_eq!(row["customer_id"], customer.as_str(), "unmasked attributes stay");
    }
    assert_eq!(json.matches(MASK).count(), 6, "two masked attributes in each of three rows");
    // The hash covers what was delivered: the masked rows, as canonical JSON.
    assert_eq!(result.result_sha256, hex::encode(Sha256::digest(serde_json::to_vec(&rows).expect("JSON"))));
}

#[tokio::test]
async fn pages_until_the_cap_and_says_when_more_was_left() {
    let config = support::aws_config();
    let (table, orders) = seeded_table(&config, 1, 25).await;
    let customer = demo_customer_id(1);
    let executor = executor().with_page_size(NonZeroU32::new(4).expect("non-zero"));
    let oldest_first: Vec<Row> = orders.iter().map(row_of).collect();

    let capped = run(&executor, orders_by_customer(&table, &customer, 10)).await.expect("query runs");
    assert_eq!(delivered(&capped), json_of(&oldest_first[..10]), "exactly the cap, in key order");
    assert_eq!(capped.row_count, 10);
    assert!(capped.truncated, "15 more orders were left");
    assert!(capped.pages > 1, "4-item pages: {} pages", capped.pages);

    let all = run(&executor, orders_by_customer(&table, &customer, 25)).await.expect("query runs");
    assert_eq!(delivered(&all), json_of(&oldest_first), "every order when the cap fits them exactly");
    assert!(!all.truncated, "nothing was left after the 25th order");
    assert!(all.pages > 1);

    let roomy = run(&executor, orders_by_customer(&table, &customer, 40)).await.expect("query runs");
    assert_eq!((roomy.row_count, roomy.truncated), (25, false));
}

/// `orders-by-customer` narrowed to one status by a filter (evaluated after `Limit`, as in AWS).
fn customer_orders_with_status(table: &str, customer: &str, status: &str, item_cap: u32) -> RenderedQuery {
    let mut query = orders_by_customer(table, customer, item_cap);
    query.filter_expression = Some("#st = :st".into());
    query.expression_attribute_names.insert("#st".into(), "status".into());
    query.expression_attribute_values.insert(":st".into(), BoundValue::S(status.into()));
    query.accessed_attributes.push("status".into());
    query
}

#[tokio::test]
async fn with_a_filter_truncated_means_another_match_exists() {
    let config = support::aws_config();
    let (table, orders) = seeded_table(&config, 1, 15).await;
    let customer = demo_customer_id(1);
    let status = orders[0].status.clone();
    let matching: Vec<Row> = orders.iter().filter(|o| o.status == status).map(row_of).collect();
    assert_eq!(matching.len(), 3, "statuses cycle every five orders");
    let executor = executor();

    // Two of three matches: the cap is reached with a third match still in the partition.
    let capped = run(&executor, customer_orders_with_status(&table, &customer, &status, 2)).await.expect("runs");
    assert_eq!(delivered(&capped), json_of(&matching[..2]));
    assert!(capped.truncated, "a third matching order exists");

    // Ten orders hold only two matches: the cap is reached while unmatched orders remain, and nothing was cut.
    let (table, orders) = seeded_table(&config, 1, 10).await;
    let matching: Vec<Row> = orders.iter().filter(|o| o.status == status).map(row_of).collect();
    assert_eq!(matching.len(), 2);
    let exact = run(&executor, customer_orders_with_status(&table, &customer, &status, 2)).await.expect("runs");
    assert_eq!(delivered(&exact), json_of(&matching));
    assert!(!exact.truncated, "the remaining orders do not match the filter");
}

#[tokio::test]
async fn consumed_capacity_is_summed_over_every_page() {
    let config = support::aws_config();
    let (table, _) = seeded_table(&config, 1, 12).await;
    let query = orders_by_customer(&table, &demo_customer_id(1), 100);

    let one_page = run(&executor(), query.clone()).await.expect("query runs");
    let paged_executor = executor().with_page_size(NonZeroU32::new(3).expect("non-zero"));
    let paged = run(&paged_executor, query).await.expect("query runs");

    assert_eq!(one_page.pages, 1);
    assert!(paged.pages >= 4, "{} pages", paged.pages);
    assert_eq!(delivered(&paged), delivered(&one_page));
    // Every read call costs at least half a capacity unit; only a sum over all pages reaches this.
    assert!(
        paged.consumed_capacity >= 0.5 * f64::from(paged.pages) && paged.consumed_capacity > one_page.consumed_capacity,
        "{} units over {} pages vs {} in one page",
        paged.consumed_capacity,
        paged.pages,
        one_page.consumed_capacity
    );
}

#[tokio::test]
async fn a_large_result_that_cannot_be_kept_fails_and_a_small_one_never_touches_the_disk() {
    let config = support::aws_config();
    let (table, _) = seeded_table(&config, 2, ROWS_IN_MEMORY as u32 + 5).await;
    let nowhere = executor().with_spill_dir("/nonexistent/jitgate-spill".into());

    let small = run(&nowhere, orders_by_customer(&table, &demo_customer_id(1), ROWS_IN_MEMORY as u32)).await;
    assert_eq!(small.expect("a small result stays in memory").row_count as usize, ROWS_IN_MEMORY);

    let large = run(&nowhere, orders_by_customer(&table, &demo_customer_id(2), 100)).await;
    let err = large.expect_err("the rows beyond memory have nowhere to go");
    assert!(matches!(err, AwsFailure::ResultNotKept { .. }), "{err:?}");
    assert_eq!(err.reason().code(), "result_not_kept");
}

// ---------------------------------------------------------------------------------------------------------------
// Refusals

/// An endpoint where nothing listens: any call made there fails to connect.
fn closed_endpoint() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("local addr").port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

#[tokio::test]
async fn expired_credentials_are_refused_before_any_call() {
    let approved = approved(orders_by_customer("Orders", "C000001", 10));
    // Nothing listens there: if the executor made a call, the error would be a connection failure instead.
    let unreachable = support::aws_config_for(&closed_endpoint(), "AKIAJITGATETESTS0001", "test-secret");

    for past_or_nearly in [Duration::seconds(1), Duration::seconds(-10)] {
        let credentials = credentials_for(&approved).await;
        let expiration = credentials.expiration();
        let clock = ManualClock::new(OffsetDateTime::now_utc());
        clock.set(expiration + past_or_nearly);
        let err = Executor::new(unreachable.clone(), clock)
            .run(&approved, credentials)
            .await
            .expect_err("expired credentials must not be used");
        assert!(matches!(err, AwsFailure::CredentialsExpired { expired_at } if expired_at == expiration), "{err:?}");
        assert!(err.user_message().contains("expired"), "{}", err.user_message());
    }
}

/// A clock that moves forward by `step` every time it is read, like a long pagination would see it.
#[derive(Debug)]
struct SteppingClock {
    now: Mutex<OffsetDateTime>,
    step: Duration,
}

impl Clock for SteppingClock {
    fn now(&self) -> OffsetDateTime {
        let mut now = self.now.lock().unwrap_or_else(|p| p.into_inner());
        let current = *now;
        *now += self.step;
        current
    }
}

#[tokio::test]
async fn credentials_that_expire_during_pagination_stop_it() {
    let config = support::aws_config();
    let (table, _) = seeded_table(&config, 1, 20).await;
    let approved = approved(orders_by_customer(&table, &demo_customer_id(1), 20));
    let credentials = credentials_for(&approved).await;
    // Four minutes pass between calls: the first pages run, then the 15-minute credentials are too old.
    let clock: SharedClock =
        Arc::new(SteppingClock { now: Mutex::new(OffsetDateTime::now_utc()), step: Duration::minutes(4) });
    let executor = Executor::new(config, clock).with_page_size(NonZeroU32::new(2).expect("non-zero"));

    let err = executor.run(&approved, credentials).await.expect_err("expiry is checked before every page");
    assert!(matches!(err, AwsFailure::CredentialsExpired { .. }), "{err:?}");
}

#[tokio::test]
async fn a_query_that_is_not_what_was_approved_is_not_run() {
    let approved = approved_after(orders_by_customer("Orders", "C000001", 10), |request| {
        // Someone edits the stored request after the card was shown: another customer's partition.
        request.query.expression_attribute_values.insert(":pk".into(), BoundValue::S("C000002".into()));
    });
    assert!(!approved.is_intact());
    let credentials = credentials_for(&approved).await;
    let unreachable = support::aws_config_for(&closed_endpoint(), "AKIAJITGATETESTS0001", "test-secret");

    let err = Executor::new(unreachable, clock_now()).run(&approved, credentials).await.expect_err("refused");
    assert!(matches!(err, AwsFailure::FingerprintMismatch { .. }), "{err:?}");
    assert!(err.user_message().contains("not the one that was approved"), "{}", err.user_message());
}

#[tokio::test]
async fn a_missing_table_is_reported_as_not_found() {
    let table = support::unique("NoSuchOrders");
    let err = run(&executor(), orders_by_customer(&table, "C000001", 10)).await.expect_err("no table");
    assert!(matches!(err, AwsFailure::NotFound { .. }), "{err:?}");
    let message = err.user_message();
    assert!(message.contains(&table) && message.contains("not found"), "{message}");
}

#[tokio::test]
async fn a_key_condition_on_a_non_key_attribute_is_a_validation_error() {
    let config = support::aws_config();
    let (table, _) = seeded_table(&config, 1, 1).await;
    let query = RenderedQuery {
        index: None,
        index_arn: None,
        key_condition_expression: Some("#st = :st".into()),
        expression_attribute_names: BTreeMap::from([("#st".into(), "status".into())]),
        expression_attribute_values: BTreeMap::from([(":st".into(), BoundValue::S("PAID".into()))]),
        ..orders_by_customer(&table, "C000001", 10)
    };
    let err = run(&executor(), query).await.expect_err("invalid key condition");
    let AwsFailure::Validation { message } = &err else { panic!("expected a validation error, got {err:?}") };
    assert!(!message.is_empty());
    let shown = err.user_message();
    assert!(shown.contains("invalid") && shown.contains(message.as_str()), "{shown}");
}

// ---------------------------------------------------------------------------------------------------------------
// IAM denial, on a moto server of this test's own (switching IAM checks on is global to a server).

/// A moto server on a free port, killed when dropped. Also used by `live_check.rs`.
pub(crate) struct OwnMoto {
    child: Child,
    pub(crate) endpoint: String,
}

impl OwnMoto {
    pub(crate) async fn start() -> OwnMoto {
        let program = std::env::var("JITGATE_MOTO_SERVER")
            .expect("JITGATE_MOTO_SERVER is not set: run the tests with scripts/with-services.sh");
        let port = {
            let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
            listener.local_addr().expect("local addr").port()
        };
        let mut child = Command::new(program)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start moto_server");
        // Its HTTP server logs " * Running on http://…" once it listens: wait for that line (read on a thread,
        // which then keeps draining the request log so a full pipe never blocks moto).
        let log = std::io::BufReader::new(child.stderr.take().expect("piped stderr"));
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            use std::io::BufRead as _;
            let mut ready = Some(ready_tx);
            for line in log.lines().map_while(Result::ok) {
                if line.contains("Running on")
                    && let Some(ready) = ready.take()
                {
                    let _ = ready.send(());
                }
            }
        });
        let moto = OwnMoto { child, endpoint: format!("http://127.0.0.1:{port}") };
        match tokio::time::timeout(StdDuration::from_secs(30), ready_rx).await {
            Ok(Ok(())) => moto,
            // The sender is dropped when the log ends: moto exited before listening.
            Ok(Err(_)) => panic!("moto_server exited before opening port {port}"),
            Err(_) => panic!("moto_server did not open port {port} within 30 s"),
        }
    }

    /// An unsigned-but-attributed IAM query-protocol call (moto routes by the credential scope; it checks
    /// nothing until auth is switched on). Returns the XML body.
    pub(crate) async fn iam(&self, params: &[(&str, &str)]) -> String {
        let mut form = vec![("Version", "2010-05-08")];
        form.extend_from_slice(params);
        let response = reqwest::Client::new()
            .post(format!("{}/", self.endpoint))
            .header(
                "Authorization",
                "AWS4-HMAC-SHA256 Credential=AKIAJITGATESETUP0001/20260101/us-east-1/iam/aws4_request, \
                 SignedHeaders=host, Signature=0",
            )
            .form(&form)
            .send()
            .await
            .expect("IAM call");
        let status = response.status();
        let body = response.text().await.expect("IAM response body");
        assert!(status.is_success(), "IAM {params:?} failed: {status} {body}");
        body
    }

    /// From now on every request to this server is authenticated and authorised by IAM.
    pub(crate) async fn switch_auth_on(&self) {
        let response = reqwest::Client::new()
            .post(format!("{}/moto-api/reset-auth", self.endpoint))
            .header("Content-Type", "text/plain")
            .body("0")
            .send()
            .await
            .expect("reset-auth");
        assert!(response.status().is_success(), "reset-auth: {}", response.status());
    }
}

impl Drop for OwnMoto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn xml_field(xml: &str, field: &str) -> String {
    let pattern = regex::Regex::new(&format!("<{field}>([^<]+)</{field}>")).expect("regex");
    pattern.captures(xml).map(|c| c[1].to_owned()).unwrap_or_else(|| panic!("no <{field}> in {xml}"))
}

#[tokio::test]
async fn a_call_the_role_may_not_make_is_access_denied() {
    let moto = OwnMoto::start().await;
    let setup = support::aws_config_for(&moto.endpoint, "AKIAJITGATESETUP0001", "setup-secret");
    let (table, orders) = seeded_table(&setup, 1, 2).await;

    // The bot's own user may assume roles and (deliberately) read DynamoDB itself: if the executor ever signed
    // with the bot's identity instead of the role's, the GetItem below would succeed.
    let bot = "jitgate-bot";
    moto.iam(&[("Action", "CreateUser"), ("UserName", bot)]).await;
    let bot_policy = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": ["sts:AssumeRole", "dynamodb:*"], "Resource": "*"}]
    })
    .to_string();
    moto.iam(&[
        ("Action", "PutUserPolicy"),
        ("UserName", bot),
        ("PolicyName", "assume-and-read"),
        ("PolicyDocument", &bot_policy),
    ])
    .await;
    let key = moto.iam(&[("Action", "CreateAccessKey"), ("UserName", bot)]).await;
    let bot_config =
        support::aws_config_for(&moto.endpoint, &xml_field(&key, "AccessKeyId"), &xml_field(&key, "SecretAccessKey"));

    // The runbook's role: trusted by the bot, allowed only dynamodb:Query (moto checks actions, not table ARNs).
    let trust = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"AWS": format!("arn:aws:iam::{}:user/{bot}", support::ACCOUNT)},
            "Action": ["sts:AssumeRole", "sts:SetSourceIdentity", "sts:TagSession"]
        }]
    })
    .to_string();
    let role = moto
        .iam(&[("Action", "CreateRole"), ("RoleName", "jitgate-query-only"), ("AssumeRolePolicyDocument", &trust)])
        .await;
    let role_arn = xml_field(&role, "Arn");
    let query_only = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "dynamodb:Query", "Resource": "*"}]
    })
    .to_string();
    moto.iam(&[
        ("Action", "PutRolePolicy"),
        ("RoleName", "jitgate-query-only"),
        ("PolicyName", "query-only"),
        ("PolicyDocument", &query_only),
    ])
    .await;
    moto.switch_auth_on().await;

    let executor = Executor::new(bot_config.clone(), clock_now());
    let order = &orders[0];

    // The allowed action works with the role's credentials...
    let allowed = approved(RenderedQuery { role_arn: role_arn.clone(), ..order_by_id(&table, &order.order_id) });
    let credentials = assume_on(&bot_config, &allowed).await.expect("the bot may assume the role");
    let result = executor.run(&allowed, credentials).await.expect("Query is allowed");
    assert_eq!(delivered(&result), json_of(&[row_of(order)]));

    // ...and the one the role lacks is denied, with a message that says so.
    let denied = approved(RenderedQuery { role_arn, ..get_order(&table, &order.order_id) });
    let credentials = assume_on(&bot_config, &denied).await.expect("the bot may assume the role");
    let err = executor.run(&denied, credentials).await.expect_err("GetItem is not allowed");
    assert!(matches!(err, AwsFailure::AccessDenied { operation: "GetItem", .. }), "{err:?}");
    assert!(err.user_message().contains("access denied"), "{}", err.user_message());
}

#[tokio::test]
async fn sts_refusing_the_role_is_reported_as_such() {
    let moto = OwnMoto::start().await;
    let bot = "jitgate-untrusted";
    moto.iam(&[("Action", "CreateUser"), ("UserName", bot)]).await;
    let policy = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}]
    })
    .to_string();
    moto.iam(&[("Action", "PutUserPolicy"), ("UserName", bot), ("PolicyName", "assume"), ("PolicyDocument", &policy)])
        .await;
    let key = moto.iam(&[("Action", "CreateAccessKey"), ("UserName", bot)]).await;
    // The role trusts someone else entirely.
    let trust = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::210987654321:root"},
            "Action": "sts:AssumeRole"
        }]
    })
    .to_string();
    let role = moto
        .iam(&[("Action", "CreateRole"), ("RoleName", "jitgate-other"), ("AssumeRolePolicyDocument", &trust)])
        .await;
    moto.switch_auth_on().await;

    let bot_config =
        support::aws_config_for(&moto.endpoint, &xml_field(&key, "AccessKeyId"), &xml_field(&key, "SecretAccessKey"));
    let role_arn = xml_field(&role, "Arn");
    let approved = approved(RenderedQuery { role_arn: role_arn.clone(), ..order_by_id("Orders", "O000001-0001") });
    let err = assume_on(&bot_config, &approved).await.expect_err("the trust policy does not allow the bot");
    assert!(matches!(&err, AwsFailure::AssumeRoleRefused { role_arn: refused, .. } if refused == &role_arn), "{err:?}");
    assert!(err.user_message().contains("refused"), "{}", err.user_message());
}
