//! The printer task (SPEC 7.4): owns the receipt printer and prints the
//! documents the core loop hands it, one at a time, each bounded by a
//! timeout. A printer that is missing, out of paper or silent never holds
//! up the core or a payment: the core loop hands jobs over with
//! `try_send` (a full queue drops the job, logged), failures are logged
//! and told to the core (the idle screen says what is wrong until the
//! printer prints again), and the receipt stays reprintable from `menu` →
//! Last receipt.

use std::time::Duration;

use hal::Printer;
use hal::drivers::AnyPrinter;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::task::{RunError, Task};

/// The most one job may take, status included.
pub const PRINT_TIMEOUT: Duration = Duration::from_secs(15);
/// Jobs waiting for the printer; more are dropped (and counted).
pub const PRINT_QUEUE: usize = 8;

pub struct PrinterTask {
    pub printer: AnyPrinter,
    pub jobs: mpsc::Receiver<hal::Document>,
    /// Told when the printer starts or stops failing (the idle screen says
    /// so).
    pub core: mpsc::Sender<crate::msg::CoreMsg>,
    pub all: CancellationToken,
    /// Counts the failed jobs.
    pub metrics: crate::metrics::Metrics,
}

impl Task for PrinterTask {
    const NAME: &'static str = "printer";

    fn run(self) -> impl Future<Output = Result<(), RunError>> + Send {
        self.run_loop()
    }
}

impl PrinterTask {
    async fn run_loop(mut self) -> Result<(), RunError> {
        let mut told: Option<String> = None;
        loop {
            let doc = tokio::select! {
                d = self.jobs.recv() => match d {
                    Some(d) => d,
                    None => return Ok(()),
                },
                _ = self.all.cancelled() => return Ok(()),
            };
            let r = tokio::select! {
                r = tokio::time::timeout(PRINT_TIMEOUT, self.printer.print(&doc)) => r,
                _ = self.all.cancelled() => return Ok(()),
            };
            let outcome = match r {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err(format!(
                    "no answer from the printer within {} s",
                    PRINT_TIMEOUT.as_secs()
                )),
            };
            match &outcome {
                Ok(()) => tracing::info!(printer = %self.printer.describe(), "receipt printed"),
                Err(e) => {
                    self.metrics.printer_error();
                    tracing::warn!(
                        printer = %self.printer.describe(),
                        error = %e,
                        "receipt not printed; it stays reprintable from the menu"
                    )
                }
            }
            let problem = outcome.as_ref().err().map(|e| screen_problem(e));
            if problem != told {
                told = problem.clone();
                let input = crate::core::Input::PrinterProblem(problem);
                if self
                    .core
                    .send(crate::msg::CoreMsg::Input(input))
                    .await
                    .is_err()
                {
                    return Ok(());
                }
            }
        }
    }
}

/// The printer's problem as the idle screen says it: `printer is out of
/// paper` → `Printer is out of paper. Reprint from menu`.
fn screen_problem(e: &str) -> String {
    let mut chars = e.chars();
    let first = chars.next().map(|c| c.to_uppercase().collect::<String>());
    let e = format!("{}{}", first.unwrap_or_default(), chars.as_str());
    let e = if e.to_lowercase().starts_with("printer") {
        e
    } else {
        format!("Printer: {e}")
    };
    format!("{e}. Reprint from menu")
}

/// Hands a document to the printer task without waiting: a full queue or
/// a stopped task drops it (counted, logged).
pub fn submit(jobs: &mpsc::Sender<hal::Document>, doc: hal::Document) {
    if let Err(e) = jobs.try_send(doc) {
        tracing::warn!(error = %e, "receipt dropped: the printer is still busy; reprint it from the menu");
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_screen_says_what_is_wrong_with_the_printer() {
        assert_eq!(
            super::screen_problem("printer is out of paper"),
            "Printer is out of paper. Reprint from menu"
        );
        assert_eq!(
            super::screen_problem("no answer from the printer within 15 s"),
            "Printer: No answer from the printer within 15 s. Reprint from menu"
        );
    }
}
