//! Unfinished downloads of blobs from peers, kept under `partial/<hex>`
//! in the blob folder so an interrupted transfer resumes where it stopped.
//!
//! A partial file is never a blob: it lives outside the fan-out folders
//! and becomes one only through [`MediaStore::finish_partial`], which
//! checks its size, its SHA-256 and its type, then stores it with
//! [`MediaStore::put`] (the same durable write and sniffing as a local
//! attachment). Appends are fsynced before they return, so what a crash
//! leaves is a prefix of the blob that a later download continues.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::PathBuf;

use sha2::{Digest, Sha256};

use super::{io_at, sync_dir, MediaError, MediaStore, StoredMedia};

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
mod tests {
    use super::*;

    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89";

    fn store() -> (tempfile::TempDir, MediaStore) {
        let tmp = tempfile::tempdir().unwrap();
        let store = MediaStore::open(tmp.path().join("media")).unwrap();
        (tmp, store)
    }

    fn hash(bytes: &[u8]) -> [u8; 32] {
        Sha256::digest(bytes).into()
    }

    #[test]
    fn a_download_in_two_parts_becomes_the_blob() {
        let (_tmp, store) = store();
        let h = hash(PNG);
        store.append_partial(&h, 0, &PNG[..10]).unwrap();
        assert_eq!(store.partial_len(&h), 10);
        assert!(!store.contains(&h), "a partial is not a blob");
        assert!(matches!(
            store.append_partial(&h, 5, &PNG[10..]),
            Err(MediaError::PartialOutOfStep {
                len: 10,
                offset: 5,
                ..
            })
        ));
        store.append_partial(&h, 10, &PNG[10..]).unwrap();
        let stored = store.finish_partial(&h, PNG.len() as u64).unwrap();
        assert_eq!(stored.hash, h);
        assert_eq!(store.read(&h).unwrap(), PNG);
        assert_eq!(store.partial_len(&h), 0);
        assert!(!store.partial_path(&h).exists());
    }

    #[test]
    fn a_wrong_download_is_discarded_and_never_visible() {
        let (_tmp, store) = store();
        let h = hash(PNG);
        let mut bad = PNG.to_vec();
        bad[20] ^= 1;
        store.append_partial(&h, 0, &bad).unwrap();
        match store.finish_partial(&h, PNG.len() as u64) {
            Err(MediaError::Corrupt { found, .. }) => assert!(found.starts_with("sha256 ")),
            other => panic!("{other:?}"),
        }
        assert!(!store.contains(&h));
        assert!(!store.partial_path(&h).exists());

        // Right hash, wrong announced size.
        store.append_partial(&h, 0, PNG).unwrap();
        assert!(matches!(
            store.finish_partial(&h, PNG.len() as u64 + 1),
            Err(MediaError::Corrupt { .. })
        ));
        assert!(!store.contains(&h));

        // Right hash and size, but not an accepted type.
        let text = b"hello, not a photo";
        let t = hash(text);
        store.append_partial(&t, 0, text).unwrap();
        assert!(matches!(
            store.finish_partial(&t, text.len() as u64),
            Err(MediaError::UnsupportedType { .. })
        ));
        assert!(!store.contains(&t));
        assert!(!store.partial_path(&t).exists());
    }

    #[test]
    fn a_download_over_the_cap_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let store = MediaStore::open_with_max(tmp.path().join("media"), 16).unwrap();
        let h = [1u8; 32];
        store.append_partial(&h, 0, &[0; 10]).unwrap();
        assert!(matches!(
            store.append_partial(&h, 10, &[0; 7]),
            Err(MediaError::TooLarge { size: 17, max: 16 })
        ));
    }
}
