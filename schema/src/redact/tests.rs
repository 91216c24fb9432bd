//! Tests of redaction: the body on the wire, masking views, planning a
//! request, and the same view whatever order redactions and edits meet.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::body::{Body, MediaType};
use crate::cbor::{Reader, Writer};
use crate::event::{EventDoc, EventEdit, EventView, MediaRef, NewEvent};
use crate::geo::Point;
use crate::ids::{AuthorId, EventId};

const T0: u64 = 1_700_000_000_000;

fn new_event() -> NewEvent {
    NewEvent {
        title: "Ada Lovelace hurt at 12 Mill Lane".to_owned(),
        description: "Her phone is 0151 555 0199.".to_owned(),
        category: "injury".to_owned(),
        severity: 3,
        location: Point::new(13.4, 52.5).unwrap(),
        reported_ms: T0,
    }
}

fn doc_with_note_and_photo() -> EventDoc {
    let me = AuthorId([1; 32]);
    let (mut doc, _) = EventDoc::create(&me, &new_event(), T0).unwrap();
    doc.edit(
        &me,
        &EventEdit::Note {
            text: "Spoke to her sister Mary.".into(),
            actor: Some("officer.bo".into()),
            at_ms: T0 + 1000,
        },
        T0 + 1000,
    )
    .unwrap();
    doc.edit(
        &me,
        &EventEdit::Media(MediaRef {
            hash: [9; 32],
            mime: MediaType::Jpeg,
            size: 1000,
            name: "face.jpg".into(),
        }),
        T0 + 2000,
    )
    .unwrap();
    doc
}

fn body(r: Redaction) -> Body {
    Body::Redaction(r)
}

fn decode(b: &Body) -> Result<Body, crate::DecodeError> {
    let mut w = Writer::default();
    b.encode(&mut w);
    Body::decode(&mut Reader::new(&w.out))
}

/// The redactions of one redaction erasing `view`'s title.
fn title_erased(view: &EventView) -> Redactions {
    let (values, blobs) = plan(
        view,
        &RedactionRequest {
            title: true,
            ..RedactionRequest::default()
        },
    )
    .unwrap();
    let mut set = Redactions::default();
    set.add(&Redaction {
        event: EventId([3; 16]),
        values,
        blobs,
        reason: "erasure".into(),
    });
    set
}

#[test]
fn a_redaction_round_trips_and_its_rules_are_the_decoders() {
    let r = Redaction {
        event: EventId([3; 16]),
        values: vec![RedactedValue {
            field: RedactedField::Title,
            hash: value_hash(RedactedField::Title, "x"),
        }],
        blobs: vec![[9; 32]],
        reason: "erasure request 2026-114".into(),
    };
    assert_eq!(decode(&body(r.clone())).unwrap(), body(r.clone()));
    assert!(body(r.clone()).validate().is_ok());

    let nothing = Redaction {
        values: vec![],
        blobs: vec![],
        ..r.clone()
    };
    assert!(body(nothing).validate().is_err(), "erases nothing");
    let no_reason = Redaction {
        reason: String::new(),
        ..r.clone()
    };
    assert!(body(no_reason).validate().is_err(), "says no reason");
    let twice = Redaction {
        blobs: vec![[9; 32], [9; 32]],
        ..r.clone()
    };
    assert!(body(twice).validate().is_err(), "a blob twice");
    let too_many = Redaction {
        blobs: (0..=MAX_REDACTED_ITEMS as u8).map(|i| [i; 32]).collect(),
        ..r
    };
    assert!(body(too_many).validate().is_err(), "too many blobs");
}

#[test]
fn value_hashes_separate_fields_and_values() {
    let a = value_hash(RedactedField::Title, "Ada");
    assert_ne!(a, value_hash(RedactedField::Description, "Ada"));
    assert_ne!(a, value_hash(RedactedField::Title, "Ada "));
    assert_eq!(a, value_hash(RedactedField::Title, "Ada"));
}

#[test]
fn a_planned_redaction_masks_what_was_asked_and_nothing_else() {
    let doc = doc_with_note_and_photo();
    let view = doc.view().unwrap();
    let req = RedactionRequest {
        title: true,
        description: false,
        notes: vec![0],
        media: vec![[9; 32]],
    };
    let (values, blobs) = plan(&view, &req).unwrap();
    assert_eq!(values.len(), 2);
    assert_eq!(blobs, vec![[9; 32]]);

    let mut set = Redactions::default();
    set.add(&Redaction {
        event: EventId([3; 16]),
        values,
        blobs,
        reason: "erasure".into(),
    });
    let mut masked = view.clone();
    assert!(set.mask(&mut masked));
    assert_eq!(masked.title, REDACTED);
    assert_eq!(masked.notes[0].text, REDACTED);
    assert!(masked.media.is_empty());
    assert_eq!(masked.description, view.description, "not asked");
    assert_eq!(masked.category, view.category);
    assert!(!set.mask(&mut masked), "masking twice changes nothing");
    assert!(set.erases_blob(&[9; 32]));
}

#[test]
fn bad_requests_name_what_is_wrong() {
    let view = doc_with_note_and_photo().view().unwrap();
    let nothing = RedactionRequest::default();
    assert_eq!(plan(&view, &nothing), Err(PlanError::Nothing));
    let note = RedactionRequest {
        notes: vec![5],
        ..RedactionRequest::default()
    };
    assert_eq!(plan(&view, &note), Err(PlanError::NoSuchNote(5)));
    let media = RedactionRequest {
        media: vec![[1; 32]],
        ..RedactionRequest::default()
    };
    assert!(matches!(
        plan(&view, &media),
        Err(PlanError::NoSuchMedia(_))
    ));

    let set = title_erased(&view);
    let mut masked = view;
    set.mask(&mut masked);
    let again = RedactionRequest {
        title: true,
        ..RedactionRequest::default()
    };
    assert_eq!(
        plan(&masked, &again),
        Err(PlanError::AlreadyRedacted("title"))
    );
}

#[test]
fn a_new_value_written_after_the_redaction_shows_and_the_old_one_stays_masked() {
    let me = AuthorId([1; 32]);
    let mut doc = doc_with_note_and_photo();
    let view = doc.view().unwrap();
    let set = title_erased(&view);
    doc.edit(
        &me,
        &EventEdit::Title("Injury at Mill Lane".into()),
        T0 + 5000,
    )
    .unwrap();
    let mut v = doc.view().unwrap();
    set.mask(&mut v);
    assert_eq!(v.title, "Injury at Mill Lane");
}

#[test]
fn a_concurrent_value_kept_as_a_conflict_is_masked_too() {
    let a = AuthorId([1; 32]);
    let b = AuthorId([2; 32]);
    let (mut doc_a, first) = EventDoc::create(&a, &new_event(), T0).unwrap();
    let mut doc_b = EventDoc::from_changes(&[first.as_slice()]).unwrap();
    let ca = doc_a
        .edit(
            &a,
            &EventEdit::Title("Ada L. at Mill Lane".into()),
            T0 + 1000,
        )
        .unwrap();
    let cb = doc_b
        .edit(
            &b,
            &EventEdit::Title("Ada Lovelace, Mill Lane".into()),
            T0 + 1000,
        )
        .unwrap();
    doc_a.apply_changes(&[cb.as_slice()]).unwrap();
    doc_b.apply_changes(&[ca.as_slice()]).unwrap();
    let view = doc_a.view().unwrap();
    assert_eq!(view.conflicts.get("title").map(Vec::len), Some(2));
    let set = title_erased(&view);
    for doc in [&doc_a, &doc_b] {
        let mut v = doc.view().unwrap();
        set.mask(&mut v);
        assert_eq!(v.title, REDACTED);
        assert!(v.conflicts["title"].iter().all(|t| t == REDACTED));
    }
}
