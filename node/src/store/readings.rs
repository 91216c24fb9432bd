//! Sensor readings as a time series (migration 6).
//!
//! Views, rebuilt from the log like the others: `readings` holds one row
//! per value of each `sensor_reading` entry, with a SpatiaLite point and
//! spatial index (kept by hand, as for events: see [`super::migrations`])
//! for the located ones; `sensors` and `sensor_kinds` summarise each
//! sensor for `GET /api/v1/sensors` and for the rules' fallback location.
//! The projector writes them in the transaction that marks the entry
//! projected, whatever brought the entry (a push, a sync session, an
//! import).
//!
//! Not a view: `rule_events`, per rule and sensor the last event this
//! node's rules raised, written in the transaction that commits the
//! event's entry and read back at start for de-duplication
//! (`sentinel_schema::rules::Dedup`) and listed by
//! `GET /api/v1/sensors/alerts` ([`Store::rule_triggers`]). It is this
//! node's own decision, so `rebuild-views` keeps it.

use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Transaction};
use sentinel_schema::query::{ReadingBucket, ReadingCursor, ReadingFilter, ReadingRow, SensorSeen};
use sentinel_schema::{AuthorId, EntryId, EventId, Point, SensorReading, SignedEntry};

use super::filter::Where;
use super::{blob, Store, StoreError};

/// What `rebuild-views` empties (`rule_events` stays).
pub(crate) const VIEW_TABLES: &str = "DELETE FROM readings;
     DELETE FROM idx_readings_geom;
     DELETE FROM sensors;
     DELETE FROM sensor_kinds;";

pub(super) fn migrate(tx: &Transaction<'_>) -> Result<(), StoreError> {
    tx.execute_batch(
        "
        -- One row per value of a reading; `n` is its position in the reading.
        CREATE TABLE readings (
            rid         INTEGER PRIMARY KEY,
            author      BLOB    NOT NULL,
            seq         INTEGER NOT NULL,
            entry       BLOB    NOT NULL,
            n           INTEGER NOT NULL,
            kind        TEXT    NOT NULL,
            name        TEXT    NOT NULL,
            value       REAL    NOT NULL,
            unit        TEXT    NOT NULL,
            measured_ms INTEGER NOT NULL,
            lon         REAL,
            lat         REAL
        );
        CREATE INDEX readings_by_sensor ON readings (author, measured_ms);
        CREATE INDEX readings_by_kind ON readings (kind, name, measured_ms);
        CREATE INDEX readings_by_time ON readings (measured_ms);

        CREATE TABLE sensors (
            author           BLOB PRIMARY KEY,
            n_readings       INTEGER NOT NULL,
            last_seq         INTEGER NOT NULL,
            last_measured_ms INTEGER NOT NULL,
            -- The newest located reading, by measured time.
            located_ms       INTEGER,
            lon              REAL,
            lat              REAL
        ) STRICT, WITHOUT ROWID;

        CREATE TABLE sensor_kinds (
            author BLOB NOT NULL,
            kind   TEXT NOT NULL,
            PRIMARY KEY (author, kind)
        ) STRICT, WITHOUT ROWID;

        CREATE TABLE rule_events (
            rule        TEXT    NOT NULL,
            sensor      BLOB    NOT NULL,
            measured_ms INTEGER NOT NULL,
            reading     BLOB    NOT NULL,
            event       BLOB    NOT NULL,
            entry       BLOB    NOT NULL,
            raised_ms   INTEGER NOT NULL,
            PRIMARY KEY (rule, sensor)
        ) STRICT, WITHOUT ROWID;
        ",
    )?;
    for sql in [
        "SELECT AddGeometryColumn('readings', 'geom', 4326, 'POINT', 'XY')",
        "SELECT CreateSpatialIndex('readings', 'geom')",
    ] {
        let ok: i64 = tx.query_row(sql, [], |r| r.get(0))?;
        if ok != 1 {
            return Err(StoreError::SpatialiteRefused(sql));
        }
    }
    let triggers: Vec<String> = tx
        .prepare("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'readings'")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for t in triggers {
        tx.execute_batch(&format!("DROP TRIGGER \"{}\"", t.replace('"', "\"\"")))?;
    }
    Ok(())
}

/// Writes the rows of one `sensor_reading` entry, inside the projector's
/// transaction.
pub(crate) fn project(
    conn: &Connection,
    e: &SignedEntry,
    r: &SensorReading,
) -> Result<(), StoreError> {
    let author = e.author();
    let id = e.id();
    let measured = r.measured_ms as i64;
    let (lon, lat) = match r.location {
        Some(p) => (Some(p.lon()), Some(p.lat())),
        None => (None, None),
    };
    let mut insert = conn.prepare_cached(
        "INSERT INTO readings (author, seq, entry, n, kind, name, value, unit, measured_ms,
             lon, lat, geom)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11,
             CASE WHEN ?10 IS NULL THEN NULL ELSE MakePoint(?10, ?11, 4326) END)",
    )?;
    let mut index = conn.prepare_cached(
        "INSERT INTO idx_readings_geom (pkid, xmin, xmax, ymin, ymax) VALUES (?1, ?2, ?2, ?3, ?3)",
    )?;
    for (n, v) in r.values.iter().enumerate() {
        insert.execute(params![
            author.as_bytes(),
            e.seq() as i64,
            id.as_bytes(),
            n as i64,
            r.kind,
            v.name,
            v.value,
            v.unit,
            measured,
            lon,
            lat
        ])?;
        if let (Some(x), Some(y)) = (lon, lat) {
            index.execute(params![conn.last_insert_rowid(), x, y])?;
        }
    }
    Ok(())
}

/// What one chunk of projected readings changes in `sensors` and
/// `sensor_kinds`, gathered per sensor and written once per chunk (one
/// statement per sensor rather than two per reading).
#[derive(Debug, Default)]
pub(crate) struct SensorChanges(std::collections::BTreeMap<AuthorId, Change>);

#[derive(Debug, Default)]
struct Change {
    n_readings: i64,
    last_seq: u64,
    last_measured_ms: u64,
    /// The newest located reading: measured time, lon, lat.
    located: Option<(u64, f64, f64)>,
    kinds: std::collections::BTreeSet<String>,
}

impl SensorChanges {
    pub(crate) fn add(&mut self, e: &SignedEntry, r: &SensorReading) {
        let c = self.0.entry(e.author()).or_default();
        c.n_readings += 1;
        c.last_seq = c.last_seq.max(e.seq());
        c.last_measured_ms = c.last_measured_ms.max(r.measured_ms);
        if let Some(p) = r.location {
            if c.located.is_none_or(|(ms, _, _)| r.measured_ms >= ms) {
                c.located = Some((r.measured_ms, p.lon(), p.lat()));
            }
        }
        if !c.kinds.contains(&r.kind) {
            c.kinds.insert(r.kind.clone());
        }
    }

    pub(crate) fn write(self, conn: &Connection) -> Result<(), StoreError> {
        let mut upsert = conn.prepare_cached(
            "INSERT INTO sensors (author, n_readings, last_seq, last_measured_ms, located_ms, lon, lat)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (author) DO UPDATE SET
                 n_readings = n_readings + excluded.n_readings,
                 last_seq = max(last_seq, excluded.last_seq),
                 last_measured_ms = max(last_measured_ms, excluded.last_measured_ms),
                 lon = CASE WHEN excluded.located_ms IS NOT NULL
                     AND (located_ms IS NULL OR excluded.located_ms >= located_ms)
                     THEN excluded.lon ELSE lon END,
                 lat = CASE WHEN excluded.located_ms IS NOT NULL
                     AND (located_ms IS NULL OR excluded.located_ms >= located_ms)
                     THEN excluded.lat ELSE lat END,
                 located_ms = CASE WHEN excluded.located_ms IS NOT NULL
                     AND (located_ms IS NULL OR excluded.located_ms >= located_ms)
                     THEN excluded.located_ms ELSE located_ms END",
        )?;
        let mut kind = conn
            .prepare_cached("INSERT OR IGNORE INTO sensor_kinds (author, kind) VALUES (?1, ?2)")?;
        for (author, c) in self.0 {
            upsert.execute(params![
                author.as_bytes(),
                c.n_readings,
                c.last_seq as i64,
                c.last_measured_ms as i64,
                c.located.map(|(ms, _, _)| ms as i64),
                c.located.map(|(_, lon, _)| lon),
                c.located.map(|(_, _, lat)| lat),
            ])?;
            for k in &c.kinds {
                kind.execute(params![author.as_bytes(), k])?;
            }
        }
        Ok(())
    }
}

/// Records that `rule` raised `event` (in this node's entry `entry`) from
/// `sensor`'s reading `reading` measured at `measured_ms`, inside the
/// transaction that commits that entry.
#[allow(clippy::too_many_arguments)]
pub(crate) fn record_rule_event(
    conn: &Connection,
    rule: &str,
    sensor: &AuthorId,
    measured_ms: u64,
    reading: &EntryId,
    event: &EventId,
    entry: &EntryId,
    raised_ms: u64,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO rule_events (rule, sensor, measured_ms, reading, event, entry, raised_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (rule, sensor) DO UPDATE SET measured_ms = excluded.measured_ms,
             reading = excluded.reading, event = excluded.event, entry = excluded.entry,
             raised_ms = excluded.raised_ms",
    )?
    .execute(params![
        rule,
        sensor.as_bytes(),
        measured_ms as i64,
        reading.as_bytes(),
        event.0,
        entry.as_bytes(),
        raised_ms as i64
    ])?;
    Ok(())
}

/// An event this node's rules raised: the newest of its rule and sensor,
/// as `GET /api/v1/sensors/alerts` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleTriggerRow {
    pub rule: String,
    pub sensor: AuthorId,
    pub event: EventId,
    /// This node's entry that reported the event.
    pub entry: EntryId,
    /// The entry that carried the triggering reading.
    pub reading: EntryId,
    pub measured_ms: u64,
    pub raised_ms: u64,
}

/// The WHERE clause of a readings query.
fn filter(f: &ReadingFilter) -> Where {
    let mut w = Where::default();
    if let Some(s) = &f.sensor {
        let a = w.arg(Value::Blob(s.as_bytes().to_vec()));
        w.and(&format!("r.author = {a}"));
    }
    if let Some(k) = &f.kind {
        let a = w.arg(Value::Text(k.clone()));
        w.and(&format!("r.kind = {a}"));
    }
    if let Some(n) = &f.name {
        let a = w.arg(Value::Text(n.clone()));
        w.and(&format!("r.name = {a}"));
    }
    // Times beyond i64 match nothing stored (the API refuses them).
    if let Some(t) = f.from {
        let a = w.arg(Value::Integer(i64::try_from(t).unwrap_or(i64::MAX)));
        w.and(&format!("r.measured_ms >= {a}"));
    }
    if let Some(t) = f.to {
        let a = w.arg(Value::Integer(i64::try_from(t).unwrap_or(i64::MAX)));
        w.and(&format!("r.measured_ms < {a}"));
    }
    if let Some(area) = &f.area {
        w.within(area, "readings", "r", "rid");
    }
    w
}

fn location(r: &rusqlite::Row<'_>, lon: usize, lat: usize) -> Result<Option<Point>, StoreError> {
    match (r.get::<_, Option<f64>>(lon)?, r.get::<_, Option<f64>>(lat)?) {
        (Some(x), Some(y)) => Point::new(x, y)
            .map(Some)
            .map_err(|_| StoreError::CorruptColumn {
                column: "readings.lon/lat",
            }),
        _ => Ok(None),
    }
}

fn unsigned(v: i64, column: &'static str) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::CorruptColumn { column })
}

impl Store {
    /// At most `limit` values matching `filter`, ascending by measured
    /// time (then entry id, then position in the reading), after `after`.
    pub fn readings(
        &self,
        filter: &ReadingFilter,
        after: Option<ReadingCursor>,
        limit: usize,
    ) -> Result<Vec<ReadingRow>, StoreError> {
        let mut w = self::filter(filter);
        if let Some(c) = after {
            let (a, b, d) = (
                w.arg(Value::Integer(c.measured_ms)),
                w.arg(Value::Blob(c.entry.as_bytes().to_vec())),
                w.arg(Value::Integer(c.n.into())),
            );
            w.and(&format!("(r.measured_ms, r.entry, r.n) > ({a}, {b}, {d})"));
        }
        let lim = w.arg(Value::Integer(limit as i64));
        let sql = format!(
            "SELECT r.author, r.seq, r.entry, r.n, r.kind, r.name, r.value, r.unit,
                 r.measured_ms, r.lon, r.lat
             FROM readings r{}
             ORDER BY r.measured_ms, r.entry, r.n LIMIT {lim}",
            w.sql
        );
        let mut stmt = self.conn().prepare_cached(&sql)?;
        let mut rows = stmt.query(params_from_iter(w.args.iter()))?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push(ReadingRow {
                sensor: AuthorId(blob(r, 0, "readings.author")?),
                seq: unsigned(r.get(1)?, "readings.seq")?,
                entry: EntryId(blob(r, 2, "readings.entry")?),
                n: r.get(3)?,
                kind: r.get(4)?,
                name: r.get(5)?,
                value: r.get(6)?,
                unit: r.get(7)?,
                measured_ms: r.get(8)?,
                location: location(r, 9, 10)?,
            });
        }
        Ok(out)
    }

    /// The values matching `filter` per name, unit and bucket of
    /// `bucket_ms` (buckets start at multiples of it): min, max, average
    /// and count, ordered by name, unit and time; empty buckets are left
    /// out. `None` when there would be more than `max_buckets`.
    pub fn reading_buckets(
        &self,
        filter: &ReadingFilter,
        bucket_ms: u64,
        max_buckets: u64,
    ) -> Result<Option<Vec<ReadingBucket>>, StoreError> {
        let mut w = self::filter(filter);
        let b = w.arg(Value::Integer(bucket_ms.max(1) as i64));
        let lim = w.arg(Value::Integer(
            i64::try_from(max_buckets.saturating_add(1)).unwrap_or(i64::MAX),
        ));
        let sql = format!(
            "SELECT r.name, r.unit, (r.measured_ms / {b}) * {b} AS start,
                 min(r.value), max(r.value), avg(r.value), count(*)
             FROM readings r{}
             GROUP BY r.name, r.unit, start ORDER BY r.name, r.unit, start LIMIT {lim}",
            w.sql
        );
        let mut stmt = self.conn().prepare_cached(&sql)?;
        let mut rows = stmt.query(params_from_iter(w.args.iter()))?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            if out.len() as u64 >= max_buckets {
                return Ok(None);
            }
            out.push(ReadingBucket {
                name: r.get(0)?,
                unit: r.get(1)?,
                start_ms: r.get(2)?,
                min: r.get(3)?,
                max: r.get(4)?,
                avg: r.get(5)?,
                count: unsigned(r.get(6)?, "readings.count")?,
            });
        }
        Ok(Some(out))
    }

    /// Every sensor the node holds readings of, by key.
    pub fn sensors_seen(&self) -> Result<Vec<SensorSeen>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT s.author, c.der, s.n_readings, s.last_seq, s.last_measured_ms, s.lon, s.lat,
                 (SELECT count(*) FROM forks f WHERE f.author = s.author),
                 (SELECT group_concat(kind, char(10)) FROM
                     (SELECT kind FROM sensor_kinds k WHERE k.author = s.author ORDER BY kind))
             FROM sensors s LEFT JOIN certificates c ON c.author = s.author
             ORDER BY s.author",
        )?;
        let mut rows = stmt.query([])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let kinds: Option<String> = r.get(8)?;
            out.push(SensorSeen {
                sensor: AuthorId(blob(r, 0, "sensors.author")?),
                certificate_der: r.get(1)?,
                n_readings: unsigned(r.get(2)?, "sensors.n_readings")?,
                last_seq: unsigned(r.get(3)?, "sensors.last_seq")?,
                last_measured_ms: r.get(4)?,
                last_location: location(r, 5, 6)?,
                n_forks: unsigned(r.get(7)?, "forks")?,
                kinds: kinds
                    .map(|k| k.split('\n').map(str::to_owned).collect())
                    .unwrap_or_default(),
            });
        }
        Ok(out)
    }

    /// Where `sensor`'s newest located reading (by measured time) was.
    pub fn sensor_location(&self, sensor: &AuthorId) -> Result<Option<Point>, StoreError> {
        let row: Option<(Option<f64>, Option<f64>)> = self
            .conn()
            .prepare_cached("SELECT lon, lat FROM sensors WHERE author = ?1")?
            .query_row([sensor.as_bytes()], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        Ok(match row {
            Some((Some(lon), Some(lat))) => Point::new(lon, lat).ok(),
            _ => None,
        })
    }

    /// Per rule and sensor, the measured time of the reading of the last
    /// event this node's rules raised.
    pub fn rule_events(&self) -> Result<Vec<(String, AuthorId, u64)>, StoreError> {
        let mut stmt = self
            .conn()
            .prepare_cached("SELECT rule, sensor, measured_ms FROM rule_events")?;
        let mut rows = stmt.query([])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push((
                r.get(0)?,
                AuthorId(blob(r, 1, "rule_events.sensor")?),
                r.get::<_, i64>(2)? as u64,
            ));
        }
        Ok(out)
    }

    /// Per rule and sensor (only `sensor`'s, if given) the last event this
    /// node's rules raised, newest `raised_ms` first (then rule, sensor),
    /// at most `limit`.
    pub fn rule_triggers(
        &self,
        sensor: Option<&AuthorId>,
        limit: usize,
    ) -> Result<Vec<RuleTriggerRow>, StoreError> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT rule, sensor, event, entry, reading, measured_ms, raised_ms
             FROM rule_events WHERE ?1 IS NULL OR sensor = ?1
             ORDER BY raised_ms DESC, rule, sensor LIMIT ?2",
        )?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut rows = stmt.query(params![sensor.map(|s| s.as_bytes().to_vec()), limit])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push(RuleTriggerRow {
                rule: r.get(0)?,
                sensor: AuthorId(blob(r, 1, "rule_events.sensor")?),
                event: EventId(blob(r, 2, "rule_events.event")?),
                entry: EntryId(blob(r, 3, "rule_events.entry")?),
                reading: EntryId(blob(r, 4, "rule_events.reading")?),
                measured_ms: r.get::<_, i64>(5)?.max(0).unsigned_abs(),
                raised_ms: r.get::<_, i64>(6)?.max(0).unsigned_abs(),
            });
        }
        Ok(out)
    }
}
