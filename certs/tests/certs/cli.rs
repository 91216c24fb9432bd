//! The `sentinel-certs` binary, run as a person would.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use sentinel_certs::{
    read_signed_list, Bundle, Ca, CaCert, DeviceRole, Password, RevocationList, CA_CERT_FILE,
    REVOCATIONS_FILE,
};

use crate::common::{key, DAY};

const CA_PW: &str = "ca secret";
const BUNDLE_PW: &str = "bundle secret";

/// Runs the binary with the given password variables and standard input.
fn run(args: &[&str], env: &[(&str, &str)], stdin: &str) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sentinel-certs"));
    cmd.args(args)
        .env_remove("SENTINEL_CA_PASSWORD")
        .env_remove("SENTINEL_BUNDLE_PASSWORD")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
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

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn failed(out: &Output) -> String {
    assert!(!out.status.success(), "unexpectedly succeeded");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn both() -> [(&'static str, &'static str); 2] {
    [
        ("SENTINEL_CA_PASSWORD", CA_PW),
        ("SENTINEL_BUNDLE_PASSWORD", BUNDLE_PW),
    ]
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn create_issue_show_revoke() {
    let dir = tempfile::tempdir().unwrap();
    let ca_dir = dir.path().join("ca");
    let bundle = dir.path().join("node-7.bundle");

    let out = run(
        &[
            "ca",
            "create",
            "--dir",
            s(&ca_dir),
            "--name",
            "North",
            "--days",
            "400",
        ],
        &both(),
        "",
    );
    assert!(ok(&out).contains("created CA \"North\""));

    // Passwords from standard input, CA first, then bundle.
    let out = run(
        &[
            "issue",
            "--ca-dir",
            s(&ca_dir),
            "--role",
            "node",
            "--name",
            "node-7",
            "--days",
            "30",
            "--out",
            s(&bundle),
        ],
        &[],
        &format!("{CA_PW}\n{BUNDLE_PW}\n"),
    );
    ok(&out);
    let enrollment = Bundle::open(&bundle, &Password::new(BUNDLE_PW).unwrap()).unwrap();
    assert_eq!(enrollment.identity.role, DeviceRole::Node);
    assert_eq!(enrollment.identity.name, "node-7");
    let ca = CaCert::load(&ca_dir.join(CA_CERT_FILE)).unwrap();
    assert_eq!(enrollment.ca, ca);
    let span = enrollment.identity.not_after_ms - enrollment.identity.not_before_ms;
    assert!(span > 30 * DAY && span <= 30 * DAY + 2 * 60 * 60 * 1000);

    let shown = ok(&run(&["show", s(&bundle)], &[], ""));
    assert!(shown.contains("node \"node-7\" (valid now)"));
    assert!(shown.contains(&enrollment.identity.author.to_string()));
    assert!(!shown.contains(&hex::encode(enrollment.key.to_bytes())));

    let author = enrollment.identity.author.to_string();
    let revoke = |seq: &str, reason: &str| {
        run(
            &[
                "revoke",
                "--ca-dir",
                s(&ca_dir),
                "--key",
                &author,
                "--last-valid-seq",
                seq,
                "--reason",
                reason,
            ],
            &both(),
            "",
        )
    };
    ok(&revoke("12", "lost"));
    let list = RevocationList::verify(
        &read_signed_list(&ca_dir.join(REVOCATIONS_FILE)).unwrap(),
        &ca,
    )
    .unwrap();
    assert_eq!(list.number, 1);
    assert_eq!(list.revoked.len(), 1);
    assert_eq!(list.revoked[0].key, enrollment.identity.author);
    assert_eq!(list.revoked[0].last_valid_seq, 12);
    assert_eq!(list.revoked[0].reason, "lost");
    // Loosening is refused; tightening appends a new list.
    assert!(failed(&revoke("20", "")).contains("can only be tightened"));
    ok(&revoke("4", ""));
    ok(&run(&["refresh", "--ca-dir", s(&ca_dir)], &both(), ""));
    let list = RevocationList::verify(
        &read_signed_list(&ca_dir.join(REVOCATIONS_FILE)).unwrap(),
        &ca,
    )
    .unwrap();
    assert_eq!(list.number, 3);
    assert_eq!(list.revoked[0].last_valid_seq, 4);
    assert_eq!(list.revoked[0].reason, "lost");

    let shown = ok(&run(
        &[
            "show",
            s(&ca_dir.join(REVOCATIONS_FILE)),
            "--ca-dir",
            s(&ca_dir),
        ],
        &[],
        "",
    ));
    assert!(shown.contains("revocation list 3"));
    assert!(shown.contains(&author));
    let shown = ok(&run(&["show", s(&ca_dir.join(CA_CERT_FILE))], &[], ""));
    assert!(shown.contains("deployment CA \"North\""));
    let record = ca_dir.join("issued").join(format!("{author}.pem"));
    assert!(failed(&run(&["show", s(&record)], &[], "")).contains("--ca-dir"));
    assert!(ok(&run(&["show", s(&record), "--ca-dir", s(&ca_dir)], &[], "")).contains("node-7"));

    // The bundle is never overwritten.
    let again = run(
        &[
            "issue",
            "--ca-dir",
            s(&ca_dir),
            "--role",
            "hub",
            "--name",
            "h",
            "--days",
            "30",
            "--out",
            s(&bundle),
        ],
        &both(),
        "",
    );
    assert!(failed(&again).contains("exists already"));
}

#[test]
fn bad_input_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let ca_dir = dir.path().join("ca");
    let out_path = dir.path().join("x.bundle");
    let issue = |ca_dir: &Path, role: &str, env: &[(&str, &str)], stdin: &str| {
        run(
            &[
                "issue",
                "--ca-dir",
                s(ca_dir),
                "--role",
                role,
                "--name",
                "n",
                "--days",
                "10",
                "--out",
                s(&out_path),
            ],
            env,
            stdin,
        )
    };

    // No CA yet.
    assert!(failed(&issue(&ca_dir, "node", &both(), "")).contains("no CA in"));
    ok(&run(
        &["ca", "create", "--dir", s(&ca_dir), "--name", "N"],
        &both(),
        "",
    ));
    // No password anywhere: never a default.
    assert!(failed(&issue(&ca_dir, "node", &[], "")).contains("SENTINEL_CA_PASSWORD"));
    assert!(failed(&run(
        &[
            "ca",
            "create",
            "--dir",
            s(&dir.path().join("ca2")),
            "--name",
            "N"
        ],
        &[("SENTINEL_CA_PASSWORD", "")],
        ""
    ))
    .contains("empty"));
    // Wrong password.
    let wrong = [
        ("SENTINEL_CA_PASSWORD", "not it"),
        ("SENTINEL_BUNDLE_PASSWORD", BUNDLE_PW),
    ];
    assert!(failed(&issue(&ca_dir, "node", &wrong, "")).contains("wrong CA password"));
    // Unknown role.
    assert!(failed(&issue(&ca_dir, "admin", &both(), "")).contains("unknown device role"));
    // Longer than the CA.
    let long = run(
        &[
            "issue",
            "--ca-dir",
            s(&ca_dir),
            "--role",
            "node",
            "--name",
            "n",
            "--days",
            "9999",
            "--out",
            s(&out_path),
        ],
        &both(),
        "",
    );
    assert!(failed(&long).contains("--days"));
    // A bad key to revoke.
    let bad_key = run(
        &[
            "revoke",
            "--ca-dir",
            s(&ca_dir),
            "--key",
            "abc",
            "--last-valid-seq",
            "1",
        ],
        &both(),
        "",
    );
    assert!(failed(&bad_key).contains("not an author key"));
    assert!(!out_path.exists());
}

#[test]
fn an_expired_ca_cannot_issue() {
    let dir = tempfile::tempdir().unwrap();
    // A CA that expired yesterday, made with the library (the CLI only
    // makes CAs that start now).
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    Ca::create("Old", now - 100 * DAY, now - DAY, key(1))
        .unwrap()
        .save(dir.path(), &Password::new(CA_PW).unwrap())
        .unwrap();
    let out = run(
        &[
            "issue",
            "--ca-dir",
            s(dir.path()),
            "--role",
            "sensor",
            "--name",
            "s",
            "--days",
            "1",
            "--out",
            s(&dir.path().join("s.bundle")),
        ],
        &both(),
        "",
    );
    assert!(failed(&out).contains("the CA expired at"));
}
