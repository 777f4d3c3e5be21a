//! Access control lists in Mosquitto's `acl_file` syntax, so existing files work:
//!
//! ```text
//! # topic lines before the first `user` line apply to anonymous clients
//! topic read public/#
//! user alice
//! topic readwrite alice/#
//! topic deny alice/secret
//! # pattern lines apply to every client: %u is the username, %c the client id
//! pattern write devices/%c/status
//! ```
//!
//! Access is `read`, `write`, `readwrite` (the default when omitted) or `deny`. A
//! PUBLISH needs `write` on its topic; receiving a message needs `read` on its topic;
//! a SUBSCRIBE needs a `read` (or `readwrite`) rule whose filter covers the whole
//! subscription filter (`a/#` covers `a/+/b`; `a/+` does not cover `a/#`). A `deny`
//! rule that matches wins over any allow; whatever no rule allows is denied. `#` and
//! `+` never match a topic starting with `$` [MQTT-4.7.2-1], so `$SYS/...` is only
//! readable where a rule names `$SYS`. A `%u` pattern does not apply to anonymous
//! clients, and a username or client id holding `+`, `#` or `/` matches no pattern.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use super::AuthSetupError;
use crate::hooks::{Access, Answer, Authorizer, ClientInfo, Decision};
use crate::topic::{matches, TopicFilter};

/// What a rule grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Right {
    Read,
    Write,
    ReadWrite,
    Deny,
}

/// One `topic` or `pattern` line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    right: Right,
    filter: String,
}

/// A parsed ACL file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Acl {
    anonymous: Vec<Rule>,
    users: HashMap<String, Vec<Rule>>,
    patterns: Vec<Rule>,
}

/// A line of an ACL file that is not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {why}")]
pub struct AclError {
    /// The line number, from 1.
    pub line: usize,
    /// What is wrong with it.
    pub why: String,
}

impl Acl {
    /// Parses the text of an ACL file.
    ///
    /// ```
    /// use starling::auth::acl::Acl;
    /// use starling::hooks::Access;
    /// let acl = Acl::parse("user alice\ntopic readwrite alice/#\n").unwrap();
    /// assert!(acl.allows(Some("alice"), "c1", Access::Publish, "alice/x"));
    /// assert!(!acl.allows(Some("bob"), "c2", Access::Publish, "alice/x"));
    /// ```
    pub fn parse(text: &str) -> Result<Acl, AclError> {
        let mut acl = Acl::default();
        let mut user: Option<String> = None;
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let err = |why: &str| AclError {
                line: i + 1,
                why: why.to_owned(),
            };
            let (keyword, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
            let rest = rest.trim();
            match keyword {
                "user" if rest.is_empty() => return Err(err("user without a name")),
                "user" => user = Some(rest.to_owned()),
                "topic" => {
                    let rule = rule(rest).map_err(err)?;
                    match &user {
                        Some(u) => acl.users.entry(u.clone()).or_default().push(rule),
                        None => acl.anonymous.push(rule),
                    }
                }
                "pattern" => acl.patterns.push(rule(rest).map_err(err)?),
                _ => return Err(err("expected `user`, `topic` or `pattern`")),
            }
        }
        Ok(acl)
    }

    /// How many rules it holds.
    pub fn len(&self) -> usize {
        self.anonymous.len()
            + self.patterns.len()
            + self.users.values().map(Vec::len).sum::<usize>()
    }

    /// True when it holds no rule (everything is denied).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// May the client (`username`, `client_id`) do `access` on `topic` (a topic name,
    /// or the filter of a subscription)?
    pub fn allows(
        &self,
        username: Option<&str>,
        client_id: &str,
        access: Access,
        topic: &str,
    ) -> bool {
        let topic = match access {
            Access::Subscribe => inner_filter(topic),
            _ => topic,
        };
        let own = match username {
            Some(u) => self.users.get(u).map_or(&[][..], Vec::as_slice),
            None => &self.anonymous,
        };
        let mut allowed = false;
        let mut check = |rule: &Rule, filter: &str| {
            if !applies(access, filter, topic) {
                return true;
            }
            match (rule.right, access) {
                (Right::Deny, _) => return false,
                (Right::ReadWrite, _)
                | (Right::Read, Access::Subscribe | Access::Receive)
                | (Right::Write, Access::Publish) => allowed = true,
                _ => {}
            }
            true
        };
        for rule in own {
            if !check(rule, &rule.filter) {
                return false;
            }
        }
        for rule in &self.patterns {
            let Some(filter) = substitute(&rule.filter, username, client_id) else {
                continue;
            };
            if !check(rule, &filter) {
                return false;
            }
        }
        allowed
    }
}

/// `[access] filter`, access defaulting to readwrite.
fn rule(rest: &str) -> Result<Rule, &'static str> {
    let (right, filter) = match rest.split_once(char::is_whitespace) {
        Some((word, filter)) => match word {
            "read" => (Right::Read, filter.trim()),
            "write" => (Right::Write, filter.trim()),
            "readwrite" => (Right::ReadWrite, filter.trim()),
            "deny" => (Right::Deny, filter.trim()),
            _ => (Right::ReadWrite, rest),
        },
        None => (Right::ReadWrite, rest),
    };
    if filter.is_empty() {
        return Err("a rule without a topic");
    }
    // Checked as a filter (the %u and %c placeholders are plain characters here).
    TopicFilter::new(filter.to_owned()).map_err(|_| "not a valid topic filter")?;
    Ok(Rule {
        right,
        filter: filter.to_owned(),
    })
}

/// The filter of a `$share/{group}/{filter}` subscription, or the filter itself.
fn inner_filter(filter: &str) -> &str {
    match filter.strip_prefix("$share/") {
        Some(rest) => rest.split_once('/').map_or(filter, |(_, inner)| inner),
        None => filter,
    }
}

/// Whether a rule with `filter` speaks about `topic` for `access`.
fn applies(access: Access, filter: &str, topic: &str) -> bool {
    match access {
        Access::Subscribe => covers(filter, topic),
        _ => matches(filter, topic),
    }
}

/// True when every topic that `sub` matches also matches `rule`.
fn covers(rule: &str, sub: &str) -> bool {
    // A leading wildcard never reaches `$` topics [MQTT-4.7.2-1].
    if sub.starts_with('$') && rule.starts_with(['+', '#']) {
        return false;
    }
    let mut rule_levels = rule.split('/');
    let mut sub_levels = sub.split('/');
    loop {
        match (rule_levels.next(), sub_levels.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(s)) if s != "#" => {}
            (Some(r), Some(s)) if r == s && r != "+" => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// A pattern's filter with `%u` and `%c` replaced; `None` when it cannot apply.
fn substitute(filter: &str, username: Option<&str>, client_id: &str) -> Option<String> {
    let plain = |s: &str| !s.contains(['+', '#', '/']);
    let mut out = filter.to_owned();
    if out.contains("%u") {
        let u = username.filter(|u| plain(u))?;
        out = out.replace("%u", u);
    }
    if out.contains("%c") {
        if !plain(client_id) {
            return None;
        }
        out = out.replace("%c", client_id);
    }
    Some(out)
}

/// The [`Authorizer`] of `[auth] acl_file`: the file's rules, re-read by
/// [`AclAuthorizer::reload`] (SIGHUP). Answers at once.
#[derive(Debug)]
pub struct AclAuthorizer {
    path: PathBuf,
    acl: RwLock<Arc<Acl>>,
}

impl AclAuthorizer {
    /// Reads and parses the file.
    pub fn open(path: &Path) -> Result<AclAuthorizer, AuthSetupError> {
        let acl = read(path)?;
        Ok(AclAuthorizer {
            path: path.to_owned(),
            acl: RwLock::new(Arc::new(acl)),
        })
    }

    /// Reads the file again; on error the rules in force stay. Returns how many rules
    /// it now holds.
    pub fn reload(&self) -> Result<usize, AuthSetupError> {
        let acl = read(&self.path)?;
        let n = acl.len();
        *self.acl.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(acl);
        Ok(n)
    }

    /// How many rules are in force.
    pub fn current_len(&self) -> usize {
        self.current().len()
    }

    fn current(&self) -> Arc<Acl> {
        Arc::clone(&self.acl.read().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Authorizer for AclAuthorizer {
    fn authorize(&self, client: &ClientInfo, access: Access, topic: &str) -> Answer<Decision> {
        let username = client.username.as_deref();
        let allowed = self
            .current()
            .allows(username, client.client_id.as_str(), access, topic);
        Answer::ready(match allowed {
            true => Decision::Allow,
            false => Decision::Deny,
        })
    }
}

fn read(path: &Path) -> Result<Acl, AuthSetupError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| AuthSetupError::Read {
        path: shown.clone(),
        source,
    })?;
    Acl::parse(&text).map_err(|source| AuthSetupError::Acl {
        path: shown,
        source,
    })
}

#[cfg(test)]
#[path = "acl_tests.rs"]
mod tests;
