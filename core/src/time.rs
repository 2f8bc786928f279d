//! The core's notion of time: a monotonic clock for timeouts and a wall
//! clock for timestamps, both passed in by the shell (the core has no clock).

/// Monotonic milliseconds since the agent started. Timeouts are measured on
/// this clock only; it never goes backwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Millis(pub u64);

impl Millis {
    /// `self + ms`, saturating at the end of time.
    pub fn after(self, ms: u64) -> Millis {
        Millis(self.0.saturating_add(ms))
    }
}

/// Wall-clock time in milliseconds since the Unix epoch (UTC). Used for
/// timestamps (`captured_at`, payment events, `expires_at`, the age of
/// queued offline payments), never for timeouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct UnixMillis(pub i64);

/// Both clocks at the moment an input is handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    pub mono: Millis,
    pub wall: UnixMillis,
}

impl Now {
    pub fn new(mono: Millis, wall: UnixMillis) -> Now {
        Now { mono, wall }
    }
}
