//! Arbitrary bytes into `cbor::check_well_formed` with the default limits.
//!
//! The check walks untrusted frames before any other decoder sees them, so
//! it must never panic, overflow, recurse or allocate from declared lengths,
//! whatever the input.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sentinel_schema::cbor::{check_well_formed, WellFormedLimits};

fuzz_target!(|data: &[u8]| {
    let _ = check_well_formed(data, WellFormedLimits::default());
});
