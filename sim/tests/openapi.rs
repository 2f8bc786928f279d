//! `GET /openapi.json`: OpenAPI 3.1, and exactly the routes the router
//! serves (a route added without its operation fails here).

use std::collections::BTreeSet;

use reqwest::StatusCode;
use serde_json::Value;

use crate::common::*;

#[tokio::test]
async fn the_document_is_openapi_3_1_and_lists_every_route() {
    let e = env().await;
    let r = e
        .http
        .get(format!("{}/openapi.json", e.sim.url()))
        .send()
        .await
        .unwrap();
    let (status, doc) = json_of(r).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1."),
        "{}",
        doc["openapi"]
    );

    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in ["get", "put", "post", "delete", "patch", "head", "options"] {
            if item.get(method).is_some() {
                documented.insert((method.to_owned(), path.clone()));
            }
        }
    }
    let served: BTreeSet<(String, String)> = kler_sim::ROUTES
        .iter()
        .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
        .collect();
    assert_eq!(served.len(), kler_sim::ROUTES.len(), "a route twice");
    let missing: Vec<_> = served.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&served).collect();
    assert!(missing.is_empty(), "served but not documented: {missing:?}");
    assert!(extra.is_empty(), "documented but not served: {extra:?}");

    // Every operation says what its errors look like, and the stream is
    // marked as one.
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let responses = op["responses"].as_object().unwrap();
            assert!(!responses.is_empty(), "{method} {path}");
        }
    }
    let stream = &doc["paths"]["/v1/terminals/{tid}/commands/stream"]["get"];
    assert_eq!(stream["x-stream"], Value::Bool(true));
    assert!(stream["responses"]["200"]["content"]["text/event-stream"].is_object());
    assert!(doc["components"]["securitySchemes"]["org_key"].is_object());
    assert!(doc["components"]["securitySchemes"]["sig_signature"].is_object());
}
