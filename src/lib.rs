//! Pulse: turn log streams into metrics as a set of Unix filters.
//!
//! ```text
//! raw log lines ─ pulse-parse ─▶ events ─ pulse-fragment ─▶ fragments ─ pulse-merge ─▶ snapshots ─ pulse-emit ─▶ sinks
//! ```
//!
//! Every stage reads and writes newline-delimited JSON; the records are documented in
//! [`record`]. Each binary in `src/bin/` is a thin call into [`cli`].

pub mod cli;
pub mod error;
pub mod io;
pub mod parse;
pub mod record;
pub mod spec;
pub mod stat;
pub mod time;
