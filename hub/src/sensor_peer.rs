//! A sensor in a sync session of its own: its readings go through the
//! hub's rules ([`crate::sensors::SensorRules`]) as batches of them are
//! applied, in seq order, each reading once — as readings pushed over
//! HTTP do. Readings a node relays never come here (the server starts a
//! [`SensorPeer`] only for a peer whose certificate is a sensor's).
//!
//! Never does: store readings (the session applied them already), or
//! evaluate a reading twice within one process.

use std::sync::Arc;

use sentinel_schema::AuthorId;

use crate::now_ms;
use crate::sensors::SensorRules;
use crate::store::PgStore;

/// The rules' follower of one sensor's session.
pub struct SensorPeer {
    author: AuthorId,
    rules: Arc<SensorRules>,
    store: PgStore,
    /// The sensor's seq up to which its readings have been through the
    /// rules (`u64::MAX`: the start failed, evaluate nothing); the lock
    /// orders the evaluations of successive batches.
    upto: Arc<tokio::sync::Mutex<u64>>,
}

impl SensorPeer {
    /// Starts from the sensor's head as the hub holds it now: readings
    /// stored before this session were evaluated (or relayed) already.
    pub async fn start(author: AuthorId, rules: Arc<SensorRules>, store: &PgStore) -> SensorPeer {
        let upto = match store.head(&author).await {
            Ok(head) => head.map_or(0, |h| h.seq),
            Err(e) => {
                tracing::error!(sensor = %author, "sensor rules: the sensor's head: {e}");
                u64::MAX
            }
        };
        SensorPeer {
            author,
            rules,
            store: store.clone(),
            upto: Arc::new(tokio::sync::Mutex::new(upto)),
        }
    }

    /// Evaluates, in a task, the readings stored since the last call.
    pub fn evaluate_new(&self) {
        let (author, rules, store, upto) = (
            self.author,
            self.rules.clone(),
            self.store.clone(),
            self.upto.clone(),
        );
        tokio::spawn(async move {
            let mut upto = upto.lock().await;
            if *upto == u64::MAX {
                return;
            }
            match store
                .entries_after(&author, *upto, usize::MAX, usize::MAX)
                .await
            {
                Ok(stored) => {
                    if let Some(last) = stored.last() {
                        *upto = last.seq();
                    }
                    rules.evaluate(&stored, now_ms()).await;
                }
                Err(e) => {
                    tracing::error!(sensor = %author, "sensor rules: reading its entries: {e}")
                }
            }
        });
    }
}
