//! Session configuration for terminals (SPEC 7.6): the partner's `PUT`,
//! what a terminal of the session is served, with the versions of the
//! session's catalog and operators.

use proto::wire::{SessionConfig, TerminalConfig};
use proto::{SessionId, TerminalId};

use crate::error::ApiErr;

use super::{State, kind};

impl State {
    /// Stores `settings` as the session's configuration, one version above
    /// the last; answers it as served (with the catalog and operators
    /// versions).
    pub fn put_config(
        &mut self,
        sid: &SessionId,
        settings: SessionConfig,
    ) -> Result<TerminalConfig, ApiErr> {
        self.known_session(sid)?;
        settings
            .validate()
            .map_err(|e| ApiErr::unprocessable("invalid_config", e.to_string()))?;
        // Only the settings and their version are stored: the other
        // versions are the catalog's and the operators' own.
        let config = TerminalConfig {
            version: self.configs.get(sid).map_or(0, |c| c.version) + 1,
            settings,
            catalog_version: None,
            operators_version: None,
        };
        self.configs.insert(sid.clone(), config);
        self.dirty(kind::CONFIG, sid.as_str());
        Ok(self.session_config(sid))
    }

    /// The configuration a session's terminals use (version 0 when the
    /// partner never set one), with the version of the session's catalog
    /// (once set) and of its operators (once it had one).
    pub fn session_config(&self, sid: &SessionId) -> TerminalConfig {
        let mut c = self
            .configs
            .get(sid)
            .cloned()
            .unwrap_or_else(TerminalConfig::unconfigured);
        c.catalog_version = self.catalogs.get(sid).map(|c| c.version);
        c.operators_version = self.operators_versions.get(sid).copied();
        c
    }

    /// The configuration of the session terminal `tid` belongs to.
    pub fn terminal_config(&self, tid: &TerminalId) -> Result<TerminalConfig, ApiErr> {
        let sid = &self.terminal(tid)?.session_id;
        Ok(self.session_config(sid))
    }

    /// An operator of `sid` was created, changed or deleted: the terminals
    /// see a new `operators_version` and fetch the list again.
    pub(super) fn operators_changed(&mut self, sid: &SessionId) {
        *self.operators_versions.entry(sid.clone()).or_insert(0) += 1;
        self.dirty(kind::OPERATORS_VERSION, sid.as_str());
    }
}
