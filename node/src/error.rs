//! Everything that can go wrong in a node's operations, as one error type
//! the library's callers (CLI, HTTP API, sync) match on.
//!
//! Never does: decide how an error is shown (the CLI prints it, the HTTP
//! API turns it into a problem).

use std::path::{Path, PathBuf};

use sentinel_schema::{ClockError, EventError, SignError};

use crate::media::MediaError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Event(#[from] EventError),
    #[error(transparent)]
    Media(#[from] MediaError),
    #[error("cannot sign the entry: {0}")]
    Sign(#[from] SignError),
    #[error(transparent)]
    Clock(#[from] ClockError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("a node already exists in {0}; refusing to overwrite it (choose another --data-dir)")]
    AlreadyInitialized(PathBuf),
    #[error("no node in {0}: run `sentinel-node init` first")]
    NotInitialized(PathBuf),
    #[error("key file {path}: {reason}")]
    KeyFile { path: PathBuf, reason: String },
    #[error("the key in {0} does not belong to this store")]
    WrongKey(PathBuf),
    #[error(transparent)]
    Certs(#[from] sentinel_certs::CertsError),
    #[error("this node already wrote {0} entries under its own key; enroll a fresh node (`init --data-dir NEW`, then `enroll`)")]
    EnrollAfterWrites(u64),
    #[error("the bundle is for a {0} identity; a node needs a node identity")]
    EnrollWrongRole(sentinel_schema::DeviceRole),
    #[error("this node is not enrolled: run `sentinel-node enroll BUNDLE` first")]
    NotEnrolled,
    #[error("the stored revocation list: {0}")]
    Revocations(String),
    #[error("sync: {0}")]
    Net(String),
    #[error("sensor rules: {0}")]
    Rules(String),
    #[error("no event matches {0:?}")]
    NoSuchEvent(String),
    #[error("{0:?} matches several events; give more of the id")]
    AmbiguousEvent(String),
    /// A blob a redaction erased (hex SHA-256): never accepted again.
    #[error("media {0} was erased by a redaction and is not accepted again")]
    Erased(String),
}

impl NodeError {
    pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> NodeError + '_ {
        move |source| NodeError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
