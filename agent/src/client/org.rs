//! The organisation-key client (`x-api-key`), for provisioning and
//! reconciliation.

use super::*;

/// The organisation-key client (`x-api-key`), for provisioning and
/// reconciliation. Talks to `backend.url`.
#[derive(Debug, Clone)]
pub struct OrgClient {
    transport: Transport,
    org_key: Secret,
}

impl OrgClient {
    pub fn new(backend: &BackendConfig, org_key: Secret) -> Result<Self, ClientError> {
        Ok(OrgClient {
            transport: Transport::new(backend.url.clone(), backend)?,
            org_key,
        })
    }

    async fn request<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        idempotency_key: Option<&str>,
    ) -> Result<T, ClientError> {
        let what = format!("{method} {}", path.split('?').next().unwrap_or(path));
        let (url, _) = self.transport.url(&what, path)?;
        let mut headers = HeaderMap::new();
        let mut key = header_value(&what, ORG_KEY_HEADER, self.org_key.expose())?;
        key.set_sensitive(true);
        headers.insert(ORG_KEY_HEADER, key);
        if let Some(k) = idempotency_key {
            headers.insert(IDEMPOTENCY_KEY, header_value(&what, IDEMPOTENCY_KEY, k)?);
        }
        self.transport.send(&what, method, url, headers, body).await
    }

    pub async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.request(Method::GET, path, None, None).await
    }

    pub async fn post_json<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        idempotency_key: Option<&str>,
    ) -> Result<T, ClientError> {
        let what = format!("POST {}", path.split('?').next().unwrap_or(path));
        let bytes = json_body(&what, body)?;
        self.request(Method::POST, path, Some(bytes), idempotency_key)
            .await
    }

    /// `POST /v1/terminals/:tid/provision`: issues (and rotates) the
    /// terminal's credentials.
    pub async fn provision(
        &self,
        terminal: &TerminalId,
        session: &SessionId,
    ) -> Result<ProvisionResponse, ClientError> {
        self.post_json(
            &format!("/v1/terminals/{terminal}/provision"),
            &serde_json::json!({ "session_id": session }),
            None,
        )
        .await
    }

    /// `GET /v1/sessions/:id` with the organisation key: the session and
    /// its terminals.
    pub async fn session(&self, session: &SessionId) -> Result<Session, ClientError> {
        self.get_json(&format!("/v1/sessions/{session}")).await
    }

    /// `GET /v1/reconciliation/:session_id`.
    pub async fn reconciliation(&self, session: &SessionId) -> Result<Reconciliation, ClientError> {
        self.get_json(&format!("/v1/reconciliation/{session}"))
            .await
    }
}
