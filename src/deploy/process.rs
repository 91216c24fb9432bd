//! The deployment's processes: finding the built binaries, running a
//! command to completion, and starting a server whose first lines of
//! output say where it listens.
//!
//! Never does: leave a process behind — [`Running`] kills its child when
//! dropped.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{bail, Context, Result};

/// How long a server may take to print where it listens.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The `sentinel-node` and `sentinel-hub` executables.
#[derive(Debug, Clone)]
pub struct Binaries {
    pub node: PathBuf,
    pub hub: PathBuf,
}

impl Binaries {
    /// The binaries in `dir` (a cargo profile folder, `target/debug`).
    pub fn in_dir(dir: &Path) -> Result<Binaries> {
        let exe = std::env::consts::EXE_SUFFIX;
        let b = Binaries {
            node: dir.join(format!("sentinel-node{exe}")),
            hub: dir.join(format!("sentinel-hub{exe}")),
        };
        for p in [&b.node, &b.hub] {
            if !p.is_file() {
                bail!(
                    "{} is not built (cargo build -p sentinel-node -p sentinel-hub)",
                    p.display()
                );
            }
        }
        Ok(b)
    }

    /// The binaries of the profile the calling executable was built in
    /// (a test in `target/debug/deps`, an example in
    /// `target/release/examples`).
    pub fn beside_current_exe() -> Result<Binaries> {
        let exe = std::env::current_exe()?;
        let profile = exe
            .parent()
            .and_then(Path::parent)
            .context("the executable has no profile folder")?;
        Binaries::in_dir(profile)
    }
}

/// A child process, killed when this is dropped.
pub struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Running {
    /// The process id.
    pub fn id(&self) -> u32 {
        self.0.id()
    }
}

/// Runs `bin args` to completion with `env`; a password for commands
/// that ask one goes in `SENTINEL_USER_PASSWORD`. Fails with the
/// command's own error output when it exits non-zero.
pub fn run(bin: &Path, args: &[&str], env: &[(String, String)], password: &str) -> Result<String> {
    let mut c = Command::new(bin);
    c.args(args).stdin(Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    if !password.is_empty() {
        c.env("SENTINEL_USER_PASSWORD", password);
    }
    let out = c
        .output()
        .with_context(|| format!("cannot run {}", bin.display()))?;
    if !out.status.success() {
        bail!(
            "{} {} failed ({}): {}",
            bin.display(),
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Starts a server and waits until its standard output (one JSON object
/// per line, `--json`) has named each of `keys` (`listening`, `http`);
/// answers each key's value. All its output also goes beside `log`.
pub fn spawn(
    bin: &Path,
    args: &[&str],
    env: &[(String, String)],
    log: PathBuf,
    keys: &[&str],
) -> Result<(Running, Vec<String>)> {
    let mut c = Command::new(bin);
    c.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(
            std::fs::File::create(&log).with_context(|| format!("{}", log.display()))?,
        ));
    for (k, v) in env {
        c.env(k, v);
    }
    let mut child = c
        .spawn()
        .with_context(|| format!("cannot start {}", bin.display()))?;
    let stdout = child.stdout.take().context("no standard output")?;
    let running = Running(child);
    let (tx, rx) = mpsc::channel();
    let out_log = log.with_extension("out");
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut sink = std::fs::File::create(out_log).ok();
        let mut line = String::new();
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let _ = tx.send(line.trim_end().to_string());
                    if let Some(f) = sink.as_mut() {
                        let _ = f.write_all(line.as_bytes());
                    }
                }
            }
        }
    });
    let mut found: Vec<Option<String>> = vec![None; keys.len()];
    let deadline = std::time::Instant::now() + START_TIMEOUT;
    while found.iter().any(Option::is_none) {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) => {
                let v: serde_json::Value = serde_json::from_str(&l).unwrap_or_default();
                for (k, slot) in keys.iter().zip(found.iter_mut()) {
                    if let Some(text) = v[k].as_str() {
                        *slot = Some(text.to_string());
                    }
                }
            }
            Err(_) => {
                let errors = std::fs::read_to_string(&log).unwrap_or_default();
                bail!(
                    "{} {} did not say where it listens: {}",
                    bin.display(),
                    args.join(" "),
                    errors.trim()
                );
            }
        }
    }
    Ok((running, found.into_iter().flatten().collect()))
}
