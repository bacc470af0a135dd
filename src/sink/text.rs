//! Snapshots as text on a writer (stdout): `json`, `csv`, `table` or `graphite`.
//!
//! - `json`: the snapshots themselves, one per line (the input format, collapsed);
//! - `csv`: header `stat,key,start,secs,final,name,value`, one row per value; a null key is an
//!   empty field, so `psql -c "\copy metrics FROM STDIN CSV HEADER"` loads it as NULL;
//! - `table`: for people: one section per stat, a row per key and window, a column per value,
//!   aligned; times in RFC 3339 UTC;
//! - `graphite`: the Graphite plaintext lines, for `| nc graphite 2003`.
//!
//! `csv` is written once, at the end of the input (a CSV file for `\copy` must not hold a
//! window twice); so is `table` when reading files (a table needs all its rows to align
//! them). Streaming, `table` prints the rows of each window as it becomes final (one aligned
//! section per stat and batch; a window corrected by late data is printed again), and at
//! the end those that never became final. `json` and `graphite` are written as batches
//! arrive.
//!
//! A `top` stat is shown in a table as ranked rows (rank, value, count, rate), not as a
//! column per value ever seen: a snapshot whose value names are not the fixed ones of the
//! other aggregates ([`is_plain_value`]) is a ranking.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use super::graphite::{clean_prefix, write_lines};
use super::{snap_key, Sink, SnapKey};
use crate::error::{Error, Result};
use crate::record::{write_f64, write_json_str, Snapshot};
use crate::time::format_rfc3339;

/// A text format on stdout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Snapshots as NDJSON, as they came in (the latest of each stat, key and window).
    Json,
    /// One row per value: stat,key,start,secs,final,name,value (for psql \copy).
    Csv,
    /// Aligned columns for people, one section per stat.
    Table,
    /// Graphite plaintext lines (path value timestamp), for `| nc graphite 2003`.
    Graphite,
    /// A full-screen view with a sparkline per stat and key, redrawn in place (on a
    /// terminal; otherwise table).
    Live,
}

/// Writes snapshots in a [`Format`].
pub struct Text<W: Write> {
    format: Format,
    out: W,
    prefix: String,
    header_done: bool,
    /// Streaming: a table prints windows as they become final.
    streaming: bool,
    /// Streaming table: the latest provisional snapshot of each window not yet final.
    held: BTreeMap<SnapKey, Snapshot>,
}

impl<W: Write> Text<W> {
    /// `prefix` applies to the `graphite` format only.
    pub fn new(format: Format, out: W, prefix: &str) -> Text<W> {
        Text {
            format,
            out,
            prefix: clean_prefix(prefix),
            header_done: false,
            streaming: false,
            held: BTreeMap::new(),
        }
    }

    /// Streaming input: a table is printed window by window as they become final.
    pub fn streaming(mut self, on: bool) -> Text<W> {
        self.streaming = on;
        self
    }

    pub fn into_inner(self) -> W {
        self.out
    }

    fn write(&mut self, batch: &[Snapshot]) -> std::io::Result<()> {
        match self.format {
            Format::Json => {
                let mut buf = Vec::with_capacity(256);
                for s in batch {
                    buf.clear();
                    write_snapshot_json(&mut buf, s);
                    buf.push(b'\n');
                    self.out.write_all(&buf)?;
                }
            }
            Format::Graphite => {
                let mut buf = Vec::with_capacity(256);
                for s in batch {
                    buf.clear();
                    write_lines(&mut buf, &self.prefix, s);
                    self.out.write_all(&buf)?;
                }
            }
            Format::Csv => {
                // Rows gather in `bytes` through the csv writer, and go out a megabyte at a
                // time; the writer is taken apart to append a row it cannot write itself.
                let into_bytes = |w: csv::Writer<Vec<u8>>| {
                    w.into_inner()
                        .map_err(|e| std::io::Error::other(e.error().to_string()))
                };
                let mut w = csv::Writer::from_writer(Vec::with_capacity(1 << 16));
                if !self.header_done {
                    w.write_record(["stat", "key", "start", "secs", "final", "name", "value"])
                        .map_err(csv_io)?;
                    self.header_done = true;
                }
                let mut num = String::new();
                for s in batch {
                    let start = s.start.to_string();
                    let secs = s.secs.to_string();
                    let fin = if s.is_final { "true" } else { "false" };
                    for (name, &v) in &s.values {
                        num.clear();
                        write_f64(&mut num, v);
                        let row = [
                            s.stat.as_str(),
                            s.key.as_deref().unwrap_or(""),
                            &start,
                            &secs,
                            fin,
                            name,
                            &num,
                        ];
                        if s.key.as_deref() == Some("") {
                            // An empty key must read back as "", not as the null key's empty
                            // field (PostgreSQL loads an unquoted empty field as NULL): this
                            // row has every field quoted.
                            let mut bytes = into_bytes(w)?;
                            for (i, field) in row.iter().enumerate() {
                                if i > 0 {
                                    bytes.push(b',');
                                }
                                bytes.push(b'"');
                                bytes.extend_from_slice(field.replace('"', "\"\"").as_bytes());
                                bytes.push(b'"');
                            }
                            bytes.push(b'\n');
                            w = csv::Writer::from_writer(bytes);
                        } else {
                            w.write_record(row).map_err(csv_io)?;
                        }
                        if w.get_ref().len() >= 1 << 20 {
                            let mut bytes = into_bytes(w)?;
                            self.out.write_all(&bytes)?;
                            bytes.clear();
                            w = csv::Writer::from_writer(bytes);
                        }
                    }
                }
                self.out.write_all(&into_bytes(w)?)?;
            }
            Format::Table | Format::Live if self.streaming => {
                let mut finals: Vec<Snapshot> = Vec::new();
                for s in batch {
                    if s.is_final {
                        self.held.remove(&snap_key(s));
                        finals.push(s.clone());
                    } else {
                        self.held.insert(snap_key(s), s.clone());
                    }
                }
                if !finals.is_empty() {
                    if self.header_done {
                        writeln!(self.out)?;
                    }
                    self.header_done = true;
                    write_table(&mut self.out, &finals)?;
                }
            }
            Format::Table | Format::Live => write_table(&mut self.out, batch)?,
        }
        self.out.flush()
    }
}

impl<W: Write> Sink for Text<W> {
    fn name(&self) -> String {
        "stdout".into()
    }

    fn send(&mut self, batch: &[Snapshot]) -> Result<()> {
        self.write(batch).map_err(|e| Error::io("stdout", e))
    }

    fn at_end_only(&self) -> bool {
        match self.format {
            Format::Csv => true,
            Format::Table | Format::Live => !self.streaming,
            Format::Json | Format::Graphite => false,
        }
    }

    fn end(&mut self) -> Result<()> {
        if self.held.is_empty() {
            return Ok(());
        }
        // Windows that never became final: shown as they last stood (final "no").
        let rest: Vec<Snapshot> = std::mem::take(&mut self.held).into_values().collect();
        let r = (|| {
            if self.header_done {
                writeln!(self.out)?;
            }
            write_table(&mut self.out, &rest)?;
            self.out.flush()
        })();
        r.map_err(|e| Error::io("stdout", e))
    }
}

/// True for the value names of every aggregate but `top` (whose names are the values
/// counted): `count`, `rate`, `sum`, `mean`, `min`, `max`, `stddev`, `unique`, `error`
/// and quantiles `pNN`.
pub fn is_plain_value(name: &str) -> bool {
    matches!(
        name,
        "count" | "rate" | "sum" | "mean" | "min" | "max" | "stddev" | "unique" | "error"
    ) || name
        .strip_prefix('p')
        .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
}

/// The one value that stands for a snapshot in a sparkline: p95 for quantiles, the mean
/// of a summary, unique, the sum (or mean, max) of `last`, and the count of counts and of
/// rankings.
pub fn headline(values: &BTreeMap<String, f64>) -> Option<(&str, f64)> {
    let ranked = values.keys().any(|n| !is_plain_value(n));
    let order: &[&str] = if ranked {
        &["count"]
    } else if values.contains_key("stddev") {
        &["mean"]
    } else {
        &["p95", "unique", "sum", "mean", "max", "count"]
    };
    order
        .iter()
        .find_map(|n| values.get_key_value(*n).map(|(k, &v)| (k.as_str(), v)))
}

/// The I/O error inside a csv error, with its kind kept (a closed pipe must stay one).
fn csv_io(e: csv::Error) -> std::io::Error {
    match e.into_kind() {
        csv::ErrorKind::Io(e) => e,
        other => std::io::Error::other(format!("{other:?}")),
    }
}

/// Append `s` as one JSON object (no newline), numbers written the shortest exact way
/// (`12`, not `12.0`).
pub fn write_snapshot_json(out: &mut Vec<u8>, s: &Snapshot) {
    out.extend_from_slice(b"{\"stat\":");
    write_json_str(out, &s.stat);
    out.extend_from_slice(b",\"key\":");
    match &s.key {
        Some(k) => write_json_str(out, k),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"start\":");
    out.extend_from_slice(itoa::Buffer::new().format(s.start).as_bytes());
    out.extend_from_slice(b",\"secs\":");
    out.extend_from_slice(itoa::Buffer::new().format(s.secs).as_bytes());
    out.extend_from_slice(if s.is_final {
        b",\"final\":true,\"values\":{"
    } else {
        b",\"final\":false,\"values\":{"
    });
    let mut num = String::new();
    for (i, (name, &v)) in s.values.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_json_str(out, name);
        out.push(b':');
        num.clear();
        write_f64(&mut num, v);
        out.extend_from_slice(num.as_bytes());
    }
    out.extend_from_slice(b"}}");
}

/// A number for people: six significant digits, no trailing zeros.
pub fn human_number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        return format!("{}", v as i64);
    }
    let mag = if v == 0.0 {
        0
    } else {
        v.abs().log10().floor() as i32
    };
    if !(-4..15).contains(&mag) {
        return format!("{v:.5e}");
    }
    let decimals = (5 - mag).clamp(0, 9) as usize;
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// `s` safe to show on a terminal: control characters (C0, DEL and C1, so ESC, CR, BS, ...)
/// and the backslash are written as escapes (`\x1b`, `\r`, `\u{9b}`, `\\`); everything
/// else is kept. Used for table cells and for input text in messages.
pub fn escape(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(|c| c.is_control() || c == '\\') {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x80 && c.is_control() => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

fn write_table(out: &mut impl Write, batch: &[Snapshot]) -> std::io::Result<()> {
    let stats: BTreeSet<&str> = batch.iter().map(|s| s.stat.as_str()).collect();
    for (i, stat) in stats.iter().enumerate() {
        let rows: Vec<&Snapshot> = batch.iter().filter(|s| s.stat == *stat).collect();
        let names: BTreeSet<&str> = rows
            .iter()
            .flat_map(|s| s.values.keys().map(String::as_str))
            .collect();
        let ranked = names.iter().any(|n| !is_plain_value(n));
        let cells = if ranked {
            ranked_cells(&rows)
        } else {
            column_cells(&rows, &names)
        };
        // Text columns to the left, numbers to the right.
        let left: &[usize] = if ranked { &[0, 1, 3, 5] } else { &[0, 1, 3] };
        write_aligned(out, stat, &cells, left, i > 0)?;
    }
    Ok(())
}

/// A `top` stat: per snapshot, its values ranked by count (ties by value), then
/// `(other)`, `(all)` and, when not 0, `(error)` (how far each listed count may fall short),
/// each row with its count and rate; the window's fields on its first row only.
fn ranked_cells(rows: &[&Snapshot]) -> Vec<Vec<String>> {
    let header = [
        "key", "start", "secs", "final", "rank", "value", "count", "rate",
    ];
    let mut cells: Vec<Vec<String>> = vec![header.iter().map(|s| s.to_string()).collect()];
    for s in rows {
        let secs = f64::from(s.secs.max(1));
        let mut listed: Vec<(&str, f64)> = s
            .values
            .iter()
            .filter(|(n, _)| !is_plain_value(n) && n.as_str() != crate::stat::top::OTHER)
            .map(|(n, &rate)| (n.as_str(), rate))
            .collect();
        listed.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(b.0)));
        let mut first = vec![
            s.key
                .as_deref()
                .map_or_else(|| "-".into(), |k| escape(k).into_owned()),
            format_rfc3339(s.start),
            s.secs.to_string(),
            if s.is_final { "yes" } else { "no" }.to_string(),
        ];
        let mut lead = |cells: &mut Vec<Vec<String>>, rest: [String; 4]| {
            let mut row = std::mem::replace(&mut first, vec![String::new(); 4]);
            row.extend(rest);
            cells.push(row);
        };
        let count_of = |rate: f64| human_number((rate * secs * 1e6).round() / 1e6);
        for (rank, (name, rate)) in listed.iter().enumerate() {
            let rest = [
                (rank + 1).to_string(),
                shorten(&escape(name), VALUE_WIDTH),
                count_of(*rate),
                human_number(*rate),
            ];
            lead(&mut cells, rest);
        }
        if let Some(&rate) = s.values.get(crate::stat::top::OTHER) {
            let rest = [
                String::new(),
                crate::stat::top::OTHER.to_string(),
                count_of(rate),
                human_number(rate),
            ];
            lead(&mut cells, rest);
        }
        let total = s.values.get("count").copied();
        let rest = [
            String::new(),
            "(all)".to_string(),
            total.map_or_else(|| "-".into(), human_number),
            total.map_or_else(|| "-".into(), |n| human_number(n / secs)),
        ];
        lead(&mut cells, rest);
        // How far each listed count may fall short of the truth, when not exact.
        if let Some(&rate) = s.values.get("error").filter(|&&r| r > 0.0) {
            let rest = [
                String::new(),
                "(error)".to_string(),
                count_of(rate),
                human_number(rate),
            ];
            lead(&mut cells, rest);
        }
    }
    cells
}

/// The widest a ranked value is shown; longer ones end in `…`.
const VALUE_WIDTH: usize = 60;

/// `s` cut to at most `width` characters, the last one `…` when cut.
fn shorten(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        return s.to_string();
    }
    let mut out: String = s.chars().take(width - 1).collect();
    out.push('…');
    out
}

/// A column per value name.
fn column_cells(rows: &[&Snapshot], names: &BTreeSet<&str>) -> Vec<Vec<String>> {
    {
        let mut cells: Vec<Vec<String>> = Vec::with_capacity(rows.len() + 1);
        let mut header: Vec<String> = ["key", "start", "secs", "final"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        header.extend(names.iter().map(|s| escape(s).into_owned()));
        cells.push(header);
        for s in rows {
            let mut row = vec![
                s.key
                    .as_deref()
                    .map_or_else(|| "-".into(), |k| escape(k).into_owned()),
                format_rfc3339(s.start),
                s.secs.to_string(),
                if s.is_final { "yes" } else { "no" }.to_string(),
            ];
            row.extend(names.iter().map(|n| match s.values.get(*n) {
                Some(&v) => human_number(v),
                None => "-".into(),
            }));
            cells.push(row);
        }
        cells
    }
}

/// One stat's section: its name, then the cells aligned in columns (those in `left` to
/// the left), after a blank line unless it is the first.
fn write_aligned(
    out: &mut impl Write,
    stat: &str,
    cells: &[Vec<String>],
    left: &[usize],
    blank_before: bool,
) -> std::io::Result<()> {
    {
        let ncol = cells[0].len();
        let widths: Vec<usize> = (0..ncol)
            .map(|c| {
                cells
                    .iter()
                    .map(|r| r[c].chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        if blank_before {
            writeln!(out)?;
        }
        writeln!(out, "{}", escape(stat))?;
        let mut line = String::new();
        for row in cells {
            line.clear();
            for (c, cell) in row.iter().enumerate() {
                if c > 0 {
                    line.push_str("  ");
                }
                let pad = widths[c] - cell.chars().count();
                if left.contains(&c) {
                    line.push_str(cell);
                    line.extend(std::iter::repeat_n(' ', pad));
                } else {
                    line.extend(std::iter::repeat_n(' ', pad));
                    line.push_str(cell);
                }
            }
            writeln!(out, "{}", line.trim_end())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snaps() -> Vec<Snapshot> {
        let mk = |key: Option<&str>, vals: &[(&str, f64)]| Snapshot {
            stat: "router.status".into(),
            key: key.map(Into::into),
            start: 1431856800,
            secs: 60,
            is_final: true,
            values: vals.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        };
        vec![
            mk(Some("200"), &[("count", 1200.0), ("rate", 20.0)]),
            mk(Some("a,\"b\""), &[("count", 3.0), ("rate", 0.05)]),
            mk(None, &[("count", 1.0)]),
        ]
    }

    fn render(format: Format) -> String {
        let mut t = Text::new(format, Vec::new(), "");
        t.send(&snaps()).unwrap();
        String::from_utf8(t.into_inner()).unwrap()
    }

    #[test]
    fn csv_rows_per_value_with_quoting() {
        assert_eq!(
            render(Format::Csv),
            "stat,key,start,secs,final,name,value\n\
             router.status,200,1431856800,60,true,count,1200\n\
             router.status,200,1431856800,60,true,rate,20\n\
             router.status,\"a,\"\"b\"\"\",1431856800,60,true,count,3\n\
             router.status,\"a,\"\"b\"\"\",1431856800,60,true,rate,0.05\n\
             router.status,,1431856800,60,true,count,1\n"
        );
    }

    #[test]
    fn csv_tells_an_empty_key_from_none() {
        let mut snaps = snaps();
        snaps[0].key = Some(String::new());
        snaps[0].values.remove("rate");
        let mut t = Text::new(Format::Csv, Vec::new(), "");
        t.send(&snaps).unwrap();
        let text = String::from_utf8(t.into_inner()).unwrap();
        let rows: Vec<&str> = text.lines().collect();
        assert_eq!(
            rows[1],
            "\"router.status\",\"\",\"1431856800\",\"60\",\"true\",\"count\",\"1200\""
        );
        assert_eq!(
            rows.last(),
            Some(&"router.status,,1431856800,60,true,count,1")
        );
    }

    #[test]
    fn table_is_aligned() {
        let t = render(Format::Table);
        assert_eq!(
            t,
            "router.status\n\
             key    start                 secs  final  count  rate\n\
             200    2015-05-17T10:00:00Z    60  yes     1200    20\n\
             a,\"b\"  2015-05-17T10:00:00Z    60  yes        3  0.05\n\
             -      2015-05-17T10:00:00Z    60  yes        1     -\n"
        );
    }

    #[test]
    fn json_round_trips() {
        let out = render(Format::Json);
        let back: Vec<Snapshot> = out
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(back, snaps());
        assert!(out.starts_with(
            r#"{"stat":"router.status","key":"200","start":1431856800,"secs":60,"final":true,"values":{"count":1200,"rate":20}}"#
        ));
    }

    #[test]
    fn table_cells_escape_control_bytes() {
        let s = Snapshot {
            stat: "evil\x1b]0;pwned\x07".into(),
            key: Some("a\rb\u{9b}c\\".into()),
            start: 0,
            secs: 60,
            is_final: true,
            values: [("n\x1b[2J".to_string(), 1.0)].into_iter().collect(),
        };
        let mut t = Text::new(Format::Table, Vec::new(), "");
        t.send(&[s]).unwrap();
        let out = String::from_utf8(t.into_inner()).unwrap();
        assert!(!out.chars().any(|c| c.is_control() && c != '\n'), "{out:?}");
        assert!(out.contains("evil\\x1b]0;pwned\\x07"), "{out}");
        assert!(out.contains("a\\rb\\u{9b}c\\\\"), "{out}");
        assert!(out.contains("n\\x1b[2J"), "{out}");
    }

    fn top_snap(start: i64, is_final: bool, vals: &[(&str, f64)]) -> Snapshot {
        Snapshot {
            stat: "http.paths".into(),
            key: None,
            start,
            secs: 60,
            is_final,
            values: vals.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        }
    }

    #[test]
    fn a_top_stat_is_ranked_rows_not_a_column_per_value() {
        let s = top_snap(
            0,
            true,
            &[
                ("/a", 0.05),
                ("/b", 0.1),
                ("/c", 0.05),
                ("(other)", 0.5),
                ("count", 42.0),
                ("error", 0.05),
            ],
        );
        let mut t = Text::new(Format::Table, Vec::new(), "");
        t.send(&[s]).unwrap();
        let out = String::from_utf8(t.into_inner()).unwrap();
        assert_eq!(
            out,
            "http.paths\n\
             key  start                 secs  final  rank  value    count  rate\n\
             -    1970-01-01T00:00:00Z    60  yes       1  /b           6   0.1\n\
             \x20                                          2  /a           3  0.05\n\
             \x20                                          3  /c           3  0.05\n\
             \x20                                             (other)     30   0.5\n\
             \x20                                             (all)       42   0.7\n\
             \x20                                             (error)      3  0.05\n"
        );
    }

    #[test]
    fn streaming_table_prints_windows_as_they_become_final() {
        let count = |start, is_final, n: f64| Snapshot {
            stat: "events".into(),
            key: None,
            start,
            secs: 60,
            is_final,
            values: [("count".to_string(), n)].into_iter().collect(),
        };
        let mut t = Text::new(Format::Table, Vec::new(), "").streaming(true);
        assert!(!t.at_end_only());
        t.send(&[count(0, false, 1.0)]).unwrap();
        assert!(t.out.is_empty(), "a provisional window is not printed");
        t.send(&[count(0, true, 2.0), count(60, false, 5.0)])
            .unwrap();
        let first = String::from_utf8(t.out.clone()).unwrap();
        assert!(
            first.contains("1970-01-01T00:00:00Z    60  yes        2"),
            "{first}"
        );
        assert!(!first.contains("00:01:00"), "{first}");
        t.end().unwrap();
        let out = String::from_utf8(t.into_inner()).unwrap();
        let rest = &out[first.len()..];
        assert!(
            rest.contains("1970-01-01T00:01:00Z    60  no         5"),
            "{rest}"
        );
    }

    #[test]
    fn headline_values() {
        let v = |pairs: &[(&str, f64)]| -> BTreeMap<String, f64> {
            pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
        };
        let q = v(&[("count", 9.0), ("p50", 1.0), ("p95", 2.0), ("mean", 1.5)]);
        assert_eq!(headline(&q), Some(("p95", 2.0)));
        let s = v(&[
            ("count", 9.0),
            ("mean", 3.0),
            ("stddev", 1.0),
            ("sum", 27.0),
        ]);
        assert_eq!(headline(&s), Some(("mean", 3.0)));
        let top = v(&[("/x", 0.5), ("count", 30.0)]);
        assert_eq!(headline(&top), Some(("count", 30.0)));
        let last = v(&[("count", 3.0), ("sum", 12.0)]);
        assert_eq!(headline(&last), Some(("sum", 12.0)));
        assert_eq!(
            headline(&v(&[("count", 4.0), ("rate", 0.1)])),
            Some(("count", 4.0))
        );
        assert!(is_plain_value("p999") && !is_plain_value("p") && !is_plain_value("/p95"));
    }

    #[test]
    fn human_numbers() {
        assert_eq!(human_number(3.0), "3");
        assert_eq!(human_number(0.1 + 0.2), "0.3");
        assert_eq!(human_number(1234.56789), "1234.57");
        assert_eq!(human_number(0.000123456), "0.000123456");
        assert_eq!(human_number(1e-7), "1.00000e-7");
    }
}
