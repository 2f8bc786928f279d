//! Session configuration for terminals (SPEC 7.6): the partner's `PUT`,
//! what a terminal of the session is served.

use proto::wire::{SessionConfig, TerminalConfig};
use proto::{SessionId, TerminalId};

use crate::error::ApiErr;

use super::{State, kind};

impl State {
    /// Stores `settings` as the session's configuration, one version above
    /// the last; the catalog version is kept.
    pub fn put_config(
        &mut self,
        sid: &SessionId,
        settings: SessionConfig,
    ) -> Result<TerminalConfig, ApiErr> {
        if !self.sessions.contains_key(sid) {
            return Err(ApiErr::not_found("session", sid.as_str()));
        }
        settings
            .validate()
            .map_err(|e| ApiErr::unprocessable("invalid_config", e.to_string()))?;
        let last = self.configs.get(sid);
        let config = TerminalConfig {
            version: last.map_or(0, |c| c.version) + 1,
            settings,
            catalog_version: last.and_then(|c| c.catalog_version),
            operators_version: last.and_then(|c| c.operators_version),
        };
        self.configs.insert(sid.clone(), config.clone());
        self.dirty(kind::CONFIG, sid.as_str());
        Ok(config)
    }

    /// The configuration a session's terminals use (version 0 when the
    /// partner never set one).
    pub fn session_config(&self, sid: &SessionId) -> TerminalConfig {
        self.configs
            .get(sid)
            .cloned()
            .unwrap_or_else(TerminalConfig::unconfigured)
    }

    /// The configuration of the session terminal `tid` belongs to.
    pub fn terminal_config(&self, tid: &TerminalId) -> Result<TerminalConfig, ApiErr> {
        let sid = &self.terminal(tid)?.session_id;
        Ok(self.session_config(sid))
    }
}
