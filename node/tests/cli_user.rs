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

#[test]
fn reset_password_enable_and_purge_tokens_change_what_the_store_holds() {
    let dir = TempDir::new().unwrap();
    let d = dir.path();
    assert!(run(d, &["init"], None, "").status.success());
    let out = run(
        d,
        &["user", "add", "bo"],
        Some("a long enough password"),
        "",
    );
    assert!(out.status.success(), "{}", text(&out));
    let now = sentinel_certs::testing::now_ms();
    let (live, expired) = (
        sentinel_http::people::new_token(),
        sentinel_http::people::new_token(),
    );
    let hash_of = |d: &Path| {
        let node = sentinel_node::node::Node::open(d).unwrap();
        node.store().login_record("bo").unwrap().unwrap()
    };
    {
        let node = sentinel_node::node::Node::open(d).unwrap();
        let store = node.store();
        store
            .insert_token(&live.1, "bo", now, now + 60_000)
            .unwrap();
        store
            .insert_token(&expired.1, "bo", now - 10, now - 1)
            .unwrap();
    }
    let before = hash_of(d);
    // A new password from standard input: a new hash, the tokens revoked.
    let out = run(
        d,
        &["user", "reset-password", "bo"],
        None,
        "a brand new password\n",
    );
    assert!(out.status.success(), "{}", text(&out));
    let after = hash_of(d);
    assert_ne!(before.hash, after.hash);
    assert!(sentinel_http::people::verify_password(
        &after.hash,
        "a brand new password"
    ));
    let node = sentinel_node::node::Node::open(d).unwrap();
    assert_eq!(node.store().token_account(&live.1, now).unwrap(), None);
    drop(node);
    for (args, says) in [
        (&["user", "reset-password", "ghost"][..], "no account"),
        (&["user", "enable", "ghost"][..], "no account"),
    ] {
        let out = run(d, args, Some("a long enough password"), "");
        assert!(!out.status.success());
        assert!(text(&out).contains(says), "{}", text(&out));
    }
    // Disabled, then enabled.
    assert!(run(d, &["user", "disable", "bo"], None, "")
        .status
        .success());
    let out = run(d, &["user", "enable", "bo"], None, "");
    assert!(out.status.success(), "{}", text(&out));
    assert!(!hash_of(d).disabled);
    // Both tokens are refused now (revoked, expired): both are purged.
    let out = run(d, &["--json", "user", "purge-tokens"], None, "");
    assert!(out.status.success(), "{}", text(&out));
    let purged: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(purged["purged"], 2, "{purged}");
    let out = run(d, &["--json", "user", "purge-tokens"], None, "");
    let purged: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(purged["purged"], 0);
}

/// A password typed at a terminal is not echoed: `user add` runs on a
/// pseudo-terminal (`script`), is asked twice, and what the terminal shows
/// holds the prompts but not the password. Each answer is typed once the
/// command waits on the terminal (it turns echo off before it reads).
#[test]
fn a_password_typed_at_a_terminal_is_not_echoed() {
    use std::sync::mpsc;
    use std::time::{Duration, Instant};

    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipped: no `script` (util-linux) to make a terminal");
        return;
    }
    let dir = TempDir::new().unwrap();
    let d = dir.path();
    assert!(run(d, &["init"], None, "").status.success());
    let bin = env!("CARGO_BIN_EXE_sentinel-node");
    let command = format!("'{bin}' --data-dir '{}' user add cy", d.display());
    let mut child = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .env_remove("SENTINEL_USER_PASSWORD")
        .env_remove("SENTINEL_SPATIALITE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = [0u8; 256];
        while let Ok(n) = std::io::Read::read(&mut stdout, &mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                return;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut shown = String::new();
    let wait_for = |what: &str, shown: &mut String| {
        while !shown.contains(what) {
            let left = deadline.saturating_duration_since(Instant::now());
            let bytes = rx
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no {what:?} on the terminal: {shown:?}"));
            shown.push_str(&String::from_utf8_lossy(&bytes));
        }
    };
    let mut stdin = child.stdin.take().unwrap();
    const SECRET: &str = "terminal secret password";
    for prompt in ["Password: ", "again: "] {
        wait_for(prompt, &mut shown);
        reading_the_terminal(d, deadline);
        stdin.write_all(format!("{SECRET}\n").as_bytes()).unwrap();
        stdin.flush().unwrap();
    }
    wait_for("Created account cy", &mut shown);
    drop(stdin);
    assert!(child.wait().unwrap().success(), "{shown}");
    assert!(
        !shown.contains(SECRET),
        "the password was echoed: {shown:?}"
    );
    let node = sentinel_node::node::Node::open(d).unwrap();
    let record = node.store().login_record("cy").unwrap().unwrap();
    assert!(sentinel_http::people::verify_password(&record.hash, SECRET));
}

/// Waits until the `sentinel-node` working in `dir` is blocked reading
/// its terminal (so whatever it set before reading, echo off, is set).
fn reading_the_terminal(dir: &Path, deadline: std::time::Instant) {
    let dir = dir.display().to_string();
    loop {
        let waiting = std::fs::read_dir("/proc").unwrap().flatten().any(|p| {
            let cmdline = std::fs::read(p.path().join("cmdline")).unwrap_or_default();
            let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
            let ours = args.first().is_some_and(|a| a.ends_with(b"sentinel-node"))
                && args.contains(&dir.as_bytes());
            ours && std::fs::read_to_string(p.path().join("wchan"))
                .is_ok_and(|w| w == "wait_woken" || w.contains("tty"))
        });
        if waiting {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never read the terminal"
        );
        std::thread::yield_now();
    }
}

#[test]
fn user_add_device_officer_makes_an_officer_on_a_node_only_initialised() {
    let dir = TempDir::new().unwrap();
    let d = dir.path();
    assert!(run(d, &["init"], None, "").status.success());
    let pw = Some("a long enough password");
    let out = run(d, &["user", "add", "ada", "--device-officer"], pw, "");
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("device's own officer"),
        "{}",
        text(&out)
    );
    let out = run(
        d,
        &["--json", "user", "add", "cy", "--device-officer"],
        pw,
        "",
    );
    assert!(out.status.success(), "{}", text(&out));
    let added: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(added["role"], "officer");
    assert_eq!(added["device_officer"], true);
    assert!(run(d, &["user", "add", "bo"], pw, "").status.success());
    // A taken name stays taken, flag or not.
    let out = run(d, &["user", "add", "bo", "--device-officer"], pw, "");
    assert!(!out.status.success());
    let out = run(d, &["--json", "user", "list"], None, "");
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let by_name = |n: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == n)
            .unwrap()
            .clone()
    };
    assert_eq!(by_name("ada")["role"], "officer");
    assert_eq!(by_name("ada")["device_officer"], true);
    assert_eq!(by_name("cy")["role"], "officer");
    assert_eq!(by_name("bo")["role"], "none");
    assert_eq!(by_name("bo")["device_officer"], false);
    let out = run(d, &["user", "list"], None, "");
    assert!(text(&out).contains("device officer"), "{}", text(&out));
}
