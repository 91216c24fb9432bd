//! What the API reads from the views and the log: a page of events for a
//! `sentinel_schema::query::EventSearch` ([`PgStore::search_events`]), the
//! same filter's events grouped on a map's grid ([`PgStore::clusters`]), one
//! event in full ([`PgStore::event_record`]), the events in an area
//! ([`PgStore::ids_in_bbox`]), and a page of the timeline, every entry of
//! the log in HLC order ([`PgStore::timeline`]).
//!
//! **Events.** Answered from the `events` view: `area` in geodesic-edged
//! slices through the GiST index (`super::filter`), `near` with
//! `ST_DWithin` on geography (metres), `text` as
//! `websearch_to_tsquery('english', …)` on the `search` tsvector (title,
//! description, notes; stemmed, so `flood` finds `Flooded`), exact
//! `category`, any of `statuses`, severity and reported-time bounds.
//! Ordered by `reported_ms` DESC, then event id DESC (the index
//! `events_by_reported`), keyset-paged after a cursor. An event in full is
//! its saved document's view (`documents`, written with the `events` row
//! by the projector) with the media its `media_attached` entries name
//! (`event_media`), and every entry about it from the log in HLC order
//! (then author, then seq) as its history.
//!
//! Entries a revocation took away (`super::revoked`) are left out of an
//! event's history and its rebuilt document, and marked in the timeline.
//!
//! Never does: decide what a caller may see or ask (the API parsed and
//! bounded the question; redaction is `sentinel_http`'s).

use sentinel_schema::query::{
    Cluster, ClusterQuery, Clusters, EventPage, EventRecord, EventSearch, EventSummary, HistoryItem,
};
use sentinel_schema::{
    AuthorId, BodyKind, EntryId, EventDoc, EventId, Hlc, MediaRef, MediaType, Point, SignedEntry,
    Status,
};
use tokio_postgres::{IsolationLevel, Row};

use super::filter::{Boxes, Where};
use super::verdict::COUNTS;
use super::{id16, id32, int, uint, PgStore, StoreError};

/// Which entries a page of the timeline is about; every part optional.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TimelineFilter {
    pub author: Option<AuthorId>,
    pub event: Option<EventId>,
    pub kind: Option<BodyKind>,
    /// HLC wall time from (inclusive), Unix ms.
    pub from: Option<i64>,
    /// HLC wall time to (exclusive), Unix ms.
    pub to: Option<i64>,
    /// Newest first: the order reversed (a cursor then continues towards
    /// older entries).
    pub newest_first: bool,
}

/// Where a page of the timeline continues: after this entry in the order
/// of HLC, then author, then seq. The numbers are the cursor's as handed
/// out (any `i64` the columns could hold).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimelineCursor {
    pub hlc_ms: i64,
    pub hlc_counter: i64,
    pub author: AuthorId,
    pub seq: i64,
}

/// One entry of the log as the timeline lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelineRow {
    pub id: EntryId,
    pub author: AuthorId,
    pub seq: u64,
    /// `None`: a kind this build does not know.
    pub kind: Option<BodyKind>,
    pub actor: Option<String>,
    pub event: Option<EventId>,
    pub hlc: Hlc,
    /// When the hub stored it, Unix ms.
    pub received_ms: i64,
    /// The author's stored certificate, if the hub holds one.
    pub certificate_der: Option<Vec<u8>>,
    /// Whether a revocation learned after the entry arrived took it away:
    /// its author is revoked and its seq is past the last valid one. The
    /// log keeps it as evidence; nothing else counts it.
    pub revoked: bool,
}

impl TimelineRow {
    /// The cursor of the page that continues after this row.
    pub fn cursor(&self) -> TimelineCursor {
        TimelineCursor {
            hlc_ms: i64::try_from(self.hlc.wall_ms).unwrap_or(i64::MAX),
            hlc_counter: i64::from(self.hlc.counter),
            author: self.author,
            seq: i64::try_from(self.seq).unwrap_or(i64::MAX),
        }
    }
}

/// The columns of an event summary, as [`summary`] reads them (the
/// distance, when asked for, follows as column 12).
const SUMMARY_COLUMNS: &str = "e.event, e.title, e.category, e.severity, e.status, e.assignee,
    ST_X(e.geog::geometry), ST_Y(e.geog::geometry), e.reported_ms, e.n_notes, e.n_media,
    e.conflicts <> '{}'::jsonb";

impl PgStore {
    /// One page of the events `search` finds, newest report first (see the
    /// module docs).
    pub async fn search_events(&self, search: &EventSearch) -> Result<EventPage, StoreError> {
        let f = &search.filter;
        let mut w = Where::default();
        let distance = match w.events(f)? {
            Some(point) => format!(", ST_Distance(e.geog, {point})"),
            None => String::new(),
        };
        if let Some(after) = &search.after {
            let (a, b) = (
                w.arg(int(after.reported_ms, "events.reported_ms")?),
                w.arg(after.event.0.to_vec()),
            );
            w.and(format!("(e.reported_ms, e.event) < ({a}, {b})"));
        }
        // One more than asked: it says whether another page follows.
        let lim = w.arg(i64::try_from(search.limit.saturating_add(1)).unwrap_or(i64::MAX));
        let sql = format!(
            "SELECT {SUMMARY_COLUMNS}{distance} FROM events e {}
             ORDER BY e.reported_ms DESC, e.event DESC LIMIT {lim}",
            w.clause()
        );
        let client = self.client().await?;
        // Prepared once per connection and query shape (the filters a
        // request combines), not planned afresh on every request.
        let statement = client.prepare_cached(&sql).await?;
        let rows = client.query(&statement, &w.refs()).await?;
        let with_distance = f.near.is_some();
        let items = rows
            .iter()
            .map(|r| summary(r, with_distance))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(EventPage::from_rows(items, search.limit))
    }

    /// The events `query.filter` finds, grouped on the query's grid (see
    /// `ClusterQuery`) by PostgreSQL, the largest clusters first; with
    /// `snap`, each location is rounded to that grid first (half away from
    /// zero, as redaction rounds).
    pub async fn clusters(&self, query: &ClusterQuery) -> Result<Clusters, StoreError> {
        let mut w = Where::default();
        let (x, y) = ("ST_X(e.geog::geometry)", "ST_Y(e.geog::geometry)");
        let (lon, lat) = match query.snap {
            Some(step) => {
                let s = w.arg(step);
                let round = |v: &str| format!("trunc({v} / {s} + sign({v}) * 0.5) * {s}");
                (round(x), round(y))
            }
            None => (x.to_owned(), y.to_owned()),
        };
        w.events(&query.filter)?;
        let (cols, rows) = query.grid();
        let cell = w.arg(query.cell_degrees());
        // A millionth of a cell up, so a location snapped onto a cell's
        // edge falls in the cell it starts.
        let nudge = w.arg(1e-6_f64);
        let (cols, rows) = (w.arg(cols - 1), w.arg(rows - 1));
        let lim = w.arg(i64::try_from(query.limit.saturating_add(1)).unwrap_or(i64::MAX));
        let sql = format!(
            "SELECT LEAST(floor((g.y + 90) / {cell} + {nudge})::bigint, {rows}) AS r,
                    LEAST(floor((g.x + 180) / {cell} + {nudge})::bigint, {cols}) AS k,
                    avg(g.x), avg(g.y), count(*), min(g.event_hex),
                    (sum(count(*)) OVER ())::bigint
             FROM (SELECT e.event_hex, {lon} AS x, {lat} AS y FROM events e {}) g
             GROUP BY r, k ORDER BY count(*) DESC, r, k LIMIT {lim}",
            w.clause()
        );
        let client = self.client().await?;
        let statement = client.prepare_cached(&sql).await?;
        let found = client.query(&statement, &w.refs()).await?;
        let mut out = Clusters::default();
        for r in &found {
            out.total = uint(r.get(6), "events (count)")?;
            if out.clusters.len() == query.limit {
                out.truncated = true;
                break;
            }
            let count = uint(r.get(4), "events (count)")?;
            let event = if count == 1 {
                let hex: String = r.get(5);
                Some(
                    hex.parse::<EventId>()
                        .map_err(|_| StoreError::CorruptColumn {
                            column: "events.event_hex",
                        })?,
                )
            } else {
                None
            };
            out.clusters.push(Cluster {
                lon: r.get(2),
                lat: r.get(3),
                count,
                event,
            });
        }
        Ok(out)
    }

    /// One event in full: the view of its saved document, who reported it
    /// and its history, read in one snapshot; `None` when the `events`
    /// view does not show it (unknown, or its document not complete yet).
    /// `own` is the hub's key: the history marks its entries `local`.
    pub async fn event_record(
        &self,
        event: &EventId,
        own: Option<&AuthorId>,
    ) -> Result<Option<EventRecord>, StoreError> {
        let mut client = self.client().await?;
        let tx = client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await?;
        let id = event.0.as_slice();
        // Every request for an event asks these four (its redactions too):
        // prepared once per connection, and sent together (pipelined on the
        // connection), so the event costs one round trip after `BEGIN`, not
        // one each.
        let (doc, media, history, of_events) = futures_util::future::try_join4(
            tx.prepare_cached(
                "SELECT d.doc FROM events e JOIN documents d ON d.event = e.event
                 WHERE e.event = $1",
            ),
            tx.prepare_cached(
                "SELECT hash, mime, size, name FROM event_media WHERE event = $1
                 ORDER BY name, hash",
            ),
            tx.prepare_cached(&format!(
                "SELECT id, author, seq, kind, actor, hlc_ms, hlc_counter FROM entries e
                 WHERE event = $1 AND {COUNTS}
                 ORDER BY hlc_ms, hlc_counter, author, seq"
            )),
            tx.prepare_cached(super::redactions::OF_EVENTS),
        )
        .await?;
        let ((row, attached, history), redactions) = futures_util::future::try_join(
            async {
                futures_util::future::try_join3(
                    tx.query_opt(&doc, &[&id]),
                    tx.query(&media, &[&id]),
                    tx.query(&history, &[&id]),
                )
                .await
                .map_err(StoreError::from)
            },
            super::redactions::of_events_by(&*tx, &of_events, &[id]),
        )
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let doc = match EventDoc::load(row.get(0)) {
            Ok(doc) => doc,
            // A saved document that no longer loads is rebuilt from the
            // log, as the projector would.
            Err(_) => {
                let rows = tx
                    .query(
                        &format!(
                            "SELECT pos, bytes FROM entries e WHERE event = $1 AND kind = $2
                                 AND {COUNTS}
                             ORDER BY pos"
                        ),
                        &[&id, &i16::from(BodyKind::EventChange as u8)],
                    )
                    .await?;
                rebuilt(event, &rows)?
            }
        };
        tx.commit().await?;
        let attached = attached
            .iter()
            .map(media_ref)
            .collect::<Result<Vec<_>, _>>()?;
        let history = history
            .iter()
            .map(|r| history_item(r, own))
            .collect::<Result<Vec<_>, _>>()?;
        let mut view = doc.view().map_err(|source| StoreError::Document {
            event: *event,
            source,
        })?;
        if let Some(set) = redactions.get(event) {
            set.mask(&mut view);
        }
        // Nodes attach photos with `media_attached` entries (the
        // `event_media` view, which the list's `n_media` counts), not in
        // the document; one the document lists too is shown once.
        view.media
            .retain(|m| !attached.iter().any(|a| a.hash == m.hash));
        view.media.splice(0..0, attached);
        let reported_by = history
            .iter()
            .find(|h| h.kind == Some(BodyKind::EventChange))
            .and_then(|h| h.actor.clone());
        Ok(Some(EventRecord {
            id: *event,
            view,
            reported_by,
            history,
        }))
    }

    /// The events whose location lies in the box
    /// `[min_lon, min_lat, max_lon, max_lat]` (`min_lon > max_lon` crosses
    /// the antimeridian), in id order, answered with
    /// `ST_Intersects(geog, ST_MakeEnvelope(…, 4326)::geography)` through
    /// the GiST index on `events.geog`, in the slices of `super::filter`.
    pub async fn ids_in_bbox(
        &self,
        min_lon: f64,
        min_lat: f64,
        max_lon: f64,
        max_lat: f64,
    ) -> Result<Vec<EventId>, StoreError> {
        let boxes = Boxes::of_corners([min_lon, min_lat, max_lon, max_lat]);
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT DISTINCT e.event
                 FROM unnest($1::float8[], $2::float8[], $3::float8[], $4::float8[])
                     AS b(lo, bottom, hi, top)
                 JOIN events e ON ST_Intersects(e.geog,
                     ST_MakeEnvelope(b.lo, b.bottom, b.hi, b.top, 4326)::geography)
                 ORDER BY e.event",
                &[&boxes.lo, &boxes.bottom, &boxes.hi, &boxes.top],
            )
            .await?;
        rows.iter()
            .map(|r| id16(r.get(0), "events.event").map(EventId))
            .collect()
    }

    /// At most `limit` entries of the log matching `filter`, in HLC order
    /// (then author, then seq: a total order; reversed when
    /// `filter.newest_first`), after `after`.
    pub async fn timeline(
        &self,
        filter: &TimelineFilter,
        after: Option<TimelineCursor>,
        limit: usize,
    ) -> Result<Vec<TimelineRow>, StoreError> {
        let mut w = Where::default();
        if let Some(a) = filter.author {
            let x = w.arg(a.0.to_vec());
            w.and(format!("e.author = {x}"));
        }
        if let Some(ev) = filter.event {
            let x = w.arg(ev.0.to_vec());
            w.and(format!("e.event = {x}"));
        }
        if let Some(k) = filter.kind {
            let x = w.arg(i16::from(k as u8));
            w.and(format!("e.kind = {x}"));
        }
        if let Some(f) = filter.from {
            let x = w.arg(f);
            w.and(format!("e.hlc_ms >= {x}"));
        }
        if let Some(t) = filter.to {
            let x = w.arg(t);
            w.and(format!("e.hlc_ms < {x}"));
        }
        if let Some(c) = after {
            let (a, b, c, d) = (
                w.arg(c.hlc_ms),
                w.arg(c.hlc_counter),
                w.arg(c.author.0.to_vec()),
                w.arg(c.seq),
            );
            let (bound, past) = if filter.newest_first {
                ("<=", "<")
            } else {
                (">=", ">")
            };
            w.and(format!(
                // The first term lets the (hlc_ms, hlc_counter) index bound
                // the scan.
                "e.hlc_ms {bound} {a} AND (e.hlc_ms, e.hlc_counter, e.author, e.seq) {past} \
                 ({a}, {b}, {c}, {d})"
            ));
        }
        let lim = w.arg(i64::try_from(limit).unwrap_or(i64::MAX));
        let dir = if filter.newest_first { " DESC" } else { "" };
        let sql = format!(
            "SELECT e.id, e.author, e.seq, e.kind, e.actor, e.event, e.hlc_ms, e.hlc_counter,
                 e.received_ms, c.der, NOT {COUNTS}
             FROM entries e LEFT JOIN certificates c ON c.author = e.author
             {}
             ORDER BY e.hlc_ms{dir}, e.hlc_counter{dir}, e.author{dir}, e.seq{dir}
             LIMIT {lim}",
            w.clause()
        );
        let client = self.client().await?;
        // Prepared once per connection and query shape.
        let statement = client.prepare_cached(&sql).await?;
        let rows = client.query(&statement, &w.refs()).await?;
        rows.iter()
            .map(|r| {
                let event: Option<&[u8]> = r.get(5);
                Ok(TimelineRow {
                    id: EntryId(id32(r.get(0), "entries.id")?),
                    author: AuthorId(id32(r.get(1), "entries.author")?),
                    seq: uint(r.get(2), "entries.seq")?,
                    kind: kind(r.get(3)),
                    actor: r.get(4),
                    event: event
                        .map(|e| id16(e, "entries.event").map(EventId))
                        .transpose()?,
                    hlc: hlc(r.get(6), r.get(7))?,
                    received_ms: r.get(8),
                    certificate_der: r.get(9),
                    revoked: r.get(10),
                })
            })
            .collect()
    }
}

/// An event summary from the columns of [`SUMMARY_COLUMNS`].
fn summary(r: &Row, with_distance: bool) -> Result<EventSummary, StoreError> {
    let corrupt = |column| StoreError::CorruptColumn { column };
    Ok(EventSummary {
        id: EventId(id16(r.get(0), "events.event")?),
        title: r.get(1),
        category: r.get(2),
        severity: u8::try_from(r.get::<_, i16>(3)).map_err(|_| corrupt("events.severity"))?,
        status: r
            .get::<_, &str>(4)
            .parse::<Status>()
            .map_err(|_| corrupt("events.status"))?,
        assignee: r.get(5),
        location: Point::new(r.get(6), r.get(7)).map_err(|_| corrupt("events.geog"))?,
        reported_ms: uint(r.get(8), "events.reported_ms")?,
        n_notes: u32::try_from(r.get::<_, i32>(9)).map_err(|_| corrupt("events.n_notes"))?,
        n_media: u32::try_from(r.get::<_, i32>(10)).map_err(|_| corrupt("events.n_media"))?,
        has_conflicts: r.get(11),
        distance_m: if with_distance { r.get(12) } else { None },
    })
}

/// An event's document rebuilt from its changes (the `pos, bytes` rows of
/// its `event_change` entries, in log order).
fn rebuilt(event: &EventId, rows: &[Row]) -> Result<EventDoc, StoreError> {
    let mut entries = Vec::with_capacity(rows.len());
    for r in rows {
        let pos: i64 = r.get(0);
        entries.push(
            SignedEntry::from_bytes(r.get::<_, Vec<u8>>(1))
                .map_err(|source| StoreError::CorruptEntry { pos, source })?,
        );
    }
    let changes = EventDoc::changes_of(&entries);
    EventDoc::from_changes(&changes).map_err(|source| StoreError::Document {
        event: *event,
        source,
    })
}

/// A media reference from `hash, mime, size, name` of `event_media`.
fn media_ref(r: &Row) -> Result<MediaRef, StoreError> {
    let corrupt = |column| StoreError::CorruptColumn { column };
    Ok(MediaRef {
        hash: id32(r.get(0), "event_media.hash")?,
        mime: MediaType::from_mime(r.get(1)).ok_or(corrupt("event_media.mime"))?,
        size: uint(r.get(2), "event_media.size")?,
        name: r.get(3),
    })
}

/// One history item from `id, author, seq, kind, actor, hlc_ms,
/// hlc_counter`.
fn history_item(r: &Row, own: Option<&AuthorId>) -> Result<HistoryItem, StoreError> {
    let author = AuthorId(id32(r.get(1), "entries.author")?);
    Ok(HistoryItem {
        entry: EntryId(id32(r.get(0), "entries.id")?),
        seq: uint(r.get(2), "entries.seq")?,
        kind: kind(r.get(3)),
        actor: r.get(4),
        hlc: hlc(r.get(5), r.get(6))?,
        local: own == Some(&author),
        author,
    })
}

fn kind(column: i16) -> Option<BodyKind> {
    u64::try_from(column)
        .ok()
        .and_then(|k| BodyKind::from_wire(k).ok())
}

fn hlc(wall_ms: i64, counter: i64) -> Result<Hlc, StoreError> {
    Ok(Hlc {
        wall_ms: uint(wall_ms, "entries.hlc_ms")?,
        counter: u32::try_from(counter).map_err(|_| StoreError::CorruptColumn {
            column: "entries.hlc_counter",
        })?,
    })
}
