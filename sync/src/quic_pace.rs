//! One bandwidth cap per link, shared by everything this side sends to
//! that peer: the session's frames ([`crate::quic::drive_with`]) and the
//! blob bytes of its media connection ([`crate::quic_media`]). A [`Pace`]
//! is a cloneable handle on one [`TokenBucket`]; give the same handle to
//! both connections of a link.
//!
//! Entries come before media: while the session has frames waiting to be
//! written, media waits before it takes from the bucket, and media takes
//! in slices of about an eighth of a second of the cap, so an entry frame
//! never queues behind more than one slice of blob bytes.
//!
//! What is counted is what this side writes into its QUIC streams (frames
//! with their 4-byte length, chunk headers and blob bytes): QUIC's and
//! UDP's own headers and retransmissions come on top (a few per cent).
//! Writes are paced before they enter QUIC's buffers, so over any
//! stretch of time the bytes given to QUIC stay under `burst + rate × t`.
//!
//! Never does: decide how much may go when (the bucket does, without a
//! clock: `pace.rs`), or write anything itself.

use std::fmt;
use std::num::NonZeroU64;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sentinel_schema::limits::MAX_FRAME_BYTES;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::pace::TokenBucket;

/// Slices of blob bytes are at least this big (below it, chunk headers
/// and appends cost more than they are worth).
const MIN_MEDIA_SLICE: u64 = 1024;
/// Slices of blob bytes are at most the largest media chunk
/// (`quic_media::CHUNK_BYTES`; its senders clamp to it as well).
const MAX_MEDIA_SLICE: u64 = 64 * 1024;
/// Least burst [`Pace::new`] allows: a few packets, so a Hello and an Ack
/// never wait on a quiet link.
pub const MIN_BURST: u64 = 4096;
/// Smallest batch [`Pace::batch_bytes`] suggests.
const MIN_BATCH_BYTES: u64 = 4096;

/// A bandwidth cap for one link: cloneable, shared by its connections.
#[derive(Clone)]
pub struct Pace {
    inner: Arc<Inner>,
}

struct Inner {
    bucket: Mutex<TokenBucket>,
    /// Time zero of the bucket's clock.
    start: Instant,
    /// Session writers with frames waiting ([`EntriesWaiting`]).
    entries_waiting: AtomicUsize,
    /// Woken when no session writer waits any more.
    entries_done: Notify,
}

impl fmt::Debug for Pace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pace")
            .field("bytes_per_second", &self.bytes_per_second())
            .field("burst", &self.burst())
            .finish_non_exhaustive()
    }
}

impl Pace {
    /// A cap of `bytes_per_second`, with a burst of a quarter second of it
    /// (at least [`MIN_BURST`]).
    pub fn new(bytes_per_second: NonZeroU64) -> Pace {
        let quarter = (bytes_per_second.get() / 4).max(MIN_BURST);
        let burst = NonZeroU64::new(quarter).unwrap_or(NonZeroU64::MIN);
        Pace::with_burst(bytes_per_second, burst)
    }

    /// A cap of `bytes_per_second` that lets up to `burst` bytes go at once
    /// after a quiet spell.
    pub fn with_burst(bytes_per_second: NonZeroU64, burst: NonZeroU64) -> Pace {
        Pace {
            inner: Arc::new(Inner {
                bucket: Mutex::new(TokenBucket::new(bytes_per_second, burst)),
                start: Instant::now(),
                entries_waiting: AtomicUsize::new(0),
                entries_done: Notify::new(),
            }),
        }
    }

    /// The cap, in bytes per second.
    pub fn bytes_per_second(&self) -> u64 {
        self.with_bucket(|b| b.rate())
    }

    /// The burst, in bytes.
    pub fn burst(&self) -> u64 {
        self.with_bucket(|b| b.burst())
    }

    /// A batch size for sessions over this link: about two seconds of the
    /// cap, within 4 KiB ..= the largest frame. A batch is written whole
    /// before the peer hears of it while the peer's idle timeout runs: at
    /// the default 1 MiB, a batch takes longer than a 30 s timeout below
    /// 35 kB/s. [`crate::quic::drive_with`] lowers a paced session's
    /// [`crate::SessionConfig::max_batch_bytes`] to this.
    pub fn batch_bytes(&self) -> usize {
        let two_seconds = self.bytes_per_second().saturating_mul(2);
        let max = MAX_FRAME_BYTES as u64;
        usize::try_from(two_seconds.clamp(MIN_BATCH_BYTES.min(max), max)).unwrap_or(MAX_FRAME_BYTES)
    }

    fn with_bucket<T>(&self, f: impl FnOnce(&mut TokenBucket) -> T) -> T {
        // The bucket holds counters only: one a panicking holder left is
        // still usable.
        let mut bucket = match self.inner.bucket.lock() {
            Ok(b) => b,
            Err(poisoned) => poisoned.into_inner(),
        };
        f(&mut bucket)
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.inner.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Charges `bytes` and waits until the cap allows them.
    async fn take(&self, bytes: usize) {
        let now = self.now_ms();
        let wait = self.with_bucket(|b| b.take(bytes as u64, now));
        if wait > 0 {
            tokio::time::sleep(Duration::from_millis(wait)).await;
        }
    }

    /// Waits until the session's `bytes` may be written. Call it with an
    /// [`EntriesWaiting`] held, so media holds back meanwhile.
    pub async fn entries(&self, bytes: usize) {
        self.take(bytes).await;
    }

    /// Marks that a session has frames waiting; media holds back until
    /// every such mark is dropped.
    pub fn entries_waiting(&self) -> EntriesWaiting {
        self.inner.entries_waiting.fetch_add(1, Ordering::SeqCst);
        EntriesWaiting {
            pace: self.inner.clone(),
        }
    }

    /// How many blob bytes media takes at a time: an eighth of a second of
    /// the cap, within 1 KiB ..= one chunk.
    pub fn media_slice(&self) -> usize {
        let slice = (self.bytes_per_second() / 8).clamp(MIN_MEDIA_SLICE, MAX_MEDIA_SLICE);
        usize::try_from(slice).unwrap_or(1024)
    }

    /// Waits until no session has frames waiting, then until the cap
    /// allows `bytes` of media.
    pub async fn media(&self, bytes: usize) {
        loop {
            let done = self.inner.entries_done.notified();
            tokio::pin!(done);
            // Registered before the check, so a mark dropped in between
            // still wakes this waiter.
            done.as_mut().enable();
            if self.inner.entries_waiting.load(Ordering::SeqCst) == 0 {
                break;
            }
            done.await;
        }
        self.take(bytes).await;
    }
}

/// A session's frames are waiting to be written (see
/// [`Pace::entries_waiting`]); media holds back until it is dropped.
pub struct EntriesWaiting {
    pace: Arc<Inner>,
}

impl Drop for EntriesWaiting {
    fn drop(&mut self) {
        if self.pace.entries_waiting.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.pace.entries_done.notify_waiters();
        }
    }
}

impl fmt::Debug for EntriesWaiting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EntriesWaiting")
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Waker};

    use super::*;

    fn pace(rate: u64, burst: u64) -> Pace {
        Pace::with_burst(
            NonZeroU64::new(rate).unwrap(),
            NonZeroU64::new(burst).unwrap(),
        )
    }

    /// Polls once, without waiting: whether the future is done now.
    fn ready<F: Future>(f: std::pin::Pin<&mut F>) -> bool {
        f.poll(&mut Context::from_waker(Waker::noop())).is_ready()
    }

    // Polled by hand rather than awaited: what is asserted is whether a
    // wait is needed at all, never how long one took.
    #[tokio::test]
    async fn the_burst_goes_at_once_and_more_waits() {
        let p = pace(1_000, 1_000);
        assert!(ready(pin!(p.entries(1_000))));
        // Three seconds' worth past the burst.
        assert!(!ready(pin!(p.entries(3_000))));
    }

    #[tokio::test]
    async fn media_holds_back_while_entries_are_waiting() {
        let p = pace(1_000_000, 1_000_000);
        let mark = p.entries_waiting();
        let second = p.entries_waiting();
        let mut media = pin!(p.media(100));
        assert!(!ready(media.as_mut()));
        // Entries themselves are not held back.
        assert!(ready(pin!(p.entries(100))));
        drop(mark);
        assert!(!ready(media.as_mut()), "one writer still waits");
        drop(second);
        assert!(ready(media.as_mut()));
        // With nothing waiting, media goes at once.
        assert!(ready(pin!(p.media(100))));
    }

    #[tokio::test]
    async fn media_slices_are_an_eighth_of_a_second_within_bounds() {
        assert_eq!(pace(80_000, 1).media_slice(), 10_000);
        assert_eq!(pace(100, 1).media_slice(), 1024);
        assert_eq!(pace(100_000_000, 1).media_slice(), 64 * 1024);
        let p = Pace::new(NonZeroU64::new(1_000_000).unwrap());
        assert_eq!(p.burst(), 250_000);
        let thin = Pace::new(NonZeroU64::new(1_000).unwrap());
        assert_eq!(thin.burst(), MIN_BURST);
        assert_eq!(thin.batch_bytes(), 4096);
        assert_eq!(pace(10_000, 1).batch_bytes(), 20_000);
        assert_eq!(pace(100_000_000, 1).batch_bytes(), MAX_FRAME_BYTES);
    }
}
