//! Backup and recovery, as drills with real components: a real PostgreSQL
//! (the test harness) dumped by the real `pg_dump` and restored by the real
//! `pg_restore`, real QUIC with mutual TLS on loopback, real SpatiaLite
//! nodes, the hub's real blob folder, and the real `sentinel-hub` binary
//! for the command line.
//!
//! - A hub is backed up while nodes sync to it, takes more entries and
//!   photos, is lost and restored from the backup: the nodes' next syncs
//!   give it back everything it lost (each chain complete, every photo),
//!   the nodes report the restored hub as truncated, and the hub's own
//!   chain continues without a fork.
//! - A node is lost; a new device enrolled for the same officer gets the
//!   whole history from the hub, the old device's entries and photos too.
//! - Bad input (a non-empty folder or database, a changed manifest, dump or
//!   blob) is refused with a message naming it and a non-zero exit, and
//!   changes nothing.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use sentinel_certs::Ca;
use sentinel_hub::backup::{self, manifest, BackupError};
use sentinel_hub::checkpoint::Checkpointer;
use sentinel_hub::store::backup::user_tables;
use sentinel_hub::testing::TestDatabase;
use sentinel_schema::{Body, PersonRole};
use sentinel_sync::blobs::MediaStore;
use sentinel_sync::testing::{blob, PNG};
use tempfile::TempDir;

use crate::e2e::{deployment, eventually, now_ms, sync, Hub, Peer};
use crate::media::{hash_of, report_with_photos};

/// A JPEG-sniffing blob of `kib` KiB, different for each `seed`.
fn jpeg(kib: usize, seed: u32) -> Vec<u8> {
    blob(
        b"\xFF\xD8\xFF\xE0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00",
        kib * 1024,
        seed,
    )
}

/// The hub's sync server with a blob folder, on `db`.
async fn hub_on(db: TestDatabase, ca: &Ca, media: &MediaStore) -> Hub {
    let with = media.clone();
    Hub::start_on(db, ca, 100, move |net, _| net.with_media(with)).await
}

/// Entries in the hub's log.
async fn entries(hub: &Hub) -> u64 {
    let client = hub.store.client().await.unwrap();
    let n: i64 = client
        .query_one("SELECT count(*) FROM entries", &[])
        .await
        .unwrap()
        .get(0);
    n as u64
}

/// The hub signs a checkpoint of its heads now; its seq.
async fn checkpoint(hub: &Hub) -> u64 {
    let written = Checkpointer::new(hub.own.clone())
        .write_if_changed(now_ms())
        .await
        .unwrap();
    assert_eq!(written.len(), 1, "one checkpoint: {written:?}");
    assert!(matches!(written[0].entry().body, Body::HubCheckpoint(_)));
    written[0].seq()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hub_restored_from_backup_gets_back_every_entry_the_nodes_hold() {
    let ca = deployment("Sentinel backup drill CA", 81);
    let scratch = TempDir::new().unwrap();
    let media = MediaStore::open(scratch.path().join("hub-media")).unwrap();
    let db = TestDatabase::create().await.unwrap();
    let hub = hub_on(db, &ca, &media).await;
    let n1 = Peer::new(&ca, "node-1", 82);
    let n2 = Peer::new(&ca, "node-2", 83);
    let (first, later) = (jpeg(64, 1), jpeg(48, 2));
    report_with_photos(&n1, 1, &[(PNG, "before.png"), (&first, "before.jpg")]);
    n2.report(100, 3);
    sync(&n1, &hub).await;
    sync(&n2, &hub).await;
    eventually("the hub to store the first photos", || {
        media.contains(&hash_of(PNG)) && media.contains(&hash_of(&first))
    })
    .await;
    assert_eq!(checkpoint(&hub).await, 1);
    sync(&n1, &hub).await;
    sync(&n2, &hub).await;

    // The backup, online: node 1 syncs new entries while it runs.
    n1.report(10, 2);
    let out = scratch.path().join("backup");
    let db_config = hub.database().config();
    let (taken, during) = tokio::join!(
        backup::backup(&hub.store, &db_config, &media, &out, now_ms()),
        sync(&n1, &hub)
    );
    let taken = taken.unwrap();
    assert_eq!(during.sent, 2, "{during:?}");
    let m = &taken.manifest;
    assert!(
        m.entries == 7 || m.entries == 9,
        "the dump holds the log before or after that sync, never part of it: {m:?}"
    );
    assert_eq!((m.authors, m.blobs_named), (3, 2), "{m:?}");
    assert!(m.blobs_missing.is_empty() && m.blobs_corrupt.is_empty());
    assert_eq!(m.files.len(), 3, "the dump and two blobs: {m:?}");
    let (read, _) = manifest::read(&out).unwrap();
    assert_eq!(&read, m);
    manifest::verify(&out, m).unwrap();

    // After the backup: more entries, a photo, a checkpoint the nodes hold.
    report_with_photos(&n1, 20, &[(&later, "after.jpg")]);
    n2.report(200, 2);
    sync(&n1, &hub).await;
    sync(&n2, &hub).await;
    eventually("the hub to store the later photo", || {
        media.contains(&hash_of(&later))
    })
    .await;
    assert_eq!(checkpoint(&hub).await, 2);
    sync(&n1, &hub).await;
    sync(&n2, &hub).await;
    let held = entries(&hub).await;
    assert_eq!(held, 14);
    assert_eq!(n1.digest(), hub.digest());
    assert_eq!(n2.digest(), hub.digest());

    // The hub is lost: its process, its database, its media folder.
    drop(hub);
    std::fs::remove_dir_all(media.dir()).unwrap();
    let lost_at = Instant::now();

    // A new database and folder, restored from the backup.
    let db = TestDatabase::create().await.unwrap();
    let media = MediaStore::open(scratch.path().join("new-media")).unwrap();
    let restored = backup::restore(&db.config(), &media, &out, now_ms())
        .await
        .unwrap();
    assert_eq!((restored.blobs_stored, restored.blobs_present), (2, 0));
    let restore_took = restored.took;
    let hub = hub_on(db, &ca, &media).await;
    assert_eq!(entries(&hub).await, m.entries);
    let record = hub.store.restored_from().await.unwrap().expect("recorded");
    let record: serde_json::Value = serde_json::from_slice(&record).unwrap();
    assert_eq!(record["backup_created_ms"], m.created_ms);
    assert_eq!(record["manifest_sha256"], taken.manifest_sha256.as_str());
    assert!(media.contains(&hash_of(PNG)) && !media.contains(&hash_of(&later)));

    // The nodes sync: each says the hub presents less than it signed, and
    // sends back what it lost (the hub's own checkpoint too).
    let resync = Instant::now();
    let s1 = sync(&n1, &hub).await;
    assert!(s1.sent > 0, "{s1:?}");
    assert!(
        s1.breaches.iter().any(|b| b.contains("truncated")),
        "{s1:?}"
    );
    assert!(!s1.breaches.iter().any(|b| b.contains("fork")), "{s1:?}");
    assert_eq!(s1.media.error, None, "{:?}", s1.media);
    // Node 1 held everything (node 2's entries too, relayed): node 2 finds
    // the hub whole again, and nothing to report.
    let s2 = sync(&n2, &hub).await;
    assert!(s2.breaches.is_empty(), "{s2:?}");
    sync(&n1, &hub).await;
    eventually("the hub to store the later photo again", || {
        media.contains(&hash_of(&later))
    })
    .await;
    let resync_took = resync.elapsed();
    assert_eq!(entries(&hub).await, held, "no entry lost");
    assert_eq!(hub.digest(), n1.digest(), "every chain complete");
    assert_eq!(hub.digest(), n2.digest());
    assert_eq!(media.read(&hash_of(&later)).unwrap(), later);
    let kept = n1.node.lock().unwrap().store().breaches().unwrap();
    assert!(kept.iter().all(|b| b.kind == "truncated"), "{kept:?}");
    eprintln!(
        "node 1 reports about the restored hub: {:?}",
        kept.iter()
            .map(|b| (&b.kind, b.attested_seq, b.presented_seq, &b.peer))
            .collect::<Vec<_>>()
    );

    // The hub's own chain came back from the nodes before it signed again:
    // its next checkpoint is seq 3, and no node sees a fork.
    assert_eq!(checkpoint(&hub).await, 3);
    for n in [&n1, &n2] {
        let s = sync(n, &hub).await;
        assert_eq!(s.applied, 1, "{s:?}");
        assert!(!s.breaches.iter().any(|b| b.contains("fork")), "{s:?}");
        assert_eq!((s.forks, s.quarantined), (0, 0), "{s:?}");
        assert_eq!(n.digest(), hub.digest());
    }
    // Every entry written on a node is acknowledged by the restored hub.
    assert_eq!(n1.stats().awaiting_receipt, 0);
    assert_eq!(n2.stats().awaiting_receipt, 0);
    eprintln!(
        "drill timings: backup {:.2} s ({} entries, {} blobs), restore {:.2} s, \
         nodes' resync {:.2} s, loss to complete again {:.2} s",
        taken.took.as_secs_f64(),
        m.entries,
        m.files.len() - 1,
        restore_took.as_secs_f64(),
        resync_took.as_secs_f64(),
        lost_at.elapsed().as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_device_for_the_same_officer_gets_the_whole_history_from_the_hub() {
    let ca = deployment("Sentinel backup drill CA", 84);
    let scratch = TempDir::new().unwrap();
    let media = MediaStore::open(scratch.path().join("hub-media")).unwrap();
    let hub = hub_on(TestDatabase::create().await.unwrap(), &ca, &media).await;
    sentinel_hub::people::grant_role(&hub.own, "alice", PersonRole::Officer, "test", now_ms())
        .await
        .unwrap();
    let old = Peer::new(&ca, "alice-phone", 85);
    let photo = jpeg(32, 3);
    {
        let mut n = old.node.lock().unwrap();
        let event = crate::e2e::ev(7);
        n.report(
            &sentinel_node::testing::new_event("flooded underpass", 5.0, 50.0),
            event,
            Some("alice"),
            now_ms(),
        )
        .unwrap();
        n.attach(event, &photo, "underpass.jpg", Some("alice"), now_ms() + 1)
            .unwrap();
    }
    old.report(8, 2);
    sync(&old, &hub).await;
    eventually("the hub to store the photo", || {
        media.contains(&hash_of(&photo))
    })
    .await;
    let shown = old.shown(crate::e2e::ev(7));
    let digest = old.digest();

    // The phone is lost. A new device, enrolled for the same officer,
    // syncs once.
    drop(old);
    let new = Peer::new(&ca, "alice-new-phone", 86);
    let s = sync(&new, &hub).await;
    assert_eq!(
        s.received, 5,
        "the grant, the report, the photo, two more: {s:?}"
    );
    assert_eq!(s.media.fetched, 1, "{:?}", s.media);
    assert_eq!(new.digest(), digest, "the old device's chain, whole");
    assert_eq!(new.digest(), hub.digest());
    new.node.lock().unwrap().catch_up_views().unwrap();
    assert_eq!(new.shown(crate::e2e::ev(7)), shown);
    let record = new.node.lock().unwrap().show(crate::e2e::ev(7)).unwrap();
    assert!(record
        .history
        .iter()
        .all(|h| h.actor.as_deref() == Some("alice") && !h.local));
    assert_eq!(
        new.node
            .lock()
            .unwrap()
            .media()
            .read(&hash_of(&photo))
            .unwrap(),
        photo
    );
}

/// `sentinel-hub` with the configuration `serve` would have for `db` and
/// `media` (the bundle is not opened by backup or restore).
fn hub_command(db: &TestDatabase, media: &Path, args: &[&str]) -> (i32, String, String) {
    hub_command_with(db, media, args, &[])
}

/// [`hub_command`] with more environment.
fn hub_command_with(
    db: &TestDatabase,
    media: &Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> (i32, String, String) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_sentinel-hub"));
    c.args(args)
        .envs(env.iter().copied())
        .env("DATABASE_URL", db.connection_string())
        .env("SENTINEL_MEDIA_DIR", media)
        .env("SENTINEL_BUNDLE", media.join("unused.bundle"))
        .env("SENTINEL_BUNDLE_PASSWORD", "correct horse battery staple")
        .env_remove("SENTINEL_CONFIG");
    let out = tokio::task::block_in_place(|| c.output()).unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}

/// What a test does to a copy of a backup.
type Spoil<'a> = &'a dyn Fn(&Path);

/// Flips one byte of a file.
fn damage(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x20;
    std::fs::write(path, bytes).unwrap();
}

/// Every file under `dir` (none: an empty or missing folder).
fn file_count(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .map(|e| e.unwrap().path())
        .map(|p| if p.is_dir() { file_count(&p) } else { 1 })
        .sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_commands_back_up_and_restore_and_refuse_bad_input_changing_nothing() {
    let ca = deployment("Sentinel backup drill CA", 87);
    let scratch = TempDir::new().unwrap();
    let media_dir = scratch.path().join("hub-media");
    let media = MediaStore::open(&media_dir).unwrap();
    let hub = hub_on(TestDatabase::create().await.unwrap(), &ca, &media).await;
    let n1 = Peer::new(&ca, "node-1", 88);
    report_with_photos(&n1, 1, &[(PNG, "a.png")]);
    sync(&n1, &hub).await;
    eventually("the hub to store the photo", || {
        media.contains(&hash_of(PNG))
    })
    .await;
    let held = entries(&hub).await;

    // The backup, through the binary, while the hub serves.
    let out = scratch.path().join("backup");
    let out_s = out.to_str().unwrap();
    let (code, stdout, stderr) =
        hub_command(hub.database(), &media_dir, &["backup", "--out", out_s]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!("{held} entries of 1 authors")),
        "{stdout}"
    );
    let (m, _) = manifest::read(&out).unwrap();
    assert_eq!((m.entries, m.files.len()), (held, 2), "{m:?}");
    let manifest_bytes = std::fs::read(out.join(manifest::MANIFEST)).unwrap();
    #[cfg(unix)]
    for private in [
        out.clone(),
        out.join(manifest::DUMP),
        out.join(&m.files[1].path),
    ] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&private).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "{}: {mode:o}", private.display());
    }

    // Without pg_dump: a clear error, and no half backup left behind.
    let no_pg = scratch.path().join("no-pg");
    let (code, _, stderr) = hub_command_with(
        hub.database(),
        &media_dir,
        &["backup", "--out", no_pg.to_str().unwrap()],
        &[(
            "SENTINEL_PG_BIN",
            scratch.path().join("nowhere").to_str().unwrap(),
        )],
    );
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("cannot run") && stderr.contains("pg_dump"),
        "{stderr}"
    );
    assert!(!no_pg.exists(), "the folder it made is gone");

    // Not into a folder that holds anything: the backup there is untouched.
    let (code, _, stderr) = hub_command(hub.database(), &media_dir, &["backup", "--out", out_s]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("not empty"), "{stderr}");
    assert_eq!(
        std::fs::read(out.join(manifest::MANIFEST)).unwrap(),
        manifest_bytes
    );

    // Not into a database that is not empty (the serving hub's own).
    let (code, _, stderr) = hub_command(hub.database(), &media_dir, &["restore", "--from", out_s]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("is not empty") && stderr.contains("entries"),
        "{stderr}"
    );
    assert_eq!(entries(&hub).await, held);

    // Damaged backups are refused, naming the file, before anything is
    // written: the new database stays empty, the new media folder too.
    let db = TestDatabase::create().await.unwrap();
    let new_media = scratch.path().join("new-media");
    let blob_file = m.files.iter().find(|f| f.path != manifest::DUMP).unwrap();
    let cases: [(&str, Spoil<'_>, String); 4] = [
        (
            "blob",
            &|d: &Path| damage(&d.join(&blob_file.path)),
            blob_file.path.clone(),
        ),
        (
            "dump",
            &|d: &Path| damage(&d.join(manifest::DUMP)),
            manifest::DUMP.into(),
        ),
        (
            "manifest",
            &|d: &Path| damage(&d.join(manifest::MANIFEST)),
            "does not match the SHA-256 in manifest.json.sha256".into(),
        ),
        (
            "missing manifest",
            &|d: &Path| std::fs::remove_file(d.join(manifest::MANIFEST)).unwrap(),
            manifest::MANIFEST.into(),
        ),
    ];
    for (what, spoil, named) in cases {
        let bad = scratch
            .path()
            .join(format!("bad-{}", what.replace(' ', "-")));
        copy_dir(&out, &bad);
        spoil(&bad);
        let (code, _, stderr) = hub_command(
            &db,
            &new_media,
            &["restore", "--from", bad.to_str().unwrap()],
        );
        assert_eq!(code, 2, "{what}: {stderr}");
        assert!(stderr.contains(&named), "{what}: {stderr}");
        assert!(
            user_tables(&db.config(), 5).await.unwrap().is_empty(),
            "{what}"
        );
        assert_eq!(file_count(&new_media), 0, "{what}");
    }

    // The real restore, through the binary; then `serve`'s migrations.
    let (code, stdout, stderr) = hub_command(&db, &new_media, &["restore", "--from", out_s]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!("restored {held} entries")),
        "{stdout}"
    );
    let store = db.open_store().await.unwrap();
    assert!(store.missing_migrations().await.unwrap().is_empty());
    let restored = MediaStore::open(&new_media).unwrap();
    assert_eq!(restored.read(&hash_of(PNG)).unwrap(), PNG);
    let (code, _, stderr) = hub_command(&db, &new_media, &["restore", "--from", out_s]);
    assert_eq!(code, 2, "a second restore onto it: {stderr}");

    // The library says the same, with the kind of error.
    let again = backup::restore(&db.config(), &restored, &out, now_ms()).await;
    assert!(
        matches!(again, Err(BackupError::NotEmpty { .. })),
        "{again:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_restored_from_its_snapshot_gets_its_later_entries_back_before_writing() {
    use std::sync::{Arc, Mutex};

    let ca = deployment("Sentinel backup drill CA", 91);
    let scratch = TempDir::new().unwrap();
    let media = MediaStore::open(scratch.path().join("hub-media")).unwrap();
    let hub = hub_on(TestDatabase::create().await.unwrap(), &ca, &media).await;
    let n1 = Peer::new(&ca, "node-1", 92);
    report_with_photos(&n1, 1, &[(PNG, "a.png")]);
    n1.report(2, 2);
    let snap = TempDir::new().unwrap();
    let taken = sentinel_node::snapshot::snapshot(&n1.node.lock().unwrap(), snap.path()).unwrap();
    assert_eq!((taken.entries, taken.blobs, taken.corrupt.len()), (4, 1, 0));
    assert_eq!(taken.heads_digest, n1.digest());
    // Not over a snapshot already there.
    let again = sentinel_node::snapshot::snapshot(&n1.node.lock().unwrap(), snap.path());
    assert!(
        again
            .as_ref()
            .is_err_and(|e| e.to_string().contains("not empty")),
        "{again:?}"
    );
    assert_eq!(
        sentinel_node::node::Node::open(snap.path())
            .unwrap()
            .stats()
            .unwrap()
            .heads_digest,
        taken.heads_digest,
        "the refused second snapshot changed nothing"
    );

    // Later, the node writes more and syncs; then the device is lost.
    n1.report(10, 3);
    sync(&n1, &hub).await;
    let digest = n1.digest();
    let enrollment = n1.enrollment.clone();
    drop(n1);

    // The snapshot, as the data directory of the replacement device: it
    // syncs before writing and gets its own later entries back.
    let node = sentinel_node::node::Node::open(snap.path()).unwrap();
    let restored = Peer {
        dir: snap,
        enrollment,
        node: Arc::new(Mutex::new(node)),
    };
    assert_eq!(restored.stats().entries, 4);
    let s = sync(&restored, &hub).await;
    assert_eq!((s.received, s.applied, s.forks), (3, 3, 0), "{s:?}");
    assert_eq!(restored.digest(), digest);
    // Its next entry continues the chain: no fork anywhere.
    restored.report(20, 1);
    let s = sync(&restored, &hub).await;
    assert_eq!((s.sent, s.forks, s.quarantined), (1, 0, 0), "{s:?}");
    assert_eq!(restored.digest(), hub.digest());
    let held = restored.node.lock().unwrap().media().read(&hash_of(PNG));
    assert_eq!(held.unwrap(), PNG);
}
