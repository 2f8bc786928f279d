//! Sandbox controls: armed scenarios per terminal and the full reset.

use proto::TerminalId;
use proto::wire::Scenario;

use crate::error::ApiErr;

use super::{ScenarioRec, State, kind};

impl State {
    pub fn reset(&mut self) {
        *self = State::default();
        self.effects.cleared = true;
        self.effects.payments_changed = true;
    }

    /// Takes the next scenario armed for this terminal, if any.
    pub fn take_scenario(&mut self, tid: &TerminalId) -> Option<Scenario> {
        let rec = self.scenarios.get_mut(tid)?;
        let s = rec.scenario;
        rec.remaining = rec.remaining.saturating_sub(1);
        if rec.remaining == 0 {
            self.scenarios.remove(tid);
        }
        self.dirty(kind::SCENARIO, tid.as_str());
        Some(s)
    }

    pub fn set_scenario(
        &mut self,
        tid: &TerminalId,
        scenario: Scenario,
        count: u32,
    ) -> Result<(), ApiErr> {
        self.terminal(tid)?;
        if count == 0 {
            self.scenarios.remove(tid);
        } else {
            self.scenarios.insert(
                tid.clone(),
                ScenarioRec {
                    terminal_id: tid.clone(),
                    scenario,
                    remaining: count,
                },
            );
        }
        self.dirty(kind::SCENARIO, tid.as_str());
        Ok(())
    }
}
