//! Block Kit limits Slack enforces, reported the way Slack reports them: `invalid_blocks` with
//! `errors: ["<problem> [json-pointer:/blocks/…]"]` plus `response_metadata.messages` prefixed `[ERROR]`
//! (wire shape observed in public bug reports, e.g. ryanrosello-og/playwright-slack-report#180), and
//! `msg_blocks_too_long` when the blocks' text as a whole is too long.
//!
//! Limits: 50 blocks per message, 100 per modal; section text 3000, fields ≤ 10 × 2000; header 150;
//! markdown block 12000; actions ≤ 25 elements; context ≤ 10 elements; button text 75, `action_id` /
//! `block_id` 255, `value` 2000, `url` 3000, `style` primary|danger; `block_id` unique per message.

use serde_json::Value;

/// Maximum blocks in a message.
pub const MAX_MESSAGE_BLOCKS: usize = 50;
/// Maximum blocks in a modal.
pub const MAX_MODAL_BLOCKS: usize = 100;
/// Sum of text characters over all blocks above which Slack answers `msg_blocks_too_long`. Not documented;
/// measured by users at about 13,200 characters (slackapi/bolt-js#2509). Erring high keeps the fake from
/// refusing anything real Slack accepts.
pub const MAX_TOTAL_BLOCK_TEXT: usize = 13_200;

/// Why a `blocks` value was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlocksError {
    /// `blocks` is not an array of objects (`invalid_blocks_format`).
    Format,
    /// One or more Block Kit rules broken; each entry is `<problem> [json-pointer:<path>]`.
    Invalid(Vec<String>),
    /// The blocks' text as a whole is too long.
    TooLong,
}

/// Checks message or modal blocks. `pointer` is the JSON pointer of the array (`/blocks`,
/// `/view/blocks`).
pub fn validate(blocks: &Value, max_blocks: usize, pointer: &str) -> Result<(), BlocksError> {
    let Some(items) = blocks.as_array() else { return Err(BlocksError::Format) };
    if items.iter().any(|b| !b.is_object()) {
        return Err(BlocksError::Format);
    }
    let mut errors = Vec::new();
    if items.len() > max_blocks {
        errors.push(format!("no more than {max_blocks} items allowed [json-pointer:{pointer}]"));
    }
    let mut seen_block_ids = Vec::new();
    let mut total_text = 0;
    for (i, block) in items.iter().enumerate() {
        let at = format!("{pointer}/{i}");
        check_block(block, &at, &mut errors, &mut seen_block_ids);
        total_text += text_chars(block);
    }
    if !errors.is_empty() {
        return Err(BlocksError::Invalid(errors));
    }
    if total_text > MAX_TOTAL_BLOCK_TEXT {
        return Err(BlocksError::TooLong);
    }
    Ok(())
}

fn check_block(block: &Value, at: &str, errors: &mut Vec<String>, seen_block_ids: &mut Vec<String>) {
    let Some(kind) = block.get("type").and_then(Value::as_str) else {
        errors.push(format!("missing required field: type [json-pointer:{at}]"));
        return;
    };
    if let Some(block_id) = block.get("block_id") {
        match block_id.as_str() {
            Some(id) if id.chars().count() > 255 => {
                errors.push(format!("must be less than 256 characters [json-pointer:{at}/block_id]"))
            }
            Some(id) if seen_block_ids.iter().any(|seen| seen == id) => {
                errors.push(format!("duplicate block_id `{id}` [json-pointer:{at}/block_id]"))
            }
            Some(id) => seen_block_ids.push(id.to_owned()),
            None => errors.push(format!("must be a string [json-pointer:{at}/block_id]")),
        }
    }
    match kind {
        "section" => {
            let text = block.get("text");
            let fields = block.get("fields");
            if text.is_none() && fields.is_none() {
                errors.push(format!("must provide either text or fields [json-pointer:{at}]"));
            }
            if let Some(text) = text {
                max_text(text, 3000, &format!("{at}/text"), errors);
            }
            if let Some(fields) = fields {
                let list = fields.as_array().map(Vec::as_slice).unwrap_or_default();
                if list.len() > 10 {
                    errors.push(format!("no more than 10 items allowed [json-pointer:{at}/fields]"));
                }
                for (j, field) in list.iter().enumerate() {
                    max_text(field, 2000, &format!("{at}/fields/{j}"), errors);
                }
            }
            if let Some(accessory) = block.get("accessory") {
                check_element(accessory, &format!("{at}/accessory"), errors);
            }
        }
        "header" => match block.get("text") {
            Some(text) => max_text(text, 150, &format!("{at}/text"), errors),
            None => errors.push(format!("missing required field: text [json-pointer:{at}]")),
        },
        "markdown" => match block.get("text").and_then(Value::as_str) {
            Some(text) if text.chars().count() > 12_000 => {
                errors.push(format!("must be less than 12001 characters [json-pointer:{at}/text]"))
            }
            Some(_) => {}
            None => errors.push(format!("missing required field: text [json-pointer:{at}]")),
        },
        "actions" | "context" => {
            let limit = if kind == "actions" { 25 } else { 10 };
            let elements = block.get("elements").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
            if elements.is_empty() {
                errors.push(format!("missing required field: elements [json-pointer:{at}]"));
            }
            if elements.len() > limit {
                errors.push(format!("no more than {limit} items allowed [json-pointer:{at}/elements]"));
            }
            let mut action_ids: Vec<&str> = Vec::new();
            for (j, element) in elements.iter().enumerate() {
                let element_at = format!("{at}/elements/{j}");
                if kind == "actions" {
                    check_element(element, &element_at, errors);
                    if let Some(id) = element.get("action_id").and_then(Value::as_str) {
                        if action_ids.contains(&id) {
                            errors.push(format!("duplicate action_id `{id}` [json-pointer:{element_at}/action_id]"));
                        }
                        action_ids.push(id);
                    }
                }
            }
        }
        _ => {}
    }
}

fn check_element(element: &Value, at: &str, errors: &mut Vec<String>) {
    if element.get("type").and_then(Value::as_str) != Some("button") {
        return;
    }
    match element.get("text") {
        Some(text) if text.get("type").and_then(Value::as_str) != Some("plain_text") => {
            errors.push(format!("must be a plain_text object [json-pointer:{at}/text]"))
        }
        Some(text) => max_text(text, 75, &format!("{at}/text"), errors),
        None => errors.push(format!("missing required field: text [json-pointer:{at}]")),
    }
    for (key, max) in [("action_id", 255), ("value", 2000), ("url", 3000)] {
        if let Some(s) = element.get(key).and_then(Value::as_str)
            && s.chars().count() > max
        {
            errors.push(format!("must be less than {} characters [json-pointer:{at}/{key}]", max + 1));
        }
    }
    if let Some(style) = element.get("style")
        && !matches!(style.as_str(), Some("primary" | "danger"))
    {
        errors.push(format!("must be one of [primary, danger] [json-pointer:{at}/style]"));
    }
}

/// A text object's `text` must exist and be at most `max` characters.
fn max_text(text_object: &Value, max: usize, at: &str, errors: &mut Vec<String>) {
    match text_object.get("text").and_then(Value::as_str) {
        Some("") => errors.push(format!("must be more than 0 characters [json-pointer:{at}/text]")),
        Some(s) if s.chars().count() > max => {
            errors.push(format!("must be less than {} characters [json-pointer:{at}/text]", max + 1))
        }
        Some(_) => {}
        None => errors.push(format!("missing required field: text [json-pointer:{at}]")),
    }
}

/// Characters of every `text` string in a block.
fn text_chars(value: &Value) -> usize {
    match value {
        Value::Object(map) => map
            .iter()
            .map(|(key, child)| match child {
                Value::String(s) if key == "text" => s.chars().count(),
                other => text_chars(other),
            })
            .sum(),
        Value::Array(items) => items.iter().map(text_chars).sum(),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn section(text: &str) -> Value {
        json!({"type": "section", "text": {"type": "mrkdwn", "text": text}})
    }

    #[test]
    fn fifty_blocks_pass_and_fifty_one_fail_with_slacks_pointer() {
        let fifty: Vec<Value> = (0..50).map(|_| section("x")).collect();
        assert_eq!(validate(&json!(fifty), MAX_MESSAGE_BLOCKS, "/blocks"), Ok(()));
        let fifty_one: Vec<Value> = (0..51).map(|_| section("x")).collect();
        assert_eq!(
            validate(&json!(fifty_one), MAX_MESSAGE_BLOCKS, "/blocks"),
            Err(BlocksError::Invalid(vec!["no more than 50 items allowed [json-pointer:/blocks]".into()]))
        );
    }

    #[test]
    fn section_text_limit_is_3000_characters() {
        assert_eq!(validate(&json!([section(&"é".repeat(3000))]), 50, "/blocks"), Ok(()));
        assert_eq!(
            validate(&json!([section(&"é".repeat(3001))]), 50, "/blocks"),
            Err(BlocksError::Invalid(vec![
                "must be less than 3001 characters [json-pointer:/blocks/0/text/text]".into()
            ]))
        );
    }

    #[test]
    fn long_total_text_is_msg_blocks_too_long() {
        let blocks: Vec<Value> = (0..5).map(|_| section(&"a".repeat(2900))).collect();
        assert_eq!(validate(&json!(blocks), 50, "/blocks"), Err(BlocksError::TooLong));
    }

    #[test]
    fn buttons_are_checked() {
        let blocks = json!([{"type": "actions", "block_id": "b", "elements": [
            {"type": "button", "action_id": "a", "text": {"type": "plain_text", "text": "x".repeat(76)}},
            {"type": "button", "action_id": "a", "style": "green", "text": {"type": "plain_text", "text": "ok"}}
        ]}]);
        let Err(BlocksError::Invalid(errors)) = validate(&blocks, 50, "/blocks") else { panic!("must fail") };
        assert_eq!(
            errors,
            vec![
                "must be less than 76 characters [json-pointer:/blocks/0/elements/0/text/text]",
                "must be one of [primary, danger] [json-pointer:/blocks/0/elements/1/style]",
                "duplicate action_id `a` [json-pointer:/blocks/0/elements/1/action_id]",
            ]
        );
    }

    #[test]
    fn duplicate_block_ids_and_non_objects() {
        let dup = json!([{"type": "divider", "block_id": "x"}, {"type": "divider", "block_id": "x"}]);
        assert!(matches!(validate(&dup, 50, "/blocks"), Err(BlocksError::Invalid(_))));
        assert_eq!(validate(&json!(["text"]), 50, "/blocks"), Err(BlocksError::Format));
        assert_eq!(validate(&json!({"type": "divider"}), 50, "/blocks"), Err(BlocksError::Format));
    }
}
