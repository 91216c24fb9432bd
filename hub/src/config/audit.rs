//! The audit stream in the hub's configuration (`crate::audit`): where the
//! lines go and how a file of them rotates. In the TOML file, a table:
//!
//! ```toml
//! [audit]
//! stream = "file:/var/log/sentinel/audit.jsonl"  # or "stdout", "syslog", "syslog:SOCKET", "off"
//! rotate_bytes = 104857600                        # a file rotates before it grows past this
//! keep = 10                                       # rotated files kept: audit.jsonl.1 … .10
//! ```
//!
//! The environment overrides each: `SENTINEL_AUDIT_STREAM`,
//! `SENTINEL_AUDIT_ROTATE_BYTES`, `SENTINEL_AUDIT_KEEP`. Unset or `off`:
//! no stream. `syslog` sends to the local syslog socket `/dev/log`;
//! `syslog:PATH` to another unix datagram socket.
//!
//! Never does: open the file or the socket (the hub does when it starts,
//! `crate::audit::Sink::open`).

use std::path::PathBuf;

use serde::Deserialize;

use super::{invalid, parse_num, ConfigError};

pub const AUDIT_STREAM_ENV: &str = "SENTINEL_AUDIT_STREAM";
pub const AUDIT_ROTATE_BYTES_ENV: &str = "SENTINEL_AUDIT_ROTATE_BYTES";
pub const AUDIT_KEEP_ENV: &str = "SENTINEL_AUDIT_KEEP";

/// A file rotates before it would grow past 100 MiB.
pub const DEFAULT_ROTATE_BYTES: u64 = 100 << 20;
/// Ten rotated files are kept beside the one being written.
pub const DEFAULT_KEEP: usize = 10;
/// The local syslog socket.
pub const DEFAULT_SYSLOG_SOCKET: &str = "/dev/log";

/// The `[audit]` table of the configuration file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditFile {
    stream: Option<String>,
    rotate_bytes: Option<u64>,
    keep: Option<usize>,
}

/// Where the audit lines go.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum AuditStream {
    /// No stream.
    #[default]
    Off,
    /// Standard output, after the lines `serve` prints where it listens.
    Stdout,
    /// A file, appended to and rotated.
    File(PathBuf),
    /// RFC 5424 messages to a unix datagram socket.
    Syslog(PathBuf),
}

/// The audit stream's settings, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditSettings {
    pub stream: AuditStream,
    /// A file is rotated before a line would take it past this many bytes.
    pub rotate_bytes: u64,
    /// How many rotated files are kept (`FILE.1` the newest).
    pub keep: usize,
}

impl Default for AuditSettings {
    fn default() -> Self {
        AuditSettings {
            stream: AuditStream::Off,
            rotate_bytes: DEFAULT_ROTATE_BYTES,
            keep: DEFAULT_KEEP,
        }
    }
}

pub(super) fn load(
    file: Option<AuditFile>,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<AuditSettings, ConfigError> {
    let f = file.unwrap_or_default();
    let stream = match env(AUDIT_STREAM_ENV).or(f.stream) {
        None => AuditStream::Off,
        Some(text) => parse_stream(&text)?,
    };
    let rotate_bytes = match env(AUDIT_ROTATE_BYTES_ENV) {
        Some(v) => parse_num::<u64>(AUDIT_ROTATE_BYTES_ENV, &v)?,
        None => f.rotate_bytes.unwrap_or(DEFAULT_ROTATE_BYTES),
    };
    if rotate_bytes == 0 {
        return Err(invalid(AUDIT_ROTATE_BYTES_ENV, "0", "must be at least 1"));
    }
    let keep = match env(AUDIT_KEEP_ENV) {
        Some(v) => parse_num::<usize>(AUDIT_KEEP_ENV, &v)?,
        None => f.keep.unwrap_or(DEFAULT_KEEP),
    };
    if keep == 0 {
        return Err(invalid(AUDIT_KEEP_ENV, "0", "must be at least 1"));
    }
    Ok(AuditSettings {
        stream,
        rotate_bytes,
        keep,
    })
}

fn parse_stream(text: &str) -> Result<AuditStream, ConfigError> {
    const FORMS: &str = "must be off, stdout, syslog, syslog:SOCKET or file:PATH";
    let t = text.trim();
    let path = |rest: &str, what: &str| {
        if rest.is_empty() {
            Err(invalid(AUDIT_STREAM_ENV, text, format!("names no {what}")))
        } else {
            Ok(PathBuf::from(rest))
        }
    };
    match t {
        "" | "off" => Ok(AuditStream::Off),
        "stdout" => Ok(AuditStream::Stdout),
        "syslog" => Ok(AuditStream::Syslog(PathBuf::from(DEFAULT_SYSLOG_SOCKET))),
        _ => {
            if let Some(rest) = t.strip_prefix("file:") {
                path(rest, "file").map(AuditStream::File)
            } else if let Some(rest) = t.strip_prefix("syslog:") {
                path(rest, "socket").map(AuditStream::Syslog)
            } else {
                Err(invalid(AUDIT_STREAM_ENV, text, FORMS))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(vars: &[(&str, &str)]) -> Result<AuditSettings, ConfigError> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        load(None, &|name: &str| {
            vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn every_form_of_the_stream_parses() {
        assert_eq!(with(&[]).unwrap(), AuditSettings::default());
        let cases = [
            ("off", AuditStream::Off),
            ("stdout", AuditStream::Stdout),
            ("syslog", AuditStream::Syslog("/dev/log".into())),
            (
                "syslog:/run/x.sock",
                AuditStream::Syslog("/run/x.sock".into()),
            ),
            (
                "file:/var/log/a.jsonl",
                AuditStream::File("/var/log/a.jsonl".into()),
            ),
        ];
        for (text, want) in cases {
            assert_eq!(
                with(&[(AUDIT_STREAM_ENV, text)]).unwrap().stream,
                want,
                "{text}"
            );
        }
        let s = with(&[(AUDIT_ROTATE_BYTES_ENV, "4096"), (AUDIT_KEEP_ENV, "3")]).unwrap();
        assert_eq!((s.rotate_bytes, s.keep), (4096, 3));
    }

    #[test]
    fn the_file_table_is_read_and_the_environment_wins() {
        let file: AuditFile =
            toml::from_str("stream = \"file:a.jsonl\"\nrotate_bytes = 10\nkeep = 2").unwrap();
        let s = load(Some(file), &|name: &str| {
            (name == AUDIT_KEEP_ENV).then(|| "5".to_string())
        })
        .unwrap();
        assert_eq!(s.stream, AuditStream::File("a.jsonl".into()));
        assert_eq!((s.rotate_bytes, s.keep), (10, 5));
        assert!(toml::from_str::<AuditFile>("rotate = 1").is_err());
    }

    #[test]
    fn bad_settings_are_named() {
        for (name, value, says) in [
            (AUDIT_STREAM_ENV, "kafka", "file:PATH"),
            (AUDIT_STREAM_ENV, "file:", "names no file"),
            (AUDIT_STREAM_ENV, "syslog:", "names no socket"),
            (AUDIT_ROTATE_BYTES_ENV, "0", "at least 1"),
            (AUDIT_ROTATE_BYTES_ENV, "big", "big"),
            (AUDIT_KEEP_ENV, "0", "at least 1"),
        ] {
            let e = with(&[(name, value)]).unwrap_err().to_string();
            assert!(e.contains(name) && e.contains(says), "{e}");
        }
    }
}
