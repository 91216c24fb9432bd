//! Merging: devices converge, conflicts show, held changes wait for
//! their parents, saved documents load.

use super::*;

#[test]
fn two_devices_converge_and_keep_the_title_conflict() {
    let (mut base, create) = created();
    let mut a = EventDoc::from_changes(&[&create]).unwrap();
    let mut b = EventDoc::load(&base.save().unwrap()).unwrap();

    let a1 = a
        .edit(&author(1), &Title("Underpass flooded".to_owned()), T0 + 1)
        .unwrap();
    let a2 = a.edit(&author(1), &Severity(5), T0 + 2).unwrap();
    let b1 = b
        .edit(&author(2), &Title("Tunnel flooded".to_owned()), T0 + 3)
        .unwrap();
    let b2 = b
        .edit(
            &author(2),
            &note("Road closed", Some("bob"), T0 + 4),
            T0 + 4,
        )
        .unwrap();

    a.apply_changes(&[&b1, &b2]).unwrap();
    b.apply_changes(&[&a1, &a2]).unwrap();
    let view = a.view().unwrap();
    assert_eq!(b.view().unwrap(), view);
    assert_eq!(a.heads(), b.heads());

    assert_eq!(view.severity, 5);
    assert_eq!(view.notes.len(), 1);
    assert_eq!(view.conflicts.len(), 1, "{:?}", view.conflicts);
    let titles = &view.conflicts["title"];
    assert_eq!(titles.len(), 2);
    assert!(titles.contains(&"Underpass flooded".to_owned()));
    assert!(titles.contains(&"Tunnel flooded".to_owned()));
    assert!(titles.contains(&view.title), "the winner is one of them");

    // A later edit of the field, on either side, settles the conflict.
    let settle = b
        .edit(&author(2), &Title("Underpass flooded".to_owned()), T0 + 5)
        .unwrap();
    a.apply_changes(&[&settle]).unwrap();
    assert_eq!(a.view().unwrap().conflicts, BTreeMap::new());
    assert_eq!(a.view().unwrap(), b.view().unwrap());
}

#[test]
fn equal_concurrent_values_are_not_a_conflict() {
    let (_, create) = created();
    let mut a = EventDoc::from_changes(&[&create]).unwrap();
    let mut b = EventDoc::from_changes(&[&create]).unwrap();
    let a1 = a.edit(&author(1), &Severity(4), T0).unwrap();
    let b1 = b.edit(&author(2), &Severity(4), T0).unwrap();
    a.apply_changes(&[&b1]).unwrap();
    b.apply_changes(&[&a1]).unwrap();
    assert_eq!(a.view().unwrap().conflicts, BTreeMap::new());
    assert_eq!(a.view().unwrap(), b.view().unwrap());
}

#[test]
fn remote_status_changes_merge_whatever_the_workflow() {
    let mut base = doc_in(Status::Resolved);
    let mut a = EventDoc::load(&base.save().unwrap()).unwrap();
    let mut b = EventDoc::load(&base.save().unwrap()).unwrap();
    let closed = a
        .edit(&author(1), &EventEdit::Status(Status::Closed), T0)
        .unwrap();
    let reopened = b
        .edit(&author(2), &EventEdit::Status(Status::InProgress), T0)
        .unwrap();
    a.apply_changes(&[&reopened]).unwrap();
    b.apply_changes(&[&closed]).unwrap();
    let view = a.view().unwrap();
    assert_eq!(b.view().unwrap(), view);
    assert_eq!(view.conflicts["status"].len(), 2);
    assert!(view.conflicts["status"].contains(&"closed".to_owned()));
    assert!(view.conflicts["status"].contains(&"in_progress".to_owned()));
    // Local edits are checked against whichever status won.
    let next = if view.status == Status::Closed {
        Status::InProgress
    } else {
        Status::Resolved
    };
    a.edit(&author(1), &EventEdit::Status(next), T0 + 1)
        .unwrap();
    assert_eq!(a.view().unwrap().status, next);
    assert!(!a.view().unwrap().conflicts.contains_key("status"));
}

#[test]
fn concurrent_locations_show_as_lon_lat_pairs() {
    let (_, create) = created();
    let mut a = EventDoc::from_changes(&[&create]).unwrap();
    let mut b = EventDoc::from_changes(&[&create]).unwrap();
    let a1 = a.edit(&author(1), &Location(point(1.5, 2.5)), T0).unwrap();
    let b1 = b
        .edit(&author(2), &Location(point(3.25, -4.0)), T0)
        .unwrap();
    a.apply_changes(&[&b1]).unwrap();
    b.apply_changes(&[&a1]).unwrap();
    let view = a.view().unwrap();
    assert_eq!(b.view().unwrap(), view);
    let mut locations = view.conflicts["location"].clone();
    locations.sort();
    assert_eq!(locations, ["1.5,2.5", "3.25,-4"]);
    assert_eq!(view.conflicts.len(), 1, "{:?}", view.conflicts);
    assert!(
        view.location == point(1.5, 2.5) || view.location == point(3.25, -4.0),
        "lon and lat win together: {:?}",
        view.location
    );
}

#[test]
fn a_location_change_carries_both_coordinates_even_if_one_is_unchanged() {
    let (_, create) = created();
    let mut a = EventDoc::from_changes(&[&create]).unwrap();
    let mut b = EventDoc::from_changes(&[&create]).unwrap();
    // A moves north only, B moves east only.
    let north = a
        .edit(&author(1), &Location(point(13.4, 53.0)), T0)
        .unwrap();
    let east = b
        .edit(&author(2), &Location(point(14.0, 52.5)), T0)
        .unwrap();
    a.apply_changes(&[&east]).unwrap();
    b.apply_changes(&[&north]).unwrap();
    let view = a.view().unwrap();
    assert_eq!(b.view().unwrap(), view);
    assert!(
        view.location == point(13.4, 53.0) || view.location == point(14.0, 52.5),
        "a point someone chose, not a mix: {:?}",
        view.location
    );
    let mut locations = view.conflicts["location"].clone();
    locations.sort();
    assert_eq!(locations, ["13.4,53", "14,52.5"]);
}

#[test]
fn an_edit_that_changes_nothing_is_refused() {
    let mut doc = doc_in(Status::Assigned);
    let heads = doc.heads();
    for edit in [
        Title("Flooded underpass".to_owned()),
        Title(" Flooded underpass ".to_owned()),
        Severity(3),
        Location(point(13.4, 52.5)),
        Assign("officer-1".to_owned()),
    ] {
        assert_eq!(
            doc.edit(&author(2), &edit, T0),
            Err(EventError::Unchanged),
            "{edit:?}"
        );
    }
    assert_eq!(doc.heads(), heads);

    // Choosing the current winner of a conflict is a change: it settles it.
    let mut other = EventDoc::load(&doc.save().unwrap()).unwrap();
    let theirs = other.edit(&author(2), &Severity(1), T0).unwrap();
    doc.edit(&author(1), &Severity(5), T0).unwrap();
    doc.apply_changes(&[&theirs]).unwrap();
    let winner = doc.view().unwrap().severity;
    assert!(doc.view().unwrap().conflicts.contains_key("severity"));
    doc.edit(&author(1), &Severity(winner), T0).unwrap();
    assert_eq!(doc.view().unwrap().conflicts, BTreeMap::new());
    assert_eq!(doc.view().unwrap().severity, winner);
}

#[test]
fn a_change_waits_for_its_parent() {
    let (mut doc, c0) = created();
    let c1 = doc
        .edit(&author(1), &Title("First".to_owned()), T0)
        .unwrap();
    let c2 = doc.edit(&author(1), &Severity(4), T0).unwrap();

    let mut other = EventDoc::from_changes(&[&c0]).unwrap();
    assert!(other.is_complete());
    other.apply_changes(&[&c2]).unwrap();
    assert!(!other.is_complete());
    assert_eq!(other.view().unwrap().severity, 3, "the child is held");

    // Saving keeps the held change.
    let mut reloaded = EventDoc::load(&other.save().unwrap()).unwrap();
    assert!(!reloaded.is_complete());

    other.apply_changes(&[&c1]).unwrap();
    assert!(other.is_complete());
    assert_eq!(other.view().unwrap(), doc.view().unwrap());
    reloaded.apply_changes(&[&c1]).unwrap();
    assert!(reloaded.is_complete());
    assert_eq!(reloaded.view().unwrap(), doc.view().unwrap());

    // Nothing but a child: held, and no event to view yet.
    let lonely = EventDoc::from_changes(&[&c2]).unwrap();
    assert!(!lonely.is_complete());
    bad_document(lonely.view());
}

#[test]
fn save_then_load_round_trips_and_editing_continues() {
    let (mut doc, _) = created();
    doc.edit(&author(1), &note("one", None, T0), T0).unwrap();
    doc.edit(&author(2), &Assign("ann".to_owned()), T0).unwrap();
    let mut loaded = EventDoc::load(&doc.save().unwrap()).unwrap();
    assert_eq!(loaded.view().unwrap(), doc.view().unwrap());
    assert_eq!(loaded.heads(), doc.heads());

    let next = loaded.edit(&author(1), &note("two", None, T0), T0).unwrap();
    assert_eq!(Change::from_bytes(next.clone()).unwrap().seq(), 3);
    doc.apply_changes(&[&next]).unwrap();
    assert_eq!(loaded.view().unwrap(), doc.view().unwrap());

    assert_eq!(EventDoc::load(b"junk").unwrap_err().code(), "automerge");
    let saved = doc.save().unwrap();
    assert_eq!(
        EventDoc::load(&saved[..saved.len() / 2])
            .unwrap_err()
            .code(),
        "automerge"
    );
}

#[test]
fn a_thousand_changes_apply_in_one_batch() {
    let (mut doc, c0) = created();
    let mut changes = vec![c0];
    for i in 0..1000u64 {
        let edit = if i % 2 == 0 {
            Title(format!("title {i}"))
        } else {
            note(&format!("note {i}"), None, T0 + i)
        };
        let by = author(u8::try_from(i % 3).unwrap() + 1);
        changes.push(doc.edit(&by, &edit, T0 + i).unwrap());
    }
    let expected = doc.view().unwrap();
    assert_eq!(expected.notes.len(), 500);
    assert_eq!(expected.title, "title 998");

    let batch = EventDoc::from_changes(&refs(&changes)).unwrap();
    assert!(batch.is_complete());
    assert_eq!(batch.view().unwrap(), expected);

    let reversed: Vec<&[u8]> = changes.iter().rev().map(Vec::as_slice).collect();
    let batch = EventDoc::from_changes(&reversed).unwrap();
    assert!(batch.is_complete());
    assert_eq!(batch.view().unwrap(), expected);
}
