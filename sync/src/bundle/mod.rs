//! Signed audit bundles (`docs/protocol.md` part 4): what a hub exports
//! for a time range (and area) so that anyone holding only the deployment
//! CA's certificate can check it — the entries as their authors signed
//! them, in per-author runs long enough to reach a head a hub checkpoint
//! attests, the certificates and revocations they are judged by, the
//! checkpoints, all signed by the hub. The hub writes bundles
//! (`sentinel-hub audit bundle`), nodes verify them
//! (`sentinel-node audit verify --bundle`); the format lives here because
//! node and hub never depend on each other.
//!
//! [`wire`] is the byte format (encode, decode, the digest signed);
//! [`verify`] checks a bundle against the CA and names every bad entry.
//! Pure: no IO, no clock.

pub mod verify;
pub mod wire;

pub use verify::{
    verify_bundle, BundleError, BundleProblem, BundleReport, CheckpointHead, RunReport,
};
pub use wire::{signed_message, Bundle, Contents, Run};
