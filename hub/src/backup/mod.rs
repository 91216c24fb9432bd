//! Backing up a hub while it serves, and restoring one
//! (`sentinel-hub backup --out DIR`, `sentinel-hub restore --from DIR`).
//!
//! **Backup** ([`backup`]), online: the store opens a read-only snapshot
//! and exports it; `pg_dump` dumps the database in that snapshot
//! ([`pg`]); in the same snapshot the store lists every media blob the
//! dumped log names; those blobs are copied from the media folder into the
//! backup, each one's SHA-256 checked against its name as it is copied;
//! the manifest ([`manifest`]) is written last. Blobs are content-addressed
//! and never change, so a copy taken after the dump is the blob the dump
//! names. A named blob the folder does not hold (a node has not uploaded
//! it yet) or holds corrupt is listed in the manifest, not copied: the
//! nodes that hold it upload it again after a restore, as they do to any
//! hub that lacks a blob its log names.
//!
//! **Restore** ([`restore`]): the manifest and then every file are checked
//! against their SHA-256 first, and the database must be empty (no table
//! but an extension's); only then are the blobs stored in the media folder
//! (verified again, as any blob is) and the dump restored by `pg_restore`
//! in one transaction. The restored log's counts are checked against the
//! manifest and the restore records itself in `meta`
//! ([`crate::store::backup::RESTORED_FROM`]). `serve` then runs the
//! migrations a newer hub has, as on any start.
//!
//! The folder a backup creates is mode 0700, the dump and the blobs 0600:
//! it holds password hashes and webhook secrets (`docs/security.md` 1.14).
//!
//! A bad input changes nothing: a backup folder that is not empty, a
//! manifest or file whose hash does not match, a database that is not
//! empty, each stops before the first write (a backup that fails midway
//! removes what it wrote).
//!
//! Never does: SQL (the store's, invariant 10), or sign anything: a
//! restored hub's own chain continues from the backup, and what it signed
//! since comes back from the nodes (`docs/operations.md`, "Backup and
//! recovery").

pub mod cli;
pub mod manifest;
pub mod pg;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sentinel_sync::blobs::MediaStore;
use tokio_postgres::Config;

use crate::store::backup::{record_restore, restored_counts, user_tables, SnapshotError};
use crate::store::{PgStore, StoreError};
use manifest::{FileSum, Manifest, ManifestError, DUMP};
use pg::PgToolError;

/// Why a backup or a restore stopped. Nothing stored was changed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackupError {
    /// The folder to back up into is not a new or empty folder.
    #[error("--out {}: {message}", path.display())]
    Out { path: PathBuf, message: String },
    /// The backup to restore is not complete or not intact.
    #[error("--from {}: {source}", path.display())]
    Backup {
        path: PathBuf,
        source: ManifestError,
    },
    /// The database to restore into holds tables already.
    #[error(
        "the database (DATABASE_URL) is not empty: it holds {tables}; restore only into a new, \
         empty database (e.g. `createdb` one and point DATABASE_URL at it)"
    )]
    NotEmpty { tables: String },
    /// The configuration does not load.
    #[error("configuration: {0}")]
    Config(String),
    #[error("the database: {0}")]
    Store(#[from] StoreError),
    #[error(transparent)]
    Tool(#[from] PgToolError),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the media folder: {0}")]
    Media(String),
    /// The restored database does not hold what the manifest says.
    #[error("the restored database holds {found}, but the backup's manifest says {expected}")]
    Counts { expected: String, found: String },
}

impl BackupError {
    /// The command line's exit code: 2 for bad input (a folder, a backup,
    /// a database or a configuration that cannot be used), 1 for anything
    /// else.
    pub fn exit_code(&self) -> u8 {
        match self {
            BackupError::Out { .. }
            | BackupError::Backup { .. }
            | BackupError::NotEmpty { .. }
            | BackupError::Config(_) => 2,
            _ => 1,
        }
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BackupError + '_ {
    move |source| BackupError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What a backup wrote.
#[derive(Debug, Clone)]
pub struct BackupSummary {
    pub dir: PathBuf,
    pub manifest: Manifest,
    /// The manifest's SHA-256 (hex), as `manifest.json.sha256` holds it.
    pub manifest_sha256: String,
    /// Bytes of the dump and of the blobs copied.
    pub dump_bytes: u64,
    pub blob_bytes: u64,
    pub took: Duration,
}

impl std::fmt::Display for BackupSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let m = &self.manifest;
        write!(
            f,
            "backup in {}: {} entries of {} authors ({} bytes dumped), {} of {} named blobs \
             copied ({} bytes) in {:.1} s; manifest SHA-256 {}",
            self.dir.display(),
            m.entries,
            m.authors,
            self.dump_bytes,
            m.files.len().saturating_sub(1),
            m.blobs_named,
            self.blob_bytes,
            self.took.as_secs_f64(),
            self.manifest_sha256
        )?;
        if !m.blobs_missing.is_empty() {
            write!(
                f,
                "\n{} named blobs were not on the hub yet (nodes upload them again after a restore)",
                m.blobs_missing.len()
            )?;
        }
        if !m.blobs_corrupt.is_empty() {
            write!(
                f,
                "\nwarning: {} blobs in the media folder do not match their hash and were not \
                 copied: {}",
                m.blobs_corrupt.len(),
                m.blobs_corrupt.join(", ")
            )?;
        }
        Ok(())
    }
}

/// Backs up the hub's database (`store`, reached by `database`) and the
/// blobs its log names (from `media`) into `out`, a new or empty folder.
pub async fn backup(
    store: &PgStore,
    database: &Config,
    media: &MediaStore,
    out: &Path,
    now_ms: u64,
) -> Result<BackupSummary, BackupError> {
    let started = Instant::now();
    let created = prepare_out(out)?;
    let written = write_backup(store, database, media, out, now_ms).await;
    match written {
        Ok((manifest, sum, dump_bytes, blob_bytes)) => Ok(BackupSummary {
            dir: out.to_path_buf(),
            manifest,
            manifest_sha256: hex::encode(sum),
            dump_bytes,
            blob_bytes,
            took: started.elapsed(),
        }),
        Err(e) => {
            // Leave no half backup behind: what this run wrote goes.
            if created {
                let _ = std::fs::remove_dir_all(out);
            } else if let Ok(entries) = std::fs::read_dir(out) {
                for entry in entries.flatten() {
                    let p = entry.path();
                    let _ = if p.is_dir() {
                        std::fs::remove_dir_all(&p)
                    } else {
                        std::fs::remove_file(&p)
                    };
                }
            }
            Err(e)
        }
    }
}

/// `out` as a new folder (true) or an existing empty one (false).
fn prepare_out(out: &Path) -> Result<bool, BackupError> {
    let refuse = |message: String| BackupError::Out {
        path: out.to_path_buf(),
        message,
    };
    match std::fs::read_dir(out) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(refuse(
                    "the folder is not empty; back up into a new or empty folder".into(),
                ));
            }
            Ok(false)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // The backup holds secrets (docs/security.md 1.14): the
            // folder is the hub's alone.
            let mut dir = std::fs::DirBuilder::new();
            dir.recursive(true);
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut dir, 0o700);
            dir.create(out)
                .map_err(|e| refuse(format!("cannot create it: {e}")))?;
            Ok(true)
        }
        Err(e) => Err(refuse(format!("not a folder this hub can write to: {e}"))),
    }
}

/// The backup's files, then its manifest.
async fn write_backup(
    store: &PgStore,
    database: &Config,
    media: &MediaStore,
    out: &Path,
    now_ms: u64,
) -> Result<(Manifest, [u8; 32], u64, u64), BackupError> {
    let dump_path = out.join(DUMP);
    let (_, contents) = store
        .in_exported_snapshot(|snapshot| {
            let (config, path) = (database.clone(), dump_path.clone());
            async move { pg::dump(&config, &snapshot, &path).await }
        })
        .await
        .map_err(|e| match e {
            SnapshotError::Store(e) => BackupError::Store(e),
            SnapshotError::Dump(e) => BackupError::Tool(e),
        })?;
    let (media, out_dir) = (media.clone(), out.to_path_buf());
    let files = tokio::task::spawn_blocking(move || copy_files(&media, &out_dir, contents, now_ms))
        .await
        .map_err(|e| BackupError::Media(e.to_string()))??;
    let (manifest, dump_bytes, blob_bytes) = files;
    let sum = manifest::write(out, &manifest).map_err(io(out))?;
    Ok((manifest, sum, dump_bytes, blob_bytes))
}

/// Hashes the dump, copies the named blobs (checking each against its
/// name) and makes the manifest (not yet written).
fn copy_files(
    media: &MediaStore,
    out: &Path,
    contents: crate::store::backup::SnapshotContents,
    now_ms: u64,
) -> Result<(Manifest, u64, u64), BackupError> {
    let dump_path = out.join(DUMP);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let private = std::fs::Permissions::from_mode(0o600);
        std::fs::set_permissions(&dump_path, private).map_err(io(&dump_path))?;
    }
    let (sum, dump_bytes) = manifest::hash_file(&dump_path).map_err(io(&dump_path))?;
    let mut files = vec![FileSum {
        path: DUMP.into(),
        bytes: dump_bytes,
        sha256: hex::encode(sum),
    }];
    let (mut missing, mut corrupt, mut blob_bytes) = (Vec::new(), Vec::new(), 0u64);
    for (hash, _) in &contents.blobs {
        let hex = hex::encode(hash);
        let from = media.path(hash);
        if !from.is_file() {
            missing.push(hex);
            continue;
        }
        let rel = manifest::blob_path(&hex);
        let to = out.join(&rel);
        let (sum, bytes) = manifest::copy_hashed(&from, &to).map_err(io(&from))?;
        if &sum != hash {
            std::fs::remove_file(&to).map_err(io(&to))?;
            corrupt.push(hex);
            continue;
        }
        blob_bytes += bytes;
        files.push(FileSum {
            path: rel,
            bytes,
            sha256: hex,
        });
    }
    for dir in [out.join(manifest::BLOBS), out.to_path_buf()] {
        if dir.is_dir() {
            manifest::sync_dir(&dir).map_err(io(&dir))?;
        }
    }
    let manifest = Manifest {
        format: manifest::FORMAT.into(),
        version: manifest::VERSION,
        hub_version: env!("CARGO_PKG_VERSION").into(),
        created_ms: now_ms,
        entries: contents.entries,
        authors: contents.authors,
        blobs_named: contents.blobs.len() as u64,
        blobs_missing: missing,
        blobs_corrupt: corrupt,
        files,
    };
    Ok((manifest, dump_bytes, blob_bytes))
}

/// What a restore did.
#[derive(Debug, Clone)]
pub struct RestoreSummary {
    pub manifest: Manifest,
    /// Blobs stored into the media folder, and those it held already.
    pub blobs_stored: u64,
    pub blobs_present: u64,
    pub took: Duration,
}

impl std::fmt::Display for RestoreSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let m = &self.manifest;
        write!(
            f,
            "restored {} entries of {} authors from the backup taken {}; \
             {} blobs stored, {} already present, in {:.1} s.\n\
             Nodes re-send what the hub received after the backup at their next sync, and \
             report it as truncated until then. Before the hub signs anything of its own \
             (checkpoints, role grants, sensor rules' events), let the nodes that were online \
             last sync, or serve with a new hub identity: otherwise its own chain can fork \
             (docs/operations.md, \"Backup and recovery\")",
            m.entries,
            m.authors,
            sentinel_http::formats::rfc3339_of_ms(m.created_ms)
                .unwrap_or_else(|| format!("at {} ms", m.created_ms)),
            self.blobs_stored,
            self.blobs_present,
            self.took.as_secs_f64()
        )
    }
}

/// Restores the backup in `from` into the empty database `database`
/// names and the media folder `media`.
pub async fn restore(
    database: &Config,
    media: &MediaStore,
    from: &Path,
    now_ms: u64,
) -> Result<RestoreSummary, BackupError> {
    let started = Instant::now();
    let bad = |source| BackupError::Backup {
        path: from.to_path_buf(),
        source,
    };
    let (manifest, sum) = manifest::read(from).map_err(bad)?;
    let tables = user_tables(database, 6).await?;
    if !tables.is_empty() {
        let mut tables = tables.join(", ");
        if tables.matches(", ").count() >= 5 {
            tables.push_str(", …");
        }
        return Err(BackupError::NotEmpty { tables });
    }
    // Every file checked before anything is written.
    let (checked, dir) = (manifest.clone(), from.to_path_buf());
    tokio::task::spawn_blocking(move || manifest::verify(&dir, &checked))
        .await
        .map_err(|e| BackupError::Media(e.to_string()))?
        .map_err(bad)?;
    let (blobs, dir, media) = (manifest.clone(), from.to_path_buf(), media.clone());
    let (stored, present) = tokio::task::spawn_blocking(move || store_blobs(&media, &dir, &blobs))
        .await
        .map_err(|e| BackupError::Media(e.to_string()))??;
    pg::restore(database, &from.join(DUMP)).await?;
    let (entries, authors) = restored_counts(database).await?;
    if (entries, authors) != (manifest.entries, manifest.authors) {
        return Err(BackupError::Counts {
            expected: format!(
                "{} entries of {} authors",
                manifest.entries, manifest.authors
            ),
            found: format!("{entries} entries of {authors} authors"),
        });
    }
    let record = serde_json::json!({
        "backup_created_ms": manifest.created_ms,
        "manifest_sha256": hex::encode(sum),
        "restored_ms": now_ms,
        "hub_version": env!("CARGO_PKG_VERSION"),
    });
    record_restore(database, record.to_string().as_bytes()).await?;
    Ok(RestoreSummary {
        manifest,
        blobs_stored: stored,
        blobs_present: present,
        took: started.elapsed(),
    })
}

/// Stores every blob of the backup in the media folder (which checks it
/// again); returns how many were new and how many it held already.
fn store_blobs(
    media: &MediaStore,
    dir: &Path,
    manifest: &Manifest,
) -> Result<(u64, u64), BackupError> {
    let (mut stored, mut present) = (0, 0);
    for f in manifest.files.iter().filter(|f| f.path != DUMP) {
        let path = dir.join(&f.path);
        let bytes = std::fs::read(&path).map_err(io(&path))?;
        let held = hex::decode(&f.sha256)
            .ok()
            .and_then(|h| <[u8; 32]>::try_from(h).ok())
            .is_some_and(|h| media.contains(&h));
        let put = media
            .put(&bytes)
            .map_err(|e| BackupError::Media(format!("{}: {e}", path.display())))?;
        if hex::encode(put.hash) != f.sha256 {
            return Err(BackupError::Media(format!(
                "{}: stored as {}, not as its name says",
                path.display(),
                hex::encode(put.hash)
            )));
        }
        if held {
            present += 1;
        } else {
            stored += 1;
        }
    }
    Ok((stored, present))
}
