//! `sentinel-node user add/disable/list`: accounts for the HTTP API, with
//! the password from the environment or standard input and never a
//! default; the role is not set here (hubs grant it).

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use tempfile::TempDir;

fn run(dir: &Path, args: &[&str], password_env: Option<&str>, stdin: &str) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sentinel-node"));
    cmd.arg("--data-dir")
        .arg(dir)
        .args(args)
        .env_remove("SENTINEL_USER_PASSWORD")
        .env_remove("SENTINEL_SPATIALITE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(p) = password_env {
        cmd.env("SENTINEL_USER_PASSWORD", p);
    }
    let mut child = cmd.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn user_add_takes_the_password_from_env_or_stdin_and_never_sets_a_role() {
    let dir = TempDir::new().unwrap();
    let d = dir.path();
    assert!(run(d, &["init"], None, "").status.success());
    let out = run(
        d,
        &["user", "add", "officer.ada"],
        Some("a long enough password"),
        "",
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("role is not set here"),
        "{}",
        text(&out)
    );
    // From standard input.
    let out = run(d, &["user", "add", "bo"], None, "another long password\n");
    assert!(out.status.success(), "{}", text(&out));
    // Refused: no password, a short one, a taken name, a bad name.
    let out = run(d, &["user", "add", "cy"], None, "");
    assert!(!out.status.success());
    assert!(text(&out).contains("no password"), "{}", text(&out));
    let out = run(d, &["user", "add", "cy"], Some("short"), "");
    assert!(!out.status.success());
    let out = run(
        d,
        &["user", "add", "bo"],
        Some("a long enough password"),
        "",
    );
    assert!(!out.status.success());
    assert!(text(&out).contains("exists"), "{}", text(&out));
    let out = run(
        d,
        &["user", "add", "a b"],
        Some("a long enough password"),
        "",
    );
    assert!(!out.status.success());
    // Listed without a role, then disabled.
    let out = run(d, &["--json", "user", "list"], None, "");
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 2);
    assert!(list.as_array().unwrap().iter().all(|a| a["role"] == "none"));
    assert!(run(d, &["user", "disable", "bo"], None, "")
        .status
        .success());
    assert!(!run(d, &["user", "disable", "ghost"], None, "")
        .status
        .success());
    let out = run(d, &["--json", "user", "list"], None, "");
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list[0]["name"], "bo");
    assert_eq!(list[0]["disabled"], true);
}
