//! Helpers shared by the CLI tests.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// Path of a built binary of this package.
pub fn bin(name: &str) -> PathBuf {
    match name {
        "pulse-parse" => PathBuf::from(env!("CARGO_BIN_EXE_pulse-parse")),
        "pulse-fragment" => PathBuf::from(env!("CARGO_BIN_EXE_pulse-fragment")),
        "pulse-merge" => PathBuf::from(env!("CARGO_BIN_EXE_pulse-merge")),
        "pulse-emit" => PathBuf::from(env!("CARGO_BIN_EXE_pulse-emit")),
        "pulse-web" => PathBuf::from(env!("CARGO_BIN_EXE_pulse-web")),
        "pulse-alert" => PathBuf::from(env!("CARGO_BIN_EXE_pulse-alert")),
        _ => panic!("unknown binary {name}"),
    }
}

/// A fixture file under `tests/fixtures/`.
pub fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

/// Start tool `name` with `args`, its stdin, stdout and stderr all pipes.
pub fn spawn_piped(name: &str, args: &[&str]) -> std::process::Child {
    Command::new(bin(name))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn")
}

/// Run a binary with arguments and bytes on stdin.
pub fn run(name: &str, args: &[&str], stdin: &[u8]) -> Output {
    let mut child = spawn_piped(name, args);
    let mut input = child.stdin.take().unwrap();
    let data = stdin.to_vec();
    let feeder = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let out = child.wait_with_output().expect("wait");
    feeder.join().unwrap();
    out
}

/// Parse NDJSON output into JSON values (panics on a bad line, naming it).
pub fn ndjson(bytes: &[u8]) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(bytes)
        .lines()
        .filter(|l| !l.is_empty())
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("line {}: {e}: {l}", i + 1))
        })
        .collect()
}

/// Run a shell pipeline (with pipefail) and return its output.
pub fn sh(script: &str) -> Output {
    Command::new("bash")
        .arg("-c")
        .arg(format!("set -o pipefail; {script}"))
        .env("PATH", path_with_bins())
        .output()
        .expect("bash")
}

/// PATH with this package's binaries first.
pub fn path_with_bins() -> String {
    let dir = bin("pulse-parse").parent().unwrap().to_path_buf();
    format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// Assert that every long option `--help` shows for `tool` is documented in `man/<page>`
/// (written `\-\-name` in roff), and that the page documents no option the tool lacks.
pub fn assert_man_matches_help(tool: &str, page: &str) {
    let help = run(tool, &["--help"], b"");
    assert!(help.status.success());
    let help = String::from_utf8(help.stdout).unwrap();
    let man = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("man").join(page))
        .unwrap();
    let longs = |text: &str, dash: &str| -> std::collections::BTreeSet<String> {
        text.match_indices(dash)
            .map(|(i, _)| {
                text[i + dash.len()..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                    .collect::<String>()
                    .replace("\\-", "-")
            })
            .filter(|name| name.len() > 1 && name.chars().next().unwrap().is_ascii_alphabetic())
            .collect()
    };
    let in_help = longs(&help, "--");
    // roff writes a dash as `\-`; collapse those to find `--name`.
    let man_plain = man.replace("\\-", "-");
    let in_man = longs(&man_plain, "--");
    for opt in &in_help {
        if opt == "help" || opt == "version" {
            continue;
        }
        assert!(in_man.contains(opt), "man/{page} does not document --{opt}");
    }
    let options_section = man_plain
        .split(".SH OPTIONS")
        .nth(1)
        .and_then(|s| s.split("\n.SH ").next())
        .unwrap_or("");
    for opt in longs(options_section, "--") {
        assert!(
            in_help.contains(&opt),
            "man/{page} OPTIONS lists --{opt}, which --help does not"
        );
    }
}

/// Kill process `pid` if the returned guard is not dropped within `secs` seconds, so a test
/// that waits on a child's output fails instead of hanging when the feature is broken.
pub fn watchdog(pid: u32, secs: u64) -> std::sync::mpsc::Sender<()> {
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
            rx.recv_timeout(std::time::Duration::from_secs(secs))
        {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
    });
    tx
}

/// Send SIGTERM to process `pid` (as `kill` or a service manager would).
pub fn terminate(pid: u32) {
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -TERM {pid}");
}

/// Run tool `name` with `args` on `input` written to a stdin that stays open, send it
/// SIGTERM after `ms` milliseconds, and return what it did (killed after 20 s if it hangs).
pub fn terminated_after(name: &str, args: &[&str], input: &[u8], ms: u64) -> Output {
    let mut child = spawn_piped(name, args);
    let guard = watchdog(child.id(), 20);
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input).unwrap();
    stdin.flush().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(ms));
    terminate(child.id());
    let out = child.wait_with_output().unwrap();
    drop(guard);
    drop(stdin);
    out
}

/// Assert that a command succeeded, showing its stderr when it did not.
pub fn assert_ok(out: &Output) {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The OPTIONS section of `man/PAGE`, generated from `command`'s clap definition between
/// marker comments, equals what clap renders now; the rest of the page is hand-written.
/// `PULSE_BLESS=1 cargo test man_page` rewrites the section instead (and gives `None`).
/// The page's text otherwise.
pub fn generated_options_match(page: &str, command: clap::Command) -> Option<String> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("man")
        .join(page);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("man/{page}: {e}"));
    let mut options = Vec::new();
    clap_mangen::Man::new(command)
        .render_options_section(&mut options)
        .unwrap();
    let options = String::from_utf8(options).unwrap();
    let (begin, end) = (
        ".\\\" BEGIN GENERATED OPTIONS\n",
        ".\\\" END GENERATED OPTIONS\n",
    );
    let a = text.find(begin).expect("begin marker") + begin.len();
    let b = text.find(end).expect("end marker");
    if std::env::var_os("PULSE_BLESS").is_some() {
        std::fs::write(&path, format!("{}{}{}", &text[..a], options, &text[b..])).unwrap();
        return None;
    }
    assert_eq!(
        &text[a..b],
        options,
        "man/{page} OPTIONS drifted from --help: run PULSE_BLESS=1 cargo test man_page"
    );
    Some(text)
}
