//! A hub backup's folder and its manifest: what is in it, and the check a
//! restore runs before it touches anything.
//!
//! ```text
//! DIR/database.dump          pg_dump, custom format
//! DIR/blobs/ab/cdef…         every media blob the dump names and the hub held
//! DIR/manifest.json          what the backup holds (below)
//! DIR/manifest.json.sha256   the manifest's SHA-256, as `sha256sum` writes it
//! ```
//!
//! The manifest (JSON) names the format and its version, the hub's
//! version, when the backup was taken, the counts of the dumped log
//! (entries, authors, blobs named, those the hub did not hold or held
//! corrupt), and every file with its size and SHA-256. It is written last:
//! a folder without one is not a backup. `sha256sum -c
//! manifest.json.sha256` checks the manifest by hand; [`verify`] checks it
//! and every file it lists.
//!
//! Never does: database work, or write outside the backup folder.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The manifest's file name inside a backup folder.
pub const MANIFEST: &str = "manifest.json";
/// The manifest's checksum file (`sha256sum` format).
pub const MANIFEST_SUM: &str = "manifest.json.sha256";
/// The database dump's file name.
pub const DUMP: &str = "database.dump";
/// The folder of blobs, fanned out like the hub's media folder.
pub const BLOBS: &str = "blobs";
/// What the manifest's `format` says.
pub const FORMAT: &str = "sentinel-hub-backup";
/// The manifest version this hub writes and reads.
pub const VERSION: u32 = 1;

/// What a backup holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Always [`FORMAT`].
    pub format: String,
    /// [`VERSION`].
    pub version: u32,
    /// The version of the `sentinel-hub` that wrote it.
    pub hub_version: String,
    /// When the backup was taken (Unix milliseconds).
    pub created_ms: u64,
    /// Entries in the dumped log.
    pub entries: u64,
    /// Authors with a chain in it.
    pub authors: u64,
    /// Blobs the dumped log names.
    pub blobs_named: u64,
    /// Named blobs the hub's folder did not hold (not uploaded yet): the
    /// nodes that hold them upload them again after a restore.
    pub blobs_missing: Vec<String>,
    /// Named blobs whose file on the hub no longer matched its hash: not
    /// copied (fetched again from a node after a restore).
    pub blobs_corrupt: Vec<String>,
    /// Every file of the backup but the manifest's own two.
    pub files: Vec<FileSum>,
}

/// One file of a backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSum {
    /// Relative to the backup folder, `/`-separated.
    pub path: String,
    pub bytes: u64,
    /// Lowercase hex.
    pub sha256: String,
}

/// Why a folder is not a backup a restore may use. Each names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    #[error("{}: cannot read it: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{} does not match the SHA-256 in {MANIFEST_SUM}: the manifest was changed or damaged",
        path.display()
    )]
    ManifestChanged { path: PathBuf },
    #[error("{}: not a valid manifest: {message}", path.display())]
    Parse { path: PathBuf, message: String },
    #[error("{}: {message}", path.display())]
    Unsupported { path: PathBuf, message: String },
    #[error("{}: the manifest lists a file outside the backup's layout: {file:?}", path.display())]
    BadPath { path: PathBuf, file: String },
    #[error(
        "{}: {found}, but the manifest says {expected}: the file was changed or damaged",
        path.display()
    )]
    Mismatch {
        path: PathBuf,
        expected: String,
        found: String,
    },
}

/// `blobs/ab/cdef…` for a blob's lowercase hex hash.
pub fn blob_path(hex: &str) -> String {
    format!("{BLOBS}/{}/{}", &hex[..2], &hex[2..])
}

/// Copies `from` to `to` (a new file, mode 0600), hashing what it copies, and makes
/// the copy durable. The SHA-256 and size of the bytes copied.
pub fn copy_hashed(from: &Path, to: &Path) -> std::io::Result<([u8; 32], u64)> {
    let mut src = std::fs::File::open(from)?;
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut dst = options.open(to)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut bytes = 0u64;
    loop {
        let n = src.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        dst.write_all(&buf[..n])?;
        bytes += n as u64;
    }
    dst.sync_all()?;
    Ok((hasher.finalize().into(), bytes))
}

/// The SHA-256 and size of a file.
pub fn hash_file(path: &Path) -> std::io::Result<([u8; 32], u64)> {
    let mut f = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut bytes = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok((hasher.finalize().into(), bytes));
        }
        hasher.update(&buf[..n]);
        bytes += n as u64;
    }
}

/// Flushes a folder's names to disk.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Writes the manifest and its checksum into `dir`, durably; returns the
/// manifest's SHA-256.
pub fn write(dir: &Path, manifest: &Manifest) -> std::io::Result<[u8; 32]> {
    let mut json = serde_json::to_vec_pretty(manifest).map_err(std::io::Error::other)?;
    json.push(b'\n');
    let sum: [u8; 32] = Sha256::digest(&json).into();
    for (name, bytes) in [
        (MANIFEST, json),
        (
            MANIFEST_SUM,
            format!("{}  {MANIFEST}\n", hex::encode(sum)).into_bytes(),
        ),
    ] {
        let mut f = std::fs::File::create(dir.join(name))?;
        f.write_all(&bytes)?;
        f.sync_all()?;
    }
    sync_dir(dir)?;
    Ok(sum)
}

/// Reads and checks `dir`'s manifest: its checksum, its format and
/// version, and that every path it lists is one of a backup's. Returns it
/// with its SHA-256. Reads no other file ([`verify`] does).
pub fn read(dir: &Path) -> Result<(Manifest, [u8; 32]), ManifestError> {
    let path = dir.join(MANIFEST);
    let sum_path = dir.join(MANIFEST_SUM);
    let json = std::fs::read(&path).map_err(|source| ManifestError::Read {
        path: path.clone(),
        source,
    })?;
    let sum_text = std::fs::read_to_string(&sum_path).map_err(|source| ManifestError::Read {
        path: sum_path.clone(),
        source,
    })?;
    let sum: [u8; 32] = Sha256::digest(&json).into();
    let listed = sum_text.split_whitespace().next().unwrap_or_default();
    if !listed.eq_ignore_ascii_case(&hex::encode(sum)) {
        return Err(ManifestError::ManifestChanged { path });
    }
    let manifest: Manifest = serde_json::from_slice(&json).map_err(|e| ManifestError::Parse {
        path: path.clone(),
        message: e.to_string(),
    })?;
    if manifest.format != FORMAT {
        return Err(ManifestError::Unsupported {
            path,
            message: format!(
                "format {:?} is not a Sentinel hub backup ({FORMAT:?})",
                manifest.format
            ),
        });
    }
    if manifest.version != VERSION {
        return Err(ManifestError::Unsupported {
            path,
            message: format!(
                "manifest version {} (written by sentinel-hub {}); this hub reads version {VERSION}",
                manifest.version, manifest.hub_version
            ),
        });
    }
    let dumps = manifest.files.iter().filter(|f| f.path == DUMP).count();
    if dumps != 1 {
        return Err(ManifestError::Unsupported {
            path,
            message: format!("lists {DUMP} {dumps} times, not once"),
        });
    }
    for f in &manifest.files {
        let is_blob = blob_hash(&f.path).is_some_and(|h| h == f.sha256);
        let hex_sum = f.sha256.len() == 64 && f.sha256.bytes().all(|b| b.is_ascii_hexdigit());
        if !(f.path == DUMP || is_blob) || !hex_sum {
            return Err(ManifestError::BadPath {
                path,
                file: f.path.clone(),
            });
        }
    }
    Ok((manifest, sum))
}

/// The hex hash a `blobs/ab/cdef…` path names, if it is one (lowercase).
fn blob_hash(path: &str) -> Option<String> {
    let rest = path.strip_prefix(BLOBS)?.strip_prefix('/')?;
    let (fan, tail) = rest.split_once('/')?;
    let hex = format!("{fan}{tail}");
    let ok = fan.len() == 2
        && hex.len() == 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    ok.then_some(hex)
}

/// Checks every file the manifest lists: present, its size and SHA-256
/// as listed (a blob's SHA-256 is also its name, checked by [`read`]).
/// Names the first file that does not match.
pub fn verify(dir: &Path, manifest: &Manifest) -> Result<(), ManifestError> {
    for f in &manifest.files {
        let path = dir.join(&f.path);
        let (sum, bytes) = hash_file(&path).map_err(|source| ManifestError::Read {
            path: path.clone(),
            source,
        })?;
        if bytes != f.bytes {
            return Err(ManifestError::Mismatch {
                path,
                expected: format!("{} bytes", f.bytes),
                found: format!("{bytes} bytes"),
            });
        }
        let found = hex::encode(sum);
        if found != f.sha256 {
            return Err(ManifestError::Mismatch {
                path,
                expected: format!("SHA-256 {}", f.sha256),
                found: format!("SHA-256 {found}"),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `docs/vectors/backup/`: read as a backup's manifest, and written
    /// back byte for byte.
    #[test]
    fn the_vector_reads_and_writes_back_byte_for_byte() {
        let vectors = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/vectors/backup");
        let (manifest, sum) = read(&vectors).unwrap();
        assert_eq!((manifest.entries, manifest.authors), (14, 3));
        assert_eq!(manifest.files[0].path, DUMP);
        let scratch = tempfile::TempDir::new().unwrap();
        assert_eq!(write(scratch.path(), &manifest).unwrap(), sum);
        for name in [MANIFEST, MANIFEST_SUM] {
            assert_eq!(
                std::fs::read(scratch.path().join(name)).unwrap(),
                std::fs::read(vectors.join(name)).unwrap(),
                "{name}"
            );
        }
        // A blob whose name is not its hash is outside the layout.
        let mut bad = manifest.clone();
        bad.files[1].sha256 = "ab".repeat(32);
        write(scratch.path(), &bad).unwrap();
        assert!(matches!(
            read(scratch.path()),
            Err(ManifestError::BadPath { .. })
        ));
    }
}
