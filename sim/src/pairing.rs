//! Pairing by code (SPEC 8.1): devices waiting for an organiser to claim
//! their code. Kept in memory only: a code lives ten minutes, and a device
//! whose code vanished with a restart (404 on its poll) registers again.

use std::collections::HashMap;

use proto::signing::{Credentials, Secret};
use proto::wire::{
    DeviceId, DeviceKeyHash, PAIRING_CODE_LEN, PairingCode, PairingPoll, PairingState,
    PairingTicket, ProvisionResponse, Timestamp,
};
use rand::Rng;
use tokio::sync::watch;

use axum::http::StatusCode;

use crate::error::ApiErr;

/// Most codes remembered at once (waiting, used or expired within the
/// last day); registering beyond answers 503.
pub const MAX_CODES: usize = 100_000;
/// A used or expired code is remembered this long (so that it answers 410,
/// not 404).
const REMEMBER_S: i64 = 86_400;
/// Tenant and merchant headers a pairing poll carries (SPEC 3 checks them
/// against the credentials; a device has none of its own yet).
pub const PAIRING_TENANT: &str = "pairing";

/// A used or expired code (410).
pub const CODE_GONE: &str = "pairing_code_gone";

#[derive(Debug)]
enum Stage {
    Pending,
    /// Claimed; the credentials wait for the device's next poll.
    Claimed(Box<ProvisionResponse>),
    /// The credentials were delivered (once).
    Delivered,
    /// The device registered again: this code is void.
    Replaced,
}

#[derive(Debug)]
struct Entry {
    device_id: DeviceId,
    key_hash: DeviceKeyHash,
    expires_at: Timestamp,
    stage: Stage,
    /// Bumped on claim: wakes the device's long poll.
    changed: watch::Sender<u64>,
}

/// What a poll finds.
pub enum Polled {
    Answer(PairingPoll),
    /// Still pending: wait on this for a claim, until `expires_at`.
    Wait(watch::Receiver<u64>, Timestamp),
}

/// The codes issued and not yet forgotten.
#[derive(Debug, Default)]
pub struct Pairings {
    codes: HashMap<PairingCode, Entry>,
    by_device: HashMap<DeviceId, PairingCode>,
}

impl Pairings {
    /// `POST /v1/pairing`: a fresh code for the device (its previous code,
    /// if any, is void).
    pub fn register(
        &mut self,
        device_id: DeviceId,
        key_hash: DeviceKeyHash,
        now: Timestamp,
        ttl_s: i64,
    ) -> Result<PairingTicket, ApiErr> {
        self.forget_expired(now);
        if let Some(old) = self.by_device.remove(&device_id) {
            if let Some(e) = self.codes.get_mut(&old) {
                if matches!(e.stage, Stage::Pending) {
                    e.stage = Stage::Replaced;
                    // A poll still waiting on the old code answers 410 now.
                    e.changed.send_modify(|n| *n += 1);
                }
            }
        }
        if self.codes.len() >= MAX_CODES {
            return Err(ApiErr::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "pairing_full",
                "too many devices are waiting to be paired; try again shortly",
            ));
        }
        let code = loop {
            let mut bytes = [0u8; PAIRING_CODE_LEN];
            rand::thread_rng().fill(&mut bytes);
            let c = PairingCode::from_random(bytes);
            if !self.codes.contains_key(&c) {
                break c;
            }
        };
        let expires_at = now.plus_secs(ttl_s);
        self.codes.insert(
            code.clone(),
            Entry {
                device_id: device_id.clone(),
                key_hash,
                expires_at,
                stage: Stage::Pending,
                changed: watch::channel(0).0,
            },
        );
        self.by_device.insert(device_id, code.clone());
        Ok(PairingTicket {
            pairing_code: code,
            expires_at,
        })
    }

    /// Whether `code` was issued (and not yet forgotten).
    pub fn knows(&self, code: &PairingCode) -> bool {
        self.codes.contains_key(code)
    }

    /// The credentials a device signs its poll of `code` with.
    pub fn device_credentials(&self, code: &PairingCode, api_key: &str) -> Option<Credentials> {
        let e = self.codes.get(code)?;
        (e.device_id.as_str() == api_key).then(|| Credentials {
            tenant_id: PAIRING_TENANT.to_owned(),
            api_key: e.device_id.as_str().to_owned(),
            merchant_id: PAIRING_TENANT.to_owned(),
            secret: Secret::new(e.key_hash.as_str().to_owned()),
        })
    }

    /// `GET /v1/pairing/:code` once its signature was checked.
    pub fn poll(&mut self, code: &PairingCode, now: Timestamp) -> Result<Polled, ApiErr> {
        let e = self
            .codes
            .get_mut(code)
            .ok_or_else(|| ApiErr::not_found("pairing code", code.as_str()))?;
        match &e.stage {
            Stage::Delivered => Err(gone("this pairing code was already used")),
            Stage::Replaced => Err(gone("this device registered again: use its new code")),
            Stage::Pending if e.expires_at <= now => Err(gone("this pairing code expired")),
            Stage::Pending => Ok(Polled::Wait(e.changed.subscribe(), e.expires_at)),
            Stage::Claimed(_) => {
                let Stage::Claimed(creds) = std::mem::replace(&mut e.stage, Stage::Delivered)
                else {
                    return Err(ApiErr::internal("pairing stage changed under the lock"));
                };
                Ok(Polled::Answer(PairingPoll {
                    status: PairingState::Paired,
                    expires_at: e.expires_at,
                    credentials: Some(*creds),
                }))
            }
        }
    }

    /// Checks that `code` can be claimed now (before credentials are
    /// issued for it); returns the device that registered it.
    pub fn claimable(&self, code: &PairingCode, now: Timestamp) -> Result<DeviceId, ApiErr> {
        let e = self
            .codes
            .get(code)
            .ok_or_else(|| ApiErr::not_found("pairing code", code.as_str()))?;
        match e.stage {
            Stage::Pending if e.expires_at > now => Ok(e.device_id.clone()),
            Stage::Pending => Err(gone("this pairing code expired")),
            Stage::Claimed(_) | Stage::Delivered => Err(gone("this pairing code was already used")),
            Stage::Replaced => Err(gone("this device registered again: claim its new code")),
        }
    }

    /// Hands the credentials to the code's device (after [`claimable`]).
    ///
    /// [`claimable`]: Pairings::claimable
    pub fn claim(&mut self, code: &PairingCode, creds: ProvisionResponse) {
        if let Some(e) = self.codes.get_mut(code) {
            e.stage = Stage::Claimed(Box::new(creds));
            e.changed.send_modify(|n| *n += 1);
        }
    }

    /// Drops every code.
    pub fn clear(&mut self) {
        self.codes.clear();
        self.by_device.clear();
    }

    fn forget_expired(&mut self, now: Timestamp) {
        let by_device = &mut self.by_device;
        self.codes.retain(|code, e| {
            let keep = e.expires_at.plus_secs(REMEMBER_S) > now;
            if !keep && by_device.get(&e.device_id) == Some(code) {
                by_device.remove(&e.device_id);
            }
            keep
        });
    }
}

fn gone(message: &str) -> ApiErr {
    ApiErr::new(StatusCode::GONE, CODE_GONE, message)
}
