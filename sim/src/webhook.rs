//! Webhook delivery: each event gets a stable id, every attempt is signed
//! afresh (SPEC section 3: `X-API-KEY` = the webhook key id, signed with the
//! webhook secret; the organisation key never reaches a receiver), non-2xx
//! answers (redirects included: they are not followed) and connection errors
//! are retried with exponential backoff, at most `max_attempts` times.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use proto::signing::{Credentials, sign_request};
use proto::wire::{Timestamp, WebhookEnvelope};
use serde::Serialize;
use tokio::sync::watch;

use crate::state::PendingWebhook;

/// One delivery attempt, as shown by `GET /v1/sandbox/webhooks`.
#[derive(Debug, Clone, Serialize)]
pub struct DeliveryAttempt {
    pub event_id: String,
    pub event: String,
    pub url: String,
    pub attempt: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub delivered: bool,
    pub at: Timestamp,
}

#[derive(Debug)]
pub struct Webhooks {
    client: reqwest::Client,
    creds: Credentials,
    retry_base: Duration,
    max_attempts: u32,
    log: Mutex<Vec<DeliveryAttempt>>,
    /// Bumped whenever the log changes (the dashboard's event stream).
    log_changed: watch::Sender<u64>,
    shutdown: watch::Receiver<bool>,
}

/// Most attempts kept in the inspection log.
const LOG_CAP: usize = 10_000;

impl Webhooks {
    pub fn new(
        client: reqwest::Client,
        creds: Credentials,
        retry_base: Duration,
        max_attempts: u32,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        Webhooks {
            client,
            creds,
            retry_base,
            max_attempts: max_attempts.max(1),
            log: Mutex::new(Vec::new()),
            log_changed: watch::channel(0).0,
            shutdown,
        }
    }

    pub fn attempts(&self) -> Vec<DeliveryAttempt> {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn clear_log(&self) {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).clear();
        self.log_changed.send_modify(|v| *v += 1);
    }

    /// Changes whenever an attempt is logged or the log is cleared.
    pub fn changed(&self) -> watch::Receiver<u64> {
        self.log_changed.subscribe()
    }

    fn record(&self, a: DeliveryAttempt) {
        let mut log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        if log.len() >= LOG_CAP {
            log.remove(0);
        }
        log.push(a);
        drop(log);
        self.log_changed.send_modify(|v| *v += 1);
    }

    /// Starts delivering one event in the background.
    pub fn send(self: &Arc<Self>, w: PendingWebhook) {
        let envelope = WebhookEnvelope {
            id: format!("evt_{}", uuid::Uuid::new_v4().simple()),
            event: w.event,
            session_id: w.session_id,
            data: w.data,
            created_at: Timestamp::now(),
        };
        let this = Arc::clone(self);
        let url = w.url;
        tokio::spawn(async move {
            let mut shutdown = this.shutdown.clone();
            tokio::select! {
                _ = this.deliver(&url, &envelope) => {}
                _ = crate::stopped(&mut shutdown) => {}
            }
        });
    }

    async fn deliver(&self, url: &str, env: &WebhookEnvelope) {
        let body = match serde_json::to_vec(env) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "webhook body cannot be serialized");
                return;
            }
        };
        let path = match reqwest::Url::parse(url) {
            Ok(u) => match u.query() {
                Some(q) => format!("{}?{q}", u.path()),
                None => u.path().to_owned(),
            },
            Err(_) => return,
        };
        for attempt in 1..=self.max_attempts {
            let now = Timestamp::now().unix();
            let outcome =
                match sign_request(&self.creds, "POST", &path, &body, now, uuid::Uuid::new_v4()) {
                    Ok(h) => {
                        let mut req = self
                            .client
                            .post(url)
                            .header("content-type", "application/json")
                            .header("x-webhook-event", env.event.as_str())
                            .header("x-webhook-id", &env.id)
                            .header("x-webhook-attempt", attempt.to_string())
                            .body(body.clone());
                        for (k, v) in h.pairs() {
                            req = req.header(k, v);
                        }
                        req.send().await
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "webhook body cannot be signed");
                        return;
                    }
                };
            let (status, error, ok) = match outcome {
                Ok(r) => (Some(r.status().as_u16()), None, r.status().is_success()),
                Err(e) => (None, Some(e.to_string()), false),
            };
            self.record(DeliveryAttempt {
                event_id: env.id.clone(),
                event: env.event.as_str().to_owned(),
                url: url.to_owned(),
                attempt,
                status,
                error,
                delivered: ok,
                at: Timestamp::now(),
            });
            if ok {
                return;
            }
            if attempt < self.max_attempts {
                let wait = self
                    .retry_base
                    .saturating_mul(1u32 << (attempt - 1).min(20));
                tokio::time::sleep(wait).await;
            } else {
                tracing::warn!(event_id = %env.id, url, "webhook given up after {attempt} attempts");
            }
        }
    }
}
