//! `sentinel-node snapshot --out DIR`: a copy of this node's data
//! directory taken while it runs (while `serve` syncs and officers report),
//! that a node starts from as it is (`--data-dir DIR`, or the folder copied
//! onto a new device).
//!
//! What it holds, and how each part is consistent:
//!
//! - `node.sqlite`: the store as of one moment ([`crate::store::Store::snapshot_into`],
//!   SQLite's `VACUUM INTO`): log, views, accounts and links together.
//! - `media/`: every blob in the media folder, copied after the database
//!   and checked against its name (its SHA-256) as it is copied; blobs
//!   never change, so every blob the copied log names and the node held is
//!   there (a corrupt one is left out and named; a blob that had not
//!   arrived yet is fetched by the next sync, as always).
//! - the device key, the CA and the node's certificate, as they are.
//!
//! **The snapshot holds the device key**: keep it as privately as the
//! device (the folder is mode 0700, its files 0600).
//!
//! **Restoring an older snapshot**: the node's own chain goes back to the
//! snapshot. Sync with the hub (or any peer that holds the later entries)
//! before writing anything: it gives the node its own later entries back,
//! and the next entry continues the chain. Writing first signs a second
//! entry at a seq already used — a fork, kept as evidence everywhere.
//!
//! Never does: SQL (the store's), or change the running node's files.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::NodeError;
use crate::files::{create_private_dir, CA_FILE, CERT_FILE, DB_FILE, KEY_FILE, MEDIA_DIR};
use crate::node::Node;

/// What a snapshot holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotSummary {
    pub dir: PathBuf,
    /// Entries and authors in the copied log.
    pub entries: u64,
    pub authors: u64,
    /// Its heads digest, as `stats` prints it.
    pub heads_digest: String,
    /// Blobs copied, and their bytes.
    pub blobs: u64,
    pub blob_bytes: u64,
    /// Blobs whose bytes no longer matched their name: left out.
    pub corrupt: Vec<String>,
}

/// Takes a snapshot of `node` into `out`, a new or empty folder; then opens
/// it as a node, to be sure it is one, and says what it holds.
pub fn snapshot(node: &Node, out: &Path) -> Result<SnapshotSummary, NodeError> {
    match std::fs::read_dir(out) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(NodeError::Io {
                    path: out.to_path_buf(),
                    source: std::io::Error::new(
                        std::io::ErrorKind::AlreadyExists,
                        "the folder is not empty; take a snapshot into a new or empty folder",
                    ),
                });
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(NodeError::io(out)(e)),
    }
    create_private_dir(out)?;
    let (blobs, blob_bytes, corrupt) = match take(node, out) {
        Ok(taken) => taken,
        Err(e) => {
            // Leave nothing half made behind.
            if let Ok(entries) = std::fs::read_dir(out) {
                for entry in entries.flatten() {
                    let p = entry.path();
                    let _ = if p.is_dir() {
                        std::fs::remove_dir_all(&p)
                    } else {
                        std::fs::remove_file(&p)
                    };
                }
            }
            return Err(e);
        }
    };
    let copy = Node::open(out)?;
    let stats = copy.stats()?;
    Ok(SnapshotSummary {
        dir: out.to_path_buf(),
        entries: stats.entries,
        authors: stats.authors,
        heads_digest: stats.heads_digest,
        blobs,
        blob_bytes,
        corrupt,
    })
}

/// The database, the identity files, then the blobs.
fn take(node: &Node, out: &Path) -> Result<(u64, u64, Vec<String>), NodeError> {
    node.store().snapshot_into(&out.join(DB_FILE))?;
    restrict(&out.join(DB_FILE))?;
    for name in [KEY_FILE, CA_FILE, CERT_FILE] {
        let from = node.dir().join(name);
        if from.exists() {
            let to = out.join(name);
            copy_private(&from, &to)?;
        }
    }
    let media = out.join(MEDIA_DIR);
    create_private_dir(&media)?;
    let (mut blobs, mut bytes, mut corrupt) = (0, 0, Vec::new());
    let from_media = node.media().dir();
    let fans = std::fs::read_dir(from_media).map_err(NodeError::io(from_media))?;
    for fan in fans {
        let fan = fan.map_err(NodeError::io(from_media))?.path();
        let Some(prefix) = fan.file_name().and_then(|n| n.to_str()).map(str::to_owned) else {
            continue;
        };
        // Only the fan-out folders (two hex digits) hold blobs; not
        // `partial/`, not temporary files.
        if !fan.is_dir() || prefix.len() != 2 || !is_hex(&prefix) {
            continue;
        }
        for file in std::fs::read_dir(&fan).map_err(NodeError::io(&fan))? {
            let file = file.map_err(NodeError::io(&fan))?.path();
            let Some(rest) = file.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            let name = format!("{prefix}{rest}");
            if name.len() != 64 || !is_hex(&name) || !file.is_file() {
                continue;
            }
            let to_dir = media.join(&prefix);
            create_private_dir(&to_dir)?;
            let to = to_dir.join(rest);
            let (sum, n) = copy_hashed(&file, &to)?;
            if hex::encode(sum) != name {
                std::fs::remove_file(&to).map_err(NodeError::io(&to))?;
                corrupt.push(name);
                continue;
            }
            blobs += 1;
            bytes += n;
        }
    }
    Ok((blobs, bytes, corrupt))
}

fn is_hex(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Copies a file to a new file (mode 0600 on Unix), durably.
fn copy_private(from: &Path, to: &Path) -> Result<(), NodeError> {
    copy_hashed(from, to).map(|_| ())
}

/// Copies `from` to the new file `to` (mode 0600 on Unix), hashing what it
/// copies, and makes the copy durable.
fn copy_hashed(from: &Path, to: &Path) -> Result<([u8; 32], u64), NodeError> {
    let mut src = std::fs::File::open(from).map_err(NodeError::io(from))?;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut dst = opts.open(to).map_err(NodeError::io(to))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut bytes = 0u64;
    loop {
        let n = src.read(&mut buf).map_err(NodeError::io(from))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        dst.write_all(&buf[..n]).map_err(NodeError::io(to))?;
        bytes += n as u64;
    }
    dst.sync_all().map_err(NodeError::io(to))?;
    Ok((hasher.finalize().into(), bytes))
}

/// The copied database is nobody else's to read either.
fn restrict(path: &Path) -> Result<(), NodeError> {
    #[cfg(unix)]
    crate::files::restrict(path, 0o600).map_err(NodeError::io(path))?;
    Ok(())
}
