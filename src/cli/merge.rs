//! `pulse-merge`: fragments from any number of receivers to snapshots, sharded by stat.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser as _;
use crossbeam_channel::{bounded, RecvTimeoutError, Sender};

use crate::clock::Clock;
use crate::error::{exit_with, Diag, Error, Result, EXIT_FAILURE, EXIT_OK};
use crate::io::link::{self, Forgotten, Link};
use crate::io::listen::{self, Conns};
use crate::io::{input, output};
use crate::merge::{strip_shard_prefix, Config, Merger, Output, Reject};
use crate::record::Fragment;
use crate::shard::Shard;

const TOOL: &str = "pulse-merge";

/// Merge fragments from any number of inputs and TCP clients into snapshots.
#[derive(Debug, clap::Parser)]
#[command(
    name = "pulse-merge",
    version,
    after_help = "Examples:\n  pulse-parse app.log | pulse-fragment | pulse-merge\n  pulse-merge <(ssh a 'pulse-fragment --raw /var/log/app.log') <(ssh b '...')\n  pulse-merge --listen 0.0.0.0:7000 --shard 0/2 | pulse-emit --graphite graphite:2003\n\nSee pulse-merge(1) and pulse(7)."
)]
pub struct Args {
    /// Files or FIFOs of fragments, read concurrently; `-` is stdin. With no FILE and no
    /// --listen, reads stdin.
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Also accept TCP clients on ADDR:PORT, each an NDJSON fragment stream; runs until
    /// SIGINT or SIGTERM, then writes what is open as final.
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Option<String>,
    /// Keep only the stats of shard I of N (FNV-1a 64 of the stat name, modulo N).
    #[arg(long, value_name = "I/N")]
    pub shard: Option<Shard>,
    /// Write provisional snapshots of changed open windows this often (seconds); 0 writes
    /// final snapshots only.
    #[arg(long, value_name = "SECS", default_value_t = 1.0)]
    pub every: f64,
    /// Seconds of wall clock to wait, after the first source passed a window's end, for
    /// silent sources before making the window final.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub max_wait: f64,
    /// Re-window into windows of SECS (a multiple of the fragments' windows), e.g. 600 to
    /// turn 1-minute data into 10-minute data.
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u32).range(1..))]
    pub rollup: Option<u32>,
    /// Write snapshots, or merged fragments (under --source) for a merger above this one.
    #[arg(long, value_name = "KIND", default_value = "snapshots", value_parser = ["snapshots", "fragments"])]
    pub output: String,
    /// Forget final windows this many seconds (event time) behind the slowest source's
    /// watermark; later fragments for them are counted as too old. A source whose watermark
    /// has not moved for this many seconds of wall clock no longer counts. Default: 3600 with --listen; reading
    /// only files and FIFOs (finite), nothing is forgotten (`inf`).
    #[arg(long, value_name = "SECS")]
    pub retain: Option<f64>,
    /// Name of this merger in the fragments it writes with --output fragments [default:
    /// merge-PID, unique per process].
    #[arg(long = "source", value_name = "NAME")]
    pub source: Option<String>,
    /// The stats file(s) the receivers use: each stat's aggregate is taken from them, and a
    /// fragment of a stat with another is refused for its source. Without, a stat's
    /// aggregate is that of its first fragment.
    #[arg(short, long = "stats", value_name = "FILE")]
    pub stats: Vec<PathBuf>,
    /// Keys one stat may have in one window; a fragment opening one more is refused and
    /// counted in pulse.merge.refused.
    #[arg(long, value_name = "N", default_value_t = crate::merge::DEFAULT_MAX_KEYS, value_parser = clap::builder::TypedValueParser::map(clap::value_parser!(u64).range(1..), |n| n as usize))]
    pub max_keys: usize,
    /// Windows one source may hold (open, or final and not yet forgotten); a fragment
    /// opening one more is refused and counted in pulse.merge.refused.
    #[arg(long, value_name = "N", default_value_t = crate::merge::DEFAULT_MAX_WINDOWS, value_parser = clap::builder::TypedValueParser::map(clap::value_parser!(u64).range(1..), |n| n as usize))]
    pub max_windows: usize,
    /// Stop at the first malformed line or aggregate mismatch (exit status 1).
    #[arg(long)]
    pub strict: bool,
    /// On SIGINT or SIGTERM, stop accepting clients and read what every input still holds
    /// for at most this many seconds before writing finals; if time runs out, say on stderr
    /// what was left unread and exit 1.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub drain: f64,
    /// With --listen: clients authenticate with a token from FILE (`NAME:TOKEN` lines) sent
    /// first as `auth NAME:TOKEN`; the sources a client writes are taken as NAME/SOURCE.
    #[arg(long, value_name = "FILE", requires = "listen")]
    pub auth_file: Option<PathBuf>,
    /// With --listen on an address other machines can reach, accept clients without
    /// authentication (refused otherwise).
    #[arg(long, requires = "listen", conflicts_with = "auth_file")]
    pub no_auth: bool,
    /// With --listen: at most N clients connected at once; more are refused with a message.
    #[arg(long, value_name = "N", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_clients: u64,
    /// With --listen: close a connection that sends nothing for SECS (0: never).
    #[arg(long, value_name = "SECS", default_value_t = 300.0)]
    pub idle_timeout: f64,
    /// With --listen: the longest line a client may send; longer ones are skipped, reported
    /// and counted.
    #[arg(long, value_name = "BYTES", default_value_t = 1 << 20, value_parser = clap::value_parser!(u64).range(1024..=(1 << 30)))]
    pub max_line: u64,
    /// With --output fragments: send them to a listening merger (`pulse-merge --listen`
    /// above this one) over a connection kept open, instead of stdout: reconnected with
    /// backoff, every window held re-sent after a reconnect, input held while it is down
    /// (see LINK in pulse-merge(1)).
    #[arg(long, value_name = "HOST:PORT")]
    pub connect: Option<String>,
    /// With --connect: a file holding one `NAME:TOKEN` line (as in the upper merger's
    /// --auth-file), sent first; not readable by others.
    #[arg(long, value_name = "FILE", requires = "connect")]
    pub token_file: Option<PathBuf>,
    /// With --connect: give up (exit 1) when the merger above cannot be reached for this
    /// long, from the start or after the connection was lost (ms, s, m or h).
    #[arg(long, value_name = "DURATION", default_value = link::DEFAULT_WAIT, value_parser = link::parse_duration)]
    pub connect_wait: Duration,
    /// Use this fixed Unix time as "now" (testing).
    #[arg(long, value_name = "UNIX", hide = true)]
    pub now: Option<f64>,
}

/// An error while the link had given up says why, and what it could not deliver.
fn link_error(link: &Option<Link>, e: Error, merger: &Merger) -> Error {
    match link.as_ref().and_then(Link::fatal) {
        Some(why) => Error::Runtime(format!(
            "{why}, nor the {} windows held (their latest state)",
            merger.open()
        )),
        None => e,
    }
}

/// How long a stopped merger waits on files and FIFOs that send nothing more but have not
/// ended (upstream stages write their last fragments as they end).
const FILE_IDLE: Duration = Duration::from_millis(1500);

pub fn main() -> ! {
    // clap exits 2 on a usage error, 0 for --help and --version.
    exit_with(TOOL, run(Args::parse()))
}

enum Msg {
    /// A fragment, with its input's name and line number (for messages).
    Frag(Box<Fragment>, Arc<str>, u64),
    Bad {
        at: String,
        detail: String,
    },
    /// Reading an input failed; true for a file (which fails the run), false for a network
    /// client (whose connection simply ended).
    Failed(Error, bool),
    /// A file input ended.
    Eof,
    /// A client turned away or cut off.
    Refused(listen::Refusal),
}

/// Read one NDJSON fragment stream (records up to `max_line` bytes, gzip decompressed),
/// sending each parsed line. With an `identity` (an authenticated client), every source it
/// names is taken as `IDENTITY/SOURCE`, so no client can write another's sources.
fn read_stream(
    name: String,
    identity: Option<Arc<str>>,
    mut r: input::ChunkReader<impl Read>,
    max_line: usize,
    is_file: bool,
    tx: &Sender<Msg>,
) {
    let shared: Arc<str> = name.as_str().into();
    let mut n = 0u64;
    let mut overlong = 0;
    loop {
        let chunk = match r.next_chunk() {
            Ok(Some(chunk)) => chunk,
            Ok(None) => return,
            Err(e) => {
                let _ = tx.send(Msg::Failed(Error::io(name, e), is_file));
                return;
            }
        };
        if r.overlong > overlong {
            overlong = r.overlong;
            let at = format!("{name}: line {}", r.first_overlong.unwrap_or(0));
            let msg = Msg::Bad {
                at,
                detail: format!("a record longer than {} bytes, skipped", max_line),
            };
            if tx.send(msg).is_err() {
                return;
            }
        }
        for line in crate::io::lines::lines(&chunk) {
            n += 1;
            if line.iter().all(|b| b.is_ascii_whitespace()) {
                continue;
            }
            let msg = match serde_json::from_slice::<Fragment>(strip_shard_prefix(line)) {
                Ok(mut f) => {
                    if let Some(id) = &identity {
                        f.src = format!("{id}/{}", f.src);
                    }
                    Msg::Frag(Box::new(f), Arc::clone(&shared), n)
                }
                Err(e) => Msg::Bad {
                    at: format!("{name}: line {n}"),
                    detail: format!("not a fragment: {e}"),
                },
            };
            if tx.send(msg).is_err() {
                return;
            }
        }
    }
}

pub fn run(args: Args) -> Result<i32> {
    let retain = args.retain.unwrap_or(if args.listen.is_some() {
        3600.0
    } else {
        f64::INFINITY
    });
    for (flag, v) in [
        ("--every", args.every),
        ("--max-wait", args.max_wait),
        ("--retain", retain),
    ] {
        if v.is_nan() || v < 0.0 || (v.is_infinite() && flag != "--retain") {
            return Err(Error::Usage(format!(
                "{flag} must be a number of seconds >= 0"
            )));
        }
    }
    let clock = match args.now {
        Some(t) => Clock::Fixed(t),
        None => Clock::System,
    };
    let output_kind = if args.output == "fragments" {
        Output::Fragments
    } else {
        Output::Snapshots
    };
    let cfg = Config {
        shard: args.shard,
        rollup: args.rollup,
        max_wait: args.max_wait,
        retain,
        output: output_kind,
        src: args
            .source
            .clone()
            .unwrap_or_else(|| format!("merge-{}", std::process::id())),
        aggs: HashMap::new(),
        max_keys: args.max_keys,
        max_windows: args.max_windows,
    };
    let mut cfg = cfg;
    if !args.stats.is_empty() {
        let set = crate::cli::fragment::load_stats(&args.stats)?;
        for def in set.stats {
            cfg.aggs.insert(def.name, def.agg.to_string());
        }
    }
    if args.connect.is_some() && output_kind != Output::Fragments {
        return Err(Error::Usage(
            "--connect sends fragments to a merger above: give --output fragments".into(),
        ));
    }
    let auth = match &args.token_file {
        Some(p) => Some(link::read_token_file(p)?),
        None => None,
    };
    if !(args.idle_timeout.is_finite() && args.idle_timeout >= 0.0) {
        return Err(Error::Usage(
            "--idle-timeout must be a number of seconds >= 0".into(),
        ));
    }
    let tokens = match &args.auth_file {
        Some(p) => Some(listen::Tokens::load(p)?),
        None => None,
    };
    let listener = match &args.listen {
        Some(addr) => {
            let l = TcpListener::bind(addr)
                .map_err(|e| Error::Runtime(format!("cannot listen on {addr}: {e}")))?;
            if tokens.is_none() && !args.no_auth && !listen::is_loopback(&l) {
                return Err(Error::Usage(format!(
                    "--listen {addr} is reachable from other machines: give --auth-file FILE (clients send a token), or --no-auth to take fragments from anyone who connects"
                )));
            }
            Some(l)
        }
        None => None,
    };
    if !(args.drain.is_finite() && args.drain >= 0.0) {
        return Err(Error::Usage(
            "--drain must be a number of seconds >= 0".into(),
        ));
    }
    let inputs = if args.files.is_empty() && listener.is_some() {
        Vec::new()
    } else {
        input::open_all(&args.files, input::Kind::Records)
    };
    // SIGINT and SIGTERM end the run as the end of input would: every open window is
    // written as final (a stream from stdin is as unbounded as --listen).
    let stop = Arc::new(AtomicBool::new(false));
    crate::io::signals::stop_on_signal(&stop)?;

    let (tx, rx) = bounded::<Msg>(8192);
    let mut pending_files = inputs.len();
    for inp in inputs {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let name = inp.name.clone();
            read_stream(name, None, inp.chunks(), input::MAX_RECORD, true, &tx);
            let _ = tx.send(Msg::Eof);
        });
    }
    let conns = Arc::new(Conns::default());
    let accepting = Arc::new(AtomicBool::new(listener.is_some()));
    if let Some(l) = listener {
        l.set_nonblocking(true)
            .map_err(|e| Error::Runtime(format!("cannot listen: {e}")))?;
        listen::raise_fd_limit();
        let acceptor = listen::Acceptor {
            limits: listen::Limits {
                max_clients: args.max_clients as usize,
                idle: (args.idle_timeout > 0.0).then(|| Duration::from_secs_f64(args.idle_timeout)),
            },
            tokens: tokens.map(Arc::new),
            stop: stop.clone(),
            conns: conns.clone(),
            accepting: accepting.clone(),
        };
        let max_line = args.max_line as usize;
        let (serve_tx, refuse_tx) = (tx.clone(), tx.clone());
        std::thread::spawn(move || {
            acceptor.run(
                l,
                move |c: listen::Client| {
                    let r = input::ChunkReader::with_sizes(c.reader, 1 << 16, max_line)
                        .drop_overlong(true);
                    read_stream(c.name, c.identity, r, max_line, false, &serve_tx);
                },
                move |r: listen::Refusal| {
                    let _ = refuse_tx.send(Msg::Refused(r));
                },
            )
        });
    }
    let listening = args.listen.is_some();
    drop(tx);

    let mut merger = Merger::new(cfg, clock);
    let mut diag = Diag::new(TOOL, args.strict);
    let link = args.connect.as_ref().map(|addr| {
        Link::start(link::Options {
            addr: addr.clone(),
            auth,
            wait: args.connect_wait,
            tool: TOOL,
            budget: link::BUDGET,
        })
    });
    let mut out: Box<dyn Write> = match &link {
        Some(l) => Box::new(l.writer()),
        None => output::stdout(true),
    };
    let mut forgotten = Forgotten::default();
    let mut forgotten_seen = 0u64;
    let mut buf = Vec::with_capacity(1 << 16);
    let every = (args.every > 0.0).then(|| Duration::from_secs_f64(args.every));
    let check = Duration::from_millis(200);
    let mut last_provisional = Instant::now();
    let mut last_check = Instant::now();
    let mut too_old_reported = false;
    let mut files_failed = false;

    // After SIGINT or SIGTERM, no new client is accepted, and every input is read until it
    // holds nothing more: each connection until a read finds nothing buffered, each file
    // or FIFO to its end or until it has sent nothing for FILE_IDLE (a Ctrl-C reaches the
    // whole pipeline, and the receivers write their last fragments as they end); at most
    // for --drain.
    let mut deadline: Option<Instant> = None;
    let mut last_msg = Instant::now();
    let mut unread: Option<(u64, usize)> = None;
    loop {
        if !listening && pending_files == 0 {
            break;
        }
        if stop.load(Ordering::Relaxed) {
            let until = *deadline
                .get_or_insert_with(|| Instant::now() + Duration::from_secs_f64(args.drain));
            if Instant::now() >= until {
                let (bytes, open) = conns.unread();
                if open > 0 || pending_files > 0 {
                    unread = Some((bytes, open));
                }
                break;
            }
        }
        let msg = match rx.recv_timeout(check) {
            Ok(m) => {
                last_msg = Instant::now();
                Some(m)
            }
            Err(RecvTimeoutError::Timeout) => {
                // Nothing waiting in the channel: has every input been read out?
                if stop.load(Ordering::Relaxed)
                    && !accepting.load(Ordering::Relaxed)
                    && conns.count() == 0
                    && (pending_files == 0 || last_msg.elapsed() >= FILE_IDLE)
                {
                    break;
                }
                None
            }
            Err(RecvTimeoutError::Disconnected) => break,
        };
        match msg {
            Some(Msg::Frag(f, name, line)) => {
                if let Err(rejected) = merger.add(*f) {
                    if let Some(reason) = rejected.reason() {
                        merger.count_refused(reason, 1);
                    }
                    let at = || format!("{name}: line {line}");
                    match rejected {
                        Reject::OtherShard | Reject::Stale => {}
                        Reject::TooOld => {
                            if !too_old_reported {
                                too_old_reported = true;
                                eprintln!(
                                "{TOOL}: fragments for windows already forgotten (older than --retain) are dropped and counted"
                            );
                            }
                            diag.count("too old", 1);
                        }
                        Reject::Bad(m) => diag.bad("malformed", &at(), &m)?,
                        // Reported once per source and stat (each is its own mistake, or its
                        // own attacker), counted always.
                        Reject::Mismatch(m, first) => {
                            if args.strict {
                                diag.bad("mismatch", &at(), &m)?;
                            }
                            if first {
                                crate::error::warn(TOOL, &format!("{}: mismatch: {m}", at()));
                            }
                            diag.count("mismatch", 1);
                        }
                        Reject::RevAhead(m) => diag.bad("rev ahead", &at(), &m)?,
                        Reject::Bound(kind, m) => {
                            let kind = if kind == "keys" {
                                "over --max-keys"
                            } else {
                                "over --max-windows"
                            };
                            diag.show(kind, &at(), &m);
                            diag.count(kind, 1);
                        }
                    }
                }
            }
            Some(Msg::Bad { at, detail }) => diag.bad("malformed", &at, &detail)?,
            // One input failing (a client's connection reset, an unreadable file) ends that
            // input only: the others go on, and what was merged is still written.
            Some(Msg::Failed(e, is_file)) => {
                if args.strict {
                    return Err(e);
                }
                crate::error::warn(
                    TOOL,
                    &format!("{e} (that input ends here; the others go on)"),
                );
                files_failed |= is_file;
            }
            Some(Msg::Eof) => pending_files -= 1,
            Some(Msg::Refused(r)) => {
                diag.show(r.kind, &r.peer, &r.detail);
                diag.count(r.kind, 1);
                let reason = r.kind.split_once(": ").map_or(r.kind, |(_, why)| why);
                merger.count_refused(&reason.replace(' ', "_"), 1);
            }
            None => {}
        }
        if last_check.elapsed() >= check {
            last_check = Instant::now();
            let provisional = every.is_some_and(|e| last_provisional.elapsed() >= e);
            if provisional {
                last_provisional = Instant::now();
            }
            if let Some(l) = &link {
                if let Some(broke) = l.take_resend() {
                    l.count_forgotten(TOOL, &forgotten, broke, "--retain", "the merger above");
                    merger.resend(&mut buf, false);
                }
            }
            merger.poll(provisional, &mut buf);
            forgotten.add(merger.forgotten - forgotten_seen);
            forgotten_seen = merger.forgotten;
            if !buf.is_empty() {
                let written = out.write_all(&buf).and_then(|()| out.flush());
                written.map_err(|e| link_error(&link, e.into(), &merger))?;
                buf.clear();
            }
        }
    }
    merger.finish(&mut buf);
    let written = out
        .write_all(&buf)
        .and_then(|()| out.flush())
        .map_err(Error::from)
        .and_then(|()| match &link {
            Some(l) => l.close(|broke, b| {
                l.count_forgotten(TOOL, &forgotten, broke, "--retain", "the merger above");
                merger.resend(b, true)
            }),
            None => Ok(()),
        });
    written.map_err(|e| link_error(&link, e, &merger))?;
    diag.finish();
    let lost = link.as_ref().map_or(0, Link::lost);
    if lost > 0 {
        eprintln!("{TOOL}: {lost} windows may not have reached the merger above (see above)");
        return Ok(EXIT_FAILURE);
    }
    if let Some((bytes, open)) = unread {
        let files = if pending_files > 0 {
            format!(" and {pending_files} file inputs not read to their end")
        } else {
            String::new()
        };
        eprintln!(
            "{TOOL}: stopped with {bytes} bytes unread on {open} connections{files} (--drain {} s ran out)",
            args.drain
        );
        return Ok(EXIT_FAILURE);
    }
    // A file that could not be read fails the run; a network client's failure does not, nor
    // do bad lines of a listening merger (a service whose stop would otherwise look like a
    // failure after one stray connection): they are reported on stderr as they come.
    let bad_lines = diag.total("malformed") + diag.total("mismatch") + diag.total("rev ahead") > 0;
    Ok(if files_failed || (bad_lines && args.listen.is_none()) {
        EXIT_FAILURE
    } else {
        EXIT_OK
    })
}
