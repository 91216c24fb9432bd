//! The small CBOR subset revocation lists use: unsigned integers, byte
//! strings, text strings and arrays, definite lengths only.
//!
//! The writer always emits the shortest head, so a value has one encoding.
//! The reader accepts longer heads but callers re-encode what they read and
//! compare bytes, which refuses every non-canonical form in one place.
//! Every declared length is checked against the bytes that remain before
//! anything is allocated or sliced.

use crate::error::RevocationError;

const MAJOR_UINT: u8 = 0;
const MAJOR_BYTES: u8 = 2;
const MAJOR_TEXT: u8 = 3;
const MAJOR_ARRAY: u8 = 4;

// The writer is schema's: every Sentinel format writes the same subset
// with the same code.
pub(crate) use sentinel_schema::cbor::Writer;

/// Reads the subset back, refusing anything outside it.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

fn malformed(what: &'static str) -> RevocationError {
    RevocationError::Malformed(what)
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len()
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], RevocationError> {
        if n > self.buf.len() {
            return Err(malformed("truncated"));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn head(&mut self, want: u8, what: &'static str) -> Result<u64, RevocationError> {
        let [first] = self.take(1)? else {
            return Err(malformed("truncated"));
        };
        if first >> 5 != want {
            return Err(malformed(what));
        }
        let n = match first & 0x1f {
            n @ 0..=23 => u64::from(n),
            24 => u64::from(self.take(1)?[0]),
            25 => u64::from(u16::from_be_bytes(
                self.take(2)?
                    .try_into()
                    .map_err(|_| malformed("truncated"))?,
            )),
            26 => u64::from(u32::from_be_bytes(
                self.take(4)?
                    .try_into()
                    .map_err(|_| malformed("truncated"))?,
            )),
            27 => u64::from_be_bytes(
                self.take(8)?
                    .try_into()
                    .map_err(|_| malformed("truncated"))?,
            ),
            _ => return Err(malformed("indefinite length or reserved head")),
        };
        Ok(n)
    }

    /// A length that must fit in what remains.
    fn len(&mut self, want: u8, what: &'static str) -> Result<usize, RevocationError> {
        let n = self.head(want, what)?;
        usize::try_from(n)
            .ok()
            .filter(|n| *n <= self.buf.len())
            .ok_or(malformed("a length runs past the end"))
    }

    pub(crate) fn uint(&mut self, what: &'static str) -> Result<u64, RevocationError> {
        self.head(MAJOR_UINT, what)
    }

    pub(crate) fn bytes(&mut self, what: &'static str) -> Result<&'a [u8], RevocationError> {
        let n = self.len(MAJOR_BYTES, what)?;
        self.take(n)
    }

    pub(crate) fn text(&mut self, what: &'static str) -> Result<&'a str, RevocationError> {
        let n = self.len(MAJOR_TEXT, what)?;
        std::str::from_utf8(self.take(n)?).map_err(|_| malformed("text is not UTF-8"))
    }

    /// An array head; the count is returned unchecked against the bytes
    /// left, since elements have different sizes: callers bound it.
    pub(crate) fn array(&mut self, what: &'static str) -> Result<u64, RevocationError> {
        self.head(MAJOR_ARRAY, what)
    }

    pub(crate) fn finish(self) -> Result<(), RevocationError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(malformed("bytes follow the document"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_shortest_heads() {
        let mut w = Writer::default();
        w.array(4);
        w.uint(23);
        w.uint(24);
        w.bytes(&[1, 2]);
        w.text("hé");
        assert_eq!(
            w.out,
            [0x84, 0x17, 0x18, 0x18, 0x42, 1, 2, 0x63, b'h', 0xc3, 0xa9]
        );
        let mut r = Reader::new(&w.out);
        assert_eq!(r.array("a").unwrap(), 4);
        assert_eq!(r.uint("u").unwrap(), 23);
        assert_eq!(r.uint("u").unwrap(), 24);
        assert_eq!(r.bytes("b").unwrap(), &[1, 2]);
        assert_eq!(r.text("t").unwrap(), "hé");
        r.finish().unwrap();
    }

    #[test]
    fn refuses_lies_and_surprises() {
        // A byte string claiming more bytes than remain.
        assert!(Reader::new(&[0x5a, 0xff, 0xff, 0xff, 0xff])
            .bytes("b")
            .is_err());
        // Indefinite-length byte string.
        assert!(Reader::new(&[0x5f]).bytes("b").is_err());
        // Wrong major type.
        assert!(Reader::new(&[0x01]).text("t").is_err());
        // Invalid UTF-8.
        assert!(Reader::new(&[0x61, 0xff]).text("t").is_err());
        // Truncated head.
        assert!(Reader::new(&[0x19, 0x01]).uint("u").is_err());
        assert!(Reader::new(&[]).uint("u").is_err());
        let r = Reader::new(&[0x00]);
        assert!(r.finish().is_err());
    }
}
