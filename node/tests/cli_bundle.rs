//! `sentinel-node audit verify --bundle FILE --ca CA.pem` on a machine
//! that has never seen the deployment: no node in the data directory, only
//! the CA's certificate. A good bundle verifies; a changed entry is named
//! with a non-zero exit; bad input gets a clear message and a non-zero
//! exit. (Bundles from a real hub: the hub's tests, `hub/tests/bundle.rs`.)

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use sentinel_certs::testing::{deployment, issue, key, now_ms};
use sentinel_http::testing::output_within;
use sentinel_schema::{Body, DeviceRole, Head, HubCheckpoint, SignedEntry};
use sentinel_sync::bundle::{Bundle, Contents, Run};
use sentinel_sync::testing::{reading, sign_after};
use serde_json::Value;
use tempfile::TempDir;

const EXIT_BOUND: Duration = Duration::from_secs(120);

fn verify(dir: &Path, args: &[&str]) -> Output {
    output_within(
        Command::new(env!("CARGO_BIN_EXE_sentinel-node"))
            .arg("--data-dir")
            .arg(dir)
            .args(["audit", "verify"])
            .args(args),
        EXIT_BOUND,
        &format!("sentinel-node audit verify {args:?}"),
    )
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A bundle as a hub writes one: a sensor's three readings, a hub
/// checkpoint of their head, the certificates. Returns the bundle's file,
/// the CA's PEM file, the sensor's entries and the contents.
fn bundle_files(dir: &Path) -> (PathBuf, PathBuf, Vec<SignedEntry>, Contents) {
    let ca = deployment("Sentinel bundle CLI CA", 1);
    let hub = issue(&ca, DeviceRole::Hub, "hub-1", 2);
    let sensor = issue(&ca, DeviceRole::Sensor, "gauge-1", 3);
    let now = now_ms();
    let mut entries: Vec<SignedEntry> = Vec::new();
    for i in 0..3 {
        let e = sign_after(&key(3), entries.last(), now + i, reading(i));
        entries.push(e);
    }
    let last = entries[2].clone();
    let head = Head {
        seq: 3,
        id: last.id(),
    };
    let checkpoint = sign_after(
        &key(2),
        None,
        now + 10,
        Body::HubCheckpoint(HubCheckpoint {
            heads: vec![(last.author(), head)],
        }),
    );
    let contents = Contents {
        created_ms: now + 20,
        from_ms: now - 1_000,
        to_ms: now + 1_000,
        area: None,
        certificates: vec![hub.cert_der.clone(), sensor.cert_der.clone()],
        revocation_lists: vec![],
        revocations: vec![],
        checkpoints: vec![checkpoint.into_bytes()],
        runs: vec![Run {
            author: last.author(),
            first_seq: 1,
            last_seq: 3,
            entries: entries.iter().map(|e| e.as_bytes().to_vec()).collect(),
        }],
    };
    let bundle = dir.join("audit.bundle");
    std::fs::write(
        &bundle,
        Bundle::sign(&contents, hub.cert_der, &key(2)).encode(),
    )
    .unwrap();
    let ca_pem = dir.join("ca.pem");
    std::fs::write(&ca_pem, ca.cert().to_pem()).unwrap();
    (bundle, ca_pem, entries, contents)
}

#[test]
fn an_audit_bundle_verifies_with_only_the_ca_and_what_is_wrong_is_named() {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path();
    let (bundle, ca, entries, contents) = bundle_files(dir);
    let (b, c) = (bundle.to_str().unwrap(), ca.to_str().unwrap());

    let out = verify(dir, &["--bundle", b, "--ca", c]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("The bundle verifies"), "{stdout}");
    assert!(stdout.contains("attested up to seq 3"), "{stdout}");
    let out = output_within(
        Command::new(env!("CARGO_BIN_EXE_sentinel-node"))
            .arg("--data-dir")
            .arg(dir)
            .arg("--json")
            .args(["audit", "verify", "--bundle", b, "--ca", c]),
        EXIT_BOUND,
        "audit verify --json",
    );
    assert!(out.status.success());
    let v: Value = serde_json::from_str(&text(&out.stdout)).unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(v["runs"][0]["role"], "sensor");
    assert_eq!(v["runs"][0]["attested"]["seq"], 3);

    // One byte of the second reading changed: the entry is named, with a
    // non-zero exit.
    let mut changed = contents.clone();
    let entry = &mut changed.runs[0].entries[1];
    let last = entry.len() - 1;
    entry[last] ^= 1;
    // Named by the id of the bytes as they stand.
    let changed_id = SignedEntry::from_bytes(entry.clone()).unwrap().id();
    let signed = Bundle::decode(&std::fs::read(&bundle).unwrap()).unwrap();
    let tampered = dir.join("tampered.bundle");
    let bad = Bundle {
        contents: changed.encode(),
        ..signed
    };
    std::fs::write(&tampered, bad.encode()).unwrap();
    let out = verify(dir, &["--bundle", tampered.to_str().unwrap(), "--ca", c]);
    let stdout = text(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    let named = format!(
        "BAD entry: author {} seq 2 id {}",
        entries[1].author().to_hex(),
        changed_id.to_hex()
    );
    assert!(stdout.contains(&named), "{stdout}");
    assert!(stdout.contains("BAD bundle"), "{stdout}");

    // Checked against another deployment's CA: nothing holds.
    let other = dir.join("other-ca.pem");
    std::fs::write(&other, deployment("Another CA", 9).cert().to_pem()).unwrap();
    let out = verify(dir, &["--bundle", b, "--ca", other.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        text(&out.stdout).contains("does not chain to the CA"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn bad_bundle_input_is_refused_clearly() {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path();
    let (bundle, ca, _, _) = bundle_files(dir);
    let (b, c) = (bundle.to_str().unwrap(), ca.to_str().unwrap());
    let not_a_bundle = dir.join("notes.txt");
    std::fs::write(&not_a_bundle, "hello").unwrap();
    let cases: [(Vec<&str>, &str); 5] = [
        (
            vec!["--bundle", "no-such.bundle", "--ca", c],
            "reading the bundle no-such.bundle",
        ),
        (
            vec!["--bundle", b, "--ca", "no-such-ca.pem"],
            "reading the CA certificate no-such-ca.pem",
        ),
        (vec!["--bundle", b, "--ca", b], "reading the CA certificate"),
        (
            vec!["--bundle", not_a_bundle.to_str().unwrap(), "--ca", c],
            "not an audit bundle",
        ),
        (vec!["--bundle", b], "--ca"),
    ];
    for (args, says) in cases {
        let out = verify(dir, &args);
        let stderr = text(&out.stderr);
        assert!(!out.status.success(), "{args:?} should fail");
        assert!(
            stderr.contains(says),
            "{args:?}: expected {says:?} in {stderr:?}"
        );
    }
}
