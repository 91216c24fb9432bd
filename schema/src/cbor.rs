//! The deterministic CBOR subset Sentinel's entries use.
//!
//! Headers are parsed by `ciborium-ll`; this module adds what a signed
//! format needs on top of a general CBOR parser: definite lengths only,
//! declared lengths checked against the bytes that remain *before* anything
//! is allocated, no tags, no maps, and a writer that always emits the
//! shortest head and 8-byte floats, so every value has exactly one encoding.
//! (ciborium's own encoder shrinks floats to 2 or 4 bytes when lossless,
//! which is valid CBOR but harder to specify for implementers in other
//! languages; we pin floats to 8 bytes.)

use ciborium_ll::{Decoder, Header};

use crate::error::DecodeError;

/// CBOR major types as the first three bits of a head.
const MAJOR_UINT: u8 = 0;
const MAJOR_BYTES: u8 = 2;
const MAJOR_TEXT: u8 = 3;
const MAJOR_ARRAY: u8 = 4;
/// `null` (major 7, simple value 22).
pub(crate) const NULL: u8 = 0xf6;
/// The head of an 8-byte IEEE 754 float (major 7, additional info 27).
const FLOAT64: u8 = 0xfb;

/// Appends deterministic CBOR to a byte vector. Writing cannot fail.
///
/// Public so that every Sentinel format (sync messages, revocation lists)
/// writes the same subset with the same code.
#[derive(Debug, Default)]
pub struct Writer {
    pub out: Vec<u8>,
}

/// Length of the shortest head for the argument `n`.
pub fn head_len(n: u64) -> usize {
    match n {
        0..=23 => 1,
        24..=0xff => 2,
        0x100..=0xffff => 3,
        0x1_0000..=0xffff_ffff => 5,
        _ => 9,
    }
}

impl Writer {
    pub fn with_capacity(n: usize) -> Self {
        Writer {
            out: Vec::with_capacity(n),
        }
    }

    fn head(&mut self, major: u8, n: u64) {
        let m = major << 5;
        match head_len(n) {
            1 => self.out.push(m | n as u8),
            2 => self.out.extend_from_slice(&[m | 24, n as u8]),
            3 => {
                self.out.push(m | 25);
                self.out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            5 => {
                self.out.push(m | 26);
                self.out.extend_from_slice(&(n as u32).to_be_bytes());
            }
            _ => {
                self.out.push(m | 27);
                self.out.extend_from_slice(&n.to_be_bytes());
            }
        }
    }

    /// The head of a byte string of `len` bytes, whose content the caller
    /// appends to `out` itself.
    pub fn bytes_head(&mut self, len: usize) {
        self.head(MAJOR_BYTES, len as u64);
    }

    pub fn uint(&mut self, n: u64) {
        self.head(MAJOR_UINT, n);
    }

    pub fn bytes(&mut self, b: &[u8]) {
        self.head(MAJOR_BYTES, b.len() as u64);
        self.out.extend_from_slice(b);
    }

    pub fn text(&mut self, s: &str) {
        self.head(MAJOR_TEXT, s.len() as u64);
        self.out.extend_from_slice(s.as_bytes());
    }

    pub fn array(&mut self, n: usize) {
        self.head(MAJOR_ARRAY, n as u64);
    }

    pub fn null(&mut self) {
        self.out.push(NULL);
    }

    pub fn f64(&mut self, x: f64) {
        self.out.push(FLOAT64);
        self.out.extend_from_slice(&x.to_be_bytes());
    }
}

/// Reads the deterministic subset from a borrowed buffer, never allocating
/// more than the bytes that are really there.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pos == self.buf.len()
    }

    fn remaining(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }

    /// Pulls one head. Indefinite lengths, tags and maps are refused here,
    /// so no caller ever sees them.
    fn header(&mut self) -> Result<Header, DecodeError> {
        let at = self.pos;
        let mut dec = Decoder::from(self.remaining());
        let h = dec.pull().map_err(|e| match e {
            ciborium_ll::Error::Io(_) => DecodeError::Truncated { at },
            ciborium_ll::Error::Syntax(_) => DecodeError::Malformed {
                at,
                what: "invalid CBOR head",
            },
        })?;
        self.pos += dec.offset();
        match h {
            Header::Bytes(None) | Header::Text(None) | Header::Array(None) | Header::Map(None) => {
                Err(DecodeError::Malformed {
                    at,
                    what: "indefinite length",
                })
            }
            Header::Tag(_) => Err(DecodeError::Malformed {
                at,
                what: "CBOR tags are not allowed",
            }),
            Header::Map(_) => Err(DecodeError::Malformed {
                at,
                what: "CBOR maps are not allowed",
            }),
            Header::Break => Err(DecodeError::Malformed {
                at,
                what: "unexpected break",
            }),
            h => Ok(h),
        }
    }

    fn take(&mut self, n: usize, at: usize) -> Result<&'a [u8], DecodeError> {
        // The declared length is checked against what is left before any
        // slice (or allocation by a caller) is made.
        if n > self.buf.len() - self.pos {
            return Err(DecodeError::Truncated { at });
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn unexpected(at: usize, field: &'static str, expected: &'static str) -> DecodeError {
        DecodeError::WrongType {
            at,
            field,
            expected,
        }
    }

    /// An array head with exactly `n` elements.
    pub fn array(&mut self, field: &'static str, n: usize) -> Result<(), DecodeError> {
        let at = self.pos;
        match self.header()? {
            Header::Array(Some(len)) if len == n => Ok(()),
            Header::Array(Some(len)) => Err(DecodeError::WrongLength {
                field,
                len,
                expected: n,
            }),
            _ => Err(Self::unexpected(at, field, "array")),
        }
    }

    /// An array head with `min..=max` elements; returns the count.
    pub(crate) fn array_len(
        &mut self,
        field: &'static str,
        min: usize,
        max: usize,
    ) -> Result<usize, DecodeError> {
        let at = self.pos;
        match self.header()? {
            Header::Array(Some(len)) if (min..=max).contains(&len) => Ok(len),
            Header::Array(Some(len)) => Err(DecodeError::OutOfRange {
                field,
                what: format!("{len} elements, allowed {min}..={max}"),
            }),
            _ => Err(Self::unexpected(at, field, "array")),
        }
    }

    pub fn uint(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        let at = self.pos;
        match self.header()? {
            Header::Positive(n) => Ok(n),
            _ => Err(Self::unexpected(at, field, "unsigned integer")),
        }
    }

    pub(crate) fn bytes(
        &mut self,
        field: &'static str,
        min: usize,
        max: usize,
    ) -> Result<&'a [u8], DecodeError> {
        let at = self.pos;
        match self.header()? {
            Header::Bytes(Some(len)) if (min..=max).contains(&len) => self.take(len, at),
            Header::Bytes(Some(len)) => Err(DecodeError::OutOfRange {
                field,
                what: format!("{len} bytes, allowed {min}..={max}"),
            }),
            _ => Err(Self::unexpected(at, field, "byte string")),
        }
    }

    pub(crate) fn fixed<const N: usize>(
        &mut self,
        field: &'static str,
    ) -> Result<[u8; N], DecodeError> {
        let b = self.bytes(field, N, N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(b);
        Ok(out)
    }

    /// `null` or a fixed-size byte string.
    pub(crate) fn opt_fixed<const N: usize>(
        &mut self,
        field: &'static str,
    ) -> Result<Option<[u8; N]>, DecodeError> {
        if self.remaining().first() == Some(&NULL) {
            self.pos += 1;
            return Ok(None);
        }
        self.fixed(field).map(Some)
    }

    pub(crate) fn text(
        &mut self,
        field: &'static str,
        min: usize,
        max: usize,
    ) -> Result<&'a str, DecodeError> {
        let at = self.pos;
        match self.header()? {
            Header::Text(Some(len)) if (min..=max).contains(&len) => {
                let b = self.take(len, at)?;
                std::str::from_utf8(b).map_err(|_| DecodeError::Malformed {
                    at,
                    what: "text is not UTF-8",
                })
            }
            Header::Text(Some(len)) => Err(DecodeError::OutOfRange {
                field,
                what: format!("{len} bytes of text, allowed {min}..={max}"),
            }),
            _ => Err(Self::unexpected(at, field, "text string")),
        }
    }

    /// `null` or a text string.
    pub(crate) fn opt_text(
        &mut self,
        field: &'static str,
        min: usize,
        max: usize,
    ) -> Result<Option<&'a str>, DecodeError> {
        if self.is_null() {
            self.pos += 1;
            return Ok(None);
        }
        self.text(field, min, max).map(Some)
    }

    pub(crate) fn is_null(&self) -> bool {
        self.remaining().first() == Some(&NULL)
    }

    pub(crate) fn skip_null(&mut self) {
        if self.is_null() {
            self.pos += 1;
        }
    }

    pub fn f64(&mut self, field: &'static str) -> Result<f64, DecodeError> {
        let at = self.pos;
        match self.header()? {
            Header::Float(x) => Ok(x),
            _ => Err(Self::unexpected(at, field, "float")),
        }
    }
}

/// Limits for [`check_well_formed`].
#[derive(Debug, Clone, Copy)]
pub struct WellFormedLimits {
    /// Largest input accepted, in bytes.
    pub max_bytes: usize,
    /// Deepest nesting of arrays and maps accepted.
    pub max_depth: usize,
}

impl Default for WellFormedLimits {
    fn default() -> Self {
        WellFormedLimits {
            max_bytes: crate::limits::MAX_FRAME_BYTES,
            max_depth: crate::limits::MAX_NESTING,
        }
    }
}

/// Walks any CBOR item without recursion or allocation and checks that it is
/// exactly one well-formed item within `limits`: size, nesting depth, and
/// every declared length against the bytes that remain.
///
/// Run it on a frame from outside before handing the frame to a serde
/// decoder (which may trust declared lengths or recurse): after this check
/// neither can be abused.
pub fn check_well_formed(buf: &[u8], limits: WellFormedLimits) -> Result<(), DecodeError> {
    if buf.len() > limits.max_bytes {
        return Err(DecodeError::TooLarge {
            len: buf.len(),
            max: limits.max_bytes,
        });
    }
    let mut r = Reader::new(buf);
    // Items still expected at each open level; `None` is an indefinite-length
    // container waiting for its break. The bottom level is the one top item.
    let mut stack: Vec<Option<u64>> = vec![Some(1)];
    while !stack.is_empty() {
        let at = r.pos;
        let mut dec = Decoder::from(r.remaining());
        let h = dec.pull().map_err(|e| match e {
            ciborium_ll::Error::Io(_) => DecodeError::Truncated { at },
            ciborium_ll::Error::Syntax(_) => DecodeError::Malformed {
                at,
                what: "invalid CBOR head",
            },
        })?;
        r.pos += dec.offset();
        let opened = match h {
            Header::Break => {
                if stack.last() != Some(&None) {
                    return Err(DecodeError::Malformed {
                        at,
                        what: "unexpected break",
                    });
                }
                stack.pop();
                None
            }
            // A tag takes no slot of its own: the item after it fills it.
            Header::Tag(_) => continue,
            Header::Bytes(Some(n)) | Header::Text(Some(n)) => {
                r.take(n, at)?;
                None
            }
            Header::Bytes(None) | Header::Text(None) => Some(None),
            Header::Array(n) => Some(n.map(|n| n as u64)),
            Header::Map(n) => Some(n.map(|n| (n as u64).saturating_mul(2))),
            Header::Positive(_) | Header::Negative(_) | Header::Float(_) | Header::Simple(_) => {
                None
            }
        };
        if !matches!(h, Header::Break) {
            if let Some(Some(n)) = stack.last_mut() {
                *n -= 1;
            }
        }
        if let Some(open) = opened {
            if stack.len() > limits.max_depth {
                return Err(DecodeError::TooDeep {
                    max: limits.max_depth,
                });
            }
            stack.push(open);
        }
        // Close every definite container that is now complete.
        while let Some(Some(0)) = stack.last() {
            stack.pop();
        }
    }
    if !r.is_empty() {
        return Err(DecodeError::TrailingBytes { at: r.pos });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wf(b: &[u8]) -> Result<(), DecodeError> {
        check_well_formed(b, WellFormedLimits::default())
    }

    #[test]
    fn writer_uses_shortest_heads() {
        let mut w = Writer::default();
        for n in [0u64, 23, 24, 255, 256, 65535, 65536, u32::MAX as u64 + 1] {
            w.uint(n);
        }
        assert_eq!(
            hex(&w.out),
            "00171818".to_string() + "18ff19010019ffff1a000100001b0000000100000000"
        );
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn well_formed_accepts_nested_items() {
        // [1, [2, h'00'], {"a": 1}, tag(1) 5, [_ 1, 2]]
        let b = [
            0x85, 0x01, 0x82, 0x02, 0x41, 0x00, 0xa1, 0x61, 0x61, 0x01, 0xc1, 0x05, 0x9f, 0x01,
            0x02, 0xff,
        ];
        wf(&b).unwrap();
    }

    #[test]
    fn well_formed_refuses_lies_and_depth() {
        // A byte string claiming 2^32 bytes in a 9-byte buffer.
        assert!(matches!(
            wf(&[0x5a, 0xff, 0xff, 0xff, 0xff, 0x00]),
            Err(DecodeError::Truncated { .. })
        ));
        // An array claiming more items than there are.
        assert!(matches!(
            wf(&[0x83, 0x01]),
            Err(DecodeError::Truncated { .. })
        ));
        // Nesting 65 deep.
        let deep = vec![0x81u8; 65];
        let mut deep = deep;
        deep.push(0x00);
        assert!(matches!(wf(&deep), Err(DecodeError::TooDeep { max: 64 })));
        let ok = {
            let mut v = vec![0x81u8; 63];
            v.push(0x00);
            v
        };
        wf(&ok).unwrap();
        assert!(matches!(
            wf(&[0x01, 0x02]),
            Err(DecodeError::TrailingBytes { at: 1 })
        ));
        assert!(matches!(wf(&[0xff]), Err(DecodeError::Malformed { .. })));
        assert!(matches!(
            wf(&vec![0u8; crate::limits::MAX_FRAME_BYTES + 1]),
            Err(DecodeError::TooLarge { .. })
        ));
    }
}
