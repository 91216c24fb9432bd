//! Hybrid logical clocks (Kulkarni et al.): wall-clock milliseconds plus a
//! counter, so entries order causally even when device clocks disagree.
//!
//! The clock never reads the system time: callers pass `now_ms`, which keeps
//! this crate free of IO and makes every test deterministic.

use crate::error::ClockError;

/// One HLC reading. Orders by wall time, then counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Hlc {
    /// Milliseconds since the Unix epoch (the largest seen, not necessarily
    /// this device's own clock).
    pub wall_ms: u64,
    /// Tie-breaker among readings with the same `wall_ms`.
    pub counter: u32,
}

impl Hlc {
    pub const fn new(wall_ms: u64, counter: u32) -> Self {
        Hlc { wall_ms, counter }
    }
}

impl std::fmt::Display for Hlc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.wall_ms, self.counter)
    }
}

/// A device's clock state: the last reading it issued or observed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Clock {
    last: Hlc,
    /// A remote reading further ahead of local time than this is refused,
    /// so one device with a wild clock cannot drag everyone into the future.
    max_drift_ms: u64,
}

/// The default tolerance for remote clocks: one day. Field devices go
/// weeks without NTP; a day keeps honest skew working while bounding abuse.
pub const DEFAULT_MAX_DRIFT_MS: u64 = 24 * 60 * 60 * 1000;

impl Clock {
    /// A clock that resumes after `last` (for example the HLC of the last
    /// entry in the local log), so readings never go backwards across
    /// restarts.
    pub fn resume(last: Hlc) -> Self {
        Clock {
            last,
            max_drift_ms: DEFAULT_MAX_DRIFT_MS,
        }
    }

    pub fn with_max_drift(mut self, max_drift_ms: u64) -> Self {
        self.max_drift_ms = max_drift_ms;
        self
    }

    pub fn last(&self) -> Hlc {
        self.last
    }

    /// A reading for a local event (send or write).
    pub fn tick(&mut self, now_ms: u64) -> Result<Hlc, ClockError> {
        let next = if now_ms > self.last.wall_ms {
            Hlc::new(now_ms, 0)
        } else {
            let counter = self
                .last
                .counter
                .checked_add(1)
                .ok_or(ClockError::CounterOverflow)?;
            Hlc::new(self.last.wall_ms, counter)
        };
        self.last = next;
        Ok(next)
    }

    /// Merge a remote reading on receive; returns the new local reading,
    /// which is after both the remote one and everything issued before.
    pub fn observe(&mut self, remote: Hlc, now_ms: u64) -> Result<Hlc, ClockError> {
        if remote.wall_ms > now_ms.saturating_add(self.max_drift_ms) {
            return Err(ClockError::TooFarAhead {
                remote_ms: remote.wall_ms,
                now_ms,
                max_drift_ms: self.max_drift_ms,
            });
        }
        let wall = now_ms.max(self.last.wall_ms).max(remote.wall_ms);
        let counter = if wall == self.last.wall_ms && wall == remote.wall_ms {
            self.last.counter.max(remote.counter).checked_add(1)
        } else if wall == self.last.wall_ms {
            self.last.counter.checked_add(1)
        } else if wall == remote.wall_ms {
            remote.counter.checked_add(1)
        } else {
            Some(0)
        }
        .ok_or(ClockError::CounterOverflow)?;
        self.last = Hlc::new(wall, counter);
        Ok(self.last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn tick_follows_wall_time_and_counts_within_a_millisecond() {
        let mut c = Clock::resume(Hlc::default());
        assert_eq!(c.tick(100), Ok(Hlc::new(100, 0)));
        assert_eq!(c.tick(100), Ok(Hlc::new(100, 1)));
        // The wall clock stepped back: the HLC does not.
        assert_eq!(c.tick(50), Ok(Hlc::new(100, 2)));
        assert_eq!(c.tick(101), Ok(Hlc::new(101, 0)));
    }

    #[test]
    fn observe_moves_past_remote() {
        let mut c = Clock::resume(Hlc::new(100, 3));
        assert_eq!(c.observe(Hlc::new(200, 7), 150), Ok(Hlc::new(200, 8)));
        assert_eq!(c.observe(Hlc::new(10, 0), 150), Ok(Hlc::new(200, 9)));
        assert_eq!(c.observe(Hlc::new(10, 0), 300), Ok(Hlc::new(300, 0)));
    }

    #[test]
    fn observe_refuses_wild_future_and_keeps_state() {
        let mut c = Clock::resume(Hlc::new(100, 0)).with_max_drift(1000);
        assert_eq!(
            c.observe(Hlc::new(5000, 0), 100),
            Err(ClockError::TooFarAhead {
                remote_ms: 5000,
                now_ms: 100,
                max_drift_ms: 1000
            })
        );
        assert_eq!(c.last(), Hlc::new(100, 0));
    }

    #[test]
    fn counter_overflow_is_an_error() {
        let mut c = Clock::resume(Hlc::new(100, u32::MAX));
        assert_eq!(c.tick(100), Err(ClockError::CounterOverflow));
    }

    proptest! {
        #[test]
        fn readings_strictly_increase(ops in prop::collection::vec((any::<bool>(), 0u64..1000, 0u64..1000, 0u32..5), 1..200)) {
            let mut c = Clock::resume(Hlc::default());
            let mut prev = c.last();
            for (local, now, rwall, rcount) in ops {
                let remote = Hlc::new(rwall, rcount);
                let next = if local { c.tick(now) } else { c.observe(remote, now) }.unwrap();
                prop_assert!(next > prev);
                if !local { prop_assert!(next > remote); }
                prop_assert!(next.wall_ms >= now);
                prev = next;
            }
        }
    }
}
