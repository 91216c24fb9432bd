//! The audit stream (`sentinel_hub::audit`) over a real PostgreSQL: a line
//! for each accepted, quarantined and forked entry with the fields an
//! auditor reads; a restart resuming after the mark; a batch committing
//! late below positions already visible, not skipped; rotation by size;
//! syslog over a real unix datagram socket.

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sentinel_certs::testing::{deployment, issue};
use sentinel_certs::Enrollment;
use sentinel_hub::audit::{Follower, Sink};
use sentinel_hub::config::audit::{AuditSettings, AuditStream};
use sentinel_hub::PgStore;
use sentinel_schema::{BodyKind, DeviceRole};
use sentinel_sync::testing::{chain, key, reading, sign_after};
use sentinel_sync::{RejectReason, Rejection};
use serde_json::Value;

use crate::{fresh_store, verified, NOW};

fn hub_identity() -> Enrollment {
    issue(&deployment("audit", 1), DeviceRole::Hub, "hub", 2)
}

fn follower(store: &PgStore, settings: &AuditSettings, hub: &Enrollment) -> Follower {
    let sink = Sink::open(settings).unwrap().expect("a stream");
    Follower::new(store.clone(), sink, hub.identity.author, hub.ca.clone())
}

fn to_file(path: &Path, rotate_bytes: u64, keep: usize) -> AuditSettings {
    AuditSettings {
        stream: AuditStream::File(path.to_path_buf()),
        rotate_bytes,
        keep,
    }
}

/// Steps until `want` lines are written in all (positions settle a poll
/// after they are first seen, later while another transaction on the
/// server runs); bounded.
async fn step_until(f: &mut Follower, want: usize) -> usize {
    let mut n = 0;
    for _ in 0..1000 {
        n += f.step().await.unwrap();
        if n >= want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    n
}

fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn rotated(path: &Path, n: usize) -> PathBuf {
    PathBuf::from(format!("{}.{n}", path.display()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_verdict_is_a_line_and_a_restart_resumes_after_the_mark() {
    let (_db, store) = fresh_store().await;
    let ca = deployment("audit", 1);
    let hub = issue(&ca, DeviceRole::Hub, "hub", 2);
    let node = issue(&ca, DeviceRole::Node, "node-1", 3);
    store
        .add_certificates(&[(node.identity.author, node.cert_der.clone())], NOW)
        .await
        .unwrap();
    let k = sentinel_certs::testing::key(3);
    let log = chain(&k, 5, reading);
    store.apply(verified(&log[..3]), NOW).await.unwrap();
    // A second entry at seq 2: a fork.
    let rival = sign_after(&k, Some(&log[0]), NOW + 1, reading(77));
    let report = store
        .apply(verified(std::slice::from_ref(&rival)), NOW + 2)
        .await
        .unwrap();
    assert_eq!(report.forks.len(), 1);
    // Another author's entry, refused.
    let other = chain(&key(40), 1, reading);
    let refused = Rejection {
        entry: other[0].clone(),
        reason: RejectReason::Revoked,
        detail: "the author is revoked: seq 1 is after the last valid seq 0".into(),
    };
    store.quarantine(&[refused], NOW + 5).await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let settings = to_file(&path, 1 << 20, 3);
    let mut f = follower(&store, &settings, &hub);
    assert_eq!(step_until(&mut f, 5).await, 5);
    let got = lines(&path);
    assert_eq!(got.len(), 5, "{got:#?}");

    let accepted: Vec<&Value> = got.iter().filter(|l| l["verdict"] == "accepted").collect();
    assert_eq!(accepted.len(), 3);
    for (l, e) in accepted.iter().zip(&log) {
        assert_eq!(l["v"], 1);
        assert_eq!(l["hub"], hub.identity.author.to_hex());
        assert_eq!(l["stream"], "log");
        assert_eq!(l["entry_id"], e.id().to_hex());
        assert_eq!(l["author"], e.author().to_hex());
        assert_eq!(l["author_role"], "node");
        assert_eq!(l["seq"], e.seq());
        assert_eq!(l["kind"], "sensor_reading");
        assert_eq!(l["hlc_ms"], e.entry().hlc.wall_ms);
        assert_eq!(l["hlc_counter"], e.entry().hlc.counter);
        assert_eq!(l["size"], e.as_bytes().len());
        assert_eq!(l["received_ms"], NOW);
        assert!(l["reason_code"].is_null() && l["held_id"].is_null());
        assert!(l["actor"].is_null() && l["event_id"].is_null());
        assert!(l.get("decode_error").is_none());
    }
    assert!(accepted[0]["prev"].is_null());
    assert_eq!(accepted[1]["prev"], log[0].id().to_hex());
    assert_eq!(accepted[0]["hlc_time"], "2026-09-21T14:13:20.000Z");

    let q = got.iter().find(|l| l["verdict"] == "quarantined").unwrap();
    assert_eq!(q["stream"], "quarantine");
    assert_eq!(q["reason_code"], "revoked");
    assert!(q["reason"].as_str().unwrap().contains("revoked"));
    assert_eq!(q["entry_id"], other[0].id().to_hex());
    assert!(
        q["author_role"].is_null(),
        "the hub holds no certificate of it"
    );
    assert_eq!(q["received_ms"], NOW + 5);

    let fork = got.iter().find(|l| l["verdict"] == "fork").unwrap();
    assert_eq!(fork["stream"], "forks");
    assert_eq!(fork["reason_code"], "fork");
    assert_eq!(fork["entry_id"], rival.id().to_hex());
    assert_eq!(fork["held_id"], log[1].id().to_hex());
    assert_eq!(fork["seq"], 2);
    assert_eq!(fork["received_ms"], NOW + 2);

    // Nothing is written twice by the same follower.
    assert_eq!(f.step().await.unwrap(), 0);
    assert_eq!(f.step().await.unwrap(), 0);

    // A restart: a new follower on the same file starts after the mark.
    drop(f);
    store.apply(verified(&log[3..]), NOW).await.unwrap();
    let mut again = follower(&store, &settings, &hub);
    assert_eq!(step_until(&mut again, 2).await, 2);
    let got = lines(&path);
    assert_eq!(got.len(), 7, "no line repeated: {got:#?}");
    assert_eq!(
        (got[5]["seq"].as_u64(), got[6]["seq"].as_u64()),
        (Some(4), Some(5))
    );
    let keys: std::collections::BTreeSet<(String, i64)> = got
        .iter()
        .map(|l| (l["stream"].to_string(), l["pos"].as_i64().unwrap()))
        .collect();
    assert_eq!(keys.len(), 7, "(stream, pos) is unique");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_committing_late_below_visible_positions_is_not_skipped() {
    let (_db, store) = fresh_store().await;
    let hub = hub_identity();
    let early = chain(&key(41), 1, reading);
    let late = chain(&key(42), 1, reading);
    // A transaction takes a position and holds it uncommitted (as a slow
    // `apply` would); another commits a higher position meanwhile.
    let mut client = store.client().await.unwrap();
    let tx = client.transaction().await.unwrap();
    let e = &early[0];
    tx.execute(
        "INSERT INTO entries
             (author, seq, id, hlc_ms, hlc_counter, kind, bytes, received_ms)
         VALUES ($1, 1, $2, $3, $4, $5, $6, $7)",
        &[
            &e.author().0.as_slice(),
            &e.id().0.as_slice(),
            &(e.entry().hlc.wall_ms as i64),
            &i64::from(e.entry().hlc.counter),
            &i16::from(BodyKind::SensorReading as u8),
            &e.as_bytes(),
            &(NOW as i64),
        ],
    )
    .await
    .unwrap();
    store.apply(verified(&late), NOW).await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let mut f = follower(&store, &to_file(&path, 1 << 20, 1), &hub);
    for _ in 0..5 {
        assert_eq!(
            f.step().await.unwrap(),
            0,
            "nothing is settled while a lower position may still commit"
        );
    }
    tx.commit().await.unwrap();
    assert_eq!(step_until(&mut f, 2).await, 2);
    let got = lines(&path);
    assert_eq!(got[0]["entry_id"], early[0].id().to_hex());
    assert_eq!(got[1]["entry_id"], late[0].id().to_hex());
    assert!(got[0]["pos"].as_i64() < got[1]["pos"].as_i64());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_rotates_at_its_size_and_keeps_the_newest_files() {
    let (_db, store) = fresh_store().await;
    let hub = hub_identity();
    let log = chain(&key(43), 30, reading);
    store.apply(verified(&log), NOW).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    // A line is some 700 bytes: two fit in a file.
    let mut f = follower(&store, &to_file(&path, 1500, 2), &hub);
    assert_eq!(step_until(&mut f, 30).await, 30);
    assert!(path.exists() && rotated(&path, 1).exists() && rotated(&path, 2).exists());
    assert!(
        !rotated(&path, 3).exists(),
        "only two rotated files are kept"
    );
    let mut kept = Vec::new();
    for p in [rotated(&path, 2), rotated(&path, 1), path.clone()] {
        let size = std::fs::metadata(&p).unwrap().len();
        assert!(size > 0 && size <= 1500, "{}: {size} bytes", p.display());
        kept.extend(lines(&p).iter().map(|l| l["seq"].as_u64().unwrap()));
    }
    assert!(kept.len() < 30, "the oldest files are gone");
    let newest: Vec<u64> = (31 - kept.len() as u64..=30).collect();
    assert_eq!(kept, newest, "the newest lines, in order, across the files");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syslog_gets_one_rfc5424_message_per_line() {
    let (_db, store) = fresh_store().await;
    let hub = hub_identity();
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("log.sock");

    // Destinations that cannot be opened are named.
    let missing = AuditSettings {
        stream: AuditStream::Syslog(socket.clone()),
        ..AuditSettings::default()
    };
    let e = Sink::open(&missing).unwrap_err();
    assert!(
        e.contains("cannot reach the syslog socket") && e.contains("log.sock"),
        "{e}"
    );
    let nowhere = to_file(&dir.path().join("no/such/folder/a.jsonl"), 100, 1);
    let e = Sink::open(&nowhere).unwrap_err();
    assert!(
        e.contains("cannot open the audit file") && e.contains("a.jsonl"),
        "{e}"
    );

    let daemon = UnixDatagram::bind(&socket).unwrap();
    daemon
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let log = chain(&key(44), 2, reading);
    store.apply(verified(&log), NOW).await.unwrap();
    let other = chain(&key(45), 1, reading);
    let refused = Rejection {
        entry: other[0].clone(),
        reason: RejectReason::UnknownAuthor,
        detail: "no valid certificate is known".into(),
    };
    store.quarantine(&[refused], NOW).await.unwrap();
    let mut f = follower(&store, &missing, &hub);
    assert_eq!(step_until(&mut f, 3).await, 3);

    let mut buf = vec![0u8; 65_536];
    let head = format!(" sentinel-hub {} audit - ", std::process::id());
    for want in ["accepted", "accepted", "quarantined"] {
        let n = daemon.recv(&mut buf).unwrap();
        let message = std::str::from_utf8(&buf[..n]).unwrap();
        // Facility 13 (log audit): informational 110, warning 108.
        let pri = if want == "accepted" {
            "<110>1 "
        } else {
            "<108>1 "
        };
        assert!(message.starts_with(pri), "{message}");
        let (_, json) = message.split_once(&head).expect("the header");
        let line: Value = serde_json::from_str(json).unwrap();
        assert_eq!(line["verdict"], want);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn entries_a_node_syncs_into_the_hub_are_streamed() {
    let _t = crate::e2e::timed("entries_a_node_syncs_into_the_hub_are_streamed");
    let ca = crate::e2e::deployment("Sentinel audit test CA", 1);
    let hub = crate::e2e::Hub::start(&ca, 10).await;
    let node = crate::e2e::Peer::new(&ca, "node-1", 11);
    node.report(1_000, 3);
    let s = crate::e2e::sync(&node, &hub).await;
    assert_eq!(s.sent, 3, "{s:?}");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let hub_id = issue(&ca, DeviceRole::Hub, "hub-1", 90);
    let mut f = follower(&hub.store, &to_file(&path, 1 << 20, 1), &hub_id);
    let author = node.enrollment.identity.author.to_hex();
    let mut streamed = Vec::new();
    for _ in 0..1000 {
        f.step().await.unwrap();
        streamed = lines(&path)
            .into_iter()
            .filter(|l| l["author"] == author.as_str())
            .collect();
        if streamed.len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(streamed.len(), 3, "{streamed:#?}");
    for (l, n) in streamed.iter().zip(1_000u128..) {
        assert_eq!(l["verdict"], "accepted");
        assert_eq!(l["kind"], "event_change");
        assert_eq!(
            l["author_role"], "node",
            "the certificate came with the sync"
        );
        assert_eq!(l["event_id"], crate::e2e::ev(n).to_hex());
        assert_eq!(l["hub"], hub_id.identity.author.to_hex());
    }
}
