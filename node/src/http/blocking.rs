//! Running node work from async handlers: under the node's lock, on a
//! blocking thread, so SQLite and fsync never stall the async workers.
//!
//! A panic in the work fails that request only: it is caught under the
//! lock (so the lock is not poisoned) and the node put back in order
//! ([`crate::node::Node::recover`]); a lock poisoned elsewhere is taken
//! back the same way ([`crate::node::lock`]). Never a permanent 503.
//!
//! Never does: hold the lock on an async worker.

use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, Mutex};

use sentinel_http::Problem;

use crate::node::Node;

/// Runs `f` on the node, under its lock, on a blocking thread.
pub(crate) async fn on_node<T: Send + 'static>(
    node: &Arc<Mutex<Node>>,
    f: impl FnOnce(&mut Node) -> Result<T, Problem> + Send + 'static,
) -> Result<T, Problem> {
    let node = node.clone();
    tokio::task::spawn_blocking(move || {
        let mut guard = crate::node::lock(&node);
        match panic::catch_unwind(AssertUnwindSafe(|| f(&mut guard))) {
            Ok(done) => done,
            Err(_) => {
                guard.recover();
                Err(Problem::unavailable(
                    &"a request panicked; the node recovered and serves on",
                ))
            }
        }
    })
    .await
    .map_err(|e| Problem::unavailable(&e))?
}
