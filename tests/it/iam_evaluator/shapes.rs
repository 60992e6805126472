//! The runbooks whose credentials are evaluated: every shipped runbook, and one generated runbook per shape a
//! runbook can take (query on the table, query on an index, get_item with and without a sort key, scan on the
//! table and on an index), each with and without a projection. All read the `Orders` table through the template's
//! query role, so the role's own grant is the one deployed.

use std::collections::BTreeMap;
use std::path::Path;

use jitgate::runbook::{RenderedQuery, Runbook, RunbookDefaults, RunbookSet};

pub const REGION: &str = "us-east-1";

/// Example arguments for each shipped runbook. A new runbook must be added here, or the test fails naming it.
fn shipped_args(id: &str) -> &'static [(&'static str, &'static str)] {
    match id {
        "order-by-id" => &[("order_id", "O0001234")],
        "orders-by-customer" => &[("customer_id", "C000042"), ("from", "2026-11-01"), ("until", "2026-11-28")],
        "orders-by-status" => &[("status", "paid"), ("since", "2026-11-01T00:00:00Z"), ("min_total", "100")],
        "cancel-stuck-order" => &[("order_id", "O000010006"), ("refund_note", "INC-812 refund in full")],
        other => {
            panic!("runbooks/{other}.yaml has no example arguments in tests/it/iam_evaluator/shapes.rs — add some")
        }
    }
}

/// One request to evaluate.
pub struct Request {
    pub name: String,
    pub query: RenderedQuery,
    /// The key attributes of the table and of the index read: DynamoDB returns them with every item, so a request
    /// reads them whatever it names.
    pub keys: Vec<String>,
}

fn request(name: String, runbook: &Runbook, pairs: &[(&str, &str)]) -> Request {
    let query = runbook.render(&args(pairs), REGION).unwrap_or_else(|e| panic!("{name} renders: {e:?}"));
    let mut keys = Vec::new();
    for schema in std::iter::once(runbook.table()).chain(runbook.index()) {
        keys.push(schema.partition_key().to_owned());
        keys.extend(schema.sort_key().map(str::to_owned));
    }
    Request { name, query, keys }
}

fn args(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

/// One rendered request per shipped runbook, by id.
pub fn shipped() -> Vec<Request> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("runbooks");
    let set = RunbookSet::load_dir(&dir, &RunbookDefaults::default())
        .unwrap_or_else(|e| panic!("the shipped runbooks load: {e:?}"));
    set.iter()
        .map(|runbook| {
            let id = runbook.id().to_string();
            let pairs = shipped_args(&id);
            request(id, runbook, pairs)
        })
        .collect()
}

/// What varies between the generated shapes.
struct Shape {
    name: &'static str,
    /// `table:` and `index:` blocks.
    schema: &'static str,
    operation: &'static str,
    key: &'static str,
    filter: &'static str,
    args: &'static [(&'static str, &'static str)],
}

const TABLE_WITH_SORT_KEY: &str = "table:\n  name: Orders\n  partition_key: order_id\n  sort_key: line_no\n";
const TABLE: &str = "table:\n  name: Orders\n  partition_key: order_id\n";
const INDEX: &str = "table:\n  name: Orders\n  partition_key: order_id\nindex:\n  name: customer-created-index\n  \
                     partition_key: customer_id\n  sort_key: created_at\n";

const SHAPES: &[Shape] = &[
    Shape {
        name: "query-table",
        schema: TABLE_WITH_SORT_KEY,
        operation: "query",
        key: "key:\n  partition: { param: order_id }\n  sort: { op: \">=\", param: line_no }\n",
        filter: "filter:\n  - { attribute: status, op: \"=\", param: status }\n",
        args: &[("order_id", "O0000001"), ("line_no", "2"), ("status", "paid")],
    },
    Shape {
        name: "query-index",
        schema: INDEX,
        operation: "query",
        key: "key:\n  partition: { param: customer_id }\n  sort: { op: begins_with, param: month }\n",
        filter: "filter:\n  - { attribute: status, op: \"=\", param: status }\n",
        args: &[("customer_id", "C000042"), ("month", "2026-11"), ("status", "paid")],
    },
    Shape {
        name: "get-item",
        schema: TABLE,
        operation: "get_item",
        key: "key:\n  partition: { param: order_id }\n",
        filter: "",
        args: &[("order_id", "O0000001")],
    },
    Shape {
        name: "get-item-sort-key",
        schema: TABLE_WITH_SORT_KEY,
        operation: "get_item",
        key: "key:\n  partition: { param: order_id }\n  sort: { op: \"=\", param: line_no }\n",
        filter: "",
        args: &[("order_id", "O0000001"), ("line_no", "2")],
    },
    Shape {
        name: "scan-table",
        schema: TABLE,
        operation: "scan\nallow_scan: true",
        key: "",
        filter: "filter:\n  - { attribute: status, op: \"=\", param: status }\n",
        args: &[("status", "paid")],
    },
    Shape {
        name: "scan-index",
        schema: INDEX,
        operation: "scan\nallow_scan: true",
        key: "",
        filter: "filter:\n  - { attribute: status, op: \"=\", param: status }\n",
        args: &[("status", "paid")],
    },
];

/// Every parameter a shape may use; only those in its key and filter are declared.
const PARAMETERS: &[(&str, &str)] = &[
    ("order_id", "  - name: order_id\n    type: string\n    pattern: \"O[0-9]{7}\"\n    description: Order id\n"),
    ("line_no", "  - name: line_no\n    type: integer\n    min: 1\n    description: Line number\n"),
    ("customer_id", "  - name: customer_id\n    type: string\n    pattern: \"C[0-9]{6}\"\n    description: Customer\n"),
    ("month", "  - name: month\n    type: string\n    pattern: \"[0-9]{4}-[0-9]{2}\"\n    description: Month\n"),
    ("status", "  - name: status\n    type: string\n    enum: [pending, paid]\n    description: Order status\n"),
];

/// The runbook YAML of a generated shape.
fn yaml(shape: &Shape, id: &str, projection: bool) -> String {
    let parameters: String = PARAMETERS
        .iter()
        .filter(|(name, _)| shape.args.iter().any(|(arg, _)| arg == name))
        .map(|(_, text)| *text)
        .collect();
    let projection = if projection { "projection: [order_id, total, email]\nmask: [email]\n" } else { "" };
    format!(
        "id: {id}\ndescription: generated shape {id}\n{schema}operation: {operation}\n\
         role_arn: arn:aws:iam::123456789012:role/jitgate-orders-read\nparameters:\n{parameters}{key}{filter}\
         {projection}max_items: 10\napproval:\n  approvers:\n    slack_users: [U012AB3CD]\n",
        schema = shape.schema,
        operation = shape.operation,
        key = shape.key,
        filter = shape.filter,
    )
}

/// Every generated shape, with and without a projection, rendered, by name (`query-index`,
/// `query-index-no-projection`, …).
pub fn generated() -> Vec<Request> {
    let mut out = Vec::new();
    for shape in SHAPES {
        for projection in [true, false] {
            let id = if projection { shape.name.to_owned() } else { format!("{}-no-projection", shape.name) };
            let text = yaml(shape, &id, projection);
            let file = format!("{id}.yaml");
            let set = RunbookSet::from_sources([(Path::new(&file), text.as_str())], &RunbookDefaults::default())
                .unwrap_or_else(|e| panic!("generated runbook {id} loads: {e:?}\n{text}"));
            let runbook = set.iter().next().expect("one runbook");
            out.push(request(id, runbook, shape.args));
        }
    }
    out
}
