//! The field node against a real SpatiaLite store: writes, merging,
//! views, queries, media, quarantine and tamper detection.

use sentinel_node::node::{Node, NodeError};
use sentinel_node::spatial::BBox;
use sentinel_node::store::log::entries_after;
use sentinel_node::testing::ev;
use sentinel_schema::query::{EventFilter, EventSearch, Near};
use sentinel_schema::*;
use sentinel_sync::RejectReason;
use tempfile::TempDir;

const T0: u64 = 1_795_000_000_000;

fn node(n: u8) -> (TempDir, Node) {
    let dir = TempDir::new().unwrap();
    let node = Node::init(dir.path(), SigningKey::from_bytes(&[n; 32])).unwrap();
    (dir, node)
}

fn new_event(title: &str, lon: f64, lat: f64) -> NewEvent {
    NewEvent {
        title: title.into(),
        description: format!("{title} described"),
        category: "flood".into(),
        severity: 3,
        location: Point::new(lon, lat).unwrap(),
        reported_ms: T0,
    }
}

/// The first page of at most `limit` events `filter` finds.
fn search(filter: EventFilter, limit: usize) -> EventSearch {
    EventSearch {
        filter,
        limit,
        after: None,
    }
}

fn n_entries(node: &Node) -> i64 {
    node.store()
        .conn()
        .query_row("SELECT count(*) FROM entries", [], |r| r.get(0))
        .unwrap()
}

/// Every entry `from` holds that `to` lacks, verified and applied.
fn sync(from: &Node, to: &mut Node, now: u64) {
    let mut batch = Vec::new();
    for (author, head) in sentinel_node::store::log::heads(from.store().conn())
        .unwrap()
        .iter()
    {
        let have = sentinel_node::store::log::head(to.store().conn(), author)
            .unwrap()
            .map_or(0, |h| h.seq);
        if head.seq > have {
            batch.extend(entries_after(from.store().conn(), author, have, 1_000_000).unwrap());
        }
    }
    let (good, bad) = verify_all(batch);
    assert!(bad.is_empty());
    to.apply_remote(good, now).unwrap();
}

/// The views as text, without row ids, for comparing stores.
fn dump_views(node: &Node) -> Vec<String> {
    let conn = node.store().conn();
    let mut stmt = conn
        .prepare(
            "SELECT event_hex, title, description, category, severity, status, assignee, lon, lat,
                    reported_ms, created_by, updated_hlc_ms, updated_hlc_counter, n_notes, n_media,
                    conflicts, AsText(geom)
             FROM events ORDER BY event",
        )
        .unwrap();
    let rows = stmt
        .query_map([], |r| {
            let mut parts = Vec::new();
            for i in 0..17 {
                let v: rusqlite::types::Value = r.get(i)?;
                parts.push(format!("{v:?}"));
            }
            Ok(parts.join("|"))
        })
        .unwrap();
    let mut out: Vec<String> = rows.map(Result::unwrap).collect();
    let fts: i64 = conn
        .query_row("SELECT count(*) FROM events_fts", [], |r| r.get(0))
        .unwrap();
    let idx: i64 = conn
        .query_row("SELECT count(*) FROM idx_events_geom", [], |r| r.get(0))
        .unwrap();
    out.push(format!("fts={fts} idx={idx}"));
    out
}

#[test]
fn init_refuses_an_existing_node_and_a_foreign_key() {
    let (dir, node) = node(1);
    drop(node);
    assert!(matches!(
        Node::init(dir.path(), SigningKey::from_bytes(&[2; 32])),
        Err(NodeError::AlreadyInitialized(_))
    ));
    // Swap in another key file: the store refuses it.
    let key_path = dir.path().join("node.key");
    std::fs::write(&key_path, hex::encode([9u8; 32])).unwrap();
    assert!(matches!(
        Node::open(dir.path()),
        Err(NodeError::WrongKey(_))
    ));
    let empty = TempDir::new().unwrap();
    assert!(matches!(
        Node::open(empty.path()),
        Err(NodeError::NotInitialized(_))
    ));
}

/// The permission bits of `path`.
#[cfg(unix)]
fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[cfg(unix)]
#[test]
fn the_data_directory_and_its_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let root = TempDir::new().unwrap();
    let dir = root.path().join("data");
    let n = Node::init(&dir, SigningKey::from_bytes(&[1; 32])).unwrap();
    assert_eq!(mode(&dir), 0o700, "the data directory");
    // The store's WAL and shared-memory files exist while it is open.
    for f in [
        "node.key",
        "node.sqlite",
        "node.sqlite-wal",
        "node.sqlite-shm",
    ] {
        assert_eq!(mode(&dir.join(f)), 0o600, "{f}");
    }
    drop(n);

    // Enrolment writes the key again, and the certificates beside it.
    let ca = sentinel_certs::testing::deployment("Private files test CA", 45);
    let e = sentinel_certs::testing::issue(&ca, DeviceRole::Node, "node-1", 46);
    sentinel_node::node::enroll(&dir, &e).unwrap();
    for f in ["node.key", "ca.pem", "node.crt"] {
        assert_eq!(mode(&dir.join(f)), 0o600, "{f}");
    }

    // A store an older version left readable by others is closed up when
    // the node opens it.
    for f in ["node.sqlite", "node.sqlite-wal", "node.sqlite-shm"] {
        if dir.join(f).exists() {
            std::fs::set_permissions(dir.join(f), std::fs::Permissions::from_mode(0o644)).unwrap();
        }
    }
    let n = Node::open(&dir).unwrap();
    for f in ["node.sqlite", "node.sqlite-wal", "node.sqlite-shm"] {
        assert_eq!(mode(&dir.join(f)), 0o600, "{f} after open");
    }
    drop(n);

    // A directory that exists already (made by hand, open to all) is
    // closed up by `init`.
    let made = root.path().join("made");
    std::fs::create_dir(&made).unwrap();
    std::fs::set_permissions(&made, std::fs::Permissions::from_mode(0o755)).unwrap();
    drop(Node::init(&made, SigningKey::from_bytes(&[2; 32])).unwrap());
    assert_eq!(mode(&made), 0o700);
}

#[test]
fn workflow_and_refusals_leave_the_store_untouched() {
    let (_d, mut n) = node(1);
    let e = ev(1);
    n.report(
        &new_event("Flooded underpass", 13.4, 52.5),
        e,
        Some("ada"),
        T0,
    )
    .unwrap();
    n.edit(
        e,
        &EventEdit::Note {
            text: "water rising".into(),
            actor: Some("ada".into()),
            at_ms: T0 + 1,
        },
        Some("ada"),
        T0 + 1,
    )
    .unwrap();
    let before = n_entries(&n);
    // Refused: reported → resolved skips the workflow.
    let err = n
        .edit(e, &EventEdit::Status(Status::Resolved), Some("ada"), T0 + 2)
        .unwrap_err();
    assert!(
        matches!(err, NodeError::Event(EventError::InvalidTransition { .. })),
        "{err}"
    );
    // Refused: severity 9, empty title, unknown event.
    assert!(n.edit(e, &EventEdit::Severity(9), None, T0 + 2).is_err());
    assert!(n
        .edit(e, &EventEdit::Title("  ".into()), None, T0 + 2)
        .is_err());
    assert!(matches!(
        n.edit(ev(99), &EventEdit::Severity(2), None, T0 + 2),
        Err(NodeError::NoSuchEvent(_))
    ));
    assert!(n
        .report(
            &NewEvent {
                severity: 0,
                ..new_event("x", 0.0, 0.0)
            },
            ev(2),
            None,
            T0
        )
        .is_err());
    assert_eq!(n_entries(&n), before);

    n.edit(e, &EventEdit::Assign("bo".into()), Some("ada"), T0 + 3)
        .unwrap();
    for s in [
        Status::InProgress,
        Status::Resolved,
        Status::Closed,
        Status::InProgress,
    ] {
        n.edit(e, &EventEdit::Status(s), Some("bo"), T0 + 4)
            .unwrap();
    }
    let d = n.show(e).unwrap();
    assert_eq!(d.view.status, Status::InProgress);
    assert_eq!(d.view.assignee.as_deref(), Some("bo"));
    assert_eq!(d.view.notes.len(), 1);
    assert_eq!(d.history.len(), 7);
    assert!(n.store().audit().unwrap().ok());
}

#[test]
fn concurrent_edits_merge_and_conflicts_stay_visible() {
    let (_a, mut a) = node(1);
    let (_b, mut b) = node(2);
    let e = ev(7);
    a.report(&new_event("Bridge damaged", 10.0, 50.0), e, Some("ada"), T0)
        .unwrap();
    sync(&a, &mut b, T0 + 1);
    // Offline, both change the title; a adds a note, b changes severity.
    a.edit(
        e,
        &EventEdit::Title("Bridge collapsed".into()),
        Some("ada"),
        T0 + 10,
    )
    .unwrap();
    a.edit(
        e,
        &EventEdit::Note {
            text: "north side".into(),
            actor: None,
            at_ms: T0 + 10,
        },
        None,
        T0 + 10,
    )
    .unwrap();
    b.edit(
        e,
        &EventEdit::Title("Bridge closed".into()),
        Some("bo"),
        T0 + 11,
    )
    .unwrap();
    b.edit(e, &EventEdit::Severity(5), Some("bo"), T0 + 11)
        .unwrap();
    sync(&a, &mut b, T0 + 20);
    sync(&b, &mut a, T0 + 20);
    let (va, vb) = (a.show(e).unwrap().view, b.show(e).unwrap().view);
    assert_eq!(va, vb);
    assert_eq!(va.severity, 5);
    assert_eq!(va.notes.len(), 1);
    let mut titles = va.conflicts.get("title").cloned().unwrap();
    titles.sort();
    assert_eq!(
        titles,
        vec!["Bridge closed".to_string(), "Bridge collapsed".to_string()]
    );
    assert_eq!(dump_views(&a), dump_views(&b));
    assert_eq!(
        a.stats().unwrap().heads_digest,
        b.stats().unwrap().heads_digest
    );
}

#[test]
fn views_rebuild_from_the_log_identically() {
    let (_d, mut n) = node(3);
    for i in 0..40u128 {
        n.report(
            &new_event(
                &format!("event {i}"),
                -10.0 + i as f64,
                40.0 + i as f64 / 10.0,
            ),
            ev(i),
            None,
            T0 + i as u64,
        )
        .unwrap();
        if i % 3 == 0 {
            n.edit(
                ev(i),
                &EventEdit::Note {
                    text: format!("note {i}"),
                    actor: None,
                    at_ms: T0,
                },
                None,
                T0 + 100,
            )
            .unwrap();
        }
    }
    let jpeg = [0xff, 0xd8, 0xff, 0xe0, 0, 16, b'J', b'F', b'I', b'F', 0, 1];
    n.attach(ev(5), &jpeg, "scene.jpg", None, T0 + 200).unwrap();
    let before = dump_views(&n);
    n.store_mut().rebuild_views().unwrap();
    assert_eq!(dump_views(&n), before);
    let ok: i64 = n
        .store()
        .conn()
        .query_row("SELECT CheckSpatialIndex('events', 'geom')", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(ok, 1, "CheckSpatialIndex");
}

/// Checks every row of the events view against the view Automerge builds
/// from every change the log holds about the event (the full path), and
/// against the saved document; returns how many documents are saved as
/// their one creating change (the cheap path's form).
fn assert_rows_are_automerge_views(node: &Node) -> usize {
    let conn = node.store().conn();
    let mut stmt = conn
        .prepare(
            "SELECT event, title, description, category, severity, status, assignee, lon, lat,
                    reported_ms, n_notes, conflicts, created_by FROM events ORDER BY event",
        )
        .unwrap();
    type Row = (Vec<u8>, String, String, String, u8, String, Option<String>);
    type Rest = (f64, f64, i64, i64, String, String);
    let rows: Vec<(Row, Rest)> = stmt
        .query_map([], |r| {
            Ok((
                (
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                ),
                (
                    r.get(7)?,
                    r.get(8)?,
                    r.get(9)?,
                    r.get(10)?,
                    r.get(11)?,
                    r.get(12)?,
                ),
            ))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(!rows.is_empty());
    let mut as_change = 0;
    for ((event, title, description, category, severity, status, assignee), rest) in rows {
        let (lon, lat, reported_ms, n_notes, conflicts, created_by) = rest;
        let event = EventId(event.try_into().unwrap());
        let mut stmt = conn
            .prepare("SELECT bytes FROM entries WHERE event = ?1 ORDER BY pos")
            .unwrap();
        let entries: Vec<SignedEntry> = stmt
            .query_map([event.0], |r| r.get::<_, Vec<u8>>(0))
            .unwrap()
            .map(|b| SignedEntry::from_bytes(b.unwrap()).unwrap())
            .collect();
        let changes = EventDoc::changes_of(&entries);
        let mut doc = EventDoc::from_changes(&[]).unwrap();
        doc.apply_or_keep(&changes);
        let view = doc.view().unwrap();
        let what = event.to_hex();
        assert_eq!(title, view.title, "{what}");
        assert_eq!(description, view.description, "{what}");
        assert_eq!(category, view.category, "{what}");
        assert_eq!(severity, view.severity, "{what}");
        assert_eq!(status, view.status.as_str(), "{what}");
        assert_eq!(assignee, view.assignee, "{what}");
        assert_eq!((lon, lat), (view.location.lon(), view.location.lat()));
        assert_eq!(reported_ms as u64, view.reported_ms, "{what}");
        assert_eq!(n_notes as usize, view.notes.len(), "{what}");
        assert_eq!(conflicts, serde_json::to_string(&view.conflicts).unwrap());
        // The creator: the author of the event's first change in HLC order.
        let first = entries
            .iter()
            .filter(|e| matches!(e.entry().body, Body::EventChange(_)))
            .min_by_key(|e| (e.entry().hlc, e.author()))
            .unwrap();
        assert_eq!(created_by, first.author().to_hex(), "{what}");
        // The saved document, whatever its form, loads to the same view.
        let saved = node.store().document(event).unwrap().unwrap();
        assert_eq!(saved.view().unwrap(), view, "{what}");
        let bytes: Vec<u8> = conn
            .query_row(
                "SELECT doc FROM documents WHERE event = ?1",
                [event.0],
                |r| r.get(0),
            )
            .unwrap();
        if changes.len() == 1 && bytes == changes[0] {
            as_change += 1;
        }
    }
    as_change
}

/// Events written by one author and never edited take the projector's
/// cheap path (view read from the creating change, the change saved as
/// the document); edited and concurrently edited ones merge in Automerge.
/// Either way the views are what Automerge makes of the log, the same on
/// both nodes, and the same again after a full rebuild.
#[test]
fn cheap_path_views_equal_automerge_and_a_full_rebuild() {
    let (_a, mut a) = node(11);
    let (_b, mut b) = node(12);
    // Single-author events: a batch (as import writes them) and singles.
    let batch: Vec<(EventId, NewEvent)> = (0..20u128)
        .map(|i| {
            let mut e = new_event(&format!("batch {i}"), i as f64, -(i as f64) / 3.0);
            e.severity = 1 + (i % 5) as u8;
            (ev(100 + i), e)
        })
        .collect();
    a.report_many(&batch, Some("ada"), T0).unwrap();
    a.report(&new_event("single", 5.0, 5.0), ev(200), None, T0 + 1)
        .unwrap();
    b.report(&new_event("from b", 6.0, 6.0), ev(300), Some("bo"), T0 + 2)
        .unwrap();
    // Created and edited before the other node hears of it: the receiver
    // gets both changes in one batch.
    a.report(&new_event("edited", 7.0, 7.0), ev(201), None, T0 + 3)
        .unwrap();
    a.edit(ev(201), &EventEdit::Severity(5), None, T0 + 4)
        .unwrap();
    sync(&a, &mut b, T0 + 5);
    sync(&b, &mut a, T0 + 5);
    // Concurrent edits of one event, and a single edit of another that
    // arrived through the cheap path.
    a.edit(
        ev(100),
        &EventEdit::Title("batch zero, a".into()),
        None,
        T0 + 10,
    )
    .unwrap();
    b.edit(
        ev(100),
        &EventEdit::Title("batch zero, b".into()),
        None,
        T0 + 11,
    )
    .unwrap();
    b.edit(
        ev(101),
        &EventEdit::Note {
            text: "seen".into(),
            actor: None,
            at_ms: T0,
        },
        None,
        T0 + 12,
    )
    .unwrap();
    sync(&a, &mut b, T0 + 20);
    sync(&b, &mut a, T0 + 20);
    let shown = a.show(ev(100)).unwrap().view;
    assert_eq!(shown.conflicts["title"].len(), 2);

    for n in [&a, &b] {
        // 23 events; 3 edited: the other 20 are saved as their change.
        assert_eq!(assert_rows_are_automerge_views(n), 20);
    }
    assert_eq!(dump_views(&a), dump_views(&b));
    let before = dump_views(&a);
    a.store_mut().rebuild_views().unwrap();
    assert_eq!(dump_views(&a), before);
    assert_eq!(assert_rows_are_automerge_views(&a), 20);
}

#[test]
fn media_is_sniffed_and_stored_by_hash() {
    let (_d, mut n) = node(4);
    n.report(&new_event("Fire", 1.0, 1.0), ev(1), None, T0)
        .unwrap();
    let before = n_entries(&n);
    // Text pretending to be a photo.
    assert!(matches!(
        n.attach(ev(1), b"hello, not a jpeg", "x.jpg", None, T0),
        Err(NodeError::Media(_))
    ));
    assert!(n
        .attach(ev(1), &[0xff, 0xd8, 0xff, 0xdb], &"n".repeat(300), None, T0)
        .is_err());
    assert_eq!(n_entries(&n), before);
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";
    n.attach(ev(1), png, "map.png", None, T0).unwrap();
    let d = n.show(ev(1)).unwrap();
    assert_eq!(d.view.media.len(), 1);
    assert_eq!(d.view.media[0].mime.as_mime(), "image/png");
    assert_eq!(n.media().read(&d.view.media[0].hash).unwrap(), png);
}

#[test]
fn remote_gaps_are_quarantined_then_released_and_forks_kept() {
    let (_a, mut a) = node(1);
    let (_b, mut b) = node(2);
    for i in 0..5u128 {
        a.report(
            &new_event(&format!("e{i}"), 0.0, 0.0),
            ev(i),
            None,
            T0 + i as u64,
        )
        .unwrap();
    }
    let all = entries_after(a.store().conn(), &a.author(), 0, 100).unwrap();
    let verified = |v: &[SignedEntry]| verify_all(v.to_vec()).0;
    // Entries 4 and 5 arrive first: a gap.
    let r = b.apply_remote(verified(&all[3..]), T0).unwrap();
    assert_eq!(r.applied, 0);
    assert_eq!(r.quarantined.len(), 2);
    assert_eq!(r.quarantined[0].reason, RejectReason::NotStartingAtOne);
    // 1..=3 arrive: the chain is whole, but 4 and 5 were refused for the
    // missing start, not for a gap, so they wait for the next delivery.
    let r = b.apply_remote(verified(&all[..3]), T0).unwrap();
    assert_eq!(r.applied, 3);
    let r = b.apply_remote(verified(&all[3..]), T0).unwrap();
    assert_eq!(r.applied, 2);
    // A gap inside the chain is released as soon as it closes.
    for i in 5..8u128 {
        a.report(&new_event(&format!("e{i}"), 0.0, 0.0), ev(i), None, T0)
            .unwrap();
    }
    let more = entries_after(a.store().conn(), &a.author(), 5, 100).unwrap();
    let r = b.apply_remote(verified(&more[1..]), T0).unwrap();
    assert_eq!((r.applied, r.quarantined.len()), (0, 2));
    let r = b.apply_remote(verified(&more[..1]), T0).unwrap();
    assert_eq!((r.applied, r.quarantined.len()), (3, 0));
    assert_eq!(
        b.stats().unwrap().heads_digest,
        a.stats().unwrap().heads_digest
    );
    // Re-sending is idempotent.
    let r = b.apply_remote(verified(&all), T0).unwrap();
    assert_eq!((r.applied, r.duplicates), (0, 5));
    // A fork: the author signs a second entry at seq 2.
    let key = SigningKey::from_bytes(&[1; 32]);
    let (_, change) = EventDoc::create(&a.author(), &new_event("rewritten", 0.0, 0.0), T0).unwrap();
    let fork = Entry {
        author: a.author(),
        seq: 2,
        prev: Some(all[0].id()),
        hlc: Hlc::new(T0, 99),
        actor: None,
        body: Body::EventChange(EventChange {
            event: ev(50),
            change,
        }),
    }
    .sign(&key)
    .unwrap();
    let r = b.apply_remote(verified(&[fork]), T0).unwrap();
    assert_eq!(r.forks.len(), 1);
    assert_eq!(b.stats().unwrap().forks, 1);
    assert!(
        b.store().audit().unwrap().ok(),
        "a fork is evidence, not damage"
    );
}

/// A hostile peer floods a node with entries that fail checks and with
/// forks: past the evidence quota, the node keeps a summary per author and
/// reason instead of the bytes, and still counts (flags) every one.
#[test]
fn evidence_past_the_quota_is_kept_as_a_summary() {
    const QUOTA: u64 = 2_000;
    let (_a, mut a) = node(1);
    let (_b, mut b) = node(2);
    b.store().set_evidence_quota(QUOTA).unwrap();
    for i in 0..40u128 {
        a.report(&new_event(&format!("e{i}"), 0.0, 0.0), ev(i), None, T0)
            .unwrap();
    }
    let all = entries_after(a.store().conn(), &a.author(), 0, 100).unwrap();
    let verified = |v: &[SignedEntry]| verify_all(v.to_vec()).0;
    let held_bytes = |n: &Node| -> i64 {
        n.store()
            .conn()
            .query_row(
                "SELECT (SELECT coalesce(sum(length(bytes)), 0) FROM quarantine)
                     + (SELECT coalesce(sum(length(bytes)), 0) FROM forks)",
                [],
                |r| r.get(0),
            )
            .unwrap()
    };

    // 39 entries that cannot link (the chain's start is missing).
    let r = b.apply_remote(verified(&all[1..]), T0).unwrap();
    assert_eq!(r.quarantined.len(), 39, "every refusal is still reported");
    let usage = b.store().evidence_usage().unwrap();
    assert!(usage.bytes <= QUOTA, "{usage:?}");
    assert_eq!(held_bytes(&b), usage.bytes as i64);
    let kept: u64 = b
        .store()
        .conn()
        .query_row("SELECT count(*) FROM quarantine", [], |r| r.get(0))
        .unwrap();
    assert!(kept > 0 && kept < 39, "{kept}");
    let summary = b.store().evidence_summary().unwrap();
    assert_eq!(summary.len(), 1, "{summary:?}");
    let s = &summary[0];
    assert_eq!(
        (s.author, s.reason_code.as_str(), s.count, s.seq, s.id),
        (
            a.author(),
            RejectReason::NotStartingAtOne.code(),
            39 - kept,
            40,
            all[39].id()
        )
    );
    assert_eq!(b.stats().unwrap().quarantined, 39);

    // The whole chain, then forks of it: flagged, summarized, not kept.
    b.apply_remote(verified(&all), T0).unwrap();
    let key = SigningKey::from_bytes(&[1; 32]);
    let forks: Vec<SignedEntry> = (0..5u32)
        .map(|n| {
            let (_, change) =
                EventDoc::create(&a.author(), &new_event("rewritten", 0.0, 0.0), T0).unwrap();
            Entry {
                author: a.author(),
                seq: 2,
                prev: Some(all[0].id()),
                hlc: Hlc::new(T0, 100 + n),
                actor: None,
                body: Body::EventChange(EventChange {
                    event: ev(500 + u128::from(n)),
                    change,
                }),
            }
            .sign(&key)
            .unwrap()
        })
        .collect();
    let r = b.apply_remote(verified(&forks), T0).unwrap();
    assert_eq!(r.forks.len(), 5, "every fork is reported");
    assert_eq!(
        b.stats().unwrap().forks,
        5,
        "and counted: the author is flagged"
    );
    assert!(b.store().evidence_usage().unwrap().bytes <= QUOTA);
    assert_eq!(
        held_bytes(&b),
        b.store().evidence_usage().unwrap().bytes as i64
    );
    let fork_summary: Vec<_> = b
        .store()
        .evidence_summary()
        .unwrap()
        .into_iter()
        .filter(|s| s.reason_code == "fork")
        .collect();
    assert_eq!(fork_summary.len(), 1);
    assert_eq!(fork_summary[0].id, forks[4].id());
    assert!(b.store().audit().unwrap().ok());
}

fn tamper(
    what: &str,
    edit: impl FnOnce(&rusqlite::Connection),
) -> Vec<sentinel_node::store::audit::AuditProblem> {
    let (dir, mut n) = node(6);
    for i in 0..6u128 {
        n.report(&new_event(&format!("e{i}"), 0.0, 0.0), ev(i), None, T0)
            .unwrap();
    }
    assert!(n.store().audit().unwrap().ok());
    drop(n);
    let raw = rusqlite::Connection::open(dir.path().join("node.sqlite")).unwrap();
    edit(&raw);
    drop(raw);
    let n = Node::open(dir.path());
    // Opening may already fail on damaged bytes (the projector reads them);
    // audit through the store directly in that case.
    let report = match n {
        Ok(n) => n.store().audit().unwrap(),
        Err(_) => sentinel_node::store::Store::open(&dir.path().join("node.sqlite"))
            .unwrap()
            .audit()
            .unwrap(),
    };
    assert!(!report.ok(), "{what} went unnoticed");
    report.problems
}

#[test]
fn audit_names_the_tampered_entry() {
    // One byte inside entry 3's signed content.
    let p = tamper("a changed byte", |raw| {
        let mut b: Vec<u8> = raw
            .query_row("SELECT bytes FROM entries WHERE seq = 3", [], |r| r.get(0))
            .unwrap();
        b[100] ^= 0x01;
        raw.execute("UPDATE entries SET bytes = ?1 WHERE seq = 3", [b])
            .unwrap();
    });
    assert_eq!(p[0].seq, 3, "{p:?}");
    // Entry 4 deleted.
    let p = tamper("a deleted entry", |raw| {
        raw.execute_batch("DELETE FROM entries WHERE seq = 4;")
            .unwrap()
    });
    assert_eq!(p[0].seq, 5, "{p:?}");
    assert!(p[0].reason.contains("gap"), "{p:?}");
    // Entries 2 and 3 swapped (bytes and ids trade rows).
    let p = tamper("swapped entries", |raw| {
        raw.execute_batch(
            "UPDATE entries SET seq = -2 WHERE seq = 2;
             UPDATE entries SET seq = 2 WHERE seq = 3;
             UPDATE entries SET seq = 3 WHERE seq = -2;",
        )
        .unwrap()
    });
    assert_eq!(p[0].seq, 2, "{p:?}");
}

#[test]
fn spatial_answers_agree_three_ways() {
    let (_d, mut n) = node(8);
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut items = Vec::new();
    for i in 0..1500u128 {
        let (lon, lat) = (-20.0 + 40.0 * next(), 30.0 + 30.0 * next());
        items.push((ev(i), new_event(&format!("p{i}"), lon, lat)));
    }
    n.report_many(&items, None, T0).unwrap();
    let all = n.store().event_positions().unwrap();
    for _ in 0..30 {
        let (x, y) = (-20.0 + 40.0 * next(), 30.0 + 30.0 * next());
        let (w, h) = (10.0 * next(), 8.0 * next());
        let b = BBox::new(x, y, (x + w).min(180.0), (y + h).min(90.0)).unwrap();
        let mut brute: Vec<EventId> = all
            .iter()
            .filter(|(_, p)| {
                p.lon() >= b.min_lon()
                    && p.lon() <= b.max_lon()
                    && p.lat() >= b.min_lat()
                    && p.lat() <= b.max_lat()
            })
            .map(|(e, _)| *e)
            .collect();
        let mut sql = n.store().ids_in_bbox_sql(&b).unwrap();
        let mut tree = n.spatial().unwrap().bbox(&b);
        brute.sort();
        sql.sort();
        tree.sort();
        assert_eq!(sql, brute);
        assert_eq!(tree, brute);
    }
    // Radius: SQL search against the R-tree.
    let center = Point::new(0.0, 45.0).unwrap();
    let q = search(
        EventFilter {
            near: Some(Near {
                point: center,
                radius_m: 300_000.0,
            }),
            ..EventFilter::default()
        },
        1000,
    );
    let mut sql: Vec<String> = n
        .store()
        .search(&q)
        .unwrap()
        .items
        .into_iter()
        .map(|e| e.id.to_hex())
        .collect();
    let mut tree: Vec<String> = n
        .spatial()
        .unwrap()
        .within_radius(center, 300_000.0)
        .unwrap()
        .into_iter()
        .map(|(e, _)| e.to_hex())
        .collect();
    sql.sort();
    tree.sort();
    assert!(!sql.is_empty());
    assert_eq!(sql, tree);
}

#[test]
fn search_filters_and_pages_stay_stable_while_events_arrive() {
    let (_d, mut n) = node(9);
    let items: Vec<(EventId, NewEvent)> = (0..25u128)
        .map(|i| {
            let mut e = new_event(
                if i % 2 == 0 {
                    "flooded road"
                } else {
                    "fallen tree"
                },
                0.0,
                0.0,
            );
            e.reported_ms = T0 + (i as u64 % 7) * 1000;
            e.severity = (i % 5) as u8 + 1;
            (ev(i), e)
        })
        .collect();
    n.report_many(&items, None, T0).unwrap();
    let q = |after| EventSearch {
        after,
        ..search(
            EventFilter {
                text: Some("flooded".into()),
                ..EventFilter::default()
            },
            4,
        )
    };
    let mut seen = Vec::new();
    let mut page = n.store().search(&q(None)).unwrap();
    let mut k = 100u128;
    loop {
        seen.extend(page.items.iter().map(|e| e.id.to_hex()));
        // New matching events arrive between pages, both newer and older.
        for reported in [T0 + 10_000, T0 - 10_000] {
            let mut e = new_event("flooded again", 0.0, 0.0);
            e.reported_ms = reported;
            n.report(&e, ev(k), None, T0).unwrap();
            k += 1;
        }
        match page.next {
            Some(c) => page = n.store().search(&q(Some(c))).unwrap(),
            None => break,
        }
    }
    let originals: Vec<String> = items
        .iter()
        .filter(|(_, e)| e.title.starts_with("flooded"))
        .map(|(id, _)| id.to_hex())
        .collect();
    for o in &originals {
        assert_eq!(seen.iter().filter(|s| *s == o).count(), 1, "{o} seen once");
    }
    let mut dedup = seen.clone();
    dedup.sort();
    dedup.dedup();
    assert_eq!(dedup.len(), seen.len(), "no event twice");
    // Filters.
    let sev = n
        .store()
        .search(&search(
            EventFilter {
                min_severity: Some(4),
                ..EventFilter::default()
            },
            100,
        ))
        .unwrap();
    assert!(sev.items.iter().all(|e| e.severity >= 4));
    assert_eq!(sev.items.len(), 10);
    let st = n
        .store()
        .search(&search(
            EventFilter {
                statuses: vec![Status::Closed],
                ..EventFilter::default()
            },
            100,
        ))
        .unwrap();
    assert!(st.items.is_empty());
    // FTS operators in user text are just words.
    let weird = n
        .store()
        .search(&search(
            EventFilter {
                text: Some("\"tree OR* NEAR(".into()),
                ..EventFilter::default()
            },
            10,
        ))
        .unwrap();
    assert!(weird.items.is_empty());
}

#[test]
fn a_box_across_the_antimeridian_finds_both_sides() {
    let (_d, mut n) = node(10);
    let places = [(179.5, -17.0), (-179.5, -16.5), (0.0, -17.0), (179.5, 40.0)];
    for (i, (lon, lat)) in places.into_iter().enumerate() {
        let e = new_event(&format!("p{i}"), lon, lat);
        n.report(&e, ev(i as u128), None, T0).unwrap();
    }
    let area: Bounds = "179,-18,-179,-16".parse().unwrap();
    assert!(area.wraps());
    let filter = EventFilter {
        area: Some(area),
        ..EventFilter::default()
    };
    let page = n.store().search(&search(filter, 10)).unwrap();
    let mut found: Vec<EventId> = page.items.iter().map(|e| e.id).collect();
    found.sort();
    assert_eq!(found, [ev(0), ev(1)]);
    // The union of its two parts, each asked on its own.
    let mut parts = Vec::new();
    for b in area.parts() {
        parts.extend(n.store().ids_in_bbox_sql(&b).unwrap());
    }
    parts.sort();
    assert_eq!(parts, found);
}

#[test]
fn enrolling_takes_on_the_certified_identity_only_before_any_write() {
    use sentinel_certs::{Ca, Enrollment};
    const YEAR: u64 = 365 * 24 * 3600 * 1000;
    let ca = Ca::create(
        "Test CA",
        T0 - YEAR,
        T0 + 5 * YEAR,
        SigningKey::from_bytes(&[40; 32]),
    )
    .unwrap();
    let issue = |role, seed: u8| -> Enrollment {
        ca.enroll(
            role,
            "dev",
            SigningKey::from_bytes(&[seed; 32]),
            T0 - 1000,
            T0 + YEAR,
            T0,
        )
        .unwrap()
    };
    let (dir, n) = node(41);
    drop(n);
    let sensor = issue(DeviceRole::Sensor, 42);
    assert!(matches!(
        sentinel_node::node::enroll(dir.path(), &sensor),
        Err(NodeError::EnrollWrongRole(DeviceRole::Sensor))
    ));
    let e = issue(DeviceRole::Node, 43);
    sentinel_node::node::enroll(dir.path(), &e).unwrap();
    let mut n = Node::open(dir.path()).unwrap();
    assert_eq!(n.author(), e.identity.author);
    use sentinel_sync::SyncStore;
    assert_eq!(
        n.store().certificate(&e.identity.author).unwrap(),
        Some(e.cert_der.clone())
    );
    n.report(&new_event("first", 0.0, 0.0), ev(1), None, T0)
        .unwrap();
    drop(n);
    let again = issue(DeviceRole::Node, 44);
    assert!(matches!(
        sentinel_node::node::enroll(dir.path(), &again),
        Err(NodeError::EnrollAfterWrites(1))
    ));
}

#[test]
fn a_checkpoint_is_kept_and_one_contradicting_the_local_log_is_a_breach() {
    let (_a, mut a) = node(1);
    let (_b, mut b) = node(2);
    for i in 0..3u128 {
        a.report(&new_event(&format!("e{i}"), 0.0, 0.0), ev(i), None, T0)
            .unwrap();
    }
    sync(&a, &mut b, T0);
    let chain = entries_after(a.store().conn(), &a.author(), 0, 100).unwrap();
    let hub = SigningKey::from_bytes(&[9; 32]);
    let checkpoint = |seq: u64, prev: Option<&SignedEntry>, attested: &SignedEntry| {
        Entry {
            author: author_of(&hub),
            seq,
            prev: prev.map(SignedEntry::id),
            hlc: Hlc::new(T0 + seq, 0),
            actor: None,
            body: Body::HubCheckpoint(HubCheckpoint {
                heads: vec![(
                    attested.author(),
                    Head {
                        seq: attested.seq(),
                        id: attested.id(),
                    },
                )],
            }),
        }
        .sign(&hub)
        .unwrap()
    };
    // An honest checkpoint of seq 2, then one of seq 3: the higher is kept.
    let c1 = checkpoint(1, None, &chain[1]);
    let c2 = checkpoint(2, Some(&c1), &chain[2]);
    b.apply_remote(verify_all(vec![c1.clone(), c2.clone()]).0, T0)
        .unwrap();
    b.catch_up_views().unwrap();
    let attested = b.store().attestations().unwrap();
    assert_eq!(attested.len(), 1, "{attested:?}");
    assert_eq!(attested[0].head.seq, 3);
    assert!(b.store().breaches().unwrap().is_empty());
    // A checkpoint attesting another entry at seq 3 than the one held.
    let forged = Entry {
        seq: 3,
        ..chain[2].entry().clone()
    };
    let forged = Entry {
        hlc: Hlc::new(T0 + 77, 0),
        ..forged
    }
    .sign(&SigningKey::from_bytes(&[1; 32]))
    .unwrap();
    let c3 = checkpoint(3, Some(&c2), &forged);
    b.apply_remote(verify_all(vec![c3]).0, T0).unwrap();
    b.catch_up_views().unwrap();
    let breaches = b.store().breaches().unwrap();
    assert_eq!(breaches.len(), 1, "{breaches:?}");
    assert_eq!(breaches[0].kind, "forked");
    assert_eq!(breaches[0].peer, "local log");
    assert_eq!(breaches[0].presented_id, Some(chain[2].id().to_hex()));
    assert_eq!(b.store().audit().unwrap().checkpoint_breaches.len(), 1);
    // Rebuilding the views keeps the evidence and the attested heads.
    b.store_mut().rebuild_views().unwrap();
    assert_eq!(b.store().breaches().unwrap().len(), 1);
    assert_eq!(b.store().attestations().unwrap().len(), 1);
}
