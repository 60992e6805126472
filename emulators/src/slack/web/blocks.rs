//! Block Kit, checked strictly and reported the way Slack reports it: `invalid_blocks` with
//! `errors: ["<problem> [json-pointer:/blocks/…]"]` plus `response_metadata.messages` prefixed `[ERROR]`
//! (wire shape observed in public bug reports, e.g. ryanrosello-og/playwright-slack-report#180), and
//! `msg_blocks_too_long` when the blocks' text as a whole is too long.
//!
//! Strict on purpose: only the block types, elements, composition objects and fields listed here are accepted,
//! each with its type and limits from Slack's Block Kit reference; anything else (an unknown block or element type,
//! a misspelt field, `mrkdwn` where only `plain_text` is allowed, an `input` block in a message) is an error, where a
//! parser with an `Unknown` fallback (slack-morphism's `SlackBlock`) would let it through. So a malformed payload from
//! jitgate fails the test that sent it. When jitgate starts using more of Block Kit, add it here with its limits.
//!
//! Limits: 50 blocks per message, 100 per modal; `block_id` 255 and unique per message or view; section text 3000,
//! fields ≤ 10 × 2000; header plain_text 150; context ≤ 10 elements; actions ≤ 25 elements, `action_id`s unique in
//! the block; image `image_url` 3000, `alt_text` 2000; input label and hint plain_text 2000; button text plain_text
//! 75, `action_id` 255, `value` 2000, `url` 3000, `style` primary|danger, `accessibility_label` 75; select
//! placeholder 150, ≤ 100 options, `initial_option` one of them; option text 75, value 150, description 75;
//! datepicker `initial_date` YYYY-MM-DD; plain_text_input lengths 0–3000; confirm dialog title 100, text 300,
//! buttons 30; modal title, submit and close plain_text 24, `private_metadata` 3000, `callback_id` 255, `submit`
//! required with input blocks. Every text object has a non-empty `text`.

use serde_json::{Map, Value};

/// Maximum blocks in a message.
pub const MAX_MESSAGE_BLOCKS: usize = 50;
/// Maximum blocks in a modal.
pub const MAX_MODAL_BLOCKS: usize = 100;
/// Sum of text characters over all blocks above which Slack answers `msg_blocks_too_long`. Not documented;
/// measured by users at about 13,200 characters (slackapi/bolt-js#2509). Erring high keeps the fake from
/// refusing anything real Slack accepts.
pub const MAX_TOTAL_BLOCK_TEXT: usize = 13_200;

/// Where blocks are shown: the block types and the number of blocks allowed differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    Message,
    Modal,
}

impl Surface {
    fn max_blocks(self) -> usize {
        match self {
            Surface::Message => MAX_MESSAGE_BLOCKS,
            Surface::Modal => MAX_MODAL_BLOCKS,
        }
    }
}

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

/// Checks message or modal blocks. `pointer` is the JSON pointer of the array (`/blocks`, `/view/blocks`).
pub fn validate(blocks: &Value, surface: Surface, pointer: &str) -> Result<(), BlocksError> {
    let mut check = Check::default();
    check.blocks(blocks, surface, pointer)?;
    check.finish(blocks)
}

/// Checks a modal view (`views.open`, `views.update`, `views.push`): its own fields, then its blocks. `pointer` is
/// the JSON pointer of the view (`/view`).
pub fn validate_view(view: &Value, pointer: &str) -> Result<(), BlocksError> {
    let mut check = Check::default();
    let Some(fields) = check.object(
        view,
        pointer,
        &[
            "type",
            "title",
            "blocks",
            "close",
            "submit",
            "private_metadata",
            "callback_id",
            "clear_on_close",
            "notify_on_close",
            "external_id",
            "submit_disabled",
        ],
        &["type", "title", "blocks"],
    ) else {
        return Err(BlocksError::Invalid(check.errors));
    };
    if let Some(kind) = fields.get("type")
        && kind != "modal"
    {
        check.error(&format!("{pointer}/type"), "must be one of [modal]");
    }
    for key in ["title", "close", "submit"] {
        check.optional_text(fields, pointer, key, Text::Plain, 24);
    }
    check.optional_string(fields, pointer, "private_metadata", 0, 3000);
    check.optional_string(fields, pointer, "callback_id", 0, 255);
    check.optional_string(fields, pointer, "external_id", 0, 255);
    for key in ["clear_on_close", "notify_on_close", "submit_disabled"] {
        check.optional_bool(fields, pointer, key);
    }
    let blocks = fields.get("blocks").unwrap_or(&Value::Null);
    let has_input =
        blocks.as_array().into_iter().flatten().any(|b| b.get("type").and_then(Value::as_str) == Some("input"));
    if has_input && !fields.contains_key("submit") {
        check.error(pointer, "missing required field: submit (a modal with input blocks needs one)");
    }
    check.blocks(blocks, Surface::Modal, &format!("{pointer}/blocks"))?;
    check.finish(blocks)
}

/// Which text objects a field accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Text {
    Plain,
    Any,
}

/// The interactive elements each place accepts.
const ACTIONS_ELEMENTS: &[&str] = &["button", "static_select", "datepicker"];
const ACCESSORY_ELEMENTS: &[&str] = &["button", "static_select", "datepicker", "image"];
const INPUT_ELEMENTS: &[&str] = &["plain_text_input", "static_select", "datepicker"];

#[derive(Default)]
struct Check {
    errors: Vec<String>,
    block_ids: Vec<String>,
}

impl Check {
    fn error(&mut self, at: &str, problem: &str) {
        self.errors.push(format!("{problem} [json-pointer:{at}]"));
    }

    fn finish(self, blocks: &Value) -> Result<(), BlocksError> {
        if !self.errors.is_empty() {
            return Err(BlocksError::Invalid(self.errors));
        }
        if text_chars(blocks) > MAX_TOTAL_BLOCK_TEXT {
            return Err(BlocksError::TooLong);
        }
        Ok(())
    }

    fn blocks(&mut self, blocks: &Value, surface: Surface, pointer: &str) -> Result<(), BlocksError> {
        let Some(items) = blocks.as_array() else { return Err(BlocksError::Format) };
        if items.iter().any(|b| !b.is_object()) {
            return Err(BlocksError::Format);
        }
        if items.len() > surface.max_blocks() {
            self.error(pointer, &format!("no more than {} items allowed", surface.max_blocks()));
        }
        for (i, block) in items.iter().enumerate() {
            self.block(block, surface, &format!("{pointer}/{i}"));
        }
        Ok(())
    }

    /// `value` as an object with only `allowed` keys and every `required` one; `None` when it is not an object.
    fn object<'v>(
        &mut self,
        value: &'v Value,
        at: &str,
        allowed: &[&str],
        required: &[&str],
    ) -> Option<&'v Map<String, Value>> {
        let Some(map) = value.as_object() else {
            self.error(at, "must provide an object");
            return None;
        };
        for key in map.keys() {
            if !allowed.contains(&key.as_str()) {
                self.error(at, &format!("invalid additional property: {key}"));
            }
        }
        for key in required {
            if !map.contains_key(*key) {
                self.error(at, &format!("missing required field: {key}"));
            }
        }
        Some(map)
    }

    fn string(&mut self, value: &Value, at: &str, min: usize, max: usize) -> Option<String> {
        let Some(s) = value.as_str() else {
            self.error(at, "must be a string");
            return None;
        };
        let length = s.chars().count();
        if length < min {
            self.error(at, &format!("must be more than {} characters", min - 1));
        } else if length > max {
            self.error(at, &format!("must be less than {} characters", max + 1));
        }
        Some(s.to_owned())
    }

    fn optional_string(&mut self, map: &Map<String, Value>, at: &str, key: &str, min: usize, max: usize) {
        if let Some(value) = map.get(key) {
            self.string(value, &format!("{at}/{key}"), min, max);
        }
    }

    fn optional_bool(&mut self, map: &Map<String, Value>, at: &str, key: &str) {
        if let Some(value) = map.get(key)
            && !value.is_boolean()
        {
            self.error(&format!("{at}/{key}"), "must be a boolean");
        }
    }

    fn optional_text(&mut self, map: &Map<String, Value>, at: &str, key: &str, kind: Text, max: usize) {
        if let Some(value) = map.get(key) {
            self.text(value, &format!("{at}/{key}"), kind, max);
        }
    }

    /// A text object: `plain_text` (with `emoji`) or, where `kind` allows, `mrkdwn` (with `verbatim`); `text` from 1
    /// to `max` characters.
    fn text(&mut self, value: &Value, at: &str, kind: Text, max: usize) {
        let Some(map) = self.object(value, at, &["type", "text", "emoji", "verbatim"], &["type", "text"]) else {
            return;
        };
        match (map.get("type").and_then(Value::as_str), kind) {
            (Some("plain_text"), _) => {
                if map.contains_key("verbatim") {
                    self.error(at, "invalid additional property: verbatim");
                }
                self.optional_bool(map, at, "emoji");
            }
            (Some("mrkdwn"), Text::Any) => {
                if map.contains_key("emoji") {
                    self.error(at, "invalid additional property: emoji");
                }
                self.optional_bool(map, at, "verbatim");
            }
            (Some("mrkdwn"), Text::Plain) => self.error(&format!("{at}/type"), "must be one of [plain_text]"),
            (None, _) if !map.contains_key("type") => {}
            _ => self.error(&format!("{at}/type"), "must be one of [plain_text, mrkdwn]"),
        }
        if let Some(text) = map.get("text") {
            self.string(text, &format!("{at}/text"), 1, max);
        }
    }

    fn block_id(&mut self, map: &Map<String, Value>, at: &str) {
        let Some(value) = map.get("block_id") else { return };
        let at = format!("{at}/block_id");
        if let Some(id) = self.string(value, &at, 1, 255) {
            if self.block_ids.contains(&id) {
                self.error(&at, &format!("duplicate block_id `{id}`"));
            }
            self.block_ids.push(id);
        }
    }

    fn list<'v>(&mut self, map: &'v Map<String, Value>, at: &str, key: &str, max: usize) -> &'v [Value] {
        let Some(value) = map.get(key) else { return &[] };
        let at = format!("{at}/{key}");
        let Some(items) = value.as_array() else {
            self.error(&at, "must be an array");
            return &[];
        };
        if items.is_empty() {
            self.error(&at, "must contain at least 1 item");
        }
        if items.len() > max {
            self.error(&at, &format!("no more than {max} items allowed"));
        }
        items
    }

    fn block(&mut self, block: &Value, surface: Surface, at: &str) {
        let kind = block.get("type").and_then(Value::as_str).unwrap_or_default().to_owned();
        let allowed: &[&str] = match kind.as_str() {
            "section" => &["type", "block_id", "text", "fields", "accessory", "expand"],
            "header" | "divider" | "context" | "actions" | "image" | "input" => &[],
            "" => {
                self.error(at, "missing required field: type");
                return;
            }
            other => {
                self.error(&format!("{at}/type"), &format!("unsupported type: {other}"));
                return;
            }
        };
        let (allowed, required): (&[&str], &[&str]) = match kind.as_str() {
            "section" => (allowed, &["type"]),
            "header" => (&["type", "block_id", "text"], &["type", "text"]),
            "divider" => (&["type", "block_id"], &["type"]),
            "context" => (&["type", "block_id", "elements"], &["type", "elements"]),
            "actions" => (&["type", "block_id", "elements"], &["type", "elements"]),
            "image" => (&["type", "block_id", "image_url", "alt_text", "title"], &["type", "image_url", "alt_text"]),
            _ => (
                &["type", "block_id", "label", "element", "hint", "optional", "dispatch_action"],
                &["type", "label", "element"],
            ),
        };
        let Some(map) = self.object(block, at, allowed, required) else { return };
        self.block_id(map, at);
        match kind.as_str() {
            "section" => {
                if !map.contains_key("text") && !map.contains_key("fields") {
                    self.error(at, "must provide either text or fields");
                }
                self.optional_text(map, at, "text", Text::Any, 3000);
                for (i, field) in self.list(map, at, "fields", 10).iter().enumerate() {
                    self.text(field, &format!("{at}/fields/{i}"), Text::Any, 2000);
                }
                if let Some(accessory) = map.get("accessory") {
                    self.element(accessory, &format!("{at}/accessory"), ACCESSORY_ELEMENTS);
                }
                self.optional_bool(map, at, "expand");
            }
            "header" => self.optional_text(map, at, "text", Text::Plain, 150),
            "context" => {
                for (i, element) in self.list(map, at, "elements", 10).iter().enumerate() {
                    let element_at = format!("{at}/elements/{i}");
                    match element.get("type").and_then(Value::as_str) {
                        Some("image") => self.element(element, &element_at, &["image"]),
                        _ => self.text(element, &element_at, Text::Any, 3000),
                    }
                }
            }
            "actions" => {
                let mut action_ids: Vec<String> = Vec::new();
                for (i, element) in self.list(map, at, "elements", 25).iter().enumerate() {
                    let element_at = format!("{at}/elements/{i}");
                    self.element(element, &element_at, ACTIONS_ELEMENTS);
                    if let Some(id) = element.get("action_id").and_then(Value::as_str) {
                        if action_ids.iter().any(|seen| seen == id) {
                            self.error(&format!("{element_at}/action_id"), &format!("duplicate action_id `{id}`"));
                        }
                        action_ids.push(id.to_owned());
                    }
                }
            }
            "image" => {
                self.optional_string(map, at, "image_url", 1, 3000);
                self.optional_string(map, at, "alt_text", 1, 2000);
                self.optional_text(map, at, "title", Text::Plain, 2000);
            }
            "input" => {
                // jitgate collects input through modals only; an input block in a message is a mistake.
                if surface == Surface::Message {
                    self.error(&format!("{at}/type"), "input blocks are allowed in modals only");
                }
                self.optional_text(map, at, "label", Text::Plain, 2000);
                self.optional_text(map, at, "hint", Text::Plain, 2000);
                self.optional_bool(map, at, "optional");
                self.optional_bool(map, at, "dispatch_action");
                if let Some(element) = map.get("element") {
                    self.element(element, &format!("{at}/element"), INPUT_ELEMENTS);
                }
            }
            _ => {}
        }
    }

    /// An interactive (or image) element whose type is one of `allowed`.
    fn element(&mut self, element: &Value, at: &str, allowed: &[&str]) {
        let kind = element.get("type").and_then(Value::as_str).unwrap_or_default();
        if !allowed.contains(&kind) {
            self.error(&format!("{at}/type"), &format!("must be one of [{}]", allowed.join(", ")));
            return;
        }
        let (fields, required): (&[&str], &[&str]) = match kind {
            "button" => (
                &["type", "text", "action_id", "url", "value", "style", "confirm", "accessibility_label"],
                &["type", "text"],
            ),
            "static_select" => (
                &[
                    "type",
                    "action_id",
                    "options",
                    "option_groups",
                    "initial_option",
                    "placeholder",
                    "confirm",
                    "focus_on_load",
                ],
                &["type"],
            ),
            "datepicker" => {
                (&["type", "action_id", "initial_date", "placeholder", "confirm", "focus_on_load"], &["type"])
            }
            "plain_text_input" => (
                &[
                    "type",
                    "action_id",
                    "initial_value",
                    "multiline",
                    "min_length",
                    "max_length",
                    "placeholder",
                    "dispatch_action_config",
                    "focus_on_load",
                ],
                &["type"],
            ),
            _ => (&["type", "image_url", "alt_text"], &["type", "image_url", "alt_text"]),
        };
        let Some(map) = self.object(element, at, fields, required) else { return };
        self.optional_string(map, at, "action_id", 1, 255);
        self.optional_text(map, at, "placeholder", Text::Plain, 150);
        self.optional_bool(map, at, "focus_on_load");
        if let Some(confirm) = map.get("confirm") {
            self.confirm(confirm, &format!("{at}/confirm"));
        }
        match kind {
            "button" => {
                self.optional_text(map, at, "text", Text::Plain, 75);
                self.optional_string(map, at, "value", 1, 2000);
                self.optional_string(map, at, "url", 1, 3000);
                self.optional_string(map, at, "accessibility_label", 1, 75);
                self.style(map, at);
            }
            "static_select" => self.select(map, at),
            "datepicker" => {
                if let Some(date) = map.get("initial_date") {
                    let at = format!("{at}/initial_date");
                    if let Some(date) = self.string(date, &at, 10, 10)
                        && !is_date(&date)
                    {
                        self.error(&at, "must be a date in the format YYYY-MM-DD");
                    }
                }
            }
            "plain_text_input" => {
                self.optional_string(map, at, "initial_value", 0, 3000);
                self.optional_bool(map, at, "multiline");
                let mut bound = |key: &str, min: u64| match map.get(key) {
                    Some(n) if !n.as_u64().is_some_and(|n| (min..=3000).contains(&n)) => {
                        self.error(&format!("{at}/{key}"), &format!("must be an integer from {min} to 3000"))
                    }
                    _ => {}
                };
                bound("min_length", 0);
                bound("max_length", 1);
                if let Some(config) = map.get("dispatch_action_config") {
                    let config_at = format!("{at}/dispatch_action_config");
                    if let Some(config) = self.object(config, &config_at, &["trigger_actions_on"], &[]) {
                        for (i, on) in self.list(config, &config_at, "trigger_actions_on", 2).iter().enumerate() {
                            if !matches!(on.as_str(), Some("on_enter_pressed" | "on_character_entered")) {
                                let on_at = format!("{config_at}/trigger_actions_on/{i}");
                                self.error(&on_at, "must be one of [on_enter_pressed, on_character_entered]");
                            }
                        }
                    }
                }
            }
            _ => {
                self.optional_string(map, at, "image_url", 1, 3000);
                self.optional_string(map, at, "alt_text", 1, 2000);
            }
        }
    }

    fn style(&mut self, map: &Map<String, Value>, at: &str) {
        if let Some(style) = map.get("style")
            && !matches!(style.as_str(), Some("primary" | "danger"))
        {
            self.error(&format!("{at}/style"), "must be one of [primary, danger]");
        }
    }

    /// A static select: options (or option groups), and an initial option that is one of them.
    fn select(&mut self, map: &Map<String, Value>, at: &str) {
        let options = self.list(map, at, "options", 100);
        let mut all: Vec<&Value> = options.iter().collect();
        for (i, option) in options.iter().enumerate() {
            self.option(option, &format!("{at}/options/{i}"));
        }
        for (g, group) in self.list(map, at, "option_groups", 100).iter().enumerate() {
            let group_at = format!("{at}/option_groups/{g}");
            if let Some(group_map) = self.object(group, &group_at, &["label", "options"], &["label", "options"]) {
                self.optional_text(group_map, &group_at, "label", Text::Plain, 75);
                for (i, option) in self.list(group_map, &group_at, "options", 100).iter().enumerate() {
                    self.option(option, &format!("{group_at}/options/{i}"));
                    all.push(option);
                }
            }
        }
        match (map.contains_key("options"), map.contains_key("option_groups")) {
            (false, false) => self.error(at, "must provide either options or option_groups"),
            (true, true) => self.error(at, "must provide only one of options or option_groups"),
            _ => {}
        }
        if let Some(initial) = map.get("initial_option") {
            let initial_at = format!("{at}/initial_option");
            self.option(initial, &initial_at);
            if !all.contains(&initial) {
                self.error(&initial_at, "must match one of the provided options");
            }
        }
    }

    /// An option of a select: plain_text text, a value and an optional description.
    fn option(&mut self, option: &Value, at: &str) {
        let Some(map) = self.object(option, at, &["text", "value", "description"], &["text", "value"]) else {
            return;
        };
        self.optional_text(map, at, "text", Text::Plain, 75);
        self.optional_string(map, at, "value", 1, 150);
        self.optional_text(map, at, "description", Text::Plain, 75);
    }

    fn confirm(&mut self, confirm: &Value, at: &str) {
        let fields = ["title", "text", "confirm", "deny", "style"];
        let Some(map) = self.object(confirm, at, &fields, &["title", "text", "confirm", "deny"]) else { return };
        self.optional_text(map, at, "title", Text::Plain, 100);
        self.optional_text(map, at, "text", Text::Any, 300);
        self.optional_text(map, at, "confirm", Text::Plain, 30);
        self.optional_text(map, at, "deny", Text::Plain, 30);
        self.style(map, at);
    }
}

/// `YYYY-MM-DD` with a month 01–12 and a day 01–31.
fn is_date(text: &str) -> bool {
    let bytes = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| bytes[range].iter().all(u8::is_ascii_digit);
    if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' || !digits(0..4) || !digits(5..7) || !digits(8..10) {
        return false;
    }
    let month: u8 = text[5..7].parse().unwrap_or(0);
    let day: u8 = text[8..10].parse().unwrap_or(0);
    (1..=12).contains(&month) && (1..=31).contains(&day)
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

    fn message(blocks: Value) -> Result<(), BlocksError> {
        validate(&blocks, Surface::Message, "/blocks")
    }

    /// The problems found in `blocks` as a message, which must be refused.
    fn problems(blocks: Value) -> Vec<String> {
        match message(blocks.clone()) {
            Err(BlocksError::Invalid(problems)) => problems,
            other => panic!("{blocks} must be refused as invalid_blocks, got {other:?}"),
        }
    }

    #[test]
    fn fifty_blocks_pass_and_fifty_one_fail_with_slacks_pointer() {
        let fifty: Vec<Value> = (0..50).map(|_| section("x")).collect();
        assert_eq!(message(json!(fifty)), Ok(()));
        let fifty_one: Vec<Value> = (0..51).map(|_| section("x")).collect();
        assert_eq!(problems(json!(fifty_one)), ["no more than 50 items allowed [json-pointer:/blocks]"]);
        let hundred: Vec<Value> = (0..100).map(|_| section("x")).collect();
        assert_eq!(validate(&json!(hundred), Surface::Modal, "/view/blocks"), Ok(()));
        let hundred_one: Vec<Value> = (0..101).map(|_| section("x")).collect();
        assert!(validate(&json!(hundred_one), Surface::Modal, "/view/blocks").is_err());
    }

    #[test]
    fn section_text_limit_is_3000_characters() {
        assert_eq!(message(json!([section(&"é".repeat(3000))])), Ok(()));
        assert_eq!(
            problems(json!([section(&"é".repeat(3001))])),
            ["must be less than 3001 characters [json-pointer:/blocks/0/text/text]"]
        );
    }

    #[test]
    fn long_total_text_is_msg_blocks_too_long() {
        let blocks: Vec<Value> = (0..5).map(|_| section(&"a".repeat(2900))).collect();
        assert_eq!(message(json!(blocks)), Err(BlocksError::TooLong));
    }

    #[test]
    fn buttons_are_checked() {
        let blocks = json!([{"type": "actions", "block_id": "b", "elements": [
            {"type": "button", "action_id": "a", "text": {"type": "plain_text", "text": "x".repeat(76)}},
            {"type": "button", "action_id": "a", "style": "green", "text": {"type": "plain_text", "text": "ok"}},
            {"type": "button", "action_id": "c", "value": "v".repeat(2001), "text": {"type": "mrkdwn", "text": "*b*"}}
        ]}]);
        assert_eq!(
            problems(blocks),
            [
                "must be less than 76 characters [json-pointer:/blocks/0/elements/0/text/text]",
                "must be one of [primary, danger] [json-pointer:/blocks/0/elements/1/style]",
                "duplicate action_id `a` [json-pointer:/blocks/0/elements/1/action_id]",
                "must be one of [plain_text] [json-pointer:/blocks/0/elements/2/text/type]",
                "must be less than 2001 characters [json-pointer:/blocks/0/elements/2/value]",
            ]
        );
    }

    #[test]
    fn duplicate_block_ids_and_non_objects() {
        let dup = json!([{"type": "divider", "block_id": "x"}, {"type": "divider", "block_id": "x"}]);
        assert_eq!(problems(dup), ["duplicate block_id `x` [json-pointer:/blocks/1/block_id]"]);
        assert_eq!(message(json!(["text"])), Err(BlocksError::Format));
        assert_eq!(message(json!({"type": "divider"})), Err(BlocksError::Format));
        let long_id = json!([{"type": "divider", "block_id": "b".repeat(256)}]);
        assert_eq!(problems(long_id), ["must be less than 256 characters [json-pointer:/blocks/0/block_id]"]);
    }

    #[test]
    fn unknown_types_and_fields_are_refused_not_passed_through() {
        assert_eq!(
            problems(json!([{"type": "sectoin", "text": {"type": "mrkdwn", "text": "x"}}])),
            ["unsupported type: sectoin [json-pointer:/blocks/0/type]"]
        );
        assert_eq!(
            problems(json!([{"text": {"type": "mrkdwn", "text": "x"}}])),
            ["missing required field: type [json-pointer:/blocks/0]"]
        );
        assert_eq!(
            problems(json!([{"type": "section", "txt": {"type": "mrkdwn", "text": "x"}}])),
            [
                "invalid additional property: txt [json-pointer:/blocks/0]",
                "must provide either text or fields [json-pointer:/blocks/0]",
            ]
        );
        assert_eq!(
            problems(json!([{"type": "section", "text": {"type": "markdown", "text": "x"}}])),
            ["must be one of [plain_text, mrkdwn] [json-pointer:/blocks/0/text/type]"]
        );
        assert_eq!(
            problems(json!([{"type": "section", "text": {"type": "plain_text", "text": "x", "verbatim": true}}])),
            ["invalid additional property: verbatim [json-pointer:/blocks/0/text]"]
        );
        assert_eq!(
            problems(json!([{"type": "section", "text": {"type": "mrkdwn", "text": ""}}])),
            ["must be more than 0 characters [json-pointer:/blocks/0/text/text]"]
        );
        assert_eq!(
            problems(json!([{"type": "section", "text": {"type": "mrkdwn", "text": 5}}])),
            ["must be a string [json-pointer:/blocks/0/text/text]"]
        );
        let overflow = json!([{"type": "actions", "elements": [{"type": "overflow", "options": []}]}]);
        assert_eq!(
            problems(overflow),
            ["must be one of [button, static_select, datepicker] [json-pointer:/blocks/0/elements/0/type]"]
        );
    }

    #[test]
    fn headers_take_plain_text_up_to_150_characters() {
        assert_eq!(
            message(json!([{"type": "header", "text": {"type": "plain_text", "text": "h".repeat(150)}}])),
            Ok(())
        );
        assert_eq!(
            problems(json!([{"type": "header", "text": {"type": "plain_text", "text": "h".repeat(151)}}])),
            ["must be less than 151 characters [json-pointer:/blocks/0/text/text]"]
        );
        assert_eq!(
            problems(json!([{"type": "header", "text": {"type": "mrkdwn", "text": "*h*"}}])),
            ["must be one of [plain_text] [json-pointer:/blocks/0/text/type]"]
        );
    }

    #[test]
    fn element_and_field_counts_are_limited() {
        let text = json!({"type": "mrkdwn", "text": "x"});
        let context = json!([{"type": "context", "elements": vec![text.clone(); 11]}]);
        assert_eq!(problems(context), ["no more than 10 items allowed [json-pointer:/blocks/0/elements]"]);
        let fields = json!([{"type": "section", "fields": vec![text.clone(); 11]}]);
        assert_eq!(problems(fields), ["no more than 10 items allowed [json-pointer:/blocks/0/fields]"]);
        let long_field = json!([{"type": "section", "fields": [{"type": "mrkdwn", "text": "f".repeat(2001)}]}]);
        assert_eq!(problems(long_field), ["must be less than 2001 characters [json-pointer:/blocks/0/fields/0/text]"]);
        let buttons: Vec<Value> = (0..26)
            .map(|i| json!({"type": "button", "action_id": format!("a{i}"), "text": {"type": "plain_text", "text": "b"}}))
            .collect();
        assert_eq!(
            problems(json!([{"type": "actions", "elements": buttons}])),
            ["no more than 25 items allowed [json-pointer:/blocks/0/elements]"]
        );
        assert_eq!(
            problems(json!([{"type": "actions", "elements": []}])),
            ["must contain at least 1 item [json-pointer:/blocks/0/elements]"]
        );
    }

    #[test]
    fn input_blocks_belong_in_modals_and_their_elements_are_checked() {
        let input = json!({"type": "input", "block_id": "reason", "label": {"type": "plain_text", "text": "Reason"},
            "element": {"type": "plain_text_input", "action_id": "value", "multiline": true}});
        assert_eq!(validate(&json!([input.clone()]), Surface::Modal, "/view/blocks"), Ok(()));
        assert_eq!(problems(json!([input])), ["input blocks are allowed in modals only [json-pointer:/blocks/0/type]"]);

        let modal = |element: Value| {
            validate(
                &json!([{"type": "input", "label": {"type": "plain_text", "text": "L"},
            "element": element}]),
                Surface::Modal,
                "/view/blocks",
            )
        };
        let option = |v: &str| json!({"text": {"type": "plain_text", "text": v}, "value": v});
        assert_eq!(
            modal(json!({"type": "static_select", "options": [option("a")], "initial_option": option("a")})),
            Ok(())
        );
        assert_eq!(
            modal(json!({"type": "static_select", "options": [option("a")], "initial_option": option("b")})),
            Err(BlocksError::Invalid(vec![
                "must match one of the provided options [json-pointer:/view/blocks/0/element/initial_option]".into()
            ]))
        );
        let long_value = json!({"text": {"type": "plain_text", "text": "a"}, "value": "v".repeat(151)});
        assert!(modal(json!({"type": "static_select", "options": [long_value]})).is_err());
        let many: Vec<Value> = (0..101).map(|i| option(&format!("o{i}"))).collect();
        assert!(modal(json!({"type": "static_select", "options": many})).is_err());
        assert!(modal(json!({"type": "datepicker", "initial_date": "2026-13-01"})).is_err());
        assert_eq!(modal(json!({"type": "datepicker", "initial_date": "2026-11-30"})), Ok(()));
        assert!(modal(json!({"type": "plain_text_input", "max_length": 3001})).is_err());
        assert!(modal(json!({"type": "button", "text": {"type": "plain_text", "text": "b"}})).is_err());
    }

    #[test]
    fn modal_views_are_checked_field_by_field() {
        let input = json!({"type": "input", "label": {"type": "plain_text", "text": "L"},
            "element": {"type": "plain_text_input", "action_id": "value"}});
        let good = json!({"type": "modal", "callback_id": "c", "title": {"type": "plain_text", "text": "Request a query"},
            "submit": {"type": "plain_text", "text": "Request"}, "blocks": [input]});
        assert_eq!(validate_view(&good, "/view"), Ok(()));
        let refused = |edit: &dyn Fn(&mut Value)| {
            let mut view = good.clone();
            edit(&mut view);
            match validate_view(&view, "/view") {
                Err(BlocksError::Invalid(problems)) => problems,
                other => panic!("{view} must be refused, got {other:?}"),
            }
        };
        assert_eq!(
            refused(&|v| v["title"]["text"] = json!("t".repeat(25))),
            ["must be less than 25 characters [json-pointer:/view/title/text]"]
        );
        assert_eq!(refused(&|v| v["type"] = json!("home")), ["must be one of [modal] [json-pointer:/view/type]"]);
        assert_eq!(
            refused(&|v| v["private_metadata"] = json!("m".repeat(3001))),
            ["must be less than 3001 characters [json-pointer:/view/private_metadata]"]
        );
        assert_eq!(
            refused(&|v| v["callback"] = json!("c")),
            ["invalid additional property: callback [json-pointer:/view]"]
        );
        assert_eq!(
            refused(&|v| {
                v.as_object_mut().unwrap().remove("submit");
            }),
            ["missing required field: submit (a modal with input blocks needs one) [json-pointer:/view]"]
        );
        assert_eq!(
            refused(&|v| v["close"] = json!({"type": "mrkdwn", "text": "x"})),
            ["must be one of [plain_text] [json-pointer:/view/close/type]"]
        );
    }
}
