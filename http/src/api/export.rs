//! The exports both servers serve: the events a search's filters find, as
//! `GET /api/v1/export.geojson` (a GeoJSON FeatureCollection),
//! `GET /api/v1/export.csv` (CSV, a header row then one event a line) and
//! `GET /api/v1/export.kml` (KML 2.2, one Placemark an event), newest
//! report first.
//!
//! All three take the filters of `GET /api/v1/events` (not its page),
//! refuse the public what the list refuses it, and write the event as the
//! list shows it to the caller ([`EventItem`]): for the public no people,
//! notes or conflicts and the location on the 0.01° grid (invariant 12).
//! Each is streamed page by page as the store hands pages out, never
//! built whole in memory; the formats' writers are the ones the node's
//! command line uses too (`crate::formats`).
//!
//! A page that fails after the answer has started ends it with an error
//! rather than a close: the connection is cut before the body's end, so a
//! client sees a broken transfer, never a short export that looks whole.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use futures_util::stream;
use sentinel_schema::access::Action;
use sentinel_schema::query::{EventFilter, EventPage, EventSearch};
use utoipa::IntoParams;

use super::events::{filter, statuses_schema, visibility, FILTER_PARAMS};
use super::json::{EventItem, Feature, FeatureCollection, Visibility};
use super::{Api, Caller};
use crate::formats::kml::{self, Placemark};
use crate::formats::{csv, rfc3339_of_ms};
use crate::openapi::{BadRequest, Forbidden, Unauthorized, Unavailable};
use crate::params::{Pairs, Params};
use crate::Problem;

/// Events read per page while an export streams.
const EXPORT_PAGE: usize = 500;

/// The media type of `export.csv`.
pub const CSV_MEDIA_TYPE: &str = "text/csv; charset=utf-8";

/// The columns of `export.csv` for those who see everything, in order.
pub const FULL_COLUMNS: &[&str] = &[
    "id",
    "title",
    "category",
    "severity",
    "status",
    "assignee",
    "lon",
    "lat",
    "reported_at",
    "reported_ms",
    "n_notes",
    "n_media",
    "has_conflicts",
];

/// The columns of `export.csv` for the public: no people, notes or
/// conflicts.
pub const PUBLIC_COLUMNS: &[&str] = &[
    "id",
    "title",
    "category",
    "severity",
    "status",
    "lon",
    "lat",
    "reported_at",
    "reported_ms",
    "n_media",
];

/// The query of the exports: the filters of `GET /api/v1/events`, without
/// the page.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct ExportQuery {
    /// `minLon,minLat,maxLon,maxLat` in degrees; `minLon > maxLon` crosses
    /// the antimeridian.
    pub bbox: Option<String>,
    /// `lon,lat` in degrees; needs `radius`.
    pub near: Option<String>,
    /// Metres around `near`, in (0, 20100000]; needs `near`.
    #[param(exclusive_minimum = 0, maximum = 20_100_000)]
    pub radius: Option<f64>,
    /// Words that must all occur in the title, description or notes; 1 to
    /// 1000 bytes, not blank.
    #[param(min_length = 1, max_length = 1000)]
    pub q: Option<String>,
    /// One status, or several separated by commas.
    #[param(schema_with = statuses_schema)]
    pub status: Option<String>,
    /// Exactly this category, 1 to 64 bytes.
    #[param(min_length = 1, max_length = 64)]
    pub category: Option<String>,
    /// Assigned to exactly this account name, 1 to 128 bytes (not for
    /// the public).
    #[param(min_length = 1, max_length = 128)]
    pub assignee: Option<String>,
    #[param(minimum = 1, maximum = 5)]
    pub min_severity: Option<i64>,
    #[param(minimum = 1, maximum = 5)]
    pub max_severity: Option<i64>,
    /// Reported from this time (Unix ms), inclusive.
    #[param(minimum = 0)]
    pub from: Option<i64>,
    /// Reported before this time (Unix ms); not before `from`.
    #[param(minimum = 0)]
    pub to: Option<i64>,
}

/// `GET /api/v1/export.geojson`.
#[utoipa::path(
    get,
    path = "/api/v1/export.geojson",
    tag = "events",
    params(ExportQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The events the filters find, newest report first, \
            streamed as one FeatureCollection.",
            body = FeatureCollection, content_type = "application/geo+json"),
        BadRequest, Unauthorized, Forbidden, Unavailable,
    )
)]
pub async fn export(
    State(api): State<Api>,
    caller: Caller,
    query: Pairs,
) -> Result<Response, Problem> {
    streamed(api, &caller, query, Format::GeoJson).await
}

/// `GET /api/v1/export.csv`.
#[utoipa::path(
    get,
    path = "/api/v1/export.csv",
    tag = "events",
    params(ExportQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The events the filters find, newest report first, \
            streamed as CSV (RFC 4180, UTF-8): a header row, then one event a record. \
            Columns: id, title, category, severity, status, assignee, lon, lat, \
            reported_at (RFC 3339, empty after year 9999), reported_ms, n_notes, n_media, \
            has_conflicts; the public's lack assignee, n_notes and has_conflicts. \
            A text field that a spreadsheet would read as a formula (it starts with =, +, -, \
            @, tab or CR) has a ' put before it.",
            body = String, content_type = "text/csv"),
        BadRequest, Unauthorized, Forbidden, Unavailable,
    )
)]
pub async fn export_csv(
    State(api): State<Api>,
    caller: Caller,
    query: Pairs,
) -> Result<Response, Problem> {
    streamed(api, &caller, query, Format::Csv).await
}

/// `GET /api/v1/export.kml`.
#[utoipa::path(
    get,
    path = "/api/v1/export.kml",
    tag = "events",
    params(ExportQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The events the filters find, newest report first, \
            streamed as one KML 2.2 Document: a Placemark an event, named by its title, \
            its report time as a TimeStamp, its location as a Point and its other fields \
            (those of export.csv) as ExtendedData.",
            body = String, content_type = "application/vnd.google-earth.kml+xml"),
        BadRequest, Unauthorized, Forbidden, Unavailable,
    )
)]
pub async fn export_kml(
    State(api): State<Api>,
    caller: Caller,
    query: Pairs,
) -> Result<Response, Problem> {
    streamed(api, &caller, query, Format::Kml).await
}

/// What an export writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    GeoJson,
    Csv,
    Kml,
}

impl Format {
    fn content_type(self) -> &'static str {
        match self {
            Format::GeoJson => "application/geo+json",
            Format::Csv => CSV_MEDIA_TYPE,
            Format::Kml => kml::MEDIA_TYPE,
        }
    }

    /// What comes before the first event.
    fn start(self, v: Visibility) -> String {
        match self {
            Format::GeoJson => r#"{"type":"FeatureCollection","features":["#.to_owned(),
            Format::Csv => {
                let mut out = String::new();
                csv::record(&mut out, columns(v));
                out
            }
            Format::Kml => kml::document_start("Sentinel events"),
        }
    }

    /// Appends one event; `first` when none came before it.
    fn item(self, out: &mut String, item: EventItem, first: bool) -> Result<(), serde_json::Error> {
        match self {
            Format::GeoJson => {
                if !first {
                    out.push(',');
                }
                out.push_str(&serde_json::to_string(&Feature::of(item))?);
            }
            Format::Csv => {
                // What people typed is defused; numbers, ids and times
                // are never formulas.
                let values: Vec<String> = fields(&item)
                    .into_iter()
                    .map(|(name, v)| match name {
                        "title" | "category" | "status" | "assignee" => {
                            csv::defuse(&v).into_owned()
                        }
                        _ => v,
                    })
                    .collect();
                csv::record(out, &values);
            }
            Format::Kml => {
                let when = rfc3339_of_ms(item.reported_ms);
                // The name, time and point have elements of their own.
                let data: Vec<(&str, String)> = fields(&item)
                    .into_iter()
                    .filter(|(name, _)| !matches!(*name, "title" | "lon" | "lat" | "reported_at"))
                    .collect();
                kml::placemark(
                    out,
                    &Placemark {
                        name: &item.title,
                        description: None,
                        when: when.as_deref(),
                        lon: item.location.lon,
                        lat: item.location.lat,
                        data: &data,
                    },
                );
            }
        }
        Ok(())
    }

    /// What comes after the last event.
    fn end(self) -> &'static str {
        match self {
            Format::GeoJson => "]}",
            Format::Csv => "",
            Format::Kml => kml::DOCUMENT_END,
        }
    }
}

/// The columns of `export.csv` as `v` sees events.
pub fn columns(v: Visibility) -> &'static [&'static str] {
    if v.is_public() {
        PUBLIC_COLUMNS
    } else {
        FULL_COLUMNS
    }
}

/// An event's fields as text, named, in the order of [`columns`]: what
/// redaction took out of `item` is not there.
pub fn fields(item: &EventItem) -> Vec<(&'static str, String)> {
    let mut out = vec![
        ("id", item.id.clone()),
        ("title", item.title.clone()),
        ("category", item.category.clone()),
        ("severity", item.severity.to_string()),
        ("status", item.status.clone()),
    ];
    if let Some(assignee) = &item.assignee {
        out.push(("assignee", assignee.clone().unwrap_or_default()));
    }
    // `f64`'s Display is the shortest text that reads back as the same
    // value.
    out.push(("lon", item.location.lon.to_string()));
    out.push(("lat", item.location.lat.to_string()));
    out.push((
        "reported_at",
        rfc3339_of_ms(item.reported_ms).unwrap_or_default(),
    ));
    out.push(("reported_ms", item.reported_ms.to_string()));
    if let Some(n) = item.n_notes {
        out.push(("n_notes", n.to_string()));
    }
    out.push(("n_media", item.n_media.to_string()));
    if let Some(c) = item.has_conflicts {
        out.push(("has_conflicts", c.to_string()));
    }
    out
}

/// Where a streamed export is.
enum Next {
    /// A page read, to be written.
    Page(EventPage),
    /// Reading the next page failed: end the body with an error.
    Failed,
    Done,
}

/// The state an export's stream carries from page to page.
struct Pages {
    api: Api,
    filter: EventFilter,
    next: Next,
    /// Whether what comes before the first event was written.
    started: bool,
    /// Events written so far.
    written: usize,
}

/// The export in `format` of what the caller's filters find.
async fn streamed(
    api: Api,
    caller: &Caller,
    query: Pairs,
    format: Format,
) -> Result<Response, Problem> {
    let v = visibility(caller.may(Action::Export, None)?);
    let p = Params::from_query(query, FILTER_PARAMS)?;
    let filter = filter(&p, v.is_public())?;
    // The first page is read before the answer starts, so a store that
    // fails says 503 rather than cutting a 200 short.
    let first = api
        .backend
        .search(EventSearch {
            filter: filter.clone(),
            limit: EXPORT_PAGE,
            after: None,
        })
        .await?;
    let start = Pages {
        api,
        filter,
        next: Next::Page(first),
        started: false,
        written: 0,
    };
    let pages = stream::unfold(start, move |mut st| async move {
        let page = match std::mem::replace(&mut st.next, Next::Done) {
            Next::Page(page) => page,
            Next::Failed => {
                let cut = std::io::Error::other("export: a page could not be read");
                return Some((Err(cut), st));
            }
            Next::Done => return None,
        };
        let mut chunk = String::new();
        if !st.started {
            chunk.push_str(&format.start(v));
            st.started = true;
        }
        for s in &page.items {
            if let Err(e) = format.item(&mut chunk, EventItem::of(s, v), st.written == 0) {
                // Serialising plain data cannot fail; a failure would be a
                // bug, answered by cutting the answer short.
                tracing::error!("export: {e}");
                st.next = Next::Failed;
                return Some((Ok(Bytes::from(chunk)), st));
            }
            st.written += 1;
        }
        match page.next {
            Some(after) => {
                let search = EventSearch {
                    filter: st.filter.clone(),
                    limit: EXPORT_PAGE,
                    after: Some(after),
                };
                st.next = match st.api.backend.search(search).await {
                    Ok(next) => Next::Page(next),
                    Err(e) => {
                        tracing::error!("export: a page failed: {e:?}");
                        Next::Failed
                    }
                };
            }
            None => chunk.push_str(format.end()),
        }
        Some((Ok::<_, std::io::Error>(Bytes::from(chunk)), st))
    });
    Ok((
        [(header::CONTENT_TYPE, format.content_type())],
        Body::from_stream(pages),
    )
        .into_response())
}
