//! The wall clock, one per server, replaceable in tests.
//!
//! Everything that asks the time (token expiry, a report's default time,
//! a push's future bound) asks a [`Clock`], which reads the system clock
//! unless a test fixed it; a test then moves it with [`Clock::set_ms`] or
//! [`Clock::advance_ms`] instead of sleeping.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Unix milliseconds now, from the system clock (0 before 1970).
pub fn system_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A source of Unix milliseconds: the system clock, or a fixed time a
/// test sets. Clones share the time.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    fixed: Option<Arc<AtomicU64>>,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Clock {
        Clock { fixed: None }
    }

    /// A clock that says `ms` until it is set or advanced.
    pub fn fixed(ms: u64) -> Clock {
        Clock {
            fixed: Some(Arc::new(AtomicU64::new(ms))),
        }
    }

    /// Unix milliseconds now.
    pub fn now_ms(&self) -> u64 {
        match &self.fixed {
            Some(ms) => ms.load(Ordering::SeqCst),
            None => system_ms(),
        }
    }

    /// Sets a fixed clock to `ms`; the system clock is not changed.
    pub fn set_ms(&self, ms: u64) {
        if let Some(fixed) = &self.fixed {
            fixed.store(ms, Ordering::SeqCst);
        }
    }

    /// Moves a fixed clock forward by `ms`; the system clock is not changed.
    pub fn advance_ms(&self, ms: u64) {
        if let Some(fixed) = &self.fixed {
            fixed.fetch_add(ms, Ordering::SeqCst);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fixed_clock_moves_only_when_told_and_clones_share_it() {
        let clock = Clock::fixed(1_000);
        let other = clock.clone();
        assert_eq!(clock.now_ms(), 1_000);
        other.advance_ms(500);
        assert_eq!(clock.now_ms(), 1_500);
        clock.set_ms(7);
        assert_eq!(other.now_ms(), 7);
        let system = Clock::system();
        system.set_ms(7);
        assert!(system.now_ms() > 1_600_000_000_000);
    }
}
