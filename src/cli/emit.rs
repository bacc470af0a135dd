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
//! `csv` on stdout is written once, at the end, and so is `table` when reading files;
//! streaming, `table` prints each window as it becomes final, and `live` redraws a
//! full-screen view.

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
use crate::sink::postgres::Postgres;
use crate::sink::state::{self, State};
use crate::sink::text::{escape, Format, Text};
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
  pulse-emit --postgres=postgresql://pulse@db/metrics day.ndjson
A crontab line, sending each minute what was appended since the last run:
  * * * * * pulse-emit --state emit.state --graphite graphite:2003 snaps.ndjson";

/// Deliver snapshots (NDJSON from pulse-merge) to Graphite, HTTP endpoints, or stdout.
#[derive(Parser, Debug)]
#[command(name = TOOL, version, after_help = AFTER_HELP)]
pub struct Args {
    /// Snapshot files (NDJSON); none, or `-`, reads stdin.
    #[arg(value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,

    /// Write to stdout in this format. Default: table, unless --graphite, --metrics-url or --postgres is
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

    /// Upsert into PostgreSQL, one row per stat, key, window and value (see POSTGRESQL in
    /// pulse-emit(1)). `--postgres` alone reads the connection string from DATABASE_URL;
    /// `--postgres=URL` gives it (postgresql://user:password@host:port/db or host=... dbname=...).
    #[arg(
        long,
        value_name = "URL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = ""
    )]
    pub postgres: Option<String>,

    /// The table --postgres writes (NAME or SCHEMA.NAME), created when missing.
    #[arg(long, value_name = "NAME", default_value = crate::sink::postgres::DEFAULT_TABLE, requires = "postgres")]
    pub pg_table: String,

    /// Checkpoint file for runs from cron: read only what was appended to the INPUT files
    /// since the last run, and advance it once the sinks accepted the data.
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,

    /// When streaming from stdin, send what arrived every this many seconds.
    #[arg(long, value_name = "SECS", default_value = "1")]
    pub flush_interval: f64,

    /// Re-send to Graphite the windows of the last DURATION (e.g. 300s, 5m, 1h; 0 turns it
    /// off): from cron, the windows ending within DURATION of the newest are kept in the
    /// state file and sent again by every run; streaming, what was written in the last
    /// DURATION is written again after a reconnect. Graphite has no acknowledgement; a
    /// point sent twice overwrites itself, so this makes delivery at-least-once.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_duration)]
    pub resend: Resend,

    /// Give up on an HTTP request (connect, send, answer) after this many seconds.
    #[arg(long, value_name = "SECS", default_value = "5")]
    pub http_timeout: f64,

    /// At most this many snapshots wait for each sink; when a sink is that far behind (or
    /// down), reading stops until it takes more (backpressure, never loss).
    #[arg(long, value_name = "SNAPSHOTS", default_value = "100000")]
    pub queue: usize,

    /// Stop at the first line that is not a snapshot (exit status 1).
    #[arg(long)]
    pub strict: bool,
}

/// A `--resend` duration.
#[derive(Debug, Clone, Copy)]
pub struct Resend(pub Duration);

/// `300`, `300s`, `5m`, `1h`, `0`.
fn parse_duration(s: &str) -> std::result::Result<Resend, String> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?}: a whole number with s, m or h (e.g. 5m)"))?;
    let mult = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        _ => return Err(format!("{s:?}: unit must be s, m or h")),
    };
    Ok(Resend(Duration::from_secs(n.saturating_mul(mult))))
}

/// The clap command (for `--help`, man page and tests).
pub fn command() -> clap::Command {
    Args::command()
}

pub fn main() -> ! {
    let args = Args::parse();
    exit_with(TOOL, run(args))
}

/// Snapshots queued in a sink's channel, before its own collapsed batch.
const CHANNEL: usize = 1024;

/// How often waits look up (a signal, the end of input).
const TICK: Duration = Duration::from_millis(100);

/// What the reader tells a sink thread.
enum ToSink {
    Snap(Snapshot),
}

/// How a sink thread runs.
#[derive(Clone, Copy)]
struct Plan {
    /// Streaming: flush this often, and retry failures with backoff while the input goes on.
    every: Option<Duration>,
    /// At most this many snapshots wait in the sink's batch; then it takes no more input
    /// (the reader blocks) until it delivered some.
    limit: usize,
}

/// A sink to start: built here, or stdout, which is opened on the sink's own thread (its
/// lock cannot move between threads).
enum Spec {
    Built(Box<dyn Sink + Send>),
    Stdout(Format, String),
    /// The live view, which takes over the terminal from the sink's own thread.
    Live,
}

/// One sink on its own thread, fed through a bounded channel.
struct Outlet {
    name: String,
    /// Takes re-sent windows (`--resend`): a point sent twice overwrites itself.
    idempotent: bool,
    tx: Option<crossbeam_channel::Sender<ToSink>>,
    thread: Option<std::thread::JoinHandle<Result<()>>>,
    /// Set when the input has ended: a sink waiting for room stops waiting.
    closed: Arc<AtomicBool>,
    /// Snapshots not handed over because the run was stopped while this sink was full.
    dropped: u64,
}

impl Outlet {
    fn start(spec: Spec, plan: Plan) -> Outlet {
        let (name, idempotent) = match &spec {
            Spec::Built(s) => (s.name(), s.idempotent()),
            Spec::Stdout(..) => ("stdout".to_string(), false),
            Spec::Live => ("live view".to_string(), false),
        };
        let (tx, rx) = crossbeam_channel::bounded::<ToSink>(CHANNEL);
        let closed = Arc::new(AtomicBool::new(false));
        let closed_in = closed.clone();
        let thread = std::thread::Builder::new()
            .name(name.clone())
            .spawn(move || {
                let mut sink: Box<dyn Sink> = match spec {
                    Spec::Built(s) => s,
                    Spec::Live => Box::new(crate::sink::live::Live::start(plan.every.is_some())?),
                    Spec::Stdout(f, prefix) => Box::new(
                        Text::new(f, crate::io::output::stdout(false), &prefix)
                            .streaming(plan.every.is_some()),
                    ),
                };
                sink_loop(sink.as_mut(), &rx, plan, &closed_in)
            })
            .expect("spawn sink thread");
        Outlet {
            name,
            idempotent,
            tx: Some(tx),
            thread: Some(thread),
            closed,
            dropped: 0,
        }
    }

    /// Hand `snap` over, waiting while the sink's queue is full (backpressure), until
    /// `stop` is set (a signal): then the snapshot is counted as not delivered.
    fn send(&mut self, snap: Snapshot, stop: &AtomicBool) {
        let Some(tx) = &self.tx else { return };
        let mut msg = ToSink::Snap(snap);
        if self.dropped > 0 {
            // Stopping, and this sink is still full: do not wait again.
            match tx.try_send(msg) {
                Err(crossbeam_channel::TrySendError::Full(_)) => self.dropped += 1,
                Err(crossbeam_channel::TrySendError::Disconnected(_)) => self.tx = None,
                Ok(()) => {}
            }
            return;
        }
        loop {
            match tx.send_timeout(msg, TICK) {
                Ok(()) => return,
                Err(crossbeam_channel::SendTimeoutError::Timeout(m)) => {
                    if stop.load(Ordering::Relaxed) {
                        self.dropped += 1;
                        return;
                    }
                    msg = m;
                }
                // The sink thread ended (a closed stdout, or a failure in batch mode).
                Err(crossbeam_channel::SendTimeoutError::Disconnected(_)) => {
                    self.tx = None;
                    return;
                }
            }
        }
    }

    /// Close the queue and wait for the sink to deliver what it holds.
    fn finish(&mut self) -> Result<()> {
        self.tx = None;
        self.closed.store(true, Ordering::Relaxed);
        let r = match self.thread.take().map(|t| t.join()) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(Error::Runtime(format!(
                "{}: sink thread panicked",
                self.name
            ))),
            None => Ok(()),
        };
        if r.is_ok() && self.dropped > 0 {
            return Err(Error::Runtime(format!(
                "{}: {} snapshots not delivered: the sink was behind when the run was stopped",
                self.name, self.dropped
            )));
        }
        r
    }
}

/// The life of one sink: collect snapshots, deliver them as the plan says, and return how
/// the last delivery went once the input has ended.
fn sink_loop(
    sink: &mut dyn Sink,
    rx: &crossbeam_channel::Receiver<ToSink>,
    plan: Plan,
    closed: &AtomicBool,
) -> Result<()> {
    let mut pending = Latest::new();
    let bounded = !sink.at_end_only();
    let mut backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
    let mut retry_at: Option<Instant> = None;
    let mut said_full = false;
    let mut next_flush = plan.every.map(|d| Instant::now() + d);
    let mut failed: Option<Error> = None;
    loop {
        let full = bounded && pending.len() >= plan.limit;
        let msg = if full {
            if retry_at.is_some() && !said_full {
                eprintln!(
                    "{TOOL}: {}: queue full ({} snapshots), waiting for it to take more before reading on",
                    sink.name(),
                    pending.len()
                );
                said_full = true;
            }
            // Take nothing more until some is delivered: the reader blocks behind us.
            if let Some(t) = retry_at {
                while Instant::now() < t && !closed.load(Ordering::Relaxed) {
                    std::thread::sleep(t.saturating_duration_since(Instant::now()).min(TICK));
                }
                if closed.load(Ordering::Relaxed) {
                    break;
                }
            }
            None
        } else {
            let deadline = match (next_flush, retry_at) {
                (Some(f), Some(r)) => Some(f.max(r)),
                (f, _) => f,
            };
            match deadline {
                Some(t) => match rx.recv_deadline(t) {
                    Ok(m) => Some(m),
                    Err(crossbeam_channel::RecvTimeoutError::Timeout) => None,
                    Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
                },
                None => match rx.recv() {
                    Ok(m) => Some(m),
                    Err(_) => break,
                },
            }
        };
        match msg {
            Some(ToSink::Snap(snap)) => {
                if failed.is_none() {
                    pending.insert(snap);
                }
                let due = plan.every.is_some() && next_flush.is_some_and(|t| Instant::now() >= t);
                let full_now = bounded && pending.len() >= plan.limit;
                if !due && !full_now {
                    continue;
                }
            }
            None if plan.every.is_none() && !full => continue,
            None => {}
        }
        // Time to deliver: the flush interval came, the batch is full, or a retry is due.
        let now = Instant::now();
        if pending.is_empty() || !bounded || retry_at.is_some_and(|t| now < t) {
            if let (Some(t), Some(d)) = (next_flush, plan.every) {
                if now >= t {
                    next_flush = Some(now + d);
                }
            }
            continue;
        }
        if plan.every.is_some() && !full && next_flush.is_some_and(|t| now < t) {
            continue;
        }
        let batch = pending.drain();
        match sink.send(&batch) {
            Ok(()) => {
                if retry_at.take().is_some() {
                    eprintln!("{TOOL}: {}: delivering again", sink.name());
                }
                said_full = false;
                backoff.reset();
            }
            Err(e) if e.is_broken_pipe() => return Err(e),
            Err(e) if plan.every.is_none() => {
                // Batch and cron: the run fails; what else comes is not kept.
                failed = Some(e);
            }
            Err(e) => {
                let delay = backoff.next_delay();
                if retry_at.is_none() {
                    eprintln!(
                        "{TOOL}: {e}; keeping {} snapshots, retrying in the background",
                        batch.len()
                    );
                }
                retry_at = Some(Instant::now() + delay);
                pending.restore(batch);
            }
        }
        if let Some(d) = plan.every {
            next_flush = Some(Instant::now() + d);
        }
    }
    if let Some(e) = failed {
        return Err(e);
    }
    if !(pending.is_empty() && bounded) {
        sink.send(&pending.drain())?;
    }
    sink.end()
}

/// Parses incoming lines and hands each snapshot to every sink.
struct Emitter {
    outlets: Vec<Outlet>,
    diag: Diag,
    /// Cron mode: the snapshots of the last `--resend` (see [`run_cron`]).
    recent: Option<Latest>,
    /// Set by SIGINT or SIGTERM while streaming.
    stop: Arc<AtomicBool>,
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
            Err(msg) => self.diag.bad(
                "invalid",
                &format!("{}: line {n}", escape(label)),
                &escape(&msg),
            ),
        }
    }

    fn add(&mut self, snap: Snapshot) {
        if let Some(r) = &mut self.recent {
            r.insert(snap.clone());
        }
        for o in &mut self.outlets {
            o.send(snap.clone(), &self.stop);
        }
    }

    /// True while some sink still takes input.
    fn any_open(&self) -> bool {
        self.outlets.iter().any(|o| o.tx.is_some())
    }

    /// Close every queue and wait for every sink. Every sink is waited for; the first
    /// failure is returned (the others are printed).
    fn finish(&mut self, what_next: &str) -> Result<()> {
        let mut failure: Option<Error> = None;
        let mut broken = None;
        for o in &mut self.outlets {
            o.tx = None;
        }
        for o in &mut self.outlets {
            if let Err(e) = o.finish() {
                if e.is_broken_pipe() {
                    broken = Some(e);
                    continue;
                }
                let e = Error::Runtime(format!("{e}{what_next}"));
                if let Some(prev) = failure.replace(e) {
                    crate::error::warn(TOOL, &prev.to_string());
                }
            }
        }
        if let Some(e) = broken {
            return Err(e);
        }
        self.diag.finish();
        match failure {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// Build the sinks the flags ask for.
fn sinks(args: &Args) -> Result<Vec<Spec>> {
    let mut out: Vec<Spec> = Vec::new();
    let graphite = args.graphite.as_deref().filter(|g| !g.trim().is_empty());
    if let Some(g) = graphite {
        out.push(Spec::Built(Box::new(Graphite::new(
            parse_addr(g)?,
            &args.prefix,
            TRIES,
            args.resend.0,
        ))));
    }
    let timeout = Duration::from_secs_f64(args.http_timeout);
    for url in args.metrics_urls.iter().filter(|u| !u.trim().is_empty()) {
        out.push(Spec::Built(Box::new(Http::new(
            Target::parse(url)?,
            TRIES,
            timeout,
        ))));
    }
    if let Some(url) = &args.postgres {
        let url = if url.is_empty() {
            std::env::var("DATABASE_URL")
                .ok()
                .filter(|u| !u.trim().is_empty())
                .ok_or_else(|| {
                    Error::Usage(
                        "--postgres without =URL takes the connection string from DATABASE_URL, which is not set"
                            .into(),
                    )
                })?
        } else {
            url.clone()
        };
        out.push(Spec::Built(Box::new(Postgres::new(&url, &args.pg_table)?)));
    }
    let format = match args.format {
        Some(f) => Some(f),
        None if out.is_empty() => Some(Format::Table),
        None => None,
    };
    match format {
        // The live view needs a terminal; elsewhere (a pipe, a file) it is a table.
        Some(Format::Live) if std::io::IsTerminal::is_terminal(&std::io::stdout()) => {
            out.push(Spec::Live)
        }
        Some(Format::Live) => out.push(Spec::Stdout(Format::Table, args.prefix.clone())),
        Some(f) => out.push(Spec::Stdout(f, args.prefix.clone())),
        None => {}
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
    if !(args.http_timeout > 0.0 && args.http_timeout < 1e6) {
        return Err(Error::Usage(
            "--http-timeout must be a positive number of seconds".into(),
        ));
    }
    if args.queue == 0 {
        return Err(Error::Usage("--queue must be at least 1".into()));
    }
    if args.postgres.is_some() {
        // `--postgres URL` (with a space) leaves the URL among the inputs.
        if let Some(p) = args.inputs.iter().find(|p| {
            let s = p.to_string_lossy();
            s.starts_with("postgres://") || s.starts_with("postgresql://")
        }) {
            return Err(Error::Usage(format!(
                "{}: a connection string among the inputs; write --postgres=URL (with =)",
                crate::sink::http::redact(&p.to_string_lossy())
            )));
        }
    }
    let specs = sinks(&args)?;
    let streaming =
        args.state.is_none() && (args.inputs.is_empty() || args.inputs.iter().any(is_stdin));
    let plan = Plan {
        every: streaming.then(|| Duration::from_secs_f64(args.flush_interval)),
        limit: args.queue,
    };
    if let Some(path) = &args.state {
        // The lock comes before any sink is started, so that a second run touches nothing.
        let lock = state::lock(path)?;
        let prev = State::load(path)?;
        let mut em = Emitter::start(specs, plan, &args);
        return run_cron(&mut em, path, &args.inputs, prev, args.resend.0, lock);
    }
    let mut em = Emitter::start(specs, plan, &args);
    // The live view has the terminal: no progress bar under it.
    let progress = args.format != Some(Format::Live);
    run_inputs(&mut em, &args.inputs, plan.every, progress)
}

impl Emitter {
    fn start(specs: Vec<Spec>, plan: Plan, args: &Args) -> Emitter {
        Emitter {
            outlets: specs.into_iter().map(|s| Outlet::start(s, plan)).collect(),
            diag: Diag::new(TOOL, args.strict),
            recent: None,
            stop: Arc::new(AtomicBool::new(false)),
        }
    }
}

/// Cron mode. Besides what was appended since the last run, the windows that end within
/// `resend` of the newest window seen are kept in the state file and sent again to the
/// idempotent sinks (Graphite) by every run: carbon may have lost what it took just before
/// it stopped, and the next run puts it back.
fn run_cron(
    em: &mut Emitter,
    path: &Path,
    inputs: &[PathBuf],
    prev: State,
    resend: Duration,
    _lock: state::Lock,
) -> Result<i32> {
    let resending = !resend.is_zero() && em.outlets.iter().any(|o| o.idempotent);
    if resending {
        for snap in &prev.resend {
            for o in em.outlets.iter_mut().filter(|o| o.idempotent) {
                o.send(snap.clone(), &em.stop);
            }
        }
        let mut recent = Latest::new();
        recent.restore(prev.resend.clone());
        em.recent = Some(recent);
    }
    let mut next = state::read_new(
        &prev,
        inputs,
        &mut |label, n, line| em.line(label, n, line),
        &mut |note| crate::error::warn(TOOL, &note),
    )?;
    em.finish("; checkpoint not advanced, the next run sends it again")?;
    next.resend = match em.recent.take() {
        Some(mut recent) => {
            let all = recent.drain();
            let newest = all.iter().map(|s| s.start + i64::from(s.secs)).max();
            let horizon = newest.unwrap_or(0) - resend.as_secs() as i64;
            all.into_iter()
                .filter(|s| s.start + i64::from(s.secs) > horizon)
                .collect()
        }
        None => Vec::new(),
    };
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

/// How long a stopped stream is still read (see [`run_inputs`]); longer than pulse-merge's.
const DRAIN: Duration = Duration::from_secs(3);

/// Read the inputs on a thread (so that a signal is noticed while input is quiet) and feed
/// the sinks; each sink flushes on its own, every `every` when streaming.
fn run_inputs(
    em: &mut Emitter,
    paths: &[PathBuf],
    every: Option<Duration>,
    progress: bool,
) -> Result<i32> {
    let inputs = open_all(paths, Kind::Records);
    let names: Vec<String> = inputs.iter().map(|i| i.name.clone()).collect();
    let total = inputs.iter().map(|i| i.len).sum::<Option<u64>>();
    let (tx, rx) = crossbeam_channel::bounded::<Msg>(8);
    let reader = std::thread::spawn(move || {
        let progress = if every.is_none() && progress {
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
    // Streaming, SIGINT and SIGTERM do not cut delivery short: what upstream still sends as
    // it ends (a Ctrl-C reaches the whole pipeline, and the merger writes its last windows)
    // is taken until the end of input, or for a few seconds, then delivered. A second
    // signal, half a second or more later, ends at once.
    let stop = em.stop.clone();
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
        }
        if !em.any_open() {
            break;
        }
        let msg = match every {
            Some(_) => match rx.recv_timeout(TICK) {
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
    }
    drop(rx);
    if drain_until.is_none() && em.any_open() {
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
