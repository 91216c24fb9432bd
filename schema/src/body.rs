//! Entry bodies: what happened. Each kind has a number on the wire; an
//! unknown number is a decode error, never a panic or a silent skip.

use crate::cbor::{Reader, Writer};
use crate::error::DecodeError;
use crate::geo::Point;
use crate::heads::Head;
use crate::ids::{AuthorId, EntryId, EventId};
use crate::limits::*;

/// The kinds of body, with their wire numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum BodyKind {
    EventChange = 1,
    MediaAttached = 2,
    SensorReading = 3,
    RoleGrant = 4,
    Revocation = 5,
    HubCheckpoint = 6,
    Redaction = 7,
}

impl BodyKind {
    pub const ALL: [BodyKind; 7] = [
        BodyKind::EventChange,
        BodyKind::MediaAttached,
        BodyKind::SensorReading,
        BodyKind::RoleGrant,
        BodyKind::Revocation,
        BodyKind::HubCheckpoint,
        BodyKind::Redaction,
    ];

    pub fn from_wire(n: u64) -> Result<BodyKind, DecodeError> {
        BodyKind::ALL
            .into_iter()
            .find(|k| *k as u64 == n)
            .ok_or(DecodeError::UnknownBodyKind(n))
    }

    /// The stable name used in logs, APIs and the protocol document.
    pub fn as_str(self) -> &'static str {
        match self {
            BodyKind::EventChange => "event_change",
            BodyKind::MediaAttached => "media_attached",
            BodyKind::SensorReading => "sensor_reading",
            BodyKind::RoleGrant => "role_grant",
            BodyKind::Revocation => "revocation",
            BodyKind::HubCheckpoint => "hub_checkpoint",
            BodyKind::Redaction => "redaction",
        }
    }
}

/// What an entry says happened.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// An Automerge change to one event's document.
    EventChange(EventChange),
    /// A media blob (photo, video) attached to an event, by content hash.
    MediaAttached(MediaAttached),
    /// A reading from a sensor.
    SensorReading(SensorReading),
    /// A person is granted a role (or has it withdrawn).
    RoleGrant(RoleGrant),
    /// An author key is revoked after a given seq.
    Revocation(Revocation),
    /// A hub's signed statement of the heads it holds.
    HubCheckpoint(HubCheckpoint),
    /// Personal data erased from an event: field values (by hash) and
    /// media blobs, with the reason (see [`crate::redact`]).
    Redaction(Redaction),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventChange {
    pub event: EventId,
    /// One Automerge change, as `Change::raw_bytes()` produced it.
    pub change: Vec<u8>,
}

/// Media types Sentinel accepts; anything else is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaType {
    Jpeg,
    Png,
    Webp,
    Mp4,
}

impl MediaType {
    pub const ALL: [MediaType; 4] = [
        MediaType::Jpeg,
        MediaType::Png,
        MediaType::Webp,
        MediaType::Mp4,
    ];

    pub fn as_mime(self) -> &'static str {
        match self {
            MediaType::Jpeg => "image/jpeg",
            MediaType::Png => "image/png",
            MediaType::Webp => "image/webp",
            MediaType::Mp4 => "video/mp4",
        }
    }

    pub fn from_mime(s: &str) -> Option<MediaType> {
        MediaType::ALL.into_iter().find(|m| m.as_mime() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaAttached {
    pub event: EventId,
    /// SHA-256 of the blob's bytes.
    pub hash: [u8; 32],
    pub mime: MediaType,
    pub size: u64,
    /// The file name the officer gave; informational only.
    pub name: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ReadingValue {
    /// What was measured, e.g. `water_level`.
    pub name: String,
    /// Always finite.
    pub value: f64,
    /// E.g. `m`, `ug/m3`; may be empty for unitless values.
    pub unit: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SensorReading {
    /// The sensor's kind, e.g. `water_gauge`.
    pub kind: String,
    pub values: Vec<ReadingValue>,
    pub location: Option<Point>,
    /// When the sensor measured, in Unix milliseconds (its own clock).
    pub measured_ms: u64,
}

/// A person's role. `None` withdraws every role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PersonRole {
    None = 0,
    Public = 1,
    Officer = 2,
    Admin = 3,
}

impl PersonRole {
    fn from_wire(n: u64) -> Result<PersonRole, DecodeError> {
        Ok(match n {
            0 => PersonRole::None,
            1 => PersonRole::Public,
            2 => PersonRole::Officer,
            3 => PersonRole::Admin,
            _ => {
                return Err(DecodeError::OutOfRange {
                    field: "role",
                    what: format!("unknown role {n}"),
                })
            }
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleGrant {
    /// The person (same namespace as an entry's actor).
    pub person: String,
    pub role: PersonRole,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revocation {
    /// The revoked author.
    pub key: AuthorId,
    /// The author's entries up to and including this seq stay valid;
    /// 0 means none do. A seq, not a time, so every node reaches the same
    /// verdict whatever its clock says.
    pub last_valid_seq: u64,
    pub reason: String,
}

/// A hub's signed statement of heads it held: for each author listed,
/// the hub held that author's chain up to `seq`, ending in `id`. Because
/// chains are hash-linked, the head fixes every earlier entry too.
///
/// One checkpoint lists at most [`MAX_CHECKPOINT_HEADS`] authors, in
/// strictly ascending order; a hub with more authors writes several
/// checkpoint entries in a row, each covering a range of authors. A
/// reader keeps, per hub and author, the highest seq attested.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubCheckpoint {
    pub heads: Vec<(AuthorId, Head)>,
}

/// An event field whose values a redaction may erase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RedactedField {
    Title,
    Description,
    /// The text of a note.
    Note,
}

impl RedactedField {
    pub const ALL: [RedactedField; 3] = [
        RedactedField::Title,
        RedactedField::Description,
        RedactedField::Note,
    ];

    /// The name on the wire and in the APIs.
    pub fn as_str(self) -> &'static str {
        match self {
            RedactedField::Title => "title",
            RedactedField::Description => "description",
            RedactedField::Note => "note",
        }
    }

    pub fn parse(s: &str) -> Option<RedactedField> {
        RedactedField::ALL.into_iter().find(|f| f.as_str() == s)
    }
}

/// One value a redaction erases: which field, and the SHA-256 of the
/// value ([`crate::redact::value_hash`]) — never the value itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RedactedValue {
    pub field: RedactedField,
    pub hash: [u8; 32],
}

/// An erasure of personal data from one event, signed by a hub on an
/// admin's behalf. Views show `[redacted]` wherever a listed value stood
/// and drop the listed blobs; the log keeps every entry as it was signed,
/// so chains still verify (`docs/protocol.md` 1.6, `docs/security.md`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redaction {
    pub event: EventId,
    /// At most [`MAX_REDACTED_ITEMS`], no value twice.
    pub values: Vec<RedactedValue>,
    /// SHA-256 of each media blob to erase; at most [`MAX_REDACTED_ITEMS`].
    pub blobs: Vec<[u8; 32]>,
    /// Why (the request it answers); never empty.
    pub reason: String,
}

impl Body {
    pub fn kind(&self) -> BodyKind {
        match self {
            Body::EventChange(_) => BodyKind::EventChange,
            Body::MediaAttached(_) => BodyKind::MediaAttached,
            Body::SensorReading(_) => BodyKind::SensorReading,
            Body::RoleGrant(_) => BodyKind::RoleGrant,
            Body::Revocation(_) => BodyKind::Revocation,
            Body::HubCheckpoint(_) => BodyKind::HubCheckpoint,
            Body::Redaction(_) => BodyKind::Redaction,
        }
    }

    /// Checks the limits the decoder enforces, so that an entry that could
    /// not be decoded is never signed.
    pub fn validate(&self) -> Result<(), DecodeError> {
        // Encoding and decoding once is the single source of truth for the
        // rules; bodies are small, and this runs only when signing.
        let mut w = Writer::default();
        self.encode(&mut w);
        let mut r = Reader::new(&w.out);
        Body::decode(&mut r).map(|_| ())
    }

    pub(crate) fn encode(&self, w: &mut Writer) {
        match self {
            Body::EventChange(b) => {
                w.array(3);
                w.uint(BodyKind::EventChange as u64);
                w.bytes(b.event.as_bytes());
                w.bytes(&b.change);
            }
            Body::MediaAttached(b) => {
                w.array(6);
                w.uint(BodyKind::MediaAttached as u64);
                w.bytes(b.event.as_bytes());
                w.bytes(&b.hash);
                w.text(b.mime.as_mime());
                w.uint(b.size);
                w.text(&b.name);
            }
            Body::SensorReading(b) => {
                w.array(5);
                w.uint(BodyKind::SensorReading as u64);
                w.text(&b.kind);
                w.array(b.values.len());
                for v in &b.values {
                    w.array(3);
                    w.text(&v.name);
                    w.f64(v.value);
                    w.text(&v.unit);
                }
                match b.location {
                    Some(p) => {
                        w.array(2);
                        w.f64(p.lon());
                        w.f64(p.lat());
                    }
                    None => w.null(),
                }
                w.uint(b.measured_ms);
            }
            Body::RoleGrant(b) => {
                w.array(3);
                w.uint(BodyKind::RoleGrant as u64);
                w.text(&b.person);
                w.uint(b.role as u64);
            }
            Body::Revocation(b) => {
                w.array(4);
                w.uint(BodyKind::Revocation as u64);
                w.bytes(b.key.as_bytes());
                w.uint(b.last_valid_seq);
                w.text(&b.reason);
            }
            Body::HubCheckpoint(b) => {
                w.array(2);
                w.uint(BodyKind::HubCheckpoint as u64);
                w.array(b.heads.len());
                for (author, head) in &b.heads {
                    w.array(3);
                    w.bytes(author.as_bytes());
                    w.uint(head.seq);
                    w.bytes(head.id.as_bytes());
                }
            }
            Body::Redaction(b) => {
                w.array(5);
                w.uint(BodyKind::Redaction as u64);
                w.bytes(b.event.as_bytes());
                w.array(b.values.len());
                for v in &b.values {
                    w.array(2);
                    w.text(v.field.as_str());
                    w.bytes(&v.hash);
                }
                w.array(b.blobs.len());
                for h in &b.blobs {
                    w.bytes(h);
                }
                w.text(&b.reason);
            }
        }
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Body, DecodeError> {
        let n = r.array_len("body", 1, 6)?;
        let kind = BodyKind::from_wire(r.uint("body.kind")?)?;
        let expect = |len: usize| {
            if n == len {
                Ok(())
            } else {
                Err(DecodeError::WrongLength {
                    field: "body",
                    len: n,
                    expected: len,
                })
            }
        };
        Ok(match kind {
            BodyKind::EventChange => {
                expect(3)?;
                Body::EventChange(EventChange {
                    event: EventId(r.fixed("event")?),
                    change: r.bytes("change", 1, MAX_ENTRY_BYTES)?.to_vec(),
                })
            }
            BodyKind::MediaAttached => {
                expect(6)?;
                let event = EventId(r.fixed("event")?);
                let hash = r.fixed("hash")?;
                let mime_text = r.text("mime", 1, 64)?;
                let mime =
                    MediaType::from_mime(mime_text).ok_or_else(|| DecodeError::OutOfRange {
                        field: "mime",
                        what: format!("media type {mime_text:?} is not accepted"),
                    })?;
                let size = r.uint("size")?;
                if !(1..=MAX_MEDIA_BYTES).contains(&size) {
                    return Err(DecodeError::OutOfRange {
                        field: "size",
                        what: format!("{size} bytes, allowed 1..={MAX_MEDIA_BYTES}"),
                    });
                }
                let name = r.text("name", 1, MAX_NAME_BYTES)?.to_owned();
                Body::MediaAttached(MediaAttached {
                    event,
                    hash,
                    mime,
                    size,
                    name,
                })
            }
            BodyKind::SensorReading => {
                expect(5)?;
                let kind = r.text("reading.kind", 1, MAX_KIND_BYTES)?.to_owned();
                let n_values = r.array_len("reading.values", 1, MAX_READING_VALUES)?;
                let mut values = Vec::with_capacity(n_values);
                for _ in 0..n_values {
                    r.array("reading.value", 3)?;
                    let name = r.text("value.name", 1, MAX_KIND_BYTES)?.to_owned();
                    let value = r.f64("value.value")?;
                    if !value.is_finite() {
                        return Err(DecodeError::OutOfRange {
                            field: "value.value",
                            what: format!("{value} is not finite"),
                        });
                    }
                    let unit = r.text("value.unit", 0, MAX_UNIT_BYTES)?.to_owned();
                    values.push(ReadingValue { name, value, unit });
                }
                let location = if r.is_null() {
                    r.skip_null();
                    None
                } else {
                    r.array("location", 2)?;
                    let lon = r.f64("location.lon")?;
                    let lat = r.f64("location.lat")?;
                    Some(Point::new(lon, lat).map_err(|e| DecodeError::OutOfRange {
                        field: "location",
                        what: e.to_string(),
                    })?)
                };
                let measured_ms = r.uint("measured_ms")?;
                Body::SensorReading(SensorReading {
                    kind,
                    values,
                    location,
                    measured_ms,
                })
            }
            BodyKind::RoleGrant => {
                expect(3)?;
                Body::RoleGrant(RoleGrant {
                    person: r.text("person", 1, MAX_ACTOR_BYTES)?.to_owned(),
                    role: PersonRole::from_wire(r.uint("role")?)?,
                })
            }
            BodyKind::Revocation => {
                expect(4)?;
                Body::Revocation(Revocation {
                    key: AuthorId(r.fixed("key")?),
                    last_valid_seq: r.uint("last_valid_seq")?,
                    reason: r.text("reason", 0, MAX_REASON_BYTES)?.to_owned(),
                })
            }
            BodyKind::HubCheckpoint => {
                expect(2)?;
                let n = r.array_len("checkpoint.heads", 1, MAX_CHECKPOINT_HEADS)?;
                let mut heads: Vec<(AuthorId, Head)> = Vec::with_capacity(n);
                for _ in 0..n {
                    r.array("checkpoint.head", 3)?;
                    let author = AuthorId(r.fixed("head.author")?);
                    let seq = r.uint("head.seq")?;
                    let id = EntryId(r.fixed("head.id")?);
                    if seq == 0 {
                        return Err(DecodeError::OutOfRange {
                            field: "head.seq",
                            what: "a head's seq starts at 1".into(),
                        });
                    }
                    if heads.last().is_some_and(|(prev, _)| *prev >= author) {
                        return Err(DecodeError::OutOfRange {
                            field: "checkpoint.heads",
                            what: "authors must be in strictly ascending byte order".into(),
                        });
                    }
                    heads.push((author, Head { seq, id }));
                }
                Body::HubCheckpoint(HubCheckpoint { heads })
            }
            BodyKind::Redaction => {
                expect(5)?;
                decode_redaction(r)?
            }
        })
    }
}

fn decode_redaction(r: &mut Reader<'_>) -> Result<Body, DecodeError> {
    let event = EventId(r.fixed("event")?);
    let n = r.array_len("redaction.values", 0, MAX_REDACTED_ITEMS)?;
    let mut values: Vec<RedactedValue> = Vec::with_capacity(n);
    for _ in 0..n {
        r.array("redaction.value", 2)?;
        let name = r.text("value.field", 1, 32)?;
        let field = RedactedField::parse(name).ok_or_else(|| DecodeError::OutOfRange {
            field: "value.field",
            what: format!("{name:?} is not a field a redaction erases"),
        })?;
        let v = RedactedValue {
            field,
            hash: r.fixed("value.hash")?,
        };
        if values.contains(&v) {
            return Err(DecodeError::OutOfRange {
                field: "redaction.values",
                what: "a value is listed twice".into(),
            });
        }
        values.push(v);
    }
    let n = r.array_len("redaction.blobs", 0, MAX_REDACTED_ITEMS)?;
    let mut blobs: Vec<[u8; 32]> = Vec::with_capacity(n);
    for _ in 0..n {
        let h = r.fixed("blob")?;
        if blobs.contains(&h) {
            return Err(DecodeError::OutOfRange {
                field: "redaction.blobs",
                what: "a blob is listed twice".into(),
            });
        }
        blobs.push(h);
    }
    if values.is_empty() && blobs.is_empty() {
        return Err(DecodeError::OutOfRange {
            field: "redaction",
            what: "a redaction erases at least one value or blob".into(),
        });
    }
    let reason = r.text("reason", 1, MAX_REASON_BYTES)?.to_owned();
    Ok(Body::Redaction(Redaction {
        event,
        values,
        blobs,
        reason,
    }))
}
