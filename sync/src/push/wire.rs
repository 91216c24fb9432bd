//! The push body (`docs/protocol.md` 3.5): a bare signed entry, or
//! `[certificate / null, [entry, …]]`. Both are CBOR arrays of two items;
//! the second item tells them apart without guessing — a signed entry's
//! is its signature (a byte string), a batch's is its entry list (an
//! array).

use sentinel_schema::cbor::{check_well_formed, WellFormedLimits, Writer};
use sentinel_schema::limits::{MAX_ENTRY_BYTES, MAX_NESTING};
use sentinel_schema::SignedEntry;

use crate::cbor::{Reader, MAJOR_ARRAY, MAJOR_BYTES};
use crate::message::{MessageError, MAX_CERTIFICATE_BYTES};

/// Largest push body, in bytes. Callers check it before reading the body
/// (an HTTP server refuses a longer `Content-Length` or stream with 413);
/// [`decode`] checks it again.
pub const MAX_PUSH_BYTES: usize = sentinel_schema::limits::MAX_PUSH_BYTES;

/// Most entries in one push.
pub const MAX_PUSH_ENTRIES: usize = 1_000;

/// A decoded push body: what the sensor sent, not yet verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Push {
    /// The author's certificate (DER), when the sensor sent it.
    pub certificate: Option<Vec<u8>>,
    /// Signed entries, each exactly as its author encoded it (1 to
    /// [`MAX_PUSH_ENTRIES`]).
    pub entries: Vec<Vec<u8>>,
}

/// Decodes a push body. Never panics; every error names the field.
/// Entries are only sliced out here, not decoded: [`crate::push::receive`]
/// decodes each and names the one at fault.
pub fn decode(bytes: &[u8]) -> Result<Push, MessageError> {
    if bytes.len() > MAX_PUSH_BYTES {
        return Err(MessageError::TooLarge {
            len: bytes.len(),
            max: MAX_PUSH_BYTES,
        });
    }
    let limits = WellFormedLimits {
        max_bytes: MAX_PUSH_BYTES,
        max_depth: MAX_NESTING,
    };
    check_well_formed(bytes, limits).map_err(MessageError::NotWellFormed)?;
    let mut r = Reader::new(bytes);
    r.array("push", 2, 2)?;
    let push = if r.peek_null() {
        r.null("certificate")?;
        Push {
            certificate: None,
            entries: entries(&mut r)?,
        }
    } else {
        let first = r.bytes("certificate", 1, MAX_ENTRY_BYTES)?;
        match r.peek_major() {
            Some(MAJOR_BYTES) => {
                // A bare signed entry: [entry bytes, signature]. The whole
                // body is the entry; its decoder checks the rest.
                r.bytes("signature", 64, 64)?;
                Push {
                    certificate: None,
                    entries: vec![bytes.to_vec()],
                }
            }
            Some(MAJOR_ARRAY) => {
                if first.len() > MAX_CERTIFICATE_BYTES {
                    return Err(MessageError::OutOfRange {
                        field: "certificate",
                        what: format!("{} bytes, allowed 1..={MAX_CERTIFICATE_BYTES}", first.len()),
                    });
                }
                Push {
                    certificate: Some(first.to_vec()),
                    entries: entries(&mut r)?,
                }
            }
            _ => {
                return Err(MessageError::WrongType {
                    at: r.position(),
                    field: "entries",
                    expected: "an array of entries (or, for one bare entry, its signature)",
                })
            }
        }
    };
    if !r.is_empty() {
        return Err(MessageError::TrailingBytes { at: r.position() });
    }
    Ok(push)
}

fn entries(r: &mut Reader<'_>) -> Result<Vec<Vec<u8>>, MessageError> {
    let n = r.array("entries", 1, MAX_PUSH_ENTRIES)?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(r.bytes("entry", 1, MAX_ENTRY_BYTES)?.to_vec());
    }
    Ok(out)
}

/// Encodes the batch form `[certificate / null, [entry, …]]`. Keeping
/// within [`MAX_PUSH_ENTRIES`] and [`MAX_PUSH_BYTES`] is the caller's job.
pub fn encode(certificate: Option<&[u8]>, entries: &[SignedEntry]) -> Vec<u8> {
    let len: usize = entries.iter().map(|e| e.as_bytes().len() + 5).sum();
    let mut w = Writer::with_capacity(len + certificate.map_or(1, |c| c.len() + 5) + 8);
    w.array(2);
    match certificate {
        Some(der) => w.bytes(der),
        None => w.null(),
    }
    w.array(entries.len());
    for e in entries {
        w.bytes(e.as_bytes());
    }
    w.out
}
