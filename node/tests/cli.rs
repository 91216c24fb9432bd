//! The `sentinel-node` command line, as an officer uses it: clear errors
//! with a non-zero exit for bad input, and nothing stored when refused.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use sentinel_http::testing::output_within;

use serde_json::Value;
use tempfile::TempDir;

/// How long one command may run: each exits in well under a second; one
/// still running (a `serve` that should have refused to start) fails.
const EXIT_BOUND: Duration = Duration::from_secs(120);

pub(crate) fn run(dir: &Path, args: &[&str]) -> Output {
    output_within(
        Command::new(env!("CARGO_BIN_EXE_sentinel-node"))
            .arg("--data-dir")
            .arg(dir)
            .args(args)
            .env("SENTINEL_ACTOR", "officer.ada")
            .env_remove("SENTINEL_SPATIALITE"),
        EXIT_BOUND,
        &format!("sentinel-node {args:?}"),
    )
}

pub(crate) fn ok(dir: &Path, args: &[&str]) -> String {
    let out = run(dir, args);
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

pub(crate) fn refused(dir: &Path, args: &[&str], message: &str) {
    let out = run(dir, args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{args:?} should fail");
    assert!(
        stderr.contains(message),
        "{args:?}: expected {message:?} in {stderr:?}"
    );
}

pub(crate) fn json(dir: &Path, args: &[&str]) -> Value {
    let mut a = vec!["--json"];
    a.extend_from_slice(args);
    serde_json::from_str(&ok(dir, &a)).unwrap()
}

pub(crate) fn n_entries(dir: &Path) -> u64 {
    json(dir, &["stats"])["entries"].as_u64().unwrap()
}

pub(crate) const REPORT: &[&str] = &[
    "report",
    "--title",
    "Flooded underpass",
    "--category",
    "flood",
    "--severity",
    "4",
    "--lon",
    "13.4",
    "--lat",
    "52.52",
    "--description",
    "Water 40 cm deep",
];

#[test]
fn an_officers_day_on_the_command_line() {
    let d = TempDir::new().unwrap();
    let dir = d.path();
    ok(dir, &["init"]);
    refused(dir, &["init"], "already exists");
    let acks = json(dir, REPORT);
    let id = acks[0]["event"].as_str().unwrap().to_string();
    let short = &id[..8];
    ok(
        dir,
        &[
            "report",
            "--title",
            "Fallen tree",
            "--category",
            "obstruction",
            "--severity",
            "2",
            "--lon",
            "-0.1",
            "--lat",
            "51.5",
        ],
    );
    ok(dir, &["note", short, "Road closed by police"]);
    ok(dir, &["assign", short, "officer.bo"]);
    ok(dir, &["status", short, "in_progress"]);
    ok(
        dir,
        &[
            "edit",
            short,
            "--severity",
            "5",
            "--location",
            "13.41,52.52",
        ],
    );

    let shown = json(dir, &["show", short]);
    assert_eq!(shown["status"], "in_progress");
    assert_eq!(shown["assignee"], "officer.bo");
    assert_eq!(shown["severity"], 5);
    assert_eq!(shown["notes"][0]["text"], "Road closed by police");
    // report, note, assign, status, and one entry per edited field.
    assert_eq!(shown["history"].as_array().unwrap().len(), 6);
    assert_eq!(shown["history"][0]["actor"], "officer.ada");

    let near = json(dir, &["list", "--near", "13.4,52.52", "--radius", "5000"]);
    assert_eq!(near["items"].as_array().unwrap().len(), 1);
    let text = json(dir, &["search", "flood"]);
    assert_eq!(text["items"][0]["id"], id.as_str());
    let boxed = json(dir, &["list", "--bbox", "-1,51,0,52"]);
    assert_eq!(boxed["items"][0]["title"], "Fallen tree");

    let out = ok(dir, &["audit", "verify"]);
    assert!(out.contains("Every chain verifies"), "{out}");
    let csv = ok(dir, &["export", "--format", "csv"]);
    assert_eq!(csv.lines().count(), 3, "{csv}");
    ok(dir, &["rebuild-views"]);
    assert_eq!(json(dir, &["show", short])["severity"], 5);
}

#[test]
fn bad_input_is_refused_clearly_and_stores_nothing() {
    let d = TempDir::new().unwrap();
    let dir = d.path();
    refused(dir, &["list"], "sentinel-node init");
    ok(dir, &["init"]);
    let id = json(dir, REPORT)[0]["event"].as_str().unwrap().to_string();
    let before = n_entries(dir);
    let with = |field: &str, value: &str| {
        let mut a: Vec<&str> = REPORT.to_vec();
        let i = a.iter().position(|x| *x == field).unwrap();
        a[i + 1] = value;
        a.into_iter().map(str::to_owned).collect::<Vec<String>>()
    };
    for (field, value, message) in [
        ("--severity", "9", "severity"),
        ("--lat", "95", "latitude"),
        ("--lon", "NaN", "longitude"),
        ("--title", "   ", "title"),
    ] {
        let args = with(field, value);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        refused(dir, &args, message);
    }
    refused(
        dir,
        &["status", &id, "resolved"],
        "cannot move from reported to resolved",
    );
    refused(dir, &["status", &id, "done"], "status");
    refused(dir, &["note", "ffffffff", "hello"], "no event matches");
    refused(dir, &["list", "--bbox", "10,10,5,5"], "");
    refused(
        dir,
        &["list", "--near", "1,1"],
        "--near and --radius go together",
    );
    refused(dir, &["list", "--after", "garbage"], "cursor");
    let fake = dir.join("photo.jpg");
    std::fs::write(&fake, "this is text, not a photo").unwrap();
    refused(
        dir,
        &["attach", &id, fake.to_str().unwrap()],
        "not JPEG, PNG, WebP or MP4",
    );
    let mut report_with_photo: Vec<&str> = REPORT.to_vec();
    report_with_photo.extend(["--photo", fake.to_str().unwrap()]);
    refused(dir, &report_with_photo, "not JPEG, PNG, WebP or MP4");
    let bad_import = dir.join("bad.csv");
    std::fs::write(&bad_import, "title,category,severity,lon,lat,reported_at\nok,flood,3,1,1,2026-01-01T00:00:00Z\nbad,flood,7,1,1,2026-01-01T00:00:00Z\n").unwrap();
    refused(dir, &["import", bad_import.to_str().unwrap()], "severity");
    assert_eq!(n_entries(dir), before, "a refused command stored something");
}

#[test]
fn a_missing_spatialite_is_named() {
    let d = TempDir::new().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sentinel-node"))
        .arg("--data-dir")
        .arg(d.path())
        .arg("init")
        .env("SENTINEL_SPATIALITE", "/nonexistent/mod_spatialite.so")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("SENTINEL_SPATIALITE=/nonexistent/mod_spatialite.so does not exist"),
        "{stderr}"
    );
}

#[test]
fn everything_saved_on_a_node_that_never_met_a_hub_is_in_its_outbox() {
    let d = TempDir::new().unwrap();
    let dir = d.path();
    // No node here yet: a clear error, non-zero exit.
    refused(dir, &["outbox"], "sentinel-node init");
    ok(dir, &["init"]);
    let empty = json(dir, &["outbox"]);
    assert_eq!(empty["awaiting_receipt"], 0);
    assert_eq!(empty["entries"].as_array().unwrap().len(), 0);
    assert!(empty["last_receipt"].is_null());
    let out = ok(dir, &["outbox"]);
    assert!(
        out.contains("Every entry written here has a hub receipt"),
        "{out}"
    );

    let id = json(dir, REPORT)[0]["event"].as_str().unwrap().to_string();
    ok(dir, &["note", &id[..8], "Road closed by police"]);
    let outbox = json(dir, &["outbox"]);
    assert_eq!(outbox["awaiting_receipt"], 2);
    let entries = outbox["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    // Newest last, with kind, event and HLC.
    assert_eq!(entries[0]["seq"], 1);
    assert_eq!(entries[1]["seq"], 2);
    for e in entries {
        assert_eq!(e["kind"], "event_change");
        assert_eq!(e["event"], id.as_str());
        assert_eq!(e["entry"].as_str().unwrap().len(), 64);
        assert!(e["hlc"].as_str().unwrap().contains('.'));
    }
    assert!(outbox["last_receipt"].is_null());
    assert_eq!(json(dir, &["stats"])["awaiting_receipt"], 2);

    let text = ok(dir, &["outbox"]);
    assert!(
        text.contains("2 entries written here await a hub receipt"),
        "{text}"
    );
    assert!(text.contains(&id), "{text}");
    assert!(text.contains("No hub has acknowledged"), "{text}");
    let stats = ok(dir, &["stats"]);
    assert!(stats.contains("awaiting a hub receipt: 2"), "{stats}");
    // Receipts are not a view: rebuilding the views keeps the outbox as is.
    ok(dir, &["rebuild-views"]);
    assert_eq!(json(dir, &["outbox"])["awaiting_receipt"], 2);
}

#[test]
fn serve_refuses_a_bad_rules_file_before_it_starts() {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path();
    ok(dir, &["init"]);
    let rules = dir.join("rules.toml");
    std::fs::write(
        &rules,
        "[[rule]]\nid = \"river-high\"\nseverity = 4\nkind = \"water_gauge\"\n\
         value = \"level\"\ncomparison = \">=\"\nthreshold = \"high\"\n",
    )
    .unwrap();
    let path = rules.to_str().unwrap();
    refused(
        dir,
        &["serve", "--rules", path],
        "rule #1 (\"river-high\"): `threshold`: must be a number",
    );
    refused(
        dir,
        &["serve", "--rules", "no-such-file.toml"],
        "cannot read it",
    );
    // From the environment too.
    let out = output_within(
        Command::new(env!("CARGO_BIN_EXE_sentinel-node"))
            .arg("--data-dir")
            .arg(dir)
            .arg("serve")
            .env("SENTINEL_RULES_FILE", path),
        EXIT_BOUND,
        "serve with a bad rules file from the environment",
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("`threshold`"));
}

/// `snapshot --out DIR` while the node's store is open: a data directory a
/// node starts from as it is, with its photos; never over one that holds
/// anything.
#[test]
fn a_snapshot_is_a_data_directory_a_node_starts_from() {
    let d = TempDir::new().unwrap();
    let dir = d.path();
    ok(dir, &["init"]);
    let acks = json(dir, REPORT);
    let id = acks[0]["event"].as_str().unwrap().to_string();
    let photo = dir.join("photo.png");
    std::fs::write(&photo, sentinel_sync::testing::PNG).unwrap();
    ok(dir, &["attach", &id[..8], photo.to_str().unwrap()]);
    let stats = json(dir, &["stats"]);

    let s = TempDir::new().unwrap();
    let snap = s.path().join("snap");
    let snap_s = snap.to_str().unwrap();
    let taken = json(dir, &["snapshot", "--out", snap_s]);
    assert_eq!(taken["entries"], 2, "{taken}");
    assert_eq!(taken["blobs"], 1, "{taken}");
    assert_eq!(taken["heads_digest"], stats["heads_digest"]);
    // The snapshot is a node: the same log, the same photo, the same key.
    let copied = json(&snap, &["stats"]);
    assert_eq!(copied["heads_digest"], stats["heads_digest"]);
    assert_eq!(copied["author"], stats["author"]);
    assert_eq!(copied["media"], 1);
    assert_eq!(
        json(&snap, &["show", &id[..8]])["title"],
        "Flooded underpass"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&snap).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the snapshot holds the key: {mode:o}");
    }

    // Not over a folder that holds anything: refused, nothing changed.
    refused(dir, &["snapshot", "--out", snap_s], "not empty");
    assert_eq!(json(&snap, &["stats"])["entries"], 2);
}
