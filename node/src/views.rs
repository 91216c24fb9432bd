//! The views catching up with the log: all at once (`sync`, commands),
//! or a bounded step at a time from tasks that must not hold the node
//! for long (a session's event handler, `serve`'s log poller).

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
}
