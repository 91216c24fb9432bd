//! Webhooks: what the hub tells other systems when events change.
//!
//! Subscriptions (a name, a target URL, a secret, a rule, an enabled flag)
//! and the outbox of deliveries live in the store
//! ([`crate::store::webhooks`]); the projector enqueues a delivery in the
//! transaction that writes the change it reports. This module signs and
//! sends them ([`worker`]), and holds what the API checks a subscription
//! with ([`check_url`], [`check_secret`], [`new_secret`]).
//!
//! **Signature.** Each POST carries
//!
//! - `Sentinel-Webhook-Id`: the delivery's id, 32 hex digits, the same on
//!   every attempt (the idempotency key: a receiver drops an id it has
//!   seen);
//! - `Sentinel-Webhook-Timestamp`: the attempt's time, Unix seconds in
//!   decimal;
//! - `Sentinel-Webhook-Signature`: `v1=` and the lowercase hex of
//!   HMAC-SHA256, keyed with the secret's UTF-8 bytes, over
//!   `"{timestamp}.{body}"` ([`sign`]).
//!
//! `docs/operations.md` ("Webhooks") shows a worked example; a test below
//! checks the same numbers.
//!
//! Never does: SQL; decide what matches a subscription (the store's rule
//! does); log or answer a secret.

pub mod worker;

use hmac::{Hmac, Mac};
use rand_core::{OsRng, RngCore};
use sha2::Sha256;

/// The delivery's id (the idempotency key).
pub const ID_HEADER: &str = "Sentinel-Webhook-Id";
/// The attempt's time, Unix seconds.
pub const TIMESTAMP_HEADER: &str = "Sentinel-Webhook-Timestamp";
/// `v1=` and the signature's lowercase hex.
pub const SIGNATURE_HEADER: &str = "Sentinel-Webhook-Signature";

/// Longest target URL accepted, in bytes.
pub const MAX_URL_BYTES: usize = 2048;
/// Shortest and longest secret accepted, in bytes.
pub const MIN_SECRET_BYTES: usize = 16;
pub const MAX_SECRET_BYTES: usize = 256;

/// `v1=` and the lowercase hex of HMAC-SHA256 over `"{timestamp}.{body}"`,
/// keyed with `secret`.
pub fn sign(secret: &[u8], timestamp_s: u64, body: &[u8]) -> String {
    format!(
        "v1={}",
        hex::encode(mac(secret, timestamp_s, body).finalize().into_bytes())
    )
}

/// Whether `header` (a `Sentinel-Webhook-Signature` value) is the
/// signature of `body` at `timestamp_s` under `secret`, compared in
/// constant time: what a receiver checks (with the timestamp's age).
pub fn verify(secret: &[u8], timestamp_s: u64, body: &[u8], header: &str) -> bool {
    let Some(hex_sig) = header.strip_prefix("v1=") else {
        return false;
    };
    let Ok(sig) = hex::decode(hex_sig) else {
        return false;
    };
    mac(secret, timestamp_s, body).verify_slice(&sig).is_ok()
}

fn mac(secret: &[u8], timestamp_s: u64, body: &[u8]) -> Hmac<Sha256> {
    // HMAC takes a key of any length: this cannot fail.
    let mut m = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    };
    m.update(timestamp_s.to_string().as_bytes());
    m.update(b".");
    m.update(body);
    m
}

/// A target URL: `http` or `https`, with a host, no user name or
/// password (the URL is listed to admins), at most [`MAX_URL_BYTES`].
/// The refusal says why, for the API to name the field.
pub fn check_url(url: &str) -> Result<(), String> {
    if url.len() > MAX_URL_BYTES {
        return Err(format!("at most {MAX_URL_BYTES} bytes"));
    }
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("not a URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!(
            "the scheme is {:?}: only http and https are delivered to",
            parsed.scheme()
        ));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err("names no host".into());
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("carries a user name or password; put credentials in the receiver's check of the signature instead".into());
    }
    Ok(())
}

/// A secret an admin gives: [`MIN_SECRET_BYTES`] to [`MAX_SECRET_BYTES`]
/// printable ASCII characters, no spaces.
pub fn check_secret(secret: &str) -> Result<(), String> {
    let n = secret.len();
    if !(MIN_SECRET_BYTES..=MAX_SECRET_BYTES).contains(&n) {
        return Err(format!(
            "{n} bytes; a secret is {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES}"
        ));
    }
    if !secret.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("only printable ASCII characters, no spaces".into());
    }
    Ok(())
}

/// A new secret: 32 random bytes as 64 hex digits.
pub fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// A new subscription id: 16 random bytes.
pub fn new_id() -> [u8; 16] {
    let mut id = [0u8; 16];
    OsRng.fill_bytes(&mut id);
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The worked example of `docs/operations.md` ("Webhooks").
    pub const EXAMPLE_SECRET: &str = "whsec-worked-example-0123456789abcdef";
    pub const EXAMPLE_TIMESTAMP: u64 = 1_790_000_000;
    pub const EXAMPLE_BODY: &str =
        r#"{"delivery":"00112233445566778899aabbccddeeff","type":"event.created"}"#;
    pub const EXAMPLE_SIGNATURE: &str =
        "v1=ad98c7331023baf5b7e68f1d6ed6c96c6804a874990a7c11d6f47814032dfd2e";

    #[test]
    fn the_documented_worked_example_signs_as_documented() {
        let sig = sign(
            EXAMPLE_SECRET.as_bytes(),
            EXAMPLE_TIMESTAMP,
            EXAMPLE_BODY.as_bytes(),
        );
        assert_eq!(sig, EXAMPLE_SIGNATURE);
        assert!(verify(
            EXAMPLE_SECRET.as_bytes(),
            EXAMPLE_TIMESTAMP,
            EXAMPLE_BODY.as_bytes(),
            EXAMPLE_SIGNATURE
        ));
        assert!(!verify(
            EXAMPLE_SECRET.as_bytes(),
            EXAMPLE_TIMESTAMP + 1,
            EXAMPLE_BODY.as_bytes(),
            EXAMPLE_SIGNATURE
        ));
        assert!(!verify(
            b"another secret!!",
            EXAMPLE_TIMESTAMP,
            EXAMPLE_BODY.as_bytes(),
            &sig
        ));
        let docs = include_str!("../../../docs/operations.md");
        for (what, value) in [
            ("secret", EXAMPLE_SECRET.to_owned()),
            ("timestamp", EXAMPLE_TIMESTAMP.to_string()),
            ("body", EXAMPLE_BODY.to_owned()),
            ("signature", EXAMPLE_SIGNATURE.to_owned()),
        ] {
            assert!(
                docs.contains(&value),
                "docs/operations.md must show the worked example's {what}: {value}"
            );
        }
    }

    #[test]
    fn only_http_and_https_urls_with_a_host_and_no_credentials() {
        assert!(check_url("https://hooks.example.org/sentinel?x=1").is_ok());
        assert!(check_url("http://127.0.0.1:8080/hook").is_ok());
        for bad in [
            "ftp://example.org/",
            "file:///etc/passwd",
            "javascript:alert(1)",
            "not a url",
            "https://user:pw@example.org/",
            "https://",
            "http://:80/",
        ] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
        assert!(check_url(&format!("https://e.org/{}", "a".repeat(MAX_URL_BYTES))).is_err());
    }

    #[test]
    fn secrets_are_printable_and_long_enough() {
        assert!(check_secret(&new_secret()).is_ok());
        assert_eq!(new_secret().len(), 64);
        assert_ne!(new_secret(), new_secret());
        assert!(check_secret("short").is_err());
        assert!(check_secret("sixteen bytes ok").is_err());
        assert!(check_secret(&"x".repeat(MAX_SECRET_BYTES + 1)).is_err());
        assert!(check_secret("0123456789abcdef").is_ok());
    }
}
