//! The narrated timeline: one line per step (time since start, terminal,
//! what happened, the screen seen), and each screen saved as a PNG.

use std::io::Write;
use std::path::{Path, PathBuf};

use tokio::time::Instant;

use crate::device::ScreenView;
use crate::error::{HarnessError, Result};
use crate::terminal::Terminal;

/// One line of the timeline.
#[derive(Debug, Clone)]
pub struct Entry {
    pub at_ms: u128,
    pub who: String,
    pub what: String,
    pub screen: Option<String>,
    pub png: Option<PathBuf>,
}

/// Records, prints and (optionally) saves screens.
pub struct Timeline {
    start: Instant,
    out_dir: Option<PathBuf>,
    echo: bool,
    shots: u32,
    entries: Vec<Entry>,
}

impl Timeline {
    /// `out_dir`: where PNGs go (created); `None` keeps no pictures.
    /// `echo`: print each line as it happens.
    pub fn new(out_dir: Option<&Path>, echo: bool) -> Result<Timeline> {
        if let Some(d) = out_dir {
            std::fs::create_dir_all(d)
                .map_err(HarnessError::io(format!("create {}", d.display())))?;
        }
        Ok(Timeline {
            start: Instant::now(),
            out_dir: out_dir.map(Path::to_owned),
            echo,
            shots: 0,
            entries: Vec::new(),
        })
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub fn out_dir(&self) -> Option<&Path> {
        self.out_dir.as_deref()
    }

    fn push(&mut self, e: Entry) {
        if self.echo {
            let secs = e.at_ms as f64 / 1000.0;
            let screen = e
                .screen
                .as_deref()
                .map(|s| format!("  [{s}]"))
                .unwrap_or_default();
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{secs:>8.3}s  {:<8} {}{screen}", e.who, e.what);
        }
        self.entries.push(e);
    }

    /// A step without a screen (backend, partner, network).
    pub fn note(&mut self, who: &str, what: impl Into<String>) {
        let at_ms = self.start.elapsed().as_millis();
        self.push(Entry {
            at_ms,
            who: who.to_owned(),
            what: what.into(),
            screen: None,
            png: None,
        });
    }

    /// A step on a terminal: records the screen seen and saves its PNG.
    pub async fn screen(
        &mut self,
        t: &Terminal,
        what: impl Into<String>,
        view: &ScreenView,
    ) -> Result<()> {
        let at_ms = self.start.elapsed().as_millis();
        let png = match &self.out_dir {
            Some(dir) => {
                self.shots += 1;
                let name = format!(
                    "{:03}-{}-{}.png",
                    self.shots,
                    t.label.to_lowercase().replace(' ', "-"),
                    view.screen
                );
                let path = dir.join(name);
                let bytes = t.device()?.png().await?;
                std::fs::write(&path, bytes)
                    .map_err(HarnessError::io(format!("write {}", path.display())))?;
                Some(path)
            }
            None => None,
        };
        self.push(Entry {
            at_ms,
            who: t.label.clone(),
            what: what.into(),
            screen: Some(view.summary()),
            png,
        });
        Ok(())
    }
}
