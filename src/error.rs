//! Diagnostics: how a filter reports bad input and how it exits.
//!
//! Conventions shared by every tool:
//! - every stderr line starts with the tool name: `pulse-parse: line 12: ...`;
//! - a bad record is reported with its line number the first time its *kind* occurs, counted
//!   always, and summarised at exit (`pulse-parse: 3 unparsed lines`);
//! - `--strict` turns the first bad record into a fatal error;
//! - exit status: 0 success, 1 runtime failure (or bad input under `--strict`), 2 usage error.

use std::collections::BTreeMap;
use std::fmt;
use std::io;

/// Exit status for success.
pub const EXIT_OK: i32 = 0;
/// Exit status for a runtime failure (I/O error, unreachable sink, bad input under `--strict`).
pub const EXIT_FAILURE: i32 = 1;
/// Exit status for a usage error (bad flags, unreadable stats file).
pub const EXIT_USAGE: i32 = 2;

/// An error that ends a tool's run.
#[derive(Debug)]
pub enum Error {
    /// Bad command-line use or configuration: exit status 2.
    Usage(String),
    /// Bad input under `--strict`: exit status 1.
    Strict(String),
    /// An I/O failure with what was being done: exit status 1.
    Io(String, io::Error),
    /// Any other runtime failure: exit status 1.
    Runtime(String),
}

impl Error {
    pub fn io(context: impl Into<String>, err: io::Error) -> Error {
        Error::Io(context.into(), err)
    }

    /// The process exit status this error maps to.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) => EXIT_USAGE,
            _ => EXIT_FAILURE,
        }
    }

    /// True when the error is a closed downstream pipe, which ends a filter quietly.
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, Error::Io(_, e) if e.kind() == io::ErrorKind::BrokenPipe)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(m) | Error::Strict(m) | Error::Runtime(m) => f.write_str(m),
            Error::Io(ctx, e) => write!(f, "{ctx}: {e}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Error {
        Error::Io("I/O error".into(), e)
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Counts and reports bad input for one tool run.
///
/// The first occurrence of each kind is printed with its location; later ones are only
/// counted, and [`Diag::finish`] prints the totals.
#[derive(Debug)]
pub struct Diag {
    tool: &'static str,
    strict: bool,
    counts: BTreeMap<&'static str, u64>,
    quiet: bool,
    /// Kinds whose first record [`Diag::show`] has printed.
    shown: std::collections::BTreeSet<&'static str>,
}

impl Diag {
    pub fn new(tool: &'static str, strict: bool) -> Diag {
        Diag {
            tool,
            strict,
            counts: BTreeMap::new(),
            quiet: false,
            shown: Default::default(),
        }
    }

    /// Suppress stderr output (tests).
    pub fn quiet(mut self) -> Diag {
        self.quiet = true;
        self
    }

    pub fn tool(&self) -> &'static str {
        self.tool
    }

    /// Record one bad record of `kind` at `location` (e.g. `"input.log: line 12"`).
    ///
    /// Under `--strict` this returns the error that must end the run.
    pub fn bad(&mut self, kind: &'static str, location: &str, detail: &str) -> Result<()> {
        if self.strict {
            *self.counts.entry(kind).or_insert(0) += 1;
            return Err(Error::Strict(format!("{location}: {kind}: {detail}")));
        }
        self.note(kind, location, detail);
        Ok(())
    }

    /// [`Diag::bad`] of something worth telling that does not end a `--strict` run (the
    /// record was still used).
    pub fn note(&mut self, kind: &'static str, location: &str, detail: &str) {
        let n = self.counts.entry(kind).or_insert(0);
        *n += 1;
        if *n == 1 && !self.quiet {
            eprintln!(
                "{}: {location}: {kind}: {detail} (further {kind} lines are counted, not shown)",
                self.tool
            );
        }
    }

    /// Show the first record of `kind` once per run, without counting it (it is counted
    /// with [`Diag::count`]).
    pub fn show(&mut self, kind: &'static str, location: &str, detail: &str) {
        if !self.quiet && self.shown.insert(kind) {
            eprintln!(
                "{}: {location}: {kind}: {detail} (further {kind} lines are counted, not shown)",
                self.tool
            );
        }
    }

    /// Count `n` bad records of `kind` without printing (already reported elsewhere).
    pub fn count(&mut self, kind: &'static str, n: u64) {
        if n > 0 {
            *self.counts.entry(kind).or_insert(0) += n;
        }
    }

    pub fn total(&self, kind: &str) -> u64 {
        self.counts.get(kind).copied().unwrap_or(0)
    }

    pub fn any(&self) -> bool {
        self.counts.values().any(|&n| n > 0)
    }

    /// Print the totals on stderr (only when there were any).
    pub fn finish(&self) {
        if self.quiet || !self.any() {
            return;
        }
        let parts: Vec<String> = self
            .counts
            .iter()
            .filter(|(_, &n)| n > 0)
            .map(|(k, n)| format!("{n} {k}"))
            .collect();
        eprintln!("{}: {}", self.tool, parts.join(", "));
    }
}

/// Run a tool's main function and turn its result into an exit status, printing the error
/// with the tool's name. A broken pipe is a normal ending (status 0, no message).
pub fn exit_with(tool: &str, result: Result<i32>) -> ! {
    let code = match result {
        Ok(code) => code,
        Err(e) if e.is_broken_pipe() => EXIT_OK,
        Err(e) => {
            eprintln!("{tool}: {e}");
            e.exit_code()
        }
    };
    std::process::exit(code)
}
