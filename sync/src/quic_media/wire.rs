//! The media protocol's bytes (`docs/protocol.md` 2.10), without IO: the
//! stream type bytes, a blob request, the response header, the limits, and
//! the receiver's account of a blob's chunks ([`Receiving`]), which refuses
//! a chunk before its bytes are read. The QUIC files around it (`serve.rs`,
//! `fetch.rs`, `exchange.rs`) move these bytes; this file decides what
//! they mean.
//!
//! Never does: IO, or read a clock (the crate's tidy test checks it).

/// The application protocol of media connections.
pub const MEDIA_ALPN: &[u8] = b"sentinel-media/1";
/// First byte of a blob stream ('B').
pub const BLOB_STREAM: u8 = 0x42;
/// First and only byte of a done stream ('D'): the sender has fetched all
/// it wanted and opens no more blob streams.
pub const DONE_STREAM: u8 = 0x44;
/// Size of a blob request: type byte, hash, offset.
pub const REQUEST_BYTES: usize = 1 + 32 + 8;
/// Size of a response header: status, blob size.
pub const HEADER_BYTES: usize = 1 + 8;
/// Largest chunk a sender sends and a receiver accepts.
pub const CHUNK_BYTES: usize = 64 * 1024;
/// Stream reset code: the request was not a blob request.
pub(crate) const RESET_BAD_REQUEST: u32 = 1;
/// Stream reset code: the blob could not be read while sending it.
pub(crate) const RESET_READ_FAILED: u32 = 2;

/// Why a peer's answer on a blob stream is not taken: what it said does
/// not fit the request, or its chunks do not fit the blob.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// The peer does not hold the blob.
    #[error("the peer does not hold the blob")]
    NotFound,
    /// The peer refused the requested offset (past the blob's end).
    #[error("the peer refused offset {0}")]
    BadOffset(u64),
    /// The peer answered with a status this side does not know.
    #[error("the peer answered with unknown status {0}")]
    UnknownStatus(u8),
    /// The peer's size is not the one the entry announced.
    #[error("the peer has {peer} bytes, the entry announced {announced}")]
    SizeMismatch { peer: u64, announced: u64 },
    /// A chunk of 0 bytes or over [`CHUNK_BYTES`].
    #[error("the peer sent a chunk of {0} bytes (1..={CHUNK_BYTES})")]
    BadChunk(usize),
    /// More bytes than were missing.
    #[error("the peer sent {sent} bytes where {missing} were missing")]
    TooManyBytes { sent: u64, missing: u64 },
    /// The stream ended before the blob was complete (kept for resuming).
    #[error("the stream ended after {received} of {missing} missing bytes")]
    EndedEarly { received: u64, missing: u64 },
}

/// A request for a blob from `offset` to its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobRequest {
    pub hash: [u8; 32],
    pub offset: u64,
}

impl BlobRequest {
    pub fn encode(&self) -> [u8; REQUEST_BYTES] {
        let mut out = [0u8; REQUEST_BYTES];
        out[0] = BLOB_STREAM;
        out[1..33].copy_from_slice(&self.hash);
        out[33..].copy_from_slice(&self.offset.to_be_bytes());
        out
    }

    /// Parses a request; `None` if the stream type is not [`BLOB_STREAM`].
    pub fn decode(bytes: &[u8; REQUEST_BYTES]) -> Option<BlobRequest> {
        if bytes[0] != BLOB_STREAM {
            return None;
        }
        let mut hash = [0u8; 32];
        hash.copy_from_slice(&bytes[1..33]);
        let mut offset = [0u8; 8];
        offset.copy_from_slice(&bytes[33..]);
        Some(BlobRequest {
            hash,
            offset: u64::from_be_bytes(offset),
        })
    }
}

/// The answer to a [`BlobRequest`], before any chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Response {
    /// Chunks follow, from the requested offset to `size`.
    Sending { size: u64 },
    /// Not held; nothing follows.
    NotFound,
    /// The offset is past the blob's end; nothing follows.
    BadOffset,
}

impl Response {
    pub fn encode(&self) -> [u8; HEADER_BYTES] {
        let (status, size) = match *self {
            Response::Sending { size } => (0u8, size),
            Response::NotFound => (1, 0),
            Response::BadOffset => (2, 0),
        };
        let mut out = [0u8; HEADER_BYTES];
        out[0] = status;
        out[1..].copy_from_slice(&size.to_be_bytes());
        out
    }

    pub fn decode(bytes: &[u8; HEADER_BYTES]) -> Result<Response, WireError> {
        let mut size = [0u8; 8];
        size.copy_from_slice(&bytes[1..]);
        match bytes[0] {
            0 => Ok(Response::Sending {
                size: u64::from_be_bytes(size),
            }),
            1 => Ok(Response::NotFound),
            2 => Ok(Response::BadOffset),
            other => Err(WireError::UnknownStatus(other)),
        }
    }
}

/// The receiver's account of one blob's chunks: how many bytes were
/// missing and how many arrived. Refuses a chunk before its bytes are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Receiving {
    pub offset: u64,
    pub missing: u64,
    pub received: u64,
}

impl Receiving {
    /// Checks the peer's answer against the size the entry announced.
    pub fn start(response: Response, announced: u64, offset: u64) -> Result<Receiving, WireError> {
        match response {
            Response::NotFound => Err(WireError::NotFound),
            Response::BadOffset => Err(WireError::BadOffset(offset)),
            Response::Sending { size } if size != announced => Err(WireError::SizeMismatch {
                peer: size,
                announced,
            }),
            Response::Sending { size } => Ok(Receiving {
                offset,
                missing: size.saturating_sub(offset),
                received: 0,
            }),
        }
    }

    /// Takes a chunk header of `len` bytes; returns where the chunk goes.
    pub fn chunk(&mut self, len: usize) -> Result<u64, WireError> {
        if len == 0 || len > CHUNK_BYTES {
            return Err(WireError::BadChunk(len));
        }
        let sent = self.received + len as u64;
        if sent > self.missing {
            return Err(WireError::TooManyBytes {
                sent,
                missing: self.missing,
            });
        }
        let at = self.offset + self.received;
        self.received = sent;
        Ok(at)
    }

    /// Checks, once the stream has ended, that nothing is missing.
    pub fn end(&self) -> Result<(), WireError> {
        if self.received == self.missing {
            Ok(())
        } else {
            Err(WireError::EndedEarly {
                received: self.received,
                missing: self.missing,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_is_type_hash_offset() {
        let request = BlobRequest {
            hash: [0x11; 32],
            offset: 0x1_0000,
        };
        let bytes = request.encode();
        assert_eq!(
            hex::encode(bytes),
            format!("42{}0000000000010000", "11".repeat(32))
        );
        assert_eq!(BlobRequest::decode(&bytes), Some(request));
    }

    #[test]
    fn a_session_stream_is_not_a_blob_request() {
        // A session stream starts with its first frame's 4-byte length.
        let mut bytes = [0u8; REQUEST_BYTES];
        bytes[..4].copy_from_slice(&42u32.to_be_bytes());
        assert_eq!(BlobRequest::decode(&bytes), None);
    }

    #[test]
    fn response_headers_round_trip_and_unknown_status_is_refused() {
        let sending = Response::Sending { size: 300_000 };
        assert_eq!(hex::encode(sending.encode()), "0000000000000493e0");
        for r in [sending, Response::NotFound, Response::BadOffset] {
            assert_eq!(Response::decode(&r.encode()).unwrap(), r);
        }
        assert_eq!(
            hex::encode(Response::NotFound.encode()),
            "010000000000000000"
        );
        assert!(matches!(
            Response::decode(&[9, 0, 0, 0, 0, 0, 0, 0, 0]),
            Err(WireError::UnknownStatus(9))
        ));
    }

    #[test]
    fn the_receiver_takes_exactly_the_missing_bytes() {
        let mut r = Receiving::start(Response::Sending { size: 100_000 }, 100_000, 30_000).unwrap();
        assert_eq!(r.missing, 70_000);
        assert_eq!(r.chunk(CHUNK_BYTES).unwrap(), 30_000);
        assert!(
            matches!(r.end(), Err(WireError::EndedEarly { received, missing: 70_000 }) if received == CHUNK_BYTES as u64)
        );
        assert!(matches!(
            r.chunk(70_000 - CHUNK_BYTES + 1),
            Err(WireError::TooManyBytes {
                sent: 70_001,
                missing: 70_000
            })
        ));
        assert_eq!(
            r.chunk(70_000 - CHUNK_BYTES).unwrap(),
            30_000 + CHUNK_BYTES as u64
        );
        r.end().unwrap();
    }

    #[test]
    fn chunks_are_bounded_before_they_are_read() {
        let mut r = Receiving::start(Response::Sending { size: 1 << 20 }, 1 << 20, 0).unwrap();
        assert!(matches!(r.chunk(0), Err(WireError::BadChunk(0))));
        assert!(matches!(
            r.chunk(CHUNK_BYTES + 1),
            Err(WireError::BadChunk(n)) if n == CHUNK_BYTES + 1
        ));
        assert_eq!(r.received, 0);
    }

    #[test]
    fn the_peer_cannot_change_the_announced_size() {
        assert!(matches!(
            Receiving::start(Response::Sending { size: 11 }, 10, 0),
            Err(WireError::SizeMismatch {
                peer: 11,
                announced: 10
            })
        ));
        assert!(matches!(
            Receiving::start(Response::NotFound, 10, 0),
            Err(WireError::NotFound)
        ));
        assert!(matches!(
            Receiving::start(Response::BadOffset, 10, 4),
            Err(WireError::BadOffset(4))
        ));
        // A resumed download that already holds every byte expects none.
        let r = Receiving::start(Response::Sending { size: 10 }, 10, 10).unwrap();
        r.end().unwrap();
    }

    #[test]
    fn the_vectors_of_protocol_md_are_what_the_code_sends() {
        let doc: String = include_str!("../../../docs/protocol.md")
            .split("### 2.10 Media streams")
            .nth(1)
            .expect("section 2.10")
            .split_whitespace()
            .collect();
        let request = BlobRequest {
            hash: [0x11; 32],
            offset: 65_536,
        };
        for bytes in [
            request.encode().to_vec(),
            Response::Sending { size: 300_000 }.encode().to_vec(),
            Response::NotFound.encode().to_vec(),
            (CHUNK_BYTES as u32).to_be_bytes().to_vec(),
        ] {
            let hex = hex::encode(bytes);
            assert!(doc.contains(&hex), "{hex} is not in protocol.md 2.10");
        }
    }
}
