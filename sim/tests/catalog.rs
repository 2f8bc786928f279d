//! SPEC 7.6 quick-sale catalog, and the catalog and operators versions every
//! configuration answer carries so terminals know when to refetch.

use kler_sim::client::SignedClient;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::*;

fn item(id: &str, name: &str, price: &str) -> Value {
    json!({"item_id": id, "name": name, "price": price})
}

async fn heartbeat_config(t: &SignedClient, tid: &str) -> Value {
    let hb = json!({"agent_version": "0.1.0", "state": "idle", "queue_depth": 0});
    let (s, v) = signed(
        t,
        Method::POST,
        &format!("/v1/terminals/{tid}/heartbeat"),
        Some(&hb),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["data"]["config"].clone()
}

/// The partner sets a session's catalog (validated, versioned); the
/// session's terminals read it signed; it survives a restart.
#[tokio::test]
async fn the_catalog_is_validated_versioned_and_served_to_its_terminals() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = fast_config();
    cfg.state_file = Some(dir.path().join("sim.db"));
    let e = env_with(cfg.clone()).await;
    let (sid, tids) = e.session(1, None).await;
    let (other_sid, other_tids) = e.session(1, None).await;
    let tid = tids[0].clone();
    let t = e.provision(&tid).await;
    let other = e.provision(&other_tids[0]).await;
    let path = format!("/v1/sessions/{sid}/catalog");
    let tpath = format!("/v1/terminals/{tid}/catalog");

    // Never set: version 0, no items, for the partner and the terminal.
    let (s, v) = e.org_json(Method::GET, &path, None).await;
    assert_eq!(
        (s, &v["data"]),
        (StatusCode::OK, &json!({"version": 0, "items": []}))
    );
    let (s, v) = signed(&t, Method::GET, &tpath, None).await;
    assert_eq!(
        (s, &v["data"]),
        (StatusCode::OK, &json!({"version": 0, "items": []}))
    );

    // Refused catalogs: 422 naming the field, as a refused config; nothing
    // stored.
    let bad = [
        (json!([item("a b", "Beer", "1.00")]), "items[0].item_id"),
        (
            json!([item("beer", "Beer", "1.00"), item("beer", "Stout", "2.00")]),
            "items[1].item_id",
        ),
        (json!([item("beer", "", "1.00")]), "items[0].name"),
        (json!([item("beer", "Beer\u{7}", "1.00")]), "items[0].name"),
        (
            json!([item("beer", &"B".repeat(41), "1.00")]),
            "items[0].name",
        ),
        (json!([item("beer", "Beer", "0.00")]), "items[0].price"),
        (
            json!([{"item_id": "beer", "name": "Beer", "price": "1.00", "category": "c".repeat(41)}]),
            "items[0].category",
        ),
        (
            Value::Array(
                (0..=200)
                    .map(|i| item(&format!("i{i}"), "Item", "1.00"))
                    .collect(),
            ),
            "items",
        ),
    ];
    for (items, field) in bad {
        let (s, v) = e
            .org_json(Method::PUT, &path, Some(json!({ "items": items })))
            .await;
        assert_eq!(
            (s, err_code(&v)),
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid_catalog"),
            "{v}"
        );
        let m = v["error"]["message"].as_str().unwrap();
        assert!(m.starts_with(&format!("{field}:")), "{field}: {m}");
    }
    let (s, v) = e.org_json(Method::PUT, &path, Some(json!({}))).await;
    assert_eq!(
        (s, err_code(&v)),
        (StatusCode::BAD_REQUEST, "missing_items")
    );
    let (_, v) = e.org_json(Method::GET, &path, None).await;
    assert_eq!(v["data"]["version"], 0, "nothing stored: {v}");

    // Stored: version 1, then one more per PUT.
    let items = json!([
        {"item_id": "beer-33", "name": "Star Lager 33cl", "price": "1500.00", "category": "Drinks"},
        item("water", "Water", "300.00")
    ]);
    let (s, v) = e
        .org_json(Method::PUT, &path, Some(json!({ "items": items })))
        .await;
    assert_eq!(
        (s, &v["data"]),
        (StatusCode::OK, &json!({"version": 1, "items": items})),
        "{v}"
    );
    let two = json!([
        item("water", "Water", "350.00"),
        item("beer-33", "Star", "1500.00")
    ]);
    let (_, v) = e
        .org_json(Method::PUT, &path, Some(json!({ "items": two })))
        .await;
    assert_eq!(v["data"]["version"], 2, "{v}");
    let (_, v) = e.org_json(Method::GET, &path, None).await;
    assert_eq!(v["data"], json!({"version": 2, "items": two}));
    // The terminal reads its session's, in catalog order; another
    // session's terminal sees its own (none), and not this one's.
    let (s, v) = signed(&t, Method::GET, &tpath, None).await;
    assert_eq!(
        (s, &v["data"]),
        (StatusCode::OK, &json!({"version": 2, "items": two}))
    );
    let (_, v) = signed(
        &other,
        Method::GET,
        &format!("/v1/terminals/{}/catalog", other_tids[0]),
        None,
    )
    .await;
    assert_eq!(v["data"]["version"], 0, "{v}");
    let (s, _) = signed(&other, Method::GET, &tpath, None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (_, v) = e
        .org_json(
            Method::GET,
            &format!("/v1/sessions/{other_sid}/catalog"),
            None,
        )
        .await;
    assert_eq!(v["data"]["version"], 0);
    // Unauthenticated: refused; unknown session: 404.
    let r = e
        .http
        .get(format!("{}{tpath}", e.sim.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = e
        .http
        .put(format!("{}{path}", e.sim.url()))
        .json(&json!({"items": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let (s, _) = e
        .org_json(
            Method::PUT,
            "/v1/sessions/nope/catalog",
            Some(json!({"items": []})),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Kept across a restart.
    e.sim.shutdown().await;
    let e = env_with(cfg).await;
    let t = SignedClient::new(e.http.clone(), e.sim.url(), t.creds.clone());
    let (_, v) = signed(&t, Method::GET, &tpath, None).await;
    assert_eq!(v["data"], json!({"version": 2, "items": two}));
    // An empty catalog is a catalog too (version 3).
    let (_, v) = e
        .org_json(Method::PUT, &path, Some(json!({"items": []})))
        .await;
    assert_eq!(v["data"], json!({"version": 3, "items": []}));
    e.sim.shutdown().await;
}

/// Every configuration answer (PUT config, the terminal's GET config and
/// the heartbeat's `config`) carries the catalog and operators versions,
/// also for a session whose config was never set, and across a restart.
#[tokio::test]
async fn config_answers_carry_the_catalog_and_operators_versions() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = fast_config();
    cfg.state_file = Some(dir.path().join("sim.db"));
    let e = env_with(cfg.clone()).await;
    let (sid, tids) = e.session(1, None).await;
    let (_, other_tids) = e.session(1, None).await;
    let tid = tids[0].clone();
    let t = e.provision(&tid).await;
    let other = e.provision(&other_tids[0]).await;
    let versions = |c: &Value| {
        (
            c["version"].as_u64(),
            c["catalog_version"].as_u64(),
            c["operators_version"].as_u64(),
        )
    };

    // Nothing yet: version 0 and neither version.
    let c = heartbeat_config(&t, &tid).await;
    assert_eq!(versions(&c), (Some(0), None, None), "{c}");
    assert!(c.get("catalog_version").is_none() && c.get("operators_version").is_none());

    // Operators and a catalog, never a config PUT: the heartbeat's config
    // (version 0) tells the terminal about both.
    let ops = format!("/v1/sessions/{sid}/operators");
    e.org_json(
        Method::POST,
        &ops,
        Some(json!({"name": "Ada", "pin": "1234"})),
    )
    .await;
    let c = heartbeat_config(&t, &tid).await;
    assert_eq!(versions(&c), (Some(0), None, Some(1)), "{c}");
    e.org_json(Method::POST, &ops, Some(json!({"name": "Bola"})))
        .await;
    let (s, v) = e
        .org_json(
            Method::PUT,
            &format!("/v1/sessions/{sid}/catalog"),
            Some(json!({"items": [item("beer", "Beer", "1500.00")]})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let c = heartbeat_config(&t, &tid).await;
    assert_eq!(versions(&c), (Some(0), Some(1), Some(2)), "{c}");
    let (_, v) = signed(
        &t,
        Method::GET,
        &format!("/v1/terminals/{tid}/config"),
        None,
    )
    .await;
    assert_eq!(versions(&v["data"]), (Some(0), Some(1), Some(2)), "{v}");
    // A refused operator changes nothing.
    let (s, _) = e
        .org_json(
            Method::POST,
            &ops,
            Some(json!({"name": "Chidi", "pin": "12"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);

    // The PUT config answer and the partner's GET carry them too; a
    // config PUT leaves them as they are.
    let path = format!("/v1/sessions/{sid}/config");
    let (s, v) = e
        .org_json(Method::PUT, &path, Some(json!({"language": "yo"})))
        .await;
    assert_eq!(
        (s, versions(&v["data"])),
        (StatusCode::OK, (Some(1), Some(1), Some(2))),
        "{v}"
    );
    let (_, v) = e.org_json(Method::GET, &path, None).await;
    assert_eq!(versions(&v["data"]), (Some(1), Some(1), Some(2)), "{v}");
    e.org_json(
        Method::PUT,
        &format!("/v1/sessions/{sid}/catalog"),
        Some(json!({"items": []})),
    )
    .await;
    let c = heartbeat_config(&t, &tid).await;
    assert_eq!(versions(&c), (Some(1), Some(2), Some(2)), "{c}");
    assert_eq!(c["language"], "yo");
    // Another session's terminal sees none of it.
    let c = heartbeat_config(&other, &other_tids[0]).await;
    assert_eq!(versions(&c), (Some(0), None, None), "{c}");

    // Kept across a restart; the next operator counts on from there.
    e.sim.shutdown().await;
    let e = env_with(cfg).await;
    let t = SignedClient::new(e.http.clone(), e.sim.url(), t.creds.clone());
    let c = heartbeat_config(&t, &tid).await;
    assert_eq!(versions(&c), (Some(1), Some(2), Some(2)), "{c}");
    e.org_json(Method::POST, &ops, Some(json!({"name": "Dayo"})))
        .await;
    let c = heartbeat_config(&t, &tid).await;
    assert_eq!(versions(&c), (Some(1), Some(2), Some(3)), "{c}");
    e.sim.shutdown().await;
}
