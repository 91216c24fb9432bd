//! Errors as `application/problem+json` (RFC 9457).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// A problem: a status, a short title, a detail for people and, for bad
/// parameters, the parameter at fault (extension member `field`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub status: StatusCode,
    /// A URI reference naming the kind of problem (`type`).
    pub kind: &'static str,
    pub title: &'static str,
    pub detail: String,
    /// The query parameter (or path segment) that was refused.
    pub field: Option<String>,
}

impl Problem {
    /// 400: the parameter `field` is refused, for the reason `detail`.
    pub fn bad_param(field: impl Into<String>, detail: impl Into<String>) -> Problem {
        Problem {
            status: StatusCode::BAD_REQUEST,
            kind: "urn:sentinel:problem:bad-parameter",
            title: "Bad request parameter",
            detail: detail.into(),
            field: Some(field.into()),
        }
    }

    /// 404: nothing is known by this name.
    pub fn not_found(detail: impl Into<String>) -> Problem {
        Problem {
            status: StatusCode::NOT_FOUND,
            kind: "urn:sentinel:problem:not-found",
            title: "Not found",
            detail: detail.into(),
            field: None,
        }
    }

    /// 410: it existed and was erased on purpose (a redaction's blob).
    pub fn gone(detail: impl Into<String>) -> Problem {
        Problem {
            status: StatusCode::GONE,
            kind: "urn:sentinel:problem:gone",
            title: "Gone",
            detail: detail.into(),
            field: None,
        }
    }

    /// 503: the database could not answer. The detail stays generic; the
    /// cause is logged on stderr, not sent to the client.
    pub fn unavailable(cause: &dyn std::fmt::Display) -> Problem {
        eprintln!("api: {cause}");
        Problem {
            status: StatusCode::SERVICE_UNAVAILABLE,
            kind: "urn:sentinel:problem:unavailable",
            title: "Service unavailable",
            detail: "the database did not answer".into(),
            field: None,
        }
    }

    /// 503 from a readiness check: `detail` says what is not ready (for
    /// the operator; it names nothing secret).
    pub fn not_ready(detail: impl Into<String>) -> Problem {
        Problem {
            status: StatusCode::SERVICE_UNAVAILABLE,
            kind: "urn:sentinel:problem:unavailable",
            title: "Service unavailable",
            detail: detail.into(),
            field: None,
        }
    }

    /// 413: the answer would exceed a bound.
    pub fn too_large(detail: impl Into<String>) -> Problem {
        Problem {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            kind: "urn:sentinel:problem:too-large",
            title: "Answer too large",
            detail: detail.into(),
            field: None,
        }
    }
}

impl Problem {
    /// 401: no valid bearer token (missing, unknown, expired, revoked, or
    /// its account disabled), or a failed login.
    pub fn unauthorized(detail: impl Into<String>) -> Problem {
        Problem {
            status: StatusCode::UNAUTHORIZED,
            kind: "urn:sentinel:problem:unauthorized",
            title: "Not signed in",
            detail: detail.into(),
            field: None,
        }
    }

    /// 403: signed in, but the role (or the object rule) forbids it.
    pub fn forbidden(detail: impl Into<String>) -> Problem {
        Problem {
            status: StatusCode::FORBIDDEN,
            kind: "urn:sentinel:problem:forbidden",
            title: "Forbidden",
            detail: detail.into(),
            field: None,
        }
    }

    /// 400: a field of the JSON body is refused.
    pub fn bad_field(field: impl Into<String>, detail: impl Into<String>) -> Problem {
        Problem {
            status: StatusCode::BAD_REQUEST,
            kind: "urn:sentinel:problem:bad-field",
            title: "Bad request body",
            detail: detail.into(),
            field: Some(field.into()),
        }
    }

    /// 408: the request body did not arrive in time
    /// (`crate::serve::ServeOptions`: `body_timeout`, `body_deadline`).
    pub fn timeout(detail: impl Into<String>) -> Problem {
        Problem {
            status: StatusCode::REQUEST_TIMEOUT,
            kind: "urn:sentinel:problem:timeout",
            title: "Request timeout",
            detail: detail.into(),
            field: Some("body".into()),
        }
    }

    /// 503: a bound of the server is reached (live-feed subscribers,
    /// uploads at once); `detail` says which. Retrying later may succeed.
    pub fn busy(detail: impl Into<String>) -> Problem {
        Problem {
            status: StatusCode::SERVICE_UNAVAILABLE,
            kind: "urn:sentinel:problem:busy",
            title: "Too busy",
            detail: detail.into(),
            field: None,
        }
    }

    /// 409: the request conflicts with what exists (a taken name).
    pub fn conflict(field: impl Into<String>, detail: impl Into<String>) -> Problem {
        Problem {
            status: StatusCode::CONFLICT,
            kind: "urn:sentinel:problem:conflict",
            title: "Conflict",
            detail: detail.into(),
            field: Some(field.into()),
        }
    }
}

#[cfg(feature = "postgres")]
impl From<tokio_postgres::Error> for Problem {
    fn from(e: tokio_postgres::Error) -> Problem {
        Problem::unavailable(&e)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let mut body = json!({
            "type": self.kind,
            "title": self.title,
            "status": self.status.as_u16(),
            "detail": self.detail,
        });
        if let Some(field) = self.field {
            body["field"] = json!(field);
        }
        let unauthorized = self.status == StatusCode::UNAUTHORIZED;
        let mut response = (self.status, body.to_string()).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if unauthorized {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"sentinel\""),
            );
        }
        response
    }
}
