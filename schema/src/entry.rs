//! The entry: one signed, hash-linked change in an author's log.
//!
//! Wire form (see `docs/protocol.md`):
//!
//! ```text
//! signed entry = [ bstr(entry bytes), bstr(64-byte ed25519 signature) ]
//! entry bytes  = [ 1, author, seq, prev / null, [wall_ms, counter], actor / null, body ]
//! ```
//!
//! The signature covers the entry bytes exactly as they sit inside the
//! signed entry, so a verifier slices them out and never re-encodes
//! (invariant 1: bytes are the truth). The entry id is SHA-256 of the whole
//! signed entry. Every value has one encoding; decoding re-encodes and
//! refuses anything else, so one entry cannot circulate under two ids.

use std::ops::Range;

use ed25519_dalek::{Signature, Signer, SigningKey};

use crate::body::Body;
use crate::cbor::{head_len as cbor_head_len, Reader, Writer};
use crate::error::DecodeError;
use crate::hlc::Hlc;
use crate::ids::{AuthorId, EntryId};
use crate::limits::{MAX_ACTOR_BYTES, MAX_ENTRY_BYTES};

/// The entry format version this code writes and reads.
pub const FORMAT_VERSION: u64 = 1;

/// An entry before signing, or as decoded from a signed entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The public key that signs this entry.
    pub author: AuthorId,
    /// 1, 2, 3 … per author, no gaps.
    pub seq: u64,
    /// The id of the author's previous entry; `None` exactly when `seq == 1`.
    pub prev: Option<EntryId>,
    pub hlc: Hlc,
    /// The person on whose behalf the entry was made, if any.
    pub actor: Option<String>,
    pub body: Body,
}

/// Why an entry cannot be signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    /// The signing key is not the entry's author.
    #[error("the signing key is not the entry's author")]
    WrongKey,
    /// The entry breaks a rule of the format (the decoder would refuse it).
    #[error("invalid entry: {0}")]
    Invalid(#[from] DecodeError),
}

impl Entry {
    /// The deterministic encoding of this entry (the bytes that are signed).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(128);
        self.encode_into(&mut w);
        w.out
    }

    fn encode_into(&self, w: &mut Writer) {
        w.array(7);
        w.uint(FORMAT_VERSION);
        w.bytes(self.author.as_bytes());
        w.uint(self.seq);
        match &self.prev {
            Some(p) => w.bytes(p.as_bytes()),
            None => w.null(),
        }
        w.array(2);
        w.uint(self.hlc.wall_ms);
        w.uint(u64::from(self.hlc.counter));
        match &self.actor {
            Some(a) => w.text(a),
            None => w.null(),
        }
        self.body.encode(w);
    }

    fn decode(bytes: &[u8]) -> Result<Entry, DecodeError> {
        let mut r = Reader::new(bytes);
        r.array("entry", 7)?;
        let version = r.uint("version")?;
        if version != FORMAT_VERSION {
            return Err(DecodeError::UnsupportedVersion(version));
        }
        let author = AuthorId(r.fixed("author")?);
        let seq = r.uint("seq")?;
        if seq == 0 {
            return Err(DecodeError::OutOfRange {
                field: "seq",
                what: "seq starts at 1".into(),
            });
        }
        let prev = r.opt_fixed("prev")?.map(EntryId);
        match (seq, &prev) {
            (1, Some(_)) => {
                return Err(DecodeError::OutOfRange {
                    field: "prev",
                    what: "the first entry (seq 1) has no prev".into(),
                })
            }
            (2.., None) => {
                return Err(DecodeError::OutOfRange {
                    field: "prev",
                    what: format!("entry with seq {seq} must name its prev"),
                })
            }
            _ => {}
        }
        r.array("hlc", 2)?;
        let wall_ms = r.uint("hlc.wall_ms")?;
        let counter =
            u32::try_from(r.uint("hlc.counter")?).map_err(|_| DecodeError::OutOfRange {
                field: "hlc.counter",
                what: "counter exceeds 2^32-1".into(),
            })?;
        let actor = r.opt_text("actor", 1, MAX_ACTOR_BYTES)?.map(str::to_owned);
        let body = Body::decode(&mut r)?;
        if !r.is_empty() {
            return Err(DecodeError::TrailingBytes { at: r.position() });
        }
        Ok(Entry {
            author,
            seq,
            prev,
            hlc: Hlc::new(wall_ms, counter),
            actor,
            body,
        })
    }

    /// Signs the entry with its author's key.
    pub fn sign(self, key: &SigningKey) -> Result<SignedEntry, SignError> {
        if key.verifying_key().as_bytes() != self.author.as_bytes() {
            return Err(SignError::WrongKey);
        }
        let entry_bytes = self.encode();
        // Refuse to sign what no verifier would accept: the same decoder
        // that peers run is the one rule book.
        let signed_len = 1 + head_len(entry_bytes.len()) + entry_bytes.len() + 2 + 64;
        if signed_len > MAX_ENTRY_BYTES {
            return Err(DecodeError::TooLarge {
                len: signed_len,
                max: MAX_ENTRY_BYTES,
            }
            .into());
        }
        if Entry::decode(&entry_bytes)? != self {
            return Err(DecodeError::NonCanonical.into());
        }
        let sig = key.sign(&entry_bytes);
        let (bytes, signed) = wrap(&entry_bytes, &sig.to_bytes());
        let id = EntryId::of(&bytes);
        Ok(SignedEntry {
            bytes,
            signed,
            entry: self,
            sig,
            id,
        })
    }
}

/// Builds the outer array; returns it and where the entry bytes sit in it.
fn wrap(entry_bytes: &[u8], sig: &[u8; 64]) -> (Vec<u8>, Range<usize>) {
    let mut w = Writer::with_capacity(entry_bytes.len() + 80);
    w.array(2);
    w.bytes(entry_bytes);
    let end = w.out.len();
    w.bytes(sig);
    let start = end - entry_bytes.len();
    (w.out, start..end)
}

/// An entry with its exact signed bytes. Decoding one checks structure and
/// limits only; the signature is checked by [`crate::verify`], which is the
/// only way to obtain a [`crate::VerifiedEntry`].
#[derive(Debug, Clone)]
pub struct SignedEntry {
    bytes: Vec<u8>,
    /// Where the entry bytes (the signed message) sit inside `bytes`.
    signed: Range<usize>,
    entry: Entry,
    sig: Signature,
    id: EntryId,
}

impl PartialEq for SignedEntry {
    fn eq(&self, other: &Self) -> bool {
        // The bytes determine everything else.
        self.bytes == other.bytes
    }
}

impl SignedEntry {
    /// Decodes a signed entry from the bytes its author produced.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<SignedEntry, DecodeError> {
        if bytes.len() > MAX_ENTRY_BYTES {
            return Err(DecodeError::TooLarge {
                len: bytes.len(),
                max: MAX_ENTRY_BYTES,
            });
        }
        let mut r = Reader::new(&bytes);
        r.array("signed entry", 2)?;
        let start = r.position();
        let entry_bytes = r.bytes("entry bytes", 1, MAX_ENTRY_BYTES)?;
        let end = r.position();
        let signed = (end - entry_bytes.len())..end;
        let sig: [u8; 64] = r.fixed("signature")?;
        if !r.is_empty() {
            return Err(DecodeError::TrailingBytes { at: r.position() });
        }
        let entry = Entry::decode(entry_bytes)?;
        // One value, one encoding: the entry must re-encode to exactly its
        // bytes, and the outer heads must be the shortest ones.
        if entry.encode() != entry_bytes
            || start != 1
            || signed.start != 1 + head_len(entry_bytes.len())
        {
            return Err(DecodeError::NonCanonical);
        }
        let id = EntryId::of(&bytes);
        Ok(SignedEntry {
            bytes,
            signed,
            entry,
            sig: Signature::from_bytes(&sig),
            id,
        })
    }

    /// The whole signed encoding: what is stored, sent and hashed.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// The entry bytes the signature covers.
    pub fn signed_bytes(&self) -> &[u8] {
        &self.bytes[self.signed.clone()]
    }

    pub fn entry(&self) -> &Entry {
        &self.entry
    }

    pub fn signature(&self) -> &Signature {
        &self.sig
    }

    pub fn id(&self) -> EntryId {
        self.id
    }

    pub fn author(&self) -> AuthorId {
        self.entry.author
    }

    pub fn seq(&self) -> u64 {
        self.entry.seq
    }
}

/// Length of the shortest CBOR head for a byte string of `len` bytes.
fn head_len(len: usize) -> usize {
    cbor_head_len(len as u64)
}
