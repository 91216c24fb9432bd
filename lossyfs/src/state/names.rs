//! The operations on names: create, mkdir, symlink, link, unlink,
//! rmdir, rename and directory listings. Each is applied to the backing
//! directory at once (names are durable at once, as in LazyFS); only a
//! new file's contents, if any, stay in memory.
//!
//! Never does: write a file's contents.

use std::ffi::OsStr;
use std::fs::OpenOptions;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use fuser::{Errno, FileAttr, FileType, INodeNo};

use super::{io, key, Entry, Handle, State, R};

impl State {
    /// Gives a new file or directory to the user who made it, and the
    /// mode asked for (the daemon's own umask does not apply).
    fn adopt(&self, path: &Path, mode: u32, uid: u32, gid: u32) -> R<()> {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o7777))
            .map_err(io)?;
        if self.chown {
            std::os::unix::fs::lchown(path, Some(uid), Some(gid)).map_err(io)?;
        }
        Ok(())
    }

    fn created(&mut self, rel: PathBuf) -> R<(u64, FileAttr)> {
        let meta = std::fs::symlink_metadata(self.disk(&rel)).map_err(io)?;
        let ino = self.intern(rel, &meta);
        Ok((ino, self.attr(ino, None)?))
    }

    pub fn mkdir(&mut self, parent: u64, name: &OsStr, mode: u32, who: (u32, u32)) -> R<FileAttr> {
        self.alive()?;
        let rel = self.child(parent, name)?;
        let path = self.disk(&rel);
        std::fs::create_dir(&path).map_err(io)?;
        self.adopt(&path, mode, who.0, who.1)?;
        Ok(self.created(rel)?.1)
    }

    pub fn symlink(
        &mut self,
        parent: u64,
        name: &OsStr,
        target: &Path,
        who: (u32, u32),
    ) -> R<FileAttr> {
        self.alive()?;
        let rel = self.child(parent, name)?;
        let path = self.disk(&rel);
        std::os::unix::fs::symlink(target, &path).map_err(io)?;
        if self.chown {
            std::os::unix::fs::lchown(&path, Some(who.0), Some(who.1)).map_err(io)?;
        }
        Ok(self.created(rel)?.1)
    }

    pub fn readlink(&self, ino: u64) -> R<Vec<u8>> {
        self.alive()?;
        let target = std::fs::read_link(self.disk(&self.path_of(ino)?)).map_err(io)?;
        Ok(std::os::unix::ffi::OsStrExt::as_bytes(target.as_os_str()).to_vec())
    }

    pub fn link(&mut self, ino: u64, parent: u64, name: &OsStr) -> R<FileAttr> {
        self.alive()?;
        let from = self.disk(&self.path_of(ino)?);
        let rel = self.child(parent, name)?;
        std::fs::hard_link(from, self.disk(&rel)).map_err(io)?;
        Ok(self.created(rel)?.1)
    }

    /// Creates a regular file (and opens it when `open` holds the flags).
    pub fn create(
        &mut self,
        parent: u64,
        name: &OsStr,
        mode: u32,
        who: (u32, u32),
        open: Option<i32>,
    ) -> R<(FileAttr, Option<u64>)> {
        self.alive()?;
        let rel = self.child(parent, name)?;
        let path = self.disk(&rel);
        let flags = open.unwrap_or(libc::O_EXCL);
        let mut opts = OpenOptions::new();
        opts.read(true).write(true).mode(mode & 0o7777);
        if flags & libc::O_EXCL != 0 {
            opts.create_new(true);
        } else {
            opts.create(true);
        }
        let file = opts.open(&path).map_err(io)?;
        self.adopt(&path, mode, who.0, who.1)?;
        let (ino, attr) = self.created(rel)?;
        let fh = open.map(|flags| self.add_handle(ino, file, true, flags));
        Ok((attr, fh))
    }

    pub fn unlink(&mut self, parent: u64, name: &OsStr, dir: bool) -> R<()> {
        self.alive()?;
        let rel = self.child(parent, name)?;
        let path = self.disk(&rel);
        let meta = std::fs::symlink_metadata(&path).map_err(io)?;
        if dir {
            std::fs::remove_dir(&path).map_err(io)?;
        } else {
            std::fs::remove_file(&path).map_err(io)?;
        }
        self.forget_path(&rel, &meta);
        Ok(())
    }

    pub fn rename(
        &mut self,
        parent: u64,
        name: &OsStr,
        new_parent: u64,
        new_name: &OsStr,
        no_replace: bool,
    ) -> R<()> {
        self.alive()?;
        let from = self.child(parent, name)?;
        let to = self.child(new_parent, new_name)?;
        let moved = std::fs::symlink_metadata(self.disk(&from)).map_err(io)?;
        let replaced = std::fs::symlink_metadata(self.disk(&to)).ok();
        if no_replace && replaced.is_some() {
            return Err(Errno::EEXIST);
        }
        std::fs::rename(self.disk(&from), self.disk(&to)).map_err(io)?;
        if let Some(r) = replaced.filter(|r| key(r) != key(&moved)) {
            self.forget_path(&to, &r);
        }
        // The moved inode, and everything under it if a directory, now
        // answers to the new name.
        for inode in self.inodes.values_mut() {
            for p in &mut inode.paths {
                if let Ok(rest) = p.strip_prefix(&from) {
                    *p = if rest.as_os_str().is_empty() {
                        to.clone()
                    } else {
                        to.join(rest)
                    };
                }
            }
        }
        Ok(())
    }

    pub fn opendir(&mut self, ino: u64) -> R<u64> {
        self.alive()?;
        let rel = self.path_of(ino)?;
        let dir = self.disk(&rel);
        let mut entries = vec![Entry {
            ino,
            kind: FileType::Directory,
            name: ".".into(),
        }];
        let parent = match rel.parent() {
            Some(p) => {
                let meta = std::fs::symlink_metadata(self.disk(p)).map_err(io)?;
                self.intern(p.to_path_buf(), &meta)
            }
            None => INodeNo::ROOT.0,
        };
        entries.push(Entry {
            ino: parent,
            kind: FileType::Directory,
            name: "..".into(),
        });
        for e in std::fs::read_dir(&dir).map_err(io)? {
            let e = e.map_err(io)?;
            // Gone since the listing began: leave it out.
            let Ok(meta) = e.metadata() else { continue };
            let name = e.file_name();
            let ino = self.intern(rel.join(&name), &meta);
            entries.push(Entry {
                ino,
                kind: FileType::from_std(meta.file_type()).unwrap_or(FileType::RegularFile),
                name,
            });
        }
        let fh = self.next_fh;
        self.next_fh += 1;
        self.handles.insert(fh, Handle::Dir(entries));
        Ok(fh)
    }

    pub fn dir_entries(&self, fh: u64) -> R<&[Entry]> {
        self.alive()?;
        match self.handles.get(&fh) {
            Some(Handle::Dir(entries)) => Ok(entries),
            _ => Err(Errno::EBADF),
        }
    }

    pub fn releasedir(&mut self, fh: u64) {
        self.handles.remove(&fh);
    }
}
