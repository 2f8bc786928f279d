//! The virtual device: reader, display, input, indicator and receipt
//! printer in memory, for tests (in-process) and for a running agent
//! (driven over the loopback control API in [`control`]).
//!
//! [`VirtualDevice::new`] returns the shared handle (what tests and the
//! control API hold: tap a card, press a button, look at the screen and
//! the printed receipts) and the [`VirtualParts`] the agent drives through
//! the hal traits ([`VirtualDevice::with_state`] also sets the state
//! reported before the display sets one; [`VirtualDevice::printer`] gives
//! the printer). The screen state is opaque ([`ScreenStateJson`]):
//! whatever JSON object the display was given last.

pub mod control;
mod printer;
mod state;
mod test_cards;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use embedded_graphics::Pixel;
use embedded_graphics::pixelcolor::Rgb565;
use embedded_graphics::prelude::{DrawTarget, OriginDimensions, Size};
use embedded_graphics::primitives::Rectangle;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use crate::card::{CardRead, ReaderError, ReaderInfo};
use crate::framebuffer::Framebuffer;
use crate::traits::{
    Button, CardReader, Display, DisplayError, Indicator, IndicatorError, Input, InputError,
    ReadRequest, Signal,
};

pub use control::{HalError, serve_control};
pub use printer::{
    RECEIPTS_KEPT, Receipt, UnknownPrinterState, VirtualPrinter, VirtualPrinterState,
};
pub use state::{ScreenStateError, ScreenStateJson};
pub use test_cards::{TestCard, UnknownTestCard};

/// Button presses not yet taken by the agent; beyond this, presses are
/// refused (`input_busy`).
const BUTTON_QUEUE: usize = 16;

/// Why a tap was not delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TapError {
    #[error("no card read is waiting for a card")]
    ReaderNotWaiting,
}

/// Why a press was not delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PressError {
    #[error("{BUTTON_QUEUE} button presses are already waiting to be handled")]
    QueueFull,
    #[error("the input side of the virtual device was dropped")]
    Closed,
}

/// The last flushed frame and its sequence number (0 before any flush).
#[derive(Debug, Clone)]
pub struct FlushedFrame {
    pub seq: u64,
    pub frame: Framebuffer,
}

/// What the indicator was asked to do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct IndicatorLog {
    pub last: Option<Signal>,
    pub count: u64,
    pub card_read: u64,
    pub success: u64,
    pub failure: u64,
}

struct Waiter {
    id: u64,
    tx: oneshot::Sender<Result<CardRead, ReaderError>>,
}

struct Shared {
    size: Size,
    waiter: Mutex<Option<Waiter>>,
    reader_waiting: watch::Sender<bool>,
    next_waiter: AtomicU64,
    buttons: mpsc::Sender<Button>,
    frame: watch::Sender<Arc<FlushedFrame>>,
    state: watch::Sender<ScreenStateJson>,
    indicator: Mutex<IndicatorLog>,
    printer: Mutex<printer::PrinterLog>,
    /// Bumped on every observable change (frame, state, reader waiting,
    /// indicator, printer), so clients can wait for a change instead of polling.
    version: watch::Sender<u64>,
}

impl Shared {
    fn bump(&self) {
        self.version.send_modify(|v| *v += 1);
    }

    fn set_reader_waiting(&self, waiting: bool) {
        self.reader_waiting.send_replace(waiting);
        self.bump();
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The data behind these locks stays consistent even if a holder panicked.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Handle on a virtual device; cheap to clone.
#[derive(Clone)]
pub struct VirtualDevice {
    shared: Arc<Shared>,
}

/// The device's parts, driven by the agent through the hal traits.
pub struct VirtualParts {
    pub reader: VirtualReader,
    pub display: VirtualDisplay,
    pub input: VirtualInput,
    pub indicator: VirtualIndicator,
}

impl VirtualDevice {
    /// A device with a `size` display (e.g. 240x320 or 480x320) whose
    /// screen state is empty until the display sets one.
    pub fn new(size: Size) -> (VirtualDevice, VirtualParts) {
        VirtualDevice::with_screen_state(size, ScreenStateJson::empty())
    }

    /// A device whose screen state is `state` until the display sets one
    /// (the agent passes its booting state). A `state` that does not
    /// serialize to a JSON object is logged and left empty.
    pub fn with_state<S: serde::Serialize + ?Sized>(
        size: Size,
        state: &S,
    ) -> (VirtualDevice, VirtualParts) {
        let state = ScreenStateJson::new(state).unwrap_or_else(|e| {
            tracing::error!(error = %e, "virtual device: initial screen state not recorded");
            ScreenStateJson::empty()
        });
        VirtualDevice::with_screen_state(size, state)
    }

    fn with_screen_state(size: Size, state: ScreenStateJson) -> (VirtualDevice, VirtualParts) {
        let (buttons, rx) = mpsc::channel(BUTTON_QUEUE);
        let blank = Arc::new(FlushedFrame {
            seq: 0,
            frame: Framebuffer::new(size),
        });
        let shared = Arc::new(Shared {
            size,
            waiter: Mutex::new(None),
            reader_waiting: watch::Sender::new(false),
            next_waiter: AtomicU64::new(1),
            buttons,
            frame: watch::Sender::new(blank),
            state: watch::Sender::new(state),
            indicator: Mutex::new(IndicatorLog::default()),
            printer: Mutex::new(printer::PrinterLog::default()),
            version: watch::Sender::new(0),
        });
        let parts = VirtualParts {
            reader: VirtualReader {
                shared: shared.clone(),
            },
            display: VirtualDisplay {
                frame: Framebuffer::new(size),
                seq: 0,
                shared: shared.clone(),
            },
            input: VirtualInput { rx },
            indicator: VirtualIndicator {
                shared: shared.clone(),
            },
        };
        (VirtualDevice { shared }, parts)
    }

    pub fn size(&self) -> Size {
        self.shared.size
    }

    /// Presents `card` to the read that is waiting.
    pub fn tap(&self, card: TestCard) -> Result<(), TapError> {
        let waiter = lock(&self.shared.waiter).take();
        let Some(waiter) = waiter else {
            return Err(TapError::ReaderNotWaiting);
        };
        self.shared.set_reader_waiting(false);
        waiter
            .tx
            .send(card.read())
            .map_err(|_| TapError::ReaderNotWaiting)
    }

    /// True while a `read_card` waits for a card.
    pub fn reader_waiting(&self) -> bool {
        *self.shared.reader_waiting.borrow()
    }

    /// Resolves once a `read_card` waits for a card (at once if one does).
    pub async fn reader_ready(&self) {
        let mut rx = self.shared.reader_waiting.subscribe();
        // The sender lives in `shared`, which we hold: this cannot fail.
        let _ = rx.wait_for(|waiting| *waiting).await;
    }

    /// Delivers a button press to the input.
    pub fn press(&self, button: Button) -> Result<(), PressError> {
        self.shared.buttons.try_send(button).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => PressError::QueueFull,
            mpsc::error::TrySendError::Closed(_) => PressError::Closed,
        })
    }

    /// The semantic state set with the last frame (opaque; read it with
    /// [`ScreenStateJson::parse`]).
    pub fn screen_state(&self) -> ScreenStateJson {
        self.shared.state.borrow().clone()
    }

    /// The last flushed frame.
    pub fn frame(&self) -> Arc<FlushedFrame> {
        self.shared.frame.borrow().clone()
    }

    /// Watches flushed frames (to wait for a screen without polling).
    pub fn subscribe_frames(&self) -> watch::Receiver<Arc<FlushedFrame>> {
        self.shared.frame.subscribe()
    }

    /// Watches semantic states.
    pub fn subscribe_state(&self) -> watch::Receiver<ScreenStateJson> {
        self.shared.state.subscribe()
    }

    /// Counts every observable change (frame, state, reader waiting,
    /// indicator).
    pub fn version(&self) -> u64 {
        *self.shared.version.borrow()
    }

    /// Resolves once [`VirtualDevice::version`] is greater than `seen` (at
    /// once if it already is).
    pub async fn changed_since(&self, seen: u64) {
        let mut rx = self.shared.version.subscribe();
        // The sender lives in `shared`, which we hold: this cannot fail.
        let _ = rx.wait_for(|v| *v > seen).await;
    }

    pub fn indicator(&self) -> IndicatorLog {
        *lock(&self.shared.indicator)
    }

    /// The virtual receipt printer (any number of handles print to the
    /// same roll).
    pub fn printer(&self) -> VirtualPrinter {
        VirtualPrinter {
            shared: self.shared.clone(),
        }
    }

    /// The kept receipts, newest first.
    pub fn receipts(&self) -> Vec<Receipt> {
        lock(&self.shared.printer).receipts()
    }

    /// Receipt number `n`, if it is still kept.
    pub fn receipt(&self, n: u64) -> Option<Receipt> {
        lock(&self.shared.printer).receipt(n)
    }

    /// Receipts printed since the device started (also those dropped).
    pub fn receipts_printed(&self) -> u64 {
        lock(&self.shared.printer).printed()
    }

    pub fn printer_state(&self) -> VirtualPrinterState {
        lock(&self.shared.printer).state()
    }

    /// Makes the printer print, or fail every job until told otherwise.
    pub fn set_printer_state(&self, state: VirtualPrinterState) {
        lock(&self.shared.printer).set_state(state);
        self.shared.bump();
    }
}

/// The virtual card reader: `read_card` waits for [`VirtualDevice::tap`].
pub struct VirtualReader {
    shared: Arc<Shared>,
}

/// Clears the waiter slot when its read ends in any way (also when the
/// read's future is dropped), so a late tap gets `ReaderNotWaiting`.
struct WaiterGuard<'a> {
    shared: &'a Shared,
    id: u64,
}

impl Drop for WaiterGuard<'_> {
    fn drop(&mut self) {
        let mut slot = lock(&self.shared.waiter);
        if slot.as_ref().is_some_and(|w| w.id == self.id) {
            *slot = None;
            self.shared.set_reader_waiting(false);
        }
    }
}

impl CardReader for VirtualReader {
    async fn read_card(
        &mut self,
        request: ReadRequest,
        cancel: CancellationToken,
    ) -> Result<CardRead, ReaderError> {
        let (tx, rx) = oneshot::channel();
        let id = self.shared.next_waiter.fetch_add(1, Ordering::Relaxed);
        // A newer read replaces an older one (its sender drops; see below).
        *lock(&self.shared.waiter) = Some(Waiter { id, tx });
        self.shared.set_reader_waiting(true);
        let _guard = WaiterGuard {
            shared: &self.shared,
            id,
        };
        tokio::select! {
            biased;
            outcome = rx => outcome.unwrap_or_else(|_| {
                Err(ReaderError::Fault("read replaced by a newer read".to_owned()))
            }),
            () = cancel.cancelled() => Err(ReaderError::Cancelled),
            () = tokio::time::sleep(request.timeout) => Err(ReaderError::Timeout(request.timeout)),
        }
    }

    async fn info(&mut self) -> Result<ReaderInfo, ReaderError> {
        Ok(ReaderInfo {
            model: "virtual".to_owned(),
            firmware: env!("CARGO_PKG_VERSION").to_owned(),
        })
    }
}

/// The virtual display: an RGB565 framebuffer; `flush` publishes it.
pub struct VirtualDisplay {
    frame: Framebuffer,
    seq: u64,
    shared: Arc<Shared>,
}

impl OriginDimensions for VirtualDisplay {
    fn size(&self) -> Size {
        self.shared.size
    }
}

impl DrawTarget for VirtualDisplay {
    type Color = Rgb565;
    type Error = DisplayError;

    fn draw_iter<I>(&mut self, pixels: I) -> Result<(), Self::Error>
    where
        I: IntoIterator<Item = Pixel<Self::Color>>,
    {
        let Ok(()) = self.frame.draw_iter(pixels);
        Ok(())
    }

    fn fill_contiguous<I>(&mut self, area: &Rectangle, colors: I) -> Result<(), Self::Error>
    where
        I: IntoIterator<Item = Self::Color>,
    {
        let Ok(()) = self.frame.fill_contiguous(area, colors);
        Ok(())
    }

    fn fill_solid(&mut self, area: &Rectangle, color: Self::Color) -> Result<(), Self::Error> {
        let Ok(()) = self.frame.fill_solid(area, color);
        Ok(())
    }

    fn clear(&mut self, color: Self::Color) -> Result<(), Self::Error> {
        let Ok(()) = self.frame.clear(color);
        Ok(())
    }
}

impl Display for VirtualDisplay {
    async fn flush(&mut self) -> Result<(), DisplayError> {
        self.seq += 1;
        self.shared.frame.send_replace(Arc::new(FlushedFrame {
            seq: self.seq,
            frame: self.frame.clone(),
        }));
        self.shared.bump();
        Ok(())
    }

    fn set_state<S: serde::Serialize + ?Sized>(&mut self, state: &S) {
        match ScreenStateJson::new(state) {
            Ok(state) => {
                self.shared.state.send_replace(state);
                self.shared.bump();
            }
            Err(e) => tracing::error!(error = %e, "virtual display: screen state not recorded"),
        }
    }
}

/// The virtual buttons: presses from [`VirtualDevice::press`].
pub struct VirtualInput {
    rx: mpsc::Receiver<Button>,
}

impl Input for VirtualInput {
    async fn next_button(&mut self) -> Result<Button, InputError> {
        self.rx.recv().await.ok_or(InputError::Closed)
    }
}

/// The virtual beeper/LEDs: records every signal.
pub struct VirtualIndicator {
    shared: Arc<Shared>,
}

impl Indicator for VirtualIndicator {
    async fn signal(&mut self, signal: Signal) -> Result<(), IndicatorError> {
        let mut log = lock(&self.shared.indicator);
        log.last = Some(signal);
        log.count += 1;
        match signal {
            Signal::CardRead => log.card_read += 1,
            Signal::Success => log.success += 1,
            Signal::Failure => log.failure += 1,
        }
        drop(log);
        self.shared.bump();
        Ok(())
    }
}

#[cfg(test)]
mod tests;
