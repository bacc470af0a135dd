//! `pulse-parse`: raw log lines in, NDJSON events out.
//!
//! Lines are parsed in chunks across worker threads ([`crate::io::pipeline`]) and written in
//! input order to locked, block-buffered stdout. Unparsed lines, wrong Logplex frame counts
//! and overlong lines are reported once (with file and line number), counted, and summarised
//! at exit; `--strict` makes the first one fatal. An input that cannot be read is reported
//! with its path and the others are parsed; the exit status is then 1.

use std::io::Write;
use std::path::PathBuf;

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{CommandFactory, Parser as ClapParser};

use crate::error::{Diag, Error, Result, EXIT_FAILURE, EXIT_OK};
use crate::io::input::{open_all, Kind, MAX_LINE};
use crate::io::pipeline::{self, Step};
use crate::io::pool::Pool;
use crate::io::progress::Progress;
use crate::parse::{
    join_continuations, parse_chunk_into, parse_chunk_multiline, write_continuation, Format,
    Options, Parser,
};

const TOOL: &str = "pulse-parse";

/// `--tz` as minutes east of UTC.
pub fn tz_parser(s: &str) -> std::result::Result<i32, String> {
    crate::parse::stamp::parse_tz(s)
}

fn format_parser() -> impl TypedValueParser<Value = Format> {
    let names: Vec<&'static str> = Format::ALL.iter().map(|(_, n)| *n).collect();
    PossibleValuesParser::new(names).try_map(|s| s.parse::<Format>())
}

/// Turn raw log lines into NDJSON events.
///
/// Reads each FILE (or stdin when none is given, or for `-`; gzip is decompressed),
/// recognises every line's format (original Pulse syslog, RFC 5424, Logplex drain frames,
/// `heroku logs`, RFC 3164 and rsyslog files, logfmt, Apache/nginx access logs, JSON and
/// journald, container runtime lines, application logs) and writes one JSON object per
/// event: the line's envelope (time, host, source, ps, level, ...) plus the key=value
/// attributes of its message. A line no format matches becomes {"line": "...", "unparsed":
/// true}; a stack trace's line {"line": "...", "continuation": true}; a blank line nothing.
#[derive(ClapParser, Debug, Clone)]
#[command(name = "pulse-parse", version, max_term_width = 100)]
pub struct Args {
    /// Parse every line as this format instead of detecting it per line.
    #[arg(long, value_name = "NAME", default_value = "auto", value_parser = format_parser())]
    pub format: Format,

    /// Year of timestamps that carry none (BSD syslog, logcat, Redis, klog) [default: the
    /// year that puts each nearest to, and not after, the file's modification time, or the
    /// clock for a stream].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i32).range(0..=9999))]
    pub year: Option<i32>,

    /// Zone of timestamps written without one: UTC, an offset (+02:00, -0500) or a fixed
    /// zone abbreviation (CET, EST, ...).
    #[arg(long, value_name = "ZONE", default_value = "UTC", value_parser = tz_parser)]
    pub tz: i32,
    /// Patterns file: fields from message text by named-capture regexes, key=value pairs
    /// anywhere, custom line formats (repeatable; see pulse.patterns(5)).
    #[arg(long, value_name = "FILE")]
    pub patterns: Vec<PathBuf>,

    /// Stop with status 1 at the first unparsed line or wrong frame count (an overlong line:
    /// at the end of its file).
    #[arg(long)]
    pub strict: bool,

    /// Join continuation lines (indented lines, `Caused by:`, `... N more`, a Java
    /// exception line) to the `msg` of the record before them, after a newline, instead of
    /// writing each as a {"line": ..., "continuation": true} record.
    #[arg(long)]
    pub multiline: bool,

    /// Worker threads [default: all cores].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub threads: Option<u32>,

    /// Flush each line as it is written (a stream input is flushed whenever it has nothing
    /// more ready anyway).
    #[arg(long)]
    pub line_buffered: bool,

    /// Files to read; `-` is stdin. None: stdin.
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

/// The clap command (for tests and man page checks).
pub fn command() -> clap::Command {
    Args::command()
}

pub fn main() -> ! {
    let args = Args::try_parse().unwrap_or_else(|e| e.exit());
    crate::error::exit_with(TOOL, run(&args))
}

/// Run with real stdio.
pub fn run(args: &Args) -> Result<i32> {
    let mut out = crate::io::output::stdout(args.line_buffered);
    let mut diag = Diag::new(TOOL, args.strict);
    run_to(args, &mut out, &mut diag)
}

/// Per-input position for messages.
struct Position {
    input: usize,
    line: u64,
}

/// Run, writing to `out` and reporting to `diag`.
pub fn run_to(args: &Args, out: &mut dyn Write, diag: &mut Diag) -> Result<i32> {
    let patterns = crate::pattern::Patterns::load(&args.patterns)?;
    let inputs = open_all(&args.files, Kind::Lines);
    let names: Vec<String> = inputs.iter().map(|i| i.name.clone()).collect();
    // A stream (pipe, socket, terminal) is flushed after each chunk: a chunk is whatever
    // the stream had ready, so a live stream's records go on at once, and a fast one's in
    // chunk-sized writes.
    let live = inputs.iter().any(|i| i.len.is_none());
    let total = inputs
        .iter()
        .map(|i| i.len)
        .try_fold(0u64, |acc, l| l.map(|l| acc + l));
    let progress = if args.files.is_empty() {
        Progress::hidden()
    } else {
        Progress::new(total)
    };
    let mut opts = Options::new(args.format, args.year, args.tz);
    opts.multiline = args.multiline;
    let references: Vec<Option<i64>> = inputs.iter().map(|i| i.mtime).collect();
    let threads = args.threads.map(|t| t as usize).unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    let mut pos = Position { input: 0, line: 0 };
    // On a stream, SIGINT and SIGTERM end the run as its end would: nothing more is read,
    // and everything read is written (a second signal, half a second or more later, ends it
    // at once).
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    if live {
        crate::io::signals::stop_on_signal(&stop)?;
    }
    let stopped = || stop.load(std::sync::atomic::Ordering::Relaxed);
    // Chunks circulate reader → worker → reader, outputs worker → writer → worker.
    let chunks = Pool::new(pipeline::in_flight(threads) + 1);
    let outputs = Pool::new(pipeline::in_flight(threads) + 1);
    let mut held: Option<Vec<u8>> = None;
    let result = pipeline::run(
        inputs,
        threads,
        live.then(|| pipeline::Live {
            tick: std::time::Duration::from_millis(200),
            stop: Some(&stop),
        }),
        &chunks,
        || Parser::new(opts).with_patterns(patterns.clone()),
        |parser: &mut Parser, input: usize, chunk: Vec<u8>| {
            parser.set_reference(references[input].unwrap_or_else(crate::parse::stamp::now));
            let parsed = if opts.multiline {
                parse_chunk_multiline(parser, &chunk, outputs.take(0))
            } else {
                parse_chunk_into(parser, &chunk, outputs.take(0))
            };
            chunks.give(chunk);
            parsed
        },
        |step| {
            // --multiline: at the end of an input, or while a stream is quiet, the record
            // held for continuation lines is complete.
            let complete = match step {
                Step::End { .. } => true,
                Step::Tick { .. } => live,
                Step::Chunk { .. } => false,
            };
            if complete {
                if let Some(h) = held.take() {
                    out.write_all(&h)
                        .and_then(|_| out.flush())
                        .map_err(|e| Error::io("stdout", e))?;
                }
            }
            match step {
                Step::Chunk {
                    input,
                    bytes,
                    out: mut chunk,
                } => {
                    if input != pos.input {
                        pos = Position { input, line: 0 };
                    }
                    let name = &names[input];
                    let base = pos.line;
                    let written = (chunk.issues)
                        .report(diag, |line| format!("{name}: line {}", base + line + 1))
                        .map_err(|e| {
                            // The line that stopped the run (reported in this order).
                            let i = &chunk.issues;
                            let first = i.first_bad_frame.as_ref().or(i.first_unparsed.as_ref());
                            (e, first.map(|i| i.out_offset))
                        });
                    // --multiline: the record held from the chunk before takes this chunk's
                    // leading continuation lines; this chunk's last record is held in turn.
                    if opts.multiline {
                        let mut head = Vec::new();
                        match held.take() {
                            Some(h) if !chunk.leading.is_empty() => {
                                join_continuations(&h[..h.len() - 1], &chunk.leading, &mut head);
                                head.push(b'\n');
                            }
                            Some(h) => head = h,
                            None => {
                                for l in &chunk.leading {
                                    write_continuation(l, &mut head);
                                }
                            }
                        }
                        out.write_all(&head).map_err(|e| Error::io("stdout", e))?;
                        if let Some(t) = chunk.tail.filter(|_| written.is_ok()) {
                            held = Some(chunk.out[t..].to_vec());
                            chunk.out.truncate(t);
                        }
                    }
                    match written {
                        Ok(()) => out
                            .write_all(&chunk.out)
                            .and_then(|_| {
                                if live && held.is_none() {
                                    out.flush()
                                } else {
                                    Ok(())
                                }
                            })
                            .map_err(|e| Error::io("stdout", e))?,
                        Err((e, offset)) => {
                            let keep = offset.unwrap_or(0);
                            out.write_all(&chunk.out[..keep])
                                .and_then(|_| out.flush())
                                .map_err(|e| Error::io("stdout", e))?;
                            return Err(e);
                        }
                    }
                    pos.line += chunk.lines;
                    progress.inc(bytes as u64);
                    outputs.give(chunk.out);
                }
                Step::End {
                    input,
                    name,
                    overlong,
                    first_overlong,
                    error,
                } => {
                    if let Some(e) = error {
                        diag.input_failed(e)?;
                    }
                    if overlong > 0 {
                        let at = match first_overlong {
                            Some(line) => format!("{name}: line {line}"),
                            None => name,
                        };
                        diag.bad(
                            "overlong",
                            &at,
                            &format!("line longer than {} bytes cut to that length", MAX_LINE),
                        )?;
                        diag.count("overlong", overlong - 1);
                    }
                    if input + 1 < names.len() {
                        pos = Position {
                            input: input + 1,
                            line: 0,
                        };
                    }
                }
                // Stopped, and everything read is written; the reader may be blocked on a
                // stream that stays open: end here.
                Step::Tick { idle: true } if stopped() => {
                    out.flush().map_err(|e| Error::io("stdout", e))?;
                    progress.finish();
                    diag.finish();
                    std::process::exit(if diag.failed() { EXIT_FAILURE } else { EXIT_OK });
                }
                Step::Tick { .. } => {}
            }
            Ok(())
        },
    );
    progress.finish();
    let flushed = out.flush().map_err(|e| Error::io("stdout", e));
    result?;
    flushed?;
    diag.finish();
    Ok(if diag.failed() { EXIT_FAILURE } else { EXIT_OK })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clap_definition_is_valid() {
        command().debug_assert();
    }

    fn args(list: &[&str]) -> Args {
        Args::try_parse_from(std::iter::once("pulse-parse").chain(list.iter().copied())).unwrap()
    }

    #[test]
    fn flags_parse() {
        let a = args(&[
            "--format",
            "rfc3164",
            "--year",
            "2019",
            "--threads",
            "2",
            "x.log",
        ]);
        assert_eq!(a.format, Format::Rfc3164);
        assert_eq!(a.year, Some(2019));
        assert_eq!(a.threads, Some(2));
        assert_eq!(args(&[]).format, Format::Auto);
        let err = Args::try_parse_from(["pulse-parse", "--format", "xml"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
    }

    #[test]
    fn strict_stops_at_the_first_unparsed_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.log");
        std::fs::write(&path, "a=1\nnot logfmt at all\nb=2\n").unwrap();
        let p = path.to_str().unwrap();
        let mut out = Vec::new();
        let mut diag = Diag::new(TOOL, true).quiet();
        let err = run_to(
            &args(&["--strict", "--threads", "1", p]),
            &mut out,
            &mut diag,
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("in.log: line 2: unparsed"),
            "{err}"
        );
        assert_eq!(String::from_utf8(out).unwrap(), "{\"a\":1}\n");
        let mut out = Vec::new();
        let mut diag = Diag::new(TOOL, false).quiet();
        assert_eq!(run_to(&args(&[p, p]), &mut out, &mut diag).unwrap(), 0);
        assert_eq!(diag.total("unparsed"), 2);
        assert_eq!(out.iter().filter(|&&c| c == b'\n').count(), 6);
    }
}
