//! The virtual device's control API, driven over HTTP (SPEC section 6):
//! `GET /screen`, `GET /screen.png`, `POST /tap`, `POST /press`.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

use crate::error::{HarnessError, Result};
use crate::wait::Deadline;

/// `GET /screen`, the fields the harness reads.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ScreenView {
    pub screen: String,
    #[serde(default)]
    pub amount: Option<String>,
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub offline: bool,
    #[serde(default)]
    pub queued: u64,
    /// Of `queued`, the items the backend refused for good.
    #[serde(default)]
    pub parked: u64,
    /// Sequence number of the last flushed frame.
    #[serde(default)]
    pub frame: u64,
    /// Bumped by the device on every observable change (`GET
    /// /screen?after=V` waits for the next one).
    #[serde(default)]
    pub version: u64,
    #[serde(default)]
    pub reader_waiting: bool,
    /// The logged-in operator's id.
    #[serde(default)]
    pub operator: Option<String>,
    #[serde(default)]
    pub tip_amount: Option<String>,
    #[serde(default)]
    pub total: Option<String>,
    #[serde(default)]
    pub cart: Option<Vec<serde_json::Value>>,
    #[serde(default)]
    pub report: Option<serde_json::Value>,
    #[serde(default)]
    pub menu: Option<Vec<String>>,
    /// The code on the `pairing` screen (SPEC 8.1).
    #[serde(default)]
    pub pairing_code: Option<String>,
    /// The account, code and progress on the `transfer` screen (SPEC 7.7).
    #[serde(default)]
    pub transfer: Option<serde_json::Value>,
}

impl ScreenView {
    /// `approved NGN 2000.00 "…" (offline, 2 queued)`.
    pub fn summary(&self) -> String {
        let mut s = self.screen.clone();
        if let Some(a) = &self.amount {
            s.push_str(&format!(
                " {} {a}",
                self.currency.as_deref().unwrap_or("NGN")
            ));
        }
        if let Some(m) = self.message.as_deref().filter(|m| !m.is_empty()) {
            s.push_str(&format!(" \"{m}\""));
        }
        let mut flags = Vec::new();
        if self.offline {
            flags.push("offline".to_owned());
        }
        if self.queued > 0 {
            flags.push(format!("{} queued", self.queued));
        }
        if self.parked > 0 {
            flags.push(format!("{} parked", self.parked));
        }
        if !flags.is_empty() {
            s.push_str(&format!(" ({})", flags.join(", ")));
        }
        s
    }
}

/// A client of one virtual device.
#[derive(Debug, Clone)]
pub struct Device {
    base: String,
    http: reqwest::Client,
}

impl Device {
    pub fn new(addr: SocketAddr, http: reqwest::Client) -> Device {
        Device {
            base: format!("http://{addr}"),
            http,
        }
    }

    /// `http://ADDR` of the control API (its `/` page shows the live screen).
    pub fn url(&self) -> &str {
        &self.base
    }

    fn http_err(what: &str) -> impl FnOnce(reqwest::Error) -> HarnessError + '_ {
        move |source| HarnessError::Http {
            what: what.to_owned(),
            source,
        }
    }

    pub async fn screen(&self) -> Result<ScreenView> {
        self.screen_at(format!("{}/screen", self.base)).await
    }

    /// `GET /screen?after=V`: answers at the device's next change after
    /// version `seen` (or, unchanged, after `wait`, at most 20 s: under
    /// the harness client's 30 s request timeout).
    pub async fn screen_after(&self, seen: u64, wait: Duration) -> Result<ScreenView> {
        let ms = wait.as_millis().clamp(1, 20_000);
        self.screen_at(format!("{}/screen?after={seen}&timeout_ms={ms}", self.base))
            .await
    }

    async fn screen_at(&self, url: String) -> Result<ScreenView> {
        let resp = self
            .http
            .get(url)
            .send()
            .await
            .map_err(Self::http_err("GET /screen"))?;
        let bytes = resp.bytes().await.map_err(Self::http_err("GET /screen"))?;
        serde_json::from_slice(&bytes).map_err(|e| HarnessError::Decode {
            what: "GET /screen".into(),
            problem: e.to_string(),
            body: String::from_utf8_lossy(&bytes).chars().take(300).collect(),
        })
    }

    /// The current frame as PNG bytes.
    pub async fn png(&self) -> Result<Vec<u8>> {
        let resp = self
            .http
            .get(format!("{}/screen.png", self.base))
            .send()
            .await
            .map_err(Self::http_err("GET /screen.png"))?;
        if !resp.status().is_success() {
            return Err(HarnessError::Api {
                what: "GET /screen.png".into(),
                status: resp.status().as_u16(),
                code: "png".into(),
                message: resp.text().await.unwrap_or_default(),
            });
        }
        let bytes = resp
            .bytes()
            .await
            .map_err(Self::http_err("GET /screen.png"))?;
        Ok(bytes.to_vec())
    }

    /// Waits until `pred` holds of `/screen`, asking again at each of the
    /// device's changes (`?after=`, no polling); `what` names the wait in
    /// errors.
    pub async fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&ScreenView) -> bool,
    ) -> Result<ScreenView> {
        let end = tokio::time::Instant::now() + timeout;
        let mut s = self.screen().await?;
        loop {
            if pred(&s) {
                return Ok(s);
            }
            let left = end.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return Err(HarnessError::Timeout {
                    what: format!("screen {what}"),
                    waited: timeout,
                    last: s.summary(),
                });
            }
            s = self.screen_after(s.version, left).await?;
        }
    }

    /// Waits until the screen is `name`.
    pub async fn wait_screen(&self, name: &str, timeout: Duration) -> Result<ScreenView> {
        self.wait_for(name, timeout, |s| s.screen == name).await
    }

    async fn post(&self, path: &str, body: serde_json::Value) -> Result<()> {
        let what = format!("POST {path}");
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .map_err(|source| HarnessError::Http {
                what: what.clone(),
                source,
            })?;
        let status = resp.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(());
        }
        let v: serde_json::Value = resp.json().await.unwrap_or_default();
        Err(HarnessError::Api {
            what,
            status,
            code: v["error"]["code"].as_str().unwrap_or("").to_owned(),
            message: v["error"]["message"].as_str().unwrap_or("").to_owned(),
        })
    }

    /// Waits until the reader is waiting for a card, then taps `card`.
    pub async fn tap(&self, card: &str, timeout: Duration) -> Result<()> {
        self.wait_for("reader waiting for a card", timeout, |s| s.reader_waiting)
            .await?;
        self.post("/tap", serde_json::json!({ "card": card })).await
    }

    /// Taps without waiting for the reader (the answer says whether it was).
    pub async fn tap_now(&self, card: &str) -> Result<()> {
        self.post("/tap", serde_json::json!({ "card": card })).await
    }

    /// The virtual printer's receipts, newest first (`GET /receipts`).
    pub async fn receipts(&self) -> Result<Vec<serde_json::Value>> {
        let what = "GET /receipts";
        let resp = self
            .http
            .get(format!("{}/receipts", self.base))
            .send()
            .await
            .map_err(Self::http_err(what))?;
        resp.json().await.map_err(Self::http_err(what))
    }

    /// A receipt's PNG (`GET /receipts/:n.png`).
    pub async fn receipt_png(&self, n: u64) -> Result<Vec<u8>> {
        let what = "GET /receipts/N.png";
        let bytes = self
            .http
            .get(format!("{}/receipts/{n}.png", self.base))
            .send()
            .await
            .map_err(Self::http_err(what))?
            .bytes()
            .await
            .map_err(Self::http_err(what))?;
        Ok(bytes.to_vec())
    }

    /// Tells the virtual printer to work, run out of paper or go offline.
    pub async fn set_printer(&self, state: &str) -> Result<()> {
        self.post("/printer", serde_json::json!({ "state": state }))
            .await
    }

    /// `menu` → `1`: opens the catalog screen, trying again while the
    /// terminal has no catalog yet (it comes with a heartbeat of its own,
    /// and the menu says "No catalog for this event" until then). Returns
    /// the menu as it was shown the last time.
    pub async fn open_catalog(&self, timeout: Duration) -> Result<ScreenView> {
        let deadline = Deadline::after(timeout);
        loop {
            self.press("menu").await?;
            let menu = self.wait_screen("menu", timeout).await?;
            self.press("1").await?;
            let now = self
                .wait_for("catalog, or the menu saying why not", timeout, |s| {
                    s.screen == "catalog" || (s.screen == "menu" && s.message.is_some())
                })
                .await?;
            if now.screen == "catalog" {
                return Ok(menu);
            }
            self.press("cancel").await?;
            self.wait_screen("idle", timeout).await?;
            deadline
                .tick("the catalog on the terminal", || now.summary())
                .await?;
        }
    }

    /// Presses each key of `keys` in order (`"1234"`, then `"ok"` etc.).
    pub async fn keys(&self, keys: &str) -> Result<()> {
        for c in keys.chars() {
            self.press(&c.to_string()).await?;
        }
        Ok(())
    }

    /// Presses `cancel`, `ok`, `back`, `menu`, `up`, `down` or a digit.
    pub async fn press(&self, button: &str) -> Result<()> {
        self.post("/press", serde_json::json!({ "button": button }))
            .await
    }
}
