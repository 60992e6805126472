//! The rows one run delivered, without holding them all in memory.
//!
//! A `Scan` may deliver up to 10,000 items of up to 400 KB each, and jitgate runs in a container with a 256 MiB
//! limit. So rows stream through a [`RowsWriter`] as the DynamoDB pages arrive: the first [`ROWS_IN_MEMORY`] are
//! kept (the inline table shows no more), the count, the attribute names and the SHA-256 of the canonical JSON
//! are computed on the way, and once there are more rows than that every row goes, as one line of canonical JSON,
//! to an unlinked temporary file. The CSV and JSON files for Slack are later rendered from that file a row at a
//! time, so the rows, the CSV and the JSON are never in memory together, whatever the result's size.
//!
//! The temporary file lives in `TMPDIR` (else `/tmp`), is created already unlinked (`O_TMPFILE` where the file
//! system has it, else removed at once), so no other process can open it by name and the kernel frees it when
//! the last handle closes — also when jitgate crashes. It holds masked rows only, as delivered to Slack.
//!
//! The canonical JSON is the one the audit trail's `result_sha256` covers: compact, attributes in name order. A
//! line per row is the same text as that row inside the array, so the hash of `[line1,line2,…]` computed while
//! writing is the hash of the delivered result.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Seek, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Map, Value as Json};
use sha2::{Digest, Sha256};

use crate::request::Row;

/// How many rows stay in memory: enough for the inline table of a Slack message.
pub const ROWS_IN_MEMORY: usize = 20;

/// One delivered row as JSON: attribute name → value, in name order.
pub type JsonRow = Map<String, Json>;

/// The rows of one run: the first few in memory, all of them (when there are more) in an unlinked temporary file.
///
/// Cloning shares the file; it is closed, and its space freed, when the last clone is dropped.
#[derive(Clone)]
pub struct ResultRows {
    first: Vec<Row>,
    len: usize,
    attributes: Vec<String>,
    spill: Option<Spill>,
}

/// The temporary file and how many bytes of it are rows.
#[derive(Clone)]
struct Spill {
    file: Arc<File>,
    len: u64,
}

impl ResultRows {
    /// No rows.
    pub fn empty() -> Self {
        ResultRows { first: Vec::new(), len: 0, attributes: Vec::new(), spill: None }
    }

    /// How many rows were delivered.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The first rows, at most [`ROWS_IN_MEMORY`] of them (all of them when there are no more).
    pub fn first(&self) -> &[Row] {
        &self.first
    }

    /// Every attribute name seen in any row, sorted.
    pub fn attributes(&self) -> &[String] {
        &self.attributes
    }

    /// Every row, in delivery order, as JSON read back one at a time.
    pub fn read(&self) -> RowsReader {
        match &self.spill {
            Some(spill) => {
                RowsReader::Spilled(BufReader::new(ReadAt { file: Arc::clone(&spill.file), offset: 0, end: spill.len }))
            }
            None => RowsReader::InMemory(self.first.clone().into_iter()),
        }
    }

    /// Every row as one JSON array. Reads them all into memory: for small results and tests.
    pub fn to_json(&self) -> io::Result<Json> {
        self.read().map(|row| row.map(Json::Object)).collect::<io::Result<Vec<_>>>().map(Json::Array)
    }
}

/// Rows read back in delivery order.
pub enum RowsReader {
    InMemory(std::vec::IntoIter<Row>),
    Spilled(BufReader<ReadAt>),
}

impl Iterator for RowsReader {
    type Item = io::Result<JsonRow>;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            RowsReader::InMemory(rows) => rows.next().map(|row| Ok(json_row(&row))),
            RowsReader::Spilled(lines) => {
                let mut line = String::new();
                match lines.read_line(&mut line) {
                    Ok(0) => None,
                    Ok(_) => Some(serde_json::from_str(line.trim_end_matches('\n')).map_err(io::Error::other)),
                    Err(err) => Some(Err(err)),
                }
            }
        }
    }
}

/// A row as JSON. Rows are string-keyed maps of strings, booleans, nulls and containers of them: encoding
/// cannot fail.
fn json_row(row: &Row) -> JsonRow {
    match serde_json::to_value(row).expect("a row serializes to JSON") {
        Json::Object(map) => map,
        _ => unreachable!("a row is a map"),
    }
}

/// Reads a file from an offset of its own, so clones of [`ResultRows`] can read it at the same time.
pub struct ReadAt {
    file: Arc<File>,
    offset: u64,
    end: u64,
}

impl Read for ReadAt {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = usize::try_from(self.end - self.offset).unwrap_or(usize::MAX);
        let want = buf.len().min(left);
        if want == 0 {
            return Ok(0);
        }
        let read = self.file.read_at(&mut buf[..want], self.offset)?;
        self.offset += read as u64;
        Ok(read)
    }
}

/// Refuses a temporary directory jitgate cannot write, at start-up, rather than failing the first large result
/// after its query ran.
pub fn check_temp_dir() -> anyhow::Result<()> {
    let dir = std::env::temp_dir();
    tempfile::tempfile_in(&dir).and_then(|mut file| file.write_all(b"jitgate")).map_err(|err| {
        anyhow::anyhow!(
            "large query results wait in a temporary file in {} until they are delivered, but it cannot be \
             written: {err}. Set TMPDIR to a writable directory (in Kubernetes, mount an emptyDir at /tmp)",
            dir.display()
        )
    })
}

/// Runs `write` into a new unlinked temporary file, for a file rendered from the rows to be uploaded from disk:
/// the file, rewound to its start, and its length. Blocking file I/O.
pub fn write_temp_file(write: impl FnOnce(&mut BufWriter<File>) -> io::Result<()>) -> io::Result<(File, u64)> {
    let mut out = BufWriter::new(tempfile::tempfile()?);
    write(&mut out)?;
    let mut file = out.into_inner().map_err(|e| e.into_error())?;
    let len = file.stream_position()?;
    file.rewind()?;
    Ok((file, len))
}

/// Gives the memory freed after a large result back to the operating system.
///
/// glibc's allocator keeps freed memory in its per-thread arenas for reuse: after one 10,000-row result the idle
/// process stayed 8–9 MB larger (`BENCHMARKS.md`, memory), which a container's working set, and its memory limit,
/// count. `malloc_trim` returns the free pages at the cost of a walk over the arenas, about a millisecond; it is
/// called once per large result, never per row. Other C libraries (musl) keep no such arenas: nothing to do there.
pub fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes no pointers and is thread-safe (it locks each arena it trims); 0 asks to keep no
    // padding at the top of the heap.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Takes the rows of a run as they arrive. Blocking file I/O: call it off the async runtime's workers.
pub struct RowsWriter {
    dir: PathBuf,
    first: Vec<Row>,
    len: usize,
    attributes: BTreeSet<String>,
    hash: Sha256,
    spill: Option<BufWriter<File>>,
    line: Vec<u8>,
}

impl Default for RowsWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl RowsWriter {
    /// A writer that spills to the temporary directory (`TMPDIR`, else `/tmp`).
    pub fn new() -> Self {
        Self::in_dir(&std::env::temp_dir())
    }

    /// A writer that spills to `dir`.
    pub fn in_dir(dir: &Path) -> Self {
        let mut hash = Sha256::new();
        hash.update(b"[");
        RowsWriter {
            dir: dir.to_owned(),
            first: Vec::new(),
            len: 0,
            attributes: BTreeSet::new(),
            hash,
            spill: None,
            line: Vec::new(),
        }
    }

    /// All of `rows`, written and finished: the rows and their SHA-256.
    pub fn collect(rows: impl IntoIterator<Item = Row>) -> io::Result<(ResultRows, String)> {
        let mut writer = RowsWriter::new();
        for row in rows {
            writer.push(row)?;
        }
        writer.finish()
    }

    /// How many rows so far.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// One more row.
    pub fn push(&mut self, row: Row) -> io::Result<()> {
        self.line.clear();
        serde_json::to_writer(&mut self.line, &row).map_err(io::Error::other)?;
        if self.len > 0 {
            self.hash.update(b",");
        }
        self.hash.update(&self.line);
        for name in row.keys() {
            if !self.attributes.contains(name) {
                self.attributes.insert(name.clone());
            }
        }
        self.len += 1;
        if self.first.len() < ROWS_IN_MEMORY {
            self.first.push(row);
        } else if self.spill.is_none() {
            // The first row beyond what memory keeps: from now on every row is in the file, the kept ones first.
            let mut file = BufWriter::new(tempfile::tempfile_in(&self.dir)?);
            for kept in &self.first {
                serde_json::to_writer(&mut file, kept).map_err(io::Error::other)?;
                file.write_all(b"\n")?;
            }
            self.spill = Some(file);
        }
        if let Some(file) = &mut self.spill {
            file.write_all(&self.line)?;
            file.write_all(b"\n")?;
        }
        Ok(())
    }

    /// The rows and the SHA-256 (hex) of their canonical JSON array.
    pub fn finish(mut self) -> io::Result<(ResultRows, String)> {
        self.hash.update(b"]");
        let spill = match self.spill {
            Some(file) => {
                let mut file = file.into_inner().map_err(|e| e.into_error())?;
                let len = file.stream_position()?;
                Some(Spill { file: Arc::new(file), len })
            }
            None => None,
        };
        let rows =
            ResultRows { first: self.first, len: self.len, attributes: self.attributes.into_iter().collect(), spill };
        Ok((rows, hex::encode(self.hash.finalize())))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::request::Value;
    use crate::request::result::result_sha256;

    fn row(i: usize) -> Row {
        let mut row = BTreeMap::new();
        row.insert("id".to_owned(), Value::N(i.to_string()));
        row.insert(format!("extra{}", i % 3), Value::S(format!("line\nbreak \"{i}\"")));
        row
    }

    fn rows(n: usize) -> Vec<Row> {
        (0..n).map(row).collect()
    }

    #[test]
    fn a_small_result_stays_in_memory_and_a_large_one_is_read_back_whole_and_in_order() {
        for n in [0, 1, ROWS_IN_MEMORY, ROWS_IN_MEMORY + 1, 1000] {
            let all = rows(n);
            let (delivered, sha) = RowsWriter::collect(all.clone()).unwrap();
            assert_eq!(delivered.len(), n);
            assert_eq!(delivered.spill.is_some(), n > ROWS_IN_MEMORY, "{n} rows");
            assert_eq!(delivered.first(), &all[..n.min(ROWS_IN_MEMORY)]);
            assert_eq!(delivered.to_json().unwrap(), serde_json::to_value(&all).unwrap(), "{n} rows");
            assert_eq!(sha, result_sha256(&all), "the hash of the canonical array of {n} rows");
        }
    }

    #[test]
    fn a_directory_that_cannot_be_written_fails_the_first_row_beyond_memory_not_before() {
        let mut writer = RowsWriter::in_dir(Path::new("/nonexistent/jitgate-spill"));
        for i in 0..ROWS_IN_MEMORY {
            writer.push(row(i)).expect("kept in memory");
        }
        assert!(writer.push(row(ROWS_IN_MEMORY)).is_err());
    }

    #[test]
    fn attributes_are_every_name_seen_sorted() {
        let (delivered, _) = RowsWriter::collect(rows(50)).unwrap();
        assert_eq!(delivered.attributes(), ["extra0", "extra1", "extra2", "id"]);
    }

    #[test]
    fn clones_read_the_same_file_independently() {
        let (delivered, _) = RowsWriter::collect(rows(100)).unwrap();
        let copy = delivered.clone();
        let mut a = delivered.read();
        let mut b = copy.read();
        assert_eq!(a.next().unwrap().unwrap(), b.next().unwrap().unwrap());
        assert_eq!(a.count() + 1, 100);
        assert_eq!(b.count() + 1, 100);
    }

    #[test]
    fn a_temporary_file_comes_back_rewound_with_its_length() {
        let (mut file, len) = write_temp_file(|out| out.write_all(b"a,b\n1,2\n")).unwrap();
        let mut text = String::new();
        file.read_to_string(&mut text).unwrap();
        assert_eq!((text.as_str(), len), ("a,b\n1,2\n", 8));
    }
}
