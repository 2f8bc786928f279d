//! Small HTTP helpers for tests, benchmarks and demo drivers: requests with
//! the organisation key, and requests signed with a terminal's credentials.
//! (The terminal agent has its own client; this one is for driving the sim.)

use proto::signing::{CanonicalError, Credentials, sign_request};
use reqwest::{Method, RequestBuilder};

/// Requests with `x-api-key: <organisation key>`.
#[derive(Debug, Clone)]
pub struct OrgClient {
    pub http: reqwest::Client,
    pub base: String,
    org_key: String,
}

impl OrgClient {
    pub fn new(http: reqwest::Client, base: impl Into<String>, org_key: impl Into<String>) -> Self {
        OrgClient {
            http,
            base: base.into(),
            org_key: org_key.into(),
        }
    }

    pub fn request(&self, method: Method, path_and_query: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}{path_and_query}", self.base))
            .header("x-api-key", &self.org_key)
    }
}

/// Requests signed per SPEC section 3.
#[derive(Debug, Clone)]
pub struct SignedClient {
    pub http: reqwest::Client,
    pub base: String,
    pub creds: Credentials,
}

impl SignedClient {
    pub fn new(http: reqwest::Client, base: impl Into<String>, creds: Credentials) -> Self {
        SignedClient {
            http,
            base: base.into(),
            creds,
        }
    }

    /// A signed request; `body` is sent exactly as given (JSON).
    pub fn request(
        &self,
        method: Method,
        path_and_query: &str,
        body: &[u8],
    ) -> Result<RequestBuilder, CanonicalError> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        self.request_at(method, path_and_query, body, now)
    }

    /// Like [`Self::request`] with an explicit signing time (epoch seconds).
    pub fn request_at(
        &self,
        method: Method,
        path_and_query: &str,
        body: &[u8],
        now: i64,
    ) -> Result<RequestBuilder, CanonicalError> {
        let h = sign_request(
            &self.creds,
            method.as_str(),
            path_and_query,
            body,
            now,
            uuid::Uuid::new_v4(),
        )?;
        let mut rb = self
            .http
            .request(method, format!("{}{path_and_query}", self.base));
        for (k, v) in h.pairs() {
            rb = rb.header(k, v);
        }
        if !body.is_empty() {
            rb = rb
                .header("content-type", "application/json")
                .body(body.to_vec());
        }
        Ok(rb)
    }
}
