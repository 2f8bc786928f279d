//! SPEC 7.6 session configuration: what the partner sets for a session's
//! terminals (`PUT /v1/sessions/:id/config`), what the heartbeat answer
//! carries and `GET /v1/terminals/:tid/config` returns, with its version.
//!
//! Both sides validate with [`SessionConfig::validate`]: the backend before
//! storing it, the terminal before keeping what a heartbeat brought.

use serde::{Deserialize, Serialize};

use crate::money::Money;
use crate::text_enum::text_enum;

/// At most this many tip choices (percentages, fixed amounts and custom):
/// the cashier picks them with the digit keys `1`…`9`.
pub const MAX_TIP_CHOICES: usize = 9;
/// Inactivity logout bounds, in seconds (SPEC 7.2).
pub const LOGOUT_AFTER_S: std::ops::RangeInclusive<u32> = 10..=86_400;

text_enum! {
    #[derive(Default)]
    pub enum ReceiptPrint: "receipt print mode" {
        #[default]
        Auto = "auto",
        Ask = "ask",
        Off = "off",
    }
}

/// SPEC 7.3 `tips {enabled, percentages, fixed, custom}`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TipsConfig {
    #[serde(default)]
    pub enabled: bool,
    /// Whole percentages, 1–100, in the order shown.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::tip_percentages))]
    pub percentages: Vec<u32>,
    /// Fixed tip amounts, in the order shown after the percentages.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(schema_with = crate::openapi::fixed_tips))]
    pub fixed: Vec<Money>,
    /// Whether the customer may key an amount.
    #[serde(default)]
    pub custom: bool,
}

/// The settings a partner sets for a session's terminals (the body of
/// `PUT /v1/sessions/:id/config`). `Default` is what a missing field
/// reads as (so it validates: language `en`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionConfig {
    #[serde(default)]
    pub tips: TipsConfig,
    #[serde(default)]
    pub receipt_print: ReceiptPrint,
    /// Log the cashier out after this many seconds without a key press;
    /// `None`: the SPEC default, 10 minutes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(minimum = 10, maximum = 86400))]
    pub logout_after_s: Option<u32>,
    /// A language tag such as `en` (default) or `yo`.
    #[serde(default = "default_language")]
    #[cfg_attr(feature = "openapi", schema(pattern = r"^[a-z][a-z-]{1,7}$"))]
    pub language: String,
}

fn default_language() -> String {
    "en".to_owned()
}

impl Default for SessionConfig {
    fn default() -> SessionConfig {
        SessionConfig {
            tips: TipsConfig::default(),
            receipt_print: ReceiptPrint::default(),
            logout_after_s: None,
            language: default_language(),
        }
    }
}

/// The configuration as stored and served: the settings, their version
/// (1 for the first `PUT`, 0 for a session never configured), and the
/// versions of the session's quick-sale catalog and of its operators: a
/// terminal refetches the catalog (`GET /v1/terminals/:tid/catalog`) or the
/// operators (`GET /v1/terminals/:tid/operators`) when one changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TerminalConfig {
    pub version: u64,
    #[serde(flatten)]
    pub settings: SessionConfig,
    /// The catalog's version, once the partner set one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalog_version: Option<u64>,
    /// One more each time an operator of the session is created, changed
    /// or deleted; absent while the session never had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operators_version: Option<u64>,
}

impl TerminalConfig {
    /// What a session that was never configured uses.
    pub fn unconfigured() -> TerminalConfig {
        TerminalConfig {
            version: 0,
            settings: SessionConfig::default(),
            catalog_version: None,
            operators_version: None,
        }
    }
}

/// Why a configuration was refused: the field and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ConfigError {
    pub field: &'static str,
    pub message: String,
}

fn refuse(field: &'static str, message: impl Into<String>) -> Result<(), ConfigError> {
    Err(ConfigError {
        field,
        message: message.into(),
    })
}

impl SessionConfig {
    /// Checks every field (the backend before storing, the terminal before
    /// keeping a configuration it received).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let tips = &self.tips;
        if let Some(p) = tips.percentages.iter().find(|p| !(1..=100).contains(*p)) {
            return refuse(
                "tips.percentages",
                format!("{p} is not a whole percentage from 1 to 100"),
            );
        }
        if tips.fixed.iter().any(|m| m.is_zero()) {
            return refuse("tips.fixed", "a fixed tip must be above 0.00");
        }
        let choices = tips.percentages.len() + tips.fixed.len() + usize::from(tips.custom);
        if choices > MAX_TIP_CHOICES {
            return refuse(
                "tips",
                format!("{choices} choices; at most {MAX_TIP_CHOICES} (keys 1 to 9)"),
            );
        }
        if tips.enabled && choices == 0 {
            return refuse("tips", "enabled without any choice");
        }
        if let Some(s) = self.logout_after_s {
            if !LOGOUT_AFTER_S.contains(&s) {
                return refuse(
                    "logout_after_s",
                    format!(
                        "{s} s; from {} to {} s, or left out for the default (600 s)",
                        LOGOUT_AFTER_S.start(),
                        LOGOUT_AFTER_S.end()
                    ),
                );
            }
        }
        let lang = self.language.as_str();
        let tag_ok = (2..=8).contains(&lang.len())
            && lang.starts_with(|c: char| c.is_ascii_lowercase())
            && lang.chars().all(|c| c.is_ascii_lowercase() || c == '-');
        if !tag_ok {
            return refuse(
                "language",
                "a language tag of 2 to 8 lowercase letters (e.g. en)",
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    use crate::wire::test_util::round_trip;

    #[test]
    fn config_on_the_wire() {
        let c: TerminalConfig = round_trip(json!({
            "version": 3,
            "tips": {"enabled": true, "percentages": [5, 10, 15], "fixed": ["500.00"], "custom": true},
            "receipt_print": "ask", "logout_after_s": 300, "language": "en",
            "catalog_version": 2, "operators_version": 5
        }));
        assert_eq!(c.version, 3);
        assert_eq!((c.catalog_version, c.operators_version), (Some(2), Some(5)));
        assert_eq!(c.settings.tips.fixed, [Money::parse("500.00").unwrap()]);
        assert_eq!(c.settings.receipt_print, ReceiptPrint::Ask);
        assert!(c.settings.validate().is_ok());
        // A minimal PUT body: everything defaults.
        let s: SessionConfig = serde_json::from_value(json!({})).unwrap();
        assert_eq!(s, SessionConfig::default());
        assert_eq!(s.language, "en");
        assert_eq!(s.receipt_print, ReceiptPrint::Auto);
        assert!(!s.tips.enabled);
        assert!(s.validate().is_ok());
        assert_eq!(
            serde_json::to_value(TerminalConfig::unconfigured()).unwrap(),
            json!({"version": 0, "tips": {"enabled": false, "percentages": [], "fixed": [], "custom": false},
                   "receipt_print": "auto", "language": "en"})
        );
    }

    #[test]
    fn bad_settings_are_refused_with_their_field() {
        let field = |v: serde_json::Value| {
            let s: SessionConfig = serde_json::from_value(v).unwrap();
            s.validate().map_err(|e| e.field)
        };
        assert_eq!(
            field(json!({"tips": {"enabled": true, "percentages": [0]}})),
            Err("tips.percentages")
        );
        assert_eq!(
            field(json!({"tips": {"percentages": [101]}})),
            Err("tips.percentages")
        );
        assert_eq!(
            field(json!({"tips": {"fixed": ["0.00"]}})),
            Err("tips.fixed")
        );
        assert_eq!(
            field(
                json!({"tips": {"enabled": true, "percentages": [1, 2, 3, 4, 5, 6, 7, 8], "fixed": ["1.00"], "custom": true}})
            ),
            Err("tips")
        );
        assert_eq!(field(json!({"tips": {"enabled": true}})), Err("tips"));
        assert_eq!(field(json!({"logout_after_s": 5})), Err("logout_after_s"));
        assert_eq!(field(json!({"language": "EN"})), Err("language"));
        assert_eq!(field(json!({"language": ""})), Err("language"));
        assert_eq!(
            field(
                json!({"tips": {"enabled": true, "percentages": [1, 2, 3, 4, 5, 6, 7, 8], "custom": true}})
            ),
            Ok(())
        );
        // A wrong type is a decoding error, not a silent default.
        assert!(
            serde_json::from_value::<SessionConfig>(json!({"receipt_print": "sometimes"})).is_err()
        );
    }
}
