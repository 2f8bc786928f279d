//! The backend calls the core asks for directly (SPEC 5.2, 5.5): the
//! online authorization (bounded by the auth timeout, answered to the core
//! as `AuthAnswer`), a direct command ack with a few retries (the acks that
//! matter are in the outbox too), and a best-effort immediate reversal
//! after a failed commit (a queued one follows when storage allows). Each
//! runs as its own spawned request so the core loop never waits on the
//! network.

use std::time::Duration;

use proto::Reference;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::link::{Link, is_unreachable};
use crate::client::{ClientError, SignedClient};
use crate::core::{self, AuthRequest, AuthResult, CommandAck, Input};
use crate::mapping;
use crate::msg::CoreMsg;

/// What the direct calls need; cheap to clone.
#[derive(Clone)]
pub struct Online {
    pub client: SignedClient,
    pub link: Link,
    /// Where authorization answers go.
    pub core: mpsc::Sender<CoreMsg>,
    pub auth_timeout: Duration,
    /// The final stop: requests in flight are dropped.
    pub all: CancellationToken,
}

impl Online {
    pub fn authorize(&self, req: AuthRequest) {
        let client = self.client.clone();
        let tx = self.core.clone();
        let link = self.link.clone();
        let timeout = self.auth_timeout;
        let all = self.all.clone();
        let reference = req.submission.reference.clone();
        tokio::spawn(async move {
            let (result, receipt_url) = tokio::select! {
                r = authorize(&client, &link, timeout, &req) => r,
                _ = all.cancelled() => return,
            };
            tracing::info!(reference = %reference, result = auth_result_name(&result), "authorization answered");
            let _ = tx
                .send(CoreMsg::Input(Input::AuthAnswer {
                    reference,
                    result,
                    receipt_url,
                }))
                .await;
        });
    }

    pub fn ack(&self, ack: CommandAck) {
        let client = self.client.clone();
        let link = self.link.clone();
        let all = self.all.clone();
        tokio::spawn(async move {
            let body = proto::wire::CommandAck {
                status: match ack.status {
                    core::AckStatus::Accepted => proto::wire::AckStatus::Accepted,
                    core::AckStatus::Rejected => proto::wire::AckStatus::Rejected,
                },
                reason: ack.reason,
            };
            let mut delay = Duration::from_millis(500);
            for attempt in 1..=4 {
                let r = client.ack_command(&ack.command_id.0, &body).await;
                link.observe(&r);
                match r {
                    Ok(()) => return,
                    Err(e) if e.is_retryable() && attempt < 4 => {
                        tracing::debug!(command_id = %ack.command_id, error = %e, "ack failed; retrying");
                    }
                    Err(e) => {
                        tracing::warn!(command_id = %ack.command_id, error = %e, "command ack not delivered");
                        return;
                    }
                }
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = all.cancelled() => return,
                }
                delay *= 2;
            }
        });
    }

    pub fn reverse(&self, reference: Reference) {
        let client = self.client.clone();
        let link = self.link.clone();
        tokio::spawn(async move {
            let req = proto::wire::ReversalRequest {
                reason: Some("storage_failure".to_string()),
                at: None,
            };
            let r = client.reverse(&reference, &req).await;
            link.observe(&r);
            match r {
                Ok(a) => {
                    tracing::warn!(reference = %reference, status = ?a.status, "immediate reversal sent")
                }
                Err(e) => {
                    tracing::error!(reference = %reference, error = %e, "immediate reversal failed; the customer may be charged for a payment shown as failed")
                }
            }
        });
    }
}

fn auth_result_name(r: &AuthResult) -> &'static str {
    match r {
        AuthResult::Approved { .. } => "approved",
        AuthResult::Declined { .. } => "declined",
        AuthResult::Refused { .. } => "refused",
        AuthResult::Unknown => "unknown",
    }
}

/// One online authorization, bounded by `timeout`. Timeout, connection
/// errors, 5xx and broken answers are `Unknown`; a refusal (other 4xx) or a
/// request that could not be built is a decline: nothing was charged.
pub async fn authorize(
    client: &SignedClient,
    link: &Link,
    timeout: Duration,
    req: &AuthRequest,
) -> (AuthResult, Option<String>) {
    let body = match mapping::wire_submission(&req.submission) {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(error = %e, "authorization request cannot be built; declined, nothing sent");
            let refused = AuthResult::Refused {
                code: "local_error".to_string(),
            };
            return (refused, None);
        }
    };
    let r = match tokio::time::timeout(timeout, client.submit_transaction(&body)).await {
        Ok(r) => r,
        Err(_) => {
            link.failed(&ClientError::Retryable {
                what: "authorization".into(),
                status: None,
                retry_after: None,
                message: "timed out".into(),
            });
            return (AuthResult::Unknown, None);
        }
    };
    link.observe(&r);
    let receipt_url = r
        .as_ref()
        .ok()
        .and_then(|a| a.receipt_url.clone())
        .filter(|u| u.len() <= 512 && (u.starts_with("http://") || u.starts_with("https://")));
    let result = match r {
        Ok(answer) => match answer.status {
            proto::wire::AuthStatus::Approved => AuthResult::Approved {
                auth_code: answer.auth_code,
                transaction_id: answer.transaction_id,
            },
            proto::wire::AuthStatus::Declined => AuthResult::Declined {
                reason: answer
                    .decline_reason
                    .map_or("declined", |d| d.as_str())
                    .to_string(),
            },
        },
        Err(e) if e.is_retryable() || is_unreachable(&e) => {
            tracing::warn!(error = %e, "authorization outcome unknown");
            AuthResult::Unknown
        }
        Err(e) => {
            // Not the issuer's decline: a terminal or account problem
            // (credentials, session, a payment already settled...).
            tracing::error!(error = %e, "authorization refused by the backend (not a card decline); no charge");
            AuthResult::Refused {
                code: e.code().unwrap_or("refused").to_string(),
            }
        }
    };
    (result, receipt_url)
}
