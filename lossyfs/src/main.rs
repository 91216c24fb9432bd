//! `lossyfs BACKING MOUNTPOINT`: mounts a lossy view of BACKING (see the
//! library's documentation for what it keeps and loses) and takes one
//! command a line on standard input:
//!
//! - `cut` — the power cut: every unsynced write is dropped and every
//!   later request on the mount fails with EIO. Kill what uses the mount,
//!   then send `unmount` (or close standard input).
//! - `sync` — write every unsynced change back, as `sync(1)` would.
//! - `stats` — one line of counts.
//! - `unmount` — take the mount down and exit: after a `cut` (or with
//!   `--on-exit=sync`, after writing everything back), else it cuts first.
//!
//! End of standard input counts as `unmount`: whoever controlled the
//! mount is gone, and by default that is a power cut, never a silent
//! write-back (`--on-exit=sync` for a clean shutdown). It prints `ready`
//! once mounted, and one line answering each command.
//!
//! Never does: write anything back on exit unless told to.

use std::io::BufRead;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use sentinel_lossyfs::Mount;

fn main() -> Result<()> {
    let mut args = std::env::args_os().skip(1);
    let mut positional: Vec<PathBuf> = Vec::new();
    let mut sync_on_exit = false;
    for a in args.by_ref() {
        match a.to_str() {
            Some("--on-exit=sync") => sync_on_exit = true,
            Some("--on-exit=cut") => sync_on_exit = false,
            Some("-h" | "--help") => {
                println!("usage: lossyfs [--on-exit=cut|sync] BACKING MOUNTPOINT");
                println!("commands on standard input: cut, sync, stats, unmount");
                return Ok(());
            }
            Some(s) if s.starts_with('-') => bail!("unknown option {s}"),
            _ => positional.push(PathBuf::from(a)),
        }
    }
    let [backing, at] = <[PathBuf; 2]>::try_from(positional)
        .map_err(|_| anyhow::anyhow!("usage: lossyfs [--on-exit=cut|sync] BACKING MOUNTPOINT"))?;
    let mount = Mount::new(&backing, &at).context("mounting")?;
    println!("ready");
    for line in std::io::stdin().lock().lines() {
        let line = line.context("reading standard input")?;
        match line.trim() {
            "" => {}
            "cut" => {
                let r = mount.cut();
                println!("cut: dropped {} bytes in {} files", r.bytes, r.files);
            }
            "sync" => match mount.sync_all() {
                Ok(n) => println!("synced {n} files"),
                Err(e) => println!("error: {e}"),
            },
            "stats" => {
                let s = mount.stats();
                println!(
                    "writes {} ({} bytes), fsyncs {} ({} bytes written back), directory fsyncs {}, \
                     unsynced {} bytes in {} files",
                    s.writes,
                    s.bytes_written,
                    s.fsyncs,
                    s.bytes_synced,
                    s.dir_fsyncs,
                    s.dirty_bytes,
                    s.dirty_files
                );
            }
            "unmount" => break,
            other => println!("error: unknown command {other:?} (cut, sync, stats, unmount)"),
        }
    }
    if sync_on_exit {
        mount.sync_all().context("writing back before unmounting")?;
    } else {
        let r = mount.cut();
        if r.files > 0 {
            println!("cut: dropped {} bytes in {} files", r.bytes, r.files);
        }
    }
    mount.unmount().context("unmounting")?;
    println!("unmounted");
    Ok(())
}
