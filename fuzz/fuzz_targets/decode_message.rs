//! Sync frames from a peer: decoding must never panic, and whatever it
//! accepts must re-encode to exactly the same bytes (the message format is
//! canonical like entries are).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(frame) = sentinel_sync::message::decode(data) {
        let again = frame.message.encode(frame.number);
        assert_eq!(again, data, "an accepted frame re-encodes to other bytes");
    }
});
