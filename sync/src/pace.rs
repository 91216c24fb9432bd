//! A bandwidth cap without a clock: a token bucket that is told how many
//! bytes are about to go and what time it is, and answers how long the
//! sender must wait first. The QUIC side ([`crate::quic_pace`]) keeps the
//! time and does the waiting; this file only counts.
//!
//! The bucket holds credit of at most `burst` bytes and earns `rate`
//! bytes a second. Taking bytes always succeeds and may leave the bucket
//! in debt; the answer is how long until the debt is paid. A sender that
//! waits that long before it sends (or before it sends anything more)
//! never moves more than `burst + rate × t` bytes in any `t` seconds.
//!
//! Never does: IO, or read a clock (invariant 8): time is an argument.

use std::num::NonZeroU64;

/// Credit is counted in thousandths of a byte, so that a rate in bytes
/// per second earns a whole number of units every millisecond.
const UNITS_PER_BYTE: i128 = 1000;

/// A token bucket over bytes, driven by the caller's time in ms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenBucket {
    /// Bytes earned per second.
    rate: u64,
    /// Most credit kept, in bytes.
    burst: u64,
    /// Credit in thousandths of a byte; negative is debt.
    credit: i128,
    /// When the credit was last brought up to date.
    last_ms: Option<u64>,
}

impl TokenBucket {
    /// A full bucket earning `rate` bytes a second and keeping at most
    /// `burst` bytes of credit.
    pub fn new(rate: NonZeroU64, burst: NonZeroU64) -> TokenBucket {
        TokenBucket {
            rate: rate.get(),
            burst: burst.get(),
            credit: i128::from(burst.get()) * UNITS_PER_BYTE,
            last_ms: None,
        }
    }

    /// Bytes earned per second.
    pub fn rate(&self) -> u64 {
        self.rate
    }

    /// Most credit kept, in bytes.
    pub fn burst(&self) -> u64 {
        self.burst
    }

    /// Charges `bytes` at `now_ms` and answers how many ms the sender must
    /// wait before they go (0: at once). A time earlier than one seen
    /// before counts as no time passing.
    pub fn take(&mut self, bytes: u64, now_ms: u64) -> u64 {
        self.refill(now_ms);
        self.credit -= i128::from(bytes) * UNITS_PER_BYTE;
        self.debt_ms()
    }

    /// How many ms from `now_ms` until the bucket is out of debt, without
    /// charging anything.
    pub fn wait_ms(&mut self, now_ms: u64) -> u64 {
        self.refill(now_ms);
        self.debt_ms()
    }

    fn refill(&mut self, now_ms: u64) {
        let elapsed = match self.last_ms {
            Some(last) => now_ms.saturating_sub(last),
            None => 0,
        };
        self.last_ms = Some(self.last_ms.map_or(now_ms, |last| last.max(now_ms)));
        // A rate in bytes/s earns `rate` thousandths of a byte per ms.
        let earned = i128::from(elapsed) * i128::from(self.rate);
        let cap = i128::from(self.burst) * UNITS_PER_BYTE;
        self.credit = (self.credit + earned).min(cap);
    }

    fn debt_ms(&self) -> u64 {
        if self.credit >= 0 {
            return 0;
        }
        let debt = -self.credit;
        let rate = i128::from(self.rate);
        let ms = (debt + rate - 1) / rate;
        u64::try_from(ms).unwrap_or(u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket(rate: u64, burst: u64) -> TokenBucket {
        TokenBucket::new(
            NonZeroU64::new(rate).unwrap(),
            NonZeroU64::new(burst).unwrap(),
        )
    }

    #[test]
    fn a_full_bucket_lets_its_burst_go_at_once_then_asks_to_wait() {
        let mut b = bucket(1_000, 4_000);
        assert_eq!(b.take(4_000, 10_000), 0);
        // 1,000 bytes more at 1,000 B/s: one second.
        assert_eq!(b.take(1_000, 10_000), 1_000);
        // Another 500 queue behind them.
        assert_eq!(b.take(500, 10_000), 1_500);
        // Half a second later, a second is left.
        assert_eq!(b.wait_ms(10_500), 1_000);
        assert_eq!(b.wait_ms(11_500), 0);
    }

    #[test]
    fn waiting_what_it_says_moves_exactly_the_rate() {
        // A sender that takes 1,500-byte pieces and waits each answer.
        let mut b = bucket(10_000, 1_500);
        let (mut now, mut sent) = (0u64, 0u64);
        while now < 60_000 {
            now += b.take(1_500, now);
            sent += 1_500;
        }
        // 60 s at 10,000 B/s, plus the first burst, give or take a piece.
        let expected = 60 * 10_000 + 1_500;
        assert!(
            sent.abs_diff(expected) <= 1_500,
            "{sent} bytes in {now} ms, expected {expected}"
        );
    }

    #[test]
    fn credit_never_grows_past_the_burst() {
        let mut b = bucket(1_000, 2_000);
        assert_eq!(b.take(2_000, 0), 0);
        // An hour idle earns no more than the burst.
        assert_eq!(b.take(2_000, 3_600_000), 0);
        assert_eq!(b.take(1, 3_600_000), 1);
    }

    #[test]
    fn time_going_backwards_earns_nothing() {
        let mut b = bucket(1_000, 1_000);
        assert_eq!(b.take(2_000, 5_000), 1_000);
        // A clock stepped back: the debt stands.
        assert_eq!(b.wait_ms(1_000), 1_000);
        // And credit is earned from the latest time seen, not the earlier.
        assert_eq!(b.wait_ms(5_400), 600);
    }

    #[test]
    fn a_slow_rate_rounds_a_wait_up_not_down() {
        let mut b = bucket(3, 1);
        assert_eq!(b.take(1, 0), 0);
        // One byte at 3 B/s is 333.3 ms: waiting 333 would send early.
        assert_eq!(b.take(1, 0), 334);
    }

    #[test]
    fn no_window_carries_more_than_burst_plus_rate() {
        // Pieces of varied sizes at the times the bucket allows, checked
        // against the cap over every window that starts at a send.
        let mut b = bucket(5_000, 3_000);
        let mut sends: Vec<(u64, u64)> = Vec::new();
        let mut now = 0u64;
        for i in 0..400u64 {
            let bytes = 100 + (i * 7_919) % 2_900;
            now += b.take(bytes, now);
            sends.push((now, bytes));
            now += i % 3;
        }
        for (i, (start, _)) in sends.iter().enumerate() {
            let mut total = 0u64;
            for (at, bytes) in &sends[i..] {
                total += bytes;
                let allowed = 3_000 + 5_000 * (at - start) / 1_000 + 1;
                assert!(total <= allowed, "{total} > {allowed} from {start} to {at}");
            }
        }
    }
}
