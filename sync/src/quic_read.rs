//! Reading a sync stream: frames taken off the QUIC stream as they come,
//! each made ready for the session ([`Session::prepare`]: decoding, and a
//! batch's signatures) while the frames before it are handled, so batch
//! n+1 is verified on another core while batch n commits. IO (named in
//! `sync/tests/tidy.rs`). The driver's errors live here, with the frame
//! limit the reader enforces; `quic` re-exports both.

use std::net::SocketAddr;

use quinn::RecvStream;
use sentinel_schema::limits::MAX_FRAME_BYTES;
use tokio::sync::mpsc;

use crate::session::{Prepared, Session, SessionError};

/// Largest frame on the wire: a message plus its frame header.
pub const MAX_WIRE_FRAME: usize = MAX_FRAME_BYTES + 64;

/// What can end a driven session other than the session itself (re-exported
/// as `quic::DriverError`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DriverError {
    #[error("network: {0}")]
    Io(#[from] std::io::Error),
    #[error("TLS configuration: {0}")]
    Tls(String),
    #[error("connecting to {addr}: {reason}")]
    Connect { addr: SocketAddr, reason: String },
    #[error("connection: {0}")]
    Connection(#[from] quinn::ConnectionError),
    #[error("the peer's certificate: {0}")]
    PeerIdentity(String),
    #[error("session: {0}")]
    Session(#[from] SessionError),
    #[error("the peer sent a frame of {0} bytes (limit {MAX_WIRE_FRAME})")]
    FrameTooLarge(usize),
}

pub(crate) fn read_error(e: quinn::ReadError) -> DriverError {
    match e {
        quinn::ReadError::ConnectionLost(c) => DriverError::Connection(c),
        e => DriverError::Io(e.into()),
    }
}

/// Reads frames until the stream ends or breaks; a frame over the limit
/// ends the reader before its bytes are read.
pub(crate) async fn read_frames(
    mut recv: RecvStream,
    tx: mpsc::Sender<Result<Pending, DriverError>>,
) {
    loop {
        let mut len = [0u8; 4];
        match recv.read_exact(&mut len).await {
            Ok(()) => {}
            Err(quinn::ReadExactError::FinishedEarly(_)) => return,
            // The peer closed the connection cleanly after its last frame.
            Err(quinn::ReadExactError::ReadError(quinn::ReadError::ConnectionLost(
                quinn::ConnectionError::ApplicationClosed(_)
                | quinn::ConnectionError::LocallyClosed,
            ))) => return,
            Err(quinn::ReadExactError::ReadError(e)) => {
                let _ = tx.send(Err(read_error(e))).await;
                return;
            }
        }
        let n = u32::from_be_bytes(len) as usize;
        if n > MAX_WIRE_FRAME {
            let _ = tx.send(Err(DriverError::FrameTooLarge(n))).await;
            return;
        }
        let mut frame = vec![0u8; n];
        if let Err(e) = recv.read_exact(&mut frame).await {
            let err = match e {
                quinn::ReadExactError::FinishedEarly(_) => DriverError::Io(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "stream ended inside a frame",
                )),
                quinn::ReadExactError::ReadError(e) => read_error(e),
            };
            let _ = tx.send(Err(err)).await;
            return;
        }
        if tx.send(Ok(Pending::start(frame))).await.is_err() {
            return;
        }
    }
}

/// Frames of at least this many bytes are prepared on a blocking thread;
/// smaller ones (acknowledgements, heads) in the reader, at once.
const PREPARE_APART: usize = 16 * 1024;

/// A frame read from the stream, being made ready for the session
/// ([`Session::prepare`]: decoding, and a batch's signatures) while the
/// frames before it are handled: batch n+1 is verified on another core
/// while batch n commits. Frames still reach the session in order.
pub(crate) enum Pending {
    Ready(Prepared),
    Preparing(tokio::task::JoinHandle<Prepared>),
}

impl Pending {
    fn start(frame: Vec<u8>) -> Pending {
        if frame.len() < PREPARE_APART {
            return Pending::Ready(Session::prepare(&frame));
        }
        Pending::Preparing(tokio::task::spawn_blocking(move || {
            Session::prepare(&frame)
        }))
    }

    pub(crate) async fn ready(self) -> Result<Prepared, DriverError> {
        match self {
            Pending::Ready(p) => Ok(p),
            Pending::Preparing(task) => task.await.map_err(|e| {
                DriverError::Io(std::io::Error::other(format!("preparing a frame: {e}")))
            }),
        }
    }
}
