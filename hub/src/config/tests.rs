//! Tests of the configuration: defaults, the file, the environment over
//! the file, and each setting's refusals naming it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use std::collections::HashMap;

fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k| map.get(k).cloned()
}

const BASE: &[(&str, &str)] = &[
    (DATABASE_URL_ENV, "postgres://hub@localhost/sentinel"),
    (BUNDLE_ENV, "/etc/sentinel/hub.bundle"),
    (BUNDLE_PASSWORD_ENV, "secret"),
];

#[test]
fn defaults_apply_when_only_required_settings_are_given() {
    let c = HubConfig::load_with(None, env(BASE)).unwrap();
    assert_eq!(c.listen, DEFAULT_LISTEN.parse().unwrap());
    assert_eq!(c.freshness, FreshnessPolicy::Lenient);
    assert_eq!(c.max_sessions, DEFAULT_MAX_SESSIONS);
    assert_eq!(
        c.sync_limits,
        SyncLimits {
            max_sessions: DEFAULT_MAX_SESSIONS,
            ..SyncLimits::HUB
        }
    );
    assert_eq!(c.pool_size, DEFAULT_POOL_SIZE);
    assert_eq!(c.evidence_quota_mb, DEFAULT_EVIDENCE_QUOTA_MB);
    assert_eq!(c.ca, None);
    assert_eq!(c.media_dir, PathBuf::from(DEFAULT_MEDIA_DIR));
    assert_eq!(
        c.checkpoint_every,
        Some(std::time::Duration::from_secs(
            DEFAULT_CHECKPOINT_INTERVAL_S
        ))
    );
    let off = HubConfig::load_with(
        None,
        env(&[BASE, &[(CHECKPOINT_INTERVAL_ENV, "0")]].concat()),
    )
    .unwrap();
    assert_eq!(off.checkpoint_every, None);
    let bad = HubConfig::load_with(
        None,
        env(&[BASE, &[(CHECKPOINT_INTERVAL_ENV, "soon")]].concat()),
    )
    .err()
    .unwrap()
    .to_string();
    assert!(bad.contains(CHECKPOINT_INTERVAL_ENV), "{bad}");
}

#[test]
fn the_media_folder_defaults_to_beside_the_file_and_can_be_set() {
    let dir = tempfile::TempDir::new().unwrap();
    let path = dir.path().join("hub.toml");
    std::fs::write(&path, "pool_size = 2\n").unwrap();
    let c = HubConfig::load_with(Some(&path), env(BASE)).unwrap();
    assert_eq!(c.media_dir, dir.path().join("media"));

    std::fs::write(&path, "media_dir = \"/srv/sentinel/media\"\n").unwrap();
    let c = HubConfig::load_with(Some(&path), env(BASE)).unwrap();
    assert_eq!(c.media_dir, PathBuf::from("/srv/sentinel/media"));

    let mut with_env = BASE.to_vec();
    with_env.push((MEDIA_DIR_ENV, "/var/lib/sentinel/media"));
    let c = HubConfig::load_with(Some(&path), env(&with_env)).unwrap();
    assert_eq!(c.media_dir, PathBuf::from("/var/lib/sentinel/media"));

    std::fs::write(&path, "media_dir = \"\"\n").unwrap();
    let e = HubConfig::load_with(Some(&path), env(BASE))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains(MEDIA_DIR_ENV), "{e}");
}

#[test]
fn the_environment_overrides_the_file() {
    let dir = tempfile::TempDir::new().unwrap();
    let path = dir.path().join("hub.toml");
    std::fs::write(
        &path,
        "database_url = \"host=db dbname=x\"\nlisten = \"127.0.0.1:1\"\n\
         bundle = \"/b\"\nrevocation_max_age_ms = 5\nmax_sessions = 7\n\
         max_connections_per_address = 3\nmax_sessions_per_peer = 2\n\
         evidence_quota_mb = 3\n",
    )
    .unwrap();
    let c = HubConfig::load_with(
        Some(&path),
        env(&[
            (BUNDLE_PASSWORD_ENV, "pw"),
            (LISTEN_ENV, "127.0.0.1:2"),
            (REVOCATION_MAX_AGE_ENV, "60000"),
            (MAX_SESSIONS_PER_PEER_ENV, "5"),
        ]),
    )
    .unwrap();
    assert_eq!(c.listen, "127.0.0.1:2".parse().unwrap());
    assert_eq!(c.bundle, PathBuf::from("/b"));
    assert_eq!(c.database.get_dbname(), Some("x"));
    assert_eq!(c.freshness, FreshnessPolicy::MaxAge(60_000));
    assert_eq!(c.max_sessions, 7);
    assert_eq!(
        (
            c.sync_limits.max_sessions,
            c.sync_limits.max_per_address,
            c.sync_limits.max_per_peer
        ),
        (7, 3, 5)
    );
    assert_eq!(c.evidence_quota_mb, 3, "from the file");
    let c = HubConfig::load_with(
        Some(&path),
        env(&[(BUNDLE_PASSWORD_ENV, "pw"), (EVIDENCE_QUOTA_ENV, "9")]),
    )
    .unwrap();
    assert_eq!(c.evidence_quota_mb, 9, "from the environment");
}

#[test]
fn missing_and_invalid_settings_are_named() {
    let e = HubConfig::load_with(None, env(&BASE[1..]))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains(DATABASE_URL_ENV), "{e}");
    let e = HubConfig::load_with(None, env(&BASE[..2]))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains(BUNDLE_PASSWORD_ENV), "{e}");
    let mut bad = BASE.to_vec();
    bad.push((LISTEN_ENV, "nowhere"));
    let e = HubConfig::load_with(None, env(&bad))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains(LISTEN_ENV) && e.contains("nowhere"), "{e}");
    for (setting, value) in [
        (MAX_SESSIONS_PER_PEER_ENV, "0"),
        (MAX_CONNECTIONS_PER_ADDRESS_ENV, "many"),
    ] {
        let mut bad = BASE.to_vec();
        bad.push((setting, value));
        let e = HubConfig::load_with(None, env(&bad))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains(setting), "{e}");
    }
    let mut bad = BASE.to_vec();
    bad.push((REVOCATION_MAX_AGE_ENV, "soon"));
    let e = HubConfig::load_with(None, env(&bad))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains(REVOCATION_MAX_AGE_ENV), "{e}");
}

#[test]
fn operations_settings_default_and_parse() {
    let c = HubConfig::load_with(None, env(BASE)).unwrap();
    assert_eq!(c.log_format, LogFormat::Text);
    assert_eq!(
        c.rate_limit,
        Limits {
            per_s: DEFAULT_RATE_LIMIT_PER_S,
            burst: DEFAULT_RATE_LIMIT_BURST
        }
    );
    assert!(!c.rate_limit.is_off());
    assert!(c.cors_origins.is_empty(), "no CORS unless configured");

    let dir = tempfile::TempDir::new().unwrap();
    let path = dir.path().join("hub.toml");
    std::fs::write(
        &path,
        "log_format = \"json\"\nrate_limit_per_s = 0\nrate_limit_burst = 5\n\
         cors_origins = [\"https://admin.example.org\", \"http://localhost:5173/\"]\n",
    )
    .unwrap();
    let c = HubConfig::load_with(Some(&path), env(BASE)).unwrap();
    assert_eq!(c.log_format, LogFormat::Json);
    assert_eq!(c.rate_limit, Limits { per_s: 0, burst: 5 });
    assert!(c.rate_limit.is_off(), "0 turns it off");
    assert_eq!(
        c.cors_origins,
        ["https://admin.example.org", "http://localhost:5173"]
    );

    let c = HubConfig::load_with(
        Some(&path),
        env(&[
            BASE,
            &[
                (LOG_FORMAT_ENV, "TEXT"),
                (RATE_LIMIT_PER_S_ENV, "3"),
                (RATE_LIMIT_BURST_ENV, "7"),
                (
                    CORS_ORIGINS_ENV,
                    " https://a.example , ,https://b.example:8443",
                ),
            ],
        ]
        .concat()),
    )
    .unwrap();
    assert_eq!(c.log_format, LogFormat::Text);
    assert_eq!(c.rate_limit, Limits { per_s: 3, burst: 7 });
    assert_eq!(
        c.cors_origins,
        ["https://a.example", "https://b.example:8443"]
    );
}

#[test]
fn bad_operations_settings_are_named() {
    for (setting, value) in [
        (LOG_FORMAT_ENV, "xml"),
        (RATE_LIMIT_PER_S_ENV, "-1"),
        (RATE_LIMIT_PER_S_ENV, "fast"),
        (RATE_LIMIT_BURST_ENV, "1.5"),
        (CORS_ORIGINS_ENV, "*"),
        (CORS_ORIGINS_ENV, "https://ok.example,admin.example.org"),
        (CORS_ORIGINS_ENV, "https://example.org/app"),
    ] {
        let e = HubConfig::load_with(None, env(&[BASE, &[(setting, value)]].concat()))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains(setting), "{setting}={value}: {e}");
    }
    let e = HubConfig::load_with(
        None,
        env(&[
            BASE,
            &[(CORS_ORIGINS_ENV, "https://ok.example,ftp://x.example")],
        ]
        .concat()),
    )
    .err()
    .unwrap()
    .to_string();
    assert!(
        e.contains("ftp://x.example"),
        "the bad origin is named: {e}"
    );

    let dir = tempfile::TempDir::new().unwrap();
    let path = dir.path().join("hub.toml");
    std::fs::write(&path, "cors_origins = \"https://a.example\"\n").unwrap();
    let e = HubConfig::load_with(Some(&path), env(BASE))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("cors_origins"), "{e}");
    std::fs::write(&path, "log_format = \"yaml\"\n").unwrap();
    let e = HubConfig::load_with(Some(&path), env(BASE))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains(LOG_FORMAT_ENV) && e.contains("yaml"), "{e}");
}

#[test]
fn https_needs_both_files_or_neither() {
    let c = HubConfig::load_with(None, env(BASE)).unwrap();
    assert_eq!(c.https, None, "plain HTTP unless configured");

    let c = HubConfig::load_with(
        None,
        env(&[
            BASE,
            &[
                (HTTPS_CERT_ENV, "/tls/hub.pem"),
                (HTTPS_KEY_ENV, "/tls/hub.key"),
            ],
        ]
        .concat()),
    )
    .unwrap();
    assert_eq!(
        c.https,
        Some(HttpsFiles {
            cert: PathBuf::from("/tls/hub.pem"),
            key: PathBuf::from("/tls/hub.key"),
        })
    );

    // One alone names the other, as the operator would set it.
    for (given, missing) in [
        (HTTPS_CERT_ENV, HTTPS_KEY_ENV),
        (HTTPS_KEY_ENV, HTTPS_CERT_ENV),
    ] {
        let e = HubConfig::load_with(None, env(&[BASE, &[(given, "/tls/x.pem")]].concat()))
            .err()
            .unwrap();
        assert!(
            matches!(&e, ConfigError::Incomplete { given: g, missing: m, .. }
                if g == given && m == missing),
            "{e}"
        );
        let text = e.to_string();
        assert!(text.contains(missing), "{text}");
    }

    // The file, the environment, and the two mixed.
    let dir = tempfile::TempDir::new().unwrap();
    let path = dir.path().join("hub.toml");
    std::fs::write(
        &path,
        "https_cert = \"/etc/sentinel/https.pem\"\nhttps_key = \"/etc/sentinel/https.key\"\n",
    )
    .unwrap();
    let c = HubConfig::load_with(Some(&path), env(BASE)).unwrap();
    let files = c.https.unwrap();
    assert_eq!(files.cert, PathBuf::from("/etc/sentinel/https.pem"));
    assert_eq!(files.key, PathBuf::from("/etc/sentinel/https.key"));
    let c = HubConfig::load_with(
        Some(&path),
        env(&[BASE, &[(HTTPS_KEY_ENV, "/run/keys/https.key")]].concat()),
    )
    .unwrap();
    let files = c.https.unwrap();
    assert_eq!(files.cert, PathBuf::from("/etc/sentinel/https.pem"));
    assert_eq!(files.key, PathBuf::from("/run/keys/https.key"));

    std::fs::write(&path, "https_key = \"/etc/sentinel/https.key\"\n").unwrap();
    let e = HubConfig::load_with(Some(&path), env(BASE))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains(HTTPS_CERT_ENV), "{e}");
    std::fs::write(&path, "https_cert = \"\"\nhttps_key = \"k\"\n").unwrap();
    let e = HubConfig::load_with(Some(&path), env(BASE))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains(HTTPS_CERT_ENV), "{e}");
}

#[test]
fn unknown_keys_in_the_file_are_refused() {
    let dir = tempfile::TempDir::new().unwrap();
    let path = dir.path().join("hub.toml");
    std::fs::write(&path, "lisen = \"127.0.0.1:1\"\n").unwrap();
    let e = HubConfig::load_with(Some(&path), env(BASE))
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("lisen"), "{e}");
}

#[test]
fn the_rules_file_is_optional_set_by_file_or_environment_and_checked() {
    let c = HubConfig::load_with(None, env(BASE)).unwrap();
    assert_eq!(c.rules_file, None);
    let dir = tempfile::TempDir::new().unwrap();
    let path = dir.path().join("hub.toml");
    std::fs::write(&path, "rules_file = \"rules.toml\"\n").unwrap();
    let c = HubConfig::load_with(Some(&path), env(BASE)).unwrap();
    assert_eq!(c.rules_file, Some(PathBuf::from("rules.toml")));
    let rules = dir.path().join("sensor-rules.toml");
    let rules_text = rules.to_str().unwrap().to_owned();
    let c = HubConfig::load_with(
        Some(&path),
        env(&[BASE, &[(RULES_FILE_ENV, rules_text.as_str())]].concat()),
    )
    .unwrap();
    assert_eq!(c.rules_file.as_deref(), Some(rules.as_path()));

    // Read and checked at start: a missing or bad file is named.
    let e = load_rules(&rules).err().unwrap().to_string();
    assert!(e.contains("sensor-rules.toml"), "{e}");
    std::fs::write(
        &rules,
        "[[rule]]\nid = \"high\"\nseverity = 4\nkind = \"water_gauge\"\n\
         value = \"level\"\ncomparison = \">\"\ntreshold = 3.5\n",
    )
    .unwrap();
    let e = load_rules(&rules).err().unwrap().to_string();
    assert!(
        e.contains("sensor-rules.toml") && e.contains("treshold"),
        "{e}"
    );
    std::fs::write(
        &rules,
        "window_s = 60\n[[rule]]\nid = \"high\"\nseverity = 4\nkind = \"water_gauge\"\n\
         value = \"level\"\ncomparison = \">\"\nthreshold = 3.5\n",
    )
    .unwrap();
    let config = load_rules(&rules).unwrap();
    assert_eq!(config.window_ms, 60_000);
    assert_eq!(config.rules.rules().count(), 1);
}

#[test]
fn front_door_settings_default_parse_and_are_named_when_bad() {
    use http::*;
    use sentinel_http::limit::LoginLimits;
    let c = HubConfig::load_with(None, env(BASE)).unwrap();
    assert_eq!(c.http.serve, sentinel_http::serve::ServeOptions::default());
    assert_eq!(
        c.http.login_limit,
        LoginLimits {
            per_min: DEFAULT_LOGIN_RATE_LIMIT_PER_MIN,
            burst: DEFAULT_LOGIN_RATE_LIMIT_BURST
        }
    );
    assert!(c.http.trusted_proxies.is_empty());
    assert_eq!(
        c.http.feed_max_subscribers,
        sentinel_http::api::feed::MAX_SUBSCRIBERS
    );

    // From the file, the environment winning.
    let dir = tempfile::TempDir::new().unwrap();
    let path = dir.path().join("hub.toml");
    std::fs::write(
        &path,
        "http_max_connections = 7\nhttp_header_timeout_s = 5\nhttp_body_timeout_s = 6\n\
         http_body_deadline_s = 60\nhttp_idle_timeout_s = 9\nlogin_rate_limit_per_min = 3\n\
         login_rate_limit_burst = 4\ntrusted_proxies = [\"10.0.0.0/8\"]\n\
         feed_max_subscribers = 11\n",
    )
    .unwrap();
    let c = HubConfig::load_with(
        Some(&path),
        env(&[
            BASE,
            &[
                (HTTP_IDLE_TIMEOUT_ENV, "12"),
                (TRUSTED_PROXIES_ENV, "127.0.0.1, ::1"),
            ],
        ]
        .concat()),
    )
    .unwrap();
    let s = c.http.serve;
    assert_eq!(s.max_connections, 7);
    assert_eq!(s.header_timeout, std::time::Duration::from_secs(5));
    assert_eq!(s.body_timeout, std::time::Duration::from_secs(6));
    assert_eq!(s.body_deadline, std::time::Duration::from_secs(60));
    assert_eq!(s.idle_timeout, std::time::Duration::from_secs(12));
    assert_eq!(
        c.http.login_limit,
        LoginLimits {
            per_min: 3,
            burst: 4
        }
    );
    assert!(c.http.trusted_proxies.trusts("::1".parse().unwrap()));
    assert!(!c.http.trusted_proxies.trusts("10.1.1.1".parse().unwrap()));
    assert_eq!(c.http.feed_max_subscribers, 11);

    for (setting, value) in [
        (HTTP_MAX_CONNECTIONS_ENV, "0"),
        (HTTP_HEADER_TIMEOUT_ENV, "0"),
        (HTTP_BODY_DEADLINE_ENV, "soon"),
        (FEED_MAX_SUBSCRIBERS_ENV, "0"),
        (LOGIN_RATE_LIMIT_PER_MIN_ENV, "-1"),
        (TRUSTED_PROXIES_ENV, "10.0.0.1,proxy.example"),
    ] {
        let e = HubConfig::load_with(None, env(&[BASE, &[(setting, value)]].concat()))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains(setting), "{setting}: {e}");
    }
}

#[test]
fn map_tile_sources_come_from_file_or_environment_and_are_checked() {
    use map::*;
    let c = HubConfig::load_with(None, env(BASE)).unwrap();
    assert_eq!(c.map, MapSettings::default());

    let dir = tempfile::TempDir::new().unwrap();
    let path = dir.path().join("hub.toml");
    std::fs::write(
        &path,
        "tiles = \"region.mbtiles\"\ntile_url = \"https://t.example.org/{z}/{x}/{y}.png\"\n\
         tile_attribution = \"Survey office\"\n",
    )
    .unwrap();
    let c = HubConfig::load_with(Some(&path), env(BASE)).unwrap();
    assert_eq!(c.map.tiles, Some(PathBuf::from("region.mbtiles")));
    assert_eq!(
        c.map.tile_url.as_deref(),
        Some("https://t.example.org/{z}/{x}/{y}.png")
    );
    assert_eq!(c.map.attribution.as_deref(), Some("Survey office"));
    let over = [
        (TILES_ENV, "/srv/maps/valley.mbtiles"),
        (TILE_URL_ENV, "http://10.0.0.2:8080/{z}/{x}/{y}"),
        (TILE_ATTRIBUTION_ENV, "Valley survey"),
    ];
    let c = HubConfig::load_with(Some(&path), env(&[BASE, &over].concat())).unwrap();
    assert_eq!(c.map.tiles, Some(PathBuf::from("/srv/maps/valley.mbtiles")));
    assert_eq!(
        c.map.tile_url.as_deref(),
        Some("http://10.0.0.2:8080/{z}/{x}/{y}")
    );
    assert_eq!(c.map.attribution.as_deref(), Some("Valley survey"));

    // An online template must be http(s) and name the tile.
    for bad in [
        "file:///srv/{z}/{x}/{y}.png",
        "javascript:alert(1)",
        "https://t.example.org/tile.png",
    ] {
        let e = HubConfig::load_with(None, env(&[BASE, &[(TILE_URL_ENV, bad)]].concat()))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains(TILE_URL_ENV), "{bad}: {e}");
    }

    // The file is opened when the hub starts: one that is not MBTiles is
    // refused, by name.
    let not_tiles = dir.path().join("notes.mbtiles");
    std::fs::write(&not_tiles, "not a database, only words").unwrap();
    let settings = MapSettings {
        tiles: Some(not_tiles),
        ..MapSettings::default()
    };
    let base = sentinel_ui::UiConfig::new(sentinel_ui::ServerKind::Hub, "hub");
    let e = settings.ui_config(base.clone()).unwrap_err().to_string();
    assert!(e.contains("notes.mbtiles"), "{e}");
    let settings = MapSettings {
        tile_url: c.map.tile_url.clone(),
        attribution: Some("Valley survey".into()),
        ..MapSettings::default()
    };
    let ui = settings.ui_config(base).unwrap();
    assert!(!ui.tiles);
    assert!(ui
        .csp()
        .contains("img-src 'self' data: blob: http://10.0.0.2:8080;"));
    assert_eq!(ui.attribution.as_deref(), Some("Valley survey"));
}
