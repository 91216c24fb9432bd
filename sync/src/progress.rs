//! How long a long sync has left: the rate of recent progress and the
//! time the rest takes at that rate, from samples of (done, total,
//! elapsed ms) the caller takes (entries from
//! [`crate::SessionEvent::Progress`] and [`crate::SessionEvent::Remaining`],
//! or bytes). For people watching a sync over a thin link; nothing in the
//! protocol depends on it.
//!
//! The rate is measured over the last [`Eta::WINDOW_MS`] of samples, so a
//! link that slows down shows it within that window, and an estimate is
//! given only once progress has been seen over some time: no rate is
//! better than a made-up one.
//!
//! Never does: IO, or read a clock (invariant 8): the caller says how
//! much time has passed.

use std::collections::VecDeque;

/// An estimate at the latest sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    pub done: u64,
    pub total: u64,
    /// Units (entries, bytes) per second over the recent window; `None`
    /// until progress was seen over some time.
    pub per_second: Option<f64>,
    /// Milliseconds left at that rate: `Some(0)` when done, `None` when
    /// the rate is not known (or is zero).
    pub remaining_ms: Option<u64>,
}

/// Samples of progress, and the estimate they give.
#[derive(Debug, Clone, Default)]
pub struct Eta {
    /// (elapsed ms, done), oldest first, elapsed ascending.
    samples: VecDeque<(u64, u64)>,
    total: u64,
}

impl Eta {
    /// How far back the rate looks.
    pub const WINDOW_MS: u64 = 30_000;
    /// Least time between the window's ends for a rate to be given.
    pub const MIN_SPAN_MS: u64 = 500;
    /// Most samples kept (older ones in the window are thinned out).
    const MAX_SAMPLES: usize = 256;

    pub fn new() -> Eta {
        Eta::default()
    }

    /// Records that `done` of `total` units are done `elapsed_ms` after
    /// some fixed start (the same start every call), and answers the
    /// estimate. A sample earlier than the last one, or with less done,
    /// starts the measurement over (a new session, a clock stepped back).
    pub fn sample(&mut self, done: u64, total: u64, elapsed_ms: u64) -> Estimate {
        if let Some(&(at, before)) = self.samples.back() {
            if elapsed_ms < at || done < before {
                self.samples.clear();
            }
        }
        self.total = total.max(done);
        self.samples.push_back((elapsed_ms, done));
        while let Some(&(at, _)) = self.samples.front() {
            let old = elapsed_ms.saturating_sub(at) > Eta::WINDOW_MS;
            if old && self.samples.len() > 2 {
                self.samples.pop_front();
            } else {
                break;
            }
        }
        if self.samples.len() > Eta::MAX_SAMPLES {
            // Keep the ends, drop every second sample in between.
            let kept: VecDeque<(u64, u64)> = self
                .samples
                .iter()
                .enumerate()
                .filter(|(i, _)| i % 2 == 0 || *i == self.samples.len() - 1)
                .map(|(_, s)| *s)
                .collect();
            self.samples = kept;
        }
        self.estimate()
    }

    /// The estimate at the latest sample (all zeros before the first).
    pub fn estimate(&self) -> Estimate {
        let Some(&(last_at, done)) = self.samples.back() else {
            return Estimate {
                done: 0,
                total: self.total,
                per_second: None,
                remaining_ms: None,
            };
        };
        let left = self.total.saturating_sub(done);
        let per_second = self.samples.front().and_then(|&(first_at, first)| {
            let span = last_at - first_at;
            (span >= Eta::MIN_SPAN_MS && done > first)
                .then(|| (done - first) as f64 * 1000.0 / span as f64)
        });
        let remaining_ms = if left == 0 {
            Some(0)
        } else {
            per_second.map(|r| {
                let ms = (left as f64 / r * 1000.0).ceil();
                if ms >= u64::MAX as f64 {
                    u64::MAX
                } else {
                    ms as u64
                }
            })
        };
        Estimate {
            done,
            total: self.total,
            per_second,
            remaining_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_steady_rate_gives_the_time_left_at_that_rate() {
        let mut eta = Eta::new();
        assert_eq!(eta.sample(0, 1_000, 0).remaining_ms, None);
        // 100 entries a second.
        let e = eta.sample(200, 1_000, 2_000);
        assert_eq!(e.per_second, Some(100.0));
        assert_eq!(e.remaining_ms, Some(8_000));
        let e = eta.sample(500, 1_000, 5_000);
        assert_eq!(e.remaining_ms, Some(5_000));
    }

    #[test]
    fn no_estimate_without_progress_over_time() {
        let mut eta = Eta::new();
        eta.sample(10, 100, 1_000);
        // Too short a span to say anything.
        assert_eq!(eta.sample(20, 100, 1_100).per_second, None);
        // Time passes, nothing moves: no rate, no estimate.
        let mut eta = Eta::new();
        eta.sample(10, 100, 0);
        let e = eta.sample(10, 100, 10_000);
        assert_eq!((e.per_second, e.remaining_ms), (None, None));
    }

    #[test]
    fn done_is_zero_left_whatever_the_rate() {
        let mut eta = Eta::new();
        assert_eq!(eta.sample(7, 7, 0).remaining_ms, Some(0));
        // More done than the total said (entries written meanwhile).
        let e = eta.sample(9, 7, 10);
        assert_eq!((e.total, e.remaining_ms), (9, Some(0)));
    }

    #[test]
    fn the_rate_follows_a_link_that_slows_down() {
        let mut eta = Eta::new();
        // A minute at 1,000/s, then a minute at 10/s.
        let mut done = 0;
        for s in 0..=60u64 {
            done = s * 1_000;
            eta.sample(done, 1_000_000, s * 1_000);
        }
        for s in 61..=120u64 {
            done += 10;
            eta.sample(done, 1_000_000, s * 1_000);
        }
        let e = eta.estimate();
        let rate = e.per_second.unwrap();
        assert!((rate - 10.0).abs() < 0.5, "{rate}");
        let left = (1_000_000 - done) as f64 / rate * 1000.0;
        assert_eq!(e.remaining_ms, Some(left.ceil() as u64));
    }

    #[test]
    fn going_backwards_starts_over() {
        let mut eta = Eta::new();
        eta.sample(0, 100, 0);
        eta.sample(50, 100, 1_000);
        // A new session's counters start at zero again.
        let e = eta.sample(5, 100, 2_000);
        assert_eq!(e.per_second, None);
        let e = eta.sample(15, 100, 3_000);
        assert_eq!(e.per_second, Some(10.0));
        assert_eq!(e.remaining_ms, Some(8_500));
    }

    #[test]
    fn many_samples_stay_bounded() {
        let mut eta = Eta::new();
        for ms in 0..100_000u64 {
            eta.sample(ms, 200_000, ms);
        }
        assert!(eta.samples.len() <= Eta::MAX_SAMPLES + 1);
        let e = eta.estimate();
        assert!((e.per_second.unwrap() - 1000.0).abs() < 1e-6);
        assert_eq!(e.remaining_ms, Some(100_001));
    }
}
