//! SPEC 4.1 terminal provisioning: the [`ProvisionResponse`] that carries
//! the terminal's credentials.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::ids::{SessionId, TerminalId};
use crate::signing::{Credentials, Secret};

/// `POST /v1/terminals/:terminal_id/provision` answer. The secret is on the
/// wire here (and only here); `Debug` never prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProvisionResponse {
    pub api_key: String,
    #[serde(with = "secret_serde")]
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub secret: Secret,
    pub merchant_id: String,
    pub tenant_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terminal_id: Option<TerminalId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<SessionId>,
}

impl ProvisionResponse {
    pub fn credentials(&self) -> Credentials {
        Credentials {
            tenant_id: self.tenant_id.clone(),
            api_key: self.api_key.clone(),
            merchant_id: self.merchant_id.clone(),
            secret: self.secret.clone(),
        }
    }
}

mod secret_serde {
    use super::*;

    pub fn serialize<S: Serializer>(secret: &Secret, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(secret.expose())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Secret, D::Error> {
        let s = String::deserialize(d)?;
        if s.is_empty() {
            return Err(serde::de::Error::custom("secret is empty"));
        }
        Ok(Secret::new(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    use crate::wire::test_util::round_trip;

    #[test]
    fn provision_response_hides_its_secret() {
        let p: ProvisionResponse = round_trip(json!({
            "api_key": "term_key_001", "secret": "s3cr3t-terminal",
            "merchant_id": "m-1", "tenant_id": "test-tenant"
        }));
        assert_eq!(p.credentials().secret.expose(), "s3cr3t-terminal");
        assert!(!format!("{p:?}").contains("s3cr3t"));
        assert!(
            serde_json::from_value::<ProvisionResponse>(json!({
                "api_key": "k", "secret": "", "merchant_id": "m", "tenant_id": "t"
            }))
            .is_err()
        );
    }
}
