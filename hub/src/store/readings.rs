//! Sensor readings as a time series: the `readings` view (migration V6),
//! one row per value of each `sensor_reading` entry in the log, written
//! by the projector in the transaction that marks the entry projected
//! (so it is rebuilt with the other views), and the queries the API
//! answers from it, in the vocabulary of `sentinel_schema::query`: raw
//! values by keyset page, values downsampled per time bucket, and the
//! sensors seen. Also the events the hub's rules raised
//! (`sensor_alerts`), read back at start for de-duplication and listed by
//! `GET /api/v1/sensors/alerts` ([`PgStore::rule_triggers`]).

use sentinel_schema::query::{ReadingBucket, ReadingCursor, ReadingFilter, ReadingRow, SensorSeen};
use sentinel_schema::{AuthorId, Body, EntryId, EventId, Point, SignedEntry};
use tokio_postgres::{Row, Transaction};

use super::filter::{Boxes, Where};
use super::{id16, id32, int, uint, PgStore, StoreError};

/// Writes the rows of the `sensor_reading` entries among `entries`; rows
/// already held (a rebuild racing a projector) are kept.
pub(super) async fn insert_readings(
    tx: &Transaction<'_>,
    entries: &[SignedEntry],
) -> Result<(), StoreError> {
    let mut ids: Vec<Vec<u8>> = Vec::new();
    let mut authors: Vec<Vec<u8>> = Vec::new();
    let mut seqs: Vec<i64> = Vec::new();
    let mut ns: Vec<i16> = Vec::new();
    let mut kinds: Vec<&str> = Vec::new();
    let mut names: Vec<&str> = Vec::new();
    let mut values: Vec<f64> = Vec::new();
    let mut units: Vec<&str> = Vec::new();
    let mut measured: Vec<i64> = Vec::new();
    let mut lons: Vec<Option<f64>> = Vec::new();
    let mut lats: Vec<Option<f64>> = Vec::new();
    for e in entries {
        let Body::SensorReading(r) = &e.entry().body else {
            continue;
        };
        let measured_ms = int(r.measured_ms, "readings.measured_ms")?;
        let seq = int(e.seq(), "readings.seq")?;
        for (n, v) in r.values.iter().enumerate() {
            ids.push(e.id().0.to_vec());
            authors.push(e.author().0.to_vec());
            seqs.push(seq);
            // A reading holds at most 32 values (`docs/protocol.md` 3.2).
            ns.push(i16::try_from(n).unwrap_or(i16::MAX));
            kinds.push(&r.kind);
            names.push(&v.name);
            values.push(v.value);
            units.push(&v.unit);
            measured.push(measured_ms);
            lons.push(r.location.map(|p| p.lon()));
            lats.push(r.location.map(|p| p.lat()));
        }
    }
    if ids.is_empty() {
        return Ok(());
    }
    tx.execute(
        "INSERT INTO readings (entry, author, seq, n, kind, name, value, unit, measured_ms, geog)
         SELECT r.entry, r.author, r.seq, r.n, r.kind, r.name, r.value, r.unit, r.measured,
             CASE WHEN r.lon IS NULL THEN NULL
                  ELSE ST_SetSRID(ST_MakePoint(r.lon, r.lat), 4326)::geography END
         FROM unnest($1::bytea[], $2::bytea[], $3::int8[], $4::int2[], $5::text[], $6::text[],
             $7::float8[], $8::text[], $9::int8[], $10::float8[], $11::float8[])
             AS r(entry, author, seq, n, kind, name, value, unit, measured, lon, lat)
         ON CONFLICT (entry, n) DO NOTHING",
        &[
            &ids, &authors, &seqs, &ns, &kinds, &names, &values, &units, &measured, &lons, &lats,
        ],
    )
    .await?;
    Ok(())
}

/// The newest event a rule raised for a sensor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SensorAlert {
    pub rule: String,
    pub sensor: AuthorId,
    pub measured_ms: u64,
    pub event: EventId,
}

/// An event the hub's rules raised, as `GET /api/v1/sensors/alerts`
/// lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleTriggerRow {
    pub rule: String,
    pub sensor: AuthorId,
    pub event: EventId,
    /// The hub's entry that reported the event.
    pub entry: EntryId,
    /// The entry that carried the triggering reading.
    pub reading: EntryId,
    pub measured_ms: u64,
    pub raised_ms: u64,
}

/// The conditions of `f` on the `readings` row `r`.
fn reading_filter(f: &ReadingFilter) -> Result<Where, StoreError> {
    let mut w = Where::default();
    if let Some(s) = f.sensor {
        let x = w.arg(s.0.to_vec());
        w.and(format!("r.author = {x}"));
    }
    if let Some(k) = &f.kind {
        let x = w.arg(k.clone());
        w.and(format!("r.kind = {x}"));
    }
    if let Some(n) = &f.name {
        let x = w.arg(n.clone());
        w.and(format!("r.name = {x}"));
    }
    if let Some(from) = f.from {
        let x = w.arg(int(from, "readings.measured_ms")?);
        w.and(format!("r.measured_ms >= {x}"));
    }
    if let Some(to) = f.to {
        let x = w.arg(int(to, "readings.measured_ms")?);
        w.and(format!("r.measured_ms < {x}"));
    }
    if let Some(area) = &f.area {
        // Geodesic-edged slices, as for events (`super::filter`).
        let [a, b, c, d] = w.boxes(Boxes::of(area));
        w.and(format!(
            "EXISTS (SELECT 1 FROM unnest({a}::float8[], {b}::float8[], {c}::float8[],
                 {d}::float8[]) AS s(lo, bottom, hi, top)
             WHERE ST_Intersects(r.geog,
                 ST_MakeEnvelope(s.lo, s.bottom, s.hi, s.top, 4326)::geography))"
        ));
    }
    Ok(w)
}

/// A point from two nullable columns.
fn location(r: &Row, lon: usize, lat: usize) -> Option<Point> {
    match (r.get::<_, Option<f64>>(lon), r.get::<_, Option<f64>>(lat)) {
        (Some(x), Some(y)) => Point::new(x, y).ok(),
        _ => None,
    }
}

impl PgStore {
    /// At most `limit` values matching `filter`, ascending by measured
    /// time (then entry id, then position in the reading), after
    /// `after`.
    pub async fn readings(
        &self,
        filter: &ReadingFilter,
        after: Option<ReadingCursor>,
        limit: usize,
    ) -> Result<Vec<ReadingRow>, StoreError> {
        let mut w = reading_filter(filter)?;
        if let Some(c) = after {
            let (a, b, d) = (
                w.arg(c.measured_ms),
                w.arg(c.entry.0.to_vec()),
                w.arg(i16::try_from(c.n).unwrap_or(i16::MAX)),
            );
            w.and(format!("(r.measured_ms, r.entry, r.n) > ({a}, {b}, {d})"));
        }
        let lim = w.arg(i64::try_from(limit).unwrap_or(i64::MAX));
        let sql = format!(
            "SELECT r.entry, r.author, r.seq, r.n, r.kind, r.name, r.value, r.unit,
                 r.measured_ms, ST_X(r.geog::geometry), ST_Y(r.geog::geometry)
             FROM readings r {}
             ORDER BY r.measured_ms, r.entry, r.n LIMIT {lim}",
            w.clause()
        );
        let client = self.client().await?;
        let rows = client.query(&sql, &w.refs()).await?;
        rows.iter()
            .map(|r| {
                Ok(ReadingRow {
                    entry: EntryId(id32(r.get(0), "readings.entry")?),
                    sensor: AuthorId(id32(r.get(1), "readings.author")?),
                    seq: uint(r.get(2), "readings.seq")?,
                    n: u16::try_from(r.get::<_, i16>(3)).map_err(|_| {
                        StoreError::CorruptColumn {
                            column: "readings.n",
                        }
                    })?,
                    kind: r.get(4),
                    name: r.get(5),
                    value: r.get(6),
                    unit: r.get(7),
                    measured_ms: r.get(8),
                    location: location(r, 9, 10),
                })
            })
            .collect()
    }

    /// The earliest and latest `measured_ms` of the values matching
    /// `filter`, if any match.
    async fn readings_span(
        &self,
        filter: &ReadingFilter,
    ) -> Result<Option<(i64, i64)>, StoreError> {
        let w = reading_filter(filter)?;
        let sql = format!(
            "SELECT min(r.measured_ms), max(r.measured_ms) FROM readings r {}",
            w.clause()
        );
        let client = self.client().await?;
        let row = client.query_one(&sql, &w.refs()).await?;
        Ok(match (row.get::<_, Option<i64>>(0), row.get(1)) {
            (Some(lo), Some(hi)) => Some((lo, hi)),
            _ => None,
        })
    }

    /// The values matching `filter` per name, unit and bucket of
    /// `bucket_ms` (buckets start at multiples of it): min, max, average
    /// and count, ordered by name, unit and time. Empty buckets are left
    /// out. (`measured_ms` is never negative, so integer division floors.)
    ///
    /// `None`, and nothing read, when one series would span more than
    /// `max_buckets`: the span of `from`..`to` when the filter gives both,
    /// else of the matching readings (clipped to whichever bound it gives).
    pub async fn reading_buckets(
        &self,
        filter: &ReadingFilter,
        bucket_ms: u64,
        max_buckets: u64,
    ) -> Result<Option<Vec<ReadingBucket>>, StoreError> {
        let width = int(bucket_ms.max(1), "bucket_ms")?;
        let from = filter
            .from
            .map(|f| int(f, "readings.measured_ms"))
            .transpose()?;
        let to = filter
            .to
            .map(|t| int(t, "readings.measured_ms"))
            .transpose()?;
        let span = match (from, to) {
            (Some(from), Some(to)) => Some((from, to.saturating_sub(1).max(from))),
            _ => self
                .readings_span(filter)
                .await?
                .map(|(lo, hi)| (from.unwrap_or(lo), to.map_or(hi, |t| t.saturating_sub(1)))),
        };
        if let Some((lo, hi)) = span {
            let n = hi.div_euclid(width) - lo.div_euclid(width) + 1;
            if u64::try_from(n).is_ok_and(|n| n > max_buckets) {
                return Ok(None);
            }
        }
        let mut w = reading_filter(filter)?;
        let b = w.arg(width);
        let sql = format!(
            "SELECT r.name, r.unit, (r.measured_ms / {b}::int8) * {b}::int8,
                 min(r.value), max(r.value), avg(r.value), count(*)
             FROM readings r {}
             GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
            w.clause()
        );
        let client = self.client().await?;
        let rows = client.query(&sql, &w.refs()).await?;
        rows.iter()
            .map(|r| {
                Ok(ReadingBucket {
                    name: r.get(0),
                    unit: r.get(1),
                    start_ms: r.get(2),
                    min: r.get(3),
                    max: r.get(4),
                    avg: r.get(5),
                    count: uint(r.get(6), "count")?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()
            .map(Some)
    }

    /// Every sensor the hub holds readings of, by key.
    pub async fn sensors_seen(&self) -> Result<Vec<SensorSeen>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT s.author, c.der, s.kinds, s.n, s.last_seq, s.last_ms,
                     ST_X(l.geog::geometry), ST_Y(l.geog::geometry),
                     (SELECT count(*) FROM forks f WHERE f.author = s.author)
                 FROM (SELECT author, array_agg(DISTINCT kind ORDER BY kind) AS kinds,
                           count(*) FILTER (WHERE n = 0) AS n, max(seq) AS last_seq,
                           max(measured_ms) AS last_ms
                       FROM readings GROUP BY author) AS s
                 LEFT JOIN certificates c ON c.author = s.author
                 LEFT JOIN LATERAL (
                     SELECT r.geog FROM readings r
                     WHERE r.author = s.author AND r.n = 0 AND r.geog IS NOT NULL
                     ORDER BY r.measured_ms DESC LIMIT 1) AS l ON true
                 ORDER BY s.author",
                &[],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(SensorSeen {
                    sensor: AuthorId(id32(r.get(0), "readings.author")?),
                    certificate_der: r.get(1),
                    kinds: r.get(2),
                    n_readings: uint(r.get(3), "readings.n")?,
                    last_seq: uint(r.get(4), "readings.seq")?,
                    last_measured_ms: r.get(5),
                    last_location: location(r, 6, 7),
                    n_forks: uint(r.get(8), "forks")?,
                })
            })
            .collect()
    }

    /// Where `sensor`'s newest located reading was.
    pub async fn last_location(&self, sensor: &AuthorId) -> Result<Option<Point>, StoreError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT ST_X(geog::geometry), ST_Y(geog::geometry) FROM readings
                 WHERE author = $1 AND n = 0 AND geog IS NOT NULL
                 ORDER BY measured_ms DESC LIMIT 1",
                &[&sensor.0.as_slice()],
            )
            .await?;
        Ok(row.and_then(|r| location(&r, 0, 1)))
    }

    /// Records that `rule` raised `event` (in the hub's entry `entry`)
    /// from `sensor`'s reading `reading`, measured at `measured_ms`.
    #[allow(clippy::too_many_arguments)]
    pub async fn record_sensor_alert(
        &self,
        rule: &str,
        sensor: &AuthorId,
        measured_ms: u64,
        reading: &EntryId,
        event: &EventId,
        entry: &EntryId,
        now_ms: u64,
    ) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO sensor_alerts
                     (event, rule, sensor, measured_ms, reading, entry, raised_ms)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (event) DO NOTHING",
                &[
                    &event.0.as_slice(),
                    &rule,
                    &sensor.0.as_slice(),
                    &int(measured_ms, "sensor_alerts.measured_ms")?,
                    &reading.0.as_slice(),
                    &entry.0.as_slice(),
                    &int(now_ms, "sensor_alerts.raised_ms")?,
                ],
            )
            .await?;
        Ok(())
    }

    /// Per rule and sensor, the newest alert (by measured time) the hub's
    /// rules raised.
    pub async fn latest_sensor_alerts(&self) -> Result<Vec<SensorAlert>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT DISTINCT ON (rule, sensor) rule, sensor, measured_ms, event
                 FROM sensor_alerts ORDER BY rule, sensor, measured_ms DESC",
                &[],
            )
            .await?;
        rows.iter()
            .map(|r| {
                let measured: i64 = r.get(2);
                let event: &[u8] = r.get(3);
                Ok(SensorAlert {
                    rule: r.get(0),
                    sensor: AuthorId(id32(r.get(1), "sensor_alerts.sensor")?),
                    measured_ms: u64::try_from(measured).map_err(|_| {
                        StoreError::CorruptColumn {
                            column: "sensor_alerts.measured_ms",
                        }
                    })?,
                    event: EventId(<[u8; 16]>::try_from(event).map_err(|_| {
                        StoreError::CorruptColumn {
                            column: "sensor_alerts.event",
                        }
                    })?),
                })
            })
            .collect()
    }

    /// Per rule and sensor (only `sensor`'s, if given) the newest event
    /// the hub's rules raised, newest `raised_ms` first (then rule,
    /// sensor), at most `limit`: the same answer as the node's
    /// `rule_events`, which keeps only that one.
    pub async fn rule_triggers(
        &self,
        sensor: Option<&AuthorId>,
        limit: usize,
    ) -> Result<Vec<RuleTriggerRow>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT rule, sensor, event, entry, reading, measured_ms, raised_ms
                 FROM (SELECT DISTINCT ON (rule, sensor) rule, sensor, event, entry, reading,
                           measured_ms, raised_ms
                       FROM sensor_alerts
                       WHERE $1::bytea IS NULL OR sensor = $1
                       ORDER BY rule, sensor, raised_ms DESC, measured_ms DESC, event) t
                 ORDER BY raised_ms DESC, rule, sensor
                 LIMIT $2",
                &[
                    &sensor.map(|s| s.0.as_slice()),
                    &int(limit as u64, "limit")?,
                ],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(RuleTriggerRow {
                    rule: r.get(0),
                    sensor: AuthorId(id32(r.get(1), "sensor_alerts.sensor")?),
                    event: EventId(id16(r.get(2), "sensor_alerts.event")?),
                    entry: EntryId(id32(r.get(3), "sensor_alerts.entry")?),
                    reading: EntryId(id32(r.get(4), "sensor_alerts.reading")?),
                    measured_ms: uint(r.get(5), "sensor_alerts.measured_ms")?,
                    raised_ms: uint(r.get(6), "sensor_alerts.raised_ms")?,
                })
            })
            .collect()
    }
}
