//! `starling check-config`: a configuration's text checked, and a refusal pointed at
//! the line that causes it.
//!
//! TOML errors carry their position; a value that parses but fails
//! [`Config::validate`] names its key (`limits.max_inflight ...`, `listener ADDR: ...`),
//! which is looked up in the text here.

use std::fmt;

use super::{Config, ConfigError};

/// Why a configuration text was refused, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// The 1-based line of the offending key or syntax, when it can be told.
    pub line: Option<usize>,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "line {line}: {}", self.reason),
            None => f.write_str(&self.reason),
        }
    }
}

impl Config {
    /// Parses and validates `text` like [`str::parse`], but a refusal says the line
    /// (when it can be told) and the reason apart.
    ///
    /// ```
    /// use starling::config::Config;
    ///
    /// let problem = Config::check("[limits]\n\nmax_inflight = 0\n").unwrap_err();
    /// assert_eq!(problem.line, Some(3));
    /// assert!(problem.reason.contains("max_inflight"));
    /// let problem = Config::check("[limits]\nmax_inflight = \"x\"\n").unwrap_err();
    /// assert_eq!(problem.line, Some(2));
    /// ```
    pub fn check(text: &str) -> Result<Config, ConfigProblem> {
        text.parse().map_err(|e| match e {
            ConfigError::Toml(e) | ConfigError::Parse { source: e, .. } => ConfigProblem {
                line: e.span().map(|span| line_at(text, span.start)),
                reason: e.message().trim_end().to_owned(),
            },
            ConfigError::Invalid(reason) => ConfigProblem {
                line: locate(text, &reason),
                reason,
            },
            ConfigError::Read { .. } => ConfigProblem {
                line: None,
                reason: e.to_string(),
            },
        })
    }
}

/// The 1-based line holding byte `offset`.
fn line_at(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// The line a [`ConfigError::Invalid`] message is about: `listener ADDR: ...` is the
/// listener binding ADDR; `table.key ...` is that key, or its table's header.
fn locate(text: &str, reason: &str) -> Option<usize> {
    if let Some(rest) = reason.strip_prefix("listener ") {
        let addr = rest.split(": ").next()?;
        let by_bind = entries(text)
            .find(|e| e.path == "listeners.bind" && e.value.trim_matches(['"', '\'', ' ']) == addr);
        return by_bind
            .map(|e| e.line)
            .or_else(|| header(text, "listeners"));
    }
    let key = reason.split_whitespace().next()?;
    let (table, _) = key.split_once('.')?;
    entries(text)
        .find(|e| e.path == key)
        .map(|e| e.line)
        .or_else(|| header(text, table))
}

/// One `key = value` line, with its key's full dotted path.
struct Entry<'a> {
    line: usize,
    path: String,
    value: &'a str,
}

/// The `key = value` lines of a TOML text, under their tables (a rough scan, enough to
/// point at a line: multi-line values are not followed).
fn entries(text: &str) -> impl Iterator<Item = Entry<'_>> {
    let mut table = String::new();
    text.lines().enumerate().filter_map(move |(i, raw)| {
        let line = raw.trim();
        if let Some(name) = table_name(line) {
            table = name.to_owned();
            return None;
        }
        let (key, value) = line.split_once('=')?;
        if line.starts_with('#') {
            return None;
        }
        let key: String = key
            .split('.')
            .map(|part| part.trim().trim_matches(['"', '\'']))
            .collect::<Vec<_>>()
            .join(".");
        let path = match table.is_empty() {
            true => key,
            false => format!("{table}.{key}"),
        };
        let value = value.split(" #").next().unwrap_or(value).trim();
        Some(Entry {
            line: i + 1,
            path,
            value,
        })
    })
}

/// `x` for a `[x]` or `[[x]]` header line.
fn table_name(line: &str) -> Option<&str> {
    let inner = line.strip_prefix('[')?;
    let end = inner.find(']')?;
    Some(inner[..end].trim_matches(['[', ' ']))
}

/// The first line opening `[table]` or `[[table]]`.
fn header(text: &str, table: &str) -> Option<usize> {
    text.lines()
        .position(|l| table_name(l.trim()) == Some(table))
        .map(|i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(text: &str) -> ConfigProblem {
        Config::check(text).expect_err("refused")
    }

    #[test]
    fn syntax_and_type_errors_have_their_line() {
        assert_eq!(problem("[limits]\nmax_inflight = \n").line, Some(2));
        let unknown = problem("[server]\nworkers = 1\n\n[limits]\nmax_pakcet_size = 5\n");
        assert_eq!(unknown.line, Some(5));
        assert!(unknown.reason.contains("max_pakcet_size"), "{unknown}");
    }

    #[test]
    fn invalid_values_point_at_their_key() {
        let text = "[limits]\n# max_inflight = 1\nmax_inflight = 0\n";
        assert_eq!(problem(text).line, Some(3));
        assert_eq!(problem("limits.max_inflight = 0\n").line, Some(1));
        // A key left out: its table's header.
        let cluster = problem("[server]\nworkers = 1\n[cluster]\nenabled = true\n");
        assert_eq!(cluster.line, Some(3), "{cluster}");
    }

    #[test]
    fn a_bad_listener_is_found_by_its_address() {
        let text = "[[listeners]]\nbind = \"127.0.0.1:1883\"\n\n[[listeners]]\nkind = \"ws\"\n\
                    bind = \"127.0.0.1:8083\" # ws\npath = \"mqtt\"\n";
        let p = problem(text);
        assert_eq!(p.line, Some(6), "{p}");
        assert!(p.reason.contains("path must start with /"), "{p}");
    }

    #[test]
    fn a_good_config_passes() {
        let text = std::fs::read_to_string("config/starling.toml").expect("default config");
        assert_eq!(Config::check(&text), Ok(Config::default()));
    }
}
