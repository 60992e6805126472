//! `jitgate seed-demo` as `make demo` and `make dev` run it: against the local DynamoDB it creates and fills the
//! demo table, a second run changes nothing, and without a local endpoint it refuses before touching anything.

use jitgate_testkit as support;

use std::process::{Command, Output};

use jitgate::aws::demo_table::{CUSTOMER_CREATED_INDEX, STATUS_CREATED_INDEX, demo_orders};

/// `jitgate --config jitgate.example.toml seed-demo ARGS` with the local server's credentials and `envs`; the AWS
/// endpoint variables are only what `envs` sets.
fn seed_demo(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let config = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("jitgate.example.toml");
    let mut command = Command::new(env!("CARGO_BIN_EXE_jitgate"));
    command
        .args(["--config", config.to_str().unwrap(), "seed-demo"])
        .args(args)
        .env_remove("JITGATE_CONFIG")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_ENDPOINT_URL_DYNAMODB")
        .env_remove("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")
        .env("AWS_ACCESS_KEY_ID", "AKIAJITGATETESTS0001")
        .env("AWS_SECRET_ACCESS_KEY", "test-secret")
        .env("AWS_EC2_METADATA_DISABLED", "true");
    for (k, v) in envs {
        command.env(k, v);
    }
    command.output().expect("run jitgate")
}

fn text(out: &Output) -> (String, String) {
    (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

async fn item_count(dynamo: &aws_sdk_dynamodb::Client, table: &str) -> usize {
    let mut count = 0;
    let mut start = None;
    loop {
        let page = dynamo.scan().table_name(table).set_exclusive_start_key(start).send().await.expect("scan");
        count += page.items().len();
        start = page.last_evaluated_key;
        if start.is_none() {
            return count;
        }
    }
}

async fn table_exists(dynamo: &aws_sdk_dynamodb::Client, table: &str) -> bool {
    dynamo.describe_table().table_name(table).send().await.is_ok()
}

#[tokio::test]
async fn creates_and_fills_the_table_then_a_second_run_changes_nothing() {
    let table = support::unique("Orders");
    let endpoint = support::aws_endpoint();
    let envs = [("AWS_ENDPOINT_URL", endpoint.as_str())];
    let args = ["--table", &table, "--customers", "3", "--orders-per-customer", "4"];

    let out = seed_demo(&args, &envs);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains(&format!("table {table} at {endpoint}")) && stdout.contains("created"), "{stdout}");
    assert!(stdout.contains("seeded 12 orders: customers C000001…C000003 × 4 orders each"), "{stdout}");

    let dynamo = aws_sdk_dynamodb::Client::new(&support::aws_config());
    let described = dynamo.describe_table().table_name(&table).send().await.expect("the table exists");
    let indexes: Vec<&str> =
        described.table().unwrap().global_secondary_indexes().iter().filter_map(|i| i.index_name()).collect();
    assert!(indexes.contains(&CUSTOMER_CREATED_INDEX) && indexes.contains(&STATUS_CREATED_INDEX), "{indexes:?}");
    assert_eq!(item_count(&dynamo, &table).await, 12);
    let expected = &demo_orders(3, 4)[5];
    let stored = dynamo
        .get_item()
        .table_name(&table)
        .key("order_id", aws_sdk_dynamodb::types::AttributeValue::S(expected.order_id.clone()))
        .send()
        .await
        .expect("get_item");
    assert_eq!(stored.item.expect("seeded order"), expected.to_item());

    let again = seed_demo(&args, &envs);
    let (stdout, stderr) = text(&again);
    assert!(again.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("already there"), "{stdout}");
    assert_eq!(item_count(&dynamo, &table).await, 12, "the same orders, not new ones");

    // The DynamoDB-specific variable wins over the general one, as it does in the AWS SDK.
    let envs =
        [("AWS_ENDPOINT_URL", "https://dynamodb.us-east-1.amazonaws.com"), ("AWS_ENDPOINT_URL_DYNAMODB", &endpoint)];
    let out = seed_demo(&args, &envs);
    assert!(out.status.success(), "{:?}", text(&out));
}

#[tokio::test]
async fn refuses_without_a_local_endpoint_and_writes_nothing() {
    let table = support::unique("Orders");
    let endpoint = support::aws_endpoint();
    let cases: [(&[(&str, &str)], &str); 4] = [
        (&[], "neither AWS_ENDPOINT_URL_DYNAMODB nor AWS_ENDPOINT_URL is set"),
        (&[("AWS_ENDPOINT_URL", "https://dynamodb.us-east-1.amazonaws.com")], "is AWS"),
        (
            &[("AWS_ENDPOINT_URL", &endpoint), ("AWS_ENDPOINT_URL_DYNAMODB", "https://dynamodb.eu-west-1.api.aws")],
            "is AWS",
        ),
        (&[("AWS_ENDPOINT_URL", &endpoint), ("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true")], "would ignore"),
    ];
    for (envs, why) in cases {
        let out = seed_demo(&["--table", &table], envs);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{envs:?}: {stdout}{stderr}");
        assert!(stderr.contains("seed-demo refuses to write demo data to AWS") && stderr.contains(why), "{stderr}");
        assert!(stderr.contains("--allow-aws") && stderr.contains("AWS_ENDPOINT_URL"), "names the ways out: {stderr}");
        assert!(stdout.is_empty(), "{stdout}");
    }
    let dynamo = aws_sdk_dynamodb::Client::new(&support::aws_config());
    assert!(!table_exists(&dynamo, &table).await, "nothing was created");
}

#[tokio::test]
async fn refuses_a_table_of_another_shape() {
    let table = support::unique("Orders");
    let dynamo = aws_sdk_dynamodb::Client::new(&support::aws_config());
    use aws_sdk_dynamodb::types::{AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType};
    dynamo
        .create_table()
        .table_name(&table)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(KeySchemaElement::builder().attribute_name("id").key_type(KeyType::Hash).build().unwrap())
        .attribute_definitions(
            AttributeDefinition::builder().attribute_name("id").attribute_type(ScalarAttributeType::S).build().unwrap(),
        )
        .send()
        .await
        .expect("create a table of another shape");
    let endpoint = support::aws_endpoint();
    let out = seed_demo(&["--table", &table], &[("AWS_ENDPOINT_URL", &endpoint)]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
    assert!(stderr.contains(&format!("table {table} exists but is not the demo table")), "{stderr}");
    assert!(stderr.contains("--table"), "says how to get out of it: {stderr}");
    assert_eq!(item_count(&dynamo, &table).await, 0, "nothing was written into it");
}
