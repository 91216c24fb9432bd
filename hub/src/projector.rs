//! The projector task: keeps the views following the log, and says which
//! events it changed.
//!
//! It projects once at start, then whenever the relay moves (a session
//! applied a batch, the own chain appended, a sensor push was stored);
//! changes that come while it works coalesce into one more run, so it
//! never queues. Each event a run wrote goes out on the changes channel,
//! once per run, for whoever follows it (the live feed:
//! `crate::api::live`). The work itself, in transactions that move views
//! and cursor together (invariant 6), is the store's
//! ([`PgStore::project_pending`]).
//!
//! After each run it deletes from the blob folder the blobs a redaction
//! erased ([`erase_redacted`]); a crash between the views' commit and the
//! deletion is healed by the next run, which finds them still listed.
//!
//! Never does: SQL, or render events for anyone.

use std::collections::BTreeSet;

use sentinel_schema::EventId;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

use sentinel_sync::blobs::MediaStore;

use crate::store::PgStore;

/// Runs the projector over `store` until `wake`'s sender is gone,
/// announcing on `changes` each event it wrote.
pub fn spawn(
    store: PgStore,
    mut wake: watch::Receiver<u64>,
    changes: broadcast::Sender<EventId>,
    media: Option<std::sync::Arc<MediaStore>>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            match store.project_pending().await {
                Ok(report) => {
                    // An event written by several chunks of one run is
                    // announced once; nobody listening is not an error.
                    let written: BTreeSet<EventId> = report.events.into_iter().collect();
                    if changes.receiver_count() > 0 {
                        for event in written {
                            let _ = changes.send(event);
                        }
                    }
                }
                Err(e) => tracing::error!("projector: {e}"),
            }
            if let Some(media) = &media {
                if let Err(e) = erase_redacted(&store, media).await {
                    tracing::error!("erasing redacted media: {e}");
                }
            }
            if wake.changed().await.is_err() {
                return;
            }
        }
    })
}

/// Deletes from the blob folder every blob a redaction erased that may
/// still be there, then records them erased. Returns how many.
pub async fn erase_redacted(
    store: &PgStore,
    media: &MediaStore,
) -> Result<usize, Box<dyn std::error::Error + Send + Sync>> {
    let pending = store.blobs_to_erase().await?;
    if pending.is_empty() {
        return Ok(0);
    }
    let folder = media.clone();
    let hashes = pending.clone();
    tokio::task::spawn_blocking(move || -> Result<(), sentinel_sync::blobs::MediaError> {
        for h in &hashes {
            folder.remove(h)?;
        }
        Ok(())
    })
    .await??;
    store.blobs_erased(&pending).await?;
    Ok(pending.len())
}
