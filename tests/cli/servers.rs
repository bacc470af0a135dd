//! Real servers for tests: carbon-cache (Graphite) and PostgreSQL, each on free loopback
//! ports with its own temporary directory, stopped on drop.
//!
//! Under `CI=true` a missing server binary fails the test; elsewhere the test prints a note
//! and skips (`start()` returns `None`).
//!
//! ```ignore
//! let Some(carbon) = Carbon::start() else { return };
//! // ... send to carbon.addr() ...
//! let points = carbon.wait_for("pulse.router.count", from, until, |p| p.iter().any(|x| x.1.is_some()));
//! ```
#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// True when every program is on PATH (or is an existing path). Otherwise: under CI a panic,
/// elsewhere a printed note and false.
pub fn available(test: &str, programs: &[&str]) -> bool {
    let missing: Vec<&str> = programs
        .iter()
        .copied()
        .filter(|p| which(p).is_none())
        .collect();
    if missing.is_empty() {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{test}: needs {missing:?} (CI installs them in .ci/run)");
    }
    eprintln!("note: skipping {test}: {missing:?} not installed");
    false
}

/// Full path of a program found on PATH (or the path itself when it exists).
pub fn which(program: &str) -> Option<PathBuf> {
    let p = Path::new(program);
    if p.is_absolute() {
        return p.exists().then(|| p.to_path_buf());
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(program))
            .find(|f| f.is_file())
    })
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind 127.0.0.1:0")
        .local_addr()
        .unwrap()
        .port()
}

fn wait_until(what: &str, deadline: Duration, mut ok: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + deadline;
    while Instant::now() < end {
        if ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("gave up waiting for {what} after {deadline:?}");
    false
}

/// A carbon-cache in the foreground: plaintext receiver on `port`, whisper files in a
/// temporary directory, every metric kept at 60 s resolution for 5 years (so test data
/// may be dated anywhere in that span, and windows of 60 s map to one point each), or as
/// [`Carbon::start_with`] says. Whisper files are created sparse, so a long retention costs
/// disk only for the points written.
pub struct Carbon {
    dir: tempfile::TempDir,
    pub port: u16,
    child: Option<Child>,
}

impl Carbon {
    /// Start carbon-cache; `None` (after a note) when it is not installed outside CI.
    pub fn start() -> Option<Carbon> {
        Carbon::start_with("60s:5y")
    }

    /// Start carbon-cache keeping every metric with `retentions` (storage-schemas.conf
    /// syntax, e.g. `60s:20y`). Whisper drops points older than the longest retention.
    pub fn start_with(retentions: &str) -> Option<Carbon> {
        if !available("carbon", &["carbon-cache", "whisper-fetch"]) {
            return None;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        std::fs::create_dir_all(d.join("whisper")).unwrap();
        std::fs::create_dir_all(d.join("log")).unwrap();
        let port = free_port();
        let conf = format!(
            "[cache]\n\
             STORAGE_DIR = {d}/\n\
             LOCAL_DATA_DIR = {d}/whisper/\n\
             WHISPER_DIR = {d}/whisper/\n\
             CONF_DIR = {d}/\n\
             LOG_DIR = {d}/log/\n\
             PID_DIR = {d}/\n\
             USER =\n\
             ENABLE_TAGS = False\n\
             MAX_CACHE_SIZE = inf\n\
             MAX_UPDATES_PER_SECOND = inf\n\
             MAX_CREATES_PER_MINUTE = inf\n\
             WHISPER_SPARSE_CREATE = True\n\
             LINE_RECEIVER_INTERFACE = 127.0.0.1\n\
             LINE_RECEIVER_PORT = {port}\n\
             ENABLE_UDP_LISTENER = False\n\
             PICKLE_RECEIVER_INTERFACE = 127.0.0.1\n\
             PICKLE_RECEIVER_PORT = {pickle}\n\
             CACHE_QUERY_INTERFACE = 127.0.0.1\n\
             CACHE_QUERY_PORT = {query}\n",
            d = d.display(),
            pickle = free_port(),
            query = free_port(),
        );
        std::fs::write(d.join("carbon.conf"), conf).unwrap();
        std::fs::write(
            d.join("storage-schemas.conf"),
            format!("[all]\npattern = .*\nretentions = {retentions}\n"),
        )
        .unwrap();
        std::fs::write(
            d.join("storage-aggregation.conf"),
            "[default]\npattern = .*\nxFilesFactor = 0\naggregationMethod = average\n",
        )
        .unwrap();
        let mut c = Carbon {
            dir,
            port,
            child: None,
        };
        c.spawn();
        Some(c)
    }

    fn spawn(&mut self) {
        let d = self.dir.path();
        let _ = std::fs::remove_file(d.join("carbon.pid"));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(d.join("carbon.out"))
            .unwrap();
        let child = Command::new("carbon-cache")
            .arg(format!("--config={}", d.join("carbon.conf").display()))
            .arg(format!("--pidfile={}", d.join("carbon.pid").display()))
            .arg(format!("--logdir={}", d.join("log").display()))
            .arg("--nodaemon")
            .arg("start")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn carbon-cache");
        self.child = Some(child);
        let port = self.port;
        let ready = wait_until("carbon-cache to listen", Duration::from_secs(30), || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        assert!(ready, "carbon-cache did not start:\n{}", self.log());
    }

    /// `127.0.0.1:PORT` of the plaintext receiver.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// What carbon-cache printed (for assertion messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("carbon.out")).unwrap_or_default()
    }

    /// Kill carbon-cache (what it had not written to disk is lost, as in a crash).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let port = self.port;
        wait_until("carbon-cache to stop", Duration::from_secs(10), || {
            TcpStream::connect(("127.0.0.1", port)).is_err()
        });
    }

    /// Start it again on the same port and storage.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// The whisper file of a metric path.
    pub fn whisper_file(&self, metric: &str) -> PathBuf {
        let mut p = self.dir.path().join("whisper");
        for part in metric.split('.') {
            p.push(part);
        }
        p.set_extension("wsp");
        p
    }

    /// Every metric path carbon has a whisper file for, sorted.
    pub fn metrics(&self) -> Vec<String> {
        fn walk(dir: &Path, base: &Path, out: &mut Vec<String>) {
            for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(&p, base, out);
                } else if p.extension().is_some_and(|x| x == "wsp") {
                    let rel = p.strip_prefix(base).unwrap().with_extension("");
                    let parts: Vec<String> = rel
                        .components()
                        .map(|c| c.as_os_str().to_string_lossy().into_owned())
                        .collect();
                    out.push(parts.join("."));
                }
            }
        }
        let base = self.dir.path().join("whisper");
        let mut out = Vec::new();
        walk(&base, &base, &mut out);
        out.sort();
        out
    }

    /// Points of `metric` in `[from, until)` as whisper-fetch reports them (empty when the
    /// file does not exist yet). Values are exact: read with `--json` (Python's shortest
    /// round-trip repr), not the default `%f` text, which keeps only six decimals.
    pub fn fetch(&self, metric: &str, from: i64, until: i64) -> Vec<(i64, Option<f64>)> {
        let file = self.whisper_file(metric);
        if !file.exists() {
            return Vec::new();
        }
        let out = Command::new("whisper-fetch")
            .arg("--json")
            .arg(format!("--from={}", from - 1))
            .arg(format!("--until={until}"))
            .arg(&file)
            .output()
            .expect("whisper-fetch");
        assert!(
            out.status.success(),
            "whisper-fetch {}: {}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "whisper-fetch --json {}: {e}: {}",
                file.display(),
                String::from_utf8_lossy(&out.stdout)
            )
        });
        let (start, step) = (doc["start"].as_i64(), doc["step"].as_i64());
        let (Some(start), Some(step), Some(values)) = (start, step, doc["values"].as_array())
        else {
            panic!("whisper-fetch --json {}: {doc}", file.display());
        };
        values
            .iter()
            .enumerate()
            .map(|(i, v)| (start + i as i64 * step, v.as_f64()))
            .filter(|(t, _)| *t >= from && *t < until)
            .collect()
    }

    /// The non-empty points of `metric` in `[from, until)`.
    pub fn values(&self, metric: &str, from: i64, until: i64) -> Vec<(i64, f64)> {
        self.fetch(metric, from, until)
            .into_iter()
            .filter_map(|(t, v)| v.map(|v| (t, v)))
            .collect()
    }

    /// Poll (up to 30 s: carbon writes whisper files asynchronously) until `metric` has
    /// exactly `want` as its non-empty points in `[from, until)`; returns what it had last.
    pub fn wait_for(
        &self,
        metric: &str,
        from: i64,
        until: i64,
        want: &[(i64, f64)],
    ) -> Vec<(i64, f64)> {
        let mut last = Vec::new();
        wait_until(metric, Duration::from_secs(30), || {
            last = self.values(metric, from, until);
            last == want
        });
        last
    }
}

impl Drop for Carbon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A throwaway PostgreSQL cluster listening only on a Unix socket in its temporary directory.
///
/// initdb and postgres refuse to run as root, so as root they run as the `postgres` user
/// (via `runuser`), in a directory owned by it.
pub struct Postgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    pub port: u16,
    as_postgres: bool,
    running: bool,
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// The newest `/usr/lib/postgresql/N/bin`.
fn pg_bin() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, b)| b)
}

impl Postgres {
    /// Create and start a cluster; `None` (after a note) when PostgreSQL is not installed
    /// outside CI.
    pub fn start() -> Option<Postgres> {
        let bin = match pg_bin() {
            Some(b) => b,
            None => {
                available("postgres", &["/usr/lib/postgresql/*/bin/initdb"]);
                return None;
            }
        };
        if !available("postgres", &["psql"]) {
            return None;
        }
        let as_postgres = is_root();
        if as_postgres && !available("postgres", &["runuser"]) {
            return None;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let mut pg = Postgres {
            dir,
            bin,
            port: free_port(),
            as_postgres,
            running: false,
        };
        if as_postgres {
            let st = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(pg.dir.path())
                .status()
                .unwrap();
            assert!(st.success(), "chown postgres");
        }
        let data = pg.dir.path().join("data");
        let out = pg
            .cmd(&pg.bin.join("initdb"))
            .args([
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
                "-E",
                "UTF8",
                "-D",
            ])
            .arg(&data)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        pg.pg_ctl_start();
        pg.running = true;
        Some(pg)
    }

    fn pg_ctl_start(&mut self) {
        let data = self.dir.path().join("data");
        let opts = format!(
            "-k {} -p {} -c listen_addresses='' -c fsync=off",
            self.dir.path().display(),
            self.port
        );
        let out = self
            .cmd(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(self.dir.path().join("log"))
            .args(["-w", "-t", "60", "-o", &opts, "start"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg_ctl start: {}{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
        );
        self.running = true;
    }

    /// A libpq connection string for this cluster's Unix socket.
    pub fn url(&self) -> String {
        format!(
            "host={} port={} user=postgres dbname=postgres",
            self.dir.path().display(),
            self.port
        )
    }

    /// Stop the server (clients see it go away); [`Postgres::restart`] brings it back.
    pub fn stop(&mut self) {
        let out = self
            .cmd(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "fast", "-w", "stop"])
            .output()
            .unwrap();
        assert!(out.status.success(), "pg_ctl stop");
        self.running = false;
    }

    pub fn restart(&mut self) {
        self.pg_ctl_start();
    }

    fn cmd(&self, program: &Path) -> Command {
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        }
    }

    /// Run `psql -c SQL` with `stdin` on its standard input (for `\copy ... FROM STDIN`);
    /// unaligned, tuples only, stopping on the first error.
    pub fn psql(&self, sql: &str, stdin: &[u8]) -> Output {
        use std::io::Write;
        let mut child = Command::new(self.bin.join("psql"))
            .arg("-h")
            .arg(self.dir.path())
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-d",
                "postgres",
            ])
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("psql");
        let mut input = child.stdin.take().unwrap();
        let data = stdin.to_vec();
        let feeder = std::thread::spawn(move || {
            let _ = input.write_all(&data);
        });
        let out = child.wait_with_output().unwrap();
        feeder.join().unwrap();
        out
    }

    /// `psql -c SQL`, asserting success; its stdout.
    pub fn query(&self, sql: &str) -> String {
        let out = self.psql(sql, b"");
        assert!(
            out.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if self.running {
            let _ = self
                .cmd(&self.bin.join("pg_ctl"))
                .arg("-D")
                .arg(self.dir.path().join("data"))
                .args(["-m", "immediate", "-w", "stop"])
                .output();
        }
    }
}

/// A Kafka-protocol broker for the tests: Tansu (`cargo install tansu`), in memory, on a
/// loopback port, with kcat as its client.
///
/// Test-rig detail: Debian's kcat links librdkafka 2.0.2, which misreads Tansu's
/// ApiVersion v3 reply. A newer librdkafka (the one inside PyPI's `confluent-kafka` wheel)
/// works: `.ci/run` puts it as `librdkafka.so.1` into `target/test-rig/librdkafka/` (or
/// where `PULSE_TEST_LIBRDKAFKA` says), and kcat runs with `LD_LIBRARY_PATH` there.
pub struct Kafka {
    child: Option<Child>,
    pub broker: String,
    lib: PathBuf,
}

impl Kafka {
    /// Start a broker; `None` (after a note) when tansu, kcat or the newer librdkafka is
    /// missing outside CI.
    pub fn start() -> Option<Kafka> {
        if !available("kafka", &["tansu", "kcat"]) {
            return None;
        }
        let lib = std::env::var_os("PULSE_TEST_LIBRDKAFKA")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-rig/librdkafka")
            });
        if !available(
            "kafka",
            &[&lib.join("librdkafka.so.1").display().to_string()],
        ) {
            return None;
        }
        let port = free_port();
        let url = format!("tcp://127.0.0.1:{port}");
        let child = Command::new("tansu")
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", "memory://tansu/"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("tansu broker");
        let k = Kafka {
            child: Some(child),
            broker: format!("127.0.0.1:{port}"),
            lib,
        };
        let up = wait_until("tansu", Duration::from_secs(30), || {
            std::net::TcpStream::connect(&k.broker).is_ok()
        });
        assert!(up, "tansu broker not listening on {}", k.broker);
        Some(k)
    }

    /// Create `topic` with `partitions` (Tansu does not create topics on first use).
    pub fn create_topic(&self, topic: &str, partitions: u32) {
        let out = Command::new("tansu")
            .args([
                "topic",
                "create",
                topic,
                "--partitions",
                &partitions.to_string(),
            ])
            .args(["--broker", &format!("tcp://{}", self.broker)])
            .output()
            .expect("tansu topic create");
        assert!(
            out.status.success(),
            "tansu topic create {topic}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A shell prefix that runs kcat against this broker with the newer librdkafka:
    /// `{kcat} -P -t topic` in a pipeline.
    pub fn kcat(&self) -> String {
        format!(
            "env LD_LIBRARY_PATH='{}' kcat -b {}",
            self.lib.display(),
            self.broker
        )
    }
}

impl Drop for Kafka {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
