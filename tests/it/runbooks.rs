//! Runbooks end to end, as an author and a requester meet them: the shipped runbooks load, every kind of authoring
//! mistake is reported with its file, field and fix, arguments render into exactly the approved request (values
//! only ever bound, never spliced), fingerprints are stable, and each request's session policy is as narrow as AWS
//! allows and passes the `parliament` IAM linter.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use jitgate::runbook::{
    BoundValue, KeyValue, MAX_SESSION_POLICY_CHARS, Operation, ParamError, PolicyError, RenderedQuery, Runbook,
    RunbookDefaults, RunbookSet, session_policy,
};

const REGION: &str = "us-east-1";

fn shipped_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("runbooks")
}

fn shipped() -> RunbookSet {
    match RunbookSet::load_dir(&shipped_dir(), &RunbookDefaults::default()) {
        Ok(set) => set,
        Err(errors) => panic!("shipped runbooks do not load:\n{}", lines(&errors)),
    }
}

fn runbook<'a>(set: &'a RunbookSet, id: &str) -> &'a Runbook {
    set.iter().find(|r| r.id().as_str() == id).unwrap_or_else(|| panic!("no runbook {id}"))
}

fn args(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

fn lines<T: std::fmt::Display>(items: &[T]) -> String {
    items.iter().map(|e| format!("{e}\n")).collect()
}

fn render_ok(runbook: &Runbook, pairs: &[(&str, &str)]) -> RenderedQuery {
    runbook.render(&args(pairs), REGION).unwrap_or_else(|e| panic!("render failed:\n{}", lines(&e)))
}

fn render_err(runbook: &Runbook, pairs: &[(&str, &str)]) -> Vec<String> {
    match runbook.render(&args(pairs), REGION) {
        Ok(q) => panic!("expected errors, rendered {}", q.summary()),
        Err(errors) => errors.iter().map(ToString::to_string).collect(),
    }
}

/// Loads the given files from a fresh directory and returns the error lines (panics if loading succeeds).
fn load_errors(files: &[(&str, &str)]) -> Vec<String> {
    let dir = tempfile::tempdir().expect("temp dir");
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).expect("write runbook");
    }
    match RunbookSet::load_dir(dir.path(), &RunbookDefaults::default()) {
        Ok(set) => panic!("expected errors, loaded {} runbooks", set.len()),
        Err(errors) => errors.iter().map(ToString::to_string).collect(),
    }
}

fn load_one(name: &str, text: &str) -> Runbook {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join(name), text).expect("write runbook");
    match RunbookSet::load_dir(dir.path(), &RunbookDefaults::default()) {
        Ok(set) => set.iter().next().cloned().expect("one runbook"),
        Err(errors) => panic!("{name} does not load:\n{}", lines(&errors)),
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Loading and validation
// ---------------------------------------------------------------------------------------------------------------

/// A correct runbook that every broken case below starts from, changing one thing.
const QUERY_BASE: &str = r#"id: orders-by-status
description: Orders in one status since a timestamp
table:
  name: Orders
  partition_key: order_id
index:
  name: status-created-index
  partition_key: status
  sort_key: created_at
operation: query
role_arn: arn:aws:iam::123456789012:role/jitgate-orders-read
parameters:
  - name: status
    type: string
    enum: [pending, paid, shipped]
    description: Order status
  - name: since
    type: timestamp
    description: Earliest creation time
  - name: min_total
    type: integer
    min: 0
    max: 1000
    default: 0
    description: Minimum total
key:
  partition: { param: status }
  sort: { op: ">=", param: since }
filter:
  - { attribute: total, op: ">=", param: min_total }
projection: [order_id, status, created_at, total, email]
mask: [email]
max_items: 100
approval:
  approvers:
    pagerduty_schedules: [PORDERS1]
  ttl: 30m
"#;

/// A correct `get_item` runbook on a table with a sort key.
const GET_BASE: &str = r#"id: order-line
description: One order line
table:
  name: OrderLines
  partition_key: order_id
  sort_key: line_no
operation: get_item
role_arn: arn:aws:iam::123456789012:role/jitgate-orders-read
parameters:
  - name: order_id
    type: string
    pattern: "O[0-9]{7}"
    description: Order id
  - name: line_no
    type: integer
    min: 1
    description: Line number
key:
  partition: { param: order_id }
  sort: { op: "=", param: line_no }
max_items: 1
approval:
  approvers:
    slack_users: [U012AB3CD]
"#;

/// `base` with each `(from, to)` replacement applied; panics when `from` is not there, so a case can never
/// silently test the unbroken base.
fn edit(base: &str, edits: &[(&str, &str)]) -> String {
    let mut text = base.to_owned();
    for (from, to) in edits {
        assert!(text.contains(from), "{from:?} not found in the base runbook");
        text = text.replacen(from, to, 1);
    }
    text
}

struct Broken {
    mistake: &'static str,
    base: &'static str,
    file: &'static str,
    edits: &'static [(&'static str, &'static str)],
    expected: &'static [&'static str],
}

const Q: &str = QUERY_BASE;
const G: &str = GET_BASE;
const QF: &str = "orders-by-status.yaml";
const GF: &str = "order-line.yaml";
/// A reviewed write, as shipped in runbooks/cancel-stuck-order.yaml.
const W: &str = r#"id: cancel-stuck-order
description: Cancel one order stuck in paid
table:
  name: Orders
  partition_key: order_id
operation: update_item
role_arn: arn:aws:iam::123456789012:role/jitgate-orders-write
parameters:
  - name: order_id
    type: string
    pattern: "O[0-9]{6,12}"
    description: Order id
  - name: refund_note
    type: string
    pattern: "[A-Za-z0-9 .,:#/_-]{3,200}"
    description: Why it is cancelled
key:
  partition: { param: order_id }
update:
  set:
    - { attribute: status, value: cancelled }
    - { attribute: refund_note, param: refund_note }
  condition:
    - { attribute: status, op: "=", value: paid }
mask: [email]
unmaskable: [email]
max_items: 1
approval:
  approvers:
    pagerduty_schedules: [PORDERS1]
  ttl: 30m
"#;
const WF: &str = "cancel-stuck-order.yaml";

const BROKEN: &[Broken] = &[
    Broken {
        mistake: "a write without its update section",
        base: W,
        file: WF,
        edits: &[(
            "update:\n  set:\n    - { attribute: status, value: cancelled }\n    - { attribute: refund_note, param: refund_note }\n  condition:\n    - { attribute: status, op: \"=\", value: paid }\n",
            "",
        )],
        expected: &[
            "cancel-stuck-order.yaml: parameters[1]: the parameter `refund_note` is declared but never used — use it in `key` or `filter`, or remove it (an unused parameter would be asked for and ignored)",
            "cancel-stuck-order.yaml: update: `update_item` needs an `update` section saying what is written and under which condition — add `update: {set: [{attribute: <name>, param: <parameter>}], condition: [{attribute: <name>, op: \"=\", value: <expected>}]}` (see docs/runbooks.md)",
        ],
    },
    Broken {
        mistake: "a write without a precondition, writing its key, and an operand both ways",
        base: W,
        file: WF,
        edits: &[
            ("  condition:\n    - { attribute: status, op: \"=\", value: paid }\n", ""),
            (
                "    - { attribute: status, value: cancelled }",
                "    - { attribute: order_id, value: x }\n    - { attribute: status, value: cancelled, param: refund_note }",
            ),
        ],
        expected: &[
            "cancel-stuck-order.yaml: update.set[0].attribute: `order_id` is a key attribute of the table; DynamoDB cannot change an item's key — write other attributes only; the key names the item in `key`",
            "cancel-stuck-order.yaml: update.set[1]: both `param` and `value` are given — keep one: a parameter or a fixed value",
            "cancel-stuck-order.yaml: update.condition: a write needs a precondition, so it happens only if the item is still in the state the approvers were told about — add e.g. `condition: [{attribute: status, op: \"=\", value: paid}]`",
        ],
    },
    Broken {
        mistake: "a write over several items, with between in its precondition",
        base: W,
        file: WF,
        edits: &[("max_items: 1", "max_items: 5"), ("op: \"=\", value: paid", "op: between, value: paid")],
        expected: &[
            "cancel-stuck-order.yaml: max_items: max_items is 5, but `update_item` writes exactly one item — use `max_items: 1`",
            "cancel-stuck-order.yaml: update.condition[0].op: `between` is not available in a precondition — use one of =, <>, <, <=, >, >=, begins_with (two conditions give a range)",
        ],
    },
    Broken {
        mistake: "an update on a read, and an unmaskable attribute that is not masked",
        base: G,
        file: GF,
        edits: &[("max_items: 1", "unmaskable: [total]\nupdate:\n  remove: [total]\nmax_items: 1")],
        expected: &[
            "order-line.yaml: unmaskable[0]: `total` is not masked, so there is nothing to unmask — add it to `mask`, or remove it from `unmaskable`",
            "order-line.yaml: update: `update` only applies to `operation: update_item`, this runbook uses `get_item` — remove `update`, or use `operation: update_item` for a reviewed write",
        ],
    },
    Broken {
        mistake: "break-glass on a write that needs two approvers",
        base: W,
        file: WF,
        edits: &[("max_items: 1", "max_items: 1\nbreak_glass:\n  allowed: true")],
        expected: &[
            "cancel-stuck-order.yaml: break_glass.allowed: break-glass is allowed but every request needs 2 approvals — break-glass replaces one approver only: drop `break_glass` or set `approval.required_approvals: 1`",
        ],
    },
    Broken {
        mistake: "YAML syntax",
        base: Q,
        file: QF,
        edits: &[("projection: [order_id, status, created_at, total, email]", "projection: [order_id, status")],
        expected: &[
            "orders-by-status.yaml: line 32, column 5: illegal placement of ':' indicator — fix the YAML syntax at that position",
        ],
    },
    Broken {
        mistake: "unknown field",
        base: Q,
        file: QF,
        edits: &[("    description: Order status", "    descripton: Order status")],
        expected: &[
            "orders-by-status.yaml: parameters[0] (line 16, column 5): unknown field `descripton`, expected one of `name`, `type`, `description`, `pattern`, `enum`, `min`, `max`, `default` — remove the field or correct its spelling to one of the expected fields",
        ],
    },
    Broken {
        mistake: "missing required field",
        base: Q,
        file: QF,
        edits: &[("max_items: 100\n", "")],
        expected: &[
            "orders-by-status.yaml: (top level): missing field `max_items` — add the field; every runbook needs it (see docs/runbooks.md)",
        ],
    },
    Broken {
        mistake: "repeated key",
        base: Q,
        file: QF,
        edits: &[("max_items: 100\n", "max_items: 100\nmax_items: 200\n")],
        expected: &[
            "orders-by-status.yaml: line 34, column 1: duplicate entry with key `max_items` — keep only one of the repeated entries",
        ],
    },
    Broken {
        mistake: "unknown operation",
        base: Q,
        file: QF,
        edits: &[("operation: query", "operation: select")],
        expected: &[
            "orders-by-status.yaml: operation (line 10, column 12): unknown variant `select`, expected one of `query`, `get_item`, `scan`, `update_item` — use one of the expected values",
        ],
    },
    Broken {
        mistake: "wrong value type",
        base: Q,
        file: QF,
        edits: &[("max_items: 100", "max_items: lots")],
        expected: &[
            "orders-by-status.yaml: max_items (line 33, column 12): invalid type: string \"lots\", expected a whole number — give the field a value of the expected type",
        ],
    },
    Broken {
        mistake: "bad id",
        base: Q,
        file: "Orders_By_Status.yaml",
        edits: &[("id: orders-by-status", "id: Orders_By_Status")],
        expected: &[
            "Orders_By_Status.yaml: id: `Orders_By_Status` is not a valid runbook id — use 1–64 lowercase letters, digits and dashes, starting with a letter or digit (e.g. orders-by-customer)",
        ],
    },
    Broken {
        mistake: "id not matching the file name",
        base: Q,
        file: "status.yaml",
        edits: &[],
        expected: &[
            "status.yaml: id: the id `orders-by-status` does not match the file name `status.yaml` — rename the file to `orders-by-status.yaml` or set `id: status`",
        ],
    },
    Broken {
        mistake: "empty description",
        base: Q,
        file: QF,
        edits: &[("description: Orders in one status since a timestamp", "description: \"  \"")],
        expected: &[
            "orders-by-status.yaml: description: the description is empty — say in one line what the runbook shows",
        ],
    },
    Broken {
        mistake: "bad table name",
        base: Q,
        file: QF,
        edits: &[("  name: Orders\n", "  name: Or/ders\n")],
        expected: &[
            "orders-by-status.yaml: table.name: `Or/ders` is not a valid DynamoDB table name — use 3–255 letters, digits, `_`, `-` or `.`",
        ],
    },
    Broken {
        mistake: "malformed role ARN",
        base: Q,
        file: QF,
        edits: &[("arn:aws:iam::123456789012:role/jitgate-orders-read", "arn:aws:iam::1234:role/jitgate-orders-read")],
        expected: &[
            "orders-by-status.yaml: role_arn: `arn:aws:iam::1234:role/jitgate-orders-read` is not an IAM role ARN — write it as arn:aws:iam::<12-digit account>:role/<role name>",
        ],
    },
    Broken {
        mistake: "string parameter without pattern or enum",
        base: Q,
        file: QF,
        edits: &[("    enum: [pending, paid, shipped]\n", "")],
        expected: &[
            "orders-by-status.yaml: parameters[0]: the string parameter `status` has neither `pattern` nor `enum` — add a `pattern` (a regex the whole value must match, e.g. \"C[0-9]{6}\") or an `enum` list: free text never reaches a query",
        ],
    },
    Broken {
        mistake: "bad regex",
        base: G,
        file: GF,
        edits: &[("pattern: \"O[0-9]{7}\"", "pattern: \"O[0-9{7}\"")],
        expected: &[
            "order-line.yaml: parameters[0].pattern: `O[0-9{7}` is not a valid regular expression (error: unclosed character class) — fix the regex (Rust regex syntax; it must match the whole value, no ^ or $ needed)",
        ],
    },
    Broken {
        mistake: "empty enum",
        base: Q,
        file: QF,
        edits: &[("enum: [pending, paid, shipped]", "enum: []")],
        expected: &[
            "orders-by-status.yaml: parameters[0].enum: the enum of `status` is empty, so no value could ever be accepted — list the allowed values",
        ],
    },
    Broken {
        mistake: "min greater than max",
        base: Q,
        file: QF,
        edits: &[("    min: 0\n    max: 1000\n", "    min: 1000\n    max: 10\n"), ("default: 0", "default: 10")],
        expected: &[
            "orders-by-status.yaml: parameters[2].min: min (1000) is greater than max (10) — swap them, or correct the one that is wrong",
        ],
    },
    Broken {
        mistake: "default that fails its own type",
        base: Q,
        file: QF,
        edits: &[("default: 0", "default: -5")],
        expected: &[
            "orders-by-status.yaml: parameters[2].default: the default \"-5\" is not a valid value for `min_total` — give a default that fits the parameter: integer from 0 to 1000",
        ],
    },
    Broken {
        mistake: "constraint for another type",
        base: Q,
        file: QF,
        edits: &[("    type: timestamp\n", "    type: timestamp\n    min: 3\n")],
        expected: &[
            "orders-by-status.yaml: parameters[1].min: `min` only applies to integer parameters, `since` is a timestamp — remove `min` or change the type to integer",
        ],
    },
    Broken {
        mistake: "parameter referenced but not declared",
        base: Q,
        file: QF,
        edits: &[("sort: { op: \">=\", param: since }", "sort: { op: \">=\", param: sinse }")],
        expected: &[
            "orders-by-status.yaml: key.sort.param: `sinse` is not a declared parameter — declare it under `parameters`, or did you mean `since`?",
            "orders-by-status.yaml: parameters[1]: the parameter `since` is declared but never used — use it in `key` or `filter`, or remove it (an unused parameter would be asked for and ignored)",
        ],
    },
    Broken {
        mistake: "parameter declared but unused",
        base: Q,
        file: QF,
        edits: &[("filter:\n  - { attribute: total, op: \">=\", param: min_total }\n", "")],
        expected: &[
            "orders-by-status.yaml: parameters[2]: the parameter `min_total` is declared but never used — use it in `key` or `filter`, or remove it (an unused parameter would be asked for and ignored)",
        ],
    },
    Broken {
        mistake: "between with one parameter",
        base: Q,
        file: QF,
        edits: &[("sort: { op: \">=\", param: since }", "sort: { op: between, params: [since] }")],
        expected: &[
            "orders-by-status.yaml: key.sort: `between` needs two parameters (lower and upper bound), 1 given — write `params: [<lower>, <upper>]`",
        ],
    },
    Broken {
        mistake: "one-value operator given two parameters",
        base: Q,
        file: QF,
        edits: &[(
            "{ attribute: total, op: \">=\", param: min_total }",
            "{ attribute: total, op: \">=\", params: [min_total, min_total] }",
        )],
        expected: &[
            "orders-by-status.yaml: filter[0]: `>=` compares with one parameter — write `param: <parameter>` (and no `params`)",
        ],
    },
    Broken {
        mistake: "not-equal in a key condition",
        base: Q,
        file: QF,
        edits: &[("sort: { op: \">=\", param: since }", "sort: { op: \"<>\", param: since }")],
        expected: &[
            "orders-by-status.yaml: key.sort.op: `<>` cannot be used in a key condition — use =, <, <=, >, >=, between or begins_with on the sort key; move `<>` to `filter`",
        ],
    },
    Broken {
        mistake: "key attribute in a query filter",
        base: Q,
        file: QF,
        edits: &[("attribute: total,", "attribute: created_at,")],
        expected: &[
            "orders-by-status.yaml: filter[0].attribute: `created_at` is a key attribute of `status-created-index`; DynamoDB refuses key attributes in a query filter — put the condition in `key` instead",
        ],
    },
    Broken {
        mistake: "begins_with on an integer",
        base: Q,
        file: QF,
        edits: &[("{ attribute: total, op: \">=\",", "{ attribute: total, op: begins_with,")],
        expected: &[
            "orders-by-status.yaml: filter[0].param: `begins_with` works on strings, but `min_total` is an integer — use a string, date or timestamp parameter, or a comparison such as >=",
        ],
    },
    Broken {
        mistake: "scan without allow_scan",
        base: Q,
        file: QF,
        edits: &[
            ("operation: query", "operation: scan"),
            ("key:\n  partition: { param: status }\n  sort: { op: \">=\", param: since }\n", ""),
        ],
        expected: &[
            "orders-by-status.yaml: operation: `scan` reads every item of the table or index — use `operation: query` with a key, or add `allow_scan: true` if a full scan is really intended",
            "orders-by-status.yaml: parameters[0]: the parameter `status` is declared but never used — use it in `key` or `filter`, or remove it (an unused parameter would be asked for and ignored)",
            "orders-by-status.yaml: parameters[1]: the parameter `since` is declared but never used — use it in `key` or `filter`, or remove it (an unused parameter would be asked for and ignored)",
        ],
    },
    Broken {
        mistake: "query without a key",
        base: Q,
        file: QF,
        edits: &[("key:\n  partition: { param: status }\n  sort: { op: \">=\", param: since }\n", "")],
        expected: &[
            "orders-by-status.yaml: key: `query` needs a key — add `key: {partition: {param: <parameter>}}` naming the parameter that holds the partition key",
            "orders-by-status.yaml: parameters[0]: the parameter `status` is declared but never used — use it in `key` or `filter`, or remove it (an unused parameter would be asked for and ignored)",
            "orders-by-status.yaml: parameters[1]: the parameter `since` is declared but never used — use it in `key` or `filter`, or remove it (an unused parameter would be asked for and ignored)",
        ],
    },
    Broken {
        mistake: "get_item with a range operator on the sort key",
        base: G,
        file: GF,
        edits: &[("sort: { op: \"=\", param: line_no }", "sort: { op: \">=\", param: line_no }")],
        expected: &[
            "order-line.yaml: key.sort.op: `get_item` reads exactly one item, so the sort key needs `=`, not `>=` — use `op: \"=\"`, or `operation: query` to read a range",
        ],
    },
    Broken {
        mistake: "get_item without the table's sort key",
        base: G,
        file: GF,
        edits: &[("  sort: { op: \"=\", param: line_no }\n", "")],
        expected: &[
            "order-line.yaml: key.sort: `get_item` needs the full primary key, and the table's sort key `line_no` has no value — add `key.sort: {op: \"=\", param: <parameter>}`, or use `operation: query`",
            "order-line.yaml: parameters[1]: the parameter `line_no` is declared but never used — use it in `key` or `filter`, or remove it (an unused parameter would be asked for and ignored)",
        ],
    },
    Broken {
        mistake: "get_item on an index",
        base: G,
        file: GF,
        edits: &[(
            "operation: get_item",
            "index:\n  name: line-index\n  partition_key: order_id\n  sort_key: line_no\noperation: get_item",
        )],
        expected: &[
            "order-line.yaml: index: `get_item` reads one item from the table itself; DynamoDB has no GetItem on an index — remove `index`, or use `operation: query` to read from the index",
        ],
    },
    Broken {
        mistake: "mask attribute not in the projection",
        base: Q,
        file: QF,
        edits: &[("mask: [email]", "mask: [email, shipping_address]")],
        expected: &[
            "orders-by-status.yaml: mask[1]: `shipping_address` is masked but not in `projection`, so the mask would never apply — add it to `projection` (it is returned masked) or remove it from `mask`",
        ],
    },
    Broken {
        mistake: "empty projection",
        base: Q,
        file: QF,
        edits: &[
            ("projection: [order_id, status, created_at, total, email]", "projection: []"),
            ("mask: [email]\n", ""),
        ],
        expected: &[
            "orders-by-status.yaml: projection: the projection is an empty list — list the attributes to return, or remove `projection` to return whole items",
        ],
    },
    Broken {
        mistake: "max_items zero",
        base: Q,
        file: QF,
        edits: &[("max_items: 100", "max_items: 0")],
        expected: &["orders-by-status.yaml: max_items: max_items is 0 — use a cap from 1 to 10000"],
    },
    Broken {
        mistake: "max_items above the limit",
        base: Q,
        file: QF,
        edits: &[("max_items: 100", "max_items: 10001")],
        expected: &["orders-by-status.yaml: max_items: max_items is 10001 — use a cap from 1 to 10000"],
    },
    Broken {
        mistake: "no approvers",
        base: Q,
        file: QF,
        edits: &[("    pagerduty_schedules: [PORDERS1]\n", "")],
        expected: &[
            "orders-by-status.yaml: approval.approvers: no approvers are named, so no request could ever be approved — add a PagerDuty schedule (`pagerduty_schedules: [PXXXXXX]`), an escalation policy or `slack_users`",
        ],
    },
    Broken {
        mistake: "required_approvals zero",
        base: Q,
        file: QF,
        edits: &[("  ttl: 30m", "  required_approvals: 0\n  ttl: 30m")],
        expected: &[
            "orders-by-status.yaml: approval.required_approvals: required_approvals is 0 — use 1 to 5 distinct approvers",
        ],
    },
    Broken {
        mistake: "more approvals than named Slack approvers",
        base: G,
        file: GF,
        edits: &[(
            "    slack_users: [U012AB3CD]\n",
            "    slack_users: [U012AB3CD, U045EF6GH]\n  required_approvals: 3\n",
        )],
        expected: &[
            "order-line.yaml: approval.required_approvals: 3 approvals are required but only 2 Slack users can approve — lower required_approvals or name more approvers",
        ],
    },
    Broken {
        mistake: "Slack handle instead of a user id",
        base: G,
        file: GF,
        edits: &[("slack_users: [U012AB3CD]", "slack_users: [\"@alice\"]")],
        expected: &[
            "order-line.yaml: approval.approvers.slack_users[0]: `@alice` is not a Slack user id — use the member id (Slack profile → ⋮ → Copy member ID), e.g. U012AB3CD, not a name or @handle",
        ],
    },
    Broken {
        mistake: "bad TTL",
        base: Q,
        file: QF,
        edits: &[("ttl: 30m", "ttl: half an hour")],
        expected: &[
            "orders-by-status.yaml: approval.ttl: `half an hour` is not a duration — write a duration such as 15m, 30m or 1h",
        ],
    },
    Broken {
        mistake: "TTL out of range",
        base: Q,
        file: QF,
        edits: &[("ttl: 30m", "ttl: 3d")],
        expected: &[
            "orders-by-status.yaml: approval.ttl: the approval window `3d` is outside 1m..24h — use a duration from 1m to 24h, e.g. 30m",
        ],
    },
];

#[test]
fn every_kind_of_authoring_mistake_is_reported_with_file_field_and_fix() {
    let mut failures = Vec::new();
    for case in BROKEN {
        let text = edit(case.base, case.edits);
        let got = load_errors(&[(case.file, &text)]);
        if got != case.expected {
            failures.push(format!("{}:\n  expected:\n{}  got:\n{}", case.mistake, lines(case.expected), lines(&got)));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_unbroken_bases_load_so_each_case_tests_only_its_own_mistake() {
    load_one(QF, QUERY_BASE);
    load_one(GF, GET_BASE);
    let write = load_one(WF, W);
    assert_eq!(write.approval().required_approvals, 2, "a write needs two approvers unless the runbook says");
    let one = load_one(WF, &W.replace("  ttl: 30m", "  required_approvals: 1\n  ttl: 30m"));
    assert_eq!(one.approval().required_approvals, 1, "unless the runbook says otherwise");
}

#[test]
fn errors_from_all_files_are_collected_in_one_report() {
    let bad_ttl = edit(QUERY_BASE, &[("ttl: 30m", "ttl: soon"), ("max_items: 100", "max_items: 0")]);
    let bad_arn = edit(GET_BASE, &[("arn:aws:iam::123456789012:role/", "arn:aws:iam::123456789012:user/")]);
    let got = load_errors(&[(QF, &bad_ttl), (GF, &bad_arn), ("notes.md", "not a runbook")]);
    assert_eq!(
        got,
        [
            "order-line.yaml: role_arn: `arn:aws:iam::123456789012:user/jitgate-orders-read` is not an IAM role ARN — write it as arn:aws:iam::<12-digit account>:role/<role name>",
            "orders-by-status.yaml: max_items: max_items is 0 — use a cap from 1 to 10000",
            "orders-by-status.yaml: approval.ttl: `soon` is not a duration — write a duration such as 15m, 30m or 1h",
        ]
    );
}

#[test]
fn the_same_id_in_two_files_is_refused() {
    let got = load_errors(&[(QF, QUERY_BASE), ("orders-by-status.yml", QUERY_BASE)]);
    assert_eq!(
        got,
        [
            "orders-by-status.yml: id: the id `orders-by-status` is already used by orders-by-status.yaml — give each runbook its own id, or delete one of the two files"
        ]
    );
}

#[test]
fn an_empty_file_and_an_empty_directory_are_errors() {
    assert_eq!(
        load_errors(&[("empty.yaml", "  \n")]),
        ["empty.yaml: (document): the file is empty — write a runbook (see docs/runbooks.md) or delete the file"]
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let errors = RunbookSet::load_dir(dir.path(), &RunbookDefaults::default()).expect_err("empty dir");
    assert_eq!(errors.len(), 1);
    assert!(errors[0].to_string().ends_with(
        ": (directory): no runbooks found (no *.yaml files) — add at least one runbook file, see docs/runbooks.md"
    ));
}

#[test]
fn shipped_runbooks_all_load() {
    let set = shipped();
    let ids: Vec<&str> = set.iter().map(|r| r.id().as_str()).collect();
    assert_eq!(ids, ["cancel-stuck-order", "order-by-id", "orders-by-customer", "orders-by-status"]);
    for r in set.iter() {
        assert_eq!(r.role().account(), "123456789012");
        assert!(r.approval().approvers.pagerduty_schedules.contains("PORDERS1"), "{}", r.id());
        assert_eq!(r.approval().ttl, std::time::Duration::from_secs(30 * 60));
        assert!(r.approval().require_reason);
    }
}

#[test]
fn a_mistyped_runbook_id_gets_a_suggestion() {
    let set = shipped();
    assert_eq!(set.suggest("orders-by-custmer").map(|id| id.to_string()).as_deref(), Some("orders-by-customer"));
    assert_eq!(set.suggest("order-by-ids").map(|id| id.to_string()).as_deref(), Some("order-by-id"));
    assert_eq!(set.suggest("refunds"), None);
}

#[test]
fn a_missing_ttl_takes_the_callers_default() {
    let text = edit(QUERY_BASE, &[("  ttl: 30m\n", "")]);
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join(QF), text).expect("write");
    let defaults = RunbookDefaults { ttl: std::time::Duration::from_secs(7 * 60) };
    let set = RunbookSet::load_dir(dir.path(), &defaults).expect("loads");
    let r = set.iter().next().expect("one");
    assert_eq!(r.approval().ttl, std::time::Duration::from_secs(7 * 60));
    assert_eq!(r.approval().required_approvals, 1);
}

// ---------------------------------------------------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------------------------------------------------

fn s(v: &str) -> BoundValue {
    BoundValue::S(v.to_owned())
}

fn names(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    args(pairs)
}

#[test]
fn orders_by_customer_renders_the_exact_index_query() {
    let set = shipped();
    let q = render_ok(
        runbook(&set, "orders-by-customer"),
        &[("customer_id", "C000042"), ("from", "2026-11-01"), ("until", "2026-11-28")],
    );
    assert_eq!(q.runbook.as_str(), "orders-by-customer");
    assert_eq!(q.role_arn, "arn:aws:iam::123456789012:role/jitgate-orders-read");
    assert_eq!(q.operation, Operation::Query);
    assert_eq!(q.table, "Orders");
    assert_eq!(q.table_arn, "arn:aws:dynamodb:us-east-1:123456789012:table/Orders");
    assert_eq!(q.index.as_deref(), Some("customer-created-index"));
    assert_eq!(
        q.index_arn.as_deref(),
        Some("arn:aws:dynamodb:us-east-1:123456789012:table/Orders/index/customer-created-index")
    );
    assert!(q.key.is_empty());
    assert_eq!(q.partition_key, Some(KeyValue { attribute: "customer_id".into(), value: s("C000042") }));
    assert_eq!(q.key_condition_expression.as_deref(), Some("#n0 = :p0 AND #n1 BETWEEN :p1 AND :p2"));
    assert_eq!(q.filter_expression, None);
    assert_eq!(q.projection_expression.as_deref(), Some("#n2, #n0, #n1, #n3, #n4, #n5, #n6, #n7"));
    assert_eq!(
        q.expression_attribute_names,
        names(&[
            ("#n0", "customer_id"),
            ("#n1", "created_at"),
            ("#n2", "order_id"),
            ("#n3", "status"),
            ("#n4", "total"),
            ("#n5", "currency"),
            ("#n6", "email"),
            ("#n7", "shipping_address"),
        ])
    );
    assert_eq!(
        q.expression_attribute_values,
        BTreeMap::from([
            (":p0".into(), s("C000042")),
            (":p1".into(), s("2026-11-01")),
            (":p2".into(), s("2026-11-28"))
        ])
    );
    let projected =
        ["order_id", "customer_id", "created_at", "status", "total", "currency", "email", "shipping_address"];
    assert_eq!(q.projected_attributes, projected);
    assert_eq!(
        q.accessed_attributes,
        ["created_at", "currency", "customer_id", "email", "order_id", "shipping_address", "status", "total"]
    );
    assert_eq!(q.masked_attributes, ["email", "shipping_address"]);
    assert_eq!(q.item_cap, 200);
    assert_eq!(
        q.summary(),
        "Query Orders index customer-created-index where customer_id = \"C000042\" and created_at between \
         \"2026-11-01\" and \"2026-11-28\"; project order_id, customer_id, created_at, status, total, currency, \
         email, shipping_address; mask email, shipping_address; at most 200 items"
    );
}

#[test]
fn orders_by_status_normalises_values_and_applies_the_default_filter() {
    let set = shipped();
    let r = runbook(&set, "orders-by-status");
    let q = render_ok(r, &[("status", "PAID"), ("since", "2026-11-01T10:30:00+01:00")]);
    assert_eq!(q.partition_key, Some(KeyValue { attribute: "status".into(), value: s("paid") }));
    assert_eq!(q.key_condition_expression.as_deref(), Some("#n0 = :p0 AND #n1 >= :p1"));
    assert_eq!(q.filter_expression.as_deref(), Some("#n2 >= :p2"));
    assert_eq!(
        q.expression_attribute_values,
        BTreeMap::from([
            (":p0".into(), s("paid")),
            (":p1".into(), s("2026-11-01T09:30:00Z")),
            (":p2".into(), BoundValue::N("0".into())),
        ])
    );
    assert_eq!(q.expression_attribute_names.get("#n2").map(String::as_str), Some("total"));
    assert_eq!(
        q.summary(),
        "Query Orders index status-created-index where status = \"paid\" and created_at >= \"2026-11-01T09:30:00Z\"; \
         filter total >= 0; project order_id, customer_id, created_at, status, total, currency; at most 500 items"
    );

    let with_total = render_ok(r, &[("status", "paid"), ("since", "2026-11-01T09:30:00Z"), ("min_total", "250")]);
    assert_eq!(with_total.expression_attribute_values.get(":p2"), Some(&BoundValue::N("250".into())));
}

#[test]
fn order_by_id_renders_a_get_item_with_a_plain_key_and_no_values() {
    let set = shipped();
    let q = render_ok(runbook(&set, "order-by-id"), &[("order_id", "O0001234")]);
    assert_eq!(q.operation, Operation::GetItem);
    let key = KeyValue { attribute: "order_id".into(), value: s("O0001234") };
    assert_eq!(q.key, std::slice::from_ref(&key));
    assert_eq!(q.partition_key, Some(key));
    assert_eq!(q.key_condition_expression, None);
    assert_eq!(q.filter_expression, None);
    // DynamoDB rejects unused ExpressionAttributeValues, and GetItem uses none.
    assert!(q.expression_attribute_values.is_empty());
    assert_eq!(q.expression_attribute_names.len(), 8);
    assert_eq!(q.index_arn, None);
    assert_eq!(q.item_cap, 1);
    assert_eq!(
        q.summary(),
        "Get one item from Orders where order_id = \"O0001234\"; project order_id, customer_id, created_at, status, \
         total, currency, email, shipping_address; mask email, shipping_address; at most 1 item"
    );
}

#[test]
fn a_composite_key_get_item_binds_both_key_parts() {
    let r = load_one(GF, GET_BASE);
    let q = render_ok(&r, &[("order_id", "O0000001"), ("line_no", "03")]);
    assert_eq!(
        q.key,
        [
            KeyValue { attribute: "order_id".into(), value: s("O0000001") },
            KeyValue { attribute: "line_no".into(), value: BoundValue::N("3".into()) },
        ]
    );
    assert_eq!(q.projection_expression, None);
    assert!(q.expression_attribute_names.is_empty());
}

#[test]
fn every_parameter_mistake_is_explained_to_the_user() {
    let set = shipped();
    let customer = runbook(&set, "orders-by-customer");
    let status = runbook(&set, "orders-by-status");
    let by_id = runbook(&set, "order-by-id");
    /// A runbook, the arguments given, and the messages expected.
    type Case<'a> = (&'a Runbook, &'a [(&'a str, &'a str)], &'a [&'a str]);
    let cases: &[Case] = &[
        (
            customer,
            &[("custmer_id", "C000042"), ("from", "2026-11-01"), ("until", "2026-11-02")],
            &[
                "unknown parameter `custmer_id` — did you mean `customer_id`?",
                "`customer_id` is required (string matching `C[0-9]{6}`): Customer id, e.g. C000042",
            ],
        ),
        (
            by_id,
            &[("order_id", "O0001234"), ("colour", "red")],
            &["unknown parameter `colour` — this runbook takes: order_id"],
        ),
        (by_id, &[("order_id", "  ")], &["`order_id` is empty — give a value or leave it out"]),
        (by_id, &[("order_id", "42")], &["`order_id` = \"42\" does not match the pattern `O[0-9]{6,12}`"]),
        (
            status,
            &[("status", "lost"), ("since", "2026-11-01T00:00:00Z")],
            &[
                "`status` = \"lost\" is not allowed — use one of: pending, paid, shipped, delivered, cancelled, refunded",
            ],
        ),
        (
            status,
            &[("status", "paid"), ("since", "2026-11-01T00:00:00Z"), ("min_total", "ten")],
            &["`min_total` = \"ten\" is not a whole number"],
        ),
        (
            status,
            &[("status", "paid"), ("since", "2026-11-01T00:00:00Z"), ("min_total", "-1")],
            &["`min_total` = -1 is out of range — use a number from 0 to 100000000"],
        ),
        (
            customer,
            &[("customer_id", "C000042"), ("from", "2026-13-01"), ("until", "1 Dec")],
            &[
                "`from` = \"2026-13-01\" is not a date — use YYYY-MM-DD, e.g. 2026-11-01",
                "`until` = \"1 Dec\" is not a date — use YYYY-MM-DD, e.g. 2026-11-01",
            ],
        ),
        (
            status,
            &[("status", "paid"), ("since", "yesterday")],
            &["`since` = \"yesterday\" is not a timestamp — use RFC 3339 with a time zone, e.g. 2026-11-01T09:30:00Z"],
        ),
        (
            customer,
            &[("customer_id", "C000042"), ("from", "2026-11-28"), ("until", "2026-11-01")],
            &["`from` (\"2026-11-28\") is after `until` (\"2026-11-01\") — the range is empty; swap the two values"],
        ),
        (
            status,
            &[],
            &[
                "`status` is required (one of pending, paid, shipped, delivered, cancelled, refunded): Order status",
                "`since` is required (timestamp (RFC 3339, e.g. 2026-11-01T09:30:00Z)): Earliest creation time, RFC 3339 \
                 (e.g. 2026-11-01T00:00:00Z); converted to UTC",
            ],
        ),
    ];
    for (runbook, given, expected) in cases {
        assert_eq!(render_err(runbook, given), *expected, "{} {given:?}", runbook.id());
    }

    let long = format!("O{}", "1".repeat(2000));
    assert_eq!(
        render_err(by_id, &[("order_id", &long)]),
        ["`order_id` is 2001 characters long — at most 1024 are accepted"]
    );
    let errors = by_id.render(&args(&[("order_id", "x")]), REGION).expect_err("refused");
    assert!(matches!(errors[0], ParamError::PatternMismatch { .. }));
    assert_eq!(errors[0].parameter(), "order_id");
}

/// A runbook whose pattern lets anything through, so only the rendering itself stands between user text and the
/// expressions.
const PERMISSIVE: &str = r#"id: notes-by-author
description: Notes by author and title prefix
table:
  name: Notes
  partition_key: author
  sort_key: title
operation: query
role_arn: arn:aws:iam::123456789012:role/notes-read
parameters:
  - name: author
    type: string
    pattern: "(?s).+"
    description: Anything at all
  - name: prefix
    type: string
    pattern: "(?s).+"
    description: Anything at all
  - name: tag
    type: string
    pattern: "(?s).+"
    description: Anything at all
key:
  partition: { param: author }
  sort: { op: begins_with, param: prefix }
filter:
  - { attribute: tag, op: "<>", param: tag }
projection: [author, title, body]
max_items: 10
approval:
  approvers:
    slack_users: [U012AB3CD]
"#;

#[test]
fn user_text_only_ever_becomes_a_bound_value() {
    let r = load_one("notes-by-author.yaml", PERMISSIVE);
    let hostile = [
        "x) OR (#a = :b",
        "' OR '1'='1",
        "\" OR \"\"=\"",
        "line one\nline two\r\n\t#n0 = :p0",
        ":p0",
        "#n1",
        "attribute_exists(#n0)",
        &"A) OR (".repeat(140),
    ];
    for value in hostile {
        let q = render_ok(&r, &[("author", value), ("prefix", value), ("tag", value)]);
        // The expressions are the same whatever was typed: only placeholders, from the runbook's structure.
        assert_eq!(q.key_condition_expression.as_deref(), Some("#n0 = :p0 AND begins_with(#n1, :p1)"));
        assert_eq!(q.filter_expression.as_deref(), Some("#n2 <> :p2"));
        assert_eq!(q.projection_expression.as_deref(), Some("#n0, #n1, #n3"));
        assert_eq!(
            q.expression_attribute_names,
            names(&[("#n0", "author"), ("#n1", "title"), ("#n2", "tag"), ("#n3", "body")])
        );
        // And the text arrives intact, as values (trimmed like every value).
        let bound = s(value.trim());
        assert_eq!(
            q.expression_attribute_values,
            BTreeMap::from([(":p0".into(), bound.clone()), (":p1".into(), bound.clone()), (":p2".into(), bound)])
        );
        assert_eq!(q.partition_key.as_ref().map(|k| k.value.as_text()), Some(value.trim()));
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Fingerprints
// ---------------------------------------------------------------------------------------------------------------

#[test]
fn equivalent_arguments_give_the_same_fingerprint() {
    let set = shipped();
    let status = runbook(&set, "orders-by-status");
    let canonical = render_ok(status, &[("status", "paid"), ("since", "2026-11-01T00:00:00Z"), ("min_total", "100")]);
    let spelled_differently =
        render_ok(status, &[("min_total", " +0100 "), ("since", "2026-11-01T01:00:00+01:00"), ("status", "Paid ")]);
    assert_eq!(canonical, spelled_differently);
    assert_eq!(canonical.fingerprint(), spelled_differently.fingerprint());

    let customer = runbook(&set, "orders-by-customer");
    let a = render_ok(customer, &[("customer_id", "C000042"), ("from", "2026-11-01"), ("until", "2026-11-28")]);
    let b = render_ok(customer, &[("until", "2026-11-28 "), ("from", " 2026-11-01"), ("customer_id", "\tC000042\n")]);
    assert_eq!(a.fingerprint(), b.fingerprint());
}

#[test]
fn any_change_to_what_runs_changes_the_fingerprint() {
    let set = shipped();
    let customer = runbook(&set, "orders-by-customer");
    let base = render_ok(customer, &[("customer_id", "C000042"), ("from", "2026-11-01"), ("until", "2026-11-28")]);
    let fp = base.fingerprint();

    let other_customer =
        render_ok(customer, &[("customer_id", "C000043"), ("from", "2026-11-01"), ("until", "2026-11-28")]);
    let other_range =
        render_ok(customer, &[("customer_id", "C000042"), ("from", "2026-11-01"), ("until", "2026-11-29")]);
    let other_region = customer
        .render(&args(&[("customer_id", "C000042"), ("from", "2026-11-01"), ("until", "2026-11-28")]), "eu-west-1")
        .expect("renders");
    let mutations: Vec<(&str, RenderedQuery)> = vec![
        ("customer value", other_customer),
        ("range bound", other_range),
        ("region", other_region),
        ("table", RenderedQuery { table: "Orders2".into(), ..base.clone() }),
        ("table ARN", RenderedQuery { table_arn: format!("{}2", base.table_arn), ..base.clone() }),
        ("index", RenderedQuery { index: Some("status-created-index".into()), ..base.clone() }),
        ("index ARN", RenderedQuery { index_arn: None, ..base.clone() }),
        ("projection", RenderedQuery { projection_expression: Some("#n2, #n0".into()), ..base.clone() }),
        ("projected attributes", RenderedQuery { projected_attributes: vec!["order_id".into()], ..base.clone() }),
        ("masking", RenderedQuery { masked_attributes: vec![], ..base.clone() }),
        ("cap", RenderedQuery { item_cap: 201, ..base.clone() }),
        ("role", RenderedQuery { role_arn: "arn:aws:iam::123456789012:role/admin".into(), ..base.clone() }),
        ("operation", RenderedQuery { operation: Operation::Scan, ..base.clone() }),
        ("filter", RenderedQuery { filter_expression: Some("#n4 > :p0".into()), ..base.clone() }),
        ("value type", {
            let mut q = base.clone();
            q.expression_attribute_values.insert(":p0".into(), BoundValue::N("42".into()));
            q
        }),
    ];
    for (what, changed) in mutations {
        assert_ne!(changed.fingerprint(), fp, "changing the {what} must change the fingerprint");
    }
}

#[test]
fn the_fingerprint_encoding_is_pinned() {
    // If this changes, every approval in flight stops matching its request: change the encoding only with a new
    // FINGERPRINT_DOMAIN version, and update this value deliberately.
    let set = shipped();
    let q = render_ok(
        runbook(&set, "orders-by-customer"),
        &[("customer_id", "C000042"), ("from", "2026-11-01"), ("until", "2026-11-28")],
    );
    assert_eq!(q.fingerprint().as_hex(), "48ee75f512703ea6f561fe896bfc9772a828338fe17582f54414df7a2a2b5f0d");
}

// ---------------------------------------------------------------------------------------------------------------
// Session policies
// ---------------------------------------------------------------------------------------------------------------

/// An opted-in full scan with a filter.
const SCAN: &str = r#"id: orders-in-currency
description: Every order in one currency (full table scan)
table:
  name: Orders
  partition_key: order_id
operation: scan
allow_scan: true
role_arn: arn:aws:iam::123456789012:role/jitgate-orders-read
parameters:
  - name: currency
    type: string
    enum: [EUR, USD, GBP]
    description: Currency code
filter:
  - { attribute: currency, op: "=", param: currency }
projection: [order_id, currency, total]
max_items: 50
approval:
  approvers:
    pagerduty_schedules: [PORDERS1]
  required_approvals: 2
  ttl: 15m
"#;

/// One rendered query per shipped runbook, plus a scan and a composite-key get_item, with a name for each.
fn policy_cases() -> Vec<(String, RenderedQuery)> {
    let set = shipped();
    let mut cases = vec![
        ("order-by-id".to_owned(), render_ok(runbook(&set, "order-by-id"), &[("order_id", "O0001234")])),
        (
            "orders-by-customer".to_owned(),
            render_ok(
                runbook(&set, "orders-by-customer"),
                &[("customer_id", "C000042"), ("from", "2026-11-01"), ("until", "2026-11-28")],
            ),
        ),
        (
            "orders-by-status".to_owned(),
            render_ok(runbook(&set, "orders-by-status"), &[("status", "paid"), ("since", "2026-11-01T00:00:00Z")]),
        ),
        (
            "cancel-stuck-order".to_owned(),
            render_ok(runbook(&set, "cancel-stuck-order"), &[("order_id", "O000010006"), ("refund_note", "INC-812")]),
        ),
    ];
    assert_eq!(cases.len(), set.len(), "every shipped runbook has a policy case");
    let scan = load_one("orders-in-currency.yaml", SCAN);
    cases.push(("scan".to_owned(), render_ok(&scan, &[("currency", "EUR")])));
    let get = load_one(GF, GET_BASE);
    cases.push(("get-item-composite-key".to_owned(), render_ok(&get, &[("order_id", "O0000001"), ("line_no", "2")])));
    cases
}

#[test]
fn session_policies_match_their_snapshots() {
    for (name, query) in policy_cases() {
        let policy = session_policy(&query).unwrap_or_else(|e| panic!("{name}: {e}"));
        insta::assert_snapshot!(format!("policy-{name}"), policy.to_pretty());
    }
}

/// The subtle case: a query on a global secondary index. Per the AWS guide (see src/runbook/policy.rs), the
/// resource is the index ARN alone, `LeadingKeys` is the index's partition key value (the base table's `order_id`
/// appears nowhere in the request), and `dynamodb:Attributes` lists every table and index key attribute.
#[test]
fn a_gsi_query_is_pinned_to_the_index_partition_key_on_the_index_arn() {
    let set = shipped();
    let q = render_ok(
        runbook(&set, "orders-by-customer"),
        &[("customer_id", "C000042"), ("from", "2026-11-01"), ("until", "2026-11-28")],
    );
    let policy = session_policy(&q).expect("policy");
    let doc: serde_json::Value = serde_json::from_str(policy.as_json()).expect("json");
    let statements = doc["Statement"].as_array().expect("statements");
    assert_eq!(statements.len(), 1);
    let st = &statements[0];
    assert_eq!(st["Effect"], "Allow");
    assert_eq!(st["Action"], "dynamodb:Query");
    assert_eq!(st["Resource"], "arn:aws:dynamodb:us-east-1:123456789012:table/Orders/index/customer-created-index");
    let all = &st["Condition"]["ForAllValues:StringEquals"];
    assert_eq!(all["dynamodb:LeadingKeys"], serde_json::json!(["C000042"]));
    let attributes: Vec<&str> =
        all["dynamodb:Attributes"].as_array().expect("attributes").iter().filter_map(|v| v.as_str()).collect();
    for key in ["order_id", "customer_id", "created_at"] {
        assert!(attributes.contains(&key), "key attribute {key} must be allowed: {attributes:?}");
    }
    assert_eq!(attributes, q.accessed_attributes);
    assert_eq!(st["Condition"]["StringEqualsIfExists"]["dynamodb:Select"], "SPECIFIC_ATTRIBUTES");
}

#[test]
fn a_scan_gets_the_scan_action_and_no_partition_pin() {
    let scan = load_one("orders-in-currency.yaml", SCAN);
    let q = render_ok(&scan, &[("currency", "eur")]);
    assert_eq!(q.partition_key, None);
    assert_eq!(
        q.summary(),
        "Scan all of Orders; filter currency = \"EUR\"; project order_id, currency, total; at most 50 items"
    );
    let doc: serde_json::Value = serde_json::from_str(session_policy(&q).expect("policy").as_json()).expect("json");
    let st = &doc["Statement"][0];
    assert_eq!(st["Action"], "dynamodb:Scan");
    assert_eq!(st["Resource"], "arn:aws:dynamodb:us-east-1:123456789012:table/Orders");
    assert!(st["Condition"]["ForAllValues:StringEquals"].get("dynamodb:LeadingKeys").is_none());
}

#[test]
fn a_policy_over_the_aws_size_limit_is_refused() {
    let attributes: Vec<String> = (0..60).map(|i| format!("attribute_with_a_rather_long_name_{i:02}")).collect();
    let text = edit(
        QUERY_BASE,
        &[(
            "projection: [order_id, status, created_at, total, email]",
            &format!("projection: [{}, email]", attributes.join(", ")),
        )],
    );
    let r = load_one(QF, &text);
    let q = render_ok(&r, &[("status", "paid"), ("since", "2026-11-01T00:00:00Z")]);
    match session_policy(&q) {
        Err(PolicyError::TooLarge { chars, limit }) => {
            assert!(chars > MAX_SESSION_POLICY_CHARS);
            assert_eq!(limit, 2048);
        }
        other => panic!("expected TooLarge, got {other:?}"),
    }
    // Just under the limit is fine: the shipped policies are far below it.
    for (name, query) in policy_cases() {
        let policy = session_policy(&query).expect("policy");
        assert!(policy.chars() < 1024, "{name}: {} chars", policy.chars());
    }
}

/// `parliament` (the IAM policy linter, on PATH through scripts/with-services.sh) must find nothing wrong with any
/// policy we generate: grammar, actions, condition keys valid for the action, resource ARN formats.
#[test]
fn generated_policies_pass_the_parliament_linter() {
    // First prove the linter is live and judging: a misspelt condition key must be reported.
    let misspelt = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"dynamodb:Query","Resource":"arn:aws:dynamodb:us-east-1:123456789012:table/Orders","Condition":{"ForAllValues:StringEquals":{"dynamodb:LeadingKey":["a"]}}}]}"#;
    let output = Command::new("parliament").arg("--string").arg(misspelt).output().unwrap_or_else(|e| {
        panic!("cannot run `parliament` ({e}): run the tests with `make test` or scripts/with-services.sh")
    });
    assert!(!output.status.success(), "parliament accepted a misspelt condition key; is it the real linter?");

    for (name, query) in policy_cases() {
        let policy = session_policy(&query).expect("policy");
        let output = Command::new("parliament").arg("--string").arg(policy.as_json()).output().unwrap_or_else(|e| {
            panic!("cannot run `parliament` ({e}): run the tests with `make test` or scripts/with-services.sh")
        });
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success() && stdout.trim().is_empty(),
            "parliament reports findings for the {name} policy ({}):\n{stdout}{stderr}\npolicy: {}",
            output.status,
            policy.as_json()
        );
    }
}
