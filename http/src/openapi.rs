//! What both servers' OpenAPI 3.1 documents share: the [`Problem`]
//! schema, the error responses every route may give (as `utoipa`
//! [`IntoResponses`] types to list in `#[utoipa::path(responses(...))]`),
//! the bearer security scheme, the changes a router's layers make to
//! what a route can answer ([`rate_limited`]), and the login request's
//! shape. The JSON both APIs answer is `crate::api::json`.
//!
//! Each server builds its document from its handlers' annotations, with the
//! router (`utoipa-axum`), so a route cannot be served without being
//! documented, nor documented without being served.

use std::collections::BTreeMap;

use sentinel_schema::access::{parse_role, role_name};
use sentinel_schema::PersonRole;
use utoipa::openapi::path::Operation;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ComponentsBuilder, ContentBuilder, HeaderBuilder, OpenApi, Ref, RefOr};
use utoipa::{IntoResponses, PartialSchema, ToSchema};

use crate::{Problem, PROBLEM_JSON};

/// The name of the bearer security scheme (`Authorization: Bearer TOKEN`).
pub const BEARER: &str = "bearer";

impl PartialSchema for Problem {
    fn schema() -> RefOr<Schema> {
        let text = |description: &str| {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .description(Some(description))
        };
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some(
                "An error (RFC 9457, application/problem+json); `field` names the refused \
                 parameter or body member, when there is one.",
            ))
            .property(
                "type",
                text("A URI reference naming the kind of problem (urn:sentinel:problem:…)."),
            )
            .required("type")
            .property("title", text("A short summary of the kind of problem."))
            .required("title")
            .property(
                "status",
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(400))
                    .maximum(Some(599)),
            )
            .required("status")
            .property("detail", text("What went wrong, for people."))
            .required("detail")
            .property(
                "field",
                text("The query parameter, path segment or body member refused."),
            )
            .into()
    }
}

impl ToSchema for Problem {
    fn name() -> std::borrow::Cow<'static, str> {
        "Problem".into()
    }
}

/// A response of `status` carrying a [`Problem`].
fn problem_response(description: &str) -> ResponseBuilder {
    ResponseBuilder::new().description(description).content(
        PROBLEM_JSON,
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name(Problem::name())))
            .build(),
    )
}

fn one(status: &str, response: ResponseBuilder) -> BTreeMap<String, RefOr<Response>> {
    BTreeMap::from([(status.to_owned(), response.build().into())])
}

/// Declares an error response type: `$status` with a [`Problem`] body.
macro_rules! problem_responses {
    ($($(#[$doc:meta])* $name:ident = $status:literal, $description:literal;)*) => {
        $(
            $(#[$doc])*
            #[derive(Debug, Clone, Copy)]
            pub struct $name;

            impl IntoResponses for $name {
                fn responses() -> BTreeMap<String, RefOr<Response>> {
                    one($status, problem_response($description))
                }
            }
        )*
    };
}

problem_responses! {
    /// 400: a query parameter, path segment or body member is refused.
    BadRequest = "400", "A parameter or body member is refused (`field` names it).";
    /// 403: the caller's role may not do this (`docs/security.md` 3.3).
    Forbidden = "403", "The caller's role may not do this.";
    /// 404: nothing is known by this name.
    NotFound = "404", "Nothing is known by this name.";
    /// 409: the request conflicts with what exists.
    Conflict = "409", "The request conflicts with what exists.";
    /// 413: a body or an answer over its bound.
    TooLarge = "413", "The body, or the answer, is over its bound.";
    /// 415: a body that is not `application/json`.
    UnsupportedMediaType = "415", "The body is not application/json.";
    /// 503: the database (or another part the route needs) did not answer.
    Unavailable = "503", "The database, or another part this route needs, did not answer.";
}

/// 401: no valid bearer token (or a failed login), with `WWW-Authenticate`.
#[derive(Debug, Clone, Copy)]
pub struct Unauthorized;

impl IntoResponses for Unauthorized {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        one(
            "401",
            problem_response(
                "No valid bearer token: missing, unknown, expired or revoked, or its \
                 account disabled (for login: a wrong name or password).",
            )
            .header(
                "WWW-Authenticate",
                HeaderBuilder::new()
                    .schema(String::schema())
                    .description(Some("Bearer realm=\"sentinel\""))
                    .build(),
            ),
        )
    }
}

/// A JSON request body's refusals: 400 (a bad or unknown member), 413 (over
/// [`crate::body::MAX_JSON_BYTES`]) and 415 (not `application/json`), as
/// [`crate::body::json_object`] gives them.
#[derive(Debug, Clone, Copy)]
pub struct JsonBodyRefusals;

impl IntoResponses for JsonBodyRefusals {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        let mut all = BadRequest::responses();
        all.append(&mut TooLarge::responses());
        all.append(&mut UnsupportedMediaType::responses());
        all
    }
}

/// A schema that is one of `names` (a string enum), for names the code
/// holds as a list (statuses, roles, kinds of entry), so the document
/// follows the list.
pub fn names_schema<'a>(names: impl IntoIterator<Item = &'a str>) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(names))
}

/// A kind of entry, by name (`unknown` for a kind the server answering
/// does not know), as the history, the hub's timeline and the node's
/// outbox show it.
pub fn entry_kind_schema() -> ObjectBuilder {
    names_schema(
        sentinel_schema::BodyKind::ALL
            .iter()
            .map(|k| k.as_str())
            .chain(std::iter::once("unknown")),
    )
}

/// A person's role, by name (`admin`, `officer`, `public`, `none`).
pub fn role_schema() -> ObjectBuilder {
    let roles = [
        PersonRole::Admin,
        PersonRole::Officer,
        PersonRole::Public,
        PersonRole::None,
    ];
    debug_assert!(roles.iter().all(|r| parse_role(role_name(*r)) == Some(*r)));
    names_schema(roles.iter().map(|r| role_name(*r)))
}

// The types below only describe JSON for the documents (the handlers read
// and write `serde_json` values). `#[serde(deny_unknown_fields)]` makes
// utoipa emit `additionalProperties: false`, as `body::json_object`
// refuses unknown members.

/// `POST /api/v1/login`.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Login {
    pub name: String,
    pub password: String,
}

/// `POST /api/v1/password`.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    /// The account's password now.
    pub current_password: String,
    /// At least 12 characters, at most 1024 bytes.
    #[schema(min_length = 12, max_length = 1024)]
    pub new_password: String,
}

/// The event id the documents give as an example (each server's
/// `api_fixture` seeds it).
pub const EXAMPLE_EVENT: &str = "01010101010101010101010101010101";

/// Adds the [`Problem`] schema and the [`BEARER`] security scheme to
/// `doc`'s components.
pub fn add_components(doc: &mut OpenApi) {
    let mut components = doc
        .components
        .take()
        .unwrap_or_else(|| ComponentsBuilder::new().build());
    components
        .schemas
        .insert(Problem::name().into_owned(), Problem::schema());
    components.security_schemes.insert(
        BEARER.to_owned(),
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(
                    "A token from POST /api/v1/login, as Authorization: Bearer TOKEN.",
                ))
                .build(),
        ),
    );
    doc.components = Some(components);
}

/// Adds `429` (with `Retry-After`) to every operation of `doc` whose path
/// starts with `prefix`: what [`crate::limit::limited`] adds to the routes
/// it wraps.
pub fn rate_limited(doc: &mut OpenApi, prefix: &str) {
    for (path, item) in doc.paths.paths.iter_mut() {
        if !path.starts_with(prefix) {
            continue;
        }
        for operation in operations(item) {
            let response = problem_response(
                "Over this client's rate limit: wait `Retry-After` seconds and try again.",
            )
            .header(
                "Retry-After",
                HeaderBuilder::new()
                    .schema(u64::schema())
                    .description(Some("Seconds to wait."))
                    .build(),
            )
            .build();
            operation
                .responses
                .responses
                .insert("429".to_owned(), response.into());
        }
    }
}

/// Every operation of a path item.
pub fn operations(item: &mut utoipa::openapi::PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        item.get.as_mut(),
        item.put.as_mut(),
        item.post.as_mut(),
        item.delete.as_mut(),
        item.options.as_mut(),
        item.head.as_mut(),
        item.patch.as_mut(),
        item.trace.as_mut(),
    ]
    .into_iter()
    .flatten()
}
