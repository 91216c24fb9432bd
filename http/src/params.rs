//! Query parameters: parsed strictly, each refusal naming its parameter;
//! coordinates and keyset cursors as both APIs take them.

use std::collections::BTreeMap;
use std::str::FromStr;

use axum::extract::rejection::QueryRejection;
use axum::extract::Query;

use crate::Problem;

/// A route's query as axum extracts it (a rejection is refused by
/// [`Params::from_query`] as a bad `query`).
pub type Pairs = Result<Query<Vec<(String, String)>>, QueryRejection>;

/// The query of one request, checked against the parameters a route knows:
/// an unknown or repeated parameter is refused.
#[derive(Debug)]
pub struct Params(BTreeMap<String, String>);

impl Params {
    /// [`Params::parse`] on an extracted query.
    pub fn from_query(query: Pairs, known: &[&str]) -> Result<Params, Problem> {
        let Query(pairs) = query.map_err(|e| Problem::bad_param("query", e.body_text()))?;
        Params::parse(pairs, known)
    }

    pub fn parse(pairs: Vec<(String, String)>, known: &[&str]) -> Result<Params, Problem> {
        let mut map = BTreeMap::new();
        for (name, value) in pairs {
            if !known.contains(&name.as_str()) {
                return Err(Problem::bad_param(
                    name.clone(),
                    if known.is_empty() {
                        format!("unknown query parameter `{name}`; this route takes none")
                    } else {
                        format!(
                            "unknown query parameter `{name}`; this route takes {}",
                            known.join(", ")
                        )
                    },
                ));
            }
            if map.contains_key(&name) {
                return Err(Problem::bad_param(
                    name.clone(),
                    format!("`{name}` is given more than once"),
                ));
            }
            map.insert(name, value);
        }
        Ok(Params(map))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// A parameter parsed with `FromStr`, refused with `what` if it does
    /// not parse.
    pub fn parsed<T: FromStr>(&self, name: &str, what: &str) -> Result<Option<T>, Problem> {
        self.get(name)
            .map(|v| {
                v.parse::<T>()
                    .map_err(|_| Problem::bad_param(name, format!("`{name}` must be {what}")))
            })
            .transpose()
    }

    /// `limit`: 1..=`max`, `default` when absent.
    pub fn limit(&self, default: i64, max: i64) -> Result<i64, Problem> {
        let limit = self
            .parsed::<i64>("limit", &format!("an integer 1..={max}"))?
            .unwrap_or(default);
        if !(1..=max).contains(&limit) {
            return Err(Problem::bad_param(
                "limit",
                format!("`limit` is {limit}, allowed 1..={max}"),
            ));
        }
        Ok(limit)
    }

    /// `from`/`to` in Unix ms: non-negative, `from` <= `to`.
    pub fn range(&self) -> Result<(Option<i64>, Option<i64>), Problem> {
        let from = self.parsed::<i64>("from", "Unix milliseconds (an integer >= 0)")?;
        let to = self.parsed::<i64>("to", "Unix milliseconds (an integer >= 0)")?;
        for (name, v) in [("from", from), ("to", to)] {
            if v.is_some_and(|v| v < 0) {
                return Err(Problem::bad_param(
                    name,
                    format!("`{name}` must be Unix milliseconds (an integer >= 0)"),
                ));
            }
        }
        if let (Some(f), Some(t)) = (from, to) {
            if f > t {
                return Err(Problem::bad_param(
                    "from",
                    format!("`from` ({f}) is after `to` ({t})"),
                ));
            }
        }
        Ok((from, to))
    }

    /// A 32- or 16-byte id in hex.
    pub fn hex_id<const N: usize>(&self, name: &str) -> Result<Option<[u8; N]>, Problem> {
        self.get(name)
            .map(|v| {
                hex_bytes::<N>(v).ok_or_else(|| {
                    Problem::bad_param(name, format!("`{name}` must be {} hex digits", 2 * N))
                })
            })
            .transpose()
    }

    /// Comma-separated finite numbers, exactly `n` of them.
    pub fn numbers(&self, name: &str, n: usize, shape: &str) -> Result<Option<Vec<f64>>, Problem> {
        let Some(v) = self.get(name) else {
            return Ok(None);
        };
        let bad = || Problem::bad_param(name, format!("`{name}` must be {shape}"));
        let numbers = v
            .split(',')
            .map(|x| x.trim().parse::<f64>().map_err(|_| bad()))
            .collect::<Result<Vec<f64>, Problem>>()?;
        if numbers.len() != n {
            return Err(bad());
        }
        if numbers.iter().any(|x| !x.is_finite()) {
            return Err(Problem::bad_param(
                name,
                format!("`{name}` must hold finite numbers"),
            ));
        }
        Ok(Some(numbers))
    }
}

/// `N` bytes from exactly `2 * N` hex digits (either case).
pub fn hex_bytes<const N: usize>(s: &str) -> Option<[u8; N]> {
    if s.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}

/// Checks a longitude and latitude, naming `field` when out of range.
pub fn check_lon_lat(field: &str, lon: f64, lat: f64) -> Result<(), Problem> {
    if !(-180.0..=180.0).contains(&lon) {
        return Err(Problem::bad_param(
            field,
            format!("longitude {lon} is outside -180..=180"),
        ));
    }
    if !(-90.0..=90.0).contains(&lat) {
        return Err(Problem::bad_param(
            field,
            format!("latitude {lat} is outside -90..=90"),
        ));
    }
    Ok(())
}

/// An opaque cursor: its fields joined with `|`, as hex, so clients treat
/// it as a token and a mangled one is refused rather than misread.
pub fn encode_cursor(fields: &[String]) -> String {
    hex::encode(fields.join("|"))
}

/// The fields of a cursor made by [`encode_cursor`], if it has `n` of them.
pub fn decode_cursor(cursor: &str, n: usize) -> Result<Vec<String>, Problem> {
    let bad = || Problem::bad_param("after", "`after` is not a cursor this API handed out");
    let bytes = hex::decode(cursor).map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let fields: Vec<String> = text.split('|').map(str::to_owned).collect();
    if fields.len() != n {
        return Err(bad());
    }
    Ok(fields)
}

/// A cursor field as a number, else a refusal naming `after`.
pub fn cursor_int<T: FromStr>(field: &str) -> Result<T, Problem> {
    field
        .parse()
        .map_err(|_| Problem::bad_param("after", "`after` is not a cursor this API handed out"))
}
