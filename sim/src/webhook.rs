//! Webhook delivery: each event gets a stable id, every attempt is signed
//! afresh (SPEC section 3: `X-API-KEY` = the webhook key id, signed with the
//! webhook secret; the organisation key never reaches a receiver), non-2xx
//! answers (redirects included: they are not followed) and connection errors
//! are retried with exponential backoff, at most `max_attempts` times.
//!
//! With a state file, a delivery is recorded with the change that caused it
//! and after every failed attempt (how many were made, when the next is
//! due), and removed once delivered or given up; a restarted sim resumes
//! the retries of those still recorded, with the same `id`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use proto::signing::{Credentials, sign_request};
use proto::wire::{Timestamp, WebhookEnvelope};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::persist::StateFile;
use crate::state::PendingWebhook;

/// A webhook event on its way to its receiver, as kept in the state file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Delivery {
    pub url: String,
    pub envelope: WebhookEnvelope,
    /// Attempts already made.
    pub attempts: u32,
    /// When the next attempt is due (epoch milliseconds).
    pub next_at_ms: i64,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl Delivery {
    /// A new event for `w`, with its stable id, due now.
    pub fn new(w: PendingWebhook) -> Delivery {
        Delivery {
            url: w.url,
            envelope: WebhookEnvelope {
                id: format!("evt_{}", uuid::Uuid::new_v4().simple()),
                event: w.event,
                session_id: w.session_id,
                data: w.data,
                created_at: Timestamp::now(),
            },
            attempts: 0,
            next_at_ms: now_ms(),
        }
    }

    /// Its state file record.
    pub fn record(&self) -> Option<String> {
        serde_json::to_string(self).ok()
    }
}

/// One delivery attempt, as shown by `GET /v1/sandbox/webhooks`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
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
    store: Option<StateFile>,
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
        store: Option<StateFile>,
    ) -> Self {
        Webhooks {
            client,
            creds,
            retry_base,
            max_attempts: max_attempts.max(1),
            log: Mutex::new(Vec::new()),
            log_changed: watch::channel(0).0,
            shutdown,
            store,
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

    /// Starts (or, after a restart, resumes) delivering one event in the
    /// background.
    pub fn send(self: &Arc<Self>, d: Delivery) {
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let mut shutdown = this.shutdown.clone();
            tokio::select! {
                _ = this.deliver(d) => {}
                _ = crate::stopped(&mut shutdown) => {}
            }
        });
    }

    /// Records a delivery's progress (`None`: finished) in the state file.
    async fn keep(&self, id: &str, d: Option<&Delivery>) {
        if let Some(store) = &self.store {
            let body = d.and_then(Delivery::record);
            if let Err(e) = store.submit_webhook(id.to_owned(), body).committed().await {
                tracing::error!(event_id = %id, error = %e, "webhook progress not recorded");
            }
        }
    }

    /// The wait after `attempts` failed attempts.
    fn backoff(&self, attempts: u32) -> Duration {
        self.retry_base
            .saturating_mul(1u32 << attempts.saturating_sub(1).min(20))
    }

    async fn deliver(&self, mut d: Delivery) {
        // A resumed delivery waits what is left of its backoff, never more
        // than this sim's own backoff (its options may have changed).
        let left = Duration::from_millis(u64::try_from(d.next_at_ms - now_ms()).unwrap_or(0));
        let wait = if d.attempts > 0 {
            left.min(self.backoff(d.attempts))
        } else {
            Duration::ZERO
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        let url = d.url.clone();
        let url = url.as_str();
        let env = d.envelope.clone();
        let env = &env;
        let body = match serde_json::to_vec(env) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "webhook body cannot be serialized");
                self.keep(&env.id, None).await;
                return;
            }
        };
        let path = match reqwest::Url::parse(url) {
            Ok(u) => match u.query() {
                Some(q) => format!("{}?{q}", u.path()),
                None => u.path().to_owned(),
            },
            Err(_) => {
                self.keep(&env.id, None).await;
                return;
            }
        };
        for attempt in (d.attempts + 1)..=self.max_attempts {
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
                        self.keep(&env.id, None).await;
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
                self.keep(&env.id, None).await;
                return;
            }
            if attempt < self.max_attempts {
                let wait = self.backoff(attempt);
                d.attempts = attempt;
                d.next_at_ms =
                    now_ms().saturating_add(i64::try_from(wait.as_millis()).unwrap_or(i64::MAX));
                self.keep(&env.id, Some(&d)).await;
                tokio::time::sleep(wait).await;
            } else {
                tracing::warn!(event_id = %env.id, url, "webhook given up after {attempt} attempts");
            }
        }
        // Every attempt used (also when a restart found none left).
        self.keep(&env.id, None).await;
    }
}
