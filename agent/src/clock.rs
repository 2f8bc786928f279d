//! The agent's two clocks, from one monotonic origin taken at boot: wall
//! time for timestamps, monotonic time for timeouts. The core has no clock
//! of its own; the shell reads this one and passes `Now` in.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

use crate::core::{Millis, Now, UnixMillis};

/// Both clocks, from one monotonic origin taken at boot.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    boot: Instant,
    /// The wall clock at boot, for [`Clock::steady_ms`].
    boot_wall_ms: i64,
    /// Added to the system's wall clock: 0 in service; tests set it to play
    /// a terminal whose clock is wrong (see [`Clock::with_wall_offset_ms`]).
    wall_offset_ms: i64,
}

impl Clock {
    pub fn new() -> Clock {
        Clock {
            boot: Instant::now(),
            boot_wall_ms: system_ms(),
            wall_offset_ms: 0,
        }
    }

    /// This clock with its wall time shifted by `ms` (negative: behind).
    /// Monotonic time is unchanged. For tests of a skewed terminal clock.
    pub fn with_wall_offset_ms(self, ms: i64) -> Clock {
        Clock {
            wall_offset_ms: ms,
            ..self
        }
    }

    /// Wall-clock milliseconds since the epoch (timestamps only).
    pub fn wall_ms(&self) -> i64 {
        system_ms().saturating_add(self.wall_offset_ms)
    }

    /// Milliseconds on the epoch scale that move with the monotonic clock:
    /// the wall clock at boot plus the monotonic time since. A wall-clock
    /// step after boot changes nothing. For schedules (outbox retries).
    pub fn steady_ms(&self) -> i64 {
        let since = i64::try_from(self.boot.elapsed().as_millis()).unwrap_or(i64::MAX);
        self.boot_wall_ms
            .saturating_add(self.wall_offset_ms)
            .saturating_add(since)
    }

    /// Monotonic milliseconds since boot (timeouts only).
    pub fn mono(&self) -> Millis {
        Millis(u64::try_from(self.boot.elapsed().as_millis()).unwrap_or(u64::MAX))
    }

    pub fn now(&self) -> Now {
        Now::new(self.mono(), UnixMillis(self.wall_ms()))
    }

    /// The instant of a core deadline.
    pub fn instant(&self, m: Millis) -> Instant {
        self.boot + Duration::from_millis(m.0)
    }
}

fn system_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .ok()
        .and_then(|d| i64::try_from(d.as_millis()).ok())
        .unwrap_or(0)
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}
