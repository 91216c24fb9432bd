//! The audit bundle's bytes (`docs/protocol.md` part 4): a CBOR array of
//! the magic text, the format version, the contents (a byte string: the
//! exact bytes the hub signed), the hub's certificate and its signature.
//! Entries, certificates, revocation lists and checkpoints are carried as
//! the exact bytes their signers produced (invariant 1).
//!
//! Pure: encoding, decoding, the digest the hub signs. Never does: verify
//! anything but the shape (`super::verify` does).

use sentinel_schema::{AuthorId, SigningKey};
use sha2::{Digest, Sha256};

use crate::cbor::{Reader, Writer};
use crate::message_error::MessageError;

/// The first item of every bundle.
pub const MAGIC: &str = "sentinel-audit-bundle";
/// The format version this code writes and reads.
pub const VERSION: u64 = 1;
/// What the hub signs: this, a zero byte, then SHA-256 of the contents.
pub const SIGNING_CONTEXT: &[u8] = b"sentinel-audit-bundle-v1";
/// Largest bundle a reader takes (bytes).
pub const MAX_BUNDLE_BYTES: usize = 1 << 30;
/// Most items in one list of the contents (entries of one run, runs,
/// certificates, …).
pub const MAX_ITEMS: usize = 1_000_000;
/// Largest single item (an entry, a certificate, a list), in bytes.
pub const MAX_ITEM_BYTES: usize = 4 << 20;
/// Longest area text.
pub const MAX_AREA_BYTES: usize = 200;

/// One author's contiguous entries, `first_seq..=last_seq`, as signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub author: AuthorId,
    pub first_seq: u64,
    pub last_seq: u64,
    pub entries: Vec<Vec<u8>>,
}

/// What a bundle holds, and the hub signs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Contents {
    /// When the hub wrote it, Unix ms (the hub's clock).
    pub created_ms: u64,
    /// The selection: entries whose HLC time is in `from_ms..to_ms`.
    pub from_ms: u64,
    pub to_ms: u64,
    /// The area asked for (`W,S,E,N`), if one was.
    pub area: Option<String>,
    /// Certificates (DER) of the authors, of the hubs that signed
    /// checkpoints and revocations, and of the hub that signed the bundle.
    pub certificates: Vec<Vec<u8>>,
    /// CA-signed revocation lists.
    pub revocation_lists: Vec<Vec<u8>>,
    /// Hub-signed `revocation` entries.
    pub revocations: Vec<Vec<u8>>,
    /// Hub-signed `hub_checkpoint` entries.
    pub checkpoints: Vec<Vec<u8>>,
    pub runs: Vec<Run>,
}

/// A bundle as stored: the signed contents' exact bytes, the certificate
/// of the hub that signed them, the signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundle {
    pub contents: Vec<u8>,
    pub hub_certificate: Vec<u8>,
    pub signature: [u8; 64],
}

/// What the signature is over: [`SIGNING_CONTEXT`], `0x00`, SHA-256 of
/// the contents' bytes.
pub fn signed_message(contents: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(SIGNING_CONTEXT.len() + 33);
    m.extend_from_slice(SIGNING_CONTEXT);
    m.push(0);
    m.extend_from_slice(&Sha256::digest(contents));
    m
}

fn list(w: &mut Writer, items: &[Vec<u8>]) {
    w.array(items.len());
    for i in items {
        w.bytes(i);
    }
}

fn read_list(r: &mut Reader<'_>, field: &'static str) -> Result<Vec<Vec<u8>>, MessageError> {
    let n = r.array(field, 0, MAX_ITEMS)?;
    (0..n)
        .map(|_| r.bytes(field, 1, MAX_ITEM_BYTES).map(<[u8]>::to_vec))
        .collect()
}

impl Contents {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(1024);
        w.array(9);
        w.uint(self.created_ms);
        w.uint(self.from_ms);
        w.uint(self.to_ms);
        match &self.area {
            Some(a) => w.text(a),
            None => w.null(),
        }
        list(&mut w, &self.certificates);
        list(&mut w, &self.revocation_lists);
        list(&mut w, &self.revocations);
        list(&mut w, &self.checkpoints);
        w.array(self.runs.len());
        for run in &self.runs {
            w.array(4);
            w.bytes(run.author.as_bytes());
            w.uint(run.first_seq);
            w.uint(run.last_seq);
            list(&mut w, &run.entries);
        }
        w.out
    }

    pub fn decode(bytes: &[u8]) -> Result<Contents, MessageError> {
        let mut r = Reader::new(bytes);
        r.array("contents", 9, 9)?;
        let created_ms = r.uint("created_ms")?;
        let from_ms = r.uint("from_ms")?;
        let to_ms = r.uint("to_ms")?;
        let area = if r.peek_null() {
            r.null("area")?;
            None
        } else {
            Some(r.text("area", MAX_AREA_BYTES)?.to_owned())
        };
        let certificates = read_list(&mut r, "certificates")?;
        let revocation_lists = read_list(&mut r, "revocation_lists")?;
        let revocations = read_list(&mut r, "revocations")?;
        let checkpoints = read_list(&mut r, "checkpoints")?;
        let n = r.array("runs", 0, MAX_ITEMS)?;
        let mut runs = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            r.array("run", 4, 4)?;
            let author = AuthorId(r.fixed::<32>("run.author")?);
            let first_seq = r.uint("run.first_seq")?;
            let last_seq = r.uint("run.last_seq")?;
            let entries = read_list(&mut r, "run.entries")?;
            runs.push(Run {
                author,
                first_seq,
                last_seq,
                entries,
            });
        }
        if !r.is_empty() {
            return Err(MessageError::TrailingBytes { at: r.position() });
        }
        Ok(Contents {
            created_ms,
            from_ms,
            to_ms,
            area,
            certificates,
            revocation_lists,
            revocations,
            checkpoints,
            runs,
        })
    }
}

impl Bundle {
    /// Signs `contents` with the hub's key; `hub_certificate` is the DER
    /// certificate of that key.
    pub fn sign(contents: &Contents, hub_certificate: Vec<u8>, key: &SigningKey) -> Bundle {
        Bundle::sign_bytes(contents.encode(), hub_certificate, key)
    }

    /// Signs contents already encoded.
    pub fn sign_bytes(contents: Vec<u8>, hub_certificate: Vec<u8>, key: &SigningKey) -> Bundle {
        use ed25519_dalek::Signer;
        let signature = key.sign(&signed_message(&contents)).to_bytes();
        Bundle {
            contents,
            hub_certificate,
            signature,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(self.contents.len() + self.hub_certificate.len() + 128);
        w.array(5);
        w.text(MAGIC);
        w.uint(VERSION);
        w.bytes(&self.contents);
        w.bytes(&self.hub_certificate);
        w.bytes(&self.signature);
        w.out
    }

    /// Reads a bundle's shape: the magic, the version, three byte strings
    /// and nothing after them. The contents are decoded separately
    /// ([`Bundle::read_contents`]), so a signature over them is checked on
    /// their exact bytes.
    pub fn decode(bytes: &[u8]) -> Result<Bundle, MessageError> {
        if bytes.len() > MAX_BUNDLE_BYTES {
            return Err(MessageError::TooLarge {
                len: bytes.len(),
                max: MAX_BUNDLE_BYTES,
            });
        }
        let mut r = Reader::new(bytes);
        r.array("bundle", 5, 5)?;
        let at = r.position();
        if r.text("magic", MAGIC.len())? != MAGIC {
            return Err(MessageError::WrongType {
                at,
                field: "magic",
                expected: "the text \"sentinel-audit-bundle\"",
            });
        }
        let version = r.uint("version")?;
        if version != VERSION {
            return Err(MessageError::OutOfRange {
                field: "version",
                what: format!("{version}, this reader knows {VERSION}"),
            });
        }
        let contents = r.bytes("contents", 0, MAX_BUNDLE_BYTES)?.to_vec();
        let hub_certificate = r.bytes("hub_certificate", 1, MAX_ITEM_BYTES)?.to_vec();
        let signature = r.fixed::<64>("signature")?;
        if !r.is_empty() {
            return Err(MessageError::TrailingBytes { at: r.position() });
        }
        Ok(Bundle {
            contents,
            hub_certificate,
            signature,
        })
    }

    pub fn read_contents(&self) -> Result<Contents, MessageError> {
        Contents::decode(&self.contents)
    }
}
