//! Loading the runbook directory into a [`RunbookSet`]: the only file I/O in the runbook module.
//!
//! Every `*.yaml`/`*.yml` file is parsed and validated and all errors across all files are returned together, so
//! a broken set of runbooks is fixed in one round, and jitgate refuses to start on any error (fail closed: a
//! half-loaded set would silently drop a runbook people rely on).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::error::RunbookError;
use super::model::Runbook;
use super::similar::closest;
use super::validate::{RunbookDefaults, file_label, parse_runbook};
use crate::ids::RunbookId;

/// All loaded runbooks, by id.
#[derive(Debug, Clone, Default)]
pub struct RunbookSet {
    runbooks: BTreeMap<RunbookId, Runbook>,
}

impl RunbookSet {
    /// Loads and validates every runbook file in `dir` (not recursive; other files are ignored).
    pub fn load_dir(dir: &Path, defaults: &RunbookDefaults) -> Result<RunbookSet, Vec<RunbookError>> {
        let dir_label = dir.display().to_string();
        let entries = std::fs::read_dir(dir).map_err(|e| {
            vec![RunbookError::new(
                &dir_label,
                "(directory)",
                format!("cannot read the runbook directory: {e}"),
                "check the `runbooks` path in the configuration",
            )]
        })?;
        let mut files: Vec<PathBuf> = Vec::new();
        let mut errors = Vec::new();
        for entry in entries {
            match entry {
                Ok(entry) => {
                    let path = entry.path();
                    if is_runbook_file(&path) {
                        files.push(path);
                    }
                }
                Err(e) => errors.push(RunbookError::new(
                    &dir_label,
                    "(directory)",
                    format!("cannot list the runbook directory: {e}"),
                    "check the directory's permissions",
                )),
            }
        }
        // Sorted so errors and duplicate reports come out in a stable order.
        files.sort();
        let mut parsed = Vec::new();
        for file in &files {
            match std::fs::read_to_string(file) {
                Ok(text) => parsed.push((file.as_path(), text)),
                Err(e) => errors.push(RunbookError::new(
                    file_label(file),
                    "(file)",
                    format!("cannot read the file: {e}"),
                    "make sure it is a readable UTF-8 text file",
                )),
            }
        }
        let set = RunbookSet::from_sources(parsed.iter().map(|(f, t)| (*f, t.as_str())), defaults);
        match set {
            Ok(set) if errors.is_empty() => {
                if set.is_empty() {
                    return Err(vec![RunbookError::new(
                        dir_label,
                        "(directory)",
                        "no runbooks found (no *.yaml files)",
                        "add at least one runbook file, see docs/runbooks.md",
                    )]);
                }
                Ok(set)
            }
            Ok(_) => Err(errors),
            Err(more) => {
                errors.extend(more);
                Err(errors)
            }
        }
    }

    /// Builds a set from `(file path, YAML text)` pairs, e.g. runbooks embedded in tests. The path is used in
    /// messages and must match the runbook id (`<id>.yaml`).
    pub fn from_sources<'a>(
        sources: impl IntoIterator<Item = (&'a Path, &'a str)>,
        defaults: &RunbookDefaults,
    ) -> Result<RunbookSet, Vec<RunbookError>> {
        let mut runbooks: BTreeMap<RunbookId, Runbook> = BTreeMap::new();
        let mut errors = Vec::new();
        for (file, text) in sources {
            match parse_runbook(file, text, defaults) {
                Ok(runbook) => {
                    if let Some(first) = runbooks.get(&runbook.id) {
                        errors.push(RunbookError::new(
                            file_label(file),
                            "id",
                            format!("the id `{}` is already used by {}", runbook.id, file_label(&first.file)),
                            "give each runbook its own id, or delete one of the two files",
                        ));
                    } else {
                        runbooks.insert(runbook.id.clone(), runbook);
                    }
                }
                Err(e) => errors.extend(e),
            }
        }
        if errors.is_empty() { Ok(RunbookSet { runbooks }) } else { Err(errors) }
    }

    pub fn get(&self, id: &RunbookId) -> Option<&Runbook> {
        self.runbooks.get(id)
    }

    /// All runbooks, ordered by id.
    pub fn iter(&self) -> impl Iterator<Item = &Runbook> {
        self.runbooks.values()
    }

    pub fn len(&self) -> usize {
        self.runbooks.len()
    }

    pub fn is_empty(&self) -> bool {
        self.runbooks.is_empty()
    }

    /// The id closest to what the user typed, for "did you mean …?". `None` when nothing is plausibly meant.
    pub fn suggest(&self, typed: &str) -> Option<RunbookId> {
        let found = closest(typed, self.runbooks.keys().map(RunbookId::as_str))?;
        RunbookId::parse(found)
    }
}

/// `*.yaml` or `*.yml`, not hidden (editor swap and backup files stay out).
fn is_runbook_file(path: &Path) -> bool {
    let hidden = path.file_name().and_then(|n| n.to_str()).is_none_or(|n| n.starts_with('.'));
    let yaml = matches!(path.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"));
    path.is_file() && yaml && !hidden
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_visible_yaml_files_are_runbooks() {
        let dir = tempfile::tempdir().expect("temp dir");
        for name in ["a.yaml", "b.yml", ".c.yaml", "README.md", "d.yaml.bak", "e.YAML"] {
            std::fs::write(dir.path().join(name), "").expect("write");
        }
        std::fs::create_dir(dir.path().join("f.yaml")).expect("dir");
        let mut found: Vec<String> = std::fs::read_dir(dir.path())
            .expect("list")
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| is_runbook_file(p))
            .map(|p| file_label(&p))
            .collect();
        found.sort();
        assert_eq!(found, ["a.yaml", "b.yml"]);
    }

    #[test]
    fn an_empty_set_suggests_nothing() {
        assert_eq!(RunbookSet::default().suggest("orders"), None);
    }

    #[test]
    fn a_missing_directory_is_reported_with_its_path() {
        let errors = RunbookSet::load_dir(Path::new("/nonexistent/runbooks"), &RunbookDefaults::default())
            .expect_err("missing dir");
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].to_string().starts_with("/nonexistent/runbooks: (directory): cannot read the runbook directory")
        );
    }
}
