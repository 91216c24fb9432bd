//! Who may do what: the authorisation matrix of the node's and the hub's
//! HTTP APIs, as data, so both servers enforce one table and
//! `docs/security.md` shows the same table ([`matrix_markdown`]; a test
//! keeps the two equal).
//!
//! A person's role comes from `role_grant` entries ([`effective_roles`]):
//! they replicate, so a node enforces roles granted on the hub while
//! offline. Object-level rules depend on the event: an officer edits only
//! events reported by them or assigned to them ([`Scope::Own`]), and only
//! the assignee works an assigned event ([`Scope::Assignee`]).
//!
//! Pure: no IO.

use std::collections::BTreeMap;

use crate::body::{PersonRole, RoleGrant};
use crate::event::EventView;
use crate::geo::Point;
use crate::hlc::Hlc;
use crate::ids::{AuthorId, EntryId};

/// Everything a person can ask of an API, one per route (or group of
/// routes that read the same thing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Action {
    /// Search events; read one event.
    ReadEvents,
    /// Read an event's history and its conflicts.
    ReadHistory,
    /// Download a photo or video.
    ReadMedia,
    /// Report a new event.
    Report,
    /// Change an event's fields.
    Edit,
    /// Add a note to an event.
    Note,
    /// Attach a photo or video to an event.
    Attach,
    /// Assign an event to an officer.
    Assign,
    /// Accept, start or resolve an event's work.
    Work,
    /// Close or reopen an event.
    CloseReopen,
    /// The node's outbox and receipts.
    ReadOutbox,
    /// The hub's merged timeline of entries.
    ReadTimeline,
    /// The hub's node status.
    ReadNodes,
    /// Export events as GeoJSON.
    Export,
    /// Subscribe to the live feed.
    Subscribe,
    /// List people, create accounts, grant roles, disable accounts.
    ManageUsers,
    /// Revoke a device.
    RevokeDevice,
    /// Read sensor readings (raw or downsampled) and the sensors list.
    ReadReadings,
    /// The node's links to its peers and hubs, and "sync now".
    Sync,
    /// The hub's webhook subscriptions, their deliveries, replays.
    ManageWebhooks,
    /// Erase personal data from an event: a signed redaction.
    Redact,
}

impl Action {
    pub const ALL: [Action; 21] = [
        Action::ReadEvents,
        Action::ReadHistory,
        Action::ReadMedia,
        Action::Report,
        Action::Edit,
        Action::Note,
        Action::Attach,
        Action::Assign,
        Action::Work,
        Action::CloseReopen,
        Action::ReadOutbox,
        Action::ReadTimeline,
        Action::ReadNodes,
        Action::Export,
        Action::Subscribe,
        Action::ManageUsers,
        Action::RevokeDevice,
        Action::ReadReadings,
        Action::Sync,
        Action::ManageWebhooks,
        Action::Redact,
    ];

    /// The routes this action covers, for the documented matrix.
    pub fn routes(self) -> &'static str {
        match self {
            Action::ReadEvents => "`GET /events`, `GET /events/{id}`",
            Action::ReadHistory => "history and conflicts in `GET /events/{id}`",
            Action::ReadMedia => "`GET /media/{hash}`",
            Action::Report => "`POST /events`",
            Action::Edit => "`PATCH /events/{id}`",
            Action::Note => "`POST /events/{id}/notes`",
            Action::Attach => "`POST /events/{id}/media`",
            Action::Assign => "`POST /events/{id}/assign`",
            Action::Work => "`POST /events/{id}/accept`, `…/start`, `…/resolve`",
            Action::CloseReopen => "`POST /events/{id}/close`, `…/reopen`",
            Action::ReadOutbox => "`GET /outbox` (node)",
            Action::ReadTimeline => "`GET /timeline` (hub)",
            Action::ReadNodes => "`GET /nodes`, `GET /alerts` (hub)",
            Action::Export => "`GET /export.geojson`, `.csv`, `.kml`",
            Action::Subscribe => "`GET /feed`",
            Action::ManageUsers => "`GET/POST /users`, `POST /users/{name}/role`, `…/disable`",
            Action::RevokeDevice => "`POST /devices/{key}/revoke` (hub)",
            Action::ReadReadings => {
                "`GET /sensors/readings`, `GET /sensors`, `GET /sensors/alerts`"
            }
            Action::Sync => "`GET /sync`, `POST /sync` (node)",
            Action::ManageWebhooks => {
                "`GET/POST /webhooks`, `GET/PATCH/DELETE /webhooks/{id}`, `…/deliveries`, \
                 `POST /webhook-deliveries/{id}/replay` (hub)"
            }
            Action::Redact => "`POST /events/{id}/redact` (hub)",
        }
    }
}

/// How far a role may take an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// Never.
    Denied,
    /// Only redacted events: no reporter, assignee, notes or history, the
    /// location coarsened ([`redact`]).
    Redacted,
    /// Only events the person reported or is assigned to.
    Own,
    /// Only events assigned to the person.
    Assignee,
    /// Any object.
    Any,
}

impl Scope {
    fn cell(self) -> &'static str {
        match self {
            Scope::Denied => "—",
            Scope::Redacted => "redacted",
            Scope::Own => "own¹",
            Scope::Assignee => "assignee²",
            Scope::Any => "yes",
        }
    }
}

/// The matrix: what `role` may do with `action`.
pub fn scope(role: PersonRole, action: Action) -> Scope {
    use Action::*;
    use PersonRole::*;
    match (role, action) {
        (None, _) => Scope::Denied,
        (Admin, _) => Scope::Any,
        (Public, ReadEvents | Export | Subscribe) => Scope::Redacted,
        (Public, _) => Scope::Denied,
        (Officer, ReadEvents | ReadHistory | ReadMedia | Export | Subscribe | Report) => Scope::Any,
        (Officer, ReadReadings) => Scope::Any,
        (Officer, Note | ReadOutbox | Sync) => Scope::Any,
        (Officer, Edit | Attach) => Scope::Own,
        (Officer, Work) => Scope::Assignee,
        (
            Officer,
            Assign | CloseReopen | ReadTimeline | ReadNodes | ManageUsers | RevokeDevice
            | ManageWebhooks | Redact,
        ) => Scope::Denied,
    }
}

/// What the rules need to know about the event acted on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EventFacts<'a> {
    /// The actor of the entry that created the event.
    pub reporter: Option<&'a str>,
    pub assignee: Option<&'a str>,
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    #[error("a {role} may not do this")]
    Role { role: &'static str },
    #[error("only the event's reporter or assignee may do this")]
    NotOwn,
    #[error("only the event's assignee may do this")]
    NotAssignee,
}

/// The name of a person role, as the API and the docs write it.
pub fn role_name(role: PersonRole) -> &'static str {
    match role {
        PersonRole::None => "none",
        PersonRole::Public => "public",
        PersonRole::Officer => "officer",
        PersonRole::Admin => "admin",
    }
}

/// A person role from its API name (`admin`, `officer`, `public`, `none`).
pub fn parse_role(name: &str) -> Option<PersonRole> {
    [
        PersonRole::None,
        PersonRole::Public,
        PersonRole::Officer,
        PersonRole::Admin,
    ]
    .into_iter()
    .find(|r| role_name(*r) == name)
}

/// Decides one request: `person` with `role` doing `action`, on `event`
/// when the action concerns one. Returns the scope granted (`Redacted`
/// means the caller must answer with [`redact`]ed events).
pub fn check(
    person: &str,
    role: PersonRole,
    action: Action,
    event: Option<EventFacts<'_>>,
) -> Result<Scope, Denied> {
    let facts = event.unwrap_or_default();
    let is = |who: Option<&str>| who == Some(person);
    match scope(role, action) {
        Scope::Denied => Err(Denied::Role {
            role: role_name(role),
        }),
        Scope::Own if event.is_some() && !(is(facts.reporter) || is(facts.assignee)) => {
            Err(Denied::NotOwn)
        }
        Scope::Assignee if event.is_some() && !is(facts.assignee) => Err(Denied::NotAssignee),
        granted => Ok(granted),
    }
}

/// Grid size for coarsened public locations: 0.01° (about 1.1 km of
/// latitude).
pub const COARSE_DEGREES: f64 = 0.01;

/// An event as the public sees it: no assignee, notes or conflicts; the
/// location snapped to a [`COARSE_DEGREES`] grid. (Reporters never appear
/// in a view; the API leaves out history for the public.)
pub fn redact(view: &EventView) -> EventView {
    let snap = |x: f64| (x / COARSE_DEGREES).round() * COARSE_DEGREES;
    let location =
        Point::new(snap(view.location.lon()), snap(view.location.lat())).unwrap_or(view.location);
    EventView {
        assignee: None,
        notes: Vec::new(),
        conflicts: BTreeMap::new(),
        location,
        ..view.clone()
    }
}

/// One `role_grant` entry, as [`effective_roles`] needs it.
#[derive(Debug, Clone, Copy)]
pub struct Grant<'a> {
    pub hlc: Hlc,
    pub author: AuthorId,
    pub id: EntryId,
    pub grant: &'a RoleGrant,
}

/// Each person's role: the grant with the highest HLC wins (ties broken by
/// author, then entry id, so every store agrees). `PersonRole::None`
/// withdraws every role. The caller passes only grants from authors whose
/// role may write them (hubs); sync already refuses the others.
pub fn effective_roles<'a>(
    grants: impl IntoIterator<Item = Grant<'a>>,
) -> BTreeMap<String, PersonRole> {
    let mut newest: BTreeMap<&str, (Hlc, AuthorId, EntryId, PersonRole)> = BTreeMap::new();
    for g in grants {
        let key = (g.hlc, g.author, g.id, g.grant.role);
        newest
            .entry(g.grant.person.as_str())
            .and_modify(|old| {
                if (key.0, key.1, key.2) > (old.0, old.1, old.2) {
                    *old = key;
                }
            })
            .or_insert(key);
    }
    newest
        .into_iter()
        .filter(|(_, (.., role))| *role != PersonRole::None)
        .map(|(person, (.., role))| (person.to_owned(), role))
        .collect()
}

/// The matrix as the Markdown table in `docs/security.md`.
pub fn matrix_markdown() -> String {
    let roles = [PersonRole::Admin, PersonRole::Officer, PersonRole::Public];
    let mut out = String::from(
        "| action | routes (under `/api/v1`) | admin | officer | public |\n|---|---|---|---|---|\n",
    );
    for action in Action::ALL {
        out.push_str(&format!("| {action:?} | {} |", action.routes()));
        for role in roles {
            out.push_str(&format!(" {} |", scope(role, action).cell()));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn officers_edit_their_own_and_work_only_what_they_are_assigned() {
        let mine = EventFacts {
            reporter: Some("ada"),
            assignee: Some("bo"),
        };
        let ada = |action| check("ada", PersonRole::Officer, action, Some(mine));
        let bo = |action| check("bo", PersonRole::Officer, action, Some(mine));
        let cy = |action| check("cy", PersonRole::Officer, action, Some(mine));
        assert_eq!(ada(Action::Edit), Ok(Scope::Own));
        assert_eq!(bo(Action::Edit), Ok(Scope::Own));
        assert_eq!(cy(Action::Edit), Err(Denied::NotOwn));
        assert_eq!(cy(Action::Attach), Err(Denied::NotOwn));
        assert_eq!(cy(Action::Note), Ok(Scope::Any));
        assert_eq!(bo(Action::Work), Ok(Scope::Assignee));
        assert_eq!(ada(Action::Work), Err(Denied::NotAssignee));
        assert!(matches!(ada(Action::Assign), Err(Denied::Role { .. })));
        assert!(matches!(ada(Action::CloseReopen), Err(Denied::Role { .. })));
        assert_eq!(
            check("root", PersonRole::Admin, Action::Work, Some(mine)),
            Ok(Scope::Any)
        );
    }

    #[test]
    fn the_public_reads_redacted_and_nobody_without_a_role_reads_anything() {
        for action in Action::ALL {
            assert!(check("x", PersonRole::None, action, None).is_err());
            let public = check("x", PersonRole::Public, action, None);
            assert!(
                matches!(public, Ok(Scope::Redacted) | Err(Denied::Role { .. })),
                "{action:?}: {public:?}"
            );
        }
    }

    #[test]
    fn the_newest_grant_wins_and_none_withdraws() {
        let g = |person: &str, role| RoleGrant {
            person: person.into(),
            role,
        };
        let (a, b, c) = (
            g("ada", PersonRole::Officer),
            g("ada", PersonRole::Admin),
            g("bo", PersonRole::Officer),
        );
        let withdraw = g("bo", PersonRole::None);
        let at = |ms, grant| Grant {
            hlc: Hlc::new(ms, 0),
            author: AuthorId([1; 32]),
            id: EntryId([ms as u8; 32]),
            grant,
        };
        let roles = effective_roles([at(2, &b), at(1, &a), at(1, &c), at(3, &withdraw)]);
        assert_eq!(roles.get("ada"), Some(&PersonRole::Admin));
        assert_eq!(roles.get("bo"), None);
    }

    #[test]
    fn redaction_drops_people_and_coarsens_the_location() {
        let view = EventView {
            title: "t".into(),
            description: "d".into(),
            category: "flood".into(),
            severity: 3,
            status: crate::event::Status::Assigned,
            assignee: Some("bo".into()),
            location: Point::new(13.404954, 52.520008).unwrap(),
            reported_ms: 1,
            notes: Vec::new(),
            media: Vec::new(),
            conflicts: BTreeMap::from([("title".into(), vec!["a".into(), "b".into()])]),
        };
        let r = redact(&view);
        assert_eq!(r.assignee, None);
        assert!(r.conflicts.is_empty());
        assert!((r.location.lon() - 13.40).abs() < 1e-9);
        assert!((r.location.lat() - 52.52).abs() < 1e-9);
        assert_eq!(r.title, "t");
    }
}
