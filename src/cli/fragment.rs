//! `pulse-fragment`: events to fragments (windowed, mergeable partial aggregates).
//!
//! Each input is its own time stream: its own windows, newest time, lateness and end, and
//! with more than one input its own `src` (`SRC/1`, `SRC/2`, ... by position), so that
//! `pulse-fragment a b | pulse-merge` gives what `pulse-merge <(pulse-fragment a)
//! <(pulse-fragment b)` gives, in either order (rotated logs named newest first,
//! `syslog syslog.1`, lose nothing to lateness). An input's windows are all written, final,
//! at its end, and dropped; stdin is one stream. An input that cannot be read is reported
//! with its path, the others are read, and the exit status is 1.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clap::Parser as _;

use crate::clock::Clock;
use crate::error::{exit_with, Diag, Error, Result, EXIT_FAILURE, EXIT_OK};
use crate::fragment::window::Windows;
use crate::fragment::{Engine, FieldsSeen, InputKind, Own};
use crate::io::link::{self, Forgotten, Link};
use crate::io::{input, output, pipeline, pool::Pool, progress::Progress};
use crate::parse::{Format, Options as ParseOptions};
use crate::spec::StatSet;

const TOOL: &str = "pulse-fragment";

/// Turn events into fragments: for each declared stat, group key and time window, the
/// mergeable partial state, written as one JSON object per line.
#[derive(Debug, clap::Parser)]
#[command(
    name = "pulse-fragment",
    version,
    after_help = "Examples:\n  pulse-parse app.log | pulse-fragment | pulse-merge\n  pulse-fragment --raw app.log > fragments.ndjson\n  nc aorta 5000 | pulse-fragment --raw --connect merger:7000 --token-file /etc/pulse/token\n\nSee pulse-fragment(1), pulse.stats(5) and pulse(7)."
)]
pub struct Args {
    /// Files of events (or raw log lines with --raw); `-` or none reads stdin.
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Stats file declaring what to compute (repeatable); the built-in defaults when absent.
    #[arg(short, long = "stats", value_name = "FILE")]
    pub stats: Vec<PathBuf>,
    /// Print the stats in force, in stats-file syntax, and exit.
    #[arg(long)]
    pub list_stats: bool,
    /// Input is raw log lines: parse them in-process, exactly as pulse-parse would.
    #[arg(long)]
    pub raw: bool,
    /// With --raw: force one log format instead of detecting it per line.
    #[arg(long, value_name = "NAME", requires = "raw")]
    pub format: Option<String>,
    /// With --raw: the year of timestamps that carry none (BSD syslog, logcat, Redis, klog)
    /// [default: the year that puts each nearest to, and not after, the file's modification
    /// time, or the clock for a stream].
    #[arg(long, value_name = "YEAR", requires = "raw")]
    pub year: Option<i32>,
    /// With --raw: zone of timestamps written without one: UTC, an offset (+02:00, -0500)
    /// or a fixed zone abbreviation (CET, EST, ...).
    #[arg(long, value_name = "ZONE", default_value = "UTC", requires = "raw", value_parser = crate::cli::parse::tz_parser)]
    pub tz: i32,
    /// With --raw: a patterns file (fields from message text, custom line formats), as
    /// pulse-parse --patterns reads it (repeatable; see pulse.patterns(5)).
    #[arg(long, value_name = "FILE", requires = "raw")]
    pub patterns: Vec<PathBuf>,
    /// Name of this source in the fragments' `src` (default: HOST-PID-RANDOM, unique per process).
    #[arg(long = "source", value_name = "NAME")]
    pub source: Option<String>,
    /// Seconds after a window's end (in event time) before it is written.
    #[arg(long, value_name = "SECS", default_value_t = 2.0)]
    pub grace: f64,
    /// Events this many seconds older than the newest seen are counted as late and dropped.
    #[arg(long, value_name = "SECS", default_value_t = 300.0)]
    pub lateness: f64,
    /// An event more than this many seconds ahead of the newest seen is held until the next
    /// timed event confirms it (is also that far ahead, and not late by it), else dropped
    /// and counted in pulse.future; on a stream, events this far ahead of the clock are
    /// dropped (default: the value of --lateness).
    #[arg(long, value_name = "SECS")]
    pub max_ahead: Option<f64>,
    /// When reading a stream (not a regular file), write changed windows at least this often
    /// by the wall clock, so a quiet stream still reports; 0 turns it off.
    #[arg(long, value_name = "SECS", default_value_t = 1.0)]
    pub flush_every: f64,
    /// Prefix each line with its stat's shard number (0..N) and a tab, for routing
    /// (`kcat -K'\t'`, a shell `case`).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub shards: Option<u32>,
    /// With --shards: the prefix is instead a key that Kafka's default partitioners
    /// (librdkafka's, as kcat's, and the Java client's) put into partition = shard of an
    /// N-partition topic, so that each merger reads only its partition (N at most 1024).
    #[arg(long, requires = "shards")]
    pub kafka_key: bool,
    /// Stop at the first malformed input line (with --raw, also unparsed), exit status 1;
    /// what came before it is written.
    #[arg(long)]
    pub strict: bool,
    /// Worker threads (default: one per core).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub threads: Option<u32>,
    /// Flush output after every line written.
    #[arg(long)]
    pub line_buffered: bool,
    /// Send the fragments to a listening merger (`pulse-merge --listen`) over a connection
    /// kept open instead of stdout: reconnected with backoff, every window still held
    /// re-sent after a reconnect, input held while the merger is down (see LINK in
    /// pulse-fragment(1)).
    #[arg(long, value_name = "HOST:PORT")]
    pub connect: Option<String>,
    /// With --connect: a file holding one `NAME:TOKEN` line (as in the merger's
    /// --auth-file), sent first; not readable by others.
    #[arg(long, value_name = "FILE", requires = "connect")]
    pub token_file: Option<PathBuf>,
    /// With --connect: give up (exit 1) when the merger cannot be reached for this long,
    /// from the start or after the connection was lost (ms, s, m or h).
    #[arg(long, value_name = "DURATION", default_value = crate::io::link::DEFAULT_WAIT, value_parser = crate::io::link::parse_duration)]
    pub connect_wait: Duration,
    /// At most N distinct l2met names (count#X, measure#X, sample#X, unique#X) per input;
    /// the values of further new names are dropped and counted in pulse.l2met.dropped.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub max_l2met: usize,
    /// Group keys, top values and last partitions longer than this are cut to their first
    /// BYTES and a marker (counted in pulse.value.cut); longer l2met names are dropped
    /// (at most 1024).
    #[arg(long, value_name = "BYTES", default_value_t = 1024, value_parser = clap::value_parser!(u64).range(1..=crate::stat::MAX_TEXT as u64))]
    pub max_value_len: u64,
    /// Use this fixed Unix time as "now" (events without a time; testing).
    #[arg(long, value_name = "UNIX", hide = true)]
    pub now: Option<f64>,
}

/// How long a signalled pulse-fragment still reads a live input that has not ended (shorter
/// than pulse-merge's, which is downstream).
const DRAIN: Duration = Duration::from_millis(700);

pub fn main() -> ! {
    // clap exits 2 on a usage error, 0 for --help and --version.
    exit_with(TOOL, run(Args::parse()))
}

/// Load the stats in force: every `--stats` file, or the defaults.
pub fn load_stats(paths: &[PathBuf]) -> Result<StatSet> {
    load_stats_from(paths).map(|(set, _)| set)
}

/// [`load_stats`], with the file each stat comes from (empty for the defaults).
fn load_stats_from(paths: &[PathBuf]) -> Result<(StatSet, Vec<String>)> {
    if paths.is_empty() {
        return Ok((StatSet::defaults(), Vec::new()));
    }
    let mut set: Option<StatSet> = None;
    // Where each stat so far was defined, to name both places of a name defined twice.
    let mut seen: Vec<(String, String, usize)> = Vec::new();
    for p in paths {
        let origin = p.display().to_string();
        let text =
            std::fs::read_to_string(p).map_err(|e| Error::Usage(format!("{origin}: {e}")))?;
        let one = StatSet::parse(&text, &origin).map_err(|e| Error::Usage(e.to_string()))?;
        for def in &one.stats {
            if let Some((_, at, line)) = seen.iter().find(|(name, ..)| *name == def.name) {
                return Err(Error::Usage(format!(
                    "{origin}:{}: stat {:?} is defined twice (also at {at}:{line})",
                    def.line, def.name
                )));
            }
        }
        seen.extend(
            one.stats
                .iter()
                .map(|d| (d.name.clone(), origin.clone(), d.line)),
        );
        match &mut set {
            None => set = Some(one),
            Some(s) => s.extend(one).map_err(|e| Error::Usage(e.to_string()))?,
        }
    }
    let origins = seen.into_iter().map(|(_, origin, _)| origin).collect();
    Ok((set.unwrap_or_else(StatSet::defaults), origins))
}

/// At the end of a run with a stats file: one warning per field a stat reads (in its filter,
/// value, partition or group-by) that occurred in no event, when there were events.
fn warn_never_seen(engine: &Engine, seen: &FieldsSeen, origins: &[String]) {
    if seen.events == 0 {
        return;
    }
    for (i, field) in engine.never_seen(seen) {
        let def = &engine.stats.stats[i];
        let origin = origins.get(i).map_or("stats", String::as_str);
        eprintln!(
            "{TOOL}: {origin}: line {}: stat {:?}: field {field:?} never occurred in {} events",
            def.line, def.name, seen.events
        );
    }
}

fn default_source() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "host".into());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() ^ (d.as_secs() as u32))
        .unwrap_or(0);
    format!("{host}-{}-{:08x}", std::process::id(), nanos)
}

pub fn run(args: Args) -> Result<i32> {
    let (stats, origins) = load_stats_from(&args.stats)?;
    if args.list_stats {
        let mut out = output::stdout(false);
        out.write_all(stats.list().as_bytes())?;
        if stats.l2met {
            writeln!(
                out,
                "# l2met: count#X, measure#X, sample#X and unique#X attributes become stats named X (60s windows)"
            )?;
        }
        for own in Own::ALL {
            writeln!(
                out,
                "# {}: {} (60s windows, always on)",
                own.name(),
                own.describe()
            )?;
        }
        out.flush()?;
        return Ok(EXIT_OK);
    }
    let max_ahead = args.max_ahead.unwrap_or(args.lateness);
    for (flag, v) in [
        ("--grace", args.grace),
        ("--lateness", args.lateness),
        ("--max-ahead", max_ahead),
    ] {
        if !(v.is_finite() && v >= 0.0) {
            return Err(Error::Usage(format!(
                "{flag} must be a number of seconds >= 0"
            )));
        }
    }
    if !(args.flush_every.is_finite() && args.flush_every >= 0.0) {
        return Err(Error::Usage(
            "--flush-every must be a number of seconds >= 0".into(),
        ));
    }
    let kind = if args.raw {
        let format = match &args.format {
            Some(f) => f.parse::<Format>().map_err(Error::Usage)?,
            None => Format::Auto,
        };
        InputKind::Raw(ParseOptions::new(format, args.year, args.tz))
    } else {
        InputKind::Events
    };
    let clock = match args.now {
        Some(t) => Clock::Fixed(t),
        None => Clock::System,
    };
    let kind_of_input = if args.raw {
        input::Kind::Lines
    } else {
        input::Kind::Records
    };
    let inputs = input::open_all(&args.files, kind_of_input);
    let names: Vec<String> = inputs.iter().map(|i| i.name.clone()).collect();
    let references: Vec<Option<i64>> = inputs.iter().map(|i| i.mtime).collect();
    let live = inputs.iter().any(|i| i.len.is_none());
    let total: Option<u64> = inputs.iter().map(|i| i.len).sum();
    let progress = if args.files.is_empty() {
        Progress::hidden()
    } else {
        Progress::new(total)
    };
    let flush_every = Duration::from_secs_f64(args.flush_every);
    // Ticks come at least five times a second, so a signal is acted on promptly; windows are
    // written on those at least --flush-every apart.
    let tick =
        (live && args.flush_every > 0.0).then(|| flush_every.min(Duration::from_millis(200)));
    let mut last_flush = std::time::Instant::now();
    // On a live stream, SIGINT and SIGTERM end the run as the end of input would. The
    // handler sets `signalled`; input is read on until it ends, for at most DRAIN (upstream
    // stages write what they hold as they end); then `stop` ends reading, and once all that
    // was read is counted, every open window is written closed.
    let signalled = Arc::new(AtomicBool::new(false));
    let stop = AtomicBool::new(false);
    let mut signalled_at: Option<std::time::Instant> = None;
    if tick.is_some() {
        crate::io::signals::stop_on_signal(&signalled)?;
    }
    let threads = args.threads.map_or_else(
        || std::thread::available_parallelism().map_or(1, |n| n.get()),
        |t| t as usize,
    );

    // Fields that never occur are worth a warning in the user's stats, not in the defaults
    // (which cover several kinds of log at once).
    let patterns = crate::pattern::Patterns::load(&args.patterns)?;
    let engine = Engine::new(stats, kind, args.lateness, clock)
        .max_ahead(max_ahead, live)
        .strict(args.strict)
        .track_fields(!args.stats.is_empty())
        .patterns(patterns)
        .max_value_len(args.max_value_len as usize);
    let mut seen = FieldsSeen::default();
    let src = args.source.clone().unwrap_or_else(default_source);
    let routing = match args.shards {
        Some(n) if args.kafka_key && n > crate::shard::MAX_KAFKA_SHARDS => {
            return Err(Error::Usage(format!(
                "--kafka-key: --shards {n} is more than {} partitions",
                crate::shard::MAX_KAFKA_SHARDS
            )));
        }
        Some(n) => Some(crate::shard::Routing::new(n, args.kafka_key)),
        None => None,
    };
    // Each input its own stream, under its own source name.
    let n_inputs = names.len();
    let windows_of = |input: usize| {
        let src = if n_inputs > 1 {
            format!("{src}/{}", input + 1)
        } else {
            src.clone()
        };
        Windows::new(src, clock, args.grace, args.lateness, routing.clone())
            .idle_advance(live)
            .max_l2met(args.max_l2met, args.max_value_len as usize)
    };
    let mut windows = windows_of(0);
    let mut diag = Diag::new(TOOL, args.strict);
    let link = match &args.connect {
        Some(addr) => Some(Link::start(link::Options {
            addr: addr.clone(),
            auth: match &args.token_file {
                Some(p) => Some(link::read_token_file(p)?),
                None => None,
            },
            wait: args.connect_wait,
            tool: TOOL,
            budget: link::BUDGET,
        })),
        None => None,
    };
    let mut out: Box<dyn Write> = match &link {
        Some(l) => Box::new(l.writer()),
        None => output::stdout(args.line_buffered || live),
    };
    // With a link: the windows of inputs already ended (re-sent after a reconnect too), and
    // when windows were forgotten (those just before a break cannot be re-sent).
    let mut done: Vec<Windows> = Vec::new();
    let mut forgotten = Forgotten::default();
    let mut forgotten_seen = 0u64;
    let mut buf = Vec::with_capacity(1 << 16);
    let mut line_base = 0u64;
    let mut exact = engine.scratch();

    // Chunk buffers circulate reader → worker → here → reader.
    let chunks = Pool::new(pipeline::in_flight(threads) + 1);
    let result = pipeline::run(
        inputs,
        threads,
        tick.map(|tick| pipeline::Live {
            tick,
            stop: Some(&stop),
        }),
        &chunks,
        || engine.scratch(),
        |scratch, input, chunk| {
            scratch.set_reference(references[input]);
            engine.process_owned(scratch, chunk)
        },
        |step| {
            if let Some(l) = &link {
                if let Some(broke) = l.take_resend() {
                    resend(
                        l,
                        &forgotten,
                        broke,
                        &engine.stats,
                        &mut windows,
                        &mut done,
                        &mut buf,
                        false,
                    );
                }
            }
            match step {
                pipeline::Step::Chunk {
                    bytes,
                    out: got,
                    input,
                } => {
                    exact.set_reference(references[input]);
                    let mut got = engine.settle(&mut exact, &mut windows, got, &mut diag, &mut buf);
                    chunks.give(std::mem::take(&mut got.data));
                    seen.add(&got);
                    let at_line =
                        |line: u64| format!("{}: line {}", names[input], line_base + line + 1);
                    if let Some((line, what)) = &got.first_novalue {
                        diag.show("no value", &at_line(*line), what);
                    }
                    diag.count("no value", got.novalue);
                    if let Some((line, what)) = &got.first_cut {
                        diag.show("value cut", &at_line(*line), what);
                    }
                    diag.count("value cut", got.cuts);
                    if let Some((line, what)) = &got.first_l2met_dropped {
                        diag.show("l2met dropped", &at_line(*line), what);
                    }
                    for b in &got.bad {
                        diag.bad(b.kind, &at_line(b.line), &b.detail)?;
                    }
                    diag.count("malformed", got.bad_total - got.bad.len() as u64);
                    got.issues.report(&mut diag, at_line)?;
                    if let Some((line, time)) = &got.first_bad_time {
                        let what = format!("{time:?} is neither RFC 3339 nor Unix seconds or milliseconds of years 0000 to 9999; the event is placed at the time of the event before it");
                        diag.note("bad time", &at_line(*line), &what);
                        diag.count("bad time", got.bad_times - 1);
                    }
                    if let Some((line, t, newest)) = got.first_late {
                        let stamp = |t: f64| {
                            let mut s = String::new();
                            crate::time::write_rfc3339(&mut s, t);
                            s
                        };
                        let what = format!(
                            "event time {} is more than --lateness ({} s) behind the newest seen, {}; dropped, and counted in pulse.late",
                            stamp(t),
                            engine.lateness,
                            stamp(newest)
                        );
                        diag.show("late (dropped)", &at_line(line), &what);
                    }
                    if let Some((line, t, newest, clock)) = got.first_future {
                        let at = format!("{}: line {}", names[input], line_base as i64 + line + 1);
                        show_future(&mut diag, &at, t, newest, clock, max_ahead);
                    }
                    line_base += got.lines;
                    progress.inc(bytes as u64);
                }
                pipeline::Step::End {
                    overlong,
                    first_overlong,
                    name,
                    input,
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
                        let what = if args.raw {
                            "lines longer than 1 MiB were cut"
                        } else {
                            "records longer than 64 MiB were skipped"
                        };
                        diag.bad(
                            "overlong",
                            &at,
                            &format!("{overlong} {what}, this the first"),
                        )?;
                        if !args.raw {
                            // Data lost between stages: the run fails, as for a malformed line.
                            diag.count("malformed", overlong);
                        }
                    }
                    drop_pending(
                        &engine,
                        &mut windows,
                        &mut diag,
                        &names[input],
                        line_base,
                        max_ahead,
                    );
                    line_base = 0;
                    // The input's stream ends: its windows are written final and dropped.
                    if input + 1 < n_inputs {
                        windows.finish(&engine.stats, &mut buf)?;
                        forgotten.add(windows.forgotten - forgotten_seen);
                        forgotten_seen = 0;
                        let ended = std::mem::replace(&mut windows, windows_of(input + 1));
                        if link.is_some() {
                            done.push(ended);
                        }
                    }
                }
                pipeline::Step::Tick { .. }
                    if signalled.load(Ordering::Relaxed) && !stop.load(Ordering::Relaxed) =>
                {
                    let at = *signalled_at.get_or_insert_with(std::time::Instant::now);
                    if at.elapsed() >= DRAIN {
                        stop.store(true, Ordering::Relaxed);
                    }
                }
                pipeline::Step::Tick { idle: false } if stop.load(Ordering::Relaxed) => {}
                pipeline::Step::Tick { idle: true } if stop.load(Ordering::Relaxed) => {
                    // Everything read has been folded in, and the reader may be blocked on a
                    // stream that stays open: end here.
                    let name = names.last().map_or("-", String::as_str);
                    drop_pending(&engine, &mut windows, &mut diag, name, line_base, max_ahead);
                    out.write_all(&buf)?;
                    buf.clear();
                    let closed = windows
                        .finish(&engine.stats, &mut out)
                        .and_then(|()| Ok(out.flush()?))
                        .and_then(|()| {
                            close_link(&link, &forgotten, &engine.stats, &mut windows, &mut done)
                        });
                    progress.finish();
                    if let Err(e) = closed {
                        return Err(link_error(&link, e, &windows, &done));
                    }
                    warn_never_seen(&engine, &seen, &origins);
                    diag.finish();
                    std::process::exit(exit_status(&diag, &link));
                }
                pipeline::Step::Tick { .. } => {
                    if last_flush.elapsed() >= flush_every {
                        last_flush = std::time::Instant::now();
                        windows.tick(&engine.stats, &mut buf);
                    }
                }
            }
            forgotten.add(windows.forgotten - forgotten_seen);
            forgotten_seen = windows.forgotten;
            if !buf.is_empty() {
                out.write_all(&buf)?;
                buf.clear();
                if live {
                    out.flush()?;
                }
            }
            Ok(())
        },
    );
    progress.finish();
    if let Err(e) = result {
        // Stopped early (`--strict`, an unreadable input): what was read up to there is
        // still written, its open windows as they stand (not final: the watermark stays).
        if link.as_ref().is_some_and(|l| l.fatal().is_some()) {
            return Err(link_error(&link, e, &windows, &done));
        }
        if !e.is_broken_pipe() {
            windows.flush_all(&engine.stats, &mut buf, false);
            let written = out
                .write_all(&buf)
                .and_then(|()| out.flush())
                .map_err(Error::from)
                .and_then(|()| {
                    close_link(&link, &forgotten, &engine.stats, &mut windows, &mut done)
                });
            if let Err(e) = written {
                return Err(link_error(&link, e, &windows, &done));
            }
        }
        return Err(e);
    }
    let closed = windows
        .finish(&engine.stats, &mut out)
        .and_then(|()| Ok(out.flush()?))
        .and_then(|()| close_link(&link, &forgotten, &engine.stats, &mut windows, &mut done));
    if let Err(e) = closed {
        return Err(link_error(&link, e, &windows, &done));
    }
    warn_never_seen(&engine, &seen, &origins);
    diag.finish();
    Ok(exit_status(&diag, &link))
}

/// After a reconnect: every window held is written again (`last`: the input has ended, so
/// they are written final); windows forgotten shortly before the connection broke cannot
/// be, and are counted and reported.
#[allow(clippy::too_many_arguments)]
fn resend(
    link: &Link,
    forgotten: &Forgotten,
    broke: std::time::Instant,
    stats: &StatSet,
    windows: &mut Windows,
    done: &mut [Windows],
    buf: &mut Vec<u8>,
    last: bool,
) {
    link.count_forgotten(TOOL, forgotten, broke, "--lateness", "the merger");
    for w in done.iter_mut() {
        w.resend(stats, buf, true);
    }
    windows.resend(stats, buf, last);
}

/// Everything written: wait for the link to deliver it (re-sending after a reconnect).
fn close_link(
    link: &Option<Link>,
    forgotten: &Forgotten,
    stats: &StatSet,
    windows: &mut Windows,
    done: &mut [Windows],
) -> Result<()> {
    let Some(l) = link else {
        return Ok(());
    };
    l.close(|broke, buf| resend(l, forgotten, broke, stats, windows, done, buf, true))
}

/// An error while the link had given up says why, and what it could not deliver.
fn link_error(link: &Option<Link>, e: Error, windows: &Windows, done: &[Windows]) -> Error {
    match link.as_ref().and_then(Link::fatal) {
        Some(why) => {
            let held = windows.open() + done.iter().map(Windows::open).sum::<usize>();
            Error::Runtime(format!(
                "{why}, nor the {held} windows held (their latest state)"
            ))
        }
        None => e,
    }
}

fn stamp(t: f64) -> String {
    let mut s = String::new();
    crate::time::write_rfc3339(&mut s, t);
    s
}

/// Report the first event dropped as too far ahead: of the clock (`clock`), or of the
/// stream's newest time `newest`, unconfirmed.
fn show_future(diag: &mut Diag, at: &str, t: f64, newest: f64, clock: bool, max_ahead: f64) {
    let what = if clock {
        format!(
            "event time {} is more than --max-ahead ({max_ahead} s) ahead of the clock, {}; dropped, and counted in pulse.future",
            stamp(t),
            stamp(newest)
        )
    } else {
        format!(
            "event time {} is more than --max-ahead ({max_ahead} s) ahead of the newest seen, {}, and the next event did not confirm it; dropped, and counted in pulse.future",
            stamp(t),
            stamp(newest)
        )
    };
    diag.show("future (dropped)", at, &what);
}

/// At the end of a stream: keep the event held as far ahead, if any (nothing came after it
/// to confirm it, nor can it make anything after it late), and say so.
fn drop_pending(
    engine: &Engine,
    windows: &mut Windows,
    diag: &mut Diag,
    name: &str,
    line_base: u64,
    ahead: f64,
) {
    if let Some((line, t, newest)) = windows.keep_pending(&engine.stats, diag) {
        let at = format!("{name}: line {}", line_base as i64 + line + 1);
        let what = format!(
            "event time {} is more than --max-ahead ({ahead} s) ahead of the newest seen, {}, and is the last of its input: kept",
            stamp(t),
            stamp(newest)
        );
        diag.note("far ahead at the end (kept)", &at, &what);
    }
}

/// The exit status of a run that went to its end: 1 if input lines were malformed, an
/// input could not be read, or windows may not have reached the merger of `--connect`.
fn exit_status(diag: &Diag, link: &Option<Link>) -> i32 {
    let lost = link.as_ref().map_or(0, Link::lost);
    if lost > 0 {
        eprintln!("{TOOL}: {lost} windows may not have reached the merger (see above)");
    }
    if diag.total("malformed") > 0 || diag.failed() || lost > 0 {
        EXIT_FAILURE
    } else {
        EXIT_OK
    }
}
