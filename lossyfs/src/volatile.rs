//! One file's writes that no fsync has reached yet: its pages as written,
//! its size, and how much of the file on disk still shows through.
//!
//! The disk (the backing file) keeps what the last fsync wrote. Reads see
//! the dirty pages over it; bytes past `floor` read as zeros even where
//! the disk still has old bytes, because a truncation since the last
//! fsync cut them off. [`Volatile::write_back`] makes the disk equal to
//! what reads see; dropping a `Volatile` is the power cut for its file.
//!
//! Never does: write to the backing file except in `write_back`, or keep
//! anything for a file whose reads it does not answer.

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// The unit the dirty data is kept in (bytes).
pub const PAGE: u64 = 4096;

/// A file's unsynced state.
#[derive(Debug, Clone)]
pub struct Volatile {
    /// Page index → its full contents as written (bytes past `size`
    /// within the last page are zero).
    pages: BTreeMap<u64, Box<[u8]>>,
    /// The file's size as the programs using it see it.
    size: u64,
    /// Bytes of the backing file below this offset still show through
    /// where no dirty page covers them; above it the file reads as zeros.
    floor: u64,
}

impl Volatile {
    /// A file whose every byte is still as on disk, `disk_len` long.
    pub fn new(disk_len: u64) -> Volatile {
        Volatile {
            pages: BTreeMap::new(),
            size: disk_len,
            floor: disk_len,
        }
    }

    /// The size reads see.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The bytes held only here (whole pages).
    pub fn dirty_bytes(&self) -> u64 {
        self.pages.len() as u64 * PAGE
    }

    /// Whether a write-back would change nothing on disk: no page, and
    /// the size is the disk's.
    pub fn is_clean(&self, disk_len: u64) -> bool {
        self.pages.is_empty() && self.size == disk_len && self.floor == disk_len
    }

    /// Up to `len` bytes from `offset`, as the file now reads (`disk` is
    /// the backing file, for bytes no dirty page holds).
    pub fn read(&self, disk: &File, offset: u64, len: u32) -> io::Result<Vec<u8>> {
        let end = offset.saturating_add(u64::from(len)).min(self.size);
        if offset >= end {
            return Ok(Vec::new());
        }
        let mut out = Vec::with_capacity((end - offset) as usize);
        let mut at = offset;
        while at < end {
            let index = at / PAGE;
            let page_end = ((index + 1) * PAGE).min(end);
            let within = (at - index * PAGE) as usize;
            let n = (page_end - at) as usize;
            match self.pages.get(&index) {
                Some(page) => out.extend_from_slice(&page[within..within + n]),
                None => {
                    let start = out.len();
                    out.resize(start + n, 0);
                    self.read_disk(disk, at, &mut out[start..])?;
                }
            }
            at = page_end;
        }
        Ok(out)
    }

    /// Fills `buf` with the disk's bytes at `offset` that still show
    /// through (below `floor`); the rest stays zero.
    fn read_disk(&self, disk: &File, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        if offset >= self.floor {
            return Ok(());
        }
        let n = ((self.floor - offset) as usize).min(buf.len());
        read_full(disk, offset, &mut buf[..n])
    }

    /// Writes `data` at `offset`, in memory only.
    pub fn write(&mut self, disk: &File, offset: u64, data: &[u8]) -> io::Result<()> {
        let end = offset
            .checked_add(data.len() as u64)
            .ok_or_else(|| io::Error::from_raw_os_error(libc::EFBIG))?;
        let mut at = offset;
        let mut taken = 0usize;
        while at < end {
            let index = at / PAGE;
            let page_end = ((index + 1) * PAGE).min(end);
            let within = (at - index * PAGE) as usize;
            let n = (page_end - at) as usize;
            let page = self.page_mut(disk, index)?;
            page[within..within + n].copy_from_slice(&data[taken..taken + n]);
            taken += n;
            at = page_end;
        }
        self.size = self.size.max(end);
        Ok(())
    }

    /// The dirty page `index`, made from what the file reads there now if
    /// it is not dirty yet.
    fn page_mut(&mut self, disk: &File, index: u64) -> io::Result<&mut [u8]> {
        if !self.pages.contains_key(&index) {
            let mut page = vec![0u8; PAGE as usize].into_boxed_slice();
            let start = index * PAGE;
            if start < self.size {
                let n = ((self.size - start) as usize).min(PAGE as usize);
                self.read_disk(disk, start, &mut page[..n])?;
            }
            self.pages.insert(index, page);
        }
        Ok(self
            .pages
            .get_mut(&index)
            .map(|p| &mut p[..])
            .unwrap_or_default())
    }

    /// Sets the size, in memory only: bytes past it are gone, and read as
    /// zeros if the file grows again.
    pub fn truncate(&mut self, size: u64) {
        if size < self.size {
            self.pages.retain(|&index, _| index * PAGE < size);
            let index = size / PAGE;
            let within = (size - index * PAGE) as usize;
            if let Some(page) = self.pages.get_mut(&index) {
                page[within..].fill(0);
            }
            self.floor = self.floor.min(size);
        }
        self.size = size;
    }

    /// Makes the disk hold what reads see (not yet flushed to the device:
    /// the caller syncs `disk`); answers the bytes written. `disk` must be
    /// open for writing.
    pub fn write_back(&self, disk: &File) -> io::Result<u64> {
        // Cut off what a truncation hid, then grow with zeros to the size.
        if disk.metadata()?.len() > self.floor {
            disk.set_len(self.floor)?;
        }
        disk.set_len(self.size)?;
        let mut written = 0;
        for (&index, page) in &self.pages {
            let start = index * PAGE;
            if start >= self.size {
                continue;
            }
            let n = ((self.size - start) as usize).min(page.len());
            disk.write_all_at(&page[..n], start)?;
            written += n as u64;
        }
        Ok(written)
    }
}

/// Reads `buf.len()` bytes at `offset`, zeros past the end of the file.
pub fn read_full(file: &File, mut offset: u64, mut buf: &mut [u8]) -> io::Result<()> {
    while !buf.is_empty() {
        match file.read_at(buf, offset) {
            Ok(0) => {
                buf.fill(0);
                return Ok(());
            }
            Ok(n) => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn disk(bytes: &[u8]) -> (tempfile::TempDir, File) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, bytes).unwrap();
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        (dir, f)
    }

    fn on_disk(f: &File) -> Vec<u8> {
        let mut buf = vec![0; f.metadata().unwrap().len() as usize];
        read_full(f, 0, &mut buf).unwrap();
        buf
    }

    #[test]
    fn writes_stay_in_memory_until_written_back() {
        let (_d, f) = disk(b"hello world");
        let mut v = Volatile::new(11);
        v.write(&f, 6, b"there, and more").unwrap();
        assert_eq!(v.read(&f, 0, 100).unwrap(), b"hello there, and more");
        assert_eq!(on_disk(&f), b"hello world");
        v.write_back(&f).unwrap();
        assert_eq!(on_disk(&f), b"hello there, and more");
    }

    #[test]
    fn a_write_spanning_pages_past_the_end_leaves_zeros_between() {
        let (_d, f) = disk(b"abc");
        let mut v = Volatile::new(3);
        let at = PAGE * 2 + 10;
        v.write(&f, at, &[7; 5000]).unwrap();
        assert_eq!(v.size(), at + 5000);
        let all = v.read(&f, 0, u32::MAX).unwrap();
        assert_eq!(&all[..3], b"abc");
        assert!(all[3..at as usize].iter().all(|&b| b == 0));
        assert!(all[at as usize..].iter().all(|&b| b == 7));
        v.write_back(&f).unwrap();
        assert_eq!(on_disk(&f), all);
    }

    #[test]
    fn a_truncation_hides_the_old_bytes_even_when_the_file_grows_again() {
        let (_d, f) = disk(&[9; 3 * PAGE as usize]);
        let mut v = Volatile::new(3 * PAGE);
        v.write(&f, 10, b"xy").unwrap();
        v.truncate(11);
        v.truncate(2 * PAGE);
        let all = v.read(&f, 0, u32::MAX).unwrap();
        assert_eq!(all.len(), 2 * PAGE as usize);
        assert_eq!(&all[..11], &[9, 9, 9, 9, 9, 9, 9, 9, 9, 9, b'x']);
        assert!(all[11..].iter().all(|&b| b == 0), "old bytes show through");
        // Unsynced: the disk still has every old byte.
        assert_eq!(on_disk(&f), vec![9; 3 * PAGE as usize]);
        v.write_back(&f).unwrap();
        assert!(on_disk(&f) == all, "the disk differs from what was read");
    }

    #[test]
    fn reads_stop_at_the_size() {
        let (_d, f) = disk(b"0123456789");
        let mut v = Volatile::new(10);
        v.truncate(4);
        assert_eq!(v.read(&f, 2, 100).unwrap(), b"23");
        assert!(v.read(&f, 4, 100).unwrap().is_empty());
        assert!(!v.is_clean(10), "a truncation is a change to write back");
    }
}
