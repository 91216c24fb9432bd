//! Test support (feature `testing`): a deployment CA valid around now and
//! identities it issues, as every crate's tests need them.
//!
//! The QUIC handshake checks certificates against the real clock (as
//! `serve` does), so these are issued around the current time, not a fixed
//! one. A failure here is a bug in a test, and panicking is how tests
//! report it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{SystemTime, UNIX_EPOCH};

use ed25519_dalek::SigningKey;
use sentinel_schema::DeviceRole;

use crate::{Ca, Enrollment};

/// One day, in ms.
pub const DAY: u64 = 24 * 60 * 60 * 1000;
/// One year, in ms.
pub const YEAR: u64 = 365 * DAY;

/// Unix milliseconds now (tests only: the crate itself reads no clock).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_millis() as u64
}

/// A deterministic key: test identity `seed`.
pub fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

/// A deployment CA valid from a year ago to five years ahead.
pub fn deployment(name: &str, seed: u8) -> Ca {
    let now = now_ms();
    Ca::create(name, now - YEAR, now + 5 * YEAR, key(seed)).expect("a test CA")
}

/// An identity from `ca`, valid from a day ago to a year ahead, with the
/// key [`key`]`(seed)`.
pub fn issue(ca: &Ca, role: DeviceRole, name: &str, seed: u8) -> Enrollment {
    let now = now_ms();
    ca.enroll(role, name, key(seed), now - DAY, now + YEAR, now)
        .expect("a test identity")
}
