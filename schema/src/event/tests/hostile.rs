//! Outside input: garbage, damaged or compressed changes, changes that
//! make Automerge panic, and documents without the event layout.

use super::*;

#[test]
fn garbage_changes_are_errors_and_change_nothing() {
    let (mut doc, c0) = created();
    let c1 = doc.edit(&author(1), &Severity(2), T0).unwrap();
    let saved = doc.save().unwrap();
    let mut flipped = c1.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x01;
    let truncated = c1[..c1.len() - 1].to_vec();
    let mut extended = c1.clone();
    extended.push(0);
    let garbage: [&[u8]; 7] = [
        &[],
        b"garbage",
        &[1; 64],
        &flipped,
        &truncated,
        &extended,
        // A whole document is not one change.
        &saved,
    ];
    let mut other = EventDoc::from_changes(&[&c0]).unwrap();
    let before = other.save().unwrap();
    for bad in garbage {
        let err = other.apply_changes(&[&c1, bad]).unwrap_err();
        assert_eq!(err.code(), "automerge", "{bad:?}");
        assert!(err.to_string().contains("change 1 of 2"), "{err}");
        assert_eq!(
            EventDoc::from_changes(&[bad]).unwrap_err().code(),
            "automerge"
        );
    }
    assert_eq!(
        other.save().unwrap(),
        before,
        "a refused batch applies nothing"
    );
}

#[test]
fn a_change_that_makes_automerge_panic_is_an_error_and_changes_nothing() {
    let (mut doc, c0) = created();
    let c1 = doc.edit(&author(1), &Severity(2), T0).unwrap();
    // In automerge 0.12.0 this byte flip, with the checksum fixed up,
    // decodes and then panics inside the batch apply.
    let mut bad = c1.clone();
    let middle = bad.len() / 2;
    bad[middle] ^= 0x01;
    let bad = resealed(bad);
    assert!(Change::from_bytes(bad.clone()).is_ok());

    let mut other = EventDoc::from_changes(&[&c0]).unwrap();
    let before = other.save().unwrap();
    let err = other.apply_changes(&[&bad]).unwrap_err();
    assert_eq!(err.code(), "automerge", "{err}");
    // A tripwire: if a newer Automerge returns an error here instead,
    // the catch in `apply_changes` may no longer be needed.
    assert!(err.to_string().contains("panicked"), "{err}");
    assert_eq!(other.save().unwrap(), before);

    // The document still works.
    other.apply_changes(&[&c1]).unwrap();
    assert_eq!(other.view().unwrap(), doc.view().unwrap());
}

#[test]
fn compressed_changes_are_refused() {
    let (mut doc, c0) = created();
    let big = doc
        .edit(&author(1), &Description("flood ".repeat(1000)), T0)
        .unwrap();
    let compressed = Change::from_bytes(big.clone())
        .unwrap()
        .bytes()
        .into_owned();
    assert!(compressed.len() < big.len() / 4);
    let mut other = EventDoc::from_changes(&[&c0]).unwrap();
    assert_eq!(
        other.apply_changes(&[&compressed]),
        Err(EventError::Automerge(
            "change 0 of 1: chunk type 2 is not an uncompressed change".to_owned()
        ))
    );
    other.apply_changes(&[&big]).unwrap();
    assert_eq!(other.view().unwrap(), doc.view().unwrap());
}

/// An event document that some other client spoiled with `spoil`.
fn spoiled(spoil: impl FnOnce(&mut AutoCommit)) -> EventDoc {
    let (mut event, _) = created();
    event.doc.set_actor(actor_of(&author(9)));
    spoil(&mut event.doc);
    event.doc.commit_with(CommitOptions::default().with_time(0));
    event
}

#[test]
fn documents_without_the_event_layout_are_bad_documents() {
    type Spoil = fn(&mut AutoCommit);
    let cases: [(Spoil, &str); 14] = [
        (|d| d.delete(ROOT, "title").unwrap(), "`title` is missing"),
        (
            |d| d.put(ROOT, "title", 5i64).unwrap(),
            "`title` is an int, expected a string",
        ),
        (
            |d| {
                d.put_object(ROOT, "description", ObjType::Text).unwrap();
            },
            "`description` is a text object",
        ),
        (
            |d| d.put(ROOT, "status", "archived").unwrap(),
            "\"archived\" is not a known status",
        ),
        (
            |d| d.put(ROOT, "severity", 9i64).unwrap(),
            "`severity` is 9",
        ),
        (
            |d| d.put(ROOT, "severity", "high").unwrap(),
            "`severity` is a string",
        ),
        (|d| d.put(ROOT, "lon", 500.0).unwrap(), "longitude 500"),
        (|d| d.delete(ROOT, "lat").unwrap(), "`lat` is missing"),
        (
            |d| d.put(ROOT, "reported_ms", -1i64).unwrap(),
            "`reported_ms` is negative",
        ),
        (
            |d| d.put(ROOT, "assignee", true).unwrap(),
            "`assignee` is a boolean",
        ),
        (
            |d| d.put(ROOT, "notes", "none").unwrap(),
            "`notes` is a string, expected a list",
        ),
        (
            |d| {
                let notes = list_id(d, "notes").unwrap();
                d.insert(&notes, 0, "loose").unwrap();
            },
            "`notes[0]` is not a map",
        ),
        (
            |d| {
                let media = list_id(d, "media").unwrap();
                let m = d.insert_object(&media, 0, ObjType::Map).unwrap();
                d.put(&m, "hash", "zz").unwrap();
            },
            "`media.hash` \"zz\" is not 64 hex digits",
        ),
        (
            |d| {
                let media = list_id(d, "media").unwrap();
                let m = d.insert_object(&media, 0, ObjType::Map).unwrap();
                d.put(&m, "hash", "ab".repeat(32)).unwrap();
                d.put(&m, "mime", "text/html").unwrap();
            },
            "`media.mime` \"text/html\" is not an accepted type",
        ),
    ];
    for (spoil, expected) in cases {
        let why = bad_document(spoiled(spoil).view());
        assert!(why.contains(expected), "{why:?} lacks {expected:?}");
    }
    bad_document(EventDoc::from_changes(&[]).unwrap().view());
}

#[test]
fn a_spoiled_status_refuses_workflow_edits_but_not_others() {
    let mut doc = spoiled(|d| d.put(ROOT, "status", 7i64).unwrap());
    let heads = doc.heads();
    bad_document(doc.edit(&author(1), &EventEdit::Status(Status::Closed), T0));
    bad_document(doc.edit(&author(1), &Assign("ann".to_owned()), T0));
    assert_eq!(doc.heads(), heads);
    doc.edit(&author(1), &Title("Still editable".to_owned()), T0)
        .unwrap();
}

#[test]
fn numbers_written_by_other_clients_are_read() {
    // JavaScript clients write whole numbers as ints, and may use uint.
    let doc = spoiled(|d| {
        d.put(ROOT, "lon", 13i64).unwrap();
        d.put(ROOT, "lat", ScalarValue::Uint(52)).unwrap();
        d.put(ROOT, "severity", ScalarValue::Uint(2)).unwrap();
        d.put(ROOT, "reported_ms", 7i64).unwrap();
    });
    let view = doc.view().unwrap();
    assert_eq!(view.location, point(13.0, 52.0));
    assert_eq!(view.severity, 2);
    assert_eq!(view.reported_ms, 7);
}

#[test]
fn a_document_automerge_panics_on_reading_or_saving_is_an_error() {
    use crate::event::testing::{PANIC_IN_SAVE, PANIC_IN_VIEW};
    let mut unreadable = EventDoc::create(
        &author(1),
        &NewEvent {
            title: PANIC_IN_VIEW.into(),
            ..new_event()
        },
        T0,
    )
    .unwrap()
    .0;
    let err = unreadable.view().unwrap_err();
    assert_eq!(err.code(), "automerge", "{err}");
    assert!(err.to_string().contains("panicked reading"), "{err}");
    unreadable.save().unwrap();

    let (mut unsaveable, c0) = EventDoc::create(
        &author(1),
        &NewEvent {
            title: PANIC_IN_SAVE.into(),
            ..new_event()
        },
        T0,
    )
    .unwrap();
    unsaveable.view().unwrap();
    let err = unsaveable.save().unwrap_err();
    assert!(err.to_string().contains("panicked saving"), "{err}");

    // Other documents are untouched by either.
    let (mut fine, _) = created();
    assert_eq!(fine.view().unwrap().title, new_event().title);
    fine.save().unwrap();
    assert!(EventDoc::from_changes(&[&c0]).unwrap().save().is_err());
}
