//! Frame encodings (`docs/protocol.md` 2.12): a frame may travel DEFLATE-
//! compressed inside an `Encoded` envelope, `[8, encoding, length, data]`,
//! once both peers' `Hello`s said they accept that encoding.
//!
//! Compression is a transport encoding of a whole frame and nothing more:
//! the envelope opens to exactly the bytes of the plain frame, whose
//! entries are the exact bytes their authors signed (invariant 1). Only
//! `Entries` frames are sealed (the entries of one author share the
//! author key, certificate references, Automerge column headers and field
//! names); the rest is small or random and goes plain.
//!
//! Opening is bounded: the declared length is checked against
//! [`MAX_MESSAGE_BYTES`] before anything is allocated, exactly that much is
//! allocated, and a stream that would inflate past it is refused
//! ([`MessageError::TooLarge`], closing with `too_large`): a decompression
//! bomb costs the receiver at most one frame's worth of memory.
//!
//! Never does: IO, or decide what a frame means ([`crate::message`] does).

use std::borrow::Cow;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use crate::cbor::{Reader, Writer};
use crate::message::{kind, FrameEncodings, MessageError, MAX_MESSAGE_BYTES};

/// The wire number of the DEFLATE encoding (RFC 1951, raw: no zlib or
/// gzip wrapper; integrity comes from TLS, and the frame inside is
/// checked like any other).
pub const ENCODING_DEFLATE: u64 = 1;

/// The DEFLATE level a sender uses: the fastest. On batches of incident
/// reports it keeps nearly all of what level 6 saves (the entries' random
/// parts, signatures and hashes, do not compress at any level) at a
/// fraction of the time.
pub const DEFLATE_LEVEL: u32 = 1;

/// Frames smaller than this are sent plain: the envelope and the DEFLATE
/// block header would eat most of what could be saved.
pub const MIN_SEALED_BYTES: usize = 256;

/// Seals frames for one session's sending side, keeping one compressor
/// (its window and tables) across frames.
pub struct Sealer {
    deflate: Compress,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer").finish_non_exhaustive()
    }
}

impl Sealer {
    /// A sealer that compresses with DEFLATE at [`DEFLATE_LEVEL`].
    pub fn deflate() -> Sealer {
        Sealer {
            deflate: Compress::new(Compression::new(DEFLATE_LEVEL), false),
        }
    }

    /// `frame` in an `Encoded` envelope if that is smaller, else `frame`
    /// as it is. Each frame is compressed on its own (the compressor is
    /// reset): a receiver opens each frame without the ones before it.
    pub fn seal(&mut self, frame: Vec<u8>) -> Vec<u8> {
        if frame.len() < MIN_SEALED_BYTES || frame.get(..2) != Some(&ENTRIES_HEAD[..]) {
            return frame;
        }
        self.deflate.reset();
        // Envelope head (≤ 1 + 1 + 1 + 9 + 9 bytes) then the stream; a
        // stream longer than the frame is not worth sending.
        let mut w = Writer::with_capacity(frame.len());
        w.array(4);
        w.uint(kind::ENCODED);
        w.uint(ENCODING_DEFLATE);
        w.uint(frame.len() as u64);
        let mut data = Vec::with_capacity(frame.len());
        match self
            .deflate
            .compress_vec(&frame, &mut data, FlushCompress::Finish)
        {
            // Stream end: everything fitted in less than the frame.
            Ok(Status::StreamEnd) => {}
            // Out of room (the data does not compress) or an error: plain.
            _ => return frame,
        }
        w.bytes(&data);
        if w.out.len() >= frame.len() {
            return frame;
        }
        w.out
    }
}

/// The first bytes of every `Entries` frame: `array(3)`, type 3.
const ENTRIES_HEAD: [u8; 2] = [0x83, kind::ENTRIES as u8];

/// The plain frame inside `frame`: `frame` itself when it is not an
/// `Encoded` envelope, else the envelope opened, if `accepted` (what this
/// side announced in its `Hello`) holds its encoding. Refuses an envelope
/// this side did not accept, a declared length beyond
/// [`MAX_MESSAGE_BYTES`] or a stream that inflates past the length it
/// declares ([`MessageError::TooLarge`], before allocating more than the
/// declared length), and a stream that is corrupt, ends early, or has
/// bytes after its end.
pub fn open(frame: &[u8], accepted: FrameEncodings) -> Result<Cow<'_, [u8]>, MessageError> {
    // `[8, …]`: array(4), then type 8. Anything else is a plain frame for
    // `message::decode` to judge.
    if frame.get(..2) != Some(&[0x84, kind::ENCODED as u8][..]) {
        return Ok(Cow::Borrowed(frame));
    }
    if frame.len() > MAX_MESSAGE_BYTES {
        return Err(MessageError::TooLarge {
            len: frame.len(),
            max: MAX_MESSAGE_BYTES,
        });
    }
    let mut r = Reader::new(frame);
    r.array("encoded", 4, 4)?;
    r.uint("type")?;
    let encoding = r.uint("encoding")?;
    if encoding != ENCODING_DEFLATE || !accepted.contains(encoding) {
        return Err(unannounced(encoding));
    }
    let length = r.uint("length")?;
    let length = usize::try_from(length)
        .ok()
        .filter(|n| *n <= MAX_MESSAGE_BYTES)
        .ok_or(MessageError::TooLarge {
            len: usize::try_from(length).unwrap_or(usize::MAX),
            max: MAX_MESSAGE_BYTES,
        })?;
    if length == 0 {
        return Err(MessageError::OutOfRange {
            field: "length",
            what: "an empty frame".to_owned(),
        });
    }
    let data = r.bytes("data", 1, MAX_MESSAGE_BYTES)?;
    if !r.is_empty() {
        return Err(MessageError::TrailingBytes { at: r.position() });
    }
    inflate(data, length).map(Cow::Owned)
}

/// The encoding `frame` declares when it is an `Encoded` envelope (read
/// from its header only; [`open`] checks the rest).
pub fn encoding_of(frame: &[u8]) -> Option<u64> {
    if frame.get(..2) != Some(&[0x84, kind::ENCODED as u8][..]) {
        return None;
    }
    let mut r = Reader::new(frame);
    r.array("encoded", 4, 4).ok()?;
    r.uint("type").ok()?;
    r.uint("encoding").ok()
}

/// The refusal of an envelope whose encoding this side did not announce.
pub fn unannounced(encoding: u64) -> MessageError {
    MessageError::OutOfRange {
        field: "encoding",
        what: format!("encoding {encoding} was not announced by this side"),
    }
}

/// Inflates `data` into exactly `length` bytes, never holding more.
fn inflate(data: &[u8], length: usize) -> Result<Vec<u8>, MessageError> {
    let corrupt = |what: String| MessageError::OutOfRange {
        field: "data",
        what,
    };
    let mut inflater = Decompress::new(false);
    // `decompress_vec` writes into the spare capacity only: the buffer
    // never grows past `length`.
    let mut out = Vec::with_capacity(length);
    let status = inflater
        .decompress_vec(data, &mut out, FlushDecompress::Finish)
        .map_err(|e| corrupt(format!("not a DEFLATE stream: {e}")))?;
    let used = inflater.total_in() as usize;
    match status {
        Status::StreamEnd if out.len() == length && used == data.len() => Ok(out),
        Status::StreamEnd if out.len() != length => Err(corrupt(format!(
            "inflates to {} bytes, the envelope says {length}",
            out.len()
        ))),
        Status::StreamEnd => Err(corrupt(format!(
            "{} bytes after the end of the stream",
            data.len() - used
        ))),
        // Not at its end with the buffer full: does it hold more?
        _ if out.len() == length => {
            let mut probe = [0u8; 1];
            let before = inflater.total_out();
            let more = inflater
                .decompress(&data[used..], &mut probe, FlushDecompress::Finish)
                .map(|_| inflater.total_out() > before)
                .unwrap_or(false);
            if more {
                Err(MessageError::TooLarge {
                    len: length + 1,
                    max: length,
                })
            } else {
                Err(corrupt("the stream does not end".to_owned()))
            }
        }
        _ => Err(corrupt(format!(
            "the stream ends early, after {} of {length} bytes",
            out.len()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{decode, encode_entries, Frame, Message};

    fn batch(n: usize) -> Vec<u8> {
        let entries: Vec<Vec<u8>> = (0..n)
            .map(|i| format!("entry {i} of an author, the same field names").into_bytes())
            .collect();
        encode_entries(5, entries.iter().map(Vec::as_slice))
    }

    #[test]
    fn a_sealed_batch_opens_to_the_same_bytes() {
        let frame = batch(100);
        let sealed = Sealer::deflate().seal(frame.clone());
        assert!(sealed.len() < frame.len() / 3, "{}", sealed.len());
        let opened = open(&sealed, FrameEncodings::DEFLATE).unwrap();
        assert_eq!(&*opened, &frame[..]);
        assert!(matches!(
            decode(&opened),
            Ok(Frame {
                number: 5,
                message: Message::Entries(_)
            })
        ));
        // Not announced: refused.
        assert!(open(&sealed, FrameEncodings::NONE).is_err());
    }

    #[test]
    fn small_and_other_frames_stay_plain() {
        let ack = Message::Ack(vec![]).encode(3);
        assert_eq!(Sealer::deflate().seal(ack.clone()), ack);
        let small = batch(1);
        assert_eq!(Sealer::deflate().seal(small.clone()), small);
        let plain = open(&small, FrameEncodings::DEFLATE).unwrap();
        assert!(matches!(plain, Cow::Borrowed(_)));
    }

    #[test]
    fn incompressible_batches_stay_plain() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let random: Vec<u8> = (0..4000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let frame = encode_entries(1, std::iter::once(random.as_slice()));
        assert_eq!(Sealer::deflate().seal(frame.clone()), frame);
    }
}
