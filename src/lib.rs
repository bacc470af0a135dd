//! Pulse: turn log streams into metrics as a set of Unix filters.
//!
//! ```text
//! raw log lines ─ pulse-parse ─▶ events ─ pulse-fragment ─▶ fragments ─ pulse-merge ─▶ snapshots ─ pulse-emit ─▶ sinks
//! ```
//!
//! Every stage reads and writes newline-delimited JSON; the records are documented in
//! [`record`]. Each binary in `src/bin/` is a thin call into [`cli`].
//!
//! The library is usable on its own. Parse a log line into an event:
//!
//! ```
//! use pulse::parse::{Options, Parser};
//!
//! let mut parser = Parser::new(Options::default());
//! let line = br#"2010-10-06T21:51:37-07:00 heroku[router]: at=error code=H12 desc="Request timeout" status=503 service=30001ms"#;
//! let mut json = Vec::new();
//! parser.parse_line(line, &mut |event| event.write_json(&mut json));
//! let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
//! assert_eq!(v["source"], "heroku");
//! assert_eq!(v["ps"], "router");
//! assert_eq!(v["code"], "H12");
//! assert_eq!(v["status"], 503);
//! assert_eq!(v["service"], "30001ms");
//! ```
//!
//! Aggregates merge exactly, so partial states from anywhere combine into the whole:
//!
//! ```
//! use pulse::stat::{AggSpec, Input, State};
//!
//! let spec: AggSpec = "summary".parse().unwrap();
//! let (mut a, mut b, mut whole) = (State::new(&spec), State::new(&spec), State::new(&spec));
//! for (i, x) in [37.0, 12.0, 250.0, 8.0].into_iter().enumerate() {
//!     whole.add(Input::Num(x));
//!     if i % 2 == 0 { a.add(Input::Num(x)) } else { b.add(Input::Num(x)) }
//! }
//! a.merge(&b).unwrap();
//! assert_eq!(a, whole);
//! ```

pub mod alert;
pub mod cli;
pub mod clock;
pub mod error;
pub mod find;
pub mod fragment;
pub mod io;
pub mod merge;
pub mod parse;
pub mod pattern;
pub mod record;
pub mod shard;
pub mod sink;
pub mod spec;
pub mod stat;
pub mod time;
pub mod web;
