//! The dashboard file of `pulse-web --dashboard`: which stats to show, in which order, how.
//!
//! Plain text read by the stats file's lexer: one panel per line, `#` comments, blank lines
//! skipped, a line ending in `\` goes on with the next, words bare or `"quoted"`:
//!
//! ```text
//! # stat            options
//! apache.requests   title "Requests"  value count  unit req  warning 400  critical 800
//! apache.bytes      value p95  unit B  key /index.html|/favicon.ico
//! disk.free         value mean unit GB warning <20 critical <10
//! ```
//!
//! ```text
//! line     := STAT OPTION*
//! OPTION   := title WORD | value NAME | unit WORD | key K[|K...] | warning LIMIT | critical LIMIT
//! LIMIT    := NUMBER        (the cell turns orange / red at or above it)
//!           | <NUMBER       (lower is worse: at or below it)
//! ```
//!
//! Panels are shown in the file's order, and only the stats it names; without a file,
//! every stat is shown. The full description is `man/pulse.dashboard.5`.

use serde::Serialize;

use crate::spec::lex::{logical_lines, Cursor};

/// A warning or critical threshold.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Limit {
    pub value: f64,
    /// True for `<N`: at or below is bad.
    pub below: bool,
}

impl Limit {
    /// Whether `v` is past this limit.
    pub fn crossed(&self, v: f64) -> bool {
        if self.below {
            v <= self.value
        } else {
            v >= self.value
        }
    }
}

/// One line of a dashboard file.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Panel {
    pub stat: String,
    pub title: Option<String>,
    /// The value drawn (default: the stat's headline value).
    pub value: Option<String>,
    pub unit: Option<String>,
    /// Only these keys (default: all).
    pub keys: Vec<String>,
    pub warning: Option<Limit>,
    pub critical: Option<Limit>,
}

/// A whole dashboard file.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Dashboard {
    pub panels: Vec<Panel>,
}

impl Dashboard {
    /// Parse a dashboard file's text; an error names the line and column.
    pub fn parse(text: &str) -> Result<Dashboard, String> {
        let mut panels = Vec::new();
        for logical in logical_lines(text) {
            let mut c = Cursor::new(&logical.text);
            let at = |c: &Cursor<'_>, msg: String| {
                let (line, col) = logical.place(c.tok());
                format!("line {line}, column {col}: {msg}")
            };
            let Some(stat) = c.word().map_err(|e| at(&c, e))? else {
                continue;
            };
            let mut p = Panel {
                stat,
                ..Panel::default()
            };
            while let Some(opt) = c.word().map_err(|e| at(&c, e))? {
                const OPTIONS: &[&str] = &["title", "value", "unit", "key", "warning", "critical"];
                if !OPTIONS.contains(&opt.as_str()) {
                    return Err(at(
                        &c,
                        format!(
                            "unknown option {opt:?} (title, value, unit, key, warning, critical)"
                        ),
                    ));
                }
                let arg = c.word().map_err(|e| at(&c, e))?;
                let Some(arg) = arg else {
                    return Err(at(&c, format!("{opt:?} needs a value")));
                };
                match opt.as_str() {
                    "title" => p.title = Some(arg),
                    "value" => p.value = Some(arg),
                    "unit" => p.unit = Some(arg),
                    "key" => p.keys = arg.split('|').map(str::to_string).collect(),
                    "warning" | "critical" => {
                        let (below, num) = match arg.strip_prefix('<') {
                            Some(n) => (true, n),
                            None => (false, arg.as_str()),
                        };
                        let value: f64 = num
                            .parse()
                            .ok()
                            .filter(|v: &f64| v.is_finite())
                            .ok_or_else(|| {
                                at(&c, format!("{opt} {arg:?}: expected a number or <number"))
                            })?;
                        let l = Some(Limit { value, below });
                        if opt == "warning" {
                            p.warning = l
                        } else {
                            p.critical = l
                        }
                    }
                    _ => unreachable!("checked above"),
                }
            }
            panels.push(p);
        }
        Ok(Dashboard { panels })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_panels_in_order() {
        let d = Dashboard::parse(
            "# comment\n\napache.requests title \"All requests\" value count unit req \\\n  warning 400 critical 800\ndisk.free value mean warning <20 critical <10 key a|b\n",
        )
        .unwrap();
        assert_eq!(d.panels.len(), 2);
        assert_eq!(d.panels[0].title.as_deref(), Some("All requests"));
        assert_eq!(
            d.panels[0].critical,
            Some(Limit {
                value: 800.0,
                below: false
            })
        );
        assert!(d.panels[1].warning.unwrap().below);
        assert!(d.panels[1].critical.unwrap().crossed(5.0));
        assert!(!d.panels[1].critical.unwrap().crossed(15.0));
        assert_eq!(d.panels[1].keys, ["a", "b"]);
    }

    #[test]
    fn errors_name_line_and_column() {
        let e = Dashboard::parse("a value count\nb colour red\n").unwrap_err();
        assert!(e.starts_with("line 2, column 3: unknown option"), "{e}");
        let e = Dashboard::parse("a warning x\n").unwrap_err();
        assert!(e.contains("line 1"), "{e}");
        let e = Dashboard::parse("a title\n").unwrap_err();
        assert!(e.contains("needs a value"), "{e}");
    }
}
