//! `pulse-emit --postgres` against a real PostgreSQL server (a throwaway cluster per test).

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::emit::{append, snap, stderr};
use crate::servers::Postgres;
use crate::util::{bin, run};

fn emit(pg: &Postgres, extra: &[&str], input: &str) -> std::process::Output {
    let url = format!("--postgres={}", pg.url());
    let mut args = vec![url.as_str()];
    args.extend_from_slice(extra);
    run("pulse-emit", &args, input.as_bytes())
}

const ROWS: &str = "SELECT stat, key, extract(epoch FROM start)::bigint, secs, name, value, final \
                    FROM pulse_metrics ORDER BY 1, 2, 3, 4, 5";

/// Provisional rows, then finals, corrections from late data, a provisional after the final,
/// and a re-delivery: the table always holds the latest truth, one row per value.
#[test]
fn postgres_upserts_corrections_and_never_lets_provisional_overwrite_final() {
    let Some(pg) = Postgres::start() else { return };
    let mut first = String::new();
    for m in 0..3 {
        first += &snap("router", Some("web.1"), m * 60, false, &[("count", 1.0)]);
        first += &snap("router", None, m * 60, false, &[("count", 2.0)]);
    }
    let out = emit(&pg, &[], &first);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(out.stdout.is_empty(), "nothing on stdout unless asked");
    assert_eq!(
        pg.query("SELECT count(*), bool_or(final) FROM pulse_metrics"),
        "6|f\n"
    );

    // The finals replace every provisional row; a top stat has a row per listed value.
    let mut finals = String::new();
    for m in 0..3 {
        finals += &snap(
            "router",
            Some("web.1"),
            m * 60,
            true,
            &[("count", 10.0 + m as f64)],
        );
        finals += &snap("router", None, m * 60, true, &[("count", 20.0)]);
    }
    finals += &snap(
        "paths",
        None,
        0,
        true,
        &[("/a", 5.0), ("/b\tc", 3.0), ("count", 9.0)],
    );
    let out = emit(&pg, &[], &finals);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        pg.query(ROWS),
        "paths||0|60|/a|5|t\n\
         paths||0|60|/b\tc|3|t\n\
         paths||0|60|count|9|t\n\
         router||0|60|count|20|t\n\
         router||60|60|count|20|t\n\
         router||120|60|count|20|t\n\
         router|web.1|0|60|count|10|t\n\
         router|web.1|60|60|count|11|t\n\
         router|web.1|120|60|count|12|t\n"
    );
    let written = pg.query("SELECT written FROM pulse_metrics ORDER BY stat, key, start, name");

    // Re-delivered: nothing changes, not even `written`.
    let out = emit(&pg, &[], &finals);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        pg.query("SELECT written FROM pulse_metrics ORDER BY stat, key, start, name"),
        written
    );

    // A provisional snapshot of a final window changes nothing; a corrected final (late
    // data) replaces its rows, and a value it no longer lists is gone.
    let mut late = String::new();
    late += &snap("router", None, 0, false, &[("count", 99.0)]);
    late += &snap("router", Some("web.1"), 60, true, &[("count", 15.0)]);
    late += &snap(
        "paths",
        None,
        0,
        true,
        &[("/a", 6.0), ("/z", 4.0), ("count", 12.0)],
    );
    let out = emit(&pg, &[], &late);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        pg.query(ROWS),
        "paths||0|60|/a|6|t\n\
         paths||0|60|/z|4|t\n\
         paths||0|60|count|12|t\n\
         router||0|60|count|20|t\n\
         router||60|60|count|20|t\n\
         router||120|60|count|20|t\n\
         router|web.1|0|60|count|10|t\n\
         router|web.1|60|60|count|15|t\n\
         router|web.1|120|60|count|12|t\n"
    );
    // The table is the documented one: its primary key is (stat, key, start, secs, name).
    assert_eq!(
        pg.query(
            "SELECT string_agg(a.attname, ',' ORDER BY array_position(i.indkey, a.attnum)) \
             FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) \
             WHERE i.indrelid = 'pulse_metrics'::regclass AND i.indisprimary"
        ),
        "stat,key,start,secs,name\n"
    );
    // Another table by name, and a name that is not one refused before anything is sent.
    let out = emit(&pg, &["--pg-table", "m.pulse"], &late);
    assert!(!out.status.success(), "schema m does not exist");
    assert!(
        stderr(&out).contains("schema \"m\" does not exist"),
        "{}",
        stderr(&out)
    );
    pg.query("CREATE SCHEMA m");
    let out = emit(&pg, &["--pg-table", "m.pulse"], &late);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(pg.query("SELECT count(*) FROM m.pulse"), "5\n");
    let out = emit(&pg, &["--pg-table", "x; drop table y"], &late);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

/// A run killed with SIGKILL in the middle of a large batch leaves none of it; the next run
/// from the same checkpoint writes all of it.
#[test]
fn postgres_batch_killed_midway_leaves_nothing_and_the_next_run_writes_it_all() {
    let Some(pg) = Postgres::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let snaps = dir.path().join("snaps.ndjson");
    let state = dir.path().join("emit.state");
    append(&snaps, &snap("first", None, 0, true, &[("count", 1.0)]));
    let state_arg = state.to_str().unwrap();
    let snaps_arg = snaps.to_str().unwrap();
    let out = emit(&pg, &["--state", state_arg, snaps_arg], "");
    assert!(out.status.success(), "{}", stderr(&out));

    // 60,000 snapshots of 6 values: 360,000 rows in one batch.
    let mut big = String::new();
    for i in 0..60_000i64 {
        let key = format!("k{}", i % 1000);
        big += &snap(
            "big",
            Some(&key),
            (i / 1000) * 60,
            true,
            &[
                ("count", i as f64),
                ("p50", 1.0),
                ("p90", 2.0),
                ("p95", 3.0),
                ("p99", 4.0),
                ("sum", 0.5),
            ],
        );
    }
    append(&snaps, &big);

    // Hold the table locked so the batch stops inside its transaction, then kill the run.
    let mut locker = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "(echo 'BEGIN; LOCK TABLE pulse_metrics IN ACCESS EXCLUSIVE MODE;'; sleep 30) | psql -X -q '{}'",
            pg.url()
        ))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    let wait_for = |sql: &str, want: &str| {
        let end = Instant::now() + Duration::from_secs(20);
        while pg.query(sql) != want {
            assert!(Instant::now() < end, "waited for {sql} = {want:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    wait_for(
        "SELECT count(*) FROM pg_locks WHERE relation = 'pulse_metrics'::regclass AND mode = 'AccessExclusiveLock' AND granted",
        "1\n",
    );
    let url = format!("--postgres={}", pg.url());
    let mut emitter = Command::new(bin("pulse-emit"))
        .args([url.as_str(), "--state", state_arg, snaps_arg])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pulse-emit' AND wait_event_type = 'Lock'",
        "1\n",
    );
    // The rows were copied and the upsert waits for the lock: now the run dies.
    assert_eq!(pg.query("SELECT count(*) FROM pulse_metrics"), "1\n");
    emitter.kill().unwrap();
    emitter.wait().unwrap();
    unsafe { libc::kill(-(locker.id() as i32), libc::SIGTERM) };
    locker.wait().unwrap();
    wait_for(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pulse-emit'",
        "0\n",
    );
    assert_eq!(pg.query("SELECT count(*) FROM pulse_metrics"), "1\n");

    let out = emit(&pg, &["--state", state_arg, snaps_arg], "");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        pg.query("SELECT count(*), sum(value) FILTER (WHERE name = 'count') FROM pulse_metrics WHERE stat = 'big'"),
        format!("360000|{}\n", (0..60_000i64).sum::<i64>())
    );
}

/// From cron, the database down for one run: that run fails with one line (no password)
/// and keeps its checkpoint; the next run, with the database back, catches up.
#[test]
fn postgres_down_between_cron_runs_fails_one_run_and_the_next_catches_up() {
    let Some(mut pg) = Postgres::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let snaps = dir.path().join("snaps.ndjson");
    let state = dir.path().join("emit.state");
    let (s, f) = (state.to_str().unwrap(), snaps.to_str().unwrap());
    // A password in the connection string (trust auth ignores it) must never be shown.
    let url = format!("--postgres={} password=hunter2", pg.url());
    let cron = || run("pulse-emit", &[url.as_str(), "--state", s, f], b"");
    for m in 0..5 {
        append(
            &snaps,
            &snap("cron", None, m * 60, true, &[("count", m as f64)]),
        );
    }
    let out = cron();
    assert!(out.status.success(), "{}", stderr(&out));

    pg.stop();
    for m in 5..10 {
        append(
            &snaps,
            &snap("cron", None, m * 60, true, &[("count", m as f64)]),
        );
    }
    let out = cron();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(
        err.contains("cannot connect") && err.contains("postgres@"),
        "{err}"
    );
    assert!(!err.contains("hunter2"), "{err}");

    pg.restart();
    let out = cron();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        pg.query("SELECT count(*), sum(value) FROM pulse_metrics WHERE stat = 'cron'"),
        "10|45\n"
    );
}
