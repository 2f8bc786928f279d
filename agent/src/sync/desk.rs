//! The cashier's data from the backend (SPEC 7.2, 7.6): the session's
//! operators, the quick-sale catalog and the configuration the core
//! applies between payments.
//!
//! [`DeskSync`] fetches operators and catalog once at start, then again
//! whenever the configuration in force (from the heartbeat, see
//! [`super::heartbeat`]) names another `operators_version` or
//! `catalog_version`. Each copy is validated, written to the ledger's kv
//! (so cashiers log in and sell from the catalog while offline, also after
//! a restart) and handed to the core. A malformed list keeps the last good
//! copy and is logged at ERROR; a failed fetch is retried on a timer (only
//! while one is owed: idle means idle).

use std::time::Duration;

use proto::wire::{Catalog, TerminalConfig, TerminalOperator};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::client::{ClientError, SignedClient};
use crate::clock::Clock;
use crate::core::{self, Input};
use crate::msg::CoreMsg;
use crate::task::{RunError, Task};

use super::link::Link;

/// kv keys of the cached copies.
pub const KV_OPERATORS: &str = "desk.operators";
pub const KV_CATALOG: &str = "desk.catalog";

/// Most operators kept for one session.
const MAX_OPERATORS: usize = 500;

/// Why a list from the backend (or the ledger) was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what}: {problem}")]
pub struct DeskDataError {
    pub what: &'static str,
    pub problem: String,
}

fn refuse<T>(what: &'static str, problem: impl Into<String>) -> Result<T, DeskDataError> {
    Err(DeskDataError {
        what,
        problem: problem.into(),
    })
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The operators list as the core keeps it; refused whole when one entry
/// is malformed (the last good copy stays).
pub fn core_operators(list: &[TerminalOperator]) -> Result<Vec<core::Operator>, DeskDataError> {
    const WHAT: &str = "operators";
    if list.len() > MAX_OPERATORS {
        return refuse(
            WHAT,
            format!("{} operators; at most {MAX_OPERATORS}", list.len()),
        );
    }
    let mut out = Vec::with_capacity(list.len());
    for o in list {
        let id_ok =
            (1..=64).contains(&o.operator_id.len()) && !o.operator_id.chars().any(char::is_control);
        if !id_ok {
            return refuse(
                WHAT,
                "an operator_id is empty, too long or has control characters",
            );
        }
        if o.name.trim().is_empty()
            || o.name.chars().count() > 64
            || o.name.chars().any(char::is_control)
        {
            return refuse(
                WHAT,
                format!(
                    "operator {}: name is empty, too long or has control characters",
                    o.operator_id
                ),
            );
        }
        if !is_hex(&o.pin_hash, 2 * proto::pin::PIN_HASH_BYTES) {
            return refuse(
                WHAT,
                format!(
                    "operator {}: pin_hash is not 64 lowercase hex digits",
                    o.operator_id
                ),
            );
        }
        if !is_hex(&o.salt, 2 * proto::pin::SALT_BYTES) {
            return refuse(
                WHAT,
                format!(
                    "operator {}: salt is not 32 lowercase hex digits",
                    o.operator_id
                ),
            );
        }
        if out.iter().any(|p: &core::Operator| p.id == o.operator_id) {
            return refuse(WHAT, format!("operator {} twice", o.operator_id));
        }
        out.push(core::Operator {
            id: o.operator_id.clone(),
            name: o.name.trim().to_string(),
            role: match o.role {
                proto::wire::OperatorRole::Cashier => core::Role::Cashier,
                proto::wire::OperatorRole::Supervisor | proto::wire::OperatorRole::Manager => {
                    core::Role::Supervisor
                }
            },
            pin_hash: o.pin_hash.clone(),
            salt: o.salt.clone(),
        });
    }
    Ok(out)
}

/// The catalog as the core keeps it, validated as the backend does.
pub fn core_catalog(c: &Catalog) -> Result<Vec<core::CatalogItem>, DeskDataError> {
    if let Err(e) = c.validate() {
        return refuse("catalog", e.to_string());
    }
    Ok(c.items
        .iter()
        .map(|i| core::CatalogItem {
            item_id: i.item_id.clone(),
            name: i.name.clone(),
            price: i.price,
        })
        .collect())
}

/// What the core applies from the configuration in force (SPEC defaults
/// without one).
pub fn desk_config(c: Option<&TerminalConfig>) -> core::DeskConfig {
    let Some(c) = c else {
        return core::DeskConfig::spec_default();
    };
    core::DeskConfig {
        tips: c.settings.tips.clone(),
        logout_after_ms: Some(
            u64::from(c.settings.logout_after_s.unwrap_or(600)).saturating_mul(1000),
        ),
        receipt_print: c.settings.receipt_print,
    }
}

/// The cached copies, for the core at boot. One that no longer reads or
/// validates is ignored with a warning (the next fetch replaces it).
pub async fn stored(
    store: &store::AsyncStore,
) -> Result<(Vec<core::Operator>, Vec<core::CatalogItem>), store::StoreError> {
    let operators = match store.kv_get(KV_OPERATORS.to_string()).await? {
        None => Vec::new(),
        Some(json) => match serde_json::from_str::<Vec<TerminalOperator>>(&json)
            .map_err(|e| e.to_string())
            .and_then(|l| core_operators(&l).map_err(|e| e.to_string()))
        {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "stored operators are unreadable; ignored");
                Vec::new()
            }
        },
    };
    let catalog = match store.kv_get(KV_CATALOG.to_string()).await? {
        None => Vec::new(),
        Some(json) => match serde_json::from_str::<Catalog>(&json)
            .map_err(|e| e.to_string())
            .and_then(|c| core_catalog(&c).map_err(|e| e.to_string()))
        {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "stored catalog is unreadable; ignored");
                Vec::new()
            }
        },
    };
    Ok((operators, catalog))
}

/// The desk sync task; ends when intake stops.
pub struct DeskSync {
    pub store: store::AsyncStore,
    pub client: SignedClient,
    pub link: Link,
    pub core: mpsc::Sender<CoreMsg>,
    pub clock: Clock,
    pub intake: CancellationToken,
    /// The configuration in force (see [`super::heartbeat`]).
    pub config: watch::Receiver<Option<TerminalConfig>>,
    /// How long after a failed fetch it is tried again.
    pub retry: Duration,
}

impl Task for DeskSync {
    const NAME: &'static str = "desk sync";

    fn run(self) -> impl Future<Output = Result<(), RunError>> + Send {
        self.run_loop()
    }
}

/// A fetch owed, and the version it is for (None: the version is unknown,
/// fetch anyway).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owed {
    Nothing,
    Version(Option<u64>),
}

impl DeskSync {
    async fn run_loop(mut self) -> Result<(), RunError> {
        let first = self.config.borrow_and_update().clone();
        let mut applied = desk_config(first.as_ref());
        // At start both lists are fetched, whatever the versions say.
        let mut ops = Owed::Version(first.as_ref().and_then(|c| c.operators_version));
        let mut cat = Owed::Version(first.as_ref().and_then(|c| c.catalog_version));
        let mut have_ops: Option<Option<u64>> = None;
        let mut have_cat: Option<Option<u64>> = None;
        loop {
            if let Owed::Version(v) = ops {
                ops = if self.fetch_operators().await? {
                    have_ops = Some(v);
                    Owed::Nothing
                } else {
                    ops
                };
            }
            if let Owed::Version(v) = cat {
                cat = if self.fetch_catalog().await? {
                    have_cat = Some(v);
                    Owed::Nothing
                } else {
                    cat
                };
            }
            let retry = (ops != Owed::Nothing || cat != Owed::Nothing).then_some(self.retry);
            tokio::select! {
                changed = self.config.changed() => {
                    if changed.is_err() {
                        return Ok(());
                    }
                    let c = self.config.borrow_and_update().clone();
                    let desk = desk_config(c.as_ref());
                    if desk != applied {
                        self.send(Input::DeskConfig(desk.clone())).await?;
                        applied = desk;
                    }
                    let (ov, cv) = c.as_ref().map_or((None, None), |c| (c.operators_version, c.catalog_version));
                    if ov.is_some() && have_ops != Some(ov) {
                        ops = Owed::Version(ov);
                    }
                    if cv.is_some() && have_cat != Some(cv) {
                        cat = Owed::Version(cv);
                    }
                }
                _ = sleep_opt(retry) => {}
                _ = self.intake.cancelled() => return Ok(()),
            }
        }
    }

    async fn send(&self, input: Input) -> Result<(), RunError> {
        self.core
            .send(CoreMsg::Input(input))
            .await
            .map_err(|_| RunError::TaskStopped { task: "core loop" })
    }

    /// Fetches, validates, stores and hands over the operators. False when
    /// it must be tried again (the backend did not answer).
    async fn fetch_operators(&self) -> Result<bool, RunError> {
        let r = tokio::select! {
            r = self.client.operators() => r,
            _ = self.intake.cancelled() => return Ok(true),
        };
        self.link.observe(&r);
        let list = match r {
            Ok(l) => l,
            Err(e) => return Ok(!self.fetch_failed("operators", &e)),
        };
        match core_operators(&list) {
            Ok(ops) => {
                self.keep(KV_OPERATORS, &list).await;
                tracing::info!(count = ops.len(), "operators in force");
                self.send(Input::Operators(ops)).await?;
            }
            Err(e) => {
                tracing::error!(error = %e, "operators from the backend refused; the last good copy stays")
            }
        }
        Ok(true)
    }

    async fn fetch_catalog(&self) -> Result<bool, RunError> {
        let r = tokio::select! {
            r = self.client.catalog() => r,
            _ = self.intake.cancelled() => return Ok(true),
        };
        self.link.observe(&r);
        let catalog = match r {
            Ok(c) => c,
            Err(e) => return Ok(!self.fetch_failed("catalog", &e)),
        };
        match core_catalog(&catalog) {
            Ok(items) => {
                self.keep(KV_CATALOG, &catalog).await;
                tracing::info!(
                    version = catalog.version,
                    items = items.len(),
                    "catalog in force"
                );
                self.send(Input::Catalog(items)).await?;
            }
            Err(e) => {
                tracing::error!(error = %e, "catalog from the backend refused; the last good copy stays")
            }
        }
        Ok(true)
    }

    /// Logs a failed fetch; true when it is worth trying again.
    fn fetch_failed(&self, what: &'static str, e: &ClientError) -> bool {
        match e {
            ClientError::InvalidResponse { .. } => {
                tracing::error!(what, error = %e, "malformed answer from the backend; the last good copy stays");
                true
            }
            ClientError::Permanent { status: 404, .. } => {
                tracing::debug!(what, "the backend has none");
                false
            }
            ClientError::Permanent { .. } | ClientError::Local { .. } => {
                tracing::warn!(what, error = %e, "fetch refused; the last good copy stays");
                true
            }
            ClientError::Retryable { .. } => {
                tracing::debug!(what, error = %e, "fetch failed; tried again later");
                true
            }
        }
    }

    async fn keep<T: serde::Serialize>(&self, key: &'static str, value: &T) {
        match serde_json::to_string(value) {
            Ok(json) => {
                if let Err(e) = self
                    .store
                    .kv_set(key.to_string(), json, self.clock.wall_ms())
                    .await
                {
                    tracing::error!(key, error = %e, "cannot store a copy for offline use");
                }
            }
            Err(e) => tracing::error!(key, error = %e, "cannot encode a copy for offline use"),
        }
    }
}

async fn sleep_opt(d: Option<Duration>) {
    match d {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(id: &str) -> TerminalOperator {
        TerminalOperator {
            operator_id: id.into(),
            name: "Ada".into(),
            role: proto::wire::OperatorRole::Manager,
            pin_hash: "a".repeat(64),
            salt: "b".repeat(32),
        }
    }

    #[test]
    fn operators_are_checked_whole_and_managers_supervise() {
        let ops = core_operators(&[op("op_1")]).unwrap();
        assert_eq!(ops[0].role, core::Role::Supervisor);
        let mut bad = op("op_2");
        bad.pin_hash = "XYZ".into();
        let e = core_operators(&[op("op_1"), bad]).unwrap_err();
        assert!(e.problem.contains("op_2"), "{e}");
        assert!(core_operators(&[op("op_1"), op("op_1")]).is_err());
        let mut salt = op("op_3");
        salt.salt = "b".repeat(31);
        assert!(core_operators(&[salt]).is_err());
    }

    #[test]
    fn the_desk_config_defaults_to_ten_minutes_and_no_tips() {
        assert_eq!(desk_config(None), core::DeskConfig::spec_default());
        let mut c = TerminalConfig::unconfigured();
        c.settings.logout_after_s = Some(120);
        c.settings.tips.enabled = true;
        let d = desk_config(Some(&c));
        assert_eq!(d.logout_after_ms, Some(120_000));
        assert!(d.tips.enabled);
    }
}
