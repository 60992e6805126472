//! Checks for `operation: update_item` runbooks (the `update:` section) and for `unmaskable:`, kept apart from the
//! read checks so each set of rules reads on its own. Same `file: field: problem — fix` messages as the rest.

use std::collections::HashSet;

use super::Checker;
use crate::runbook::model::KeySchema;
use crate::runbook::param::Parameter;
use crate::runbook::schema::RawRunbook;
use crate::runbook::write::{
    Assignment, Operand, Precondition, RawLiteral, RawUpdate, UpdateSpec, precondition_op_allowed,
};
use crate::runbook::{MAX_VALUE_CHARS, Operation};

/// Approvals a write needs when its runbook does not say: a second pair of eyes on every change.
pub const WRITE_DEFAULT_APPROVALS: u8 = 2;

impl Checker {
    /// The `update:` section: required for `update_item`, refused for reads. Also the parts of a write runbook that
    /// would not make sense (an index, a filter, a projection, more than one item).
    pub(super) fn check_update(
        &mut self,
        raw: &RawRunbook,
        table: &KeySchema,
        parameters: &[Option<Parameter>],
    ) -> Option<UpdateSpec> {
        let update = match (raw.operation, &raw.update) {
            (Operation::UpdateItem, Some(update)) => update,
            (Operation::UpdateItem, None) => {
                self.err(
                    "update",
                    "`update_item` needs an `update` section saying what is written and under which condition",
                    "add `update: {set: [{attribute: <name>, param: <parameter>}], condition: [{attribute: <name>, \
                     op: \"=\", value: <expected>}]}` (see docs/runbooks.md)",
                );
                return None;
            }
            (Operation::Query | Operation::GetItem | Operation::Scan, Some(_)) => {
                self.err(
                    "update",
                    format!("`update` only applies to `operation: update_item`, this runbook uses `{}`", op(raw)),
                    "remove `update`, or use `operation: update_item` for a reviewed write",
                );
                return None;
            }
            (Operation::Query | Operation::GetItem | Operation::Scan, None) => return None,
        };
        if raw.index.is_some() {
            self.err(
                "index",
                "`update_item` writes one item of the table itself; DynamoDB cannot write through an index",
                "remove `index`",
            );
        }
        if !raw.filter.is_empty() {
            self.err(
                "filter",
                "`update_item` writes one item by its key and takes no filter",
                "put what the item must look like in `update.condition` instead",
            );
        }
        if raw.projection.is_some() {
            self.err(
                "projection",
                "`update_item` returns only the attributes it writes (their values before and after), so a \
                 projection has nothing to select",
                "remove `projection`",
            );
        }
        if raw.max_items != 1 {
            self.err(
                "max_items",
                format!("max_items is {}, but `update_item` writes exactly one item", raw.max_items),
                "use `max_items: 1`",
            );
        }
        Some(self.check_update_section(update, table, parameters))
    }

    fn check_update_section(
        &mut self,
        raw: &RawUpdate,
        table: &KeySchema,
        parameters: &[Option<Parameter>],
    ) -> UpdateSpec {
        let is_key = |a: &str| a == table.partition_key || Some(a) == table.sort_key.as_deref();
        if raw.set.is_empty() && raw.remove.is_empty() {
            self.err(
                "update",
                "the update changes nothing: `set` and `remove` are both empty",
                "add at least one `set` entry or one attribute to `remove`",
            );
        }
        let mut written = HashSet::new();
        let mut set = Vec::new();
        for (i, a) in raw.set.iter().enumerate() {
            let field = format!("update.set[{i}]");
            if !self.check_written(&format!("{field}.attribute"), &a.attribute, is_key(&a.attribute), &mut written) {
                continue;
            }
            if let Some(operand) = self.check_operand(&field, a.param.as_ref(), a.value.as_ref(), parameters) {
                set.push(Assignment { attribute: a.attribute.clone(), operand });
            }
        }
        let mut remove = Vec::new();
        for (i, attribute) in raw.remove.iter().enumerate() {
            let field = format!("update.remove[{i}]");
            if self.check_written(&field, attribute, is_key(attribute), &mut written) {
                remove.push(attribute.clone());
            }
        }
        if raw.condition.is_empty() {
            self.err(
                "update.condition",
                "a write needs a precondition, so it happens only if the item is still in the state the approvers \
                 were told about",
                "add e.g. `condition: [{attribute: status, op: \"=\", value: paid}]`",
            );
        }
        let mut condition = Vec::new();
        for (i, c) in raw.condition.iter().enumerate() {
            let field = format!("update.condition[{i}]");
            if !self.check_attribute_name(&format!("{field}.attribute"), &c.attribute) {
                continue;
            }
            let op = super::compare_op(c.op);
            if !precondition_op_allowed(op) {
                self.err(
                    format!("{field}.op"),
                    format!("`{op}` is not available in a precondition"),
                    "use one of =, <>, <, <=, >, >=, begins_with (two conditions give a range)",
                );
                continue;
            }
            if let Some(operand) = self.check_operand(&field, c.param.as_ref(), c.value.as_ref(), parameters) {
                condition.push(Precondition { attribute: c.attribute.clone(), op, operand });
            }
        }
        UpdateSpec { set, remove, condition }
    }

    /// A written or removed attribute: well formed, not a key attribute, written once.
    fn check_written(&mut self, field: &str, attribute: &str, is_key: bool, written: &mut HashSet<String>) -> bool {
        if !self.check_attribute_name(field, attribute) {
            return false;
        }
        if is_key {
            self.err(
                field,
                format!("`{attribute}` is a key attribute of the table; DynamoDB cannot change an item's key"),
                "write other attributes only; the key names the item in `key`",
            );
            return false;
        }
        if !written.insert(attribute.to_owned()) {
            self.err(field, format!("`{attribute}` is written more than once"), "set or remove each attribute once");
            return false;
        }
        true
    }

    /// Exactly one of `param` (a declared parameter) or `value` (a literal).
    fn check_operand(
        &mut self,
        field: &str,
        param: Option<&String>,
        value: Option<&RawLiteral>,
        parameters: &[Option<Parameter>],
    ) -> Option<Operand> {
        match (param, value) {
            (Some(name), None) => {
                self.check_param_ref(&format!("{field}.param"), name, parameters, crate::runbook::CompareOp::Eq)?;
                Some(Operand::Param(name.clone()))
            }
            (None, Some(literal)) => {
                let bound = literal.to_bound();
                let text = bound.as_text();
                if text.trim().is_empty() || text.chars().count() > MAX_VALUE_CHARS {
                    self.err(
                        format!("{field}.value"),
                        "the value is empty or too long",
                        format!("give a value of 1 to {MAX_VALUE_CHARS} characters"),
                    );
                    return None;
                }
                Some(Operand::Literal(bound))
            }
            (Some(_), Some(_)) => {
                self.err(field, "both `param` and `value` are given", "keep one: a parameter or a fixed value");
                None
            }
            (None, None) => {
                self.err(
                    field,
                    "neither `param` nor `value` is given",
                    "add `param: <parameter>` for a value the requester types, or `value: <value>` for a fixed one",
                );
                None
            }
        }
    }

    /// `unmaskable:`: masked attributes a requester may ask to see in clear with `--unmask`, at the price of one
    /// more approver. Each must be masked, else there is nothing to unmask.
    pub(super) fn check_unmaskable(&mut self, raw: &[String], mask: &[String]) -> Vec<String> {
        let mut seen = HashSet::new();
        for (i, name) in raw.iter().enumerate() {
            let field = format!("unmaskable[{i}]");
            if !self.check_attribute_name(&field, name) {
                continue;
            }
            if !seen.insert(name) {
                self.err(field, format!("`{name}` is listed twice"), "remove the duplicate");
            } else if !mask.contains(name) {
                self.err(
                    field,
                    format!("`{name}` is not masked, so there is nothing to unmask"),
                    "add it to `mask`, or remove it from `unmaskable`",
                );
            }
        }
        raw.to_vec()
    }
}

fn op(raw: &RawRunbook) -> &'static str {
    super::op_name(raw.operation)
}
