//! Quick-sale catalogs (SPEC 7.6): the partner's `PUT`, what a terminal of
//! the session is served.

use proto::wire::{Catalog, PutCatalog};
use proto::{SessionId, TerminalId};

use crate::error::ApiErr;

use super::{State, kind};

impl State {
    /// Stores `put` as the session's catalog, one version above the last
    /// (so the terminals' configuration shows a new `catalog_version`).
    pub fn put_catalog(&mut self, sid: &SessionId, put: PutCatalog) -> Result<Catalog, ApiErr> {
        self.known_session(sid)?;
        put.validate()
            .map_err(|e| ApiErr::unprocessable("invalid_catalog", e.to_string()))?;
        let catalog = Catalog {
            version: self.catalogs.get(sid).map_or(0, |c| c.version) + 1,
            items: put.items,
        };
        self.catalogs.insert(sid.clone(), catalog.clone());
        self.dirty(kind::CATALOG, sid.as_str());
        Ok(catalog)
    }

    /// The session's catalog (version 0 and no items when never set).
    pub fn session_catalog(&self, sid: &SessionId) -> Catalog {
        self.catalogs
            .get(sid)
            .cloned()
            .unwrap_or_else(Catalog::empty)
    }

    /// The catalog of the session terminal `tid` belongs to.
    pub fn terminal_catalog(&self, tid: &TerminalId) -> Result<Catalog, ApiErr> {
        let sid = &self.terminal(tid)?.session_id;
        Ok(self.session_catalog(sid))
    }
}
