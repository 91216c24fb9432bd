//! One HTTP contract (invariant 11): the node's and the hub's OpenAPI
//! documents, compared route by route.
//!
//! A route both servers serve must be the same operation on either — the
//! same parameters, request body, answers and schemas, every `$ref`
//! resolved — because it is one handler in `sentinel_http::api`. What only
//! one server serves is listed here by name, so a route added to one
//! server alone is a decision someone wrote down, not drift.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

/// Routes both servers serve: `(method, path)`.
const SHARED: &[(&str, &str)] = &[
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("post", "/api/v1/login"),
    ("post", "/api/v1/logout"),
    ("get", "/api/v1/session"),
    ("post", "/api/v1/password"),
    ("get", "/api/v1/events"),
    ("get", "/api/v1/events/clusters"),
    ("get", "/api/v1/analysis/duplicates"),
    ("get", "/api/v1/analysis/hotspots"),
    ("post", "/api/v1/analysis/summary"),
    ("get", "/api/v1/events/{id}"),
    ("get", "/api/v1/export.geojson"),
    ("get", "/api/v1/export.csv"),
    ("get", "/api/v1/export.kml"),
    ("get", "/api/v1/feed"),
    ("post", "/api/v1/sensors/entries"),
    ("get", "/api/v1/sensors/readings"),
    ("get", "/api/v1/sensors"),
    ("get", "/api/v1/sensors/alerts"),
];

/// Actions both servers offer with the same request and answer, each
/// server writing its own entry (the node signs as the device, the hub as
/// itself): same operation, different handlers.
const SAME_SHAPE: &[(&str, &str)] = &[
    ("post", "/api/v1/events/{id}/assign"),
    ("post", "/api/v1/events/{id}/close"),
    ("post", "/api/v1/events/{id}/reopen"),
    // The blob an event names, from each server's own blob folder.
    ("get", "/api/v1/media/{hash}"),
    // Each server's own document, in the same envelope.
    ("get", "/api/v1/openapi.json"),
];

/// Only the hub: the merged timeline, the fleet and its alerts, accounts,
/// revocation, webhooks, erasure.
const HUB_ONLY: &[(&str, &str)] = &[
    ("post", "/api/v1/events/{id}/redact"),
    ("get", "/api/v1/timeline"),
    ("get", "/api/v1/nodes"),
    ("get", "/api/v1/alerts"),
    ("get", "/api/v1/users"),
    ("post", "/api/v1/users"),
    ("post", "/api/v1/users/{name}/role"),
    ("post", "/api/v1/users/{name}/disable"),
    ("post", "/api/v1/users/{name}/enable"),
    ("post", "/api/v1/users/{name}/password"),
    ("post", "/api/v1/devices/{key}/revoke"),
    ("get", "/api/v1/webhooks"),
    ("post", "/api/v1/webhooks"),
    ("get", "/api/v1/webhooks/{id}"),
    ("patch", "/api/v1/webhooks/{id}"),
    ("delete", "/api/v1/webhooks/{id}"),
    ("get", "/api/v1/webhooks/{id}/deliveries"),
    ("post", "/api/v1/webhook-deliveries/{id}/replay"),
];

/// Only the node: reporting and working events on the device, uploading
/// media, the outbox.
const NODE_ONLY: &[(&str, &str)] = &[
    ("post", "/api/v1/events"),
    ("patch", "/api/v1/events/{id}"),
    ("post", "/api/v1/events/{id}/notes"),
    ("post", "/api/v1/events/{id}/accept"),
    ("post", "/api/v1/events/{id}/start"),
    ("post", "/api/v1/events/{id}/resolve"),
    ("post", "/api/v1/events/{id}/media"),
    ("get", "/api/v1/outbox"),
    ("get", "/api/v1/sync"),
    ("post", "/api/v1/sync"),
];

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

fn document(doc: &impl serde::Serialize) -> Value {
    serde_json::to_value(doc).expect("an OpenAPI document is JSON")
}

/// Every operation of a document, by `(method, path)`.
fn operations(doc: &Value) -> BTreeMap<(String, String), Value> {
    let mut out = BTreeMap::new();
    let paths = doc["paths"].as_object().expect("the document has paths");
    for (path, item) in paths {
        for method in METHODS {
            if let Some(op) = item.get(method) {
                out.insert((method.to_owned(), path.clone()), op.clone());
            }
        }
    }
    out
}

/// `value` with every `$ref` into `#/components/…` replaced by what it
/// names (recursively; a reference cycle is left as the reference after
/// one expansion).
fn resolve(value: &Value, doc: &Value, seen: &mut Vec<String>) -> Value {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get("$ref") {
                if let Some(pointer) = r.strip_prefix('#') {
                    if seen.contains(r) {
                        return value.clone();
                    }
                    let target = doc
                        .pointer(pointer)
                        .unwrap_or_else(|| panic!("dangling $ref {r}"));
                    seen.push(r.clone());
                    let out = resolve(target, doc, seen);
                    seen.pop();
                    return out;
                }
            }
            Value::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), resolve(v, doc, seen)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| resolve(v, doc, seen)).collect()),
        other => other.clone(),
    }
}

/// The first place two values differ, as a JSON pointer with both sides.
fn first_difference(a: &Value, b: &Value, at: &str) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter().find_map(|k| match (x.get(k), y.get(k)) {
                (Some(p), Some(q)) => first_difference(p, q, &format!("{at}/{k}")),
                (p, q) => Some(format!(
                    "{at}/{k}: node has {}, hub has {}",
                    p.map_or("nothing".into(), Value::to_string),
                    q.map_or("nothing".into(), Value::to_string)
                )),
            })
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (p, q))| first_difference(p, q, &format!("{at}/{i}"))),
        _ if a == b => None,
        _ => Some(format!("{at}: node has {a}, hub has {b}")),
    }
}

fn set(routes: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    routes
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect()
}

#[test]
fn routes_both_servers_serve_are_the_same_operation() {
    let node = document(sentinel_node::http::openapi::document());
    let hub = document(sentinel_hub::api::openapi::document());
    let node_ops = operations(&node);
    let hub_ops = operations(&hub);

    let both: BTreeSet<_> = node_ops
        .keys()
        .filter(|k| hub_ops.contains_key(*k))
        .cloned()
        .collect();
    let mut expected_both = set(SHARED);
    expected_both.extend(set(SAME_SHAPE));
    assert!(!both.is_empty(), "the documents share no route at all");
    assert_eq!(
        both, expected_both,
        "the routes both servers serve are not the ones listed as shared"
    );
    let node_alone: BTreeSet<_> = node_ops
        .keys()
        .filter(|k| !hub_ops.contains_key(*k))
        .cloned()
        .collect();
    let hub_alone: BTreeSet<_> = hub_ops
        .keys()
        .filter(|k| !node_ops.contains_key(*k))
        .cloned()
        .collect();
    assert_eq!(node_alone, set(NODE_ONLY), "node-only routes drifted");
    assert_eq!(hub_alone, set(HUB_ONLY), "hub-only routes drifted");

    let mut differences = Vec::new();
    for key in &both {
        let a = resolve(&node_ops[key], &node, &mut Vec::new());
        let b = resolve(&hub_ops[key], &hub, &mut Vec::new());
        // Descriptions are prose for people and may name the server;
        // everything a client relies on must be equal.
        let (a, b) = (strip_prose(a), strip_prose(b));
        if let Some(d) = first_difference(&a, &b, "") {
            differences.push(format!("{} {}: {d}", key.0.to_uppercase(), key.1));
        }
    }
    assert!(
        differences.is_empty(),
        "shared routes differ between node and hub:\n{}",
        differences.join("\n")
    );
}

/// `value` without `description`, `summary` and `example(s)` members.
fn strip_prose(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(k, _)| {
                    !matches!(
                        k.as_str(),
                        "description" | "summary" | "example" | "examples"
                    )
                })
                .map(|(k, v)| (k, strip_prose(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(strip_prose).collect()),
        other => other,
    }
}

#[test]
fn the_comparison_sees_a_difference() {
    let a = serde_json::json!({"parameters": [{"name": "limit", "schema": {"maximum": 500}}]});
    let b = serde_json::json!({"parameters": [{"name": "limit", "schema": {"maximum": 1000}}]});
    let d = first_difference(&a, &b, "").expect("a difference");
    assert!(d.contains("/parameters/0/schema/maximum"), "{d}");
    assert!(first_difference(&a, &a, "").is_none());
    let doc = serde_json::json!({"components": {"schemas": {"X": {"type": "integer"}}}});
    let r = serde_json::json!({"schema": {"$ref": "#/components/schemas/X"}});
    assert_eq!(
        resolve(&r, &doc, &mut Vec::new()),
        serde_json::json!({"schema": {"type": "integer"}})
    );
}
