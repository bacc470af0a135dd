//! Snapshots as text on a writer (stdout): `json`, `csv`, `table` or `graphite`.
//!
//! - `json`: the snapshots themselves, one per line (the input format, collapsed);
//! - `csv`: header `stat,key,start,secs,final,name,value`, one row per value; a null key is an
//!   empty field, so `psql -c "\copy metrics FROM STDIN CSV HEADER"` loads it as NULL;
//! - `table`: for people: one section per stat, a row per key and window, a column per value,
//!   aligned; times in RFC 3339 UTC;
//! - `graphite`: the Graphite plaintext lines, for `| nc graphite 2003`.
//!
//! `csv` and `table` are written once, at the end of the input (a table needs all its rows
//! to align them; a CSV file for `\copy` must not hold a window twice); `json` and
//! `graphite` are written as batches arrive.

use std::collections::BTreeSet;
use std::io::Write;

use super::graphite::{clean_prefix, write_lines};
use super::Sink;
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
}

/// Writes snapshots in a [`Format`].
pub struct Text<W: Write> {
    format: Format,
    out: W,
    prefix: String,
    header_done: bool,
}

impl<W: Write> Text<W> {
    /// `prefix` applies to the `graphite` format only.
    pub fn new(format: Format, out: W, prefix: &str) -> Text<W> {
        Text {
            format,
            out,
            prefix: clean_prefix(prefix),
            header_done: false,
        }
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
            Format::Table => write_table(&mut self.out, batch)?,
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
        matches!(self.format, Format::Csv | Format::Table)
    }
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
        let mut cells: Vec<Vec<String>> = Vec::with_capacity(rows.len() + 1);
        let mut header: Vec<String> = ["key", "start", "secs", "final"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        header.extend(names.iter().map(|s| escape(s).into_owned()));
        cells.push(header);
        for s in &rows {
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
        if i > 0 {
            writeln!(out)?;
        }
        writeln!(out, "{}", escape(stat))?;
        let mut line = String::new();
        for row in &cells {
            line.clear();
            for (c, cell) in row.iter().enumerate() {
                if c > 0 {
                    line.push_str("  ");
                }
                let pad = widths[c] - cell.chars().count();
                // Text columns (key, start, final) to the left, numbers to the right.
                if c == 0 || c == 1 || c == 3 {
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

    #[test]
    fn human_numbers() {
        assert_eq!(human_number(3.0), "3");
        assert_eq!(human_number(0.1 + 0.2), "0.3");
        assert_eq!(human_number(1234.56789), "1234.57");
        assert_eq!(human_number(0.000123456), "0.000123456");
        assert_eq!(human_number(1e-7), "1.00000e-7");
    }
}
