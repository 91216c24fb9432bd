//! What every command shares for reading and writing text: times (RFC 3339
//! or Unix ms), points (`LON,LAT`) and JSON on standard output.
//!
//! Never does: read the node.

use std::io::Write;
use std::time::{Duration, UNIX_EPOCH};

use anyhow::{Context, Result};
use sentinel_schema::Point;

/// A time given on the command line: Unix ms, or RFC 3339.
pub(super) fn parse_time(s: &str) -> Result<u64> {
    if let Ok(ms) = s.parse::<u64>() {
        return Ok(ms);
    }
    let t = humantime::parse_rfc3339_weak(s).with_context(|| {
        format!("{s:?} is neither RFC 3339 (2026-11-22T10:00:00Z) nor Unix milliseconds")
    })?;
    Ok(t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0))
}

/// Unix ms as RFC 3339, to the second.
pub(super) fn format_time(ms: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

/// `LON,LAT`, checked; `what` names the option in errors.
pub(super) fn parse_point(s: &str, what: &str) -> Result<Point> {
    let (lon, lat) = s
        .split_once(',')
        .with_context(|| format!("{what} must be LON,LAT, got {s:?}"))?;
    let lon: f64 = lon
        .trim()
        .parse()
        .with_context(|| format!("{what}: longitude {lon:?} is not a number"))?;
    let lat: f64 = lat
        .trim()
        .parse()
        .with_context(|| format!("{what}: latitude {lat:?} is not a number"))?;
    Point::new(lon, lat).with_context(|| what.to_string())
}

/// `v` as pretty JSON on standard output.
pub(super) fn print_json(v: &impl serde::Serialize) -> Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, v)?;
    writeln!(out)?;
    Ok(())
}

/// One background link for people: `peer  live (hub-north), last success
/// 12 s ago` or `peer  waiting: retry in 8 s (last error: ...)`.
pub(super) fn link_line(l: &sentinel_node::store::link_state::LinkStatus, now_ms: u64) -> String {
    let ago = |ms: u64| format!("{} s ago", now_ms.saturating_sub(ms) / 1000);
    let who = l
        .name
        .as_deref()
        .map(|n| format!(" ({n})"))
        .unwrap_or_default();
    let mut line = format!("link {}{who}  {}", l.address, l.state.as_str());
    if let Some(next) = l.next_try_ms {
        line += &format!(
            ": retry in {} s",
            next.saturating_sub(now_ms).div_ceil(1000)
        );
    }
    match l.last_success_ms {
        Some(t) => line += &format!(", last success {}", ago(t)),
        None => line += ", never caught up",
    }
    if let Some(e) = &l.last_error {
        line += &format!(" (last error: {e})");
    }
    line
}
