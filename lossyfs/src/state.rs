//! What the mounted file system knows: its inodes (each a file or
//! directory of the backing directory, with its unsynced writes), its open
//! handles, and whether the power has been cut. Every operation of
//! [`crate::fs`] is one call here, under one lock.
//!
//! Names change on the backing directory at once (create, mkdir, rename,
//! unlink, rmdir, link, symlink, chmod, chown); file contents and sizes
//! change in memory ([`Volatile`]) until an fsync of that file writes them
//! back. After [`State::cut`] every operation fails with EIO.
//! The operations on names are in [`names`].
//!
//! Never does: write a file's contents to the backing directory except on
//! fsync, fdatasync, an O_SYNC/O_DSYNC write, or [`State::sync_all`].

use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::fs::{File, Metadata, OpenOptions};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fuser::{Errno, FileAttr, FileType, INodeNo};

use crate::volatile::Volatile;

mod names;

pub(crate) type R<T> = Result<T, Errno>;

/// Counts since mounting.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Write requests, and their bytes (all held in memory first).
    pub writes: u64,
    pub bytes_written: u64,
    /// fsync/fdatasync requests on files (and O_SYNC writes), and the
    /// bytes they wrote back.
    pub fsyncs: u64,
    pub bytes_synced: u64,
    /// fsync requests on directories (names are durable at once, so these
    /// write nothing).
    pub dir_fsyncs: u64,
    /// Files with unsynced changes now, and their dirty bytes (whole
    /// pages).
    pub dirty_files: u64,
    pub dirty_bytes: u64,
}

/// What a power cut threw away.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CutReport {
    /// Files whose unsynced contents or size were lost.
    pub files: u64,
    /// Dirty bytes lost (whole pages).
    pub bytes: u64,
}

pub(crate) struct Inode {
    /// Its names, relative to the backing directory (several after
    /// `link`; none once unlinked).
    paths: Vec<PathBuf>,
    data: Option<Volatile>,
    open: u32,
}

pub(crate) enum Handle {
    File {
        ino: u64,
        file: File,
        writable: bool,
        /// Opened O_SYNC or O_DSYNC: every write is written back at once.
        sync: bool,
    },
    Dir(Vec<Entry>),
}

/// One line of a directory listing.
pub(crate) struct Entry {
    pub ino: u64,
    pub kind: FileType,
    pub name: OsString,
}

pub(crate) struct State {
    root: PathBuf,
    /// Whether new files are given to the calling user (only root may).
    chown: bool,
    cut: bool,
    inodes: HashMap<u64, Inode>,
    by_disk: HashMap<(u64, u64), u64>,
    next_ino: u64,
    handles: HashMap<u64, Handle>,
    next_fh: u64,
    stats: Stats,
}

fn io(e: std::io::Error) -> Errno {
    Errno::from(e)
}

fn key(meta: &Metadata) -> (u64, u64) {
    (meta.dev(), meta.ino())
}

fn time(secs: i64, nsec: i64) -> SystemTime {
    let nsec = u32::try_from(nsec).unwrap_or(0);
    if secs >= 0 {
        UNIX_EPOCH + Duration::new(secs as u64, nsec)
    } else {
        UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs())
    }
}

/// The file of `h` if it is a handle on `ino` that may write.
fn writable(h: &Handle, ino: u64) -> Option<&File> {
    match h {
        Handle::File {
            ino: i,
            file,
            writable: true,
            ..
        } if *i == ino => Some(file),
        _ => None,
    }
}

const SYNC_FLAGS: i32 = libc::O_SYNC | libc::O_DSYNC;

impl State {
    pub fn new(root: &Path) -> std::io::Result<State> {
        let root = root.canonicalize()?;
        let meta = std::fs::metadata(&root)?;
        if !meta.is_dir() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::NotADirectory,
                format!("{} is not a directory", root.display()),
            ));
        }
        let mut s = State {
            root,
            chown: nix::unistd::geteuid().is_root(),
            cut: false,
            inodes: HashMap::new(),
            by_disk: HashMap::new(),
            next_ino: INodeNo::ROOT.0,
            handles: HashMap::new(),
            next_fh: 1,
            stats: Stats::default(),
        };
        s.intern(PathBuf::new(), &meta);
        Ok(s)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Fails with EIO once the power is cut.
    pub fn alive(&self) -> R<()> {
        if self.cut {
            Err(Errno::EIO)
        } else {
            Ok(())
        }
    }

    pub fn stats(&self) -> Stats {
        let mut s = self.stats;
        let dirty = self.inodes.values().filter_map(|i| i.data.as_ref());
        s.dirty_files = 0;
        s.dirty_bytes = 0;
        for d in dirty {
            s.dirty_files += 1;
            s.dirty_bytes += d.dirty_bytes();
        }
        s
    }

    /// The power cut: every unsynced change is gone, and every later
    /// operation fails with EIO.
    pub fn cut(&mut self) -> CutReport {
        let mut report = CutReport::default();
        if self.cut {
            return report;
        }
        self.cut = true;
        for inode in self.inodes.values_mut() {
            if let Some(d) = inode.data.take() {
                report.files += 1;
                report.bytes += d.dirty_bytes();
            }
        }
        report
    }

    /// Writes every unsynced change back (sync(2)); answers the files
    /// written.
    pub fn sync_all(&mut self) -> R<u64> {
        self.alive()?;
        let dirty: Vec<u64> = self
            .inodes
            .iter()
            .filter(|(_, i)| i.data.is_some())
            .map(|(&ino, _)| ino)
            .collect();
        for &ino in &dirty {
            self.write_back(ino, None)?;
        }
        Ok(dirty.len() as u64)
    }

    fn inode(&self, ino: u64) -> R<&Inode> {
        self.inodes.get(&ino).ok_or(Errno::ENOENT)
    }

    fn path_of(&self, ino: u64) -> R<PathBuf> {
        self.inode(ino)?.paths.first().cloned().ok_or(Errno::ENOENT)
    }

    fn disk(&self, rel: &Path) -> PathBuf {
        self.root.join(rel)
    }

    fn child(&self, parent: u64, name: &OsStr) -> R<PathBuf> {
        Ok(self.path_of(parent)?.join(name))
    }

    /// The inode of the backing file `meta` describes, found at `rel`.
    fn intern(&mut self, rel: PathBuf, meta: &Metadata) -> u64 {
        let k = key(meta);
        if let Some(&ino) = self.by_disk.get(&k) {
            if let Some(inode) = self.inodes.get_mut(&ino) {
                if !inode.paths.contains(&rel) {
                    inode.paths.push(rel);
                }
                return ino;
            }
        }
        let ino = self.next_ino;
        self.next_ino += 1;
        self.inodes.insert(
            ino,
            Inode {
                paths: vec![rel],
                data: None,
                open: 0,
            },
        );
        self.by_disk.insert(k, ino);
        ino
    }

    /// `rel` no longer names its inode (it was unlinked or replaced);
    /// `meta` is what it named.
    fn forget_path(&mut self, rel: &Path, meta: &Metadata) {
        let k = key(meta);
        let Some(&ino) = self.by_disk.get(&k) else {
            return;
        };
        let Some(inode) = self.inodes.get_mut(&ino) else {
            return;
        };
        inode.paths.retain(|p| p != rel);
        if inode.paths.is_empty() {
            self.by_disk.remove(&k);
            if inode.open == 0 {
                // Nobody can reach it any more: nothing to keep.
                inode.data = None;
            }
        }
    }

    fn meta(&self, ino: u64, fh: Option<u64>) -> R<Metadata> {
        if let Some(Handle::File { file, .. }) = fh.and_then(|fh| self.handles.get(&fh)) {
            return file.metadata().map_err(io);
        }
        if let Ok(rel) = self.path_of(ino) {
            return std::fs::symlink_metadata(self.disk(&rel)).map_err(io);
        }
        // Unlinked but open: ask an open handle.
        for h in self.handles.values() {
            if let Handle::File { ino: i, file, .. } = h {
                if *i == ino {
                    return file.metadata().map_err(io);
                }
            }
        }
        Err(Errno::ENOENT)
    }

    pub fn attr(&self, ino: u64, fh: Option<u64>) -> R<FileAttr> {
        let meta = self.meta(ino, fh)?;
        let data = self.inode(ino)?.data.as_ref();
        let size = data.map_or(meta.len(), Volatile::size);
        Ok(FileAttr {
            ino: INodeNo(ino),
            size,
            blocks: if data.is_some() {
                size.div_ceil(512)
            } else {
                meta.blocks()
            },
            atime: time(meta.atime(), meta.atime_nsec()),
            mtime: time(meta.mtime(), meta.mtime_nsec()),
            ctime: time(meta.ctime(), meta.ctime_nsec()),
            crtime: UNIX_EPOCH,
            kind: FileType::from_std(meta.file_type()).unwrap_or(FileType::RegularFile),
            perm: (meta.mode() & 0o7777) as u16,
            nlink: u32::try_from(meta.nlink()).unwrap_or(u32::MAX),
            uid: meta.uid(),
            gid: meta.gid(),
            rdev: u32::try_from(meta.rdev()).unwrap_or(0),
            blksize: 4096,
            flags: 0,
        })
    }

    pub fn lookup(&mut self, parent: u64, name: &OsStr) -> R<FileAttr> {
        self.alive()?;
        let rel = self.child(parent, name)?;
        let meta = std::fs::symlink_metadata(self.disk(&rel)).map_err(io)?;
        let ino = self.intern(rel, &meta);
        self.attr(ino, None)
    }

    fn add_handle(&mut self, ino: u64, file: File, writable: bool, flags: i32) -> u64 {
        let fh = self.next_fh;
        self.next_fh += 1;
        let sync = flags & SYNC_FLAGS != 0;
        self.handles.insert(
            fh,
            Handle::File {
                ino,
                file,
                writable,
                sync,
            },
        );
        if let Some(i) = self.inodes.get_mut(&ino) {
            i.open += 1;
        }
        fh
    }

    pub fn open(&mut self, ino: u64, flags: i32) -> R<u64> {
        self.alive()?;
        let path = self.disk(&self.path_of(ino)?);
        // Read and write whatever was asked: writes never reach this file
        // before an fsync, and an fsync through a read-only descriptor
        // must still write the file back.
        let (file, writable) = match OpenOptions::new().read(true).write(true).open(&path) {
            Ok(f) => (f, true),
            Err(e) if flags & libc::O_ACCMODE == libc::O_RDONLY => {
                let f = File::open(&path).map_err(|_| io(e))?;
                (f, false)
            }
            Err(e) => return Err(io(e)),
        };
        Ok(self.add_handle(ino, file, writable, flags))
    }

    fn file(&self, fh: u64) -> R<(&File, u64, bool)> {
        match self.handles.get(&fh) {
            Some(Handle::File {
                file, ino, sync, ..
            }) => Ok((file, *ino, *sync)),
            _ => Err(Errno::EBADF),
        }
    }

    pub fn read(&self, fh: u64, offset: u64, len: u32) -> R<Vec<u8>> {
        self.alive()?;
        let (file, ino, _) = self.file(fh)?;
        match &self.inode(ino)?.data {
            Some(d) => d.read(file, offset, len).map_err(io),
            None => {
                let end = file
                    .metadata()
                    .map_err(io)?
                    .len()
                    .min(offset.saturating_add(u64::from(len)));
                let mut buf = vec![0; end.saturating_sub(offset) as usize];
                crate::volatile::read_full(file, offset, &mut buf).map_err(io)?;
                Ok(buf)
            }
        }
    }

    pub fn write(&mut self, fh: u64, offset: u64, data: &[u8], flags: i32) -> R<u32> {
        self.alive()?;
        let Some(Handle::File {
            file, ino, sync, ..
        }) = self.handles.get(&fh)
        else {
            return Err(Errno::EBADF);
        };
        let (ino, sync) = (*ino, *sync);
        let disk_len = file.metadata().map_err(io)?.len();
        let inode = self.inodes.get_mut(&ino).ok_or(Errno::ENOENT)?;
        let v = inode.data.get_or_insert_with(|| Volatile::new(disk_len));
        v.write(file, offset, data).map_err(io)?;
        self.stats.writes += 1;
        self.stats.bytes_written += data.len() as u64;
        if sync || flags & SYNC_FLAGS != 0 {
            self.write_back(ino, Some(fh))?;
        }
        u32::try_from(data.len()).map_err(|_| Errno::EINVAL)
    }

    pub fn fsync(&mut self, ino: u64, fh: u64) -> R<()> {
        self.alive()?;
        self.write_back(ino, Some(fh))
    }

    pub fn fsyncdir(&mut self) -> R<()> {
        self.alive()?;
        self.stats.dir_fsyncs += 1;
        Ok(())
    }

    /// Writes `ino`'s unsynced changes to the backing file (through `fh`
    /// if it may write, else another writable handle, else its path).
    fn write_back(&mut self, ino: u64, fh: Option<u64>) -> R<()> {
        self.stats.fsyncs += 1;
        let Some(data) = self.inode(ino)?.data.as_ref() else {
            return Ok(());
        };
        let own = fh
            .and_then(|fh| self.handles.get(&fh))
            .and_then(|h| writable(h, ino));
        let any = || self.handles.values().find_map(|h| writable(h, ino));
        let opened;
        let file = match own.or_else(any) {
            Some(f) => f,
            None => match self.path_of(ino) {
                Ok(rel) => {
                    opened = OpenOptions::new()
                        .write(true)
                        .open(self.disk(&rel))
                        .map_err(io)?;
                    &opened
                }
                // Unlinked, and nothing may write it: it is gone at the
                // next power cut whatever happens; keep it for reads.
                Err(_) => return Ok(()),
            },
        };
        let n = data.write_back(file).map_err(io)?;
        self.stats.bytes_synced += n;
        if let Some(i) = self.inodes.get_mut(&ino) {
            i.data = None;
        }
        Ok(())
    }

    pub fn release(&mut self, fh: u64) {
        if let Some(Handle::File { ino, .. }) = self.handles.remove(&fh) {
            if let Some(i) = self.inodes.get_mut(&ino) {
                i.open = i.open.saturating_sub(1);
                if i.open == 0 && i.paths.is_empty() {
                    i.data = None;
                }
            }
        }
    }

    pub fn truncate(&mut self, ino: u64, fh: Option<u64>, size: u64) -> R<()> {
        let disk_len = self.meta(ino, fh)?.len();
        let inode = self.inodes.get_mut(&ino).ok_or(Errno::ENOENT)?;
        inode
            .data
            .get_or_insert_with(|| Volatile::new(disk_len))
            .truncate(size);
        Ok(())
    }

    /// chmod and chown: on the backing file at once.
    pub fn set_owner_mode(
        &mut self,
        ino: u64,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
    ) -> R<()> {
        let path = self.disk(&self.path_of(ino)?);
        if let Some(mode) = mode {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode & 0o7777))
                .map_err(io)?;
        }
        if uid.is_some() || gid.is_some() {
            std::os::unix::fs::lchown(&path, uid, gid).map_err(io)?;
        }
        Ok(())
    }

    /// Access and modification times, on the backing file at once.
    pub fn set_times(
        &mut self,
        ino: u64,
        atime: Option<SystemTime>,
        mtime: Option<SystemTime>,
    ) -> R<()> {
        let path = self.disk(&self.path_of(ino)?);
        let mut times = std::fs::FileTimes::new();
        if let Some(a) = atime {
            times = times.set_accessed(a);
        }
        if let Some(m) = mtime {
            times = times.set_modified(m);
        }
        let f = File::open(&path).map_err(io)?;
        f.set_times(times).map_err(io)
    }
}
