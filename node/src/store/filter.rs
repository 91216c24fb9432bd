//! A WHERE clause under construction, with its arguments: the one builder
//! the event search and the map's clusters ([`super::query`]) and the
//! readings queries ([`super::readings`]) share, so all answer an area
//! the same way, and a search and its clusters the same filter.
//!
//! Arguments are always bound (`?N`), never spliced into the text.
//!
//! Never does: run a statement.

use rusqlite::types::Value;
use sentinel_schema::query::EventFilter;
use sentinel_schema::Bounds;

/// Turns free text into an FTS5 query: every word quoted (so operators and
/// punctuation in user input are just text) and matched as a prefix, all
/// words required.
fn fts_query(text: &str) -> Option<String> {
    let words: Vec<String> = text
        .split_whitespace()
        .map(|w| format!("\"{}\"*", w.replace('"', "\"\"")))
        .collect();
    (!words.is_empty()).then(|| words.join(" "))
}

#[derive(Debug, Default)]
pub(super) struct Where {
    /// Empty, or ` WHERE …`.
    pub(super) sql: String,
    pub(super) args: Vec<Value>,
}

impl Where {
    /// Binds `v`; the placeholder to write where it goes.
    pub(super) fn arg(&mut self, v: Value) -> String {
        self.args.push(v);
        format!("?{}", self.args.len())
    }

    /// Adds a condition that must hold too.
    pub(super) fn and(&mut self, condition: &str) {
        self.sql += if self.sql.is_empty() {
            " WHERE "
        } else {
            " AND "
        };
        self.sql += condition;
    }

    /// Rows of `table` (aliased `alias`, row id `key`, columns `lon` and
    /// `lat`) inside `area`: inside any of its parts (two across the
    /// antimeridian). SpatiaLite's spatial index narrows each part to its
    /// MBR (float32, rounded outwards); the exact comparison follows.
    pub(super) fn within(&mut self, area: &Bounds, table: &str, alias: &str, key: &str) {
        let parts: Vec<String> = area
            .parts()
            .iter()
            .map(|b| {
                let (x0, y0, x1, y1) = (
                    self.arg(Value::Real(b.min_lon())),
                    self.arg(Value::Real(b.min_lat())),
                    self.arg(Value::Real(b.max_lon())),
                    self.arg(Value::Real(b.max_lat())),
                );
                format!(
                    "({alias}.{key} IN (SELECT rowid FROM SpatialIndex
                         WHERE f_table_name = '{table}'
                         AND search_frame = BuildMbr({x0}, {y0}, {x1}, {y1}, 4326))
                      AND {alias}.lon BETWEEN {x0} AND {x1}
                      AND {alias}.lat BETWEEN {y0} AND {y1})"
                )
            })
            .collect();
        self.and(&format!("({})", parts.join(" OR ")));
    }

    /// The conditions of an event filter on `events e`.
    pub(super) fn events(&mut self, f: &EventFilter) {
        if let Some(text) = f.text.as_deref().and_then(fts_query) {
            let a = self.arg(Value::Text(text));
            self.and(&format!(
                "e.fid IN (SELECT rowid FROM events_fts WHERE events_fts MATCH {a})"
            ));
        }
        if !f.statuses.is_empty() {
            let list: Vec<String> = f
                .statuses
                .iter()
                .map(|s| self.arg(Value::Text(s.as_str().into())))
                .collect();
            self.and(&format!("e.status IN ({})", list.join(", ")));
        }
        if let Some(c) = &f.category {
            let a = self.arg(Value::Text(c.clone()));
            self.and(&format!("e.category = {a}"));
        }
        if let Some(s) = f.min_severity {
            let a = self.arg(Value::Integer(s.into()));
            self.and(&format!("e.severity >= {a}"));
        }
        if let Some(s) = f.max_severity {
            let a = self.arg(Value::Integer(s.into()));
            self.and(&format!("e.severity <= {a}"));
        }
        // Times beyond i64 match nothing stored (the API refuses them).
        if let Some(t) = f.reported_from {
            let a = self.arg(Value::Integer(i64::try_from(t).unwrap_or(i64::MAX)));
            self.and(&format!("e.reported_ms >= {a}"));
        }
        if let Some(t) = f.reported_to {
            let a = self.arg(Value::Integer(i64::try_from(t).unwrap_or(i64::MAX)));
            self.and(&format!("e.reported_ms < {a}"));
        }
        if let Some(area) = &f.area {
            self.within(area, "events", "e", "fid");
        }
        if let Some(n) = &f.near {
            // A coarse band of latitude first (one degree of latitude is at
            // least 110.5 km), then the exact geodesic distance.
            let (lon, lat) = (
                self.arg(Value::Real(n.point.lon())),
                self.arg(Value::Real(n.point.lat())),
            );
            let r = self.arg(Value::Real(n.radius_m));
            self.and(&format!(
                "e.lat BETWEEN {lat} - {r} / 110500.0 AND {lat} + {r} / 110500.0
                 AND sentinel_distance_m(e.lon, e.lat, {lon}, {lat}) <= {r}"
            ));
        }
    }
}
