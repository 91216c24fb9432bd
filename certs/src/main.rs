//! `sentinel-certs`: the deployment CA's command line. Runs on the offline
//! CA machine; a thin layer over the `sentinel_certs` library that adds the
//! clock, password entry and messages for people.

#![forbid(unsafe_code)]

use std::io::{self, BufRead, IsTerminal, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command as Process, ExitCode, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use rand_core::OsRng;
use sentinel_certs::{
    read_cert_file, read_signed_list, verify_identity, write_signed_list, AuthorId, Bundle, Ca,
    CaCert, CertsError, DeviceRole, HttpsIssueError, HttpsNames, Identity, Password,
    RevocationList, Revoked, SigningKey, BUNDLE_HEADER, CA_CERT_FILE, REVOCATIONS_FILE,
};

const CA_PASSWORD_ENV: &str = "SENTINEL_CA_PASSWORD";
const BUNDLE_PASSWORD_ENV: &str = "SENTINEL_BUNDLE_PASSWORD";
const DAY_MS: u64 = 24 * 60 * 60 * 1000;
/// Certificates start this long before "now" on the CA machine, so a
/// device whose clock runs a little behind accepts its peers straight away.
const CLOCK_SKEW_MS: u64 = 60 * 60 * 1000;

#[derive(Parser)]
#[command(
    name = "sentinel-certs",
    version,
    about = "Sentinel's offline deployment CA: create it, issue device bundles and HTTPS \
             certificates, revoke keys.",
    after_help = "Passwords come from SENTINEL_CA_PASSWORD and SENTINEL_BUNDLE_PASSWORD, or \
                  from standard input (one per line, CA password first). There is no default."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Manage the deployment CA.
    Ca {
        #[command(subcommand)]
        command: CaCommand,
    },
    /// Issue a device identity: generate its key, certify it, write an
    /// enrollment bundle.
    Issue {
        #[arg(long, value_name = "DIR")]
        ca_dir: PathBuf,
        #[arg(long, value_parser = parse_role, value_name = "hub|node|sensor")]
        role: DeviceRole,
        /// The device name shown to people, e.g. node-7.
        #[arg(long)]
        name: String,
        #[arg(long, default_value_t = 365, value_parser = clap::value_parser!(u64).range(1..=36_500))]
        days: u64,
        /// The bundle file to create (never overwritten).
        #[arg(long, value_name = "BUNDLE")]
        out: PathBuf,
    },
    /// Issue a TLS server certificate for the hub's HTTPS API: a fresh
    /// ECDSA P-256 key, the given DNS names and IP addresses, serverAuth.
    /// Writes the chain (certificate, then CA) and the unencrypted key
    /// (PKCS#8 PEM, mode 0600) for SENTINEL_HTTPS_CERT and
    /// SENTINEL_HTTPS_KEY.
    #[command(name = "issue-https", visible_alias = "https")]
    IssueHttps {
        #[arg(long, value_name = "DIR")]
        ca_dir: PathBuf,
        /// A label for people (the certificate's common name), e.g.
        /// hub-north.
        #[arg(long)]
        name: String,
        /// A host name clients use to reach the hub (repeatable).
        #[arg(long = "dns", value_name = "HOST")]
        dns: Vec<String>,
        /// An IP address clients use to reach the hub (repeatable).
        #[arg(long = "ip", value_name = "ADDR")]
        ips: Vec<IpAddr>,
        #[arg(long, default_value_t = 90, value_parser = clap::value_parser!(u64).range(1..=36_500))]
        days: u64,
        /// The certificate chain to create (PEM; never overwritten).
        #[arg(long, value_name = "FILE")]
        out_cert: PathBuf,
        /// The private key to create (PEM, mode 0600; never overwritten).
        #[arg(long, value_name = "FILE")]
        out_key: PathBuf,
    },
    /// Revoke an author key: its entries after --last-valid-seq are
    /// refused everywhere, and it can no longer connect.
    Revoke {
        #[arg(long, value_name = "DIR")]
        ca_dir: PathBuf,
        /// The author key, 64 hex digits.
        #[arg(long, value_parser = parse_author, value_name = "HEX")]
        key: AuthorId,
        /// The author's entries up to and including this seq stay valid
        /// (0: none do).
        #[arg(long, value_name = "N")]
        last_valid_seq: u64,
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Re-sign the current revocation list with a new number and issue
    /// time, so hubs that demand a fresh list accept peers again.
    Refresh {
        #[arg(long, value_name = "DIR")]
        ca_dir: PathBuf,
    },
    /// Show a bundle, a certificate or a revocation list.
    Show {
        /// A bundle, a certificate (PEM) or a revocation list (CBOR).
        path: PathBuf,
        /// The CA directory, to check device certificates and lists against.
        #[arg(long, value_name = "DIR")]
        ca_dir: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum CaCommand {
    /// Create a new CA in DIR (ca.pem, ca.key).
    Create {
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        #[arg(long)]
        name: String,
        #[arg(long, default_value_t = 3650, value_parser = clap::value_parser!(u64).range(1..=36_500))]
        days: u64,
    },
}

fn parse_role(s: &str) -> Result<DeviceRole, String> {
    s.parse::<DeviceRole>().map_err(|e| e.to_string())
}

fn parse_author(s: &str) -> Result<AuthorId, String> {
    s.parse::<AuthorId>()
        .map_err(|e| format!("not an author key: {e}"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sentinel-certs: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> Result<()> {
    let mut passwords = Passwords::default();
    match command {
        Command::Ca {
            command: CaCommand::Create { dir, name, days },
        } => ca_create(&mut passwords, &dir, &name, days),
        Command::Issue {
            ca_dir,
            role,
            name,
            days,
            out,
        } => issue(&mut passwords, &ca_dir, role, &name, days, &out),
        Command::IssueHttps {
            ca_dir,
            name,
            dns,
            ips,
            days,
            out_cert,
            out_key,
        } => issue_https(
            &mut passwords,
            &ca_dir,
            &name,
            &dns,
            &ips,
            days,
            (&out_cert, &out_key),
        ),
        Command::Revoke {
            ca_dir,
            key,
            last_valid_seq,
            reason,
        } => revoke(&mut passwords, &ca_dir, key, last_valid_seq, reason),
        Command::Refresh { ca_dir } => refresh(&mut passwords, &ca_dir),
        Command::Show { path, ca_dir } => show(&path, ca_dir.as_deref()),
    }
}

/// The clock is read here, at the edge, and nowhere in the library.
fn now_ms() -> Result<u64> {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .context("the system clock is before 1970")?;
    u64::try_from(since.as_millis()).context("the system clock is out of range")
}

fn fmt_ms(ms: u64) -> String {
    let format = &time::format_description::well_known::Rfc3339;
    i64::try_from(ms / 1000)
        .ok()
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .and_then(|t| t.format(format).ok())
        .unwrap_or_else(|| format!("{ms} ms"))
}

fn ca_create(passwords: &mut Passwords, dir: &Path, name: &str, days: u64) -> Result<()> {
    let now = now_ms()?;
    let password = passwords.get(CA_PASSWORD_ENV, "new CA password", true)?;
    let key = SigningKey::generate(&mut OsRng);
    let from = now.saturating_sub(CLOCK_SKEW_MS);
    let until = now.saturating_add(days.saturating_mul(DAY_MS));
    let ca = Ca::create(name, from, until, key).context("cannot create the CA")?;
    ca.save(dir, &password)
        .with_context(|| format!("cannot save the CA in {}", dir.display()))?;
    println!("created CA {name:?} in {}", dir.display());
    println!("  valid until {}", fmt_ms(ca.cert().not_after_ms()));
    println!("  keep {} offline and its password safe", dir.display());
    Ok(())
}

fn load_ca(passwords: &mut Passwords, dir: &Path) -> Result<Ca> {
    let password = passwords.get(CA_PASSWORD_ENV, "CA password", false)?;
    Ca::load(dir, &password).map_err(|e| match e {
        CertsError::WrongPassword => anyhow::anyhow!("wrong CA password for {}", dir.display()),
        CertsError::NotFound { path } => anyhow::anyhow!(
            "no CA in {}: {} does not exist (create one with `sentinel-certs ca create`)",
            dir.display(),
            path.display()
        ),
        e => anyhow::Error::new(e).context(format!("cannot load the CA in {}", dir.display())),
    })
}

fn issue(
    passwords: &mut Passwords,
    ca_dir: &Path,
    role: DeviceRole,
    name: &str,
    days: u64,
    out: &Path,
) -> Result<()> {
    if out.exists() {
        bail!("{} exists already; refusing to overwrite it", out.display());
    }
    let ca = load_ca(passwords, ca_dir)?;
    let now = now_ms()?;
    let bundle_password = passwords.get(BUNDLE_PASSWORD_ENV, "new bundle password", true)?;
    let key = SigningKey::generate(&mut OsRng);
    let from = now
        .saturating_sub(CLOCK_SKEW_MS)
        .max(ca.cert().not_before_ms());
    let until = now.saturating_add(days.saturating_mul(DAY_MS));
    let enrollment = ca
        .enroll(role, name, key, from, until, now)
        .map_err(|e| match e {
            CertsError::ValidityOutsideCa {
                ca_not_after_ms, ..
            } => anyhow::anyhow!(
                "the CA expires at {}: use --days {} or fewer",
                fmt_ms(ca_not_after_ms),
                ca_not_after_ms.saturating_sub(now) / DAY_MS
            ),
            CertsError::CaExpired { not_after_ms, .. } => anyhow::anyhow!(
                "the CA expired at {}: create a new CA and re-enroll every device",
                fmt_ms(not_after_ms)
            ),
            e => anyhow::Error::new(e).context("cannot issue the certificate"),
        })?;
    Bundle::export(out, &enrollment, &bundle_password)
        .with_context(|| format!("cannot write the bundle {}", out.display()))?;
    let id = &enrollment.identity;
    // Keep a record of every certificate issued: the author key is what a
    // later `revoke` needs.
    let issued = ca_dir.join("issued");
    std::fs::create_dir_all(&issued)
        .with_context(|| format!("cannot create {}", issued.display()))?;
    let record = issued.join(format!("{}.pem", id.author));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&record)
        .and_then(|mut f| f.write_all(enrollment.cert_pem().as_bytes()))
        .with_context(|| format!("cannot write {}", record.display()))?;
    println!("issued {} {:?} to {}", id.role, id.name, out.display());
    println!("  author  {}", id.author);
    println!(
        "  valid   {} to {}",
        fmt_ms(id.not_before_ms),
        fmt_ms(id.not_after_ms)
    );
    println!("  record  {}", record.display());
    Ok(())
}

fn issue_https(
    passwords: &mut Passwords,
    ca_dir: &Path,
    name: &str,
    dns: &[String],
    ips: &[IpAddr],
    days: u64,
    (out_cert, out_key): (&Path, &Path),
) -> Result<()> {
    // Everything that can be checked without the CA password is checked
    // first.
    let names = HttpsNames::new(dns, ips).map_err(|e| match e {
        HttpsIssueError::NoNames => {
            anyhow::anyhow!("{e}: use --dns HOST and/or --ip ADDR (repeatable)")
        }
        e => anyhow::Error::new(e),
    })?;
    if out_cert == out_key {
        bail!("--out-cert and --out-key name the same file");
    }
    for out in [out_cert, out_key] {
        if out.exists() {
            bail!("{} exists already; refusing to overwrite it", out.display());
        }
    }
    let ca = load_ca(passwords, ca_dir)?;
    let now = now_ms()?;
    let from = now
        .saturating_sub(CLOCK_SKEW_MS)
        .max(ca.cert().not_before_ms());
    let until = now.saturating_add(days.saturating_mul(DAY_MS));
    let cert = ca
        .issue_https(name, &names, from, until, now)
        .map_err(|e| match e {
            HttpsIssueError::Certs(CertsError::ValidityOutsideCa {
                ca_not_after_ms, ..
            }) => anyhow::anyhow!(
                "the CA expires at {}: use --days {} or fewer",
                fmt_ms(ca_not_after_ms),
                ca_not_after_ms.saturating_sub(now) / DAY_MS
            ),
            HttpsIssueError::Certs(CertsError::CaExpired { not_after_ms, .. }) => {
                anyhow::anyhow!(
                    "the CA expired at {}: create a new CA and re-enroll every device",
                    fmt_ms(not_after_ms)
                )
            }
            e => anyhow::Error::new(e).context("cannot issue the HTTPS certificate"),
        })?;
    cert.write(out_cert, out_key).with_context(|| {
        format!(
            "cannot write {} and {}",
            out_cert.display(),
            out_key.display()
        )
    })?;
    let shown: Vec<String> = names
        .dns()
        .iter()
        .cloned()
        .chain(names.ips().iter().map(IpAddr::to_string))
        .collect();
    println!("issued HTTPS certificate {name:?} for {}", shown.join(", "));
    println!(
        "  valid   {} to {}",
        fmt_ms(cert.not_before_ms()),
        fmt_ms(cert.not_after_ms())
    );
    println!("  chain   {} (certificate, then CA)", out_cert.display());
    println!("  key     {} (unencrypted, mode 0600)", out_key.display());
    println!("  serve with SENTINEL_HTTPS_CERT and SENTINEL_HTTPS_KEY");
    Ok(())
}

/// The current list of a CA directory, or the empty list if none yet.
fn current_list(ca_dir: &Path, ca: &CaCert) -> Result<RevocationList> {
    let path = ca_dir.join(REVOCATIONS_FILE);
    match read_signed_list(&path) {
        Ok(bytes) => RevocationList::verify(&bytes, ca)
            .with_context(|| format!("{} does not verify against the CA", path.display())),
        Err(CertsError::NotFound { .. }) => Ok(RevocationList::empty()),
        Err(e) => Err(e.into()),
    }
}

fn publish(ca_dir: &Path, ca: &Ca, list: &RevocationList) -> Result<()> {
    let signed = list.sign(ca).context("cannot sign the revocation list")?;
    let path = ca_dir.join(REVOCATIONS_FILE);
    write_signed_list(&path, &signed)?;
    println!(
        "wrote {} (list {}, {} revoked, issued {})",
        path.display(),
        list.number,
        list.revoked.len(),
        fmt_ms(list.issued_ms)
    );
    Ok(())
}

fn revoke(
    passwords: &mut Passwords,
    ca_dir: &Path,
    key: AuthorId,
    last_valid_seq: u64,
    reason: String,
) -> Result<()> {
    let ca = load_ca(passwords, ca_dir)?;
    let mut list = current_list(ca_dir, ca.cert())?;
    match list.revoked.iter_mut().find(|r| r.key == key) {
        // Raising the seq would re-admit entries that nodes may already
        // have refused; only tightening is allowed.
        Some(r) if last_valid_seq >= r.last_valid_seq => bail!(
            "{key} is already revoked with last valid seq {}; a revocation can only be tightened",
            r.last_valid_seq
        ),
        Some(r) => {
            r.last_valid_seq = last_valid_seq;
            if !reason.is_empty() {
                r.reason = reason;
            }
        }
        None => list.revoked.push(Revoked {
            key,
            last_valid_seq,
            reason,
        }),
    }
    list.number += 1;
    list.issued_ms = now_ms()?;
    publish(ca_dir, &ca, &list)?;
    println!("revoked {key}: entries after seq {last_valid_seq} are refused");
    Ok(())
}

fn refresh(passwords: &mut Passwords, ca_dir: &Path) -> Result<()> {
    let ca = load_ca(passwords, ca_dir)?;
    let mut list = current_list(ca_dir, ca.cert())?;
    list.number += 1;
    list.issued_ms = now_ms()?;
    publish(ca_dir, &ca, &list)
}

fn print_ca(ca: &CaCert) {
    println!("deployment CA {:?}", ca.name());
    println!("  key     {}", hex::encode(ca.key().as_bytes()));
    println!(
        "  valid   {} to {}",
        fmt_ms(ca.not_before_ms()),
        fmt_ms(ca.not_after_ms())
    );
}

fn print_identity(id: &Identity, ca: &CaCert, now: u64) {
    let status = if id.valid_at(now) {
        "valid now"
    } else if now < id.not_before_ms {
        "NOT YET VALID"
    } else {
        "EXPIRED"
    };
    println!("{} {:?} ({status})", id.role, id.name);
    println!("  author  {}", id.author);
    println!(
        "  valid   {} to {}",
        fmt_ms(id.not_before_ms),
        fmt_ms(id.not_after_ms)
    );
    println!("  issuer  {:?} (signature verified)", ca.name());
}

fn show(path: &Path, ca_dir: Option<&Path>) -> Result<()> {
    let now = now_ms()?;
    let ca_of = |what: &str| -> Result<CaCert> {
        let Some(dir) = ca_dir else {
            bail!("{what} is checked against its CA: pass --ca-dir DIR");
        };
        Ok(CaCert::load(&dir.join(CA_CERT_FILE))?)
    };
    // Every file `show` understands fits the revocation list's size cap.
    let head = read_signed_list(path)?;
    if head.starts_with(BUNDLE_HEADER.as_bytes()) {
        let summary = Bundle::summary(path)?;
        println!("enrollment bundle {}", path.display());
        print_identity(&summary.identity, &summary.ca, now);
        print_ca(&summary.ca);
        println!("  (the device key is encrypted with the bundle password)");
    } else if head.starts_with(b"-----BEGIN ") {
        let der = read_cert_file(path)?;
        match CaCert::from_der(&der) {
            Ok(ca) => print_ca(&ca),
            Err(_) => {
                let ca = ca_of("a device certificate")?;
                let id = verify_identity(&der, &ca)
                    .with_context(|| format!("{} does not verify", path.display()))?;
                print_identity(&id, &ca, now);
            }
        }
    } else {
        let ca = ca_of("a revocation list")?;
        let list = RevocationList::verify(&head, &ca)
            .with_context(|| format!("{} is not a valid revocation list", path.display()))?;
        println!(
            "revocation list {} issued {} by {:?}: {} revoked",
            list.number,
            fmt_ms(list.issued_ms),
            ca.name(),
            list.revoked.len()
        );
        for r in &list.revoked {
            println!(
                "  {}  last valid seq {}  {}",
                r.key, r.last_valid_seq, r.reason
            );
        }
    }
    Ok(())
}

/// Passwords from the environment or standard input, never a default.
#[derive(Default)]
struct Passwords {
    stdin_lines: Option<io::Lines<io::StdinLock<'static>>>,
}

impl Passwords {
    fn get(&mut self, env: &str, what: &str, confirm: bool) -> Result<Password> {
        if let Some(value) = std::env::var_os(env) {
            let value = value
                .into_string()
                .map_err(|_| anyhow::anyhow!("{env} is not valid UTF-8"))?;
            return Password::new(value).with_context(|| format!("{env} is set but empty"));
        }
        let interactive = io::stdin().is_terminal();
        let first = self.read_line(what, interactive, env)?;
        if confirm && interactive {
            let again = self.read_line(&format!("{what} (again)"), true, env)?;
            if *first != *again {
                bail!("the passwords do not match");
            }
        }
        Password::new(first.to_string()).with_context(|| format!("empty {what}"))
    }

    fn read_line(
        &mut self,
        what: &str,
        interactive: bool,
        env: &str,
    ) -> Result<zeroize::Zeroizing<String>> {
        let _echo = interactive.then(|| {
            eprint!("{what}: ");
            let _ = io::stderr().flush();
            EchoOff::new()
        });
        let lines = self
            .stdin_lines
            .get_or_insert_with(|| io::stdin().lock().lines());
        let line = match lines.next() {
            Some(line) => zeroize::Zeroizing::new(line.context("cannot read standard input")?),
            None => bail!("no {what}: set {env} or give it on standard input"),
        };
        if interactive {
            eprintln!();
        }
        Ok(line)
    }
}

/// Turns terminal echo off while a password is typed, and back on when
/// dropped. Best effort: without `stty` the password echoes, which is
/// still better than refusing to run.
struct EchoOff(bool);

impl EchoOff {
    fn new() -> EchoOff {
        EchoOff(stty("-echo"))
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        if self.0 {
            stty("echo");
        }
    }
}

fn stty(arg: &str) -> bool {
    Process::new("stty")
        .arg(arg)
        .stdin(Stdio::inherit())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}
