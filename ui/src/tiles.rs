//! The map's tile sources: the operator's MBTiles file served at
//! `GET /tiles/{z}/{x}/{y}` ([`routes`]), and the check of an online tile
//! URL template ([`check_tile_url`]).
//!
//! Tiles are as public as the page itself (a basemap, not data): no
//! sign-in. An answer carries the file's format as its type
//! (`image/png`, …; vector tiles gzip-encoded when stored so), `404` for
//! a tile the file lacks, and `400` naming the part that is not a number.
//!
//! Never does: SQL (`crate::store::mbtiles` reads the file), or fetch a
//! tile from anywhere else.

use std::sync::Arc;

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::store::mbtiles::{MbTiles, TileFormat};

/// Why an online tile URL template is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TileUrlError {
    #[error(
        "{0:?} is not an http:// or https:// URL with a host (such as \
         https://tiles.example.org/{{z}}/{{x}}/{{y}}.png)"
    )]
    Scheme(String),
    #[error("{url:?} lacks {part}: a tile template names {{z}}, {{x}} and {{y}}")]
    Placeholder { url: String, part: &'static str },
    #[error("{0:?} holds a quote, angle bracket, space or control character")]
    Character(String),
}

/// Checks an online tile URL template: `http(s)://host/…` naming `{z}`,
/// `{x}` and `{y}` (a web map fills them in), nothing a page could
/// misread.
pub fn check_tile_url(url: &str) -> Result<(), TileUrlError> {
    if url
        .chars()
        .any(|c| c.is_control() || c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | '\\'))
    {
        return Err(TileUrlError::Character(url.to_owned()));
    }
    if crate::origin(url).is_none() {
        return Err(TileUrlError::Scheme(url.to_owned()));
    }
    for part in ["{z}", "{x}", "{y}"] {
        if !url.contains(part) {
            return Err(TileUrlError::Placeholder {
                url: url.to_owned(),
                part,
            });
        }
    }
    Ok(())
}

/// `/tiles/{z}/{x}/{y}` from `file`, for any router state.
pub fn routes<S: Clone + Send + Sync + 'static>(file: Arc<MbTiles>) -> Router<S> {
    Router::new().route(
        "/tiles/{z}/{x}/{y}",
        get(move |Path((z, x, y)): Path<(String, String, String)>| {
            let file = file.clone();
            async move { answer(file, &z, &x, &y).await }
        }),
    )
}

/// A plain-text answer (tiles are images: a problem+json body would be
/// shown to nobody).
fn plain(status: StatusCode, text: String) -> Response {
    let mut r = (status, text).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

async fn answer(file: Arc<MbTiles>, z: &str, x: &str, y: &str) -> Response {
    let bad = |name: &str| {
        plain(
            StatusCode::BAD_REQUEST,
            format!("`{name}` of /tiles/{{z}}/{{x}}/{{y}} must be a whole number"),
        )
    };
    let Ok(zn) = z.parse::<u32>() else {
        return bad("z");
    };
    let Ok(xn) = x.parse::<u64>() else {
        return bad("x");
    };
    let Ok(yn) = y.parse::<u64>() else {
        return bad("y");
    };
    let format = file.format();
    let read = tokio::task::spawn_blocking(move || file.tile(zn, xn, yn)).await;
    match read {
        Ok(Ok(Some(data))) => tile(format, data),
        Ok(Ok(None)) => plain(StatusCode::NOT_FOUND, format!("no tile {z}/{x}/{y}")),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "reading a tile failed");
            plain(
                StatusCode::SERVICE_UNAVAILABLE,
                "the tile file cannot be read".into(),
            )
        }
        Err(e) => {
            tracing::error!(error = %e, "a tile read did not finish");
            plain(
                StatusCode::SERVICE_UNAVAILABLE,
                "the tile file cannot be read".into(),
            )
        }
    }
}

fn tile(format: TileFormat, data: Vec<u8>) -> Response {
    let gzipped = format == TileFormat::Pbf && data.starts_with(&[0x1f, 0x8b]);
    let mut r = (StatusCode::OK, data).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    if gzipped {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    // The file changes only with a restart; a day's cache spares a
    // field laptop's disk and battery.
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=86400"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use axum::body::{to_bytes, Body};
    use axum::http::Request;
    use tower::ServiceExt;

    use super::*;
    use crate::store::mbtiles::write_test_file;
    use crate::{ServerKind, UiConfig};

    async fn get(app: &Router, path: &str) -> (StatusCode, Option<String>, Vec<u8>) {
        let r = app
            .clone()
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let ct = r
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_owned());
        let status = r.status();
        (
            status,
            ct,
            to_bytes(r.into_body(), 1 << 20).await.unwrap().to_vec(),
        )
    }

    #[tokio::test]
    async fn tiles_are_served_from_the_operators_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("region.mbtiles");
        let webp = b"RIFF\0\0\0\0WEBPVP8 tile";
        write_test_file(&path, Some("webp"), &[(3, 4, 2, webp)]).unwrap();
        let config = UiConfig::new(ServerKind::Node, "n")
            .with_tile_file(&path)
            .unwrap();
        assert!(config.tiles);
        assert_eq!(config.attribution.as_deref(), Some("Test map"));
        let app: Router = crate::routes(config);
        let (status, ct, body) = get(&app, "/tiles/3/4/2").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(ct.as_deref(), Some("image/webp"));
        assert_eq!(body, webp);
        // The row is the XYZ one: the TMS row of 3/4/2 is 5, not 2.
        let (status, _, _) = get(&app, "/tiles/3/4/5").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _, _) = get(&app, "/tiles/30/4/2").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        for (path, name) in [
            ("/tiles/x/4/2", "`z`"),
            ("/tiles/3/-4/2", "`x`"),
            ("/tiles/3/4/2.png", "`y`"),
        ] {
            let (status, _, body) = get(&app, path).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{path}");
            assert!(String::from_utf8(body).unwrap().contains(name), "{path}");
        }
        // The page's config says there are tiles.
        let (_, _, body) = get(&app, "/ui/config.json").await;
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["tiles"], true);
        assert_eq!(json["attribution"], "Test map");
    }

    #[tokio::test]
    async fn vector_tiles_keep_their_gzip_and_are_not_drawn() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("vector.mbtiles");
        let gz = b"\x1f\x8b\x08\0compressed";
        write_test_file(&path, Some("pbf"), &[(0, 0, 0, gz)]).unwrap();
        let config = UiConfig::new(ServerKind::Hub, "h")
            .with_tile_file(&path)
            .unwrap();
        assert!(!config.tiles, "the page's map draws raster tiles only");
        let app: Router = crate::routes(config);
        let r = app
            .oneshot(Request::get("/tiles/0/0/0").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(
            r.headers()[header::CONTENT_TYPE],
            "application/vnd.mapbox-vector-tile"
        );
        assert_eq!(r.headers()[header::CONTENT_ENCODING], "gzip");
    }

    #[tokio::test]
    async fn without_a_file_there_is_no_tile_route() {
        let app: Router = crate::routes(UiConfig::new(ServerKind::Node, "n"));
        let (status, _, _) = get(&app, "/tiles/0/0/0").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }

    #[test]
    fn tile_url_templates_are_checked() {
        assert!(check_tile_url("https://tiles.example.org/{z}/{x}/{y}.png").is_ok());
        assert!(check_tile_url("http://10.0.0.2:8080/t/{z}/{x}/{y}").is_ok());
        for (url, says) in [
            ("file:///srv/{z}/{x}/{y}.png", "http"),
            ("javascript:alert(1)//{z}{x}{y}", "http"),
            ("ftp://x/{z}/{x}/{y}", "http"),
            ("https://t.example.org/{z}/{x}.png", "{y}"),
            ("https://t.example.org/{z}/{x}/{y}.png\"", "quote"),
        ] {
            let e = check_tile_url(url).expect_err(url).to_string();
            assert!(e.contains(says), "{url}: {e}");
        }
    }
}
