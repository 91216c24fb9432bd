//! The PostgreSQL client programs a backup and a restore run: `pg_dump`
//! (custom format, in a snapshot the store exported) and `pg_restore`
//! (one transaction, stopping at the first error). The one place the hub
//! starts other programs.
//!
//! **Which programs.** `$SENTINEL_PG_BIN/<program>` when that is set, else
//! the newest `/usr/lib/postgresql/<version>/bin/<program>` (Debian's
//! layout, where the versions live side by side), else `<program>` from
//! `PATH`. `pg_dump` must be at least the server's major version; it says
//! so itself when it is not, and that message is the error.
//!
//! **Connection.** The database's settings go to the program as a libpq
//! connection string without the password; the password, if any, in the
//! environment (`PGPASSWORD`), so it never shows in a process listing.
//!
//! Never does: SQL of its own (the store's snapshot, invariant 10), or
//! read what the dump holds.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use tokio_postgres::config::Host;
use tokio_postgres::Config;

/// The folder holding `pg_dump` and `pg_restore`, when not the default.
pub const PG_BIN_ENV: &str = "SENTINEL_PG_BIN";

/// How many of a failed program's last lines of standard error the error
/// keeps.
const STDERR_LINES: usize = 12;

/// A program that could not run, or ran and failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PgToolError {
    #[error("cannot run {program} ({PG_BIN_ENV} names its folder): {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("{program} failed ({status}): {stderr}")]
    Failed {
        program: String,
        status: String,
        stderr: String,
    },
    #[error("waiting for a PostgreSQL program: {0}")]
    Join(String),
}

/// Where `program` is run from ([`PG_BIN_ENV`], Debian's folders, `PATH`).
pub fn program(name: &str) -> PathBuf {
    if let Some(dir) = std::env::var_os(PG_BIN_ENV) {
        return PathBuf::from(dir).join(name);
    }
    let root = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|d| {
            let version = d.file_name().to_str()?.parse::<u32>().ok()?;
            let path = d.path().join("bin").join(name);
            path.exists().then_some((version, path))
        })
        .collect();
    versions.sort();
    versions
        .pop()
        .map_or_else(|| PathBuf::from(name), |(_, path)| path)
}

/// `pg_dump` of the database `config` names, in the exported `snapshot`,
/// custom format, to `out` (created; the caller's folder).
pub async fn dump(config: &Config, snapshot: &str, out: &Path) -> Result<(), PgToolError> {
    let mut command = Command::new(program("pg_dump"));
    command
        .arg("--format=custom")
        .arg(format!("--snapshot={snapshot}"))
        // Comments are documentation; restoring one on an extension needs
        // its owner, which the restoring role need not be.
        .arg("--no-comments")
        .arg("--no-password")
        .arg("--file")
        .arg(out);
    run(command, config).await
}

/// `pg_restore` of the custom-format `file` into the database `config`
/// names: one transaction that stops at the first error (so a failure
/// leaves the database as it was), objects owned by the connecting role.
pub async fn restore(config: &Config, file: &Path) -> Result<(), PgToolError> {
    let mut command = Command::new(program("pg_restore"));
    command
        .arg("--single-transaction")
        .arg("--exit-on-error")
        .arg("--no-owner")
        .arg("--no-privileges")
        .arg("--no-password")
        .arg(file);
    run(command, config).await
}

/// Runs `command` against `config`'s database on a blocking thread.
async fn run(mut command: Command, config: &Config) -> Result<(), PgToolError> {
    let program = command.get_program().to_string_lossy().into_owned();
    command
        .arg("--dbname")
        .arg(conninfo(config))
        .env("PGCONNECT_TIMEOUT", "10")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    match config.get_password() {
        Some(p) => command.env("PGPASSWORD", String::from_utf8_lossy(p).as_ref()),
        None => command.env_remove("PGPASSWORD"),
    };
    let name = program.clone();
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .map_err(|e| PgToolError::Join(e.to_string()))?
        .map_err(|source| PgToolError::Spawn {
            program: name,
            source,
        })?;
    if output.status.success() {
        return Ok(());
    }
    let text = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(STDERR_LINES)..].join("\n");
    Err(PgToolError::Failed {
        program,
        status: output.status.to_string(),
        stderr: tail,
    })
}

/// A libpq `key=value` connection string for `config`, without its
/// password.
fn conninfo(config: &Config) -> String {
    let mut parts = Vec::new();
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .map(|h| match h {
            Host::Tcp(h) => h.clone(),
            Host::Unix(p) => p.to_string_lossy().into_owned(),
        })
        .collect();
    if !hosts.is_empty() {
        parts.push(format!("host={}", quote(&hosts.join(","))));
    }
    let ports: Vec<String> = config.get_ports().iter().map(u16::to_string).collect();
    if !ports.is_empty() {
        parts.push(format!("port={}", ports.join(",")));
    }
    if let Some(user) = config.get_user() {
        parts.push(format!("user={}", quote(user)));
    }
    if let Some(db) = config.get_dbname() {
        parts.push(format!("dbname={}", quote(db)));
    }
    if let Some(name) = config.get_application_name() {
        parts.push(format!("application_name={}", quote(name)));
    }
    parts.join(" ")
}

/// A value quoted for a libpq connection string.
fn quote(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connection_string_quotes_values_and_leaves_the_password_out() {
        let config: Config = r"host=/run/pg port=5433 user='o\'neil' dbname=hub password=secret"
            .parse()
            .unwrap();
        let s = conninfo(&config);
        assert_eq!(s, r"host='/run/pg' port=5433 user='o\'neil' dbname='hub'");
        assert!(!s.contains("secret"));
    }
}
