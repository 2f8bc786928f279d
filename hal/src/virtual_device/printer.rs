//! The virtual receipt printer: renders each document to text and PNG
//! ([`crate::printer::render`], 58 mm paper) and keeps the last
//! [`RECEIPTS_KEPT`]; it can be told to fail (out of paper, offline) so
//! the agent's handling of a failing printer can be tested.

use std::collections::VecDeque;
use std::sync::Arc;

use super::{Shared, lock};
use crate::printer::{Document, Paper, PaperWidth, Printer, PrinterError, PrinterStatus, render};

/// Receipts kept; older ones are dropped.
pub const RECEIPTS_KEPT: usize = 50;

/// One printed receipt; `n` counts from 1 over the device's life.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receipt {
    pub n: u64,
    pub text: String,
    pub png: Arc<[u8]>,
}

/// What the virtual printer does with the next job.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum VirtualPrinterState {
    /// Prints.
    #[default]
    Ok,
    /// Refuses with [`PrinterError::PaperOut`]; status says paper out.
    PaperOut,
    /// Refuses with [`PrinterError::Offline`]; status says offline.
    Offline,
}

/// Not a printer state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown printer state {0:?}: expected \"ok\", \"paper_out\" or \"offline\"")]
pub struct UnknownPrinterState(pub String);

impl VirtualPrinterState {
    pub fn as_str(self) -> &'static str {
        match self {
            VirtualPrinterState::Ok => "ok",
            VirtualPrinterState::PaperOut => "paper_out",
            VirtualPrinterState::Offline => "offline",
        }
    }

    pub fn parse(s: &str) -> Result<VirtualPrinterState, UnknownPrinterState> {
        match s {
            "ok" => Ok(VirtualPrinterState::Ok),
            "paper_out" => Ok(VirtualPrinterState::PaperOut),
            "offline" => Ok(VirtualPrinterState::Offline),
            _ => Err(UnknownPrinterState(s.to_owned())),
        }
    }
}

/// The printer's side of the shared device state.
#[derive(Debug, Default)]
pub(super) struct PrinterLog {
    state: VirtualPrinterState,
    printed: u64,
    /// Oldest first.
    receipts: VecDeque<Receipt>,
}

impl PrinterLog {
    pub(super) fn state(&self) -> VirtualPrinterState {
        self.state
    }

    pub(super) fn set_state(&mut self, state: VirtualPrinterState) {
        self.state = state;
    }

    /// Newest first.
    pub(super) fn receipts(&self) -> Vec<Receipt> {
        self.receipts.iter().rev().cloned().collect()
    }

    pub(super) fn receipt(&self, n: u64) -> Option<Receipt> {
        self.receipts.iter().find(|r| r.n == n).cloned()
    }

    pub(super) fn printed(&self) -> u64 {
        self.printed
    }
}

/// The virtual printer, driven by the agent through [`Printer`]; get one
/// from [`super::VirtualDevice::printer`].
pub struct VirtualPrinter {
    pub(super) shared: Arc<Shared>,
}

impl Printer for VirtualPrinter {
    async fn print(&mut self, doc: &Document) -> Result<(), PrinterError> {
        match lock(&self.shared.printer).state {
            VirtualPrinterState::Ok => {}
            VirtualPrinterState::PaperOut => return Err(PrinterError::PaperOut),
            VirtualPrinterState::Offline => return Err(PrinterError::Offline),
        }
        let text = render::to_text(doc, PaperWidth::Mm58);
        let png: Arc<[u8]> = render::to_png(doc, PaperWidth::Mm58)?.into();
        let mut log = lock(&self.shared.printer);
        log.printed += 1;
        let n = log.printed;
        log.receipts.push_back(Receipt { n, text, png });
        while log.receipts.len() > RECEIPTS_KEPT {
            log.receipts.pop_front();
        }
        drop(log);
        tracing::info!(n, "virtual printer printed a receipt");
        self.shared.bump();
        Ok(())
    }

    async fn status(&mut self) -> Result<PrinterStatus, PrinterError> {
        let state = lock(&self.shared.printer).state;
        Ok(PrinterStatus {
            online: state != VirtualPrinterState::Offline,
            paper: if state == VirtualPrinterState::PaperOut {
                Paper::Out
            } else {
                Paper::Ok
            },
            cover_open: false,
        })
    }

    fn describe(&self) -> String {
        "virtual 58mm".to_owned()
    }
}
