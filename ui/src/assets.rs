//! The page's files, compiled into the binary, and how they are answered.
//!
//! Everything under `ui/assets/` is embedded: our own scripts, styles and
//! strings, and the vendored libraries under `assets/vendor/` (each with
//! its licence, listed in `assets/vendor/README.md`). Answers carry a
//! strong ETag (the file's SHA-256), `Cache-Control: no-cache` (a browser
//! revalidates, so a new binary's pages are used at once) and `nosniff`.
//!
//! Never does: read the filesystem at run time.

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use rust_embed::RustEmbed;

/// The embedded files.
#[derive(RustEmbed)]
#[folder = "assets/"]
struct Files;

/// The content type of a file, by its extension.
pub fn content_type(path: &str) -> &'static str {
    let ext = path.rsplit_once('.').map(|(_, e)| e).unwrap_or("");
    match ext {
        "html" => "text/html; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "txt" | "md" => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// Every embedded file's path.
pub fn paths() -> impl Iterator<Item = String> {
    Files::iter().map(|p| p.into_owned())
}

/// The bytes of one embedded file.
pub fn bytes(path: &str) -> Option<Vec<u8>> {
    Files::get(path).map(|f| f.data.into_owned())
}

/// The answer for `path`: the file, `304` when the browser holds this
/// very version, or a plain `404`.
pub fn answer(path: &str, request: &HeaderMap, csp: &HeaderValue) -> Response {
    let Some(file) = Files::get(path) else {
        return (StatusCode::NOT_FOUND, "no such file\n").into_response();
    };
    let etag = format!("\"{}\"", hex::encode(file.metadata.sha256_hash()));
    let fresh = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (StatusCode::OK, file.data.into_owned()).into_response()
    };
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(path)),
    );
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    h.insert("content-security-policy", csp.clone());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_and_its_catalogue_are_embedded() {
        let all: Vec<String> = paths().collect();
        for needed in ["index.html", "app.css", "i18n/en.json", "js/main.js"] {
            assert!(all.iter().any(|p| p == needed), "{needed} missing");
        }
    }

    #[test]
    fn our_own_files_name_no_outside_url() {
        // The vendored libraries carry their homepages in comments and
        // licences; what they load is checked in the browser tests.
        let mut checked = 0;
        for path in paths().filter(|p| !p.starts_with("vendor/")) {
            let text = String::from_utf8(bytes(&path).unwrap_or_default()).unwrap_or_default();
            for scheme in ["http://", "https://", "//cdn", "//unpkg", "//fonts."] {
                let allowed = path.ends_with(".svg") && text.contains("http://www.w3.org/2000/svg");
                let hits = text.matches(scheme).count()
                    - if allowed && scheme == "http://" {
                        text.matches("http://www.w3.org/2000/svg").count()
                    } else {
                        0
                    };
                assert_eq!(hits, 0, "{path} names an outside URL ({scheme})");
            }
            checked += 1;
        }
        assert!(checked > 5, "only {checked} files checked");
    }

    #[test]
    fn the_catalogue_is_valid_json_with_strings_only() {
        let raw = bytes("i18n/en.json").unwrap_or_default();
        let v: serde_json::Value = serde_json::from_slice(&raw).unwrap_or_default();
        let map = v.as_object().cloned().unwrap_or_default();
        assert!(map.len() > 50, "{} strings", map.len());
        assert!(map.values().all(|s| s.is_string()));
    }

    #[test]
    fn every_catalogue_key_the_page_uses_exists() {
        let raw = bytes("i18n/en.json").unwrap_or_default();
        let v: serde_json::Value = serde_json::from_slice(&raw).unwrap_or_default();
        let mut used = 0;
        for path in paths().filter(|p| !p.starts_with("vendor/")) {
            let text = String::from_utf8(bytes(&path).unwrap_or_default()).unwrap_or_default();
            for marker in ["t('", "data-i18n=\""] {
                for piece in text.split(marker).skip(1) {
                    let end = piece.find(['\'', '"']).unwrap_or(0);
                    let key = &piece[..end];
                    assert!(
                        v.get(key).is_some(),
                        "{path} uses {key:?}, not in i18n/en.json"
                    );
                    used += 1;
                }
            }
        }
        assert!(used > 20, "only {used} uses found");
    }

    #[test]
    fn answers_carry_type_etag_and_policy() {
        let csp = HeaderValue::from_static("default-src 'self'");
        let r = answer("app.css", &HeaderMap::new(), &csp);
        assert_eq!(r.status(), StatusCode::OK);
        let etag = r.headers()[header::ETAG].clone();
        assert_eq!(r.headers()[header::CONTENT_TYPE], "text/css; charset=utf-8");
        let mut again = HeaderMap::new();
        again.insert(header::IF_NONE_MATCH, etag);
        assert_eq!(
            answer("app.css", &again, &csp).status(),
            StatusCode::NOT_MODIFIED
        );
        assert_eq!(
            answer("../Cargo.toml", &HeaderMap::new(), &csp).status(),
            StatusCode::NOT_FOUND
        );
    }
}
