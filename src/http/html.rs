//! HTML building blocks for the server's pages: escaping and the page shell with its inline style sheet.
//!
//! Every piece of dynamic text goes through [`esc`]; pages are plain server-rendered HTML with no JavaScript, and
//! the server's Content-Security-Policy forbids scripts outright (see `super::security_headers`).

use std::fmt;

/// Text escaped for HTML element content and double- or single-quoted attribute values.
pub struct Escaped<'a>(pub &'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        while let Some(at) = rest.find(['&', '<', '>', '"', '\'']) {
            f.write_str(&rest[..at])?;
            f.write_str(match rest.as_bytes()[at] {
                b'&' => "&amp;",
                b'<' => "&lt;",
                b'>' => "&gt;",
                b'"' => "&quot;",
                _ => "&#39;",
            })?;
            rest = &rest[at + 1..];
        }
        f.write_str(rest)
    }
}

/// Escapes `text` for HTML: `format!("<td>{}</td>", esc(&reason))`.
pub fn esc(text: &str) -> Escaped<'_> {
    Escaped(text)
}

/// A complete page: `title` is plain text (escaped here); `body` is HTML built with [`esc`].
pub fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"referrer\" content=\"no-referrer\">\
         <title>{}</title><style>{STYLE}</style></head>\n<body><main>\n{body}\n</main></body></html>\n",
        esc(title)
    )
}

/// One inline style sheet for every page: readable type, quiet colours, tables that wrap long hashes.
const STYLE: &str = "\
:root{--fg:#1f2328;--muted:#59636e;--line:#d1d9e0;--bg:#f6f8fa;--ok:#1a7f37;--bad:#cf222e;--warn:#9a6700}\
*{box-sizing:border-box}\
body{margin:0;background:var(--bg);color:var(--fg);font:15px/1.5 -apple-system,BlinkMacSystemFont,'Segoe UI',\
Helvetica,Arial,sans-serif}\
main{max-width:980px;margin:0 auto;padding:24px 16px 48px}\
h1{font-size:24px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px}h3{font-size:15px;margin:0 0 6px}\
p{margin:6px 0}.muted{color:var(--muted)}\
section.card,article{background:#fff;border:1px solid var(--line);border-radius:8px;padding:14px 16px;margin:10px 0}\
table{border-collapse:collapse;width:100%}\
th,td{text-align:left;vertical-align:top;padding:4px 8px;border-top:1px solid var(--line)}\
tr:first-child th,tr:first-child td{border-top:none}\
th{width:210px;color:var(--muted);font-weight:600}\
code,pre,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:13px}\
td.mono,code{overflow-wrap:anywhere}\
pre{background:var(--bg);border:1px solid var(--line);border-radius:6px;padding:10px;overflow-x:auto;\
white-space:pre-wrap;overflow-wrap:anywhere;margin:6px 0}\
.badge{display:inline-block;border-radius:999px;padding:1px 10px;font-size:13px;font-weight:600;color:#fff}\
.ok{background:var(--ok)}.bad{background:var(--bad)}.warn{background:var(--warn)}\
.check{border-left:4px solid var(--ok)}.check.broken{border-left-color:var(--bad)}\
article.broken{border-color:var(--bad)}\
a{color:#0969da}\
";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_characters_are_escaped() {
        assert_eq!(
            esc(r#"<script>alert("x") & 'y'</script>"#).to_string(),
            "&lt;script&gt;alert(&quot;x&quot;) &amp; &#39;y&#39;&lt;/script&gt;"
        );
        assert_eq!(esc("plain — ünïcode").to_string(), "plain — ünïcode");
        assert_eq!(esc("").to_string(), "");
    }

    #[test]
    fn the_title_is_escaped_too() {
        let html = page("<b>", "<p>body</p>");
        assert!(html.contains("<title>&lt;b&gt;</title>"), "{html}");
        assert!(!html.contains("<script"), "pages carry no script");
    }
}
