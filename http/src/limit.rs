//! Per-client rate limiting: a token bucket per client address, answered
//! with `429 Too Many Requests`, a `Retry-After` header and a problem+json
//! body once a client's bucket is empty.
//!
//! **Who is a client.** The client's IP address
//! ([`crate::ops::client_ip`]: the peer of the connection, or, when that
//! peer is a trusted reverse proxy, the address the proxy forwarded —
//! [`crate::proxy`]): an IPv4 address, or the /64 prefix of an IPv6
//! address (one host usually holds a whole /64, so keying by the full
//! address would let it rotate past the limit). Bearer tokens are *not*
//! keys: the limit runs before the token is checked, so a client could
//! mint a fresh key per request with made-up tokens, and a real token
//! signed in from a shared address still shares that address's bucket.
//! A request without connect info (a server started without it, tests)
//! counts against one shared bucket.
//!
//! **Logins** have a stricter limit of their own ([`login_limited`],
//! [`LoginLimits`], per minute), on top of the general one: password
//! guessing is what a limit on logins is for, and a person signs in a
//! few times a day.
//!
//! **Memory.** At most `max_clients` buckets are kept. When a new client
//! arrives at the bound, buckets that have refilled (indistinguishable from
//! a new one) are dropped first, then the least recently seen tenth.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;

use crate::ops::{client_ip, RATE_LIMITED};
use crate::Problem;

/// How many buckets a limiter keeps at most, by default.
pub const DEFAULT_MAX_CLIENTS: usize = 65_536;

/// A sustained rate and a burst; `0` in either turns limiting off.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    /// Requests per second a client may sustain.
    pub per_s: u32,
    /// Requests a client may send at once after being idle.
    pub burst: u32,
}

impl Limits {
    pub fn is_off(&self) -> bool {
        self.per_s == 0 || self.burst == 0
    }
}

/// The login route's limit: a sustained rate per minute and a burst; `0`
/// in either turns it off.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoginLimits {
    /// Logins per minute a client may sustain.
    pub per_min: u32,
    /// Logins a client may send at once after being idle.
    pub burst: u32,
}

/// The path whose `POST` [`login_limited`] limits.
pub const LOGIN_PATH: &str = "/api/v1/login";

/// A refusal: the client may try again after this many whole seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAfter(pub u64);

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// A bucket's refill rate and size.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Rate {
    per_s: f64,
    burst: f64,
}

impl Bucket {
    /// The tokens at `now`, refilled since `at`, capped at the burst.
    fn refilled(&self, rate: Rate, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        (self.tokens + elapsed * rate.per_s).min(rate.burst)
    }
}

/// Token buckets keyed by client (see the module documentation).
#[derive(Debug)]
pub struct RateLimiter {
    rate: Rate,
    /// How the limit reads in a refusal's detail.
    described: String,
    max_clients: usize,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

impl RateLimiter {
    /// A limiter with `limits` for at most `max_clients` clients at once
    /// (at least 1); `None` when the limits are off.
    pub fn new(limits: Limits, max_clients: usize) -> Option<RateLimiter> {
        (!limits.is_off()).then(|| {
            RateLimiter::with_rate(
                Rate {
                    per_s: f64::from(limits.per_s),
                    burst: f64::from(limits.burst),
                },
                format!(
                    "more than {} requests per second (bursts of {}) from this address",
                    limits.per_s, limits.burst
                ),
                max_clients,
            )
        })
    }

    /// A limiter of logins (see [`LoginLimits`]); `None` when off.
    pub fn for_logins(limits: LoginLimits, max_clients: usize) -> Option<RateLimiter> {
        (limits.per_min > 0 && limits.burst > 0).then(|| {
            RateLimiter::with_rate(
                Rate {
                    per_s: f64::from(limits.per_min) / 60.0,
                    burst: f64::from(limits.burst),
                },
                format!(
                    "more than {} logins per minute (bursts of {}) from this address",
                    limits.per_min, limits.burst
                ),
                max_clients,
            )
        })
    }

    fn with_rate(rate: Rate, described: String, max_clients: usize) -> RateLimiter {
        RateLimiter {
            rate,
            described,
            max_clients: max_clients.max(1),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// The refusal of a request this limiter turned away.
    pub fn refusal(&self, retry: RetryAfter) -> Response {
        refused(&self.described, retry)
    }

    /// Buckets held now.
    pub fn clients(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Bucket>> {
        // A panic elsewhere leaves the map consistent: every update is one
        // insert or assignment.
        self.buckets.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes one token from `client`'s bucket at `now`, or says how long
    /// until one is there.
    pub fn check(&self, client: IpAddr, now: Instant) -> Result<(), RetryAfter> {
        let limits = self.rate;
        let key = client_key(client);
        let mut buckets = self.lock();
        let tokens = match buckets.get(&key) {
            Some(b) => b.refilled(limits, now),
            None => {
                if buckets.len() >= self.max_clients {
                    evict(&mut buckets, limits, self.max_clients, now);
                }
                limits.burst
            }
        };
        if tokens >= 1.0 {
            buckets.insert(
                key,
                Bucket {
                    tokens: tokens - 1.0,
                    at: now,
                },
            );
            return Ok(());
        }
        buckets.insert(key, Bucket { tokens, at: now });
        let wait = (1.0 - tokens) / limits.per_s;
        Err(RetryAfter((wait.ceil() as u64).max(1)))
    }
}

/// Makes room below `max`: drops refilled buckets, then, if that freed
/// less than a tenth, the least recently seen tenth.
fn evict(buckets: &mut HashMap<IpAddr, Bucket>, limits: Rate, max: usize, now: Instant) {
    let full = limits.burst;
    buckets.retain(|_, b| b.refilled(limits, now) < full);
    let target = max - max.div_ceil(10);
    if buckets.len() > target {
        let mut seen: Vec<Instant> = buckets.values().map(|b| b.at).collect();
        let n_drop = buckets.len() - target;
        let (_, cutoff, _) = seen.select_nth_unstable(n_drop - 1);
        let cutoff = *cutoff;
        buckets.retain(|_, b| b.at > cutoff);
    }
}

/// The bucket key of an address: IPv4 as is (also when mapped into IPv6),
/// IPv6 by its /64 prefix.
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// The `429` problem, with `Retry-After`.
pub fn too_many_requests(limits: Limits, retry: RetryAfter) -> Response {
    refused(
        &format!(
            "more than {} requests per second (bursts of {}) from this address",
            limits.per_s, limits.burst
        ),
        retry,
    )
}

fn refused(limit: &str, retry: RetryAfter) -> Response {
    let RetryAfter(seconds) = retry;
    let mut response = Problem {
        status: StatusCode::TOO_MANY_REQUESTS,
        kind: "urn:sentinel:problem:rate-limited",
        title: "Too many requests",
        detail: format!("{limit}; retry in {seconds} s"),
        field: None,
    }
    .into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    response
}

async fn rate_limit(State(limiter): State<Arc<RateLimiter>>, req: Request, next: Next) -> Response {
    let client = client_ip(&req).unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    match limiter.check(client, Instant::now()) {
        Ok(()) => next.run(req).await,
        Err(retry) => {
            metrics::counter!(RATE_LIMITED).increment(1);
            limiter.refusal(retry)
        }
    }
}

async fn login_limit(
    State(limiter): State<Arc<RateLimiter>>,
    req: Request,
    next: Next,
) -> Response {
    if req.method() != axum::http::Method::POST || req.uri().path() != LOGIN_PATH {
        return next.run(req).await;
    }
    rate_limit(State(limiter), req, next).await
}

/// `router` with `POST` [`LOGIN_PATH`] behind `limiter` (add the routes
/// first); every other route unchanged, and all of it unchanged without a
/// limiter.
pub fn login_limited<S>(router: Router<S>, limiter: Option<Arc<RateLimiter>>) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    match limiter {
        Some(l) => router.layer(middleware::from_fn_with_state(l, login_limit)),
        None => router,
    }
}

/// `router` with every route behind `limiter` (add the routes first);
/// unchanged without one.
pub fn limited<S>(router: Router<S>, limiter: Option<Arc<RateLimiter>>) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    match limiter {
        Some(l) => router.layer(middleware::from_fn_with_state(l, rate_limit)),
        None => router,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use std::time::Duration;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn limiter(per_s: u32, burst: u32, max: usize) -> RateLimiter {
        RateLimiter::new(Limits { per_s, burst }, max).unwrap()
    }

    #[test]
    fn a_burst_passes_then_the_rate_applies() {
        let l = limiter(2, 5, 100);
        let t0 = Instant::now();
        for i in 0..5 {
            assert_eq!(l.check(ip("192.0.2.1"), t0), Ok(()), "request {i}");
        }
        // Empty: one token comes back every 500 ms.
        assert_eq!(l.check(ip("192.0.2.1"), t0), Err(RetryAfter(1)));
        let t = t0 + Duration::from_millis(499);
        assert!(l.check(ip("192.0.2.1"), t).is_err());
        let t = t0 + Duration::from_millis(500);
        assert_eq!(l.check(ip("192.0.2.1"), t), Ok(()));
        assert!(l.check(ip("192.0.2.1"), t).is_err());
        // Idle long enough, the whole burst is back, and no more.
        let t = t + Duration::from_secs(60);
        for _ in 0..5 {
            assert_eq!(l.check(ip("192.0.2.1"), t), Ok(()));
        }
        assert!(l.check(ip("192.0.2.1"), t).is_err());
    }

    #[test]
    fn retry_after_is_the_wait_for_one_token_rounded_up() {
        let l = limiter(1, 1, 100);
        let t0 = Instant::now();
        assert_eq!(l.check(ip("192.0.2.1"), t0), Ok(()));
        assert_eq!(l.check(ip("192.0.2.1"), t0), Err(RetryAfter(1)));
        // A refused request does not cost a token.
        let t = t0 + Duration::from_secs(1);
        assert_eq!(l.check(ip("192.0.2.1"), t), Ok(()));

        // A slow rate: 1 per second is the least; with 0.4 s gone of a
        // 1 s wait, still 1 s (rounded up).
        let l = limiter(1, 2, 100);
        assert!(l.check(ip("192.0.2.2"), t0).is_ok());
        assert!(l.check(ip("192.0.2.2"), t0).is_ok());
        let t = t0 + Duration::from_millis(400);
        assert_eq!(l.check(ip("192.0.2.2"), t), Err(RetryAfter(1)));
        // A time before the bucket's (clock injected out of order) adds
        // nothing rather than failing.
        assert!(l.check(ip("192.0.2.2"), t0).is_err());
    }

    #[test]
    fn clients_have_their_own_buckets() {
        let l = limiter(1, 1, 100);
        let t0 = Instant::now();
        assert!(l.check(ip("192.0.2.1"), t0).is_ok());
        assert!(l.check(ip("192.0.2.1"), t0).is_err());
        assert!(l.check(ip("192.0.2.2"), t0).is_ok());
        assert!(l.check(ip("2001:db8::1"), t0).is_ok());
        // Same /64: same client.
        assert!(l.check(ip("2001:db8::ffff:1"), t0).is_err());
        assert!(l.check(ip("2001:db8:0:1::1"), t0).is_ok());
        // IPv4 mapped into IPv6 is the IPv4 client.
        assert!(l.check(ip("::ffff:192.0.2.2"), t0).is_err());
        assert_eq!(l.clients(), 4);
    }

    #[test]
    fn memory_is_bounded_and_refilled_buckets_go_first() {
        let l = limiter(1, 3, 10);
        let t0 = Instant::now();
        // A busy client: its bucket is not full.
        for _ in 0..3 {
            assert!(l.check(ip("198.51.100.1"), t0).is_ok());
        }
        for i in 0..500u32 {
            let t = t0 + Duration::from_millis(u64::from(i));
            let _ = l.check(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)), t);
            assert!(l.clients() <= 10, "{} buckets", l.clients());
            // Keep the busy client recent; it stays below one token.
            assert!(l.check(ip("198.51.100.1"), t).is_err());
        }

        // Clients idle long enough to be full again are dropped first.
        let l = limiter(10, 2, 4);
        for n in 1..=4u8 {
            assert!(l.check(IpAddr::V4(Ipv4Addr::new(10, 0, 0, n)), t0).is_ok());
        }
        let t = t0 + Duration::from_secs(10);
        assert!(l.check(ip("10.0.1.1"), t).is_ok());
        assert_eq!(l.clients(), 1);
    }

    #[test]
    fn logins_are_limited_per_minute() {
        let limits = LoginLimits {
            per_min: 6,
            burst: 2,
        };
        let l = RateLimiter::for_logins(limits, 100).unwrap();
        let t0 = Instant::now();
        assert!(l.check(ip("192.0.2.1"), t0).is_ok());
        assert!(l.check(ip("192.0.2.1"), t0).is_ok());
        // One login comes back every 10 s.
        assert_eq!(l.check(ip("192.0.2.1"), t0), Err(RetryAfter(10)));
        let t = t0 + Duration::from_millis(9_900);
        assert!(l.check(ip("192.0.2.1"), t).is_err());
        let t = t0 + Duration::from_secs(10);
        assert!(l.check(ip("192.0.2.1"), t).is_ok());
        assert!(RateLimiter::for_logins(LoginLimits::default(), 10).is_none());
    }

    #[test]
    fn zero_turns_limiting_off() {
        assert!(RateLimiter::new(Limits { per_s: 0, burst: 5 }, 10).is_none());
        assert!(RateLimiter::new(Limits { per_s: 5, burst: 0 }, 10).is_none());
        assert!(RateLimiter::new(Limits::default(), 10).is_none());
    }

    #[test]
    fn the_refusal_is_a_429_problem_with_retry_after() {
        let r = too_many_requests(Limits { per_s: 1, burst: 2 }, RetryAfter(3));
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(r.headers()[header::RETRY_AFTER], "3");
        assert_eq!(r.headers()[header::CONTENT_TYPE], crate::PROBLEM_JSON);
    }
}
