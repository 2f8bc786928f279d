//! Bounded, readiness-driven waiting: poll a condition at a short interval
//! until a deadline. Never a fixed sleep used as synchronisation: every
//! loop ends as soon as the condition holds, and fails with what it last saw
//! when the deadline passes.

use std::time::Duration;

use tokio::time::Instant;

use crate::error::{HarnessError, Result};

/// The interval between two looks at a condition.
pub const POLL_INTERVAL: Duration = Duration::from_millis(15);

/// A deadline for one wait.
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    start: Instant,
    end: Instant,
}

impl Deadline {
    pub fn after(timeout: Duration) -> Deadline {
        let start = Instant::now();
        Deadline {
            start,
            end: start + timeout,
        }
    }

    /// Waits one poll interval, or fails with [`HarnessError::Timeout`]
    /// (naming `what` and the `last` thing seen) when the deadline passed.
    pub async fn tick(&self, what: &str, last: impl FnOnce() -> String) -> Result<()> {
        if Instant::now() >= self.end {
            return Err(HarnessError::Timeout {
                what: what.to_owned(),
                waited: self.start.elapsed(),
                last: last(),
            });
        }
        tokio::time::sleep(POLL_INTERVAL).await;
        Ok(())
    }
}
