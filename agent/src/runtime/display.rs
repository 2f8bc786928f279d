//! The display task: owns the panel and shows, in order, every frame the
//! core loop sends (the `ui` screen and its semantic state for the virtual
//! device's `/screen`). Drawing and flushing (an SPI transfer can take tens
//! of milliseconds) never hold up the core loop. `READY=1` goes to systemd
//! once the first screen other than "booting" is on the panel.

use hal::Display;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::task::{RunError, Task};

/// How many frames may wait for the panel before the core loop waits.
pub const FRAME_QUEUE: usize = 16;

/// One screen to show.
#[derive(Debug)]
pub struct Frame {
    pub screen: ui::Screen,
    pub state: ui::ScreenState,
}

pub struct DisplayTask<D> {
    pub display: D,
    pub frames: mpsc::Receiver<Frame>,
    pub all: CancellationToken,
}

impl<D: Display + 'static> Task for DisplayTask<D> {
    const NAME: &'static str = "display";

    fn run(self) -> impl Future<Output = Result<(), RunError>> + Send {
        display_task(self)
    }
}

async fn display_task<D: Display>(task: DisplayTask<D>) -> Result<(), RunError> {
    let DisplayTask {
        mut display,
        mut frames,
        all,
    } = task;
    let mut ready = false;
    loop {
        let frame = tokio::select! {
            f = frames.recv() => match f {
                Some(f) => f,
                None => return Ok(()),
            },
            _ = all.cancelled() => return Ok(()),
        };
        if let Err(e) = ui::render(&frame.screen, &mut display) {
            tracing::error!(error = %e, "cannot draw the screen");
        }
        display.set_state(&frame.state);
        if let Err(e) = display.flush().await {
            tracing::error!(error = %e, "cannot show the screen on the display");
        }
        if !ready && frame.screen.name() != ui::ScreenName::Booting {
            ready = true;
            super::notify::ready();
        }
    }
}
