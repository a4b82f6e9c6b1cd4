//! Terminal display of indexing progress: a bar with files done, rate and ETA when stderr is a
//! terminal, and one line per finished file either way.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use quarry::{DocumentState, IngestEvent};

/// Turns [`IngestEvent`]s into terminal output.
pub(crate) struct IndexDisplay {
    bar: Option<ProgressBar>,
    lines: bool,
}

impl IndexDisplay {
    /// `lines`: print a line per file (off for `--json`); `terminal`: draw a progress bar.
    pub(crate) fn new(lines: bool, terminal: bool) -> Self {
        let bar = terminal.then(|| {
            let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} files  {per_sec}  ETA {eta}  {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar
        });
        Self { bar, lines }
    }

    /// Handles one event.
    pub(crate) fn event(&mut self, event: IngestEvent) {
        match event {
            IngestEvent::Planned { total, unchanged, removed } => {
                if let Some(bar) = &self.bar {
                    bar.set_length(total);
                    bar.set_message(format!("{unchanged} unchanged, {removed} to remove"));
                }
            }
            IngestEvent::FileDone { path, state, pages, chunks, error, warnings } => {
                if self.lines {
                    let mut line = format!("{:<8} {path}", state.as_str());
                    match state {
                        DocumentState::Indexed => {
                            line.push_str(&format!(" ({pages} pages, {chunks} chunks)"))
                        }
                        _ => line.push_str(&format!(": {}", error.unwrap_or_default())),
                    }
                    for warning in warnings {
                        line.push_str(&format!("\n         warning: {warning}"));
                    }
                    self.print(&line);
                }
                if let Some(bar) = &self.bar {
                    bar.inc(1);
                }
            }
            IngestEvent::Committed { .. } | IngestEvent::Finished { .. } => {}
        }
    }

    fn print(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None => println!("{line}"),
        }
    }

    /// Clears the bar.
    pub(crate) fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}
