//! The binary's packaging commands: `starling --version` and `starling check-config`,
//! run as a user would, checking exit codes and messages.

mod common;

use std::process::{Command, Output};

use common::bin;

fn run(args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .env("RUST_LOG", "error")
        .output()
        .expect("run the starling binary")
}

/// `starling check-config` on a file holding `text`.
fn check(text: &str) -> (Output, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("starling.toml");
    std::fs::write(&path, text).expect("write config");
    let path = path.display().to_string();
    (run(&["check-config", &path]), path)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn version_names_the_package_version() {
    let out = run(&["--version"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text.trim(),
        format!("starling {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn the_shipped_config_checks_ok() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/config/starling.toml");
    let out = run(&["check-config", path]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok"));
}

#[test]
fn a_bad_value_names_its_line_and_reason() {
    let (out, path) = check("[server]\nworkers = 1\n\n[limits]\nmax_packet_size = 3\n");
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("{path}:5: limits.max_packet_size must be between")),
        "{err}"
    );
}

#[test]
fn a_syntax_error_or_unknown_key_names_its_line() {
    let (out, path) = check("[limits]\nmax_inflight = 5\nmax_inflihgt = 6\n");
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("{path}:3: unknown field `max_inflihgt`")),
        "{err}"
    );
    let (out, path) = check("[http]\nbind = \"127.0.0.1:80800\"\n");
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("{path}:2: invalid socket address")),
        "{err}"
    );
}

#[test]
fn a_missing_file_fails() {
    let out = run(&["check-config", "/nonexistent/starling.toml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("cannot read"), "{}", stderr(&out));
}
