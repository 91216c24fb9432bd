//! The view read straight from a creating change
//! ([`EventDoc::created_view`]) against the view of the document Automerge
//! builds from the same change: equal whenever the fast reader answers,
//! and no answer for anything but a plain creation.

use super::*;

/// The view Automerge's document gives for `change` alone.
fn built_view(change: &[u8]) -> Result<EventView, EventError> {
    EventDoc::from_changes(&[change])?.view()
}

/// One change made by a foreign client: `write` on a fresh document.
fn foreign(write: impl FnOnce(&mut AutoCommit)) -> Vec<u8> {
    let mut doc = AutoCommit::new().with_actor(actor_of(&author(9)));
    write(&mut doc);
    let hash = doc
        .commit_with(CommitOptions::default().with_time(1))
        .unwrap();
    doc.get_change_by_hash(&hash).unwrap().raw_bytes().to_vec()
}

/// Every field `EventDoc::create` writes, as a foreign client would.
fn put_fields(doc: &mut AutoCommit) {
    put_all(doc, usual_fields());
}

fn put_all(doc: &mut AutoCommit, fields: Vec<(&str, Put)>) {
    for (k, v) in fields {
        match v {
            Put::Scalar(v) => doc.put(ROOT, k, v).unwrap(),
            Put::Object(t) => {
                doc.put_object(ROOT, k, t).unwrap();
            }
            Put::Nothing => {}
        }
    }
}

#[test]
fn a_creation_reads_as_its_built_document() {
    let (_, change) = created();
    let fast = EventDoc::created_view(&change).expect("a plain creation");
    assert_eq!(fast, built_view(&change).unwrap());
    assert_eq!(fast, created().0.view().unwrap());
}

#[test]
fn only_a_plain_creation_is_read_fast() {
    let (mut doc, _) = created();
    let edit = doc.edit(&author(1), &Title("Dry".into()), T0).unwrap();
    assert_eq!(EventDoc::created_view(&edit), None, "a later change");
    let note = doc.edit(&author(1), &note("first", None, T0), T0).unwrap();
    assert_eq!(EventDoc::created_view(&note), None, "an op in a list");
    // A creation that also fills a list: ops outside the root.
    let with_note = foreign(|d| {
        put_fields(d);
        let notes = list_id(d, "notes").unwrap();
        let n = d.insert_object(&notes, 0, ObjType::Map).unwrap();
        d.put(&n, "text", "hi").unwrap();
        d.put(&n, "at_ms", ScalarValue::Timestamp(1)).unwrap();
    });
    assert_eq!(EventDoc::created_view(&with_note), None);
    assert_eq!(built_view(&with_note).unwrap().notes.len(), 1);
    // A field written twice in the one change.
    let twice = foreign(|d| {
        put_fields(d);
        d.put(ROOT, "title", "Fire, twice").unwrap();
    });
    assert_eq!(EventDoc::created_view(&twice), None);
    assert_eq!(built_view(&twice).unwrap().title, "Fire, twice");
    for junk in [
        &b""[..],
        b"not a change",
        &[0x85, 0x6f, 0x4a, 0x83, 0, 0, 0, 0, 1],
    ] {
        assert_eq!(EventDoc::created_view(junk), None);
    }
}

/// A value a foreign creation puts under a root key.
#[derive(Clone)]
enum Put {
    Scalar(ScalarValue),
    Object(ObjType),
    Nothing,
}

/// The root keys `EventDoc::create` writes, with its kinds of values.
fn usual_fields() -> Vec<(&'static str, Put)> {
    vec![
        ("title", Put::Scalar("Fire".into())),
        ("description", Put::Scalar("".into())),
        ("category", Put::Scalar("fire".into())),
        ("severity", Put::Scalar(ScalarValue::Int(2))),
        ("status", Put::Scalar("reported".into())),
        ("lon", Put::Scalar(ScalarValue::F64(1.5))),
        ("lat", Put::Scalar(ScalarValue::F64(-2.5))),
        ("reported_ms", Put::Scalar(ScalarValue::Timestamp(5))),
        ("notes", Put::Object(ObjType::List)),
        ("media", Put::Object(ObjType::List)),
    ]
}

#[test]
fn a_foreign_creation_reads_fast_exactly_when_it_is_an_event() {
    // Each case changes or adds one root key; the fast reader must give
    // the built view when there is one, and nothing when reading fails.
    let cases: Vec<(&str, &str, Put)> = vec![
        ("as written", "title", Put::Scalar("Fire".into())),
        ("an unknown extra key", "colour", Put::Scalar("red".into())),
        ("an assignee", "assignee", Put::Scalar("ann".into())),
        ("an int coordinate", "lon", Put::Scalar(ScalarValue::Int(3))),
        (
            "a uint severity",
            "severity",
            Put::Scalar(ScalarValue::Uint(4)),
        ),
        (
            "severity as a string",
            "severity",
            Put::Scalar("high".into()),
        ),
        (
            "severity out of range",
            "severity",
            Put::Scalar(ScalarValue::Int(9)),
        ),
        (
            "a latitude off the globe",
            "lat",
            Put::Scalar(ScalarValue::F64(91.0)),
        ),
        ("no title", "title", Put::Nothing),
        ("no media list", "media", Put::Nothing),
        ("notes as a map", "notes", Put::Object(ObjType::Map)),
        ("notes as text", "notes", Put::Object(ObjType::Text)),
        ("an unknown status", "status", Put::Scalar("lost".into())),
        (
            "a counter",
            "reported_ms",
            Put::Scalar(ScalarValue::counter(3)),
        ),
        (
            "a negative time",
            "reported_ms",
            Put::Scalar(ScalarValue::Timestamp(-1)),
        ),
        ("null assignee", "assignee", Put::Scalar(ScalarValue::Null)),
    ];
    for (what, field, put) in cases {
        let mut fields = usual_fields();
        match fields.iter_mut().find(|(k, _)| *k == field) {
            Some(slot) => slot.1 = put,
            None => fields.push((field, put)),
        }
        let change = foreign(|d| put_all(d, fields));
        let fast = EventDoc::created_view(&change);
        match built_view(&change) {
            Ok(view) => assert_eq!(fast, Some(view), "{what}"),
            Err(_) => assert_eq!(fast, None, "{what}"),
        }
    }
}

proptest! {
    #[test]
    fn any_new_event_reads_fast_as_built(
        title in "[a-zA-Zé 0-9]{1,40}",
        description in "(?s).{0,200}",
        category in "[a-z]{1,12}",
        severity in 1u8..=5,
        lon in -180.0f64..=180.0,
        lat in -90.0f64..=90.0,
        reported_ms in 0u64..4_000_000_000_000,
        who in any::<u8>(),
    ) {
        let new = NewEvent {
            title,
            description,
            category,
            severity,
            location: point(lon, lat),
            reported_ms,
        };
        // Fields a local creation refuses are not a creation to read.
        if let Ok((doc, change)) = EventDoc::create(&author(who), &new, T0) {
            let fast = EventDoc::created_view(&change);
            prop_assert_eq!(fast.as_ref(), Some(&doc.view().unwrap()));
            prop_assert_eq!(fast, Some(built_view(&change).unwrap()));
        }
    }
}
