//! A disk that loses power: a FUSE file system over a backing directory
//! that keeps every write in memory until the program that made it asks
//! for it to be durable, and throws away whatever was not made durable
//! when told the power is cut. The power-loss tests run a node's store and
//! the hub's PostgreSQL on it (in the spirit of Jepsen's LazyFS).
//!
//! **What it models.** The backing directory is the disk: what is written
//! there survives. A file's contents and size (writes, truncations) are
//! held per file in memory — reads see them — and reach the disk only
//! when that file is fsynced or fdatasynced (also: a write on a descriptor
//! opened `O_SYNC`/`O_DSYNC`, and [`Mount::sync_all`]). [`Mount::cut`] is
//! the power cut: every unsynced write is dropped, and every later request
//! fails with EIO, so nothing more can reach the disk; the processes using
//! the mount are then killed and the mount taken down ([`Mount::unmount`]).
//! Mounting the same backing directory again is the machine coming back.
//!
//! **Names are durable at once.** create, mkdir, rename, unlink, rmdir,
//! link, symlink, chmod and chown are applied to the backing directory
//! when they happen, as LazyFS does. That is stronger than a real file
//! system, where a new name may need an fsync of its directory: these
//! tests do not check directory fsyncs (fsync on a directory succeeds and
//! writes nothing). They do check the classic loss: a file renamed into
//! place, or created, without an fsync of its contents comes back with
//! whatever its contents were at its last fsync (often empty).
//!
//! **What it does not model**: torn or partial writes (a write is lost or
//! kept whole, and an fsync of a file is all-or-nothing), reordering of
//! unsynced writes that survive (none do), a cut in the middle of an
//! fsync, the drive's own cache, or a power cut of the real machine (the
//! backing files are never fsynced by this layer). mmap'd data reaches it
//! through the kernel's page cache like any write. Only regular files,
//! directories and symlinks; POSIX locks are the kernel's (local to this
//! machine, enough for SQLite and PostgreSQL).
//!
//! Mounting needs `/dev/fuse`: as root by mount(2), otherwise through
//! `fusermount3` (Debian's `fuse3`). As root the mount is open to every
//! user (`allow_other`), with the kernel checking permissions against the
//! backing files' owners and modes, so PostgreSQL can run on it as its
//! own user.
//!
//! The binary `lossyfs` mounts one from the command line, controlled on
//! standard input (`src/main.rs`).
//!
//! Never does: touch anything outside the backing directory, or keep a
//! write through a power cut.

#![forbid(unsafe_code)]

mod fs;
mod state;
pub mod volatile;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use fuser::{BackgroundSession, Config, MountOption, SessionACL};

use state::State;
pub use state::{CutReport, Stats};

/// Why a mount failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The backing directory cannot be used.
    #[error("backing directory {0}: {1}")]
    Backing(PathBuf, std::io::Error),
    /// The kernel refused the mount (no `/dev/fuse`, no permission…).
    #[error("mounting at {0}: {1}")]
    Mount(PathBuf, std::io::Error),
    /// The mount could not be taken down.
    #[error("unmounting {0}: {1}")]
    Unmount(PathBuf, String),
    /// Writing the unsynced data back failed.
    #[error("writing back: {0}")]
    Sync(std::io::Error),
}

/// A mounted lossy file system. Dropping it cuts the power (never a
/// silent write-back) and unmounts, lazily if it is still in use.
pub struct Mount {
    state: Arc<Mutex<State>>,
    session: Option<BackgroundSession>,
    at: PathBuf,
}

impl std::fmt::Debug for Mount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mount").field("at", &self.at).finish()
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

impl Mount {
    /// Mounts a lossy view of `backing` (a directory) at `at` (an existing
    /// directory).
    pub fn new(backing: &Path, at: &Path) -> Result<Mount, Error> {
        let state = State::new(backing).map_err(|e| Error::Backing(backing.into(), e))?;
        let state = Arc::new(Mutex::new(state));
        let mut config = Config::default();
        config.mount_options = vec![
            MountOption::FSName("lossyfs".into()),
            MountOption::Subtype("lossyfs".into()),
            MountOption::DefaultPermissions,
        ];
        if nix::unistd::geteuid().is_root() {
            config.acl = SessionACL::All;
        }
        let fs = fs::LossyFs {
            state: state.clone(),
        };
        let session =
            fuser::spawn_mount(fs, at, &config).map_err(|e| Error::Mount(at.into(), e))?;
        Ok(Mount {
            state,
            session: Some(session),
            at: at.to_path_buf(),
        })
    }

    /// Where it is mounted.
    pub fn path(&self) -> &Path {
        &self.at
    }

    /// Counts since mounting, and what is unsynced now.
    pub fn stats(&self) -> Stats {
        lock(&self.state).stats()
    }

    /// The power cut: drops every unsynced write; every later request on
    /// the mount fails with EIO. Kill the processes using the mount next,
    /// then [`Mount::unmount`]. A second cut drops nothing.
    pub fn cut(&self) -> CutReport {
        lock(&self.state).cut()
    }

    /// Writes every unsynced change back to the backing directory, as
    /// `sync(1)` would; answers the files written.
    pub fn sync_all(&self) -> Result<u64, Error> {
        lock(&self.state)
            .sync_all()
            .map_err(|e| Error::Sync(std::io::Error::from_raw_os_error(e.code())))
    }

    /// Takes the mount down. Cuts the power first if nobody has (so an
    /// unmount never writes anything back: call [`Mount::sync_all`] for a
    /// clean shutdown). Retries for a few seconds while it is busy
    /// (processes just killed may still hold files), then detaches it
    /// lazily and fails.
    pub fn unmount(mut self) -> Result<(), Error> {
        self.take_down()
    }

    fn take_down(&mut self) -> Result<(), Error> {
        self.cut();
        let Some(session) = self.session.take() else {
            return Ok(());
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut last = String::new();
        while Instant::now() < deadline {
            match nix::mount::umount(&self.at) {
                Ok(()) => {
                    let _ = session.join();
                    return Ok(());
                }
                Err(nix::errno::Errno::EBUSY) => last = "busy".into(),
                // Not root: the setuid helper unmounts.
                Err(nix::errno::Errno::EPERM) => return fusermount_unmount(session, &self.at),
                Err(e) => {
                    last = e.to_string();
                    break;
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = nix::mount::umount2(&self.at, nix::mount::MntFlags::MNT_DETACH);
        Err(Error::Unmount(self.at.clone(), last))
    }
}

fn fusermount_unmount(session: BackgroundSession, at: &Path) -> Result<(), Error> {
    session
        .umount_and_join()
        .map_err(|e| Error::Unmount(at.to_path_buf(), e.to_string()))
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = self.take_down();
    }
}

/// Whether a lossy file system can be mounted here: `Ok` after mounting
/// and unmounting one in a temporary directory, else why not (for tests
/// that skip where FUSE is unavailable). Tried once per process.
pub fn probe() -> Result<(), String> {
    static RESULT: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    RESULT.get_or_init(probe_once).clone()
}

fn probe_once() -> Result<(), String> {
    if !Path::new("/dev/fuse").exists() {
        return Err("/dev/fuse does not exist".into());
    }
    let dir = std::env::temp_dir().join(format!("lossyfs-probe-{}", std::process::id()));
    let (backing, at) = (dir.join("disk"), dir.join("mnt"));
    let made = std::fs::create_dir_all(&backing).and_then(|()| std::fs::create_dir_all(&at));
    let result = match made {
        Err(e) => Err(format!("creating {}: {e}", dir.display())),
        Ok(()) => match Mount::new(&backing, &at) {
            Ok(m) => {
                let seen = std::fs::read_dir(&at).map(|_| ());
                m.unmount()
                    .map_err(|e| e.to_string())
                    .and(seen.map_err(|e| format!("reading the mount: {e}")))
            }
            Err(e) => Err(e.to_string()),
        },
    };
    let _ = std::fs::remove_dir_all(&dir);
    result
}
