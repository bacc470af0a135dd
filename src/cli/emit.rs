//! `pulse-emit`: deliver snapshots to Graphite, HTTP endpoints, or stdout.
//!
//! Three ways to run, chosen by the command line:
//!
//! - **stream** (stdin, or `-` among the inputs): snapshots are collapsed to the latest per
//!   stat, key and window and flushed to the sinks every `--flush-interval` seconds and at end
//!   of input. A sink that fails keeps its batch and is retried with backoff (1 s up to 60 s)
//!   while the stream goes on; at end of input a sink that still fails ends the run with
//!   status 1.
//! - **batch** (only files): everything is read, collapsed, then sent once.
//! - **cron** (`--state FILE` with files): like batch, but only what was appended since the
//!   last run is read, and the checkpoint advances only once every sink accepted it (see
//!   [`crate::sink::state`]).
//!
//! `csv` and `table` on stdout are always written once, at the end.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{CommandFactory, Parser};

use crate::error::{exit_with, Diag, Error, Result, EXIT_FAILURE, EXIT_OK};
use crate::io::input::{open_all, Kind};
use crate::io::lines::lines;
use crate::io::progress::Progress;
use crate::record::Snapshot;
use crate::sink::graphite::{parse_addr, Graphite};
use crate::sink::http::{Http, Target};
use crate::sink::state::{self, State};
use crate::sink::text::{Format, Text};
use crate::sink::{parse_snapshot, Backoff, Latest, Sink};

const TOOL: &str = "pulse-emit";

/// How many times a network sink tries one batch before reporting failure.
const TRIES: u32 = 3;

const AFTER_HELP: &str = "\
Modes: reading stdin (no INPUT, or -) streams: batches are flushed every --flush-interval
seconds. Reading only files sends everything once at the end. --state FILE reads only what
was appended since the last run and advances its checkpoint once every sink accepted it.

Examples:
  pulse-merge | pulse-emit --graphite graphite:2003 --prefix pulse
  pulse-emit -f csv day.ndjson | psql -c \"\\copy metrics FROM STDIN CSV HEADER\"
A crontab line, sending each minute what was appended since the last run:
  * * * * * pulse-emit --state emit.state --graphite graphite:2003 snaps.ndjson";

/// Deliver snapshots (NDJSON from pulse-merge) to Graphite, HTTP endpoints, or stdout.
#[derive(Parser, Debug)]
#[command(name = TOOL, version, after_help = AFTER_HELP)]
pub struct Args {
    /// Snapshot files (NDJSON); none, or `-`, reads stdin.
    #[arg(value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,

    /// Write to stdout in this format. Default: table, unless --graphite or --metrics-url is
    /// given (then nothing is written to stdout unless asked).
    #[arg(long, short = 'f', value_enum, value_name = "FORMAT")]
    pub format: Option<Format>,

    /// Send to Graphite's plaintext port (host:port or tcp://host:port; port defaults to
    /// 2003).
    #[arg(long, env = "GRAPHITE_URL", value_name = "HOST:PORT")]
    pub graphite: Option<String>,

    /// Prefix for Graphite paths (e.g. pulse.prod); used by --graphite and --format graphite.
    #[arg(
        long,
        env = "GRAPHITE_PREFIX",
        value_name = "PREFIX",
        default_value = ""
    )]
    pub prefix: String,

    /// POST the original Pulse JSON body to this URL (repeatable; user:password@ in the URL
    /// is sent as basic auth). The environment variable takes a comma-separated list.
    #[arg(
        long = "metrics-url",
        env = "METRICS_URLS",
        value_delimiter = ',',
        hide_env_values = true,
        value_name = "URL"
    )]
    pub metrics_urls: Vec<String>,

    /// Checkpoint file for runs from cron: read only what was appended to the INPUT files
    /// since the last run, and advance it once the sinks accepted the data.
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,

    /// When streaming from stdin, send what arrived every this many seconds.
    #[arg(long, value_name = "SECS", default_value = "1")]
    pub flush_interval: f64,

    /// Stop at the first line that is not a snapshot (exit status 1).
    #[arg(long)]
    pub strict: bool,
}

/// The clap command (for `--help`, man page and tests).
pub fn command() -> clap::Command {
    Args::command()
}

pub fn main() -> ! {
    let args = Args::parse();
    exit_with(TOOL, run(args))
}

/// One sink and what it has not yet accepted.
struct Outlet {
    sink: Box<dyn Sink>,
    pending: Latest,
    /// Set while the sink is failing: when to try again.
    retry_at: Option<Instant>,
    backoff: Backoff,
}

/// Collapses incoming snapshots and hands them to the outlets.
struct Emitter {
    outlets: Vec<Outlet>,
    diag: Diag,
}

impl Emitter {
    fn line(&mut self, label: &str, n: u64, line: &[u8]) -> Result<()> {
        if line.iter().all(u8::is_ascii_whitespace) {
            return Ok(());
        }
        match parse_snapshot(line) {
            Ok(snap) => {
                self.add(snap);
                Ok(())
            }
            Err(msg) => self
                .diag
                .bad("invalid", &format!("{label}: line {n}"), &msg),
        }
    }

    fn add(&mut self, snap: Snapshot) {
        if let Some((last, rest)) = self.outlets.split_last_mut() {
            for o in rest {
                o.pending.insert(snap.clone());
            }
            last.pending.insert(snap);
        }
    }

    /// Send pending batches of the streaming sinks whose retry time has come. Failures are
    /// reported once per streak and retried later; a closed stdout ends the run.
    fn flush(&mut self, now: Instant) -> Result<()> {
        for o in &mut self.outlets {
            if o.sink.at_end_only() || o.pending.is_empty() || o.retry_at.is_some_and(|t| now < t) {
                continue;
            }
            let batch = o.pending.drain();
            match o.sink.send(&batch) {
                Ok(()) => {
                    if o.retry_at.take().is_some() {
                        crate::error::warn(TOOL, &format!("{}: delivering again", o.sink.name()));
                    }
                    o.backoff.reset();
                }
                Err(e) if e.is_broken_pipe() => return Err(e),
                Err(e) => {
                    let delay = o.backoff.next_delay();
                    if o.retry_at.is_none() {
                        eprintln!(
                            "{TOOL}: {e}; keeping {} snapshots, retrying in the background",
                            batch.len()
                        );
                    }
                    o.retry_at = Some(Instant::now() + delay);
                    o.pending.restore(batch);
                }
            }
        }
        Ok(())
    }

    /// Send everything still pending to every sink. Every sink is tried; the first failure
    /// is returned (the others are printed).
    fn finish(&mut self, what_next: &str) -> Result<()> {
        let mut failure: Option<Error> = None;
        for o in &mut self.outlets {
            if o.pending.is_empty() && !o.sink.at_end_only() {
                continue;
            }
            let batch = o.pending.drain();
            if let Err(e) = o.sink.send(&batch) {
                if e.is_broken_pipe() {
                    return Err(e);
                }
                let e = Error::Runtime(format!("{e}{what_next}"));
                if let Some(prev) = failure.replace(e) {
                    crate::error::warn(TOOL, &prev.to_string());
                }
                o.pending.restore(batch);
            }
        }
        self.diag.finish();
        match failure {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// Build the sinks the flags ask for.
fn sinks(args: &Args) -> Result<Vec<Box<dyn Sink>>> {
    let mut out: Vec<Box<dyn Sink>> = Vec::new();
    let graphite = args.graphite.as_deref().filter(|g| !g.trim().is_empty());
    if let Some(g) = graphite {
        out.push(Box::new(Graphite::new(parse_addr(g)?, &args.prefix, TRIES)));
    }
    for url in args.metrics_urls.iter().filter(|u| !u.trim().is_empty()) {
        out.push(Box::new(Http::new(Target::parse(url)?, TRIES)));
    }
    let format = match args.format {
        Some(f) => Some(f),
        None if out.is_empty() => Some(Format::Table),
        None => None,
    };
    if let Some(f) = format {
        let stdout: Box<dyn Write> = crate::io::output::stdout(false);
        out.push(Box::new(Text::new(f, stdout, &args.prefix)));
    }
    Ok(out)
}

pub fn run(args: Args) -> Result<i32> {
    let is_stdin = |p: &PathBuf| p.as_os_str() == "-";
    if args.state.is_some() {
        if args.inputs.is_empty() {
            return Err(Error::Usage(
                "--state needs INPUT files (it remembers how far each was read)".into(),
            ));
        }
        if args.inputs.iter().any(is_stdin) {
            return Err(Error::Usage(
                "--state cannot read stdin: name the files a merger appends to".into(),
            ));
        }
    }
    if !(args.flush_interval > 0.0 && args.flush_interval.is_finite()) {
        return Err(Error::Usage(
            "--flush-interval must be a positive number of seconds".into(),
        ));
    }
    let outlets = sinks(&args)?
        .into_iter()
        .map(|sink| Outlet {
            sink,
            pending: Latest::new(),
            retry_at: None,
            backoff: Backoff::new(Duration::from_secs(1), Duration::from_secs(60)),
        })
        .collect();
    let mut em = Emitter {
        outlets,
        diag: Diag::new(TOOL, args.strict),
    };
    if let Some(path) = &args.state {
        return run_cron(&mut em, path, &args.inputs);
    }
    let streaming = args.inputs.is_empty() || args.inputs.iter().any(is_stdin);
    let every = streaming.then(|| Duration::from_secs_f64(args.flush_interval));
    run_inputs(&mut em, &args.inputs, every)
}

fn run_cron(em: &mut Emitter, path: &Path, inputs: &[PathBuf]) -> Result<i32> {
    let _lock = state::lock(path)?;
    let prev = State::load(path)?;
    let next = state::read_new(
        &prev,
        inputs,
        &mut |label, n, line| em.line(label, n, line),
        &mut |note| crate::error::warn(TOOL, &note),
    )?;
    em.finish("; checkpoint not advanced, the next run sends it again")?;
    next.save(path)?;
    Ok(EXIT_OK)
}

enum Msg {
    Chunk(usize, Vec<u8>),
    /// Input `.0` had a record too long to read (skipped) at line `.1`.
    Overlong(usize, u64),
    /// An input could not be read (or not to its end); the next one is read.
    Failed(Error),
}

/// Read the inputs on a thread (so that a quiet stream still flushes on time) and feed the
/// emitter; flush every `every` when streaming.
/// How long a stopped stream is still read (see [`run_inputs`]); longer than pulse-merge's.
const DRAIN: Duration = Duration::from_secs(3);

fn run_inputs(em: &mut Emitter, paths: &[PathBuf], every: Option<Duration>) -> Result<i32> {
    let inputs = open_all(paths, Kind::Records);
    let names: Vec<String> = inputs.iter().map(|i| i.name.clone()).collect();
    let total = inputs.iter().map(|i| i.len).sum::<Option<u64>>();
    let (tx, rx) = crossbeam_channel::bounded::<Msg>(8);
    let reader = std::thread::spawn(move || {
        let progress = if every.is_none() {
            Progress::new(total)
        } else {
            Progress::hidden()
        };
        for (idx, input) in inputs.into_iter().enumerate() {
            let name = input.name.clone();
            let mut r = input.chunks();
            let mut overlong = 0;
            loop {
                match r.next_chunk() {
                    Ok(Some(chunk)) => {
                        progress.inc(chunk.len() as u64);
                        if r.overlong > overlong {
                            overlong = r.overlong;
                            let line = r.first_overlong.unwrap_or(0);
                            if tx.send(Msg::Overlong(idx, line)).is_err() {
                                return;
                            }
                        }
                        if tx.send(Msg::Chunk(idx, chunk)).is_err() {
                            return;
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        if tx.send(Msg::Failed(Error::io(name, e))).is_err() {
                            return;
                        }
                        break;
                    }
                }
            }
        }
        progress.finish();
    });
    let mut line_no = vec![0u64; names.len()];
    let mut next_flush = every.map(|d| Instant::now() + d);
    // Streaming, SIGINT and SIGTERM do not cut delivery short: what upstream still sends as
    // it ends (a Ctrl-C reaches the whole pipeline, and the merger writes its last windows)
    // is taken until the end of input, or for a few seconds, then delivered. A second
    // signal, half a second or more later, ends at once.
    let stop = Arc::new(AtomicBool::new(false));
    if every.is_some() {
        crate::io::signals::stop_on_signal(&stop)?;
    }
    let mut drain_until: Option<Instant> = None;
    loop {
        if stop.load(Ordering::Relaxed) {
            let until = *drain_until.get_or_insert_with(|| Instant::now() + DRAIN);
            if Instant::now() >= until {
                break;
            }
            next_flush = next_flush.map(|t| t.min(until));
        }
        let msg = match next_flush {
            Some(t) => match rx.recv_deadline(t) {
                Ok(m) => Some(m),
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => None,
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
            },
            None => match rx.recv() {
                Ok(m) => Some(m),
                Err(_) => break,
            },
        };
        match msg {
            Some(Msg::Chunk(idx, chunk)) => {
                for line in lines(&chunk) {
                    line_no[idx] += 1;
                    em.line(&names[idx], line_no[idx], line)?;
                }
            }
            Some(Msg::Overlong(idx, line)) => em.diag.bad(
                "overlong",
                &format!("{}: line {line}", names[idx]),
                "a record longer than 64 MiB, skipped",
            )?,
            Some(Msg::Failed(e)) => em.diag.input_failed(e)?,
            None => {}
        }
        if let (Some(t), Some(d)) = (next_flush, every) {
            let now = Instant::now();
            if now >= t {
                em.flush(now)?;
                next_flush = Some(now + d);
            }
        }
    }
    if drain_until.is_none() {
        let _ = reader.join();
    }
    em.finish("")?;
    // An unreadable input, or a snapshot too long to read, is data lost: status 1, once
    // what could be read was delivered.
    Ok(if em.diag.failed() || em.diag.total("overlong") > 0 {
        EXIT_FAILURE
    } else {
        EXIT_OK
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clap_definition_is_valid() {
        command().debug_assert();
    }
}
