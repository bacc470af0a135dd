//! `pulse-merge --listen` against hostile and unlucky clients: authentication, identity,
//! connection bounds, descriptor and thread limits. Loopback only; every wait bounded.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::merge::finals;
use crate::util::{bin, ndjson, terminate, watchdog};

/// A loopback address nobody listens on right now.
fn free_addr() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().to_string()
}

fn frag(src: &str, rev: u64, count: u64) -> String {
    format!(
        "{{\"stat\":\"s\",\"key\":null,\"start\":0,\"secs\":60,\"src\":\"{src}\",\"rev\":{rev},\"wm\":60,\"agg\":\"count\",\"state\":{{\"count\":{count}}}}}\n"
    )
}

struct Merger {
    child: Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Merger {
    /// `pulse-merge --listen ADDR ARGS`, run through `wrap` (a command prefix such as
    /// `prlimit ...`), waited for until it accepts.
    fn start(args: &[&str], wrap: &[&str]) -> Merger {
        let addr = free_addr();
        let dir = tempfile::tempdir().unwrap();
        let merge = bin("pulse-merge");
        let mut argv: Vec<String> = wrap.iter().map(|s| s.to_string()).collect();
        argv.push(merge.display().to_string());
        argv.extend([
            "--listen".into(),
            addr.clone(),
            "--every".into(),
            "0".into(),
        ]);
        argv.extend(args.iter().map(|s| s.to_string()));
        let child = Command::new(&argv[0])
            .args(&argv[1..])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(&addr).is_err() {
            assert!(Instant::now() < deadline, "merger not listening on {addr}");
            std::thread::sleep(Duration::from_millis(25));
        }
        // Let the merger see the probe connection close, so it counts no more.
        std::thread::sleep(Duration::from_millis(200));
        Merger {
            child,
            addr,
            _dir: dir,
        }
    }

    fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(&self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s
    }

    /// SIGTERM, then (snapshots, stderr, exit status).
    fn stop(self) -> (Vec<Value>, String, Option<i32>) {
        let guard = watchdog(self.child.id(), 30);
        terminate(self.child.id());
        let out = self.child.wait_with_output().unwrap();
        drop(guard);
        (
            ndjson(&out.stdout),
            String::from_utf8_lossy(&out.stderr).into_owned(),
            out.status.code(),
        )
    }
}

/// The line the merger says before closing, or "" when it closes without a word.
fn told(s: &mut TcpStream) -> String {
    let mut line = String::new();
    let _ = BufReader::new(s).read_line(&mut line);
    line
}

/// The count of stat `s`'s one window, from final snapshots.
fn count_of(snaps: &[Value]) -> Option<f64> {
    finals(snaps)
        .iter()
        .find(|((stat, ..), _)| stat == "s")
        .and_then(|(_, v)| v["count"].as_f64())
}

fn auth_file(dir: &std::path::Path) -> String {
    let p = dir.join("auth");
    std::fs::write(
        &p,
        "# name:token\nhonest:0123456789abcdef0123\nevil:fedcba9876543210fedc\n",
    )
    .unwrap();
    p.display().to_string()
}

#[test]
fn a_reachable_address_needs_auth_or_no_auth() {
    let out = Command::new(bin("pulse-merge"))
        .args(["--listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--auth-file") && err.contains("--no-auth"),
        "{err}"
    );
}

/// Clients without the token are refused with a reason; an authenticated client cannot
/// replace another's source (sources are bound to the identity that sent them).
#[test]
fn clients_authenticate_and_sources_are_bound_to_their_identity() {
    let dir = tempfile::tempdir().unwrap();
    let auth = auth_file(dir.path());
    let m = Merger::start(&["--auth-file", &auth, "--max-wait", "3600"], &[]);

    let mut anon = m.connect();
    anon.write_all(frag("r1", 1, 1000).as_bytes()).unwrap();
    assert!(told(&mut anon).starts_with("error: authentication required"));

    let mut wrong = m.connect();
    wrong
        .write_all(b"auth honest:0123456789abcdef0124\n")
        .unwrap();
    wrong.write_all(frag("r1", 1, 1000).as_bytes()).unwrap();
    assert_eq!(told(&mut wrong), "error: authentication failed\n");

    let mut honest = m.connect();
    honest
        .write_all(format!("auth honest:0123456789abcdef0123\n{}", frag("r1", 5, 7)).as_bytes())
        .unwrap();
    // The evil client knows the honest source's name and sends a later rev of it, zeroed.
    let mut evil = m.connect();
    evil.write_all(format!("auth evil:fedcba9876543210fedc\n{}", frag("r1", 9, 0)).as_bytes())
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    drop((honest, evil));
    let (snaps, err, code) = m.stop();
    assert_eq!(code, Some(0), "{err}");
    // 7 from the honest source, 0 from evil's own "evil/r1": the honest count stands.
    assert_eq!(count_of(&snaps), Some(7.0), "{err}");
    assert!(err.contains("refused: not authenticated"), "{err}");
    assert!(
        !err.contains("0123456789abcdef0124"),
        "a token reached stderr: {err}"
    );
}

#[test]
fn more_clients_than_max_clients_are_refused_and_the_rest_served() {
    let m = Merger::start(&["--max-clients", "2", "--max-wait", "3600"], &[]);
    let mut a = m.connect();
    let mut b = m.connect();
    a.write_all(frag("a", 1, 2).as_bytes()).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let mut c = m.connect();
    assert_eq!(told(&mut c), "error: too many clients\n");
    b.write_all(frag("b", 1, 3).as_bytes()).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    drop((a, b));
    let (snaps, err, _) = m.stop();
    assert_eq!(count_of(&snaps), Some(5.0), "{err}");
    assert!(err.contains("refused: too many clients"), "{err}");
}

#[test]
fn an_idle_client_is_closed_and_long_lines_are_skipped() {
    let m = Merger::start(
        &[
            "--idle-timeout",
            "0.5",
            "--max-line",
            "1024",
            "--max-wait",
            "3600",
        ],
        &[],
    );
    let mut idle = m.connect();
    let started = Instant::now();
    let mut buf = [0u8; 16];
    // The merger closes it: the read ends (0 bytes) well before the 5 s read timeout.
    assert_eq!(idle.read(&mut buf).unwrap(), 0);
    assert!(started.elapsed() < Duration::from_secs(4));

    let mut long = m.connect();
    let big = format!("{{\"pad\":\"{}\"}}\n", "x".repeat(5000));
    long.write_all(big.as_bytes()).unwrap();
    long.write_all(frag("a", 1, 4).as_bytes()).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    drop(long);
    let (snaps, err, _) = m.stop();
    assert_eq!(count_of(&snaps), Some(4.0), "{err}");
    assert!(err.contains("closed: idle"), "{err}");
    assert!(err.contains("longer than 1024 bytes"), "{err}");
}

/// CPU seconds (user + system) process `pid` has used.
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = after.split(' ').collect();
    let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
    ticks / 100.0
}

/// At a descriptor limit below the clients wanting in, the new ones are told and closed,
/// the connected ones served, and the merger does not spin.
#[test]
fn out_of_descriptors_refuses_new_clients_without_spinning() {
    let m = Merger::start(&["--max-wait", "3600"], &["prlimit", "--nofile=24:24"]);
    // The merger's own pid (prlimit execs it).
    let pid = m.child.id();
    let mut served = Vec::new();
    let mut refused = 0;
    for i in 0..30 {
        let mut c = m.connect();
        c.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        if c.write_all(frag(&format!("c{i}"), 1, 1).as_bytes())
            .is_err()
        {
            refused += 1;
            continue;
        }
        let mut line = String::new();
        match BufReader::new(&c).read_line(&mut line) {
            Ok(n) if n > 0 => {
                assert_eq!(line, "error: the merger is out of file descriptors\n");
                refused += 1;
            }
            // Nothing said within the read timeout: connected and being read.
            _ => served.push(c),
        }
    }
    assert!(
        refused > 0 && !served.is_empty(),
        "refused {refused}, served {}",
        served.len()
    );
    // Let the merger sit at its limit with clients queued: it must not burn CPU.
    let extra: Vec<TcpStream> = (0..5)
        .filter_map(|_| TcpStream::connect(&m.addr).ok())
        .collect();
    let before = cpu_secs(pid);
    std::thread::sleep(Duration::from_secs(2));
    let used = cpu_secs(pid) - before;
    assert!(
        used < 0.5,
        "merger used {used} s of CPU in 2 s at its descriptor limit"
    );
    let kept = served.len() as f64;
    drop((served, extra));
    std::thread::sleep(Duration::from_millis(300));
    let (snaps, err, _) = m.stop();
    assert!(err.contains("refused: out of descriptors"), "{err}");
    // Every client that was served counted once.
    assert_eq!(count_of(&snaps), Some(kept), "{err}");
}

/// Under a task limit (as a systemd TasksMax would set), clients past it are refused with a
/// message and the merger goes on. RLIMIT_NPROC does not bind root, so the merger runs as
/// `nobody`: needs root and setpriv.
#[test]
fn out_of_threads_refuses_new_clients_without_a_panic() {
    let root = unsafe { libc::geteuid() } == 0;
    if !root || Command::new("setpriv").arg("--version").output().is_err() {
        assert!(
            std::env::var("CI").is_err(),
            "CI runs as root with setpriv: this test must run there"
        );
        eprintln!(
            "skipped: needs root and setpriv, to run the merger as nobody under RLIMIT_NPROC"
        );
        return;
    }
    // nobody runs nothing else here; the merger needs its main thread and the acceptor.
    let m = Merger::start(
        &["--max-wait", "3600"],
        &[
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "prlimit",
            "--nproc=6:6",
        ],
    );
    let mut served = Vec::new();
    let mut refused = 0;
    for i in 0..12 {
        let mut c = m.connect();
        c.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        if c.write_all(frag(&format!("c{i}"), 1, 1).as_bytes())
            .is_err()
        {
            refused += 1;
            continue;
        }
        let mut line = String::new();
        match BufReader::new(&c).read_line(&mut line) {
            Ok(n) if n > 0 => {
                assert!(line.contains("out of threads"), "{line}");
                refused += 1;
            }
            _ => served.push(c),
        }
    }
    assert!(
        refused > 0 && !served.is_empty(),
        "refused {refused}, served {}",
        served.len()
    );
    let kept = served.len() as f64;
    drop(served);
    std::thread::sleep(Duration::from_millis(300));
    let (snaps, err, code) = m.stop();
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("refused: out of threads"), "{err}");
    assert_eq!(count_of(&snaps), Some(kept), "{err}");
}
