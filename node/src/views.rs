//! The views catching up with the log: all at once (`sync`, commands),
//! or a bounded step at a time from tasks that must not hold the node
//! for long (a session's event handler, `serve`'s log poller); and the
//! blobs a redaction erased removed from the blob folder once the views
//! naming them have committed (`crate::store::redactions`).

use std::time::{Duration, Instant};

use crate::node::{Node, NodeError};
use crate::store::project::Projected;

impl Node {
    /// Brings the views (and the R-tree, if loaded) up to date with the log.
    pub fn catch_up_views(&mut self) -> Result<Projected, NodeError> {
        let projected = self.store_mut().project_pending()?;
        self.after_projection(&projected);
        Ok(projected)
    }

    /// Moves the views toward the log for about `budget` at most (one
    /// chunk at least), for callers that hold the node's lock on a
    /// session's or a poller's task: a backlog of a million entries takes
    /// tens of seconds to project, and a session whose task holds the
    /// lock that long sends nothing, so its peer gives up on it. Answers
    /// what was projected and whether entries are still pending.
    pub fn catch_up_views_within(
        &mut self,
        budget: Duration,
    ) -> Result<(Projected, bool), NodeError> {
        let began = Instant::now();
        let mut total = Projected::default();
        loop {
            let Some(done) = self.store_mut().project_chunk()? else {
                return Ok((total, false));
            };
            self.after_projection(&done);
            total.merge(done);
            if began.elapsed() >= budget {
                return Ok((total, true));
            }
        }
    }

    /// Removes from the blob folder every blob a redaction erased whose
    /// file may still be there (and any unfinished download of it), each
    /// marked erased once it is gone; how many. Runs after the views'
    /// transaction commits and when the node opens, so a crash in between
    /// is healed by the next pass (removing a missing file does nothing).
    pub fn erase_redacted_blobs(&self) -> Result<usize, NodeError> {
        let pending = self.store().blobs_to_erase()?;
        for hash in &pending {
            self.media().remove(hash)?;
            self.store().mark_erased(hash)?;
        }
        Ok(pending.len())
    }

    /// [`Self::erase_redacted_blobs`] where a failure cannot be answered:
    /// logged, and left for the next pass.
    pub(crate) fn erase_redacted_quietly(&self) {
        if let Err(e) = self.erase_redacted_blobs() {
            tracing::warn!("erasing media a redaction erased failed (tried again later): {e}");
        }
    }
}
