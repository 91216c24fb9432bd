//! Signed checkpoints: the hub periodically signs the heads it holds as
//! `hub_checkpoint` entries in its own chain (`docs/protocol.md` 1.x and
//! 2.11). They replicate like any entry; a node keeps the highest head each
//! hub attested per author and flags a hub that later presents less
//! (truncation) or another entry at an attested position (fork).
//!
//! A checkpoint is written only when some chain other than the hub's own
//! moved since the last one, so an idle hub signs nothing. The hub's own
//! head is attested too (its earlier checkpoints and, later, admin
//! actions), but a new checkpoint alone does not call for another.

use std::sync::Arc;
use std::time::Duration;

use sentinel_schema::{
    limits::MAX_CHECKPOINT_HEADS, AuthorId, Body, Head, Heads, HubCheckpoint, SignedEntry,
};

use crate::now_ms;
use crate::own::{OwnChain, OwnChainError};
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    OwnChain(#[from] OwnChainError),
}

/// Writes the hub's checkpoints into its own chain.
pub struct Checkpointer {
    own: Arc<OwnChain>,
    /// Digest of the heads other than the hub's own at the last checkpoint.
    last: Option<[u8; 32]>,
}

impl Checkpointer {
    pub fn new(own: Arc<OwnChain>) -> Checkpointer {
        Checkpointer { own, last: None }
    }

    /// Signs and appends checkpoint entries for the current heads, if any
    /// chain but the hub's own moved since the last call; returns them.
    /// More than [`MAX_CHECKPOINT_HEADS`] authors take several entries,
    /// each covering the next range of authors.
    pub async fn write_if_changed(
        &mut self,
        now_ms: u64,
    ) -> Result<Vec<SignedEntry>, CheckpointError> {
        let heads = self.own.store().heads().await?;
        let own = self.own.author();
        let others: Heads = heads
            .iter()
            .filter(|(a, _)| **a != own)
            .map(|(a, h)| (*a, *h))
            .collect();
        if others.n_authors() == 0 || self.last == Some(others.digest()) {
            return Ok(Vec::new());
        }
        let all: Vec<(AuthorId, Head)> = heads.iter().map(|(a, h)| (*a, *h)).collect();
        let bodies = all
            .chunks(MAX_CHECKPOINT_HEADS)
            .map(|chunk| {
                Body::HubCheckpoint(HubCheckpoint {
                    heads: chunk.to_vec(),
                })
            })
            .collect();
        let signed = self.own.append(bodies, None, now_ms).await?;
        self.last = Some(others.digest());
        Ok(signed)
    }

    /// Writes a checkpoint every `every` while the heads change. Failures
    /// are logged and retried at the next tick. (Appending wakes the sync
    /// server's live sessions through [`OwnChain::subscribe`].)
    pub async fn run(mut self, every: Duration) {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            if let Err(e) = self.write_if_changed(now_ms()).await {
                eprintln!("checkpoint: {e}");
            }
        }
    }
}
