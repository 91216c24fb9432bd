//! Bad input, health, and the binary serving the API.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_a_400_problem_naming_the_field() {
    let (_db, store) = fresh_store().await;
    let cases: &[(&str, &str)] = &[
        ("/api/v1/timeline?author=zz", "author"),
        ("/api/v1/timeline?author=abcd", "author"),
        ("/api/v1/timeline?event=123", "event"),
        ("/api/v1/timeline?kind=gossip", "kind"),
        ("/api/v1/timeline?from=10&to=5", "from"),
        ("/api/v1/timeline?from=-1", "from"),
        ("/api/v1/timeline?to=soon", "to"),
        ("/api/v1/timeline?limit=0", "limit"),
        ("/api/v1/timeline?limit=501", "limit"),
        ("/api/v1/timeline?limit=ten", "limit"),
        ("/api/v1/timeline?after=nonsense", "after"),
        ("/api/v1/timeline?after=6869", "after"),
        ("/api/v1/timeline?sort=desc", "sort"),
        ("/api/v1/timeline?order=newest", "order"),
        (
            "/api/v1/timeline?kind=event_change&kind=media_attached",
            "kind",
        ),
        ("/api/v1/events?bbox=1,2,3", "bbox"),
        ("/api/v1/events?bbox=0,0,NaN,1", "bbox"),
        ("/api/v1/events?bbox=0,0,inf,1", "bbox"),
        ("/api/v1/events?bbox=0,0,181,1", "bbox"),
        ("/api/v1/events?bbox=0,-91,1,1", "bbox"),
        ("/api/v1/events?bbox=0,10,1,5", "bbox"),
        ("/api/v1/events?bbox=a,b,c,d", "bbox"),
        ("/api/v1/events?near=13,52", "radius"),
        ("/api/v1/events?radius=100", "near"),
        ("/api/v1/events?near=13,95&radius=100", "near"),
        ("/api/v1/events?near=13,52&radius=-5", "radius"),
        ("/api/v1/events?near=13,52&radius=NaN", "radius"),
        ("/api/v1/events?near=13,52&radius=1e9", "radius"),
        ("/api/v1/events?q=", "q"),
        ("/api/v1/events?status=lost", "status"),
        ("/api/v1/events?min_severity=0", "min_severity"),
        ("/api/v1/events?max_severity=6", "max_severity"),
        (
            "/api/v1/events?min_severity=4&max_severity=2",
            "min_severity",
        ),
        ("/api/v1/events?from=30&to=20", "from"),
        ("/api/v1/events?limit=1000", "limit"),
        ("/api/v1/events?after=zz", "after"),
        ("/api/v1/events?author=00", "author"),
        ("/api/v1/events/not-hex", "id"),
        ("/api/v1/events/00", "id"),
        ("/api/v1/events/0000000000000000000000000000000?x=1", "x"),
        // An export takes the filters of a search, not its page.
        ("/api/v1/export.geojson?limit=5", "limit"),
        ("/api/v1/export.geojson?bbox=0,0,1", "bbox"),
    ];
    for (uri, field) in cases {
        let (status, content_type, body) = get(&store, uri).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {body}");
        assert_eq!(content_type, PROBLEM_JSON, "{uri}");
        assert_eq!(body["status"], 400, "{uri}");
        assert_eq!(body["field"], *field, "{uri}: {body}");
        assert!(
            body["type"].is_string() && body["title"].is_string(),
            "{uri}"
        );
        assert!(body["detail"].is_string(), "{uri}");
    }
    // A cursor from one route is not one of the other.
    seed_events(&store).await;
    let page = ok(&store, "/api/v1/events?limit=1").await;
    let cursor = page["next"].as_str().unwrap();
    let (status, _, body) = get(&store, &format!("/api/v1/timeline?after={cursor}")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["field"], "after");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_readiness() {
    let (_db, store) = fresh_store().await;
    let (status, _, body) = get(&store, "/healthz").await;
    assert_eq!((status, body), (StatusCode::OK, Value::from("ok")));
    let (status, _, _) = get(&store, "/readyz").await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, _) = get(&store, "/api/v1/nothing").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A database behind this binary's migrations is not ready.
    let client = store.client().await.unwrap();
    let latest: i32 = client
        .query_one("SELECT max(version) FROM refinery_schema_history", &[])
        .await
        .unwrap()
        .get(0);
    client
        .execute(
            "DELETE FROM refinery_schema_history WHERE version = $1",
            &[&latest],
        )
        .await
        .unwrap();
    let (status, _, body) = get(&store, "/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("migrations not applied: [{latest}]")),
        "{body}"
    );
}

/// Kills the child process when dropped, so a failing test leaves none.
struct Reap(std::process::Child);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `GET path` over a real socket: the status line and the body.
fn http_get(addr: &str, path: &str) -> (String, String) {
    http_request(addr, "GET", path, None, None)
}

/// A request over a real socket, with a bearer token and a JSON body if
/// given: the status line and the body.
fn http_request(
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    json: Option<&str>,
) -> (String, String) {
    use std::io::{Read, Write};
    let mut auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    if let Some(body) = json {
        auth.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    let body = json.unwrap_or("");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{auth}\r\n{body}"
    )
    .unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response).unwrap();
    let status = response.lines().next().unwrap_or_default().to_owned();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// `sentinel-hub serve --http` serves the API next to sync and prints its
/// address as the second line of output.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_serves_the_api_next_to_sync() {
    use std::process::{Command, Stdio};

    use sentinel_certs::{Bundle, Password};
    use sentinel_hub::testing::TestDatabase;

    let db = TestDatabase::create().await.unwrap();
    let now = sentinel_certs::testing::now_ms();
    let year = 365 * 86_400_000;
    let ca = Ca::create("API CA", now - year, now + year, key(331)).unwrap();
    let hub = ca
        .enroll(
            DeviceRole::Hub,
            "hub-1",
            key(332),
            now - 1_000,
            now + year / 2,
            now,
        )
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("hub.bundle");
    let password = "correct horse battery staple";
    Bundle::export(&bundle, &hub, &Password::new(password).unwrap()).unwrap();
    let hub_cmd = || {
        let mut c = Command::new(env!("CARGO_BIN_EXE_sentinel-hub"));
        c.env("DATABASE_URL", db.connection_string())
            .env("SENTINEL_BUNDLE", &bundle)
            .env("SENTINEL_BUNDLE_PASSWORD", password)
            .env("SENTINEL_LISTEN", "127.0.0.1:0");
        c
    };
    // The first admin comes from the command line; a short password, a
    // bad role and a taken name are refused with exit code 2.
    let add = |name: &str, role: &str, pw: &str| {
        hub_cmd()
            .args(["user", "add", name, "--role", role])
            .env("SENTINEL_USER_PASSWORD", pw)
            .output()
            .unwrap()
    };
    let out = add("chief", "admin", "a long enough password");
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("account chief created"));
    for (name, role, pw, says) in [
        ("chief", "admin", "a long enough password", "exists already"),
        ("other", "admin", "short", "at least 12"),
        ("other", "king", "a long enough password", "--role"),
        ("bad name", "admin", "a long enough password", "name"),
    ] {
        let out = add(name, role, pw);
        assert_eq!(out.status.code(), Some(2), "{out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{err}");
    }
    let mut child = Reap(
        hub_cmd()
            .args(["serve", "--json", "--http", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // Where it listens, waited for within a bound: a hub that never says
    // fails the test instead of hanging it.
    let out = sentinel_http::testing::lines_within(child.0.stdout.take().unwrap());
    let bound = std::time::Duration::from_secs(120);
    let sync_line = out.next_line(bound, "the hub's sync address");
    let http_line = out.next_line(bound, "the hub's HTTP address");
    let sync: Value = serde_json::from_str(&sync_line).unwrap();
    assert!(sync["listening"].is_string(), "{sync_line}");
    let http: Value = serde_json::from_str(&http_line).unwrap();
    let addr = http["http"].as_str().unwrap().to_owned();
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");

    let (status, body) = http_get(&addr, "/readyz");
    assert!(status.contains(" 200 "), "{status}");
    assert_eq!(body, "ready");
    // Signed out: refused.
    let (status, body) = http_get(&addr, "/api/v1/timeline?limit=2");
    assert!(status.contains(" 401 "), "{status} {body}");
    let (status, body) = http_request(
        &addr,
        "POST",
        "/api/v1/login",
        None,
        Some(r#"{"name":"chief","password":"a long enough password"}"#),
    );
    assert!(status.contains(" 200 "), "{status} {body}");
    let login: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(login["role"], "admin");
    let token = login["token"].as_str().unwrap().to_owned();
    // The log holds one entry: the hub's grant of the admin role.
    let (status, body) = http_request(&addr, "GET", "/api/v1/timeline?limit=2", Some(&token), None);
    assert!(status.contains(" 200 "), "{status}");
    let page: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 1, "{page}");
    assert_eq!(page["items"][0]["kind"], "role_grant");
    assert_eq!(page["items"][0]["actor"], "sentinel-hub user add");
    let (status, body) = http_request(&addr, "GET", "/api/v1/events?bbox=1", Some(&token), None);
    assert!(status.contains(" 400 "), "{status}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["field"],
        "bbox"
    );
}
