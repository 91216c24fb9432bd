//! A WHERE clause under construction, with its arguments: the one builder
//! the event search ([`super::query`]) and the readings queries
//! ([`super::readings`]) share, so both answer an area the same way.
//!
//! Arguments are always bound (`?N`), never spliced into the text.
//!
//! Never does: run a statement.

use rusqlite::types::Value;
use sentinel_schema::Bounds;

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
}
