//! The error a runbook author sees: which file, which field, what is wrong, and how to fix it.

use std::fmt;

/// One mistake in one runbook file. Displays as `<file>: <field path>: <what is wrong> — <how to fix>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunbookError {
    /// The file name (or the directory, for problems with the directory itself).
    pub file: String,
    /// Where in the file, e.g. `parameters[1].pattern`, `key.sort.op`, or `line 4, column 3` for YAML syntax.
    pub field: String,
    pub problem: String,
    pub fix: String,
}

impl RunbookError {
    pub(super) fn new(
        file: impl Into<String>,
        field: impl Into<String>,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) -> RunbookError {
        RunbookError { file: file.into(), field: field.into(), problem: problem.into(), fix: fix.into() }
    }
}

impl fmt::Display for RunbookError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {} — {}", self.file, self.field, self.problem, self.fix)
    }
}

impl std::error::Error for RunbookError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_file_field_problem_and_fix() {
        let e = RunbookError::new("a.yaml", "max_items", "max_items is 0", "use a cap from 1 to 10000");
        assert_eq!(e.to_string(), "a.yaml: max_items: max_items is 0 — use a cap from 1 to 10000");
    }
}
