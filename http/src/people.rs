//! People on the HTTP APIs: password hashing (argon2id), bearer tokens,
//! and the checks on names and passwords. Each server stores accounts and
//! token digests itself; roles are `role_grant` entries in the log.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use rand_core::{OsRng, RngCore};
use sentinel_schema::limits::MAX_ACTOR_BYTES;
use sha2::{Digest, Sha256};

/// Shortest password accepted.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Longest password accepted (hashing cost is bounded).
pub const MAX_PASSWORD_BYTES: usize = 1024;
/// How long a token is valid.
pub const TOKEN_LIFETIME_MS: u64 = 12 * 60 * 60 * 1000;
/// Failed logins in a row an account may have before it is locked.
pub const FREE_FAILURES: u32 = 5;
/// How long the first lockout lasts; each failure after it doubles it.
pub const FIRST_LOCKOUT_MS: u64 = 30 * 1000;
/// The longest lockout.
pub const MAX_LOCKOUT_MS: u64 = 60 * 60 * 1000;

/// How long an account with `failures` failed logins in a row is locked:
/// nothing for the first [`FREE_FAILURES`] - 1, then [`FIRST_LOCKOUT_MS`],
/// doubling with each further failure, at most [`MAX_LOCKOUT_MS`]. A
/// guesser gets a few tries an hour; the person, after a few typos, waits
/// half a minute.
pub fn lockout_ms(failures: u32) -> u64 {
    if failures < FREE_FAILURES {
        return 0;
    }
    let doublings = (failures - FREE_FAILURES).min(20);
    FIRST_LOCKOUT_MS
        .saturating_mul(1 << doublings)
        .min(MAX_LOCKOUT_MS)
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PeopleError {
    #[error("name: {0}")]
    BadName(String),
    #[error("password: {0}")]
    BadPassword(String),
    #[error("hashing the password: {0}")]
    Hash(String),
    #[error("reading the password: {0}")]
    Read(String),
}

/// A person's name: 1–128 bytes (the entry `actor` limit) of letters,
/// digits and `.`, `-`, `_`, `@`.
pub fn check_name(name: &str) -> Result<(), PeopleError> {
    if name.is_empty() || name.len() > MAX_ACTOR_BYTES {
        return Err(PeopleError::BadName(format!(
            "must be 1 to {MAX_ACTOR_BYTES} bytes"
        )));
    }
    if !name
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '.' | '-' | '_' | '@'))
    {
        return Err(PeopleError::BadName(
            "only letters, digits and . - _ @ are allowed".into(),
        ));
    }
    Ok(())
}

pub fn check_password(password: &str) -> Result<(), PeopleError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(PeopleError::BadPassword(format!(
            "must be at least {MIN_PASSWORD_CHARS} characters"
        )));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(PeopleError::BadPassword(format!(
            "must be at most {MAX_PASSWORD_BYTES} bytes"
        )));
    }
    Ok(())
}

/// How often a server deletes expired and revoked tokens.
pub const TOKEN_PURGE_EVERY: std::time::Duration = std::time::Duration::from_secs(60 * 60);

/// A new password for a command line: the environment variable `env` if
/// set; else, when standard input is a terminal, asked for twice with
/// echo off (`rpassword`); else the first line of standard input. Never a
/// default; an empty one is refused.
pub fn new_password(env: &str) -> Result<String, PeopleError> {
    use std::io::{BufRead, IsTerminal};
    if let Ok(p) = std::env::var(env) {
        return Ok(p);
    }
    let read = |e: std::io::Error| PeopleError::Read(e.to_string());
    let password = if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ").map_err(read)?;
        let again = rpassword::prompt_password("Password again: ").map_err(read)?;
        if first != again {
            return Err(PeopleError::BadPassword("the two do not match".into()));
        }
        first
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).map_err(read)?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    };
    if password.is_empty() {
        return Err(PeopleError::BadPassword(format!(
            "no password: set {env} or write it on standard input"
        )));
    }
    Ok(password)
}

/// An argon2id hash (PHC string) of `password`, with a fresh salt.
pub fn hash_password(password: &str) -> Result<String, PeopleError> {
    check_password(password)?;
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PeopleError::Hash(e.to_string()))
}

/// Whether `password` matches the stored hash. A malformed hash matches
/// nothing.
pub fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A new bearer token (64 hex digits) and the digest the store keeps.
pub fn new_token() -> (String, [u8; 32]) {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    let token = hex::encode(bytes);
    let hash = token_hash(&token);
    (token, hash)
}

/// The digest of a presented token.
pub fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// A valid argon2id hash of a password nobody knows: check a login with an
/// unknown name against it, so it costs the same time as a wrong password
/// and names cannot be probed.
pub fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| {
        let (random, _) = new_token();
        hash_password(&random).unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_with_a_salt_and_verify() {
        let h1 = hash_password("correct horse battery").unwrap();
        let h2 = hash_password("correct horse battery").unwrap();
        assert_ne!(h1, h2, "salted");
        assert!(h1.starts_with("$argon2id$"));
        assert!(verify_password(&h1, "correct horse battery"));
        assert!(!verify_password(&h1, "correct horse batterY"));
        assert!(!verify_password("not a hash", "x"));
        assert!(hash_password("short").is_err());
        assert!(hash_password(&"x".repeat(MAX_PASSWORD_BYTES + 1)).is_err());
    }

    #[test]
    fn lockouts_start_after_a_few_failures_and_double_up_to_an_hour() {
        assert_eq!(lockout_ms(0), 0);
        assert_eq!(lockout_ms(FREE_FAILURES - 1), 0);
        assert_eq!(lockout_ms(FREE_FAILURES), FIRST_LOCKOUT_MS);
        assert_eq!(lockout_ms(FREE_FAILURES + 1), 2 * FIRST_LOCKOUT_MS);
        assert_eq!(lockout_ms(FREE_FAILURES + 2), 4 * FIRST_LOCKOUT_MS);
        assert_eq!(lockout_ms(FREE_FAILURES + 10), MAX_LOCKOUT_MS);
        assert_eq!(lockout_ms(u32::MAX), MAX_LOCKOUT_MS);
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("officer.ada@north").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name("a b").is_err());
        assert!(check_name(&"a".repeat(129)).is_err());
    }

    #[test]
    fn tokens_are_random_and_only_their_digest_is_kept() {
        let (t1, h1) = new_token();
        let (t2, _) = new_token();
        assert_ne!(t1, t2);
        assert_eq!(t1.len(), 64);
        assert_eq!(token_hash(&t1), h1);
    }
}
