//! The wall clock, read in this one place for the QUIC drivers
//! (`quic.rs`, and the media tests' certificates). The sans-IO core never
//! reads it: a session takes the time as an argument (invariant 8).

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch; 0 for a clock set before it (a
/// session then sees time stand still rather than the driver failing).
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
