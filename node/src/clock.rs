//! The node's one wall clock, for what is not served over HTTP: the CLI's
//! report times, sync sessions' receipts and breach records, the
//! projector's records. The HTTP API reads a `sentinel_http::clock::Clock`
//! instead (a test can fix it); both read the same system time.
//!
//! Never does: decide anything about entries' order (that is the HLC in
//! `sentinel_schema`, which takes this time as an argument, invariant 8).

/// Unix milliseconds now (0 before 1970).
pub fn now_ms() -> u64 {
    sentinel_http::clock::system_ms()
}
