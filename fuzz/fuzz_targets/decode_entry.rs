//! Arbitrary bytes into `SignedEntry::from_bytes`.
//!
//! Decoding must never panic, whatever the input. Whatever it accepts, the
//! signature check must not panic either, and because the format is
//! canonical (one value, one encoding), decoding the accepted entry's own
//! bytes again must give back the same entry under the same id.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sentinel_schema::SignedEntry;

fuzz_target!(|data: &[u8]| {
    let Ok(entry) = SignedEntry::from_bytes(data.to_vec()) else {
        return;
    };
    // Random bytes almost never carry a valid signature; only the absence
    // of a panic matters here.
    let _ = entry.verify();

    assert_eq!(entry.as_bytes(), data, "accepted bytes were not kept as given");
    let again = SignedEntry::from_bytes(entry.as_bytes().to_vec())
        .expect("an accepted entry's own bytes must decode again");
    assert_eq!(again, entry, "re-decoded signed entry differs");
    assert_eq!(again.entry(), entry.entry(), "re-decoded entry differs");
    assert_eq!(again.id(), entry.id(), "re-decoded entry has another id");
    assert_eq!(again.signed_bytes(), entry.signed_bytes());
    assert_eq!(again.signature(), entry.signature());
});
