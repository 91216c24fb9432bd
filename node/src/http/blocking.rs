//! Running node work from async handlers: under the node's lock, on a
//! blocking thread, so SQLite and fsync never stall the async workers.
//!
//! Never does: hold the lock on an async worker.

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
        let mut guard = node
            .lock()
            .map_err(|_| Problem::unavailable(&"the node's lock is poisoned"))?;
        f(&mut guard)
    })
    .await
    .map_err(|e| Problem::unavailable(&e))?
}
