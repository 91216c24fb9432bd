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

use std::time::Duration;

use sentinel_certs::Enrollment;
use sentinel_schema::{
    limits::MAX_CHECKPOINT_HEADS, verify_all, AuthorId, Body, Clock, Entry, Head, Heads,
    HubCheckpoint, SignedEntry,
};

use crate::store::{PgStore, StoreError};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the hub's clock: {0}")]
    Clock(String),
    #[error("signing the checkpoint: {0}")]
    Sign(String),
    #[error("the store did not append the checkpoint: {0}")]
    NotApplied(String),
}

/// Writes the hub's checkpoints.
pub struct Checkpointer {
    store: PgStore,
    enrollment: Enrollment,
    clock: Clock,
    /// Digest of the heads other than the hub's own at the last checkpoint.
    last: Option<[u8; 32]>,
}

impl Checkpointer {
    /// Resumes the hub's clock after its own newest entry, and stores the
    /// hub's certificate (a store holds the certificate of every author it
    /// holds entries of).
    pub async fn new(
        store: PgStore,
        enrollment: Enrollment,
        now_ms: u64,
    ) -> Result<Checkpointer, CheckpointError> {
        let own = enrollment.identity.author;
        store
            .add_certificates(&[(own, enrollment.cert_der.clone())], now_ms)
            .await?;
        let mut clock = Clock::resume(Default::default());
        if let Some(head) = store.head(&own).await? {
            if let Some(e) = store
                .entries_after(&own, head.seq - 1, 1, usize::MAX)
                .await?
                .first()
            {
                clock = Clock::resume(e.entry().hlc);
            }
        }
        Ok(Checkpointer {
            store,
            enrollment,
            clock,
            last: None,
        })
    }

    fn author(&self) -> AuthorId {
        self.enrollment.identity.author
    }

    /// Signs and appends checkpoint entries for the current heads, if any
    /// chain but the hub's own moved since the last call; returns them.
    /// More than [`MAX_CHECKPOINT_HEADS`] authors take several entries,
    /// each covering the next range of authors.
    pub async fn write_if_changed(
        &mut self,
        now_ms: u64,
    ) -> Result<Vec<SignedEntry>, CheckpointError> {
        let heads = self.store.heads().await?;
        let own = self.author();
        let others: Heads = heads
            .iter()
            .filter(|(a, _)| **a != own)
            .map(|(a, h)| (*a, *h))
            .collect();
        if others.n_authors() == 0 || self.last == Some(others.digest()) {
            return Ok(Vec::new());
        }
        let all: Vec<(AuthorId, Head)> = heads.iter().map(|(a, h)| (*a, *h)).collect();
        let mut prev = heads.get(&own);
        let mut signed = Vec::new();
        for chunk in all.chunks(MAX_CHECKPOINT_HEADS) {
            let entry = Entry {
                author: own,
                seq: prev.map_or(1, |h| h.seq + 1),
                prev: prev.map(|h| h.id),
                hlc: self
                    .clock
                    .tick(now_ms)
                    .map_err(|e| CheckpointError::Clock(e.to_string()))?,
                actor: None,
                body: Body::HubCheckpoint(HubCheckpoint {
                    heads: chunk.to_vec(),
                }),
            };
            let e = entry
                .sign(&self.enrollment.key)
                .map_err(|e| CheckpointError::Sign(e.to_string()))?;
            prev = Some(Head {
                seq: e.seq(),
                id: e.id(),
            });
            signed.push(e);
        }
        let (verified, bad) = verify_all(signed.clone());
        if let Some(r) = bad.first() {
            return Err(CheckpointError::Sign(r.error.to_string()));
        }
        let report = self.store.apply(verified, now_ms).await?;
        if report.applied != signed.len() {
            return Err(CheckpointError::NotApplied(format!("{report:?}")));
        }
        self.last = Some(others.digest());
        Ok(signed)
    }

    /// Writes a checkpoint every `every` while the heads change, calling
    /// `written` after each (the server wakes its live sessions with it).
    /// Failures are logged and retried at the next tick.
    pub async fn run(mut self, every: Duration, written: impl Fn(usize)) {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64);
            match self.write_if_changed(now).await {
                Ok(entries) if !entries.is_empty() => written(entries.len()),
                Ok(_) => {}
                Err(e) => eprintln!("checkpoint: {e}"),
            }
        }
    }
}
