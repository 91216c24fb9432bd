//! What a webhook subscription asks for ([`Rule`]), whether an event
//! change the projector wrote matches it ([`Fact`], [`Rule::matches`]),
//! and the JSON body a delivery carries ([`payload`]).
//!
//! A rule is the API's JSON fields, each optional (unset: anything):
//!
//! - `kinds`: the entry kinds that made the change (`event_change`,
//!   `media_attached`); at least one of the change's must be listed;
//! - `categories`: the event's category is one of these;
//! - `min_severity`: the event's severity is at least this (1..=5);
//! - `area`: `[min_lon, min_lat, max_lon, max_lat]`, the event lies inside
//!   (`min_lon > max_lon` crosses the antimeridian:
//!   `sentinel_schema::Bounds`);
//! - `status_from`, `status_to`: with either set, only a change of status
//!   matches, from that status (unset: any, a new event's "none"
//!   included only when `status_from` is unset) to that status.
//!
//! Pure: no SQL, no clock.

use std::collections::BTreeSet;

use sentinel_schema::limits::{MAX_CATEGORY_BYTES, MAX_SEVERITY, MIN_SEVERITY};
use sentinel_schema::{BodyKind, Bounds, EventId, EventView, Status};
use serde_json::{json, Map, Value};

/// The entry kinds that change an event's view, the ones a rule may name.
pub const KINDS: [BodyKind; 2] = [BodyKind::EventChange, BodyKind::MediaAttached];

/// The rule's fields, as the API and the store's `rule` column name them.
pub const RULE_FIELDS: [&str; 6] = [
    "kinds",
    "categories",
    "min_severity",
    "area",
    "status_from",
    "status_to",
];

/// Most categories one rule lists.
pub const MAX_CATEGORIES: usize = 64;

/// A subscription's rule (see the module docs).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rule {
    pub kinds: Vec<BodyKind>,
    pub categories: Vec<String>,
    pub min_severity: Option<u8>,
    pub area: Option<Bounds>,
    pub status_from: Option<Status>,
    pub status_to: Option<Status>,
}

/// A rule field refused: which, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct RuleError {
    pub field: &'static str,
    pub reason: String,
}

fn refuse(field: &'static str, reason: impl Into<String>) -> RuleError {
    RuleError {
        field,
        reason: reason.into(),
    }
}

/// `map[field]` unless absent or `null`.
fn get<'a>(map: &'a Map<String, Value>, field: &str) -> Option<&'a Value> {
    map.get(field).filter(|v| !v.is_null())
}

fn strings(map: &Map<String, Value>, field: &'static str) -> Result<Vec<String>, RuleError> {
    let Some(v) = get(map, field) else {
        return Ok(Vec::new());
    };
    let list = v
        .as_array()
        .ok_or_else(|| refuse(field, "must be a list of strings"))?;
    if list.len() > MAX_CATEGORIES {
        return Err(refuse(field, format!("at most {MAX_CATEGORIES} items")));
    }
    list.iter()
        .map(|s| {
            s.as_str()
                .map(str::to_owned)
                .ok_or_else(|| refuse(field, "must be a list of strings"))
        })
        .collect()
}

fn status(map: &Map<String, Value>, field: &'static str) -> Result<Option<Status>, RuleError> {
    let Some(v) = get(map, field) else {
        return Ok(None);
    };
    let names: Vec<&str> = Status::ALL.iter().map(|s| s.as_str()).collect();
    v.as_str()
        .and_then(|s| s.parse::<Status>().ok())
        .map(Some)
        .ok_or_else(|| refuse(field, format!("must be one of {}", names.join(", "))))
}

impl Rule {
    /// The rule in `map`'s [`RULE_FIELDS`] (other members are ignored;
    /// absent or `null` ones are unset), each checked, the first refusal
    /// naming its field.
    pub fn parse(map: &Map<String, Value>) -> Result<Rule, RuleError> {
        let mut kinds = Vec::new();
        for name in strings(map, "kinds")? {
            let kind = KINDS
                .into_iter()
                .find(|k| k.as_str() == name)
                .ok_or_else(|| {
                    refuse(
                        "kinds",
                        format!("{name:?}: the kinds that change events are event_change and media_attached"),
                    )
                })?;
            if !kinds.contains(&kind) {
                kinds.push(kind);
            }
        }
        let categories = strings(map, "categories")?;
        if let Some(c) = categories
            .iter()
            .find(|c| c.is_empty() || c.len() > MAX_CATEGORY_BYTES)
        {
            return Err(refuse(
                "categories",
                format!("{c:?}: a category is 1 to {MAX_CATEGORY_BYTES} bytes"),
            ));
        }
        let min_severity = match get(map, "min_severity") {
            None => None,
            Some(v) => Some(
                v.as_u64()
                    .filter(|s| (u64::from(MIN_SEVERITY)..=u64::from(MAX_SEVERITY)).contains(s))
                    .and_then(|s| u8::try_from(s).ok())
                    .ok_or_else(|| {
                        refuse(
                            "min_severity",
                            format!("must be an integer {MIN_SEVERITY}..={MAX_SEVERITY}"),
                        )
                    })?,
            ),
        };
        let area = match get(map, "area") {
            None => None,
            Some(v) => {
                let shape = || {
                    refuse(
                        "area",
                        "must be [min_lon, min_lat, max_lon, max_lat] (min_lon > max_lon crosses the antimeridian)",
                    )
                };
                let list = v.as_array().filter(|l| l.len() == 4).ok_or_else(shape)?;
                let n: Vec<f64> = list
                    .iter()
                    .map(|x| x.as_f64().ok_or_else(shape))
                    .collect::<Result<_, _>>()?;
                Some(
                    Bounds::new(n[0], n[1], n[2], n[3])
                        .map_err(|e| refuse("area", e.to_string()))?,
                )
            }
        };
        Ok(Rule {
            kinds,
            categories,
            min_severity,
            area,
            status_from: status(map, "status_from")?,
            status_to: status(map, "status_to")?,
        })
    }

    /// The rule as the JSON object [`Rule::parse`] reads (every field,
    /// unset ones `null` or empty).
    pub fn to_json(&self) -> Map<String, Value> {
        let mut map = Map::new();
        let kinds: Vec<&str> = self.kinds.iter().map(|k| k.as_str()).collect();
        map.insert("kinds".into(), json!(kinds));
        map.insert("categories".into(), json!(self.categories));
        map.insert("min_severity".into(), json!(self.min_severity));
        map.insert("area".into(), json!(self.area.map(|a| a.corners())));
        map.insert(
            "status_from".into(),
            json!(self.status_from.map(Status::as_str)),
        );
        map.insert(
            "status_to".into(),
            json!(self.status_to.map(Status::as_str)),
        );
        map
    }

    /// Whether the change `fact` describes matches.
    pub fn matches(&self, fact: &Fact<'_>) -> bool {
        let view = fact.view;
        if !self.kinds.is_empty() && !fact.kinds.iter().any(|k| self.kinds.contains(k)) {
            return false;
        }
        if !self.categories.is_empty() && !self.categories.contains(&view.category) {
            return false;
        }
        if self.min_severity.is_some_and(|min| view.severity < min) {
            return false;
        }
        if self.area.is_some_and(|a| !a.contains(view.location)) {
            return false;
        }
        if self.status_from.is_some() || self.status_to.is_some() {
            let old = fact.before.as_ref().map(|b| b.status);
            if old == Some(view.status) {
                return false;
            }
            if self.status_from.is_some_and(|from| old != Some(from)) {
                return false;
            }
            if self.status_to.is_some_and(|to| view.status != to) {
                return false;
            }
        }
        true
    }
}

/// An event as the `events` view showed it before the change.
#[derive(Debug, Clone, PartialEq)]
pub struct Before {
    pub status: Status,
    pub severity: u8,
    pub category: String,
}

/// One change of one event, as the projector wrote it: the kinds of the
/// entries that made it, the event before (`None`: new to the views) and
/// after.
#[derive(Debug, Clone)]
pub struct Fact<'a> {
    pub event: EventId,
    pub kinds: BTreeSet<BodyKind>,
    pub before: Option<Before>,
    pub view: &'a EventView,
}

impl Fact<'_> {
    /// `event.created` for an event new to the views, else `event.updated`.
    pub fn kind(&self) -> &'static str {
        if self.before.is_some() {
            "event.updated"
        } else {
            "event.created"
        }
    }
}

/// The JSON body of delivery `id` of `subscription` for `fact` (keys in
/// sorted order; the same bytes on every attempt). The event is shown as
/// an admin sees it, without notes, media or history.
pub fn payload(id: &[u8; 16], subscription: &[u8; 16], fact: &Fact<'_>, created_ms: u64) -> String {
    let v = fact.view;
    let kinds: Vec<&str> = fact.kinds.iter().map(|k| k.as_str()).collect();
    json!({
        "delivery": hex::encode(id),
        "subscription": hex::encode(subscription),
        "type": fact.kind(),
        "created_ms": created_ms,
        "entry_kinds": kinds,
        "event": {
            "id": fact.event.to_hex(),
            "title": v.title,
            "description": v.description,
            "category": v.category,
            "severity": v.severity,
            "status": v.status.as_str(),
            "assignee": v.assignee,
            "location": {"lon": v.location.lon(), "lat": v.location.lat()},
            "reported_ms": v.reported_ms,
            "n_notes": v.notes.len(),
            "n_media": v.media.len(),
        },
        "previous": fact.before.as_ref().map(|b| json!({
            "status": b.status.as_str(),
            "severity": b.severity,
            "category": b.category,
        })),
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use sentinel_schema::Point;

    fn view(category: &str, severity: u8, lon: f64, status: Status) -> EventView {
        EventView {
            title: "t".into(),
            description: "d".into(),
            category: category.into(),
            severity,
            status,
            assignee: None,
            location: Point::new(lon, 10.0).unwrap(),
            reported_ms: 1,
            notes: Vec::new(),
            media: Vec::new(),
            conflicts: Default::default(),
        }
    }

    fn rule(v: Value) -> Result<Rule, RuleError> {
        Rule::parse(v.as_object().unwrap())
    }

    fn fact<'a>(view: &'a EventView, before: Option<Status>) -> Fact<'a> {
        Fact {
            event: EventId([1; 16]),
            kinds: BTreeSet::from([BodyKind::EventChange]),
            before: before.map(|status| Before {
                status,
                severity: 1,
                category: "x".into(),
            }),
            view,
        }
    }

    #[test]
    fn each_field_filters() {
        let fire = view("fire", 4, 179.5, Status::Reported);
        let r = rule(json!({"categories": ["fire"], "min_severity": 4,
            "area": [179.0, 0.0, -179.0, 20.0]}))
        .unwrap();
        assert!(r.matches(&fact(&fire, None)));
        assert!(!r.matches(&fact(&view("flood", 4, 179.5, Status::Reported), None)));
        assert!(!r.matches(&fact(&view("fire", 3, 179.5, Status::Reported), None)));
        assert!(!r.matches(&fact(&view("fire", 4, 0.0, Status::Reported), None)));
        let media = rule(json!({"kinds": ["media_attached"]})).unwrap();
        assert!(!media.matches(&fact(&fire, None)));
        assert!(Rule::default().matches(&fact(&fire, None)));
    }

    #[test]
    fn status_rules_match_changes_only() {
        let closed = view("fire", 4, 0.0, Status::Closed);
        let to_closed = rule(json!({"status_to": "closed"})).unwrap();
        assert!(to_closed.matches(&fact(&closed, Some(Status::Resolved))));
        assert!(!to_closed.matches(&fact(&closed, Some(Status::Closed))));
        assert!(to_closed.matches(&fact(&closed, None)));
        let from = rule(json!({"status_from": "resolved", "status_to": "closed"})).unwrap();
        assert!(from.matches(&fact(&closed, Some(Status::Resolved))));
        assert!(!from.matches(&fact(&closed, Some(Status::InProgress))));
        assert!(!from.matches(&fact(&closed, None)));
    }

    #[test]
    fn bad_fields_are_named_and_rules_round_trip() {
        for (body, field) in [
            (json!({"kinds": ["revocation"]}), "kinds"),
            (json!({"kinds": "event_change"}), "kinds"),
            (json!({"categories": [""]}), "categories"),
            (json!({"min_severity": 0}), "min_severity"),
            (json!({"min_severity": 6}), "min_severity"),
            (json!({"area": [0, 0, 1]}), "area"),
            (json!({"area": [0, 10, 1, 5]}), "area"),
            (json!({"area": [0, 0, 181, 5]}), "area"),
            (json!({"status_from": "gone"}), "status_from"),
            (json!({"status_to": 3}), "status_to"),
        ] {
            assert_eq!(rule(body.clone()).unwrap_err().field, field, "{body}");
        }
        let r = rule(json!({"kinds": ["event_change"], "categories": ["fire"],
            "min_severity": 2, "area": [170.0, -20.0, -170.0, 0.0],
            "status_from": "resolved", "status_to": "closed"}))
        .unwrap();
        assert_eq!(Rule::parse(&r.to_json()).unwrap(), r);
    }
}
