//! `pulse-emit --format live`, driven in a real tmux: sparkline shapes, live updates, keys.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::util::{bin, run};

const BARS: &str = "▁▂▃▄▅▆▇█";

fn have_tmux() -> bool {
    let ok = Command::new("tmux").arg("-V").output().is_ok();
    if !ok {
        assert!(
            std::env::var("CI").is_err(),
            "tmux is missing: .ci/run installs it, and CI must run this test"
        );
        eprintln!("skipped: tmux is not installed");
    }
    ok
}

/// Final count snapshots of stat `t` for windows 0..n (count = window number + 1), and of
/// stat `u`, key `k`, constant.
fn snaps(from: usize, to: usize) -> String {
    let mut s = String::new();
    for i in from..to {
        s.push_str(&format!(
            "{{\"stat\":\"t\",\"key\":null,\"start\":{},\"secs\":60,\"final\":true,\"values\":{{\"count\":{},\"rate\":1}}}}\n",
            1_767_225_600 + 60 * i as i64,
            i + 1
        ));
        s.push_str(&format!(
            "{{\"stat\":\"u\",\"key\":\"k\",\"start\":{},\"secs\":60,\"final\":true,\"values\":{{\"count\":5,\"rate\":1}}}}\n",
            1_767_225_600 + 60 * i as i64
        ));
    }
    s
}

/// A tmux server of its own (a socket in `dir`), killed on drop.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(dir: &Path, command: &str) -> Tmux {
        let socket = dir.join("tmux.sock").display().to_string();
        let status = Command::new("tmux")
            .args([
                "-S",
                &socket,
                "new-session",
                "-d",
                "-x",
                "150",
                "-y",
                "30",
                command,
            ])
            .env("TERM", "xterm-256color")
            .status()
            .unwrap();
        assert!(status.success());
        Tmux { socket }
    }

    fn screen(&self) -> String {
        let out = Command::new("tmux")
            .args(["-S", &self.socket, "capture-pane", "-p"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["-S", self.socket.as_str(), "send-keys"];
        args.extend_from_slice(keys);
        assert!(Command::new("tmux").args(&args).status().unwrap().success());
    }

    /// Wait (at most 10 s) until the screen satisfies `ok`; the screen seen last.
    fn wait_for(&self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let s = self.screen();
            if ok(&s) {
                return s;
            }
            assert!(Instant::now() < deadline, "waited for {what}; screen:\n{s}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-S", &self.socket, "kill-server"])
            .status();
    }
}

/// The sparkline characters on the row of stat `stat`.
fn sparkline(screen: &str, stat: &str) -> Option<String> {
    let row = screen
        .lines()
        .find(|l| l.starts_with(&format!("{stat} ")))?;
    Some(row.chars().filter(|c| BARS.contains(*c)).collect())
}

#[test]
fn live_view_draws_sparklines_and_takes_keys() {
    if !have_tmux() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("snaps.ndjson");
    std::fs::write(&file, snaps(0, 10)).unwrap();
    let emit = bin("pulse-emit").display().to_string();
    let tmux = Tmux::start(
        dir.path(),
        &format!(
            "{emit} --format live {}; echo EXIT=$?; sleep 60",
            file.display()
        ),
    );
    let screen = tmux.wait_for("the t row", |s| {
        sparkline(s, "t").is_some_and(|l| l.chars().count() == 10)
    });
    // 1..10 scaled to eight heights, rounded.
    assert_eq!(sparkline(&screen, "t").unwrap(), "▁▂▃▃▄▅▆▆▇█", "{screen}");
    // A constant series is drawn level.
    assert_eq!(sparkline(&screen, "u").unwrap(), "█".repeat(10), "{screen}");
    assert!(screen.contains("10 count ok"), "{screen}");
    assert!(screen.contains("[input ended]"), "{screen}");
    // Pick the second stat: only its row is left.
    tmux.keys(&["Right", "Right"]);
    let screen = tmux.wait_for("stat u picked", |s| s.contains("showing: u"));
    assert!(sparkline(&screen, "t").is_none(), "{screen}");
    tmux.keys(&["q"]);
    tmux.wait_for("the exit", |s| s.contains("EXIT=0"));
}

#[test]
fn live_view_follows_a_stream() {
    if !have_tmux() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    std::fs::write(&a, snaps(0, 5)).unwrap();
    std::fs::write(&b, snaps(5, 10)).unwrap();
    let emit = bin("pulse-emit").display().to_string();
    let go = dir.path().join("go");
    // The second half comes once the test has seen the first (a file `go` appears).
    let cmd = format!(
        "(cat {a}; while [ ! -e {go} ]; do sleep 0.1; done; cat {b}; sleep 60) | {emit} --format live --flush-interval 0.2",
        a = a.display(),
        b = b.display(),
        go = go.display()
    );
    let tmux = Tmux::start(dir.path(), &cmd);
    let screen = tmux.wait_for("five windows", |s| {
        sparkline(s, "t").is_some_and(|l| l.chars().count() == 5)
    });
    assert_eq!(sparkline(&screen, "t").unwrap(), "▁▃▅▆█", "{screen}");
    std::fs::write(&go, "").unwrap();
    let screen = tmux.wait_for("ten windows", |s| {
        sparkline(s, "t").is_some_and(|l| l.chars().count() == 10)
    });
    assert_eq!(sparkline(&screen, "t").unwrap(), "▁▂▃▃▄▅▆▆▇█", "{screen}");
    assert!(!screen.contains("[input ended]"), "{screen}");
}

#[test]
fn live_without_a_terminal_is_a_table() {
    let out = run("pulse-emit", &["--format", "live"], snaps(0, 2).as_bytes());
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("t\nkey  start"), "{text}");
    assert!(
        text.contains("2026-01-01T00:01:00Z    60  yes        2"),
        "{text}"
    );
}
