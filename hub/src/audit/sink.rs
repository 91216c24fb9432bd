//! Where audit lines go: standard output, a file rotated by size, or a
//! syslog socket (RFC 5424 over a unix datagram socket, `/dev/log` by
//! default). [`Sink::write`] returns only once a batch is as durable as
//! the destination allows — a file's data fsynced, standard output
//! flushed, every datagram handed to the syslog daemon — so the stream
//! may move its mark after it.
//!
//! **Rotation.** A file rotates before a line would take it past
//! `rotate_bytes` (a longer line gets a file to itself): `FILE` becomes
//! `FILE.1`, `FILE.1` becomes `FILE.2`, …, and `FILE.{keep}` is the
//! oldest kept (the one before it is overwritten). Renames are made
//! durable by syncing the folder. A batch that fails half way is cut back
//! to the last synced size, so a failed write leaves no half line; a line
//! cut short by a crash is ended with a newline when the file is opened
//! again, so the next line starts on its own.
//!
//! Never does: read the database, or decide what a line says.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};

use crate::config::audit::{AuditSettings, AuditStream};

/// The syslog facility of audit lines: 13, "log audit" (RFC 5424 6.2.1).
pub const SYSLOG_FACILITY: u8 = 13;

/// One line to write, and how grave it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditLine {
    /// The JSON object, without a newline.
    pub json: String,
    /// The syslog severity: 6 (informational) for an accepted entry, 4
    /// (warning) for a quarantined one or a fork.
    pub severity: u8,
}

/// An open destination.
#[derive(Debug)]
pub enum Sink {
    Stdout,
    File(RotatingFile),
    Syslog(Syslog),
}

impl Sink {
    /// Opens what `settings` names; `None` when the stream is off. The
    /// error names the destination.
    pub fn open(settings: &AuditSettings) -> Result<Option<Sink>, String> {
        match &settings.stream {
            AuditStream::Off => Ok(None),
            AuditStream::Stdout => Ok(Some(Sink::Stdout)),
            AuditStream::File(path) => {
                RotatingFile::open(path, settings.rotate_bytes, settings.keep)
                    .map(|f| Some(Sink::File(f)))
                    .map_err(|e| format!("cannot open the audit file {}: {e}", path.display()))
            }
            AuditStream::Syslog(path) => Syslog::open(path)
                .map(|s| Some(Sink::Syslog(s)))
                .map_err(|e| format!("cannot reach the syslog socket {}: {e}", path.display())),
        }
    }

    /// Writes `lines` in order and makes them durable; `now_ms` stamps
    /// syslog messages.
    pub fn write(&mut self, lines: &[AuditLine], now_ms: u64) -> io::Result<()> {
        match self {
            Sink::Stdout => {
                let mut out = io::stdout().lock();
                for l in lines {
                    out.write_all(l.json.as_bytes())?;
                    out.write_all(b"\n")?;
                }
                out.flush()
            }
            Sink::File(f) => f.write(lines),
            Sink::Syslog(s) => s.write(lines, now_ms),
        }
    }
}

/// A file of lines, appended to, rotated by size.
#[derive(Debug)]
pub struct RotatingFile {
    path: PathBuf,
    file: File,
    /// Bytes in the file, written or not yet synced.
    size: u64,
    /// Bytes in the file when it was last synced.
    synced: u64,
    rotate_bytes: u64,
    keep: usize,
}

impl RotatingFile {
    pub fn open(path: &Path, rotate_bytes: u64, keep: usize) -> io::Result<RotatingFile> {
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(path)?;
        let mut size = file.metadata()?.len();
        if size > 0 {
            let mut last = [0u8; 1];
            file.seek(SeekFrom::End(-1))?;
            file.read_exact(&mut last)?;
            if last[0] != b'\n' {
                file.write_all(b"\n")?;
                size += 1;
            }
        }
        file.sync_data()?;
        sync_folder(path)?;
        Ok(RotatingFile {
            path: path.to_path_buf(),
            file,
            size,
            synced: size,
            rotate_bytes,
            keep: keep.max(1),
        })
    }

    /// `FILE.n`.
    pub fn rotated(&self, n: usize) -> PathBuf {
        let mut name = self.path.clone().into_os_string();
        name.push(format!(".{n}"));
        PathBuf::from(name)
    }

    fn write(&mut self, lines: &[AuditLine]) -> io::Result<()> {
        let written = self.write_lines(lines);
        if written.is_err() {
            // No half line stays behind: back to what was synced.
            if self.file.set_len(self.synced).is_ok() {
                self.size = self.synced;
            }
        }
        written
    }

    fn write_lines(&mut self, lines: &[AuditLine]) -> io::Result<()> {
        let mut buf: Vec<u8> = Vec::new();
        for l in lines {
            let len = l.json.len() as u64 + 1;
            if self.size > 0 && self.size.saturating_add(len) > self.rotate_bytes {
                self.file.write_all(&buf)?;
                buf.clear();
                self.sync()?;
                self.rotate()?;
            }
            buf.extend_from_slice(l.json.as_bytes());
            buf.push(b'\n');
            self.size += len;
        }
        self.file.write_all(&buf)?;
        self.sync()
    }

    fn sync(&mut self) -> io::Result<()> {
        self.file.sync_data()?;
        self.synced = self.size;
        Ok(())
    }

    /// `FILE` → `FILE.1` → … → `FILE.{keep}`, then a new `FILE`.
    fn rotate(&mut self) -> io::Result<()> {
        for n in (1..self.keep).rev() {
            let from = self.rotated(n);
            if from.exists() {
                std::fs::rename(&from, self.rotated(n + 1))?;
            }
        }
        std::fs::rename(&self.path, self.rotated(1))?;
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(&self.path)?;
        sync_folder(&self.path)?;
        self.size = 0;
        self.synced = 0;
        Ok(())
    }
}

/// Makes the names in `path`'s folder durable.
fn sync_folder(path: &Path) -> io::Result<()> {
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(folder)?.sync_all()
}

/// RFC 5424 messages to a unix datagram socket, one line each.
#[derive(Debug)]
pub struct Syslog {
    path: PathBuf,
    socket: UnixDatagram,
    /// The HOSTNAME field: this machine's name, or `-`.
    host: String,
    pid: u32,
}

impl Syslog {
    pub fn open(path: &Path) -> io::Result<Syslog> {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .ok()
            .filter(|h| !h.is_empty() && h.len() <= 255 && h.bytes().all(|b| b.is_ascii_graphic()))
            .unwrap_or_else(|| "-".into());
        Ok(Syslog {
            path: path.to_path_buf(),
            socket: connect(path)?,
            host,
            pid: std::process::id(),
        })
    }

    /// `<PRI>1 TIMESTAMP HOSTNAME sentinel-hub PROCID audit - JSON`.
    pub fn message(&self, line: &AuditLine, now_ms: u64) -> String {
        format!(
            "<{}>1 {} {} sentinel-hub {} audit - {}",
            u16::from(SYSLOG_FACILITY) * 8 + u16::from(line.severity),
            rfc3339_ms(now_ms),
            self.host,
            self.pid,
            line.json
        )
    }

    fn write(&mut self, lines: &[AuditLine], now_ms: u64) -> io::Result<()> {
        for l in lines {
            let message = self.message(l, now_ms);
            if self.socket.send(message.as_bytes()).is_err() {
                // The daemon restarted (a new socket at the same path):
                // connect again, once.
                self.socket = connect(&self.path)?;
                self.socket.send(message.as_bytes())?;
            }
        }
        Ok(())
    }
}

fn connect(path: &Path) -> io::Result<UnixDatagram> {
    let socket = UnixDatagram::unbound()?;
    socket.connect(path)?;
    Ok(socket)
}

/// `ms` (Unix milliseconds) as RFC 3339 in UTC with milliseconds:
/// `2026-12-07T20:44:02.123Z`.
pub fn rfc3339_ms(ms: u64) -> String {
    let secs = ms / 1000;
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    let s = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        s / 3600,
        s % 3600 / 60,
        s % 60,
        ms % 1000
    )
}

/// Year, month, day of a count of days since 1970-01-01 (the proleptic
/// Gregorian calendar; H. Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_in_utc() {
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_ms(1_790_000_000_123), "2026-09-21T14:13:20.123Z");
        assert_eq!(rfc3339_ms(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339_ms(4_107_542_399_999), "2100-02-28T23:59:59.999Z");
    }
}
