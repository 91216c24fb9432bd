//! The deterministic CBOR subset of `docs/protocol.md` part 1 (1.2), as
//! sync messages use it: unsigned integers, byte and text strings, arrays;
//! definite lengths and shortest heads only.
//!
//! The schema crate keeps its own reader and writer private, and a message
//! decoder needs only these few items, so sync has this small copy rather
//! than widening the schema's API. The reader refuses any head that is not
//! the shortest for its value, so every message has exactly one encoding.

use crate::message_error::MessageError;

const MAJOR_UINT: u8 = 0;
pub(crate) const MAJOR_BYTES: u8 = 2;
const MAJOR_TEXT: u8 = 3;
pub(crate) const MAJOR_ARRAY: u8 = 4;
/// `null`: major type 7, simple value 22.
const NULL: u8 = 0xf6;

// The writer is schema's: every Sentinel format writes the same subset
// with the same code.
pub(crate) use sentinel_schema::cbor::{head_len, Writer};

/// Reads the subset from a borrowed buffer. Every declared length is
/// checked against the bytes that remain before anything is sliced.
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

    /// One head: its major type and argument. Refuses indefinite lengths,
    /// reserved values and heads longer than needed.
    fn head(&mut self, field: &'static str) -> Result<(u8, u64), MessageError> {
        let at = self.pos;
        let first = *self
            .buf
            .get(at)
            .ok_or(MessageError::Truncated { at, field })?;
        let (major, info) = (first >> 5, first & 0x1f);
        let n_extra = match info {
            0..=23 => 0,
            24 => 1,
            25 => 2,
            26 => 4,
            27 => 8,
            _ => {
                return Err(MessageError::WrongType {
                    at,
                    field,
                    expected: "a definite-length item",
                })
            }
        };
        let extra = self
            .buf
            .get(at + 1..at + 1 + n_extra)
            .ok_or(MessageError::Truncated { at, field })?;
        let value = if n_extra == 0 {
            u64::from(info)
        } else {
            extra.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b))
        };
        if head_len(value) != 1 + n_extra {
            return Err(MessageError::NonCanonical { at, field });
        }
        self.pos = at + 1 + n_extra;
        Ok((major, value))
    }

    fn expect(
        &mut self,
        major: u8,
        field: &'static str,
        expected: &'static str,
    ) -> Result<u64, MessageError> {
        let at = self.pos;
        let (m, value) = self.head(field)?;
        if m != major {
            return Err(MessageError::WrongType {
                at,
                field,
                expected,
            });
        }
        Ok(value)
    }

    /// The major type of the next item, without consuming it (`None` at
    /// the end of the input).
    pub(crate) fn peek_major(&self) -> Option<u8> {
        self.buf.get(self.pos).map(|b| b >> 5)
    }

    /// Whether the next item is `null` (`0xf6`).
    pub(crate) fn peek_null(&self) -> bool {
        self.buf.get(self.pos) == Some(&NULL)
    }

    /// Consumes a `null`.
    pub(crate) fn null(&mut self, field: &'static str) -> Result<(), MessageError> {
        let at = self.pos;
        if !self.peek_null() {
            return Err(MessageError::WrongType {
                at,
                field,
                expected: "null",
            });
        }
        self.pos += 1;
        Ok(())
    }

    pub(crate) fn uint(&mut self, field: &'static str) -> Result<u64, MessageError> {
        self.expect(MAJOR_UINT, field, "unsigned integer")
    }

    /// An array head with `min..=max` elements; returns the count.
    pub(crate) fn array(
        &mut self,
        field: &'static str,
        min: usize,
        max: usize,
    ) -> Result<usize, MessageError> {
        let n = self.expect(MAJOR_ARRAY, field, "array")?;
        in_range(field, n, min, max, "elements")
    }

    pub(crate) fn bytes(
        &mut self,
        field: &'static str,
        min: usize,
        max: usize,
    ) -> Result<&'a [u8], MessageError> {
        let at = self.pos;
        let n = self.expect(MAJOR_BYTES, field, "byte string")?;
        let n = in_range(field, n, min, max, "bytes")?;
        self.take(n, at, field)
    }

    pub(crate) fn fixed<const N: usize>(
        &mut self,
        field: &'static str,
    ) -> Result<[u8; N], MessageError> {
        let b = self.bytes(field, N, N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(b);
        Ok(out)
    }

    pub(crate) fn text(
        &mut self,
        field: &'static str,
        max: usize,
    ) -> Result<&'a str, MessageError> {
        let at = self.pos;
        let n = self.expect(MAJOR_TEXT, field, "text string")?;
        let n = in_range(field, n, 0, max, "bytes of text")?;
        let b = self.take(n, at, field)?;
        std::str::from_utf8(b).map_err(|_| MessageError::WrongType {
            at,
            field,
            expected: "UTF-8 text",
        })
    }

    /// Skips one item of the subset, whatever it holds (a field a newer
    /// peer added), checking every head on the way as the rest of the
    /// reader does. Every item consumes at least one byte, so a declared
    /// count larger than the input ends in [`MessageError::Truncated`].
    pub(crate) fn skip(&mut self, field: &'static str) -> Result<(), MessageError> {
        let mut pending: u64 = 1;
        while pending > 0 {
            pending -= 1;
            if self.peek_null() {
                self.pos += 1;
                continue;
            }
            let at = self.pos;
            let (major, value) = self.head(field)?;
            match major {
                MAJOR_UINT => {}
                MAJOR_BYTES | MAJOR_TEXT => {
                    let n = usize::try_from(value).unwrap_or(usize::MAX);
                    self.take(n, at, field)?;
                }
                MAJOR_ARRAY => pending = pending.saturating_add(value),
                _ => {
                    return Err(MessageError::WrongType {
                        at,
                        field,
                        expected: "an item of the subset",
                    })
                }
            }
        }
        Ok(())
    }

    fn take(&mut self, n: usize, at: usize, field: &'static str) -> Result<&'a [u8], MessageError> {
        if n > self.buf.len() - self.pos {
            return Err(MessageError::Truncated { at, field });
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
}

fn in_range(
    field: &'static str,
    n: u64,
    min: usize,
    max: usize,
    unit: &str,
) -> Result<usize, MessageError> {
    match usize::try_from(n) {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(MessageError::OutOfRange {
            field,
            what: format!("{n} {unit}, allowed {min}..={max}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_are_shortest_and_longer_ones_are_refused() {
        let mut w = Writer::default();
        for n in [0u64, 23, 24, 255, 256, 65_535, 65_536, 1 << 32] {
            w.uint(n);
        }
        let mut r = Reader::new(&w.out);
        for n in [0u64, 23, 24, 255, 256, 65_535, 65_536, 1 << 32] {
            assert_eq!(r.uint("n").unwrap(), n);
        }
        assert!(r.is_empty());
        // 1 written with a one-byte argument.
        assert_eq!(
            Reader::new(&[0x18, 0x01]).uint("n"),
            Err(MessageError::NonCanonical { at: 0, field: "n" })
        );
        // Indefinite-length array.
        assert!(matches!(
            Reader::new(&[0x9f]).array("a", 0, 1),
            Err(MessageError::WrongType { .. })
        ));
        // Skipping: one item each, nested arrays whole.
        let mut w = Writer::default();
        w.array(2);
        w.bytes(b"ab");
        w.array(1);
        w.text("x");
        w.uint(300);
        let mut r = Reader::new(&w.out);
        r.skip("f").unwrap();
        assert_eq!(r.uint("n").unwrap(), 300);
        assert!(r.is_empty());
        assert!(matches!(
            Reader::new(&[0x9a, 0xff, 0xff, 0xff, 0xff]).skip("f"),
            Err(MessageError::Truncated { .. })
        ));
        // A byte string that claims more than there is.
        assert_eq!(
            Reader::new(&[0x43, 0x01]).bytes("b", 0, 10),
            Err(MessageError::Truncated { at: 0, field: "b" })
        );
    }
}
