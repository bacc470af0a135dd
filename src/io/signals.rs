//! SIGINT and SIGTERM as a request to stop: the first sets a flag the tool acts on (it ends
//! as at the end of its input); a second, at least [`FORCE_AFTER`] later, exits at once
//! with status 130.
//!
//! The pause matters because one stop often arrives twice: a supervisor or `timeout` may
//! signal the process and its process group, and a Ctrl-C reaches every stage of a pipeline
//! while `kill` may follow. Two signals that close together are one request.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, Result};

/// How long after the first signal a second one forces the exit.
pub const FORCE_AFTER: Duration = Duration::from_millis(500);

/// Milliseconds of the monotonic clock at the first signal (0: none yet).
static FIRST: AtomicU64 = AtomicU64::new(0);

/// The monotonic clock in milliseconds (at least 1), read with `clock_gettime`, which is
/// async-signal-safe.
fn monotonic_ms() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64 * 1000 + ts.tv_nsec as u64 / 1_000_000).max(1)
}

/// Set `stop` on the first SIGINT or SIGTERM; exit with status 130 on one that comes at
/// least [`FORCE_AFTER`] after it.
pub fn stop_on_signal(stop: &Arc<AtomicBool>) -> Result<()> {
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        let stop = Arc::clone(stop);
        let action = move || {
            let now = monotonic_ms();
            match FIRST.compare_exchange(0, now, Ordering::SeqCst, Ordering::SeqCst) {
                Ok(_) => stop.store(true, Ordering::SeqCst),
                Err(first) => {
                    if now.saturating_sub(first) >= FORCE_AFTER.as_millis() as u64 {
                        signal_hook::low_level::exit(130);
                    }
                }
            }
        };
        // SAFETY: the action only touches atomics, reads the monotonic clock and calls
        // `_exit`, all async-signal-safe; it neither allocates nor locks.
        unsafe { signal_hook::low_level::register(sig, action) }
            .map_err(|e| Error::Runtime(format!("cannot handle signals: {e}")))?;
    }
    Ok(())
}
