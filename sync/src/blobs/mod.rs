//! Content-addressed media blobs (photos, videos) in a folder: the node's
//! `media/` beside its database, the hub's `media_dir`. One implementation
//! for both, so both store, verify and resume blobs the same way.
//!
//! A blob is named by the SHA-256 of its bytes, under a fan-out folder of
//! the first two hex digits (`ab/cdef…`, 62 digits) so no folder grows to
//! hundreds of thousands of entries. Because the name is the content, the
//! same photo attached twice is stored once, sync can ask for blobs by hash,
//! and a blob whose bytes changed on disk is detected on read.
//!
//! A blob's type is decided by its magic bytes only, never by a file name
//! or a type someone claims, so a renamed text file cannot pass as a photo.
//!
//! [`MediaStore::put`] returns only once the blob is durable (invariant 3,
//! "acknowledged means durable"): the bytes go to a temporary file in the
//! blob's own folder, which is fsynced, renamed into place, and then the
//! folders are fsynced so the new names survive a power cut too.
//!
//! Unfinished downloads from peers are kept under `partial/<hex>` in the
//! blob folder so an interrupted transfer resumes where it stopped. A
//! partial file is never a blob: it lives outside the fan-out folders and
//! becomes one only through [`MediaStore::finish_partial`], which checks
//! its size, its SHA-256 and its type, then stores it with
//! [`MediaStore::put`] (the same durable write and sniffing as a local
//! attachment). Appends are fsynced before they return, so what a crash
//! leaves is a prefix of the blob that a later download continues.
//!
//! [`BlobStore`] is what the media streams of [`crate::quic_media`] read
//! from and write to; [`MediaStore`] is the one both servers use.
//!
//! Never does: network IO, or decide which blobs a peer should have.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sentinel_schema::limits::MAX_MEDIA_BYTES;
use sentinel_schema::MediaType;
use sha2::{Digest, Sha256};

/// What the media transport ([`crate::quic_media`]) needs from a blob
/// store. Every method may block on the disk; the transport calls the
/// slow ones off the async threads.
pub trait BlobStore: Send + Sync {
    /// Whether a verified blob with this hash is stored.
    fn has(&self, hash: &[u8; 32]) -> bool;
    /// The stored blob's size, if it is stored.
    fn size(&self, hash: &[u8; 32]) -> Option<u64>;
    /// Up to `max` bytes of the stored blob from `offset` (fewer only at
    /// its end).
    fn read_at(&self, hash: &[u8; 32], offset: u64, max: usize) -> io::Result<Vec<u8>>;
    /// How many bytes of an unfinished download of this blob are kept.
    fn partial_len(&self, hash: &[u8; 32]) -> u64;
    /// Appends bytes to the unfinished download, durably; `offset` must be
    /// its current length.
    fn append_partial(&self, hash: &[u8; 32], offset: u64, bytes: &[u8]) -> io::Result<()>;
    /// Checks the finished download (size, SHA-256 equal to `hash`, and
    /// anything else the store checks) and only then makes it a blob. On a
    /// mismatch the download is discarded and the reason returned.
    fn finish_partial(&self, hash: &[u8; 32], expected_size: u64) -> Result<(), String>;
    /// Throws away an unfinished download that cannot be resumed.
    fn discard_partial(&self, hash: &[u8; 32]) -> io::Result<()>;
}

/// Why a blob cannot be stored or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MediaError {
    /// More bytes than a blob may have. For a file that grew while it was
    /// read, `size` is how much was read when reading stopped.
    #[error("media of {size} bytes exceeds the limit of {max} bytes")]
    TooLarge { size: u64, max: u64 },
    /// No bytes at all.
    #[error("media is empty")]
    Empty,
    /// The magic bytes are not those of a type Sentinel accepts. `head` is
    /// the hex of the first few bytes, to tell what it was.
    #[error("not JPEG, PNG, WebP or MP4 (starts with {head:?})")]
    UnsupportedType { head: String },
    /// A file-system operation failed.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The path to store from is a folder, device or pipe, not a file.
    #[error("{} is not a regular file", path.display())]
    NotAFile { path: PathBuf },
    /// No blob with this hash is stored.
    #[error("no media blob {hash}")]
    NotFound { hash: String },
    /// The blob's bytes no longer match its name. `found` says what the
    /// file holds instead: its SHA-256, or that it is over the size cap.
    #[error("media blob {} does not match its name: found {found}", path.display())]
    Corrupt { path: PathBuf, found: String },
    /// A download's next bytes were offered for `offset`, but `len` bytes
    /// are kept: appending would leave a hole or overwrite.
    #[error("{} holds {len} bytes, not {offset}", path.display())]
    PartialOutOfStep {
        path: PathBuf,
        len: u64,
        offset: u64,
    },
}

/// What [`MediaStore::put`] stored: the facts a `MediaAttached` entry
/// announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredMedia {
    /// SHA-256 of the bytes; also the blob's name.
    pub hash: [u8; 32],
    pub mime: MediaType,
    pub size: u64,
}

/// The type of a blob, from its magic bytes alone.
pub fn sniff(bytes: &[u8]) -> Result<MediaType, MediaError> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Ok(MediaType::Jpeg);
    }
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Ok(MediaType::Png);
    }
    // RIFF container of form WEBP whose first chunk is one of the three
    // WebP chunk kinds (`VP8 `, `VP8L`, `VP8X`).
    if bytes.get(0..4) == Some(b"RIFF")
        && bytes.get(8..12) == Some(b"WEBP")
        && bytes.get(12..15) == Some(b"VP8")
    {
        return Ok(MediaType::Webp);
    }
    if is_mp4(bytes) {
        return Ok(MediaType::Mp4);
    }
    let head = &bytes[..bytes.len().min(8)];
    Err(MediaError::UnsupportedType {
        head: hex::encode(head),
    })
}

/// Largest `ftyp` box taken as plausible: room for ~250 compatible brands,
/// far more than any real file lists.
const MAX_FTYP_BYTES: usize = 1024;

/// Brands of the ISO base media family that are MP4 video.
const MP4_BRANDS: [&[u8; 4]; 17] = [
    b"isom", b"iso2", b"iso3", b"iso4", b"iso5", b"iso6", b"iso7", b"iso8", b"iso9", b"mp41",
    b"mp42", b"mp71", b"avc1", b"M4V ", b"dash", b"mmp4", b"MSNV",
];

/// HEIF and AVIF still images also start with an `ftyp` box, sometimes
/// listing an `iso*` brand as compatible; labelling them `video/mp4` would
/// be a lie, so their major brands are refused outright.
const IMAGE_BRANDS: [&[u8; 4]; 9] = [
    b"heic", b"heix", b"heim", b"heis", b"hevc", b"mif1", b"msf1", b"avif", b"avis",
];

/// An MP4 starts with an `ftyp` box: 4-byte big-endian size, `ftyp`, major
/// brand, minor version, then whole 4-byte compatible brands. The box must
/// be complete within `bytes` and name an MP4 brand.
fn is_mp4(bytes: &[u8]) -> bool {
    if bytes.get(4..8) != Some(b"ftyp") {
        return false;
    }
    let Some(size) = bytes.get(0..4).and_then(|b| <[u8; 4]>::try_from(b).ok()) else {
        return false;
    };
    let size = u32::from_be_bytes(size) as usize;
    if !(16..=MAX_FTYP_BYTES).contains(&size) || !size.is_multiple_of(4) || size > bytes.len() {
        return false;
    }
    let Some(major) = bytes.get(8..12) else {
        return false;
    };
    if IMAGE_BRANDS.iter().any(|b| b.as_slice() == major) {
        return false;
    }
    let compatible = bytes.get(16..size).unwrap_or_default().chunks_exact(4);
    std::iter::once(major)
        .chain(compatible)
        .any(|brand| MP4_BRANDS.iter().any(|b| b.as_slice() == brand))
}

/// Makes temporary names unique among concurrent puts in one process.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// The folder of content-addressed blobs.
#[derive(Debug, Clone)]
pub struct MediaStore {
    dir: PathBuf,
    /// Size cap; [`MAX_MEDIA_BYTES`] except in tests, which use a small cap
    /// rather than writing 64 MiB.
    max_bytes: u64,
}

impl MediaStore {
    /// Opens the blob folder, creating it (and its parents) if needed.
    pub fn open(dir: impl Into<PathBuf>) -> Result<MediaStore, MediaError> {
        MediaStore::open_with_max(dir.into(), MAX_MEDIA_BYTES)
    }

    fn open_with_max(dir: PathBuf, max_bytes: u64) -> Result<MediaStore, MediaError> {
        fs::create_dir_all(&dir).map_err(io_at(&dir))?;
        // The folder's own name must survive a power cut, or the first
        // blobs stored in it could vanish with it.
        let parent = dir
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        sync_dir(parent)?;
        Ok(MediaStore { dir, max_bytes })
    }

    /// The folder the blobs live in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the blob with this hash is (or would be) stored.
    pub fn path(&self, hash: &[u8; 32]) -> PathBuf {
        let name = hex::encode(hash);
        self.dir.join(&name[..2]).join(&name[2..])
    }

    /// Whether a blob with this hash exists. Does not read it; [`read`]
    /// is what checks its bytes.
    ///
    /// [`read`]: MediaStore::read
    pub fn contains(&self, hash: &[u8; 32]) -> bool {
        self.path(hash).is_file()
    }

    /// Stores the bytes as a blob and returns once they are durable.
    ///
    /// Refuses empty input, input over the cap, and input whose magic
    /// bytes are not an accepted type. Storing bytes already held does not
    /// rewrite them, unless the held copy is found corrupt, in which case
    /// it is replaced.
    pub fn put(&self, bytes: &[u8]) -> Result<StoredMedia, MediaError> {
        let size = bytes.len() as u64;
        if size == 0 {
            return Err(MediaError::Empty);
        }
        if size > self.max_bytes {
            return Err(MediaError::TooLarge {
                size,
                max: self.max_bytes,
            });
        }
        let mime = sniff(bytes)?;
        let hash: [u8; 32] = Sha256::digest(bytes).into();
        let stored = StoredMedia { hash, mime, size };
        let path = self.path(&hash);
        let folder = path.parent().unwrap_or(&self.dir).to_path_buf();

        // Verifying the held copy costs a read, but acknowledging a put
        // over a rotten copy would acknowledge a blob we do not have.
        match self.read(&hash) {
            Ok(_) => {
                // A process that crashed between its rename and its folder
                // fsync leaves a visible but not yet durable name; syncing
                // again is cheap when nothing is dirty.
                sync_file(&path)?;
                sync_dir(&folder)?;
                sync_dir(&self.dir)?;
                return Ok(stored);
            }
            Err(MediaError::NotFound { .. } | MediaError::Corrupt { .. }) => {}
            Err(other) => return Err(other),
        }

        fs::create_dir_all(&folder).map_err(io_at(&folder))?;
        // The temporary file sits in the blob's own folder so the rename
        // stays on one file system and is atomic: readers see no blob or
        // the whole blob, never a part.
        let temp = folder.join(format!(
            ".tmp-{}-{}-{}",
            &hex::encode(&hash[..8]),
            std::process::id(),
            TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        if let Err(e) =
            write_synced(&temp, bytes).and_then(|()| fs::rename(&temp, &path).map_err(io_at(&path)))
        {
            // Best effort: a leftover temporary file wastes space but is
            // never mistaken for a blob (its name is not a hash).
            let _ = fs::remove_file(&temp);
            return Err(e);
        }
        sync_dir(&folder)?;
        sync_dir(&self.dir)?;
        Ok(stored)
    }

    /// Stores a file's bytes as a blob, refusing it from its size before
    /// reading it into memory.
    pub fn put_file(&self, path: &Path) -> Result<StoredMedia, MediaError> {
        // Size from the open handle, not a separate stat of the path, so it
        // describes the very file that is read.
        let file = File::open(path).map_err(io_at(path))?;
        let meta = file.metadata().map_err(io_at(path))?;
        if !meta.is_file() {
            return Err(MediaError::NotAFile {
                path: path.to_path_buf(),
            });
        }
        if meta.len() > self.max_bytes {
            return Err(MediaError::TooLarge {
                size: meta.len(),
                max: self.max_bytes,
            });
        }
        // The file may grow after the check; the read limit keeps memory
        // bounded regardless, and one byte over the cap proves it too big.
        let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
        file.take(self.max_bytes.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(io_at(path))?;
        if bytes.len() as u64 > self.max_bytes {
            return Err(MediaError::TooLarge {
                size: bytes.len() as u64,
                max: self.max_bytes,
            });
        }
        self.put(&bytes)
    }

    /// The blob's bytes, after checking they still hash to its name.
    pub fn read(&self, hash: &[u8; 32]) -> Result<Vec<u8>, MediaError> {
        let path = self.path(hash);
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(MediaError::NotFound {
                    hash: hex::encode(hash),
                });
            }
            Err(e) => return Err(MediaError::Io { path, source: e }),
        };
        // put never stores more than the cap, so a bigger file is corrupt;
        // the limit stops a damaged file from exhausting memory.
        let mut bytes = Vec::new();
        file.take(self.max_bytes.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(io_at(&path))?;
        if bytes.len() as u64 > self.max_bytes {
            let found = format!("more than {} bytes", self.max_bytes);
            return Err(MediaError::Corrupt { path, found });
        }
        let actual: [u8; 32] = Sha256::digest(&bytes).into();
        if actual != *hash {
            return Err(MediaError::Corrupt {
                path,
                found: format!("sha256 {}", hex::encode(actual)),
            });
        }
        Ok(bytes)
    }
}

impl BlobStore for MediaStore {
    fn has(&self, hash: &[u8; 32]) -> bool {
        self.contains(hash)
    }

    fn size(&self, hash: &[u8; 32]) -> Option<u64> {
        fs::metadata(self.path(hash))
            .ok()
            .filter(|m| m.is_file())
            .map(|m| m.len())
    }

    /// Reads the bytes as they are on disk, without checking the blob's
    /// hash: that would read the whole blob for every chunk. The receiver
    /// verifies what it got before storing it.
    fn read_at(&self, hash: &[u8; 32], offset: u64, max: usize) -> io::Result<Vec<u8>> {
        let mut file = File::open(self.path(hash))?;
        file.seek(SeekFrom::Start(offset))?;
        let mut bytes = Vec::with_capacity(max);
        file.take(max as u64).read_to_end(&mut bytes)?;
        Ok(bytes)
    }

    fn partial_len(&self, hash: &[u8; 32]) -> u64 {
        MediaStore::partial_len(self, hash)
    }

    fn append_partial(&self, hash: &[u8; 32], offset: u64, bytes: &[u8]) -> io::Result<()> {
        MediaStore::append_partial(self, hash, offset, bytes).map_err(io::Error::other)
    }

    fn finish_partial(&self, hash: &[u8; 32], expected_size: u64) -> Result<(), String> {
        MediaStore::finish_partial(self, hash, expected_size)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    fn discard_partial(&self, hash: &[u8; 32]) -> io::Result<()> {
        MediaStore::discard_partial(self, hash).map_err(io::Error::other)
    }
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> MediaError + '_ {
    move |source| MediaError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes a new file and fsyncs it; `create_new` so two puts can never
/// write into the same temporary file.
fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), MediaError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(io_at(path))?;
    file.write_all(bytes).map_err(io_at(path))?;
    file.sync_all().map_err(io_at(path))
}

fn sync_file(path: &Path) -> Result<(), MediaError> {
    File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(io_at(path))
}

/// Makes a folder's entries (new names, renames) durable.
#[cfg(unix)]
fn sync_dir(dir: &Path) -> Result<(), MediaError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_at(dir))
}

/// Windows cannot open a folder as a `File` through std, and NTFS journals
/// its metadata (names, renames) itself, so there is nothing to do.
#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> Result<(), MediaError> {
    Ok(())
}

/// The folder of unfinished downloads, inside the blob folder. Its name is
/// not two hex digits, so it is never taken for a fan-out folder.
const PARTIAL_DIR: &str = "partial";

impl MediaStore {
    /// Where the unfinished download of this blob is kept.
    pub fn partial_path(&self, hash: &[u8; 32]) -> PathBuf {
        self.dir.join(PARTIAL_DIR).join(hex::encode(hash))
    }

    /// Bytes of the blob downloaded so far (0 when none).
    pub fn partial_len(&self, hash: &[u8; 32]) -> u64 {
        fs::metadata(self.partial_path(hash)).map_or(0, |m| m.len())
    }

    /// Appends the next bytes of a download and returns once they are
    /// durable. `offset` must be the download's current length, so bytes
    /// can never land in the wrong place.
    pub fn append_partial(
        &self,
        hash: &[u8; 32],
        offset: u64,
        bytes: &[u8],
    ) -> Result<(), MediaError> {
        let end = offset.saturating_add(bytes.len() as u64);
        if end > self.max_bytes {
            return Err(MediaError::TooLarge {
                size: end,
                max: self.max_bytes,
            });
        }
        let folder = self.dir.join(PARTIAL_DIR);
        if !folder.is_dir() {
            fs::create_dir_all(&folder).map_err(io_at(&folder))?;
            sync_dir(&self.dir)?;
        }
        let path = self.partial_path(hash);
        let created = !path.exists();
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io_at(&path))?;
        let len = file.metadata().map_err(io_at(&path))?.len();
        if len != offset {
            return Err(MediaError::PartialOutOfStep { path, len, offset });
        }
        file.write_all(bytes).map_err(io_at(&path))?;
        file.sync_data().map_err(io_at(&path))?;
        if created {
            sync_dir(&folder)?;
        }
        Ok(())
    }

    /// Turns a finished download into a blob, after checking that it has
    /// `expected_size` bytes, hashes to `hash` and is an accepted type.
    /// A download that fails a check is discarded; one that cannot be
    /// read is kept.
    pub fn finish_partial(
        &self,
        hash: &[u8; 32],
        expected_size: u64,
    ) -> Result<StoredMedia, MediaError> {
        let path = self.partial_path(hash);
        let file = File::open(&path).map_err(io_at(&path))?;
        let mut bytes = Vec::new();
        file.take(self.max_bytes.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(io_at(&path))?;
        let checked = (|| {
            if bytes.len() as u64 != expected_size {
                let found = format!("{} bytes, expected {expected_size}", bytes.len());
                return Err(MediaError::Corrupt {
                    path: path.clone(),
                    found,
                });
            }
            let actual: [u8; 32] = Sha256::digest(&bytes).into();
            if actual != *hash {
                return Err(MediaError::Corrupt {
                    path: path.clone(),
                    found: format!("sha256 {}", hex::encode(actual)),
                });
            }
            // Sniffs the type and writes the blob durably under its hash.
            self.put(&bytes)
        })();
        match &checked {
            Err(MediaError::Io { .. }) => {}
            // Stored, or refused for its content: the download is done.
            _ => self.discard_partial(hash)?,
        }
        checked
    }

    /// Erases a blob (a redaction's): the blob and any unfinished
    /// download of it, durably; nothing to do if neither exists. A blob
    /// is never removed otherwise (content-addressed, it is never wrong).
    pub fn remove(&self, hash: &[u8; 32]) -> Result<(), MediaError> {
        let path = self.path(hash);
        match fs::remove_file(&path) {
            Ok(()) => sync_dir(path.parent().unwrap_or(&self.dir))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(MediaError::Io { path, source: e }),
        }
        self.discard_partial(hash)
    }

    /// Removes an unfinished download (nothing to do if there is none).
    pub fn discard_partial(&self, hash: &[u8; 32]) -> Result<(), MediaError> {
        let path = self.partial_path(hash);
        match fs::remove_file(&path) {
            Ok(()) => sync_dir(&self.dir.join(PARTIAL_DIR)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(MediaError::Io { path, source: e }),
        }
    }
}

#[cfg(test)]
mod tests;
