//! MQTT topics and filters as NATS subjects, losslessly. Pure: no actix, no tokio.
//!
//! NATS tokens (the parts between `.`) may not be empty and may not contain `.`, `*`,
//! `>` or whitespace; MQTT levels may be empty and may contain any of them. So every
//! level becomes one token: `_` followed by the level with each byte outside printable
//! ASCII, and each of `.`, `*`, `>`, `%`, written as `%XX` (upper-case hex). An empty
//! level is `_`; the token of a level is never `*` or `>`, so wildcards cannot be forged.
//!
//! Topics whose first level starts with `$` live under their own prefix
//! ([`DOLLAR_PREFIX`]), the others under [`PREFIX`]: a filter that starts with a
//! wildcard subscribes under [`PREFIX`] only, which is how [MQTT-4.7.2-1] (`#` and `+`
//! never match `$SYS/...`) survives NATS wildcards, which know nothing of `$`.
//!
//! `+` becomes `*`. `#` becomes `>`, which needs at least one more token, while MQTT's
//! `a/#` also matches `a` itself: such a filter maps to two subjects, `a` and `a.>`,
//! which no subject matches both of. `#` alone maps to `PREFIX.>` only (every topic has a
//! level).

use std::fmt::Write as _;

use crate::topic::{TopicFilter, TopicName};

/// Subjects of topics that do not start with `$`.
pub const PREFIX: &str = "starling.m";
/// Subjects of topics whose first level starts with `$`.
pub const DOLLAR_PREFIX: &str = "starling.d";
/// Subjects of retained messages (a JetStream stream keeps the last one per subject).
pub const RETAINED_PREFIX: &str = "starling.r";

/// Marks every level's token, so that an empty level is a non-empty token.
const MARK: char = '_';

/// Why a subject is not one this module made.
#[cfg(test)]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubjectError {
    #[error("subject {0:?} is not under a starling prefix")]
    Prefix(String),
    #[error("subject token {0:?} is not an escaped topic level")]
    Token(String),
    #[error("subject {0:?} does not decode to a valid topic name")]
    Topic(String),
}

/// True for bytes written as themselves inside a token.
fn is_plain(b: u8) -> bool {
    b.is_ascii_graphic() && !matches!(b, b'.' | b'*' | b'>' | b'%')
}

/// Appends the token of one level to `out`.
fn push_level(out: &mut String, level: &str) {
    out.push(MARK);
    for &b in level.as_bytes() {
        if is_plain(b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
}

/// The level a token stands for; `None` when the token is not one [`push_level`] made.
#[cfg(test)]
fn level_of(token: &str) -> Option<String> {
    let body = token.strip_prefix(MARK)?.as_bytes();
    let mut bytes = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        match body[i] {
            b'%' => {
                let hex = std::str::from_utf8(body.get(i + 1..i + 3)?).ok()?;
                if hex.bytes().any(|c| c.is_ascii_lowercase()) {
                    return None;
                }
                bytes.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b if is_plain(b) => {
                bytes.push(b);
                i += 1;
            }
            _ => return None,
        }
    }
    String::from_utf8(bytes).ok()
}

/// The prefix a topic (or a filter whose first level is literal) lives under.
fn prefix_for(first_level: &str) -> &'static str {
    if first_level.starts_with('$') {
        DOLLAR_PREFIX
    } else {
        PREFIX
    }
}

/// `prefix` + one token per level of `topic`.
fn topic_under(prefix: &str, topic: &str) -> String {
    let mut out = String::with_capacity(prefix.len() + topic.len() + 8);
    out.push_str(prefix);
    for level in topic.split('/') {
        out.push('.');
        push_level(&mut out, level);
    }
    out
}

/// The subject a message published to `topic` is sent on.
pub fn topic_to_subject(topic: &TopicName) -> String {
    let t = topic.as_str();
    topic_under(prefix_for(t), t)
}

/// The subject under which the retained message of `topic` is stored.
pub fn retained_subject(topic: &TopicName) -> String {
    topic_under(RETAINED_PREFIX, topic.as_str())
}

/// The topic a subject made by [`topic_to_subject`] or [`retained_subject`] stands for
/// (the inverse the tests check the mapping against).
#[cfg(test)]
pub fn subject_to_topic(subject: &str) -> Result<TopicName, SubjectError> {
    let (prefix, rest) = [PREFIX, DOLLAR_PREFIX, RETAINED_PREFIX]
        .iter()
        .find_map(|p| Some((*p, subject.strip_prefix(p)?.strip_prefix('.')?)))
        .ok_or_else(|| SubjectError::Prefix(subject.to_owned()))?;
    let mut topic = String::with_capacity(rest.len());
    for (i, token) in rest.split('.').enumerate() {
        if i > 0 {
            topic.push('/');
        }
        let level = level_of(token).ok_or_else(|| SubjectError::Token(token.to_owned()))?;
        topic.push_str(&level);
    }
    let name = TopicName::new(topic).map_err(|_| SubjectError::Topic(subject.to_owned()))?;
    // A `$` topic under the plain prefix (or the reverse) was not made here.
    if prefix != RETAINED_PREFIX && prefix_for(name.as_str()) != prefix {
        return Err(SubjectError::Prefix(subject.to_owned()));
    }
    Ok(name)
}

/// The subjects to subscribe to for `filter` (its inner filter, for a shared one): one,
/// or two for a filter ending in `/#`. A message's subject matches at most one of them.
pub fn filter_to_subjects(filter: &TopicFilter) -> Vec<String> {
    let f = filter.match_filter();
    if f == "#" {
        return vec![format!("{PREFIX}.>")];
    }
    let first = f.split('/').next().unwrap_or_default();
    let prefix = if first == "+" {
        PREFIX
    } else {
        prefix_for(first)
    };
    let mut subject = String::with_capacity(prefix.len() + f.len() + 8);
    subject.push_str(prefix);
    let mut parent = None;
    for level in f.split('/') {
        match level {
            "#" => {
                parent = Some(subject.clone());
                subject.push_str(".>");
            }
            "+" => subject.push_str(".*"),
            _ => {
                subject.push('.');
                push_level(&mut subject, level);
            }
        }
    }
    parent.into_iter().chain([subject]).collect()
}

/// The NATS queue group serving the shared subscription `$share/{group}/{filter}`: the
/// whole filter, escaped like a level, so that different groups and different filters
/// of one group never share a queue. `None` for a filter that is not shared.
pub fn queue_group(filter: &TopicFilter) -> Option<String> {
    filter.share()?;
    let mut out = String::with_capacity(filter.as_str().len() + 4);
    push_level(&mut out, filter.as_str());
    Some(out)
}

#[cfg(test)]
#[path = "subject_tests.rs"]
mod tests;
