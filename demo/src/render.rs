//! Slack messages as plain text lines for the demo's transcript: Block Kit blocks become lines, mrkdwn's
//! `<@U…>`, `<#C…|name>`, `<!date^…|fallback>` and `<url|label>` become what a person sees in the Slack client, and
//! code blocks become indented lines. Pure functions, unit-tested below.

use std::collections::BTreeMap;

use serde_json::Value;

/// Display names of users and channels by id, for `<@U…>` and `<#C…>`.
#[derive(Debug, Clone, Default)]
pub struct Names {
    pub users: BTreeMap<String, String>,
    pub channels: BTreeMap<String, String>,
}

impl Names {
    /// `@name` of a user id (the id itself when unknown, as Slack shows a user it cannot resolve).
    pub fn user(&self, id: &str) -> String {
        format!("@{}", self.users.get(id).map(String::as_str).unwrap_or(id))
    }

    /// `#name` of a channel id.
    pub fn channel(&self, id: &str) -> String {
        format!("#{}", self.channels.get(id).map(String::as_str).unwrap_or(id))
    }
}

/// A message's lines: its blocks when it has any (Slack shows those, not `text`), else its `text`.
pub fn message_lines(text: Option<&str>, blocks: Option<&Value>, names: &Names) -> Vec<String> {
    match blocks.and_then(Value::as_array).filter(|b| !b.is_empty()) {
        Some(blocks) => blocks.iter().flat_map(|block| block_lines(block, names)).collect(),
        None => mrkdwn_lines(text.unwrap_or_default(), names),
    }
}

/// One block's lines. Block types the demo never meets are named, not dropped, so nothing disappears silently.
fn block_lines(block: &Value, names: &Names) -> Vec<String> {
    let kind = block.get("type").and_then(Value::as_str).unwrap_or_default();
    match kind {
        "header" => vec![format!("▌{}", text_object(block.get("text"), names))],
        "section" => {
            let mut lines = block.get("text").map(|t| text_object_lines(t, names)).unwrap_or_default();
            for field in block.get("fields").and_then(Value::as_array).into_iter().flatten() {
                lines.extend(text_object_lines(field, names));
            }
            if let Some(accessory) = block.get("accessory") {
                lines.push(element(accessory, names));
            }
            lines
        }
        "context" => {
            let parts: Vec<String> = elements(block).map(|e| element(e, names)).collect();
            vec![parts.join(" · ")]
        }
        "actions" => {
            let parts: Vec<String> = elements(block).map(|e| element(e, names)).collect();
            vec![parts.join(" ")]
        }
        "divider" => vec!["────".to_owned()],
        other => vec![format!("({other} block)")],
    }
}

fn elements(block: &Value) -> impl Iterator<Item = &Value> {
    block.get("elements").and_then(Value::as_array).into_iter().flatten()
}

/// An element of a context or actions block: its text, or a button as `[label]`.
fn element(element: &Value, names: &Names) -> String {
    match element.get("type").and_then(Value::as_str).unwrap_or_default() {
        "mrkdwn" | "plain_text" => text_object(Some(element), names),
        "button" => format!("[{}]", text_object(element.get("text"), names)),
        "image" => element.get("alt_text").and_then(Value::as_str).unwrap_or("image").to_owned(),
        other => format!("[{other}]"),
    }
}

/// A text object on one line.
fn text_object(text: Option<&Value>, names: &Names) -> String {
    text.map(|t| text_object_lines(t, names).join(" ")).unwrap_or_default()
}

fn text_object_lines(text: &Value, names: &Names) -> Vec<String> {
    let body = text.get("text").and_then(Value::as_str).unwrap_or_default();
    match text.get("type").and_then(Value::as_str) {
        Some("plain_text") => body.lines().map(str::to_owned).collect(),
        _ => mrkdwn_lines(body, names),
    }
}

/// mrkdwn as lines: special tokens resolved, `&lt;` `&gt;` `&amp;` unescaped, and each line of a ``` code block
/// indented by four spaces instead of fenced.
pub fn mrkdwn_lines(text: &str, names: &Names) -> Vec<String> {
    let resolved = resolve_tokens(text, names);
    let mut lines = Vec::new();
    for (n, part) in resolved.split("```").enumerate() {
        let in_code = n % 2 == 1;
        let part = if in_code { part.trim_matches('\n') } else { part };
        for line in part.lines() {
            if in_code {
                lines.push(format!("    {line}"));
            } else if !line.trim().is_empty() {
                lines.push(line.to_owned());
            }
        }
    }
    lines
}

/// Replaces every `<…>` token with what Slack renders for it, and unescapes the text around them.
fn resolve_tokens(text: &str, names: &Names) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(open) = rest.find('<') {
        let Some(close) = rest[open..].find('>') else { break };
        out.push_str(&unescape(&rest[..open]));
        out.push_str(&token(&rest[open + 1..open + close], names));
        rest = &rest[open + close + 1..];
    }
    out.push_str(&unescape(rest));
    out
}

fn token(inner: &str, names: &Names) -> String {
    let (target, label) = match inner.split_once('|') {
        Some((target, label)) => (target, Some(unescape(label))),
        None => (inner, None),
    };
    if let Some(user) = target.strip_prefix('@') {
        return names.users.get(user).map(|n| format!("@{n}")).or(label).unwrap_or_else(|| names.user(user));
    }
    if let Some(channel) = target.strip_prefix('#') {
        return label.map(|l| format!("#{l}")).unwrap_or_else(|| names.channel(channel));
    }
    if let Some(special) = target.strip_prefix('!') {
        // `<!date^…^format|fallback>`, `<!subteam^…|@team>`: the fallback is what a client without the data shows.
        return label.unwrap_or_else(|| format!("@{special}"));
    }
    let url = unescape(target);
    match label {
        Some(label) if label != url => format!("{label} ({url})"),
        _ => url,
    }
}

fn unescape(text: &str) -> String {
    text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn names() -> Names {
        Names {
            users: BTreeMap::from([("U0ALICE".into(), "alice".into()), ("U0BOB".into(), "bob".into())]),
            channels: BTreeMap::from([("C0ONCALL".into(), "oncall".into())]),
        }
    }

    #[test]
    fn mrkdwn_tokens_read_as_slack_shows_them() {
        let text = "<@U0ALICE> asks <@U0BOB> in <#C0ONCALL> and <#C0OTHER|general>; expires \
                    <!date^1795897044^{date_short_pretty} {time}|2026-11-28 20:17 UTC>; \
                    <https://x.test/a?b=1&amp;c=2|Audit trail> <https://y.test> <@U0NOBODY> a &lt; b &amp;&amp; c &gt; d";
        assert_eq!(
            mrkdwn_lines(text, &names()),
            ["@alice asks @bob in #oncall and #general; expires 2026-11-28 20:17 UTC; \
              Audit trail (https://x.test/a?b=1&c=2) https://y.test @U0NOBODY a < b && c > d"]
        );
        assert_eq!(mrkdwn_lines("unclosed <@U0BOB", &names()), ["unclosed <@U0BOB"]);
    }

    #[test]
    fn code_blocks_become_indented_lines() {
        let text = "*2 rows* from x\n```a  b\n1  2```\nafter";
        assert_eq!(mrkdwn_lines(text, &names()), ["*2 rows* from x", "    a  b", "    1  2", "after"]);
    }

    #[test]
    fn blocks_become_lines_and_buttons_show_their_labels() {
        let blocks = json!([
            {"type": "header", "text": {"type": "plain_text", "text": "JIT-1 · runbook"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": "<@U0ALICE> asks\n*Reason:* x"},
             "fields": [{"type": "mrkdwn", "text": "*a* 1"}]},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": "one"}, {"type": "plain_text", "text": "two"}]},
            {"type": "actions", "elements": [
                {"type": "button", "action_id": "a", "text": {"type": "plain_text", "text": "Approve"}},
                {"type": "button", "action_id": "d", "text": {"type": "plain_text", "text": "Deny"}}]},
            {"type": "divider"},
            {"type": "video"},
        ]);
        assert_eq!(
            message_lines(Some("fallback"), Some(&blocks), &names()),
            [
                "▌JIT-1 · runbook",
                "@alice asks",
                "*Reason:* x",
                "*a* 1",
                "one · two",
                "[Approve] [Deny]",
                "────",
                "(video block)"
            ]
        );
        assert_eq!(message_lines(Some("just <@U0BOB>"), None, &names()), ["just @bob"]);
        assert_eq!(message_lines(Some("text"), Some(&json!([])), &names()), ["text"]);
    }
}
