//! Secrets mounted as files: every secret variable `NAME` may instead be given as `NAME_FILE`, the path of a file
//! holding the value, as Kubernetes, Docker and Nomad mount secrets.
//!
//! The files are read once, when `main` takes its snapshot of the environment ([`Environment::with_secret_files`]),
//! and their values put in the snapshot under `NAME`: everything after (`Secrets::from_env`, `jitgate check
//! --secrets`, `jitgate run`) sees one variable and never knows where it came from.
//!
//! Refused, naming the variable and the path but never a byte of the file: both `NAME` and `NAME_FILE` set (which
//! one wins would be a guess), a file that cannot be read, and an empty file. One trailing newline (`\n` or `\r\n`,
//! as `echo` and editors leave it) is trimmed: it is never part of a token, and a Redis URL or HMAC key with it
//! would silently be another value.

use std::path::Path;

use super::{EnvError, Environment};

/// The variables that hold secrets, each also accepted as `<NAME>_FILE`.
pub const SECRET_VARIABLES: [&str; 5] =
    ["SLACK_APP_TOKEN", "SLACK_BOT_TOKEN", crate::links::LINK_SECRET_ENV, "PAGERDUTY_API_TOKEN", "REDIS_URL"];

/// The suffix naming a secret's file variable.
pub const FILE_SUFFIX: &str = "_FILE";

impl Environment {
    /// This snapshot with every `NAME_FILE` of [`SECRET_VARIABLES`] replaced by `NAME` holding the file's content.
    /// Every problem is reported, not only the first.
    pub fn with_secret_files(&self) -> Result<Environment, Vec<EnvError>> {
        self.with_secret_files_read_by(|path| std::fs::read_to_string(path))
    }

    /// [`Environment::with_secret_files`] with the file reading passed in (tests pass failing readers).
    pub fn with_secret_files_read_by(
        &self,
        read: impl Fn(&Path) -> std::io::Result<String>,
    ) -> Result<Environment, Vec<EnvError>> {
        let mut resolved = self.clone();
        let mut errors = Vec::new();
        for name in SECRET_VARIABLES {
            let file_variable = format!("{name}{FILE_SUFFIX}");
            let Some(path) = self.get(&file_variable) else { continue };
            let problem = |problem: String, fix: &str| EnvError {
                variable: name,
                message: format!("{file_variable} ({path}) {problem} — {fix}"),
            };
            if self.get(name).is_some() {
                errors.push(problem(
                    format!("is set, and so is {name}"),
                    &format!(
                        "set only one: {name} with the value, or {file_variable} with the path of a file holding it"
                    ),
                ));
                continue;
            }
            match read(Path::new(path)) {
                // The I/O error says why (missing, permissions, a folder, not UTF-8); it never holds the content.
                Err(err) => errors.push(problem(
                    format!("cannot be read: {err}"),
                    "mount the secret at that path, readable by jitgate's user, or correct the path",
                )),
                Ok(content) => {
                    let value = trim_one_newline(&content);
                    if value.trim().is_empty() {
                        errors.push(problem("is empty".to_owned(), "put the secret's value in the file"));
                    } else {
                        resolved.0.insert(name.to_owned(), value.to_owned());
                    }
                }
            }
        }
        if errors.is_empty() { Ok(resolved) } else { Err(errors) }
    }
}

/// `text` without one trailing `\n` or `\r\n`.
fn trim_one_newline(text: &str) -> &str {
    text.strip_suffix("\r\n").or_else(|| text.strip_suffix('\n')).unwrap_or(text)
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;
    use crate::config::Secrets;
    use secrecy::ExposeSecret as _;

    fn file_with(content: &str) -> tempfile::NamedTempFile {
        let mut file = tempfile::NamedTempFile::new().expect("temp file");
        file.write_all(content.as_bytes()).expect("write");
        file
    }

    #[test]
    fn every_secret_is_read_from_its_file_without_the_trailing_newline() {
        let files: Vec<_> = ["xapp-1-A0-1\n", "xoxb-1\r\n", &format!("{}\n", "k".repeat(64)), "pd", "redis://r:6379\n"]
            .into_iter()
            .map(file_with)
            .collect();
        let names: Vec<String> = SECRET_VARIABLES.iter().map(|n| format!("{n}{FILE_SUFFIX}")).collect();
        let paths: Vec<String> = files.iter().map(|f| f.path().display().to_string()).collect();
        let env = Environment::from_pairs(names.iter().map(String::as_str).zip(paths.iter().map(String::as_str)));
        let secrets = Secrets::from_env(&env.with_secret_files().expect("all readable"));
        let ready = secrets.require_for_run(true).expect("complete");
        assert_eq!(ready.slack_app_token.expose_secret(), "xapp-1-A0-1");
        assert_eq!(ready.slack_bot_token.expose_secret(), "xoxb-1", "\\r\\n trimmed too");
        assert_eq!(ready.link_secret.expose_secret(), "k".repeat(64));
        assert_eq!(secrets.pagerduty_token.as_ref().map(|t| t.expose_secret()), Some("pd"));
        assert_eq!(secrets.redis_url.expose_secret(), "redis://r:6379");
    }

    #[test]
    fn only_one_trailing_newline_is_trimmed() {
        assert_eq!(trim_one_newline("a\n\n"), "a\n");
        assert_eq!(trim_one_newline("a b"), "a b");
    }

    #[test]
    fn both_set_is_refused_naming_both_and_neither_value() {
        let file = file_with("xoxb-from-file");
        let path = file.path().display().to_string();
        let env = Environment::from_pairs([("SLACK_BOT_TOKEN", "xoxb-from-env"), ("SLACK_BOT_TOKEN_FILE", &path)]);
        let errors = env.with_secret_files().unwrap_err();
        assert_eq!(errors.len(), 1, "{errors:?}");
        let text = errors[0].to_string();
        assert_eq!(errors[0].variable, "SLACK_BOT_TOKEN");
        assert!(
            text.starts_with(&format!("SLACK_BOT_TOKEN_FILE ({path}) is set, and so is SLACK_BOT_TOKEN")),
            "{text}"
        );
        assert!(!text.contains("from-file") && !text.contains("from-env"), "{text}");
    }

    #[test]
    fn unreadable_and_empty_files_name_the_variable_and_path_only() {
        let empty = file_with("\n");
        let empty_path = empty.path().display().to_string();
        let env = Environment::from_pairs([
            ("REDIS_URL_FILE", "/run/secrets/does-not-exist"),
            ("PAGERDUTY_API_TOKEN_FILE", empty_path.as_str()),
            ("SLACK_APP_TOKEN_FILE", "/run/secrets/app-token"),
        ]);
        let reader = |path: &Path| match path.to_str() {
            Some("/run/secrets/app-token") => Err(std::io::Error::from(std::io::ErrorKind::PermissionDenied)),
            _ => std::fs::read_to_string(path),
        };
        let errors = env.with_secret_files_read_by(reader).unwrap_err();
        let all: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(all.len(), 3, "{all:?}");
        assert!(all[0].starts_with("SLACK_APP_TOKEN_FILE (/run/secrets/app-token) cannot be read: permission denied"));
        assert!(all[1].starts_with(&format!("PAGERDUTY_API_TOKEN_FILE ({empty_path}) is empty")), "{all:?}");
        assert!(all[2].starts_with("REDIS_URL_FILE (/run/secrets/does-not-exist) cannot be read: No such file"));
        assert!(all.iter().all(|e| e.contains(" — ")), "each says how to fix it: {all:?}");
    }

    #[test]
    fn without_file_variables_nothing_changes() {
        let env = Environment::from_pairs([("SLACK_BOT_TOKEN", "xoxb-1"), ("OTHER_FILE", "/nope")]);
        let resolved = env.with_secret_files().expect("nothing to read");
        assert_eq!(resolved.get("SLACK_BOT_TOKEN"), Some("xoxb-1"));
        assert_eq!(resolved.get("OTHER"), None, "only secret variables take _FILE");
    }
}
