//! Diagnostics: how a filter reports bad input and how it exits.
//!
//! Conventions shared by every tool:
//! - every stderr line starts with the tool name: `pulse-parse: line 12: ...`;
//! - a bad record is reported with its line number the first time its *kind* occurs, counted
//!   always, and summarised at exit (`pulse-parse: 3 unparsed lines`);
//! - `--strict` turns the first bad record into a fatal error;
//! - exit status: 0 success, 1 runtime failure (or bad input under `--strict`), 2 usage error;
//! - bytes from input shown on stderr are escaped ([`escape`]): every message goes out
//!   through [`warn`], so a log line's control characters never reach the terminal.

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
            Error::Io(ctx, e) => write!(f, "{ctx}: {}", io_reason(e)),
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

/// What went wrong in an I/O error, as `cat` says it: `No such file or directory`, without
/// Rust's ` (os error 2)`.
pub fn io_reason(e: &io::Error) -> String {
    let text = e.to_string();
    match text.rfind(" (os error ") {
        Some(i) if text.ends_with(')') => text[..i].to_string(),
        _ => text,
    }
}

/// `bytes` (from input: a log line, a file name) made safe to print on a terminal, on one
/// line: control characters (C0, DEL, C1) are written `\t`, `\r`, `\n`, `\e` or `\xNN`
/// (`\u{NN}` for C1), and bytes that are not UTF-8 `\xNN`; everything else is kept as it
/// is (backslashes too, so text escaped once is not escaped again).
pub fn escape(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\t' => out.push_str("\\t"),
                '\r' => out.push_str("\\r"),
                '\n' => out.push_str("\\n"),
                '\x1b' => out.push_str("\\e"),
                '\0'..='\x1f' | '\x7f' => {
                    let _ = write!(out, "\\x{:02x}", c as u32);
                }
                '\u{80}'..='\u{9f}' => {
                    let _ = write!(out, "\\u{{{:02x}}}", c as u32);
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out
}

/// Print one diagnostic line on stderr: `TOOL: MESSAGE`, the message [`escape`]d.
pub fn warn(tool: &str, message: &str) {
    eprintln!("{tool}: {}", escape(message.as_bytes()));
}

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
    /// Inputs that could not be read (see [`Diag::input_failed`]).
    failed: u64,
}

impl Diag {
    pub fn new(tool: &'static str, strict: bool) -> Diag {
        Diag {
            tool,
            strict,
            counts: BTreeMap::new(),
            quiet: false,
            shown: Default::default(),
            failed: 0,
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
            warn(
                self.tool,
                &format!(
                    "{location}: {kind}: {detail} (further {kind} lines are counted, not shown)"
                ),
            );
        }
    }

    /// Show the first record of `kind` once per run, without counting it (it is counted
    /// with [`Diag::count`]).
    pub fn show(&mut self, kind: &'static str, location: &str, detail: &str) {
        if !self.quiet && self.shown.insert(kind) {
            warn(
                self.tool,
                &format!(
                    "{location}: {kind}: {detail} (further {kind} lines are counted, not shown)"
                ),
            );
        }
    }

    /// Count `n` bad records of `kind` without printing (already reported elsewhere).
    pub fn count(&mut self, kind: &'static str, n: u64) {
        if n > 0 {
            *self.counts.entry(kind).or_insert(0) += n;
        }
    }

    /// Report an input that could not be read, or not to its end (`err` names it): the run
    /// goes on with the other inputs, and its exit status will be 1 ([`Diag::failed`]).
    /// Under `--strict` this returns the error that must end the run.
    pub fn input_failed(&mut self, err: Error) -> Result<()> {
        self.failed += 1;
        if self.strict {
            return Err(err);
        }
        if !self.quiet {
            warn(self.tool, &err.to_string());
        }
        Ok(())
    }

    /// True when some input could not be read (see [`Diag::input_failed`]).
    pub fn failed(&self) -> bool {
        self.failed > 0
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
        warn(self.tool, &parts.join(", "));
    }
}

/// Run a tool's main function and turn its result into an exit status, printing the error
/// with the tool's name. A broken pipe is a normal ending (status 0, no message).
pub fn exit_with(tool: &str, result: Result<i32>) -> ! {
    let code = match result {
        Ok(code) => code,
        Err(e) if e.is_broken_pipe() => EXIT_OK,
        Err(e) => {
            warn(tool, &e.to_string());
            e.exit_code()
        }
    };
    std::process::exit(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_makes_input_safe_for_a_terminal() {
        assert_eq!(
            escape(b"plain text, \xc3\xa9t\xc3\xa9"),
            "plain text, \u{e9}t\u{e9}"
        );
        assert_eq!(
            escape(b"\x1b[31mred\x1b[0m\ttab\r\n\x00\x7f"),
            "\\e[31mred\\e[0m\\ttab\\r\\n\\x00\\x7f"
        );
        // Not UTF-8, and C1 controls (a lone CSI).
        assert_eq!(escape(b"a\xffb\xc2\x9bc"), "a\\xffb\\u{9b}c");
        // Escaping twice changes nothing more.
        let once = escape(b"\x1b\xff");
        assert_eq!(escape(once.as_bytes()), once);
    }

    #[test]
    fn io_reasons_read_as_cat_says_them() {
        let e = std::fs::File::open("/nonexistent/x").unwrap_err();
        assert_eq!(io_reason(&e), "No such file or directory");
        let e = Error::io("x.log", e);
        assert_eq!(e.to_string(), "x.log: No such file or directory");
    }
}
