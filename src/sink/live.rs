//! `pulse-emit --format live`: a full-screen terminal view of every stat and key, each row a
//! unicode sparkline of its recent windows and the latest value, redrawn in place.
//!
//! - A row per stat and key: the stat, the key, the sparkline of the last windows (one
//!   character per window, the newest on the right; a window with no snapshot is a blank,
//!   never interpolated; a provisional window is drawn dim), the latest value with its name,
//!   and whether that window is final. The value is the snapshot's [`headline`].
//! - Rows are grouped by stat (alphabetical) and, within a stat, sorted by latest value,
//!   largest first.
//! - Keys: `←`/`→` (or `h`/`l`, Tab) pick one stat or all; `↑`/`↓` (`k`/`j`), PgUp/PgDn,
//!   Home/End scroll; `q`, Esc or Ctrl-C quit: streaming, as SIGTERM would (the other sinks
//!   deliver what they hold); reading files, at once. At the end of the input the view
//!   stays until quit.
//! - Memory is bounded: [`HISTORY`] windows per series and [`MAX_SERIES`] series; snapshots
//!   of further series are counted and the count shown.
//!
//! The model ([`Model`]) is separate from drawing so that it can be tested without a
//! terminal; the drawing runs on its own thread, woken by new snapshots and by keys.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::text::{escape, headline, human_number};
use super::Sink;
use crate::error::{Error, Result};
use crate::record::Snapshot;
use crate::time::format_rfc3339;

/// Windows kept per series.
pub const HISTORY: usize = 60;

/// Series (stat and key) kept.
pub const MAX_SERIES: usize = 20_000;

/// The eight heights of a sparkline.
const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// One point of a series: its headline value and whether the window is final.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    pub value: f64,
    pub is_final: bool,
}

#[derive(Debug, Default)]
pub struct Series {
    pub secs: u32,
    /// The headline value's name (`count`, `p95`, ...), from the latest snapshot.
    pub name: String,
    /// Window start → point, the last [`HISTORY`] windows.
    pub points: BTreeMap<i64, Point>,
}

impl Series {
    /// The newest point.
    pub fn latest(&self) -> Option<(i64, Point)> {
        self.points.iter().next_back().map(|(&s, &p)| (s, p))
    }

    /// One character per window over the `width` windows ending with the one starting at
    /// `newest` (a blank where there is no point), with whether each is final.
    pub fn sparkline(&self, newest: i64, width: usize) -> Vec<(char, bool)> {
        let secs = i64::from(self.secs.max(1));
        let first = newest - secs * (width as i64 - 1);
        let shown: Vec<Option<Point>> = (0..width as i64)
            .map(|i| self.points.get(&(first + i * secs)).copied())
            .collect();
        let vals = shown.iter().flatten().map(|p| p.value);
        let (lo, hi) = vals.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
        shown
            .iter()
            .map(|p| match p {
                None => (' ', true),
                Some(p) => {
                    let level = if hi > lo {
                        (((p.value - lo) / (hi - lo)) * 7.0).round() as usize
                    } else if p.value > 0.0 {
                        7
                    } else {
                        0
                    };
                    (BARS[level.min(7)], p.is_final)
                }
            })
            .collect()
    }
}

/// What the view shows, fed by snapshots.
#[derive(Debug, Default)]
pub struct Model {
    /// (stat, key) → series.
    pub series: BTreeMap<(String, Option<String>), Series>,
    /// Snapshots of series beyond [`MAX_SERIES`], not shown.
    pub overflow: u64,
    /// Which stat is picked: None for all.
    pub picked: Option<String>,
    /// First row shown.
    pub scroll: usize,
    pub ended: bool,
    pub quit: bool,
}

impl Model {
    pub fn add(&mut self, s: &Snapshot) {
        let Some((name, value)) = headline(&s.values) else {
            return;
        };
        let id = (s.stat.clone(), s.key.clone());
        if !self.series.contains_key(&id) && self.series.len() >= MAX_SERIES {
            self.overflow += 1;
            return;
        }
        let series = self.series.entry(id).or_default();
        if series.secs != s.secs {
            // A different window length (a --rollup) starts the series again.
            series.points.clear();
            series.secs = s.secs;
        }
        let newest = series.latest().map_or(s.start, |(t, _)| t.max(s.start));
        if s.start + i64::from(s.secs) * HISTORY as i64 <= newest {
            return;
        }
        series.name = name.to_string();
        series.points.insert(
            s.start,
            Point {
                value,
                is_final: s.is_final,
            },
        );
        while series.points.len() > HISTORY {
            series.points.pop_first();
        }
    }

    /// The stats held, in order.
    pub fn stats(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.series.keys().map(|(s, _)| s.as_str()).collect();
        v.dedup();
        v
    }

    /// The rows to show, in order: grouped by stat, within a stat by latest value,
    /// largest first (ties by key).
    pub fn rows(&self) -> Vec<(&(String, Option<String>), &Series)> {
        let mut rows: Vec<_> = self
            .series
            .iter()
            .filter(|((stat, _), _)| self.picked.as_ref().is_none_or(|p| p == stat))
            .collect();
        let latest = |s: &Series| s.latest().map_or(f64::NEG_INFINITY, |(_, p)| p.value);
        rows.sort_by(|(a, sa), (b, sb)| {
            a.0.cmp(&b.0)
                .then(latest(sb).total_cmp(&latest(sa)))
                .then(a.1.cmp(&b.1))
        });
        rows
    }

    /// Pick the next (`step` 1) or previous (-1) stat, through "all".
    pub fn pick(&mut self, step: i32) {
        let stats: Vec<String> = self.stats().into_iter().map(str::to_string).collect();
        let at = match &self.picked {
            None => 0,
            Some(p) => stats.iter().position(|s| s == p).map_or(0, |i| i + 1),
        } as i32;
        let n = stats.len() as i32 + 1;
        let next = (at + step).rem_euclid(n);
        self.picked = (next > 0).then(|| stats[next as usize - 1].clone());
        self.scroll = 0;
    }

    /// Newest window start per stat, so that a series gone quiet shows its gap.
    fn newest_of_stats(&self) -> BTreeMap<&str, i64> {
        let mut m: BTreeMap<&str, i64> = BTreeMap::new();
        for ((stat, _), s) in &self.series {
            if let Some((t, _)) = s.latest() {
                let e = m.entry(stat.as_str()).or_insert(t);
                *e = (*e).max(t);
            }
        }
        m
    }

    /// The text of the view, `width` columns by `height` rows: header line, then rows.
    pub fn lines(&self, width: u16, height: u16) -> Vec<Line<'static>> {
        let width = width as usize;
        let rows = self.rows();
        let newest = self.newest_of_stats();
        let stat_w = rows
            .iter()
            .map(|((s, _), _)| s.chars().count())
            .max()
            .unwrap_or(4)
            .clamp(4, 28);
        let key_w = rows
            .iter()
            .map(|((_, k), _)| k.as_deref().map_or(1, |k| k.chars().count()))
            .max()
            .unwrap_or(3)
            .clamp(3, 32);
        let value_w = 22;
        let spark_w = width
            .saturating_sub(stat_w + key_w + value_w + 8)
            .clamp(8, HISTORY);
        let mut out = Vec::with_capacity(height as usize);
        let picked = self.picked.as_deref().unwrap_or("all stats");
        let mut title = format!(
            " pulse live  {} series  showing: {}  ←/→ stat  ↑/↓ scroll  q quit",
            self.series.len(),
            escape(picked)
        );
        if self.overflow > 0 {
            title.push_str(&format!(
                "  ({} snapshots of series past {MAX_SERIES} not shown)",
                self.overflow
            ));
        }
        if self.ended {
            title.push_str("  [input ended]");
        }
        out.push(Line::from(Span::styled(
            title,
            Style::default().add_modifier(Modifier::REVERSED),
        )));
        let body = (height as usize).saturating_sub(1);
        let scroll = self.scroll.min(rows.len().saturating_sub(1));
        for ((stat, key), s) in rows.iter().skip(scroll).take(body) {
            let mut spans = vec![
                Span::styled(pad(&escape(stat), stat_w), Style::default().fg(Color::Cyan)),
                Span::raw("  "),
                Span::raw(pad(&escape(key.as_deref().unwrap_or("-")), key_w)),
                Span::raw("  "),
            ];
            let end = newest.get(stat.as_str()).copied().unwrap_or(0);
            for (c, is_final) in s.sparkline(end, spark_w) {
                let style = if is_final {
                    Style::default().fg(Color::Green)
                } else {
                    Style::default()
                        .fg(Color::Yellow)
                        .add_modifier(Modifier::DIM)
                };
                spans.push(Span::styled(c.to_string(), style));
            }
            spans.push(Span::raw("  "));
            if let Some((start, p)) = s.latest() {
                let v = format!("{} {}", human_number(p.value), s.name);
                spans.push(Span::styled(
                    format!("{v:>w$}", w = value_w - 4),
                    Style::default().add_modifier(Modifier::BOLD),
                ));
                let mark = if p.is_final { " ok" } else { " ~" };
                spans.push(Span::raw(mark));
                if width > stat_w + key_w + spark_w + value_w + 30 {
                    spans.push(Span::raw(format!("  {}", format_rfc3339(start))));
                }
            }
            out.push(Line::from(spans));
        }
        if rows.is_empty() {
            out.push(Line::from(" waiting for snapshots ..."));
        }
        out
    }

    fn key(&mut self, code: KeyCode, mods: KeyModifiers, page: usize) {
        let rows = self.rows().len();
        match code {
            KeyCode::Char('q') | KeyCode::Esc => self.quit = true,
            KeyCode::Char('c') if mods.contains(KeyModifiers::CONTROL) => self.quit = true,
            KeyCode::Right | KeyCode::Char('l') | KeyCode::Tab => self.pick(1),
            KeyCode::Left | KeyCode::Char('h') | KeyCode::BackTab => self.pick(-1),
            KeyCode::Down | KeyCode::Char('j') => {
                self.scroll = (self.scroll + 1).min(rows.saturating_sub(1))
            }
            KeyCode::Up | KeyCode::Char('k') => self.scroll = self.scroll.saturating_sub(1),
            KeyCode::PageDown => self.scroll = (self.scroll + page).min(rows.saturating_sub(1)),
            KeyCode::PageUp => self.scroll = self.scroll.saturating_sub(page),
            KeyCode::Home => self.scroll = 0,
            KeyCode::End => self.scroll = rows.saturating_sub(page),
            _ => {}
        }
    }
}

/// `s` padded or cut (with `…`) to `w` characters.
fn pad(s: &str, w: usize) -> String {
    let n = s.chars().count();
    if n <= w {
        format!("{s}{}", " ".repeat(w - n))
    } else {
        let mut t: String = s.chars().take(w - 1).collect();
        t.push('…');
        t
    }
}

struct Shared {
    model: Mutex<Model>,
    changed: Condvar,
}

/// The live view as a sink: snapshots go into the model; a thread draws it.
pub struct Live {
    shared: Arc<Shared>,
    ui: Option<std::thread::JoinHandle<std::io::Result<()>>>,
    done: Arc<AtomicBool>,
}

impl Live {
    /// Take over the terminal (stdout must be one). `streaming`: quitting stops the run as
    /// SIGTERM does (the tool handles it); reading files, it ends the process once the
    /// terminal is restored.
    pub fn start(streaming: bool) -> Result<Live> {
        let shared = Arc::new(Shared {
            model: Mutex::new(Model::default()),
            changed: Condvar::new(),
        });
        let done = Arc::new(AtomicBool::new(false));
        let terminal = ratatui::try_init()
            .map_err(|e| Error::Runtime(format!("cannot start the live view: {e}")))?;
        let (s, d) = (shared.clone(), done.clone());
        let ui = std::thread::Builder::new()
            .name("live".into())
            .spawn(move || {
                let r = draw_loop(terminal, &s, &d);
                ratatui::restore();
                let ended = s.model.lock().unwrap_or_else(|e| e.into_inner()).ended;
                if streaming {
                    // As SIGTERM would: the other sinks deliver what they hold.
                    // SAFETY: raise() with a valid signal number.
                    unsafe {
                        libc::raise(libc::SIGTERM);
                    }
                } else if !ended {
                    std::process::exit(0);
                }
                r
            })
            .map_err(|e| Error::Runtime(format!("cannot start the live view: {e}")))?;
        Ok(Live {
            shared,
            ui: Some(ui),
            done,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Model> {
        self.shared.model.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn draw_loop(
    mut terminal: ratatui::DefaultTerminal,
    shared: &Shared,
    done: &AtomicBool,
) -> std::io::Result<()> {
    let mut page = 10usize;
    loop {
        {
            let model = shared.model.lock().unwrap_or_else(|e| e.into_inner());
            terminal.draw(|f| {
                let area = f.area();
                page = area.height.saturating_sub(2).max(1) as usize;
                let [body] = Layout::vertical([Constraint::Fill(1)]).areas(area);
                f.render_widget(Paragraph::new(model.lines(area.width, area.height)), body);
            })?;
            if model.quit {
                break;
            }
        }
        // Keys come within 100 ms; snapshots wake the wait on the condition variable.
        if event::poll(Duration::from_millis(100))? {
            if let Event::Key(k) = event::read()? {
                if k.kind != KeyEventKind::Release {
                    let mut model = shared.model.lock().unwrap_or_else(|e| e.into_inner());
                    model.key(k.code, k.modifiers, page);
                }
            }
            continue;
        }
        let model = shared.model.lock().unwrap_or_else(|e| e.into_inner());
        let _ = shared
            .changed
            .wait_timeout(model, Duration::from_millis(150))
            .unwrap_or_else(|e| e.into_inner());
    }
    done.store(true, Ordering::Relaxed);
    Ok(())
}

impl Sink for Live {
    fn name(&self) -> String {
        "live view".into()
    }

    fn send(&mut self, batch: &[Snapshot]) -> Result<()> {
        if self.done.load(Ordering::Relaxed) {
            return Ok(());
        }
        let mut model = self.lock();
        for s in batch {
            model.add(s);
        }
        drop(model);
        self.shared.changed.notify_all();
        Ok(())
    }

    fn end(&mut self) -> Result<()> {
        self.lock().ended = true;
        self.shared.changed.notify_all();
        match self.ui.take().map(|t| t.join()) {
            Some(Ok(Err(e))) => Err(Error::io("terminal", e)),
            Some(Err(_)) => Err(Error::Runtime("live view: drawing thread panicked".into())),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(stat: &str, key: Option<&str>, start: i64, is_final: bool, count: f64) -> Snapshot {
        Snapshot {
            stat: stat.into(),
            key: key.map(Into::into),
            start,
            secs: 60,
            is_final,
            values: [
                ("count".to_string(), count),
                ("rate".to_string(), count / 60.0),
            ]
            .into_iter()
            .collect(),
        }
    }

    fn text(line: &Line) -> String {
        line.spans.iter().map(|s| s.content.as_ref()).collect()
    }

    #[test]
    fn a_sparkline_rises_with_its_values_and_gaps_stay_blank() {
        let mut m = Model::default();
        for (i, v) in [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0].iter().enumerate() {
            if i == 3 {
                continue;
            }
            m.add(&snap("s", None, i as i64 * 60, true, *v));
        }
        let s = &m.series[&("s".to_string(), None)];
        let line: String = s.sparkline(7 * 60, 8).iter().map(|(c, _)| c).collect();
        assert_eq!(line, "▁▂▃ ▅▆▇█");
    }

    #[test]
    fn late_data_replaces_its_window_and_history_is_bounded() {
        let mut m = Model::default();
        for i in 0..(HISTORY as i64 + 10) {
            m.add(&snap("s", None, i * 60, false, 1.0));
        }
        m.add(&snap("s", None, 20 * 60, true, 9.0));
        let s = &m.series[&("s".to_string(), None)];
        assert_eq!(s.points.len(), HISTORY);
        assert_eq!(
            s.points[&(20 * 60)],
            Point {
                value: 9.0,
                is_final: true
            }
        );
        // Older than the history: ignored.
        m.add(&snap("s", None, 0, true, 5.0));
        assert!(!m.series[&("s".to_string(), None)].points.contains_key(&0));
    }

    #[test]
    fn rows_grouped_by_stat_then_largest_first_and_stats_can_be_picked() {
        let mut m = Model::default();
        m.add(&snap("b", Some("x"), 0, true, 1.0));
        m.add(&snap("a", Some("small"), 0, true, 2.0));
        m.add(&snap("a", Some("big"), 0, true, 20.0));
        let keys: Vec<String> = m
            .rows()
            .iter()
            .map(|((s, k), _)| format!("{s}/{}", k.as_deref().unwrap()))
            .collect();
        assert_eq!(keys, ["a/big", "a/small", "b/x"]);
        m.pick(1);
        assert_eq!(m.picked.as_deref(), Some("a"));
        m.pick(1);
        assert_eq!(m.rows().len(), 1);
        m.pick(1);
        assert_eq!(m.picked, None);
        m.pick(-1);
        assert_eq!(m.picked.as_deref(), Some("b"));
        let lines = m.lines(120, 10);
        assert!(text(&lines[0]).contains("showing: b"));
        assert!(text(&lines[1]).starts_with("b "), "{}", text(&lines[1]));
        assert!(
            text(&lines[1]).contains("1 count ok"),
            "{}",
            text(&lines[1])
        );
    }

    #[test]
    fn series_are_bounded() {
        let mut m = Model::default();
        for i in 0..(MAX_SERIES + 5) {
            m.add(&snap("s", Some(&i.to_string()), 0, true, 1.0));
        }
        assert_eq!(m.series.len(), MAX_SERIES);
        assert_eq!(m.overflow, 5);
        assert!(text(&m.lines(200, 3)[0]).contains("5 snapshots of series past"));
    }
}
