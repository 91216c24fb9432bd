//! Report times: RFC 3339 text to Unix milliseconds, and back (the
//! latter written by `sentinel_http::formats`).

use std::time::UNIX_EPOCH;

use super::preview;

// Writing times is the exports' shared writer's (the servers' exports
// write the same text).
pub(super) use sentinel_http::formats::rfc3339_of_ms;
#[cfg(test)]
pub(super) use sentinel_http::formats::MAX_RFC3339_SECONDS;

/// An RFC 3339 time as Unix milliseconds; finer fractions are dropped.
/// A local time in 1969 is refused even when its offset puts it in 1970
/// UTC, because humantime checks the year first; no report is that old.
///
/// humantime parses UTC times only (`Z` or `+00:00`), while many tools
/// write local time with an offset, so a numeric offset is taken off here
/// and applied afterwards.
pub(super) fn rfc3339_ms(text: &str) -> Result<u64, String> {
    let not_rfc3339 = |why: &dyn std::fmt::Display| {
        format!(
            "{:?} is not an RFC 3339 time such as 2024-05-01T12:00:00Z: {why}",
            preview(text)
        )
    };
    // RFC 3339 allows a lowercase `t` and `z`; humantime does not.
    let upper = text.trim().to_ascii_uppercase();
    let (utc, offset_s) = split_offset(&upper).map_err(|why| not_rfc3339(&why))?;
    let time = humantime::parse_rfc3339(&utc).map_err(|e| not_rfc3339(&e))?;
    let since_epoch = time
        .duration_since(UNIX_EPOCH)
        .map_err(|_| not_rfc3339(&"before 1970"))?;
    let ms = i128::try_from(since_epoch.as_millis()).map_err(|_| not_rfc3339(&"out of range"))?
        - i128::from(offset_s) * 1000;
    u64::try_from(ms).map_err(|_| not_rfc3339(&"before 1970"))
}

/// Splits a trailing `+hh:mm` / `-hh:mm` offset off an upper-cased RFC
/// 3339 time, returning the time with `Z` instead and the offset in
/// seconds east of UTC. A time that ends in `Z` is returned as it is.
fn split_offset(text: &str) -> Result<(String, i64), String> {
    let b = text.as_bytes();
    // Shortest time with an offset: "2024-05-01T12:00:00+01:00".
    if b.len() < 25 {
        return Ok((text.to_owned(), 0));
    }
    let at = b.len() - 6;
    let sign = match b[at] {
        b'+' => 1,
        b'-' => -1,
        _ => return Ok((text.to_owned(), 0)),
    };
    let digit = |i: usize| {
        char::from(b[i])
            .to_digit(10)
            .map(i64::from)
            .ok_or_else(|| "the offset is not +hh:mm or -hh:mm".to_owned())
    };
    if b[at + 3] != b':' {
        return Err("the offset is not +hh:mm or -hh:mm".to_owned());
    }
    let hours = digit(at + 1)? * 10 + digit(at + 2)?;
    let minutes = digit(at + 4)? * 10 + digit(at + 5)?;
    if hours > 23 || minutes > 59 {
        return Err("the offset is out of range".to_owned());
    }
    // `at` holds an ASCII byte, so it is a character boundary and `get`
    // always succeeds; it is `get` only so that nothing here can panic.
    let local = text.get(..at).ok_or_else(|| "not ASCII".to_owned())?;
    Ok((format!("{local}Z"), sign * (hours * 3600 + minutes * 60)))
}
