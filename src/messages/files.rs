//! The full result as CSV and JSON files, written a row at a time from the delivered rows, so a large result is
//! never held in memory as text (see `result_rows`).

use std::io::{self, Write};

use serde_json::Value as Json;

use crate::result_rows::ResultRows;

/// Writes the full result as CSV: a header of `columns`, then a line per row. Cells that a spreadsheet would run
/// as a formula are prefixed with `'`.
pub fn write_results_csv(columns: &[String], rows: &ResultRows, mut out: impl Write) -> io::Result<()> {
    write_csv_line(&mut out, columns.iter().map(String::as_str))?;
    for row in rows.read() {
        let row = row?;
        let cells: Vec<String> = columns.iter().map(|c| row.get(c).map(json_cell).unwrap_or_default()).collect();
        write_csv_line(&mut out, cells.iter().map(String::as_str))?;
    }
    out.flush()
}

fn write_csv_line<'a>(out: &mut impl Write, fields: impl Iterator<Item = &'a str>) -> io::Result<()> {
    for (i, text) in fields.enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        let text =
            if text.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{text}") } else { text.to_owned() };
        if text.contains([',', '"', '\n', '\r']) {
            write!(out, "\"{}\"", text.replace('"', "\"\""))?;
        } else {
            out.write_all(text.as_bytes())?;
        }
    }
    out.write_all(b"\n")
}

/// A value as one table or CSV cell: the text of a string, the JSON of anything else, on one line. For every
/// [`crate::request::Value`] this is its `Display` (a test holds them together), so the inline table and the files
/// agree.
pub fn json_cell(value: &Json) -> String {
    let text = match value {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    };
    text.replace(['\n', '\r', '\t'], " ")
}

/// Writes the full result as a JSON array of one object per row, as delivered (masked values masked), laid out as
/// `serde_json`'s pretty printer lays out the whole array.
pub fn write_results_json(rows: &ResultRows, mut out: impl Write) -> io::Result<()> {
    out.write_all(b"[")?;
    let mut any = false;
    for row in rows.read() {
        let row = row?;
        out.write_all(if any { b",\n  " } else { b"\n  " })?;
        any = true;
        // Strings escape their line breaks, so every line break here is layout: indent it one level.
        let text = serde_json::to_string_pretty(&row).map_err(io::Error::other)?;
        out.write_all(text.replace('\n', "\n  ").as_bytes())?;
    }
    out.write_all(if any { b"\n]" } else { b"]" })?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::{Row, Value};
    use crate::result_rows::{ROWS_IN_MEMORY, RowsWriter};

    fn csv(columns: &[&str], rows: Vec<Row>) -> String {
        let columns: Vec<String> = columns.iter().map(|c| (*c).to_owned()).collect();
        let (rows, _) = RowsWriter::collect(rows).unwrap();
        let mut out = Vec::new();
        write_results_csv(&columns, &rows, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn csv_quotes_and_defuses_formulas() {
        let rows = vec![Row::from([
            ("a".to_owned(), Value::S("=HYPERLINK(\"x\")".into())),
            ("b".to_owned(), Value::S("one, two".into())),
        ])];
        assert_eq!(csv(&["a", "b"], rows), "a,b\n\"'=HYPERLINK(\"\"x\"\")\",\"one, two\"\n");
    }

    #[test]
    fn a_cell_from_the_json_is_the_values_display() {
        let values = [
            Value::S("plain \"quoted\"\nnext line".into()),
            Value::N("1.50".into()),
            Value::Bool(true),
            Value::Null,
            Value::Binary { len: 3 },
            Value::List(vec![Value::S("x".into()), Value::Null]),
            Value::Map([("k".to_owned(), Value::N("1".into()))].into()),
            Value::StringSet(vec!["a".into(), "b".into()]),
            Value::NumberSet(vec!["1".into()]),
            Value::BinarySet(vec![2, 4]),
            Value::Masked,
            Value::Unsupported,
        ];
        for value in values {
            let display = value.to_string().replace(['\n', '\r', '\t'], " ");
            assert_eq!(json_cell(&serde_json::to_value(&value).unwrap()), display, "{value:?}");
        }
    }

    #[test]
    fn the_json_file_is_the_pretty_array_of_the_rows_small_or_spilled() {
        for n in [0, 1, ROWS_IN_MEMORY + 5] {
            let all: Vec<Row> = (0..n)
                .map(|i| {
                    Row::from([
                        ("id".to_owned(), Value::N(i.to_string())),
                        ("tags".to_owned(), Value::List(vec![Value::S("a\nb".into())])),
                    ])
                })
                .collect();
            let (rows, _) = RowsWriter::collect(all.clone()).unwrap();
            let mut out = Vec::new();
            write_results_json(&rows, &mut out).unwrap();
            assert_eq!(String::from_utf8(out).unwrap(), serde_json::to_string_pretty(&all).unwrap(), "{n} rows");
        }
    }

    #[test]
    fn every_row_of_a_spilled_result_is_in_the_csv_in_order() {
        let all: Vec<Row> = (0..200).map(|i| Row::from([("id".to_owned(), Value::N(i.to_string()))])).collect();
        let text = csv(&["id", "missing"], all);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 201);
        assert_eq!(lines[0], "id,missing");
        assert_eq!(lines[200], "199,");
    }
}
