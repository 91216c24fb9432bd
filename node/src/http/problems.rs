//! The node's errors as the API answers them (problem+json): a refused
//! edit names the field at fault; an unknown event is 404; anything the
//! store or the disk did is 503, its cause kept for the log.
//!
//! Never does: show a store's or a disk's own words to a client (they go to the log).

use sentinel_http::Problem;
use sentinel_schema::EventError;

use crate::error::NodeError;
use crate::store::StoreError;

/// A refused edit, naming the field at fault.
pub(crate) fn event_problem(e: EventError, field: &str) -> Problem {
    match e {
        // The schema names a note's text `note.text`; the body calls it `text`.
        EventError::Invalid { field, reason } => {
            Problem::bad_field(if field == "note.text" { "text" } else { field }, reason)
        }
        EventError::InvalidTransition { from, to } => Problem::conflict(
            "status",
            format!("the event is {from}; it cannot become {to} from there"),
        ),
        EventError::Unchanged => Problem::conflict(field, "the edit changes nothing"),
        other => Problem::unavailable(&other),
    }
}

/// A refused node operation, naming `field` when an edit was refused.
pub(crate) fn node_problem(e: NodeError, field: &str) -> Problem {
    match e {
        NodeError::Event(e) => event_problem(e, field),
        other => other.into(),
    }
}

impl From<NodeError> for Problem {
    fn from(e: NodeError) -> Problem {
        match e {
            NodeError::NoSuchEvent(id) => Problem::not_found(format!("no event {id}")),
            e @ NodeError::Erased(_) => erased(Some("file"), e.to_string()),
            NodeError::Event(e) => event_problem(e, "body"),
            other => Problem::unavailable(&other),
        }
    }
}

/// `410 Gone`: media a redaction erased (`docs/protocol.md` 1.6).
pub(crate) fn erased(field: Option<&str>, detail: impl Into<String>) -> Problem {
    Problem {
        field: field.map(str::to_owned),
        ..Problem::gone(detail)
    }
}

impl From<StoreError> for Problem {
    fn from(e: StoreError) -> Problem {
        Problem::unavailable(&e)
    }
}
