//! Helpers shared by the test modules.

use hal::{Display, DisplayError};

/// Draws `screen`, records its semantic state, and flushes: what the agent
/// does for every screen change.
pub async fn show<D: Display>(display: &mut D, screen: &ui::Screen) -> Result<(), DisplayError> {
    ui::render(screen, display)?;
    display.set_state(&screen.state());
    display.flush().await
}
