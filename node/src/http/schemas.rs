//! The shapes of the JSON the node's own routes read and write, as types
//! for the OpenAPI document (the handlers read and write `serde_json`
//! values; these only describe them, and the API fuzzer checks every
//! answer against them, see `docs/operations.md`), and the example ids
//! the document gives (`api_fixture` seeds them). The shapes of the
//! routes both servers serve are `sentinel_http::api::json`'s.
//!
//! Never does: decide what a route accepts (the handlers check their own
//! input; the document describes it).

use sentinel_http::api::json::Location;
use sentinel_http::openapi::entry_kind_schema;
use utoipa::ToSchema;

/// The event id the document gives as an example (`api_fixture` seeds it,
/// reported).
pub const EXAMPLE_EVENT: &str = "01010101010101010101010101010101";
/// The example of the workflow steps from `in_progress` (`api_fixture`
/// seeds it so).
pub const EXAMPLE_IN_PROGRESS: &str = "02020202020202020202020202020202";
/// The example of the steps from `resolved`.
pub const EXAMPLE_RESOLVED: &str = "03030303030303030303030303030303";
/// The example of the steps from `closed`.
pub const EXAMPLE_CLOSED: &str = "04040404040404040404040404040404";
/// The example of the steps from `assigned`.
pub const EXAMPLE_ASSIGNED: &str = "05050505050505050505050505050505";
/// The media hash the document gives as an example: the SHA-256 of
/// [`EXAMPLE_MEDIA_BYTES`] (`api_fixture` attaches it to the example event).
pub const EXAMPLE_MEDIA: &str = "a9daccaecd68e446d76070cc759afcfb3b85f593361f2ab8daf19004e2c687b9";
/// A minimal JPEG (by its magic bytes, which is all the node checks).
pub const EXAMPLE_MEDIA_BYTES: &[u8] = &[
    0xFF, 0xD8, 0xFF, 0xE0, 0, 16, b'J', b'F', b'I', b'F', 0, 1, 1, 0, 0, 1,
];

/// The entry a write committed.
#[derive(ToSchema)]
pub struct Ack {
    /// The event, 32 hex digits.
    #[schema(pattern = "^[0-9a-f]{32}$")]
    pub event: String,
    /// The entry, 64 hex digits.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub entry: String,
    /// Its seq in this node's chain.
    #[schema(minimum = 1)]
    pub seq: i64,
}

/// The entries an edit committed, one per field changed.
#[derive(ToSchema)]
pub struct Edited {
    pub entries: Vec<Ack>,
}

/// `POST /api/v1/events`: a new event, reported by the caller.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEvent {
    /// Not blank, at most 200 bytes (without surrounding spaces), no
    /// control characters.
    #[schema(min_length = 1, max_length = 200)]
    pub title: String,
    /// At most 10000 bytes, no control characters but newline and tab.
    #[schema(required = false, max_length = 10000)]
    pub description: String,
    /// Not blank, at most 64 bytes.
    #[schema(min_length = 1, max_length = 64)]
    pub category: String,
    #[schema(minimum = 1, maximum = 5)]
    pub severity: i64,
    pub location: Location,
    /// When it happened, Unix ms; at most 5 minutes ahead of the node's
    /// clock. Default: now.
    #[schema(required = false, minimum = 0)]
    pub reported_ms: i64,
}

/// `PATCH /api/v1/events/{id}`: the fields to change (at least one), each
/// with the rules of [`NewEvent`].
// `minProperties: 1` is set by `document` (see `needs_a_member`).
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventChanges {
    #[schema(required = false, min_length = 1, max_length = 200)]
    pub title: String,
    #[schema(required = false, max_length = 10000)]
    pub description: String,
    #[schema(required = false, min_length = 1, max_length = 64)]
    pub category: String,
    #[schema(required = false, minimum = 1, maximum = 5)]
    pub severity: i64,
    #[schema(required = false)]
    pub location: Location,
}

/// `POST /api/v1/events/{id}/notes`.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewNote {
    /// Not blank, at most 5000 bytes.
    #[schema(min_length = 1, max_length = 5000)]
    pub text: String,
}

/// `POST /api/v1/events/{id}/media`: `multipart/form-data`.
#[derive(ToSchema)]
pub struct MediaUpload {
    /// The bytes: JPEG, PNG, WebP or MP4 (decided by the bytes), at most
    /// 64 MiB.
    #[schema(value_type = String, format = Binary)]
    pub file: Vec<u8>,
    /// The name to record (default: the part's file name); at most 255
    /// bytes, no control characters.
    #[schema(required = false, max_length = 255)]
    pub name: String,
}

/// An entry written on this node that no hub has acknowledged yet.
#[derive(ToSchema)]
pub struct OutboxEntry {
    #[schema(minimum = 1)]
    pub seq: i64,
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub entry: String,
    #[schema(schema_with = entry_kind_schema)]
    pub kind: String,
    /// The event it is about, if any.
    pub event: Option<String>,
    /// Its hybrid logical clock, `wall_ms.counter`.
    pub hlc: String,
    /// The wall-clock part of `hlc`, Unix ms.
    #[schema(minimum = 0)]
    pub hlc_ms: i64,
}

/// A hub's acknowledgement of this node's chain up to `seq`.
#[derive(ToSchema)]
pub struct Receipt {
    /// The hub's key, 64 hex digits.
    pub hub: String,
    /// The hub's name, from its certificate.
    pub hub_name: String,
    pub author: String,
    /// Every seq up to this one is acknowledged.
    #[schema(minimum = 0)]
    pub seq: i64,
    pub entry: String,
    /// When it arrived, Unix ms.
    #[schema(minimum = 0)]
    pub received_ms: i64,
}

/// What this node wrote that no hub acknowledged yet.
#[derive(ToSchema)]
pub struct Outbox {
    /// This node's key, 64 hex digits.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub author: String,
    #[schema(minimum = 0)]
    pub awaiting_receipt: i64,
    pub entries: Vec<OutboxEntry>,
    /// The newest receipt, `null` before the first.
    pub last_receipt: Option<Receipt>,
}
