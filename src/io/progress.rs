//! A progress bar on stderr while reading files, only when stderr is a terminal.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;

/// Byte progress over the inputs; hidden unless stderr is a terminal and the total is known.
pub struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    pub fn new(total: Option<u64>) -> Progress {
        let show = std::io::stderr().is_terminal() && total.is_some_and(|t| t > 0);
        let bar = show.then(|| {
            let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
            let template = if std::env::var_os("NO_COLOR").is_some() {
                "{bytes}/{total_bytes} {wide_bar} {bytes_per_sec} eta {eta}"
            } else {
                "{bytes}/{total_bytes} {wide_bar:.cyan/blue} {bytes_per_sec} eta {eta}"
            };
            if let Ok(style) = ProgressStyle::with_template(template) {
                bar.set_style(style);
            }
            bar
        });
        Progress { bar }
    }

    pub fn hidden() -> Progress {
        Progress { bar: None }
    }

    #[inline]
    pub fn inc(&self, bytes: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(bytes);
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
