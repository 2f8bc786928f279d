//! The pairing client (SPEC 8.1): registers a device (`POST /v1/pairing`,
//! no authentication) and long-polls its code (`GET /v1/pairing/:code`,
//! signed as SPEC 3 with the device id as `X-API-KEY` and the device key's
//! hash as the secret). Talks to `backend.terminal_api_url`.

use proto::wire::{
    DeviceId, DeviceKeyHash, PairingCode, PairingPoll, PairingRequest, PairingTicket,
};

use super::*;

/// `X-Tenant-ID` and `X-Merchant-ID` of a pairing poll (the backend does
/// not check them for pairing).
pub const PAIRING_TENANT: &str = "pairing";

/// The longest a poll waits for the claim on the server (`wait_s`).
pub const POLL_WAIT_S: u64 = 25;
/// The poll's whole-request timeout: above the server's wait.
pub const POLL_TIMEOUT: Duration = Duration::from_secs(POLL_WAIT_S + 10);

/// Registers a device and polls its code.
#[derive(Debug, Clone)]
pub struct PairingClient {
    transport: Transport,
    signed: SignedClient,
    request: PairingRequest,
}

impl PairingClient {
    /// A client for the device `device_id` whose key hashes to `key_hash`.
    pub fn new(
        backend: &BackendConfig,
        device_id: DeviceId,
        key_hash: DeviceKeyHash,
    ) -> Result<Self, ClientError> {
        let local = |message: String| ClientError::Local {
            what: "pairing client".into(),
            message,
        };
        let mut long = backend.clone();
        long.request_timeout = long.request_timeout.max(POLL_TIMEOUT);
        let api_key = TerminalId::new(device_id.as_str()).map_err(|e| local(e.to_string()))?;
        let credentials = Credentials {
            tenant_id: PAIRING_TENANT.into(),
            api_key: device_id.as_str().to_owned(),
            merchant_id: PAIRING_TENANT.into(),
            secret: Secret::new(key_hash.as_str()),
        };
        Ok(PairingClient {
            transport: Transport::new(backend.terminal_api_url.clone(), backend)?,
            signed: SignedClient::new(&long, api_key, credentials)?,
            request: PairingRequest {
                device_id,
                device_key_hash: key_hash,
            },
        })
    }

    /// `POST /v1/pairing`: a fresh code for this device (its previous one
    /// is void).
    pub async fn register(&self) -> Result<PairingTicket, ClientError> {
        let what = "POST /v1/pairing";
        let (url, _) = self.transport.url(what, "/v1/pairing")?;
        let body = json_body(what, &self.request)?;
        self.transport
            .send(what, Method::POST, url, HeaderMap::new(), Some(body))
            .await
    }

    /// `GET /v1/pairing/:code?wait_s=N`: pending (after waiting up to
    /// `wait_s` for the claim), or paired with the credentials (once).
    pub async fn poll(&self, code: &PairingCode, wait_s: u64) -> Result<PairingPoll, ClientError> {
        self.signed
            .get_json(&format!("/v1/pairing/{code}?wait_s={wait_s}"))
            .await
    }
}
