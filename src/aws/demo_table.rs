//! The demo `Orders` table: its schema and deterministic seed data. Test and demo support only: the integration
//! tests and the local demo stack create and fill it; jitgate itself never writes to DynamoDB through this.
//!
//! Schema: partition key `order_id` (S); attributes `customer_id` (S), `created_at` (S, RFC 3339 UTC), `status`
//! (S), `total` (N), `currency` (S), `email` (S), `shipping_address` (S); GSIs [`CUSTOMER_CREATED_INDEX`]
//! (`customer_id`, `created_at`) and [`STATUS_CREATED_INDEX`] (`status`, `created_at`), both projecting all
//! attributes.
//!
//! The data is a pure function of (customer number, order number), so a test computes what it expects with
//! [`demo_orders`] instead of hard-coding it.
//!
//! `jitgate seed-demo` writes it only where [`local_endpoint`] says the DynamoDB endpoint is not AWS, so demo data
//! never lands in a real account by accident.

use std::collections::HashMap;
use std::time::Duration as StdDuration;

use anyhow::{Context, bail};
use aws_sdk_dynamodb::client::Waiters;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, PutRequest, ScalarAttributeType, WriteRequest,
};
use time::format_description::well_known::Rfc3339;
use time::macros::datetime;

/// GSI on (`customer_id`, `created_at`).
pub const CUSTOMER_CREATED_INDEX: &str = "customer-created-index";
/// GSI on (`status`, `created_at`).
pub const STATUS_CREATED_INDEX: &str = "status-created-index";
/// Order statuses, in the order they cycle through the seed data.
pub const STATUSES: [&str; 6] = ["pending", "paid", "shipped", "delivered", "cancelled", "refunded"];
const CURRENCIES: [&str; 3] = ["EUR", "USD", "GBP"];
/// DynamoDB's `BatchWriteItem` limit.
const BATCH_SIZE: usize = 25;
const MAX_BATCH_ATTEMPTS: u32 = 8;

/// One seeded order, as plain text (`total` is the decimal text stored as `N`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoOrder {
    pub order_id: String,
    pub customer_id: String,
    pub created_at: String,
    pub status: String,
    pub total: String,
    pub currency: String,
    pub email: String,
    pub shipping_address: String,
}

impl DemoOrder {
    /// The order as a DynamoDB item.
    pub fn to_item(&self) -> HashMap<String, AttributeValue> {
        let s = |v: &str| AttributeValue::S(v.to_owned());
        HashMap::from([
            ("order_id".to_owned(), s(&self.order_id)),
            ("customer_id".to_owned(), s(&self.customer_id)),
            ("created_at".to_owned(), s(&self.created_at)),
            ("status".to_owned(), s(&self.status)),
            ("total".to_owned(), AttributeValue::N(self.total.clone())),
            ("currency".to_owned(), s(&self.currency)),
            ("email".to_owned(), s(&self.email)),
            ("shipping_address".to_owned(), s(&self.shipping_address)),
        ])
    }
}

/// The id of customer number `n` (from 1): `C000042`.
pub fn demo_customer_id(n: u32) -> String {
    format!("C{n:06}")
}

/// The orders [`seed_demo_orders`] writes: customers 1..=`n_customers`, each with `orders_per_customer` orders,
/// created one hour apart in a single increasing sequence from 2026-01-01T00:00:00Z.
pub fn demo_orders(n_customers: u32, orders_per_customer: u32) -> Vec<DemoOrder> {
    let start = datetime!(2026-01-01 00:00 UTC);
    let mut orders = Vec::new();
    for c in 1..=n_customers {
        for k in 1..=orders_per_customer {
            let (c64, k64) = (u64::from(c), u64::from(k));
            let sequence = i64::from(c - 1) * i64::from(orders_per_customer) + i64::from(k - 1);
            let created = start + time::Duration::hours(sequence);
            // The last cent digit is never 0, so DynamoDB's number normalisation returns the text unchanged.
            let cents = (c64 * 7919 + k64 * 104_729) % 20_000 * 10 + (c64 + k64) % 9 + 1;
            orders.push(DemoOrder {
                order_id: format!("O{c:05}{k:04}"),
                customer_id: demo_customer_id(c),
                created_at: created.format(&Rfc3339).unwrap_or_default(),
                status: STATUSES[((c64 + k64) % STATUSES.len() as u64) as usize].to_owned(),
                total: format!("{}.{:02}", cents / 100, cents % 100),
                currency: CURRENCIES[(c64 % CURRENCIES.len() as u64) as usize].to_owned(),
                email: format!("customer{c:06}@example.com"),
                shipping_address: format!("{} Example Street, Springfield", 10 + c),
            });
        }
    }
    orders
}

fn key(attribute: &str, kind: KeyType) -> anyhow::Result<KeySchemaElement> {
    Ok(KeySchemaElement::builder().attribute_name(attribute).key_type(kind).build()?)
}

fn string_attribute(name: &str) -> anyhow::Result<AttributeDefinition> {
    Ok(AttributeDefinition::builder().attribute_name(name).attribute_type(ScalarAttributeType::S).build()?)
}

fn gsi(name: &str, hash: &str, range: &str) -> anyhow::Result<GlobalSecondaryIndex> {
    Ok(GlobalSecondaryIndex::builder()
        .index_name(name)
        .key_schema(key(hash, KeyType::Hash)?)
        .key_schema(key(range, KeyType::Range)?)
        .projection(Projection::builder().projection_type(ProjectionType::All).build())
        .build()?)
}

/// Creates the demo orders table (on-demand billing) and waits until it is active.
pub async fn create_demo_orders_table(client: &aws_sdk_dynamodb::Client, table_name: &str) -> anyhow::Result<()> {
    client
        .create_table()
        .table_name(table_name)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key("order_id", KeyType::Hash)?)
        .attribute_definitions(string_attribute("order_id")?)
        .attribute_definitions(string_attribute("customer_id")?)
        .attribute_definitions(string_attribute("created_at")?)
        .attribute_definitions(string_attribute("status")?)
        .global_secondary_indexes(gsi(CUSTOMER_CREATED_INDEX, "customer_id", "created_at")?)
        .global_secondary_indexes(gsi(STATUS_CREATED_INDEX, "status", "created_at")?)
        .send()
        .await
        .with_context(|| format!("creating table {table_name}"))?;
    client
        .wait_until_table_exists()
        .table_name(table_name)
        .wait(StdDuration::from_secs(120))
        .await
        .with_context(|| format!("waiting for table {table_name} to become active"))?;
    Ok(())
}

/// Whether an existing table is laid out like the demo table: partition key `order_id` and both GSIs. The seed
/// data would be rejected by (or, worse, mixed into) a table of another shape.
pub async fn check_demo_orders_layout(client: &aws_sdk_dynamodb::Client, table_name: &str) -> anyhow::Result<bool> {
    let described = match client.describe_table().table_name(table_name).send().await {
        Ok(out) => out,
        Err(err) if err.as_service_error().is_some_and(|e| e.is_resource_not_found_exception()) => return Ok(false),
        Err(err) => return Err(anyhow::Error::new(err).context(format!("describing table {table_name}"))),
    };
    let Some(table) = described.table() else { bail!("DescribeTable answered without the table {table_name}") };
    let hash_key =
        table.key_schema().iter().find(|k| k.key_type() == &KeyType::Hash).map(|k| k.attribute_name().to_owned());
    let indexes: Vec<&str> = table.global_secondary_indexes().iter().filter_map(|i| i.index_name()).collect();
    let missing: Vec<&str> =
        [CUSTOMER_CREATED_INDEX, STATUS_CREATED_INDEX].into_iter().filter(|i| !indexes.contains(i)).collect();
    if hash_key.as_deref() != Some("order_id") || !missing.is_empty() {
        bail!(
            "table {table_name} exists but is not the demo table (partition key {}, missing indexes {missing:?}) — \
             delete it, or seed another table with --table",
            hash_key.as_deref().unwrap_or("none")
        );
    }
    Ok(true)
}

/// Where demo data may be written: the DynamoDB endpoint the AWS SDK will use, as set in the environment, when it
/// is not an AWS endpoint. `dynamodb_endpoint` is `AWS_ENDPOINT_URL_DYNAMODB`, else `AWS_ENDPOINT_URL`;
/// `endpoints_ignored` is `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true`, under which the SDK goes to AWS whatever
/// they say. The error says why the endpoint is not known to be local.
pub fn local_endpoint(dynamodb_endpoint: Option<&str>, endpoints_ignored: bool) -> Result<url::Url, String> {
    let Some(text) = dynamodb_endpoint else {
        return Err(
            "neither AWS_ENDPOINT_URL_DYNAMODB nor AWS_ENDPOINT_URL is set, so the AWS SDK would use AWS".into()
        );
    };
    if endpoints_ignored {
        return Err(format!(
            "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS is set, so the AWS SDK would ignore {text} and use AWS"
        ));
    }
    let url = url::Url::parse(text).map_err(|e| format!("the endpoint `{text}` is not a URL ({e})"))?;
    let host = url.host_str().unwrap_or_default().trim_end_matches('.').to_ascii_lowercase();
    if host.is_empty() || !matches!(url.scheme(), "http" | "https") {
        return Err(format!("the endpoint `{text}` is not an http(s) URL with a host"));
    }
    // AWS service endpoints, including FIPS, dual-stack and China partition names.
    let aws = ["amazonaws.com", "amazonaws.com.cn", "api.aws", "amazonwebservices.com.cn"];
    if aws.iter().any(|suffix| host == *suffix || host.ends_with(&format!(".{suffix}"))) {
        return Err(format!("the endpoint {text} is AWS"));
    }
    Ok(url)
}

/// Writes [`demo_orders`]`(n_customers, orders_per_customer)` into `table_name` and returns them.
pub async fn seed_demo_orders(
    client: &aws_sdk_dynamodb::Client,
    table_name: &str,
    n_customers: u32,
    orders_per_customer: u32,
) -> anyhow::Result<Vec<DemoOrder>> {
    let orders = demo_orders(n_customers, orders_per_customer);
    for chunk in orders.chunks(BATCH_SIZE) {
        let mut requests = chunk
            .iter()
            .map(|order| {
                let put = PutRequest::builder().set_item(Some(order.to_item())).build()?;
                Ok(WriteRequest::builder().put_request(put).build())
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        // BatchWriteItem may leave items unprocessed under load; retry those with a short backoff.
        for attempt in 0..MAX_BATCH_ATTEMPTS {
            let output = client
                .batch_write_item()
                .request_items(table_name, requests)
                .send()
                .await
                .with_context(|| format!("seeding table {table_name}"))?;
            requests = output.unprocessed_items.and_then(|mut left| left.remove(table_name)).unwrap_or_default();
            if requests.is_empty() {
                break;
            }
            tokio::time::sleep(StdDuration::from_millis(50 << attempt)).await;
        }
        if !requests.is_empty() {
            bail!("seeding table {table_name}: {} items still unprocessed after retries", requests.len());
        }
    }
    Ok(orders)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_endpoint_outside_aws_counts_as_local() {
        for ok in ["http://127.0.0.1:8000", "http://localhost:4566/", "http://dynamodb-local:8000", "http://[::1]:9"] {
            assert!(local_endpoint(Some(ok), false).is_ok(), "{ok}");
        }
        let refused = [
            (None, false, "neither AWS_ENDPOINT_URL_DYNAMODB nor AWS_ENDPOINT_URL is set"),
            (Some("http://127.0.0.1:8000"), true, "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS is set"),
            (Some("https://dynamodb.us-east-1.amazonaws.com"), false, "is AWS"),
            (Some("https://DynamoDB-FIPS.us-gov-west-1.AmazonAWS.com."), false, "is AWS"),
            (Some("https://dynamodb.us-east-1.api.aws"), false, "is AWS"),
            (Some("https://dynamodb.cn-north-1.amazonaws.com.cn"), false, "is AWS"),
            (Some("localhost:8000"), false, "not an http(s) URL"),
            (Some("127.0.0.1:8000"), false, "is not a URL"),
            (Some("not a url"), false, "is not a URL"),
        ];
        for (endpoint, ignored, expected) in refused {
            let err = local_endpoint(endpoint, ignored).unwrap_err();
            assert!(err.contains(expected), "{endpoint:?}: {err}");
        }
    }

    #[test]
    fn demo_data_is_deterministic_ordered_and_survives_number_normalisation() {
        let orders = demo_orders(3, 4);
        assert_eq!(orders, demo_orders(3, 4));
        assert_eq!(orders.len(), 12);
        assert!(orders.windows(2).all(|w| w[0].created_at < w[1].created_at), "creation times increase");
        let ids: std::collections::BTreeSet<&str> = orders.iter().map(|o| o.order_id.as_str()).collect();
        assert_eq!(ids.len(), 12, "order ids are unique");
        assert_eq!(orders[4].customer_id, "C000002");
        assert_eq!(orders[0].created_at, "2026-01-01T00:00:00Z");
        for order in &orders {
            assert!(!order.total.ends_with('0') && !order.total.starts_with("00"), "{}", order.total);
            assert!(STATUSES.contains(&order.status.as_str()));
        }
    }
}
