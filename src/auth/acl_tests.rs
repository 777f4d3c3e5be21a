//! The ACL file against Mosquitto's documented behaviour, as tables.

use super::*;
use crate::hooks::Access::{Publish, Receive, Subscribe};

const FILE: &str = "\
# anonymous clients
topic read public/#
topic public/rw

user alice
topic readwrite alice/#
topic deny alice/secret
topic read $SYS/#
user bob
topic write bob/out
topic read shared/+/data

pattern write devices/%c/status
pattern read inbox/%u/#
pattern deny %u/blocked
";

/// (username, client id, access, topic or filter, allowed)
const TABLE: &[(Option<&str>, &str, Access, &str, bool)] = &[
    (None, "a", Receive, "public/news", true),
    (None, "a", Publish, "public/news", false),
    (None, "a", Publish, "public/rw", true),
    (None, "a", Subscribe, "public/+", true),
    (None, "a", Subscribe, "#", false),
    (Some("alice"), "c", Publish, "alice/x/y", true),
    (Some("alice"), "c", Publish, "alice/secret", false),
    (Some("alice"), "c", Receive, "alice/secret", false),
    (Some("alice"), "c", Subscribe, "alice/secret", false),
    (Some("alice"), "c", Subscribe, "alice/#", true),
    (Some("alice"), "c", Publish, "public/news", false),
    (Some("alice"), "c", Receive, "$SYS/broker/uptime", true),
    (Some("alice"), "c", Publish, "$SYS/broker/uptime", false),
    (Some("bob"), "c", Receive, "$SYS/broker/uptime", false),
    (Some("bob"), "c", Publish, "bob/out", true),
    (Some("bob"), "c", Receive, "bob/out", false),
    (Some("bob"), "c", Subscribe, "shared/x/data", true),
    (Some("bob"), "c", Subscribe, "shared/+/data", true),
    (Some("bob"), "c", Subscribe, "shared/#", false),
    (Some("bob"), "c", Subscribe, "$share/g/shared/+/data", true),
    (Some("bob"), "dev1", Publish, "devices/dev1/status", true),
    (Some("bob"), "dev1", Publish, "devices/dev2/status", false),
    (None, "dev1", Publish, "devices/dev1/status", true),
    (Some("bob"), "c", Receive, "inbox/bob/1", true),
    (Some("bob"), "c", Subscribe, "inbox/bob/#", true),
    (Some("bob"), "c", Subscribe, "inbox/alice/#", false),
    (None, "c", Receive, "inbox//1", false),
    (Some("a+b"), "c", Receive, "inbox/a+b/1", false),
    (Some("alice"), "c", Publish, "alice/blocked", false),
    (Some("carol"), "c", Publish, "anything", false),
];

#[test]
fn the_table_holds() {
    let acl = Acl::parse(FILE).expect("parses");
    for &(user, client, access, topic, want) in TABLE {
        let got = acl.allows(user, client, access, topic);
        assert_eq!(got, want, "{user:?} {client} {access:?} {topic}");
    }
}

#[test]
fn covering_filters() {
    for (rule, sub, want) in [
        ("a/#", "a/+/b", true),
        ("a/#", "a", true),
        ("a/+", "a/#", false),
        ("a/+", "a/+", true),
        ("a/b", "a/+", false),
        ("+/b", "x/b", true),
        ("#", "$SYS/#", false),
        ("$SYS/#", "$SYS/broker/+", true),
    ] {
        assert_eq!(covers(rule, sub), want, "{rule} covers {sub}");
    }
}

#[test]
fn bad_lines_are_named() {
    for (text, line) in [
        ("user alice\ntopic\n", 2),
        ("topic read a/#/b\n", 1),
        ("# ok\nsubscribe a\n", 2),
        ("user\n", 1),
    ] {
        assert_eq!(Acl::parse(text).expect_err(text).line, line, "{text}");
    }
    assert_eq!(Acl::parse(FILE).expect("parses").len(), 10);
}
