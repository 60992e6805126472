//! The `/jit …` grammar: the text after the slash command, turned into a [`Command`]. Pure and total: any input
//! yields a command or a [`CommandError`] whose text tells the user what was wrong and the right usage.
//!
//! ```text
//! /jit query <runbook> [name=value …] [--reason "…"]    values may be quoted: name="two words"
//!            [--unmask attr[,attr]] [--incident <PagerDuty incident id or number>] [--break-glass]
//! /jit query [<runbook>]                                  missing parameters → the caller opens a form
//! /jit runbooks | /jit status [<id>] | /jit cancel <id> | /jit help
//! ```
//!
//! Slack clients often turn straight quotes into typographic ones (“…”, ‘…’), so both kinds are accepted.

use std::collections::BTreeMap;
use std::fmt;

use crate::ids::RequestId;

/// What the user asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Request a runbook query. `runbook` is `None` for a bare `/jit query` (the caller offers a picker).
    Query {
        runbook: Option<String>,
        args: BTreeMap<String, String>,
        reason: Option<String>,
        /// Masked attributes asked for in clear (`--unmask email[,phone]`, repeatable), in the order given.
        unmask: Vec<String>,
        /// The PagerDuty incident id or number given with `--incident` (letters and digits only).
        incident: Option<String>,
        /// `--break-glass`: run at once without an approver (someone on call, runbooks that allow it).
        break_glass: bool,
    },
    /// List the runbooks this user may request.
    Runbooks,
    /// Show one request, or the user's recent ones.
    Status {
        id: Option<RequestId>,
    },
    /// Cancel a pending request of one's own.
    Cancel {
        id: RequestId,
    },
    Help,
}

/// The subcommands, for suggestions and help.
pub const SUBCOMMANDS: [&str; 5] = ["query", "runbooks", "status", "cancel", "help"];

/// Why the text is not a command. `Display` is the user-facing explanation, including the right usage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandError {
    UnknownSubcommand { given: String, suggestion: Option<&'static str> },
    UnterminatedQuote,
    ReasonWithoutText,
    ReasonGivenTwice,
    UnmaskWithoutAttribute,
    UnknownFlag { flag: String },
    IncidentWithoutId,
    IncidentGivenTwice,
    BadIncident { given: String },
    NotAnAssignment { token: String },
    EmptyParameterName { token: String },
    DuplicateParameter { name: String },
    MissingRequestId { subcommand: &'static str },
    BadRequestId { given: String },
    UnexpectedArgument { subcommand: &'static str, token: String },
}

impl CommandError {
    /// The correct usage of the subcommand the error is about.
    pub fn usage(&self) -> &'static str {
        match self {
            CommandError::UnknownSubcommand { .. } => USAGE,
            CommandError::UnterminatedQuote
            | CommandError::ReasonWithoutText
            | CommandError::ReasonGivenTwice
            | CommandError::UnmaskWithoutAttribute
            | CommandError::UnknownFlag { .. }
            | CommandError::IncidentWithoutId
            | CommandError::IncidentGivenTwice
            | CommandError::BadIncident { .. }
            | CommandError::NotAnAssignment { .. }
            | CommandError::EmptyParameterName { .. }
            | CommandError::DuplicateParameter { .. } => QUERY_USAGE,
            CommandError::MissingRequestId { subcommand } | CommandError::UnexpectedArgument { subcommand, .. } => {
                usage_of(subcommand)
            }
            CommandError::BadRequestId { .. } => "/jit status <id>  or  /jit cancel <id>   (ids look like JIT-7Q2M4X)",
        }
    }
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandError::UnknownSubcommand { given, suggestion: Some(s) } => {
                write!(f, "`{given}` is not a jitgate command. Did you mean `{s}`?")
            }
            CommandError::UnknownSubcommand { given, suggestion: None } => {
                write!(f, "`{given}` is not a jitgate command.")
            }
            CommandError::UnterminatedQuote => f.write_str("A quote is opened but never closed."),
            CommandError::ReasonWithoutText => {
                f.write_str("`--reason` needs a text, e.g. --reason \"INC-812 refund check\".")
            }
            CommandError::ReasonGivenTwice => f.write_str("`--reason` is given twice; give it once."),
            CommandError::UnmaskWithoutAttribute => f.write_str(
                "`--unmask` needs the masked attribute(s) to show in clear, e.g. --unmask email (one more approver is needed).",
            ),
            CommandError::UnknownFlag { flag } => write!(
                f,
                "`{flag}` is not an option; the options are --reason, --unmask, --incident and --break-glass."
            ),
            CommandError::IncidentWithoutId => {
                f.write_str("`--incident` needs a PagerDuty incident id or number, e.g. --incident 1234.")
            }
            CommandError::IncidentGivenTwice => f.write_str("`--incident` is given twice; name one incident."),
            CommandError::BadIncident { given } => write!(
                f,
                "`{given}` is not a PagerDuty incident id or number: use the number (e.g. 1234) or the id from the \
                 incident's URL (e.g. PT4KHLK)."
            ),
            CommandError::NotAnAssignment { token } => {
                write!(f, "`{token}` is not a parameter: write parameters as name=value.")
            }
            CommandError::EmptyParameterName { token } => write!(f, "`{token}` has no parameter name before `=`."),
            CommandError::DuplicateParameter { name } => write!(f, "Parameter `{name}` is given more than once."),
            CommandError::MissingRequestId { subcommand } => write!(f, "`{subcommand}` needs a request id."),
            CommandError::BadRequestId { given } => write!(f, "`{given}` is not a request id."),
            CommandError::UnexpectedArgument { subcommand, token } => {
                write!(f, "`{subcommand}` takes no `{token}`.")
            }
        }
    }
}

impl std::error::Error for CommandError {}

pub const USAGE: &str = "/jit query <runbook> name=value … --reason \"…\"  ·  /jit runbooks  ·  /jit status [id]  ·  /jit cancel <id>  ·  /jit help";
pub const QUERY_USAGE: &str =
    "/jit query <runbook> name=value … --reason \"…\"   (see /jit runbooks for names and parameters)";

fn usage_of(subcommand: &str) -> &'static str {
    match subcommand {
        "status" => "/jit status [JIT-7Q2M4X]",
        "cancel" => "/jit cancel JIT-7Q2M4X",
        "runbooks" => "/jit runbooks",
        "help" => "/jit help",
        _ => USAGE,
    }
}

/// Parses the text after `/jit`.
pub fn parse(text: &str) -> Result<Command, CommandError> {
    let tokens = tokenize(text)?;
    let mut rest = tokens.iter().map(|t| t.text.as_str());
    let Some(first) = rest.next() else { return Ok(Command::Help) };
    let rest: Vec<&Token> = tokens.iter().skip(1).collect();
    match first.to_ascii_lowercase().as_str() {
        "query" | "q" => parse_query(&rest),
        "runbooks" | "list" => no_arguments("runbooks", &rest).map(|()| Command::Runbooks),
        "help" | "-h" | "--help" => no_arguments("help", &rest).map(|()| Command::Help),
        "status" => match rest.as_slice() {
            [] => Ok(Command::Status { id: None }),
            [id] => Ok(Command::Status { id: Some(request_id(&id.text)?) }),
            [_, extra, ..] => Err(CommandError::UnexpectedArgument { subcommand: "status", token: extra.text.clone() }),
        },
        "cancel" => match rest.as_slice() {
            [] => Err(CommandError::MissingRequestId { subcommand: "cancel" }),
            [id] => Ok(Command::Cancel { id: request_id(&id.text)? }),
            [_, extra, ..] => Err(CommandError::UnexpectedArgument { subcommand: "cancel", token: extra.text.clone() }),
        },
        _ => Err(CommandError::UnknownSubcommand { given: first.to_owned(), suggestion: closest_subcommand(first) }),
    }
}

fn no_arguments(subcommand: &'static str, rest: &[&Token]) -> Result<(), CommandError> {
    match rest.first() {
        None => Ok(()),
        Some(token) => Err(CommandError::UnexpectedArgument { subcommand, token: token.text.clone() }),
    }
}

fn request_id(text: &str) -> Result<RequestId, CommandError> {
    RequestId::parse(text).ok_or_else(|| CommandError::BadRequestId { given: text.to_owned() })
}

fn parse_query(tokens: &[&Token]) -> Result<Command, CommandError> {
    let mut runbook = None;
    let mut args = BTreeMap::new();
    let mut reason: Option<String> = None;
    let mut unmask: Vec<String> = Vec::new();
    let mut incident: Option<String> = None;
    let mut break_glass = false;
    let mut i = 0;
    while i < tokens.len() {
        let token = tokens[i];
        i += 1;
        if !token.quoted && token.text.starts_with("--") {
            let (flag, inline) = match token.text.split_once('=') {
                Some((flag, value)) => (flag, Some(value.to_owned())),
                None => (token.text.as_str(), None),
            };
            if flag == "--unmask" {
                // One token: `--unmask email`, `--unmask=email,phone`.
                let value = match inline {
                    Some(value) => value,
                    None => match tokens.get(i) {
                        Some(next) if !next.text.starts_with("--") && !next.text.contains('=') => {
                            i += 1;
                            next.text.clone()
                        }
                        _ => String::new(),
                    },
                };
                let names: Vec<String> =
                    value.split(',').map(str::trim).filter(|n| !n.is_empty()).map(str::to_owned).collect();
                if names.is_empty() {
                    return Err(CommandError::UnmaskWithoutAttribute);
                }
                unmask.extend(names);
                continue;
            }
            if flag == "--break-glass" && inline.is_none() {
                break_glass = true;
                continue;
            }
            if flag == "--incident" {
                let value = match inline {
                    Some(value) => Some(value),
                    None if tokens.get(i).is_some_and(|t| t.quoted || !t.text.starts_with("--")) => {
                        i += 1;
                        Some(tokens[i - 1].text.clone())
                    }
                    None => None,
                };
                let parsed = incident_id(value.as_deref())?;
                if incident.replace(parsed).is_some() {
                    return Err(CommandError::IncidentGivenTwice);
                }
                continue;
            }
            if flag != "--reason" {
                return Err(CommandError::UnknownFlag { flag: flag.to_owned() });
            }
            let value = match inline {
                Some(value) => value,
                None => {
                    // The reason is the next token; an unquoted reason runs to the next flag or assignment-free end.
                    let mut words = Vec::new();
                    while let Some(next) = tokens.get(i) {
                        if !next.quoted
                            && (next.text.starts_with("--") || (!words.is_empty() && next.text.contains('=')))
                        {
                            break;
                        }
                        words.push(next.text.clone());
                        i += 1;
                        if next.quoted {
                            break;
                        }
                    }
                    words.join(" ")
                }
            };
            if value.trim().is_empty() {
                return Err(CommandError::ReasonWithoutText);
            }
            if reason.replace(value.trim().to_owned()).is_some() {
                return Err(CommandError::ReasonGivenTwice);
            }
            continue;
        }
        if runbook.is_none() && args.is_empty() && !token.text.contains('=') && !token.quoted {
            runbook = Some(token.text.clone());
            continue;
        }
        let Some((name, value)) = token.text.split_once('=') else {
            return Err(CommandError::NotAnAssignment { token: token.text.clone() });
        };
        let name = name.trim();
        if name.is_empty() {
            return Err(CommandError::EmptyParameterName { token: token.text.clone() });
        }
        if args.insert(name.to_owned(), value.to_owned()).is_some() {
            return Err(CommandError::DuplicateParameter { name: name.to_owned() });
        }
    }
    Ok(Command::Query { runbook, args, reason, unmask, incident, break_glass })
}

/// Longest incident id accepted (PagerDuty ids are 7 to 14 characters; numbers are shorter).
const MAX_INCIDENT_ID: usize = 32;

/// The value of `--incident`: an incident number (`1234`, `#1234`) or id (`PT4KHLK`). Only letters and digits, as
/// it goes into a PagerDuty API path.
fn incident_id(value: Option<&str>) -> Result<String, CommandError> {
    let value = value.map(str::trim).unwrap_or_default();
    if value.is_empty() {
        return Err(CommandError::IncidentWithoutId);
    }
    let id = value.strip_prefix('#').unwrap_or(value);
    if id.is_empty() || id.len() > MAX_INCIDENT_ID || !id.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(CommandError::BadIncident { given: value.to_owned() });
    }
    Ok(id.to_owned())
}

/// One word of the command line. `quoted` is true when the whole token was a quoted string.
#[derive(Debug)]
struct Token {
    text: String,
    quoted: bool,
}

/// Splits on whitespace, honouring quotes anywhere in a token (`name="a b"` is one token `name=a b`).
fn tokenize(text: &str) -> Result<Vec<Token>, CommandError> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let mut word = String::new();
        let mut quoted_whole = true;
        let mut any_quote = false;
        while let Some(&c) = chars.peek() {
            if c.is_whitespace() {
                break;
            }
            chars.next();
            match closing_quote(c) {
                Some(close) => {
                    any_quote = true;
                    let mut closed = false;
                    for inner in chars.by_ref() {
                        if inner == close
                            || (close == '"' && inner == '\u{201D}')
                            || (close == '\'' && inner == '\u{2019}')
                        {
                            closed = true;
                            break;
                        }
                        word.push(inner);
                    }
                    if !closed {
                        return Err(CommandError::UnterminatedQuote);
                    }
                }
                None => {
                    quoted_whole = false;
                    word.push(c);
                }
            }
        }
        tokens.push(Token { text: word, quoted: any_quote && quoted_whole });
    }
    Ok(tokens)
}

/// The closing quote for an opening one, straight or typographic.
fn closing_quote(c: char) -> Option<char> {
    match c {
        '"' => Some('"'),
        '\'' => Some('\''),
        '\u{201C}' => Some('\u{201D}'),
        '\u{2018}' => Some('\u{2019}'),
        _ => None,
    }
}

fn closest_subcommand(given: &str) -> Option<&'static str> {
    let given = given.to_ascii_lowercase();
    SUBCOMMANDS
        .iter()
        .map(|s| (strsim::osa_distance(&given, s), *s))
        .filter(|(distance, s)| *distance <= (s.len() / 3).max(1) || s.starts_with(&given) && given.len() >= 2)
        .min()
        .map(|(_, s)| s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(runbook: Option<&str>, args: &[(&str, &str)], reason: Option<&str>) -> Command {
        Command::Query {
            runbook: runbook.map(str::to_owned),
            args: args.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
            reason: reason.map(str::to_owned),
            unmask: Vec::new(),
            incident: None,
            break_glass: false,
        }
    }

    #[test]
    fn unmask_takes_attributes_once_or_repeated_and_refuses_none() {
        let Ok(Command::Query { unmask, reason, .. }) =
            parse(r#"query order-by-id order_id=O1 --unmask email,shipping_address --reason "INC-9" --unmask=phone"#)
        else {
            panic!()
        };
        assert_eq!(unmask, ["email", "shipping_address", "phone"]);
        assert_eq!(reason.as_deref(), Some("INC-9"));
        assert_eq!(parse("query order-by-id --unmask"), Err(CommandError::UnmaskWithoutAttribute));
        assert_eq!(parse("query order-by-id --unmask --reason x"), Err(CommandError::UnmaskWithoutAttribute));
        assert_eq!(parse("query order-by-id --unmask order_id=O1"), Err(CommandError::UnmaskWithoutAttribute));
    }

    #[test]
    fn an_incident_is_one_id_or_number() {
        let Ok(Command::Query { incident, reason, .. }) = parse("query r id=1 --incident 1234 --reason x") else {
            panic!()
        };
        assert_eq!((incident.as_deref(), reason.as_deref()), (Some("1234"), Some("x")));
        let Ok(Command::Query { incident, .. }) = parse("query r --incident=#PT4KHLK") else { panic!() };
        assert_eq!(incident.as_deref(), Some("PT4KHLK"));
        assert_eq!(parse("query r --incident"), Err(CommandError::IncidentWithoutId));
        let Ok(Command::Query { break_glass, reason, .. }) = parse("query r --break-glass --reason \"db down\"") else {
            panic!()
        };
        assert!(break_glass && reason.as_deref() == Some("db down"));
        assert_eq!(parse("query r --incident --reason x"), Err(CommandError::IncidentWithoutId));
        assert_eq!(parse("query r --incident 1 --incident 2"), Err(CommandError::IncidentGivenTwice));
        assert_eq!(parse("query r --incident ../users"), Err(CommandError::BadIncident { given: "../users".into() }));
        assert_eq!(parse("query r --incident \"12 34\""), Err(CommandError::BadIncident { given: "12 34".into() }));
    }

    #[test]
    fn full_query_with_quoted_reason() {
        assert_eq!(
            parse(r#"query orders-by-customer customer_id=C000042 from=2026-11-01 --reason "INC-812 refund check""#),
            Ok(query(
                Some("orders-by-customer"),
                &[("customer_id", "C000042"), ("from", "2026-11-01")],
                Some("INC-812 refund check")
            ))
        );
    }

    #[test]
    fn quoted_values_smart_quotes_and_reason_forms() {
        assert_eq!(
            parse("query r note=\"two words\" --reason=INC-1"),
            Ok(query(Some("r"), &[("note", "two words")], Some("INC-1")))
        );
        assert_eq!(
            parse("query r a=1 --reason \u{201C}checking a refund\u{201D}"),
            Ok(query(Some("r"), &[("a", "1")], Some("checking a refund")))
        );
        assert_eq!(parse("query r --reason INC 812 a=1"), Ok(query(Some("r"), &[("a", "1")], Some("INC 812"))));
        assert_eq!(parse("query r a='x=y'"), Ok(query(Some("r"), &[("a", "x=y")], None)));
        assert_eq!(parse("  QUERY   r  "), Ok(query(Some("r"), &[], None)));
    }

    #[test]
    fn bare_query_and_other_subcommands() {
        assert_eq!(parse("query"), Ok(query(None, &[], None)));
        assert_eq!(parse(""), Ok(Command::Help));
        assert_eq!(parse("help"), Ok(Command::Help));
        assert_eq!(parse("runbooks"), Ok(Command::Runbooks));
        assert_eq!(parse("status"), Ok(Command::Status { id: None }));
        assert_eq!(parse("status jit-7q2m4x"), Ok(Command::Status { id: RequestId::parse("JIT-7Q2M4X") }));
        assert_eq!(parse("cancel JIT-7Q2M4X"), Ok(Command::Cancel { id: RequestId::parse("JIT-7Q2M4X").unwrap() }));
    }

    #[test]
    fn mistakes_get_a_precise_error_and_usage() {
        let cases: &[(&str, CommandError)] = &[
            ("qeury r", CommandError::UnknownSubcommand { given: "qeury".into(), suggestion: Some("query") }),
            ("stats", CommandError::UnknownSubcommand { given: "stats".into(), suggestion: Some("status") }),
            ("deploy prod", CommandError::UnknownSubcommand { given: "deploy".into(), suggestion: None }),
            ("query r a=\"open", CommandError::UnterminatedQuote),
            ("query r --reason", CommandError::ReasonWithoutText),
            ("query r --reason \"  \"", CommandError::ReasonWithoutText),
            ("query r --reason a --reason b", CommandError::ReasonGivenTwice),
            ("query r --force", CommandError::UnknownFlag { flag: "--force".into() }),
            ("query r C000042", CommandError::NotAnAssignment { token: "C000042".into() }),
            ("query r =C1", CommandError::EmptyParameterName { token: "=C1".into() }),
            ("query r a=1 a=2", CommandError::DuplicateParameter { name: "a".into() }),
            ("cancel", CommandError::MissingRequestId { subcommand: "cancel" }),
            ("cancel 42", CommandError::BadRequestId { given: "42".into() }),
            ("status JIT-7Q2M4X more", CommandError::UnexpectedArgument { subcommand: "status", token: "more".into() }),
            ("runbooks all", CommandError::UnexpectedArgument { subcommand: "runbooks", token: "all".into() }),
        ];
        for (text, expected) in cases {
            let err = parse(text).unwrap_err();
            assert_eq!(&err, expected, "{text}");
            assert!(!err.to_string().is_empty() && err.usage().starts_with("/jit"), "{text}");
        }
    }

    #[test]
    fn user_text_is_never_interpreted_beyond_tokens() {
        let Ok(Command::Query { args, .. }) = parse("query r id=\"x) OR (#a = :b\"") else { panic!() };
        assert_eq!(args["id"], "x) OR (#a = :b");
    }
}
