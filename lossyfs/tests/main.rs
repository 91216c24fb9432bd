//! The layer's self-check: it must lose exactly what a power cut loses, or
//! the power-loss tests built on it prove nothing. Files written without
//! an fsync come back as they were at their last fsync (a new file empty,
//! a renamed one with its old contents, a truncation undone); fsynced
//! ones come back whole; names are durable at once; after a cut every
//! request fails. SQLite shows the same on its own terms: a row committed
//! with `synchronous=OFF` is lost, one committed with `synchronous=FULL`
//! is kept. The binary obeys its standard input.
//!
//! Each test mounts its own file system; where FUSE is unavailable they
//! say "SKIPPED" and pass, unless `SENTINEL_REQUIRE_FUSE=1` (scripts/test
//! sets it when it runs as root with /dev/fuse, as in CI).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use sentinel_lossyfs::Mount;

/// Whether FUSE works here; prints why not when it does not (and fails
/// when `SENTINEL_REQUIRE_FUSE=1`).
fn fuse(test: &str) -> bool {
    match sentinel_lossyfs::probe() {
        Ok(()) => true,
        Err(why) => {
            assert!(
                std::env::var("SENTINEL_REQUIRE_FUSE").as_deref() != Ok("1"),
                "{test}: FUSE is required (SENTINEL_REQUIRE_FUSE=1) but: {why}"
            );
            eprintln!("SKIPPED {test}: no FUSE here ({why})");
            false
        }
    }
}

struct Disk {
    _dir: tempfile::TempDir,
    backing: PathBuf,
    at: PathBuf,
}

impl Disk {
    fn new() -> Disk {
        let dir = tempfile::tempdir().unwrap();
        let (backing, at) = (dir.path().join("disk"), dir.path().join("mnt"));
        fs::create_dir(&backing).unwrap();
        fs::create_dir(&at).unwrap();
        Disk {
            _dir: dir,
            backing,
            at,
        }
    }

    fn mount(&self) -> Mount {
        Mount::new(&self.backing, &self.at).unwrap()
    }

    fn p(&self, name: &str) -> PathBuf {
        self.at.join(name)
    }
}

fn write(path: &Path, bytes: &[u8], sync: bool) {
    let mut f = File::create(path).unwrap();
    f.write_all(bytes).unwrap();
    if sync {
        f.sync_all().unwrap();
    }
}

#[test]
fn a_power_cut_loses_what_was_not_fsynced_and_nothing_else() {
    if !fuse("a_power_cut_loses_what_was_not_fsynced_and_nothing_else") {
        return;
    }
    let d = Disk::new();
    let m = d.mount();
    write(&d.p("unsynced"), b"lost", false);
    write(&d.p("synced"), b"kept", true);
    // Written, then renamed into place without an fsync: the classic.
    write(&d.p("renamed.tmp"), b"new contents", false);
    fs::rename(d.p("renamed.tmp"), d.p("renamed")).unwrap();
    // Synced, then changed in place: the change is lost.
    write(&d.p("changed"), b"version 1", true);
    let mut f = OpenOptions::new().write(true).open(d.p("changed")).unwrap();
    f.write_all(b"VERSION 2, longer").unwrap();
    drop(f);
    // Synced, then truncated: the truncation is lost.
    write(&d.p("truncated"), &[7; 10_000], true);
    OpenOptions::new()
        .write(true)
        .open(d.p("truncated"))
        .unwrap()
        .set_len(10)
        .unwrap();
    // fdatasync counts as well as fsync; a synced file in a new directory.
    fs::create_dir(d.p("dir")).unwrap();
    let mut f = File::create(d.p("dir/datasynced")).unwrap();
    f.write_all(&[1; 100_000]).unwrap();
    f.sync_data().unwrap();
    drop(f);
    // Removed: names are durable at once.
    write(&d.p("removed"), b"gone", true);
    fs::remove_file(d.p("removed")).unwrap();

    // Before the cut, everything reads as written.
    assert_eq!(fs::read(d.p("unsynced")).unwrap(), b"lost");
    assert_eq!(fs::read(d.p("renamed")).unwrap(), b"new contents");
    assert_eq!(fs::read(d.p("changed")).unwrap(), b"VERSION 2, longer");
    assert_eq!(fs::metadata(d.p("truncated")).unwrap().len(), 10);
    let stats = m.stats();
    assert_eq!(stats.dirty_files, 4, "{stats:?}");

    let cut = m.cut();
    assert_eq!(cut.files, 4, "{cut:?}");
    let err = fs::read(d.p("synced")).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EIO), "after the cut: {err}");
    m.unmount().unwrap();

    // The machine comes back.
    let m = d.mount();
    assert_eq!(fs::read(d.p("unsynced")).unwrap(), b"");
    assert_eq!(fs::read(d.p("synced")).unwrap(), b"kept");
    assert_eq!(fs::read(d.p("renamed")).unwrap(), b"");
    assert!(!d.p("renamed.tmp").exists());
    assert_eq!(fs::read(d.p("changed")).unwrap(), b"version 1");
    assert_eq!(fs::read(d.p("truncated")).unwrap(), vec![7; 10_000]);
    assert_eq!(fs::read(d.p("dir/datasynced")).unwrap(), vec![1; 100_000]);
    assert!(!d.p("removed").exists());
    m.unmount().unwrap();
}

#[test]
fn sync_all_and_o_sync_writes_reach_the_disk() {
    if !fuse("sync_all_and_o_sync_writes_reach_the_disk") {
        return;
    }
    let d = Disk::new();
    let m = d.mount();
    write(&d.p("a"), b"written back by sync_all", false);
    assert_eq!(m.sync_all().unwrap(), 1);
    let mut f = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .custom_flags(libc::O_DSYNC)
        .open(d.p("b"))
        .unwrap();
    f.write_all(b"O_DSYNC").unwrap();
    drop(f);
    assert_eq!(m.cut().files, 0);
    m.unmount().unwrap();
    assert_eq!(
        fs::read(d.backing.join("a")).unwrap(),
        b"written back by sync_all"
    );
    assert_eq!(fs::read(d.backing.join("b")).unwrap(), b"O_DSYNC");
}

use std::os::unix::fs::OpenOptionsExt;

/// Commits one row with `synchronous` set as given (WAL mode, as the
/// node's store), cuts the power, and answers the rows found afterwards.
fn sqlite_rows_after_cut(synchronous: &str) -> Vec<String> {
    let d = Disk::new();
    let m = d.mount();
    let db = d.p("t.sqlite");
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.pragma_update(None, "synchronous", "FULL").unwrap();
    conn.execute_batch("CREATE TABLE t (v TEXT NOT NULL); INSERT INTO t VALUES ('before');")
        .unwrap();
    conn.pragma_update(None, "synchronous", synchronous)
        .unwrap();
    conn.execute("INSERT INTO t VALUES (?1)", ["committed"])
        .unwrap();
    let seen: i64 = conn
        .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .unwrap();
    assert_eq!(seen, 2, "the commit is visible before the cut");
    m.cut();
    drop(conn);
    m.unmount().unwrap();

    let m = d.mount();
    let conn = rusqlite::Connection::open(&db).unwrap();
    let rows: Vec<String> = conn
        .prepare("SELECT v FROM t ORDER BY rowid")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    drop(conn);
    m.unmount().unwrap();
    rows
}

#[test]
fn sqlite_keeps_a_commit_with_synchronous_full_and_loses_it_with_off() {
    if !fuse("sqlite_keeps_a_commit_with_synchronous_full_and_loses_it_with_off") {
        return;
    }
    assert_eq!(sqlite_rows_after_cut("FULL"), ["before", "committed"]);
    // The layer has teeth: the same commit without fsyncs is gone.
    assert_eq!(sqlite_rows_after_cut("OFF"), ["before"]);
}

#[test]
fn the_binary_cuts_on_command_and_when_its_controller_goes() {
    if !fuse("the_binary_cuts_on_command_and_when_its_controller_goes") {
        return;
    }
    for explicit in [true, false] {
        let d = Disk::new();
        let mut child = Command::new(env!("CARGO_BIN_EXE_lossyfs"))
            .arg(&d.backing)
            .arg(&d.at)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        assert_eq!(line, "ready\n");
        write(&d.p("synced"), b"kept", true);
        write(&d.p("unsynced"), b"lost", false);
        if explicit {
            stdin.write_all(b"cut\n").unwrap();
            line.clear();
            out.read_line(&mut line).unwrap();
            assert!(
                line.starts_with("cut: dropped 4096 bytes in 1 files"),
                "{line}"
            );
            let err = fs::read(d.p("synced")).unwrap_err();
            assert_eq!(err.raw_os_error(), Some(libc::EIO));
        }
        // Closing standard input unmounts (cutting first if not yet cut).
        drop(stdin);
        let mut rest = String::new();
        out.read_to_string(&mut rest).unwrap();
        assert!(child.wait().unwrap().success(), "{rest}");
        assert!(rest.ends_with("unmounted\n"), "{rest}");
        assert_eq!(fs::read(d.backing.join("synced")).unwrap(), b"kept");
        assert_eq!(fs::read(d.backing.join("unsynced")).unwrap(), b"");
    }
}
