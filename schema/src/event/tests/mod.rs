//! Tests of event documents, by theme: the view read straight from a
//! creating change (`created`), local edits and their rules (`edits`), merging changes between devices (`merge`), hostile or
//! damaged input (`hostile`), and properties over random histories
//! (`props`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use proptest::prelude::*;

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{AutoCommit, Change, ObjType, ScalarValue, ROOT};

use super::doc::actor_of;
use super::read::list_id;
use crate::body::MediaType;
use crate::ids::AuthorId;
use crate::limits::MAX_MEDIA_BYTES;
use EventEdit::{Assign, Category, Description, Location, Media, Severity, Title};

const T0: u64 = 1_700_000_000_000;

fn author(n: u8) -> AuthorId {
    AuthorId([n; 32])
}

fn point(lon: f64, lat: f64) -> Point {
    Point::new(lon, lat).unwrap()
}

fn new_event() -> NewEvent {
    NewEvent {
        title: "Flooded underpass".to_owned(),
        description: "Water 40 cm deep.\n\tTwo cars stuck.".to_owned(),
        category: "flood".to_owned(),
        severity: 3,
        location: point(13.4, 52.5),
        reported_ms: T0,
    }
}

fn created() -> (EventDoc, Vec<u8>) {
    EventDoc::create(&author(1), &new_event(), T0).unwrap()
}

fn media(name: &str, size: u64) -> MediaRef {
    MediaRef {
        hash: [7; 32],
        mime: MediaType::Jpeg,
        size,
        name: name.to_owned(),
    }
}

fn note(text: &str, actor: Option<&str>, at_ms: u64) -> EventEdit {
    EventEdit::Note {
        text: text.to_owned(),
        actor: actor.map(str::to_owned),
        at_ms,
    }
}

fn refs(changes: &[Vec<u8>]) -> Vec<&[u8]> {
    changes.iter().map(Vec::as_slice).collect()
}

/// A document driven to `status` along the workflow by author 1.
fn doc_in(status: Status) -> EventDoc {
    let (mut doc, _) = created();
    let path: &[EventEdit] = match status {
        Status::Reported => &[],
        Status::Assigned => &[Assign(String::new())],
        Status::InProgress => &[Assign(String::new()), EventEdit::Status(Status::InProgress)],
        Status::Resolved => &[
            Assign(String::new()),
            EventEdit::Status(Status::InProgress),
            EventEdit::Status(Status::Resolved),
        ],
        Status::Closed => &[
            Assign(String::new()),
            EventEdit::Status(Status::InProgress),
            EventEdit::Status(Status::Resolved),
            EventEdit::Status(Status::Closed),
        ],
    };
    for step in path {
        let step = match step {
            Assign(_) => Assign("officer-1".to_owned()),
            other => other.clone(),
        };
        doc.edit(&author(1), &step, T0).unwrap();
    }
    assert_eq!(doc.view().unwrap().status, status);
    doc
}

fn invalid_field<T: fmt::Debug>(result: Result<T, EventError>) -> &'static str {
    match result {
        Err(EventError::Invalid { field, .. }) => field,
        other => panic!("expected EventError::Invalid, got {other:?}"),
    }
}

fn bad_document<T: fmt::Debug>(result: Result<T, EventError>) -> String {
    match result {
        Err(EventError::BadDocument(why)) => why,
        other => panic!("expected EventError::BadDocument, got {other:?}"),
    }
}

/// `bytes` with the checksum recomputed, as a deliberately bad author
/// would send them.
fn resealed(mut bytes: Vec<u8>) -> Vec<u8> {
    if let Ok(change) = Change::from_bytes(bytes.clone()) {
        bytes[4..8].copy_from_slice(&change.hash().0[..4]);
    }
    bytes
}

mod created;
mod edits;
mod hostile;
mod merge;
mod props;
