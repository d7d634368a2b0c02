//! A progress bar on standard error for long `send` / `recv` runs, drawn only when
//! standard error is a terminal (never in pipes, logs or tests).

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often (in elements) a run updates the bar: cheap enough for the hot loop.
pub const UPDATE_EVERY: u64 = 1024;

/// Runs shorter than this many elements get no bar.
pub const MIN_TOTAL: u64 = 10_000;

/// A progress bar, or nothing.
#[derive(Debug)]
pub struct Progress(Option<ProgressBar>);

impl Progress {
    /// A bar counting to `total` labelled `what`, when standard error is a terminal and
    /// the run is long enough to need one.
    pub fn new(total: u64, what: &str) -> Progress {
        if total < MIN_TOTAL || !std::io::stderr().is_terminal() {
            return Progress::hidden();
        }
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        if let Ok(style) =
            ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} ({per_sec}, {eta} left)")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(what.to_owned());
        Progress(Some(bar))
    }

    /// No bar.
    pub fn hidden() -> Progress {
        Progress(None)
    }

    /// Whether a bar is drawn.
    pub fn is_visible(&self) -> bool {
        self.0.is_some()
    }

    /// Moves the bar to `pos`.
    pub fn set(&self, pos: u64) {
        if let Some(bar) = &self.0 {
            bar.set_position(pos);
        }
    }

    /// Removes the bar (the summary line follows on standard output).
    pub fn finish(&self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_runs_and_hidden_bars_draw_nothing() {
        assert!(!Progress::new(10, "x").is_visible());
        let p = Progress::hidden();
        p.set(5);
        p.finish();
        assert!(!p.is_visible());
    }
}
