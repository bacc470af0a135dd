//! `pulse-alert`: rules over snapshots, check results as a stream.
//!
//! Snapshots (NDJSON from pulse-merge) are read from stdin or files and stepped through the
//! rules' state machines ([`crate::alert::Engine`]); every transition is written to stdout
//! (NDJSON, or a table) and, with `--webhook`, POSTed in Alertmanager's webhook shape
//! ([`crate::alert::webhook`]). With `--state FILE` every instance's state, the input
//! checkpoints (files are then read from where the last run stopped, as `pulse-emit --state`
//! does) and what was not delivered to a webhook survive the run; the file is replaced
//! atomically ([`crate::sink::state::write_atomic`]).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::{CommandFactory, Parser, ValueEnum};
use serde::{Deserialize, Serialize};

use crate::alert::{
    webhook, Config, Engine, Records, Rule, Rules, Saved, Status, Transition, View,
};
use crate::error::{exit_with, Diag, Error, Result, EXIT_FAILURE, EXIT_OK};
use crate::io::input::{open_all, Kind};
use crate::io::lines::lines;
use crate::sink::http::{Http, Target};
use crate::sink::state::{self, Entry};
use crate::sink::{parse_snapshot_ref, read_plain, Backoff};
use crate::time::format_rfc3339;

const TOOL: &str = "pulse-alert";

/// Alerts per webhook POST.
const ALERTS_PER_POST: usize = 200;

/// How often the main loop looks up while the input is idle (webhook retries, state).
const TICK: Duration = Duration::from_millis(200);

/// How long a stopped stream is still read (what upstream writes as it ends).
const DRAIN: Duration = Duration::from_secs(3);

/// How often, at most, the state is saved while streaming when no transition was written.
const SAVE_EVERY: Duration = Duration::from_secs(1);

const AFTER_HELP: &str = "\
Rules: one per line, NAME STAT[KEY] VALUE CONDITION [for D] [clear N] [keep D] [severity S]
[\"SUMMARY\"]; see pulse.rules(5). Time is the snapshots' own: replaying a day gives the
transitions watching it live gave.

Examples:
  pulse-merge --listen 0.0.0.0:7000 | pulse-alert --rules ops.rules | kcat -P -t check-results
  pulse-alert --rules ops.rules --format table day.snapshots.ndjson
  ALERT_URLS=https://bot:TOKEN@hooks.example.com/alertmanager pulse-alert --rules ops.rules ...
A crontab line, evaluating each minute what was appended since the last run:
  * * * * * pulse-alert --rules ops.rules --state alert.state snaps.ndjson >> checks.ndjson";

/// How transitions are written on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// One JSON object per transition (the check-result record).
    Json,
    /// Aligned columns, for people.
    Table,
    /// Nothing on stdout (webhooks only).
    None,
}

/// Evaluate alert rules over snapshots (NDJSON from pulse-merge): check results on stdout.
#[derive(Parser, Debug)]
#[command(name = TOOL, version, after_help = AFTER_HELP)]
pub struct Args {
    /// Snapshot files (NDJSON); none, or `-`, reads stdin.
    #[arg(value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,

    /// A rules file (see pulse.rules(5)); repeat for more.
    #[arg(long, short = 'r', value_name = "FILE", required = true)]
    pub rules: Vec<PathBuf>,

    /// How to write transitions on stdout.
    #[arg(
        long,
        short = 'f',
        value_enum,
        value_name = "FORMAT",
        default_value = "json"
    )]
    pub format: Format,

    /// Also write pending transitions, and `ok` when a pending alert's condition stopped
    /// holding before it fired.
    #[arg(long)]
    pub pending: bool,

    /// State every firing alert again once per DURATION of event time (5m, 1h).
    #[arg(long, value_name = "DURATION", value_parser = parse_secs)]
    pub repeat: Option<u32>,

    /// Also evaluate provisional snapshots: what they give is written with
    /// `"provisional":true`, and withdrawn if the window's final snapshot says otherwise.
    #[arg(long)]
    pub early: bool,

    /// Windows each instance keeps so that late data (a final snapshot sent again with new
    /// values) can correct its transitions.
    #[arg(long, value_name = "N", default_value = "10")]
    pub horizon: u32,

    /// Keep every instance's state, the input checkpoints and undelivered webhook alerts in
    /// FILE (written atomically): a restarted run neither fires again what is firing nor
    /// misses a resolution, and files are read from where the last run stopped.
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,

    /// POST firing and resolved transitions to URL in Alertmanager's webhook shape; repeat
    /// for more. Basic auth from the URL's user info (never shown).
    #[arg(
        long,
        env = "ALERT_URLS",
        hide_env_values = true,
        value_name = "URL",
        value_delimiter = ','
    )]
    pub webhook: Vec<String>,

    /// Timeout of one webhook request.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_timeout)]
    pub webhook_timeout: Duration,

    /// Tries of one webhook request (with backoff) before giving up until later.
    #[arg(long, value_name = "N", default_value = "3")]
    pub webhook_tries: u32,

    /// Flush stdout after every line (for `tail -f`-style pipes).
    #[arg(long)]
    pub line_buffered: bool,

    /// Stop at the first bad input line.
    #[arg(long)]
    pub strict: bool,
}

/// A whole number of seconds: `90s`, `5m`, `1h`.
fn parse_secs(s: &str) -> std::result::Result<u32, String> {
    crate::spec::duration(s)
}

fn parse_timeout(s: &str) -> std::result::Result<Duration, String> {
    let d = crate::io::link::parse_duration(s)?;
    if d.is_zero() {
        return Err("a timeout above 0".into());
    }
    Ok(d)
}

/// The clap command (for `--help`, man page and tests).
pub fn command() -> clap::Command {
    Args::command()
}

pub fn main() -> ! {
    let args = Args::parse();
    exit_with(TOOL, run(args))
}

/// The state file.
#[derive(Debug, Default, Serialize, Deserialize)]
struct StateFile {
    version: u32,
    /// Event time: the newest window end seen.
    clock: Option<i64>,
    #[serde(default)]
    inputs: Vec<Entry>,
    #[serde(default)]
    instances: Vec<Saved>,
    /// Alerts not yet delivered, per webhook (as messages show its URL).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    undelivered: BTreeMap<String, Vec<serde_json::Value>>,
}

fn load_state(path: &Path) -> Result<StateFile> {
    let Some(text) = state::read_no_follow(path)? else {
        return Ok(StateFile {
            version: 1,
            ..StateFile::default()
        });
    };
    let s: StateFile = serde_json::from_slice(&text).map_err(|e| {
        Error::Runtime(format!(
            "{}: not a pulse-alert state file ({e}); move it away to start over",
            path.display()
        ))
    })?;
    if s.version != 1 {
        return Err(Error::Runtime(format!(
            "{}: state file version {} not understood",
            path.display(),
            s.version
        )));
    }
    Ok(s)
}

/// One webhook and what it still has to deliver.
struct Hook {
    http: Http,
    queue: Vec<serde_json::Value>,
    /// Not before this instant (backoff after a failure).
    next: Option<Instant>,
    backoff: Backoff,
    failing: bool,
}

impl Hook {
    /// Send what is queued, oldest first; stops at the first failure (reported once per
    /// run of failures) and waits out a backoff before trying again, unless `now`.
    fn flush(&mut self, now: bool) -> Result<()> {
        if self.queue.is_empty() || (!now && self.next.is_some_and(|t| Instant::now() < t)) {
            return Ok(());
        }
        while !self.queue.is_empty() {
            let n = self.queue.len().min(ALERTS_PER_POST);
            let body = serde_json::to_vec(&webhook::body(&self.queue[..n]))
                .map_err(|e| Error::Runtime(e.to_string()))?;
            match self.http.deliver(&body) {
                Ok(()) => {
                    self.queue.drain(..n);
                    self.backoff.reset();
                    self.next = None;
                    if std::mem::take(&mut self.failing) {
                        crate::error::warn(
                            TOOL,
                            &format!("POST {}: delivering again", self.http.shown()),
                        );
                    }
                }
                Err(e) => {
                    self.next = Some(Instant::now() + self.backoff.next_delay());
                    if !std::mem::replace(&mut self.failing, true) {
                        crate::error::warn(
                            TOOL,
                            &format!("{e}; {} alerts kept for later", self.queue.len()),
                        );
                    }
                    return Err(e);
                }
            }
        }
        Ok(())
    }
}

/// What the writer thread is handed.
enum ToWriter {
    Batch(Vec<Transition>),
    /// Flush stdout, then answer (before a state file is saved, and at the end).
    Sync(crossbeam_channel::Sender<()>),
}

/// Batches of transitions a writer thread may hold before the engine waits for it.
const WRITER_QUEUE: usize = 2;

/// Transitions in a batch for the writer, at most: enough to make handing over cheap, few
/// enough that batches in flight hold little memory.
const BATCH: usize = 4096;

/// Bytes the writer formats before it writes them out.
const WRITE_AT: usize = 64 * 1024;

/// Write the transitions handed over on stdout, as `format` says, until the sender is gone;
/// the output is flushed whenever nothing more is waiting.
fn write_loop(
    rx: crossbeam_channel::Receiver<ToWriter>,
    mut records: Records,
    format: Format,
    line_buffered: bool,
) -> Result<()> {
    let mut w = crate::io::output::stdout(line_buffered);
    let mut buf = Vec::new();
    // Width of the rule column of the table.
    let rule_w = records
        .rules
        .iter()
        .map(|r| r.name.len())
        .max()
        .unwrap_or(4);
    let mut header = false;
    for msg in rx.iter() {
        match msg {
            ToWriter::Batch(ts) => {
                buf.clear();
                for t in &ts {
                    match format {
                        Format::None => {}
                        Format::Json => records.write_json(t, &mut buf),
                        Format::Table => table(&mut buf, &mut header, rule_w, &records.rules, t),
                    }
                    if buf.len() >= WRITE_AT {
                        w.write_all(&buf).map_err(|e| Error::io("stdout", e))?;
                        buf.clear();
                    }
                }
                w.write_all(&buf).map_err(|e| Error::io("stdout", e))?;
                if rx.is_empty() {
                    w.flush().map_err(|e| Error::io("stdout", e))?;
                }
            }
            ToWriter::Sync(done) => {
                w.flush().map_err(|e| Error::io("stdout", e))?;
                let _ = done.send(());
            }
        }
    }
    w.flush().map_err(|e| Error::io("stdout", e))
}

fn table(buf: &mut Vec<u8>, header: &mut bool, rule_w: usize, rules: &[Rule], t: &Transition) {
    let rule = &rules[t.rule];
    if !*header {
        *header = true;
        let _ = writeln!(
            buf,
            "{:<20}  {:<10}  {:<rw$}  {:<24}  {:>12}  {:>12}  SUMMARY",
            "WINDOW",
            "STATE",
            "RULE",
            "KEY",
            "VALUE",
            "THRESHOLD",
            rw = rule_w
        );
    }
    let mut state = t.status.as_str().to_string();
    if t.withdrawn {
        state = format!("-{state}");
    } else if t.correction {
        state = format!("~{state}");
    }
    let _ = writeln!(
        buf,
        "{:<20}  {:<10}  {:<rw$}  {:<24}  {:>12}  {:>12}  {}",
        format_rfc3339(t.start),
        state,
        rule.name,
        t.key.as_deref().unwrap_or("-"),
        t.value.map_or("-".into(), crate::alert::fmt_num),
        t.threshold.text(),
        crate::sink::text::escape(&t.summary(rule)),
        rw = rule_w
    );
}

/// What is done with transitions: handed to the writer thread for stdout (so that the
/// records are made while the engine goes on), queued for webhooks.
struct Out {
    tx: Option<crossbeam_channel::Sender<ToWriter>>,
    writer: Option<std::thread::JoinHandle<Result<()>>>,
    /// Transitions to be written, handed over at the next flush.
    batch: Vec<Transition>,
    written: bool,
    pending: bool,
    hooks: Vec<Hook>,
}

impl Out {
    fn new(records: Records, format: Format, line_buffered: bool, pending: bool) -> Out {
        let (tx, rx) = crossbeam_channel::bounded(WRITER_QUEUE);
        let writer = std::thread::spawn(move || write_loop(rx, records, format, line_buffered));
        Out {
            tx: Some(tx),
            writer: Some(writer),
            batch: Vec::new(),
            written: format != Format::None,
            pending,
            hooks: Vec::new(),
        }
    }

    fn take(&mut self, engine: &Engine, ts: &mut Vec<Transition>) -> Result<()> {
        if !self.hooks.is_empty() {
            for t in ts.iter().filter(|t| webhook::wanted(t)) {
                for h in &mut self.hooks {
                    h.queue.push(webhook::alert(t, &engine.rules));
                }
            }
        }
        if !self.written {
            ts.clear();
            return Ok(());
        }
        if !self.pending {
            ts.retain(|t| !matches!(t.status, Status::Pending | Status::Ok));
        }
        self.batch.append(ts);
        if self.batch.len() >= BATCH {
            self.send()?;
        }
        Ok(())
    }

    /// Hand the batch to the writer.
    fn send(&mut self) -> Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.batch);
        let sent = self
            .tx
            .as_ref()
            .is_some_and(|tx| tx.send(ToWriter::Batch(batch)).is_ok());
        if !sent {
            return Err(self.writer_failed());
        }
        Ok(())
    }

    /// Everything taken so far is on stdout, flushed.
    fn sync(&mut self) -> Result<()> {
        self.send()?;
        let (done, wait) = crossbeam_channel::bounded(1);
        let sent = self
            .tx
            .as_ref()
            .is_some_and(|tx| tx.send(ToWriter::Sync(done)).is_ok());
        if !sent || wait.recv().is_err() {
            return Err(self.writer_failed());
        }
        Ok(())
    }

    /// The writer stopped: why.
    fn writer_failed(&mut self) -> Error {
        self.tx = None;
        match self.writer.take().map(std::thread::JoinHandle::join) {
            Some(Ok(Err(e))) => e,
            _ => Error::Runtime("the writer of stdout stopped".into()),
        }
    }

    /// Hand over what was taken (and, if `now`, wait until it is on stdout), and deliver to
    /// the webhooks what they have queued: false if a webhook could not take it.
    fn flush(&mut self, now: bool) -> Result<bool> {
        if now {
            self.sync()?;
        } else {
            self.send()?;
        }
        let mut ok = true;
        for h in &mut self.hooks {
            ok &= h.flush(now).is_ok();
        }
        Ok(ok)
    }

    /// Write what is left and stop the writer.
    fn finish(mut self) -> Result<()> {
        self.send()?;
        self.tx = None;
        match self.writer.take().map(std::thread::JoinHandle::join) {
            Some(Ok(r)) => r,
            _ => Err(Error::Runtime("the writer of stdout stopped".into())),
        }
    }
}

fn is_stdin(p: &Path) -> bool {
    p.as_os_str() == "-"
}

pub fn run(args: Args) -> Result<i32> {
    let mut rules = Rules::default();
    for p in &args.rules {
        let text = std::fs::read_to_string(p)
            .map_err(|e| Error::Usage(format!("{}: {}", p.display(), e)))?;
        rules
            .extend_from(&text, &p.display().to_string())
            .map_err(|e| Error::Usage(e.to_string()))?;
    }
    if rules.rules.is_empty() {
        return Err(Error::Usage(
            "the rules files define no rule (see pulse.rules(5))".into(),
        ));
    }
    if args.horizon == 0 {
        return Err(Error::Usage("--horizon must be at least 1".into()));
    }
    let mut hooks = Vec::new();
    for url in args.webhook.iter().filter(|u| !u.trim().is_empty()) {
        let target = Target::parse(url).map_err(|e| match e {
            Error::Usage(m) => Error::Usage(m.replacen("metrics URL", "--webhook", 1)),
            e => e,
        })?;
        hooks.push(Hook {
            http: Http::new(target, args.webhook_tries, args.webhook_timeout),
            queue: Vec::new(),
            next: None,
            backoff: Backoff::new(Duration::from_secs(1), Duration::from_secs(60)),
            failing: false,
        });
    }
    let mut engine = Engine::new(
        rules,
        Config {
            horizon: args.horizon,
            repeat: args.repeat.map(i64::from),
            early: args.early,
        },
    );
    let _lock = match &args.state {
        Some(p) => Some(state::lock_for(p, TOOL, "evaluating")?),
        None => None,
    };
    let mut saved = match &args.state {
        Some(p) => load_state(p)?,
        None => StateFile::default(),
    };
    let dropped = engine.restore(std::mem::take(&mut saved.instances), saved.clock);
    if dropped > 0 {
        crate::error::warn(
            TOOL,
            &format!("{dropped} instances of rules no longer defined were dropped"),
        );
    }
    for h in &mut hooks {
        if let Some(q) = saved.undelivered.remove(h.http.shown()) {
            h.queue = q;
        }
    }
    let mut out = Out::new(
        Records::new(&engine.rules),
        args.format,
        args.line_buffered,
        args.pending,
    );
    out.hooks = hooks;
    // Send what an earlier run could not.
    out.flush(true)?;

    let mut diag = Diag::new(TOOL, args.strict);
    let mut ts = Vec::new();
    let files_with_state =
        args.state.is_some() && !args.inputs.is_empty() && !args.inputs.iter().any(|p| is_stdin(p));
    if files_with_state {
        let prev = state::State {
            version: 1,
            inputs: std::mem::take(&mut saved.inputs),
            resend: Vec::new(),
        };
        let next = state::read_new(
            &prev,
            &args.inputs,
            &mut |label, n, line| {
                take(&mut diag, &mut engine, label, n, line, &mut ts)?;
                out.take(&engine, &mut ts)
            },
            &mut |note| crate::error::warn(TOOL, &note),
        )?;
        saved.inputs = next.inputs;
    } else {
        let inputs = if args.inputs.is_empty() {
            vec![PathBuf::from("-")]
        } else {
            args.inputs.clone()
        };
        let saver = Saver {
            path: args.state.clone(),
            inputs: saved.inputs.clone(),
            last: Instant::now(),
            dirty: false,
        };
        stream(&inputs, &mut diag, &mut engine, &mut out, saver)?;
    }
    let delivered = out.flush(true)?;
    if engine.too_late > 0 {
        diag.count("too late to correct", engine.too_late);
    }
    if let Some(p) = &args.state {
        save_state(p, &engine, &saved.inputs, &out.hooks)?;
    }
    out.finish()?;
    diag.finish();
    if !delivered || diag.failed() {
        return Ok(EXIT_FAILURE);
    }
    Ok(EXIT_OK)
}

/// Write the state file: every instance, the event time, the input checkpoints and what the
/// webhooks still have to deliver.
fn save_state(path: &Path, engine: &Engine, inputs: &[Entry], hooks: &[Hook]) -> Result<()> {
    let s = StateFile {
        version: 1,
        clock: engine.clock,
        inputs: inputs.to_vec(),
        instances: engine.save(),
        undelivered: hooks
            .iter()
            .filter(|h| !h.queue.is_empty())
            .map(|h| (h.http.shown().to_string(), h.queue.clone()))
            .collect(),
    };
    let mut json = serde_json::to_vec(&s).map_err(|e| Error::Runtime(e.to_string()))?;
    json.push(b'\n');
    state::write_atomic(path, &json)
}

/// While streaming, the state file is saved after every chunk that wrote a transition (once
/// it was written, so a restart may repeat one, never miss one) and at most once a second
/// otherwise.
struct Saver {
    path: Option<PathBuf>,
    inputs: Vec<Entry>,
    last: Instant,
    dirty: bool,
}

impl Saver {
    fn maybe(&mut self, engine: &Engine, out: &mut Out, wrote: bool) -> Result<()> {
        let Some(p) = &self.path else { return Ok(()) };
        if wrote || (self.dirty && self.last.elapsed() >= SAVE_EVERY) {
            // What the state says was evaluated is on stdout first.
            out.sync()?;
            save_state(p, engine, &self.inputs, &out.hooks)?;
            self.last = Instant::now();
            self.dirty = false;
        }
        Ok(())
    }
}

/// What the reader thread hands over.
enum Msg {
    /// A chunk of input `.0` that is not all UTF-8: read line by line as it is.
    Chunk(usize, Vec<u8>),
    /// A chunk of input `.0`, its lines read on the reader thread.
    Parsed(usize, Parsed),
    Failed(Error),
}

/// A chunk of snapshot lines, read on the reader thread so that the engine's thread only
/// evaluates: the lines in the merger's exact form ([`read_plain`]) as spans of the text,
/// the others left for the engine's thread to read (and report).
struct Parsed {
    text: String,
    lines: Vec<Line>,
    /// The values of the plain lines: name span and value.
    values: Vec<(usize, usize, f64)>,
}

enum Line {
    Plain {
        stat: (usize, usize),
        key: Option<(usize, usize)>,
        start: i64,
        secs: u32,
        is_final: bool,
        values: (usize, usize),
    },
    Other(usize, usize),
}

impl Parsed {
    fn new(text: String) -> Parsed {
        let base = text.as_ptr() as usize;
        let span = |s: &str| {
            let a = s.as_ptr() as usize - base;
            (a, a + s.len())
        };
        let mut lines_read = Vec::new();
        let mut values = Vec::new();
        let mut vals: Vec<(&str, f64)> = Vec::new();
        for line in lines(text.as_bytes()) {
            vals.clear();
            lines_read.push(match read_plain(line, &mut vals) {
                Some(h) => {
                    let from = values.len();
                    values.extend(vals.iter().map(|&(n, v)| {
                        let (a, b) = span(n);
                        (a, b, v)
                    }));
                    Line::Plain {
                        stat: span(h.stat),
                        key: h.key.map(span),
                        start: h.start,
                        secs: h.secs,
                        is_final: h.is_final,
                        values: (from, values.len()),
                    }
                }
                None => {
                    let a = line.as_ptr() as usize - base;
                    Line::Other(a, a + line.len())
                }
            });
        }
        Parsed {
            text,
            lines: lines_read,
            values,
        }
    }
}

/// Read `inputs` on a thread and evaluate what comes, retrying webhooks and saving the state
/// while the input is idle. SIGINT and SIGTERM end the run as at the end of input, after
/// taking for up to [`DRAIN`] what upstream still writes as it ends.
fn stream(
    inputs: &[PathBuf],
    diag: &mut Diag,
    engine: &mut Engine,
    out: &mut Out,
    mut saver: Saver,
) -> Result<()> {
    let inputs = open_all(inputs, Kind::Records);
    let names: Vec<String> = inputs.iter().map(|i| i.name.clone()).collect();
    let (tx, rx) = crossbeam_channel::bounded::<Msg>(2);
    std::thread::spawn(move || {
        for (idx, input) in inputs.into_iter().enumerate() {
            let name = input.name.clone();
            let mut r = input.chunks();
            loop {
                match r.next_chunk() {
                    Ok(Some(chunk)) => {
                        let msg = match String::from_utf8(chunk) {
                            Ok(text) => Msg::Parsed(idx, Parsed::new(text)),
                            Err(e) => Msg::Chunk(idx, e.into_bytes()),
                        };
                        if tx.send(msg).is_err() {
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
    });
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    crate::io::signals::stop_on_signal(&stop)?;
    let mut drain_until: Option<Instant> = None;
    let mut line_no = vec![0u64; names.len()];
    let mut ts = Vec::new();
    loop {
        if stop.load(std::sync::atomic::Ordering::Relaxed) {
            let until = *drain_until.get_or_insert_with(|| Instant::now() + DRAIN);
            if Instant::now() >= until {
                break;
            }
        }
        let wrote = match rx.recv_timeout(TICK) {
            Ok(Msg::Chunk(idx, chunk)) => {
                let mut wrote = false;
                for line in lines(&chunk) {
                    line_no[idx] += 1;
                    take(diag, engine, &names[idx], line_no[idx], line, &mut ts)?;
                    wrote |= !ts.is_empty();
                    out.take(engine, &mut ts)?;
                }
                wrote
            }
            Ok(Msg::Parsed(idx, p)) => {
                let mut wrote = false;
                let t = p.text.as_str();
                let values: Vec<(&str, f64)> =
                    p.values.iter().map(|&(a, b, v)| (&t[a..b], v)).collect();
                for line in &p.lines {
                    line_no[idx] += 1;
                    match *line {
                        Line::Plain {
                            stat,
                            key,
                            start,
                            secs,
                            is_final,
                            values: (from, to),
                        } => {
                            let view = View {
                                stat: &t[stat.0..stat.1],
                                key: key.map(|(a, b)| &t[a..b]),
                                start,
                                secs,
                                is_final,
                                values: &values[from..to],
                            };
                            engine.add_view(&view, &mut ts);
                        }
                        Line::Other(a, b) => {
                            let line = &t.as_bytes()[a..b];
                            take(diag, engine, &names[idx], line_no[idx], line, &mut ts)?;
                        }
                    }
                    wrote |= !ts.is_empty();
                    out.take(engine, &mut ts)?;
                }
                wrote
            }
            Ok(Msg::Failed(e)) => {
                diag.input_failed(e)?;
                continue;
            }
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                out.flush(false)?;
                saver.maybe(engine, out, false)?;
                continue;
            }
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
        };
        saver.dirty = true;
        out.flush(false)?;
        saver.maybe(engine, out, wrote)?;
    }
    Ok(())
}

fn take(
    diag: &mut Diag,
    engine: &mut Engine,
    name: &str,
    n: u64,
    line: &[u8],
    ts: &mut Vec<Transition>,
) -> Result<()> {
    if line.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    match parse_snapshot_ref(line) {
        Ok(s) => engine.add_ref(&s, ts),
        Err(e) => diag.bad("bad", &format!("{name}: line {n}"), &e)?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clap_definition_is_valid() {
        command().debug_assert();
    }
}
