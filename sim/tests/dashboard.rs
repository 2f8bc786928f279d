//! The dashboard (SPEC 8.4): its page and assets, the session and payment
//! lists, and the event stream that says when something changed.

use futures_util::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn the_page_and_its_assets_are_served_without_a_key_and_only_from_the_sim() {
    let e = env().await;
    for (path, ty) in [
        ("/dashboard", "text/html"),
        ("/dashboard/dashboard.js", "text/javascript"),
        ("/dashboard/dashboard.css", "text/css"),
    ] {
        let r = e
            .http
            .get(format!("{}{path}", e.sim.url()))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        let h = r.headers();
        assert!(
            h["content-type"].to_str().unwrap().starts_with(ty),
            "{path}"
        );
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
            "{csp}"
        );
        assert_eq!(h["referrer-policy"], "no-referrer");
    }
    let page = e
        .http
        .get(format!("{}/dashboard", e.sim.url()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!page.contains(ORG), "the page never holds the key");
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "no external asset"
    );
}

#[tokio::test]
async fn sessions_and_payments_are_listed_newest_first_with_the_org_key() {
    let e = env().await;
    let (s1, _) = e.session(1, None).await;
    let (s2, tids) = e.session(1, None).await;
    let (s, v) = e.org_json(Method::GET, "/v1/sessions", None).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let ids: Vec<&str> = v["data"]["content"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["session_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2, "{v}");
    assert!(
        ids.contains(&s1.as_str()) && ids.contains(&s2.as_str()),
        "{v}"
    );
    assert_eq!(v["data"]["totalElements"], json!(2));

    let r = e
        .http
        .get(format!("{}/v1/sessions", e.sim.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = e
        .http
        .get(format!("{}/v1/payments", e.sim.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // A payment on an online terminal of s2 shows in s2's list only.
    let t = e.provision(&tids[0]).await;
    let hb = json!({"agent_version": "t", "state": "idle", "queue_depth": 0});
    let path = format!("/v1/terminals/{}/heartbeat", tids[0]);
    let (s, v) = signed(&t, Method::POST, &path, Some(&hb)).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let r = e
        .org
        .request(Method::POST, "/v1/payments")
        .header("Idempotency-Key", "dash-1")
        .json(&json!({"terminal_id": tids[0], "amount": "2500.00", "currency": "NGN", "reference": "D-1"}))
        .send()
        .await
        .unwrap();
    let (s, v) = json_of(r).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let pid = v["data"]["payment_id"].clone();
    let (_, v) = e
        .org_json(Method::GET, &format!("/v1/payments?session_id={s2}"), None)
        .await;
    assert_eq!(v["data"]["content"][0]["payment_id"], pid, "{v}");
    assert_eq!(v["data"]["totalElements"], json!(1));
    let (_, v) = e
        .org_json(Method::GET, &format!("/v1/payments?session_id={s1}"), None)
        .await;
    assert_eq!(v["data"]["totalElements"], json!(0), "{v}");
    let (s, v) = e
        .org_json(Method::GET, "/v1/payments?session_id=nope", None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
}

#[tokio::test]
async fn the_event_stream_needs_the_key_and_says_changed_at_once_and_on_each_change() {
    let e = env().await;
    let url = format!("{}/v1/dashboard/events", e.sim.url());
    let r = e.http.get(&url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = e
        .http
        .get(&url)
        .header("x-api-key", "wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    let r = e
        .http
        .get(&url)
        .header("x-api-key", ORG)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let mut body = r.bytes_stream();
    let mut seen = String::new();
    assert!(
        next_changed(&mut body, &mut seen)
            .await
            .starts_with("event: changed\ndata: ")
    );
    e.session(1, None).await;
    assert!(
        next_changed(&mut body, &mut seen)
            .await
            .starts_with("event: changed\ndata: ")
    );
}

/// The next `changed` event of the stream (pings skipped), within the wait.
async fn next_changed<S>(body: &mut S, seen: &mut String) -> String
where
    S: futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Unpin,
{
    tokio::time::timeout(WAIT, async {
        loop {
            if let Some(i) = seen.find("\n\n") {
                let block: String = seen.drain(..i + 2).collect();
                if block.starts_with("event: changed") {
                    return block;
                }
                continue;
            }
            let chunk = body.next().await.unwrap().unwrap();
            seen.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    })
    .await
    .expect("an event within the wait")
}
