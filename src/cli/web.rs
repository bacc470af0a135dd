//! `pulse-web`: a live dashboard of the snapshots, with a JSON API and `/metrics`.
//!
//! Snapshots are read from stdin, from files, or by following a file a merger appends to
//! (`--follow`, across rotation, as `pulse-emit --state` does but with the checkpoint in
//! memory). The history lives in [`crate::web::History`]; the routes are
//! [`crate::web::routes`], served by [`crate::web::http`].

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{CommandFactory, Parser};

use crate::alert::{Config, Engine, Rules};
use crate::error::{exit_with, Diag, Error, Result, EXIT_OK};
use crate::io::input::{open_all, Kind};
use crate::io::lines::lines;
use crate::io::listen::{is_loopback, Tokens};
use crate::sink::state::{self, State};
use crate::sink::{parse_snapshot_ref, SnapshotRef};
use crate::web::dashboard::Dashboard;
use crate::web::http::{serve, Shared};
use crate::web::{History, Keep};

const TOOL: &str = "pulse-web";

/// How often `--follow` looks for what was appended.
const POLL: Duration = Duration::from_millis(200);

const AFTER_HELP: &str = "\
Routes: / (the page), /api/stats, /api/series?stat=&key=&value=[&format=csv], /api/snapshots,
/metrics (Prometheus), /events (Server-Sent Events).

Examples:
  pulse-parse access.log | pulse-fragment | pulse-merge | pulse-web
  pulse-merge --listen 0.0.0.0:7000 >> snaps.ndjson &  pulse-web --follow snaps.ndjson
  WEB_AUTH=ops:a-long-password-here pulse-web --listen 0.0.0.0:8080 --follow snaps.ndjson";

/// Serve a live dashboard of snapshots (NDJSON from pulse-merge), a JSON API and /metrics.
#[derive(Parser, Debug)]
#[command(name = TOOL, version, after_help = AFTER_HELP)]
pub struct Args {
    /// Snapshot files (NDJSON), read once; none, or `-`, reads stdin (unless --follow).
    #[arg(value_name = "INPUT")]
    pub inputs: Vec<PathBuf>,

    /// Follow a snapshot file a merger appends to: read it from the start (only the recent
    /// history is kept), then what is appended, across rotation.
    #[arg(long, value_name = "FILE")]
    pub follow: Option<PathBuf>,

    /// Address to serve on. A non-loopback address needs auth (WEB_AUTH or --auth-file) or
    /// --no-auth.
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:8080")]
    pub listen: String,

    /// History per series: this many windows (60), or a duration (90s, 30m, 2h).
    #[arg(long, value_name = "N|DURATION", default_value = "60", value_parser = parse_keep)]
    pub history: Keep,

    /// At most this many series (stat, key and value name); snapshots of more are counted
    /// as overflow, shown on the page, and dropped.
    #[arg(long, value_name = "N", default_value = "20000")]
    pub max_series: usize,

    /// Which stats to show, in which order, with titles, units and thresholds (see
    /// pulse.dashboard(5)).
    #[arg(long, value_name = "FILE")]
    pub dashboard: Option<PathBuf>,

    /// Alert rules (see pulse.rules(5)), evaluated as pulse-alert does: a cell with a firing
    /// alert is coloured by its severity. Repeat for more.
    #[arg(long, value_name = "FILE")]
    pub rules: Vec<PathBuf>,

    /// HTTP basic auth for every route: USER:PASSWORD (the password at least 16 bytes).
    #[arg(
        long,
        env = "WEB_AUTH",
        hide_env_values = true,
        value_name = "USER:PASSWORD"
    )]
    pub web_auth: Option<String>,

    /// HTTP basic auth from a file of USER:PASSWORD lines (# comments).
    #[arg(long, value_name = "FILE")]
    pub auth_file: Option<PathBuf>,

    /// Serve a non-loopback address without auth.
    #[arg(long)]
    pub no_auth: bool,
}

/// `60` windows, or `90s`, `30m`, `2h`.
fn parse_keep(s: &str) -> std::result::Result<Keep, String> {
    let s = s.trim();
    if let Ok(n) = s.parse::<usize>() {
        return if n == 0 {
            Err("at least 1 window".into())
        } else {
            Ok(Keep::Windows(n))
        };
    }
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: i64 = num
        .parse()
        .map_err(|_| format!("{s:?}: a number of windows, or a duration such as 2h"))?;
    let mult = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => return Err(format!("{s:?}: unit must be s, m, h or d")),
    };
    if n == 0 {
        return Err("a duration above 0".into());
    }
    Ok(Keep::Secs(n.saturating_mul(mult)))
}

/// The clap command (for `--help`, man page and tests).
pub fn command() -> clap::Command {
    Args::command()
}

pub fn main() -> ! {
    let args = Args::parse();
    exit_with(TOOL, run(args))
}

pub fn run(args: Args) -> Result<i32> {
    if args.max_series == 0 {
        return Err(Error::Usage("--max-series must be at least 1".into()));
    }
    let auth = match (&args.web_auth, &args.auth_file) {
        (Some(_), Some(_)) => {
            return Err(Error::Usage(
                "WEB_AUTH and --auth-file: give one of them".into(),
            ))
        }
        (Some(a), None) => Some(Tokens::parse(a, "WEB_AUTH")?),
        (None, Some(p)) => Some(Tokens::load(p)?),
        (None, None) => None,
    };
    let dashboard = match &args.dashboard {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .map_err(|e| Error::Usage(format!("{}: {e}", p.display())))?;
            Dashboard::parse(&text).map_err(|e| Error::Usage(format!("{}: {e}", p.display())))?
        }
        None => Dashboard::default(),
    };
    let mut alerts = if args.rules.is_empty() {
        None
    } else {
        let mut rules = Rules::default();
        for p in &args.rules {
            let text = std::fs::read_to_string(p)
                .map_err(|e| Error::Usage(format!("{}: {e}", p.display())))?;
            rules
                .extend_from(&text, &p.display().to_string())
                .map_err(|e| Error::Usage(e.to_string()))?;
        }
        Some(Engine::new(rules, Config::default()))
    };
    let listener = TcpListener::bind(&args.listen)
        .map_err(|e| Error::io(format!("--listen {}", args.listen), e))?;
    if auth.is_none() && !args.no_auth && !is_loopback(&listener) {
        return Err(Error::Usage(format!(
            "--listen {}: not a loopback address, and no auth: set WEB_AUTH or --auth-file, or say --no-auth",
            args.listen
        )));
    }
    let shared = Arc::new(Shared::new(
        History::new(args.history, args.max_series),
        dashboard,
        auth,
    ));
    let addr = listener
        .local_addr()
        .map_err(|e| Error::io("--listen", e))?;
    crate::error::warn(TOOL, &format!("serving http://{addr}/"));
    let s = shared.clone();
    std::thread::Builder::new()
        .name("web-accept".into())
        .spawn(move || serve(listener, s))
        .map_err(|e| Error::io("accept thread", e))?;

    let mut diag = Diag::new(TOOL, false);
    if let Some(path) = &args.follow {
        follow(path, &shared, &mut diag, &mut alerts)?;
    }
    let stdin_too = args.follow.is_none() && args.inputs.is_empty();
    let inputs = if stdin_too {
        vec![PathBuf::from("-")]
    } else {
        args.inputs.clone()
    };
    let mut first: Option<Instant> = None;
    // Snapshots in the last chunk: the next batch's capacity.
    let mut room = 0;
    for input in open_all(&inputs, Kind::Records) {
        let name = input.name.clone();
        let mut r = input.chunks();
        let mut n = 0u64;
        loop {
            match r.next_chunk() {
                Ok(Some(chunk)) => {
                    let t0 = *first.get_or_insert_with(Instant::now);
                    // Parsed before the lock is taken, the names borrowed from the chunk.
                    let mut batch = Vec::with_capacity(room);
                    for line in lines(&chunk) {
                        n += 1;
                        if let Some(s) = parse(&mut diag, &name, n, line) {
                            batch.push(s);
                        }
                    }
                    room = batch.len();
                    add_batch(&shared, &batch, &mut alerts, t0);
                }
                Ok(None) => break,
                Err(e) => {
                    diag.input_failed(Error::io(name.clone(), e))?;
                    break;
                }
            }
        }
    }
    shared.update(|h| h.read_done = true);
    diag.finish();
    // The input ended: keep serving what was read until stopped.
    loop {
        std::thread::park();
    }
    #[allow(unreachable_code)]
    Ok(EXIT_OK)
}

/// One line as a snapshot, or `None` (blank, or bad: reported).
fn parse<'a>(diag: &mut Diag, name: &str, n: u64, line: &'a [u8]) -> Option<SnapshotRef<'a>> {
    if line.iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    match parse_snapshot_ref(line) {
        Ok(s) => Some(s),
        Err(e) => {
            let _ = diag.bad("bad", &format!("{name}: line {n}"), &e);
            None
        }
    }
}

/// Take in a batch of snapshots (the reader's first one came at `t0`), and step the alert
/// rules over them.
fn add_batch(shared: &Shared, batch: &[SnapshotRef], alerts: &mut Option<Engine>, t0: Instant) {
    let active = alerts.as_mut().map(|e| {
        let mut sink = Vec::new();
        for s in batch {
            e.add_ref(s, &mut sink);
        }
        e.active()
    });
    shared.update(|h| {
        batch.iter().for_each(|s| h.add_ref(s));
        h.read_secs = t0.elapsed().as_secs_f64();
        if let Some(a) = active {
            h.set_alerts(a);
        }
    });
}

/// Follow `path` for ever: the checkpoint of `pulse-emit --state`, kept in memory.
fn follow(
    path: &std::path::Path,
    shared: &Shared,
    diag: &mut Diag,
    alerts: &mut Option<Engine>,
) -> Result<i32> {
    let mut prev = State::default();
    let inputs = [path.to_path_buf()];
    let mut first: Option<Instant> = None;
    loop {
        let mut batch = Vec::new();
        let next = state::read_new(
            &prev,
            &inputs,
            &mut |label, n, line| {
                if let Some(s) = parse(diag, label, n, line) {
                    batch.push(s.into_owned());
                }
                Ok(())
            },
            &mut |note| crate::error::warn(TOOL, &note),
        )?;
        if !batch.is_empty() {
            let t0 = *first.get_or_insert_with(Instant::now);
            let refs: Vec<SnapshotRef> = batch.iter().map(SnapshotRef::from).collect();
            add_batch(shared, &refs, alerts, t0);
        }
        prev = next;
        std::thread::sleep(POLL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clap_definition_is_valid() {
        command().debug_assert();
    }

    #[test]
    fn history_is_windows_or_duration() {
        assert_eq!(parse_keep("60"), Ok(Keep::Windows(60)));
        assert_eq!(parse_keep("2h"), Ok(Keep::Secs(7200)));
        assert!(parse_keep("0").is_err());
        assert!(parse_keep("5x").is_err());
    }
}
