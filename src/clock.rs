//! Wall-clock time, injectable for tests.

use std::time::{SystemTime, UNIX_EPOCH};

/// Where "now" comes from: the system clock, or a fixed instant (tests, `--now`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Clock {
    System,
    Fixed(f64),
}

impl Clock {
    /// Unix seconds now.
    pub fn now(&self) -> f64 {
        match *self {
            Clock::System => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs_f64())
                .unwrap_or(0.0),
            Clock::Fixed(t) => t,
        }
    }

    pub fn is_fixed(&self) -> bool {
        matches!(self, Clock::Fixed(_))
    }
}
