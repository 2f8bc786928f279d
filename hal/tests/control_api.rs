//! The virtual device's control API over real HTTP on loopback.

use std::net::SocketAddr;
use std::time::Duration;

use embedded_graphics::prelude::Size;
use hal::virtual_device::VirtualParts;
use hal::{
    Button, CardBrand, CardReader, HalError, Indicator, Input, ReadPurpose, ReadRequest,
    ReaderError, Signal, VirtualDevice, serve_control,
};
use proto::{Currency, Money};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::common::show;

struct Harness {
    device: VirtualDevice,
    parts: Option<VirtualParts>,
    base: String,
    http: reqwest::Client,
    _shutdown: tokio_util::sync::DropGuard,
}

async fn start() -> Harness {
    let (device, parts) =
        VirtualDevice::with_state(Size::new(240, 320), &ui::ScreenState::booting());
    let shutdown = CancellationToken::new();
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let bound = serve_control(addr, device.clone(), shutdown.clone())
        .await
        .unwrap();
    assert_ne!(bound.port(), 0);
    Harness {
        device,
        parts: Some(parts),
        base: format!("http://{bound}"),
        http: reqwest::Client::new(),
        _shutdown: shutdown.drop_guard(),
    }
}

impl Harness {
    async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
    }

    async fn post(&self, path: &str, body: &str) -> (StatusCode, Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        let status = r.status();
        (status, r.json().await.unwrap())
    }
}

fn request() -> ReadRequest {
    ReadRequest {
        amount: Money::parse("2000.00").unwrap(),
        currency: Currency::Ngn,
        purpose: ReadPurpose::Sale,
        timeout: Duration::from_secs(60),
    }
}

fn error_code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("<none>")
}

#[tokio::test]
async fn refuses_to_bind_a_non_loopback_address() {
    let (device, _parts) = VirtualDevice::new(Size::new(240, 320));
    for addr in ["0.0.0.0:0", "192.0.2.10:7070", "[::]:0"] {
        let addr: SocketAddr = addr.parse().unwrap();
        let err = serve_control(addr, device.clone(), CancellationToken::new())
            .await
            .unwrap_err();
        assert!(
            matches!(err, HalError::NonLoopbackControlAddr(a) if a == addr),
            "{err}"
        );
    }
}

#[tokio::test]
async fn page_shows_the_screen_and_every_button() {
    let h = start().await;
    let r = h.get("/").await;
    assert_eq!(r.status(), StatusCode::OK);
    let ctype = r.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(ctype.starts_with("text/html"), "{ctype}");
    let html = r.text().await.unwrap();
    assert!(html.contains("/screen.png"));
    for card in hal::TestCard::ALL {
        assert!(
            html.contains(&format!("\"{}\"", card.name())),
            "{}",
            card.name()
        );
    }
    for button in [
        "cancel", "ok", "back", "menu", "up", "down", "0", "1", "2", "3", "4", "5", "6", "7", "8",
        "9",
    ] {
        assert!(
            html.contains(&format!("data-button=\"{button}\"")),
            "{button}"
        );
    }
}

#[tokio::test]
async fn screen_json_and_png_follow_the_display() {
    let mut h = start().await;
    let state: Value = h.get("/screen").await.json().await.unwrap();
    assert_eq!(state["screen"], "booting");
    assert_eq!(state["amount"], Value::Null);
    assert_eq!(state["frame"], 0);

    let mut parts = h.parts.take().unwrap();
    let (_, screen) = ui::samples::sample_screens()
        .into_iter()
        .find(|(name, _)| *name == "tap_card")
        .unwrap();
    show(&mut parts.display, &screen).await.unwrap();
    parts.indicator.signal(Signal::CardRead).await.unwrap();

    let text = h.get("/screen").await.text().await.unwrap();
    let state: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(state["screen"], "tap_card");
    assert_eq!(state["amount"], "2000.00");
    assert_eq!(state["currency"], "NGN");
    assert_eq!(state["message"], Value::Null);
    assert_eq!(state["offline"], false);
    assert_eq!(state["queued"], 0);
    assert_eq!(state["frame"], 1);
    assert_eq!(state["last_indicator"], "card_read");
    assert_eq!(state["indicator"]["count"], 1);
    // Byte for byte the answer of when hal held a `ui::ScreenState` itself.
    #[derive(serde::Serialize)]
    struct Typed {
        #[serde(flatten)]
        state: ui::ScreenState,
        frame: u64,
        version: u64,
        reader_waiting: bool,
        last_indicator: Option<Signal>,
        indicator: hal::virtual_device::IndicatorLog,
    }
    let typed = Typed {
        state: screen.state(),
        frame: 1,
        version: state["version"].as_u64().unwrap(),
        reader_waiting: false,
        last_indicator: Some(Signal::CardRead),
        indicator: h.device.indicator(),
    };
    assert_eq!(text, serde_json::to_string(&typed).unwrap());

    let r = h.get("/screen.png").await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "image/png");
    let png = r.bytes().await.unwrap();
    let (w, hgt, rgb) = hal::decode_png_rgb888(&png).unwrap();
    assert_eq!((w, hgt), (240, 320));
    let mut expected = hal::Framebuffer::new(Size::new(240, 320));
    ui::render(&screen, &mut expected).unwrap();
    assert_eq!(rgb, expected.to_rgb888());
}

#[tokio::test]
async fn tap_delivers_the_card_to_the_waiting_read() {
    let mut h = start().await;
    let mut reader = h.parts.take().unwrap().reader;
    let read =
        tokio::spawn(async move { reader.read_card(request(), CancellationToken::new()).await });
    h.device.reader_ready().await;
    let state: Value = h.get("/screen").await.json().await.unwrap();
    assert_eq!(state["reader_waiting"], true);

    let (status, body) = h.post("/tap", r#"{"card":"mc_ok"}"#).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["card"], "mc_ok");
    let card = read.await.unwrap().unwrap();
    assert_eq!(
        (card.brand(), card.last4()),
        (CardBrand::Mastercard, "4444")
    );
    // The PAN is not echoed back.
    assert!(!body.to_string().contains("5555555555554444"));
}

#[tokio::test]
async fn tap_misread_gives_the_read_an_error() {
    let mut h = start().await;
    let mut reader = h.parts.take().unwrap().reader;
    let read =
        tokio::spawn(async move { reader.read_card(request(), CancellationToken::new()).await });
    h.device.reader_ready().await;
    let (status, _) = h.post("/tap", r#"{"card":"misread"}"#).await;
    assert_eq!(status, StatusCode::OK);
    assert!(matches!(read.await.unwrap(), Err(ReaderError::Misread(_))));
}

#[tokio::test]
async fn tap_errors() {
    let h = start().await;
    let (status, body) = h.post("/tap", r#"{"card":"visa_ok"}"#).await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::CONFLICT, "reader_not_waiting")
    );

    let (status, body) = h.post("/tap", r#"{"card":"amex_gold"}"#).await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::UNPROCESSABLE_ENTITY, "unknown_card")
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("visa_ok")
    );

    for bad in [
        "",
        "not json",
        "{\"card\":",
        "{\"kard\":\"visa_ok\"}",
        "{\"card\":5}",
        "[]",
    ] {
        let (status, body) = h.post("/tap", bad).await;
        assert_eq!(
            (status, error_code(&body)),
            (StatusCode::BAD_REQUEST, "bad_json"),
            "{bad}"
        );
    }

    let huge = format!("{{\"card\":\"{}\"}}", "x".repeat(10_000));
    let (status, body) = h.post("/tap", &huge).await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large")
    );
}

#[tokio::test]
async fn press_delivers_buttons() {
    let mut h = start().await;
    let mut input = h.parts.take().unwrap().input;
    for b in ["ok", "cancel", "back", "menu", "up", "down", "0", "9"] {
        let (status, body) = h.post("/press", &json!({ "button": b }).to_string()).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(
            input.next_button().await.unwrap(),
            Button::parse(b).unwrap()
        );
    }
    for b in ["OK", "10", "enter", "", "Menu", "left"] {
        let (status, body) = h.post("/press", &json!({ "button": b }).to_string()).await;
        assert_eq!(
            (status, error_code(&body)),
            (StatusCode::UNPROCESSABLE_ENTITY, "unknown_button")
        );
    }
    let (_, body) = h.post("/press", r#"{"button":"left"}"#).await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("expected cancel, ok, back, menu, up, down or a digit 0-9"),
        "{body}"
    );
    let (status, body) = h.post("/press", "{button: ok}").await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::BAD_REQUEST, "bad_json")
    );
}

#[tokio::test]
async fn press_beyond_the_queue_is_refused() {
    let h = start().await;
    let mut last = (StatusCode::OK, Value::Null);
    for _ in 0..64 {
        last = h.post("/press", r#"{"button":"ok"}"#).await;
        if last.0 != StatusCode::OK {
            break;
        }
    }
    assert_eq!(
        (last.0, error_code(&last.1)),
        (StatusCode::SERVICE_UNAVAILABLE, "input_busy")
    );
}

#[tokio::test]
async fn foreign_origins_and_hosts_are_forbidden() {
    let h = start().await;
    let r = h
        .http
        .post(format!("{}/press", h.base))
        .header("origin", "http://evil.example")
        .body(r#"{"button":"ok"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let body: Value = r.json().await.unwrap();
    assert_eq!(error_code(&body), "forbidden_origin");

    // DNS rebinding: a foreign name resolving to 127.0.0.1.
    for host in [
        "evil.example",
        "evil.example:7070",
        "localhost.evil.example",
    ] {
        let r = h
            .http
            .get(format!("{}/screen", h.base))
            .header("host", host)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{host}");
    }

    // The page's own origin works.
    let r = h
        .http
        .post(format!("{}/press", h.base))
        .header("origin", h.base.clone())
        .header("content-type", "application/json")
        .body(r#"{"button":"ok"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = h
        .http
        .get(format!("{}/screen", h.base))
        .header("host", "localhost")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

/// Another loopback service's page (another port, `localhost` for the
/// numeric address, https) is not the control API's origin.
#[tokio::test]
async fn loopback_origins_other_than_the_control_address_are_forbidden() {
    let h = start().await;
    let port = h.base.rsplit(':').next().unwrap().parse::<u16>().unwrap();
    let other = port.wrapping_add(1);
    for origin in [
        format!("http://127.0.0.1:{other}"),
        format!("http://localhost:{port}"),
        format!("https://127.0.0.1:{port}"),
        "http://[::1]:7070".to_string(),
        "null".to_string(),
    ] {
        let r = h
            .http
            .post(format!("{}/press", h.base))
            .header("origin", &origin)
            .header("content-type", "application/json")
            .body(r#"{"button":"ok"}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{origin}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(error_code(&body), "forbidden_origin", "{origin}");
        let r = h
            .http
            .get(format!("{}/screen", h.base))
            .header("origin", &origin)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "GET from {origin}");
    }
    // No Origin at all (curl, tests) is fine.
    let r = h.get("/screen").await;
    assert_eq!(r.status(), StatusCode::OK);
}

/// A POST must say it carries JSON: a cross-site form or `text/plain`
/// "simple request" is refused before the body is read.
#[tokio::test]
async fn posts_without_a_json_content_type_are_415() {
    let h = start().await;
    for content_type in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
    ] {
        let mut req = h
            .http
            .post(format!("{}/press", h.base))
            .header("origin", h.base.clone())
            .body(r#"{"button":"ok"}"#);
        if let Some(c) = content_type {
            req = req.header("content-type", c);
        }
        let r = req.send().await.unwrap();
        assert_eq!(
            r.status(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{content_type:?}"
        );
        let body: Value = r.json().await.unwrap();
        assert_eq!(error_code(&body), "unsupported_media_type");
    }
    let (status, _) = h.post("/press", r#"{"button":"ok"}"#).await;
    assert_eq!(status, StatusCode::OK);
    let r = h
        .http
        .post(format!("{}/tap", h.base))
        .header("content-type", "application/json; charset=utf-8")
        .body(r#"{"card":"visa_ok"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT, "reaches the handler");
}

#[tokio::test]
async fn unknown_routes_are_json_404() {
    let h = start().await;
    let r = h.get("/nope").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let body: Value = r.json().await.unwrap();
    assert_eq!(error_code(&body), "not_found");
}

#[tokio::test]
async fn screen_long_poll_returns_on_the_next_change() {
    let mut h = start().await;
    let first: Value = h.get("/screen").await.json().await.unwrap();
    let seen = first["version"].as_u64().unwrap();

    // Nothing changes: the wait ends at its timeout with the same version.
    let same: Value = h
        .get(&format!("/screen?after={seen}&timeout_ms=50"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(same["version"].as_u64(), Some(seen));

    // A change while the request waits (or before it arrives) ends it.
    let url = format!("{}/screen?after={seen}&timeout_ms=30000", h.base);
    let http = h.http.clone();
    let waiting = tokio::spawn(async move {
        http.get(url)
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()
    });
    let mut parts = h.parts.take().unwrap();
    let (_, screen) = ui::samples::sample_screens()
        .into_iter()
        .find(|(name, _)| *name == "idle")
        .unwrap();
    show(&mut parts.display, &screen).await.unwrap();
    let changed = waiting.await.unwrap();
    assert!(changed["version"].as_u64().unwrap() > seen);

    let r = h.get("/screen?after=soon").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    assert_eq!(error_code(&body), "bad_query");
}
