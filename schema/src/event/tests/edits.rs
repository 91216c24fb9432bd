//! Local edits: creating, editing, the field rules and the status workflow.

use super::*;

#[test]
fn create_then_view_round_trips() {
    let (doc, _) = created();
    assert_eq!(
        doc.view().unwrap(),
        EventView {
            title: "Flooded underpass".to_owned(),
            description: "Water 40 cm deep.\n\tTwo cars stuck.".to_owned(),
            category: "flood".to_owned(),
            severity: 3,
            status: Status::Reported,
            assignee: None,
            location: point(13.4, 52.5),
            reported_ms: T0,
            notes: vec![],
            media: vec![],
            conflicts: BTreeMap::new(),
        }
    );
}

#[test]
fn create_is_one_deterministic_change_by_the_author_at_the_given_time() {
    let (_, bytes) = created();
    let (_, again) = created();
    assert_eq!(bytes, again, "same inputs, same change bytes");

    let change = Change::from_bytes(bytes.clone()).unwrap();
    assert_eq!(change.actor_id().to_bytes(), author(1).as_bytes());
    assert_eq!(change.seq(), 1);
    assert!(change.deps().is_empty());
    assert_eq!(change.timestamp(), (T0 / 1000) as i64);
    assert_eq!(change.raw_bytes(), bytes.as_slice());

    let doc = EventDoc::from_changes(&[&bytes]).unwrap();
    assert_eq!(doc.view().unwrap(), created().0.view().unwrap());
}

#[test]
fn check_change_names_the_author() {
    let (_, bytes) = created();
    assert_eq!(check_change(&author(1), &bytes), Ok(()));
    assert_eq!(
        invalid_field(check_change(&author(2), &bytes)),
        "change.actor"
    );
    assert_eq!(
        check_change(&author(1), b"junk").unwrap_err().code(),
        "automerge"
    );
}

#[test]
fn every_edit_kind_shows_in_the_view() {
    let (mut doc, _) = created();
    let edits = [
        Title("  Underpass closed \n".to_owned()),
        Description(String::new()),
        Category("road".to_owned()),
        Severity(5),
        Location(point(-0.12, 51.5)),
        note("Police on site", Some("officer-17"), T0 + 5),
        note("Pumps requested", None, T0 + 6),
        Media(media("photo.jpg", 1234)),
        Assign("officer-17".to_owned()),
    ];
    for (i, edit) in edits.iter().enumerate() {
        let bytes = doc.edit(&author(1), edit, T0 + 1000).unwrap();
        let change = Change::from_bytes(bytes).unwrap();
        assert_eq!(change.actor_id().to_bytes(), author(1).as_bytes());
        assert_eq!(change.seq(), i as u64 + 2, "one change per edit");
        assert_eq!(change.timestamp(), (T0 + 1000) as i64 / 1000);
    }
    assert_eq!(
        doc.view().unwrap(),
        EventView {
            title: "Underpass closed".to_owned(),
            description: String::new(),
            category: "road".to_owned(),
            severity: 5,
            status: Status::Assigned,
            assignee: Some("officer-17".to_owned()),
            location: point(-0.12, 51.5),
            reported_ms: T0,
            notes: vec![
                super::Note {
                    text: "Police on site".to_owned(),
                    actor: Some("officer-17".to_owned()),
                    at_ms: T0 + 5,
                },
                super::Note {
                    text: "Pumps requested".to_owned(),
                    actor: None,
                    at_ms: T0 + 6,
                },
            ],
            media: vec![media("photo.jpg", 1234)],
            conflicts: BTreeMap::new(),
        }
    );
}

#[test]
fn new_events_are_checked_field_by_field() {
    type Spoil = fn(&mut NewEvent);
    let cases: [(Spoil, &str); 12] = [
        (|n| n.title = String::new(), "title"),
        (|n| n.title = " \n\t ".to_owned(), "title"),
        (|n| n.title = "x".repeat(201), "title"),
        (|n| n.title = "bell\u{7}".to_owned(), "title"),
        (|n| n.description = "x".repeat(10_001), "description"),
        (
            |n| n.description = "line\r\nbreak".to_owned(),
            "description",
        ),
        (|n| n.category = String::new(), "category"),
        (|n| n.category = "c".repeat(65), "category"),
        (|n| n.category = "del\u{7f}".to_owned(), "category"),
        (|n| n.severity = 0, "severity"),
        (|n| n.severity = 6, "severity"),
        (|n| n.reported_ms = u64::MAX, "reported_ms"),
    ];
    for (spoil, field) in cases {
        let mut new = new_event();
        spoil(&mut new);
        assert_eq!(
            invalid_field(EventDoc::create(&author(1), &new, T0)),
            field,
            "{new:?}"
        );
    }

    // The limits themselves are allowed; the title is measured trimmed.
    let new = NewEvent {
        title: format!("  {}\n", "é".repeat(100)),
        description: "x".repeat(10_000),
        category: "c".repeat(64),
        severity: 5,
        ..new_event()
    };
    let (doc, _) = EventDoc::create(&author(1), &new, T0).unwrap();
    assert_eq!(doc.view().unwrap().title, "é".repeat(100));
    let empty_description = NewEvent {
        description: String::new(),
        severity: 1,
        ..new_event()
    };
    assert!(EventDoc::create(&author(1), &empty_description, T0).is_ok());
}

#[test]
fn edits_are_checked_field_by_field_and_refusals_change_nothing() {
    let (mut doc, _) = created();
    let saved = doc.save().unwrap();
    let heads = doc.heads();
    let cases = [
        (Title(" ".to_owned()), "title"),
        (Title("x".repeat(201)), "title"),
        (Description("x".repeat(10_001)), "description"),
        (Description("nul\0".to_owned()), "description"),
        (Category(String::new()), "category"),
        (Category("c".repeat(65)), "category"),
        (Severity(0), "severity"),
        (Severity(6), "severity"),
        (note("", None, T0), "note.text"),
        (note("  \n ", None, T0), "note.text"),
        (note(&"x".repeat(5_001), None, T0), "note.text"),
        (note("\u{1b}[31mred", None, T0), "note.text"),
        (note("ok", Some(""), T0), "note.actor"),
        (note("ok", Some(&"a".repeat(129)), T0), "note.actor"),
        (note("ok", None, u64::MAX), "note.at_ms"),
        (Assign(String::new()), "assignee"),
        (Assign("p".repeat(129)), "assignee"),
        // U+0085 (next line) is a C1 control character.
        (Assign("a\u{85}b".to_owned()), "assignee"),
        (Media(media("", 1)), "media.name"),
        (Media(media(&"n".repeat(256), 1)), "media.name"),
        (Media(media("a.jpg", 0)), "media.size"),
        (Media(media("a.jpg", MAX_MEDIA_BYTES + 1)), "media.size"),
    ];
    for (edit, field) in &cases {
        assert_eq!(
            invalid_field(doc.edit(&author(2), edit, T0)),
            *field,
            "{edit:?}"
        );
    }
    assert_eq!(doc.heads(), heads);
    assert_eq!(doc.save().unwrap(), saved);

    // The limits themselves are allowed.
    for edit in [
        note(&"x".repeat(5_000), Some(&"a".repeat(128)), T0),
        note("tab\tand\nnewline", None, 0),
        Assign("p".repeat(128)),
        Media(media(&"n".repeat(255), MAX_MEDIA_BYTES)),
        Media(media("tiny.png", 1)),
        Severity(1),
        Severity(5),
        Description("x".repeat(10_000)),
        Category("c".repeat(64)),
    ] {
        doc.edit(&author(1), &edit, T0).unwrap();
    }
}

#[test]
fn status_edits_follow_the_workflow() {
    use Status::*;
    let allowed = [
        (Assigned, InProgress),
        (InProgress, Resolved),
        (Resolved, Closed),
        (Resolved, InProgress),
        (Closed, InProgress),
    ];
    for from in Status::ALL {
        for to in Status::ALL {
            let mut doc = doc_in(from);
            let heads = doc.heads();
            let saved = doc.save().unwrap();
            let result = doc.edit(&author(2), &EventEdit::Status(to), T0 + 1);
            if allowed.contains(&(from, to)) {
                assert!(result.is_ok(), "{from} -> {to}: {result:?}");
                assert_eq!(doc.view().unwrap().status, to);
            } else {
                assert_eq!(
                    result,
                    Err(EventError::InvalidTransition { from, to }),
                    "{from} -> {to}"
                );
                assert_eq!(doc.heads(), heads, "{from} -> {to}");
                assert_eq!(doc.save().unwrap(), saved, "{from} -> {to}");
            }
        }
    }
}

#[test]
fn assigning_moves_reported_to_assigned_and_leaves_later_statuses_alone() {
    for from in Status::ALL {
        let mut doc = doc_in(from);
        let heads = doc.heads();
        let result = doc.edit(&author(2), &Assign("officer-9".to_owned()), T0 + 1);
        match from {
            Status::Reported | Status::Assigned | Status::InProgress => {
                result.unwrap();
                let view = doc.view().unwrap();
                assert_eq!(view.assignee.as_deref(), Some("officer-9"));
                let expected = if from == Status::Reported {
                    Status::Assigned
                } else {
                    from
                };
                assert_eq!(view.status, expected);
            }
            Status::Resolved | Status::Closed => {
                assert_eq!(
                    result,
                    Err(EventError::InvalidTransition {
                        from,
                        to: Status::Assigned
                    })
                );
                assert_eq!(doc.heads(), heads);
            }
        }
    }
}

#[test]
fn status_names_round_trip_and_errors_have_codes() {
    for s in Status::ALL {
        assert_eq!(s.as_str().parse::<Status>(), Ok(s));
        assert_eq!(s.to_string(), s.as_str());
    }
    assert_eq!(
        "done".parse::<Status>(),
        Err(ParseStatusError {
            found: "done".to_owned()
        })
    );
    assert_eq!(
        EventError::InvalidTransition {
            from: Status::Closed,
            to: Status::Resolved
        }
        .to_string(),
        "status cannot move from closed to resolved"
    );
    let codes = [
        (
            EventError::Invalid {
                field: "title",
                reason: String::new(),
            },
            "invalid",
        ),
        (
            EventError::InvalidTransition {
                from: Status::Reported,
                to: Status::Closed,
            },
            "invalid_transition",
        ),
        (EventError::Automerge(String::new()), "automerge"),
        (EventError::BadDocument(String::new()), "bad_document"),
    ];
    for (e, code) in codes {
        assert_eq!(e.code(), code);
    }
}
