//! The device tasks: the card reader, the buttons and the indicator, each
//! driving one hal trait and talking to the core loop over channels.

use hal::{CardReader, Indicator, Input as ButtonInput, ReaderError, Signal};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::card::{CardKey, EntryMode, tokenize_secret};
use crate::core::{self, Input};

use crate::msg::{CoreMsg, ReaderCmd};
use crate::task::{RunError, Task};

/// Tokenizes a card read at once: the PAN is hashed with the device key in
/// place (never copied) and the read, with its wiping PAN buffer, is
/// dropped before this returns. Only token, last4, brand and entry mode
/// leave, and for the receipt the card application (AID and label).
pub fn tokenize_read(key: &CardKey, read: hal::CardRead) -> (core::Card, core::CardApp) {
    let card = tokenize_secret(key, read.pan(), EntryMode::Contactless);
    let app = core::CardApp {
        aid: read
            .application()
            .aid
            .as_deref()
            .filter(|a| (5..=16).contains(&a.len()))
            .map(hex::encode_upper),
        label: read.application().label.clone(),
    };
    drop(read);
    (card, app)
}

/// The reader task: waits for `Start`, reads one card (cancelled by `Stop`,
/// a newer `Start`, or the final stop), tokenizes it and feeds the core.
pub struct ReaderTask<R> {
    pub reader: R,
    /// The device key cards are tokenized with.
    pub key: CardKey,
    pub commands: mpsc::Receiver<ReaderCmd>,
    pub core: mpsc::Sender<CoreMsg>,
    pub all: CancellationToken,
    /// Counts the failed reads.
    pub metrics: crate::metrics::Metrics,
}

impl<R: CardReader + Send + 'static> Task for ReaderTask<R> {
    const NAME: &'static str = "reader";

    fn run(self) -> impl Future<Output = Result<(), RunError>> + Send {
        reader_task(self)
    }
}

async fn reader_task<R: CardReader>(task: ReaderTask<R>) -> Result<(), RunError> {
    let ReaderTask {
        mut reader,
        key,
        commands: mut rx,
        core,
        all,
        metrics,
    } = task;
    let mut next: Option<hal::ReadRequest> = None;
    loop {
        let request = match next.take() {
            Some(r) => r,
            None => tokio::select! {
                cmd = rx.recv() => match cmd {
                    Some(ReaderCmd::Start(r)) => r,
                    Some(ReaderCmd::Stop) => continue,
                    None => return Ok(()),
                },
                _ = all.cancelled() => return Ok(()),
            },
        };
        let cancel = CancellationToken::new();
        let result = {
            let read = reader.read_card(request, cancel.clone());
            tokio::pin!(read);
            loop {
                tokio::select! {
                    r = &mut read => break r,
                    cmd = rx.recv() => match cmd {
                        Some(ReaderCmd::Stop) => cancel.cancel(),
                        Some(ReaderCmd::Start(r)) => {
                            next = Some(r);
                            cancel.cancel();
                        }
                        None => cancel.cancel(),
                    },
                    _ = all.cancelled() => cancel.cancel(),
                }
            }
        };
        if cancel.is_cancelled() {
            // Stopped on purpose: whatever the reader got is dropped (a card
            // read after the stop is wiped here, never fed).
            continue;
        }
        let input = match result {
            Ok(read) => {
                // The core beeps (`Beep::Read`) when it takes the card.
                let (card, app) = tokenize_read(&key, read);
                tracing::info!(brand = %card.brand, last4 = %card.last4, "card read");
                Input::CardRead { card, app }
            }
            // The core keeps its own tap deadline; the reader's is the same.
            Err(ReaderError::Timeout(_)) | Err(ReaderError::Cancelled) => continue,
            Err(e) => {
                metrics.reader_error();
                tracing::warn!(code = e.code(), error = %e, "card read failed");
                Input::CardError {
                    reason: e.code().to_string(),
                }
            }
        };
        if core.send(CoreMsg::Input(input)).await.is_err() {
            return Ok(());
        }
    }
}

/// Maps a hal button to the core's.
pub fn core_button(b: hal::Button) -> core::Button {
    match b {
        hal::Button::Cancel => core::Button::Cancel,
        hal::Button::Ok => core::Button::Ok,
        hal::Button::Back => core::Button::Back,
        hal::Button::Menu => core::Button::Menu,
        hal::Button::Up => core::Button::Up,
        hal::Button::Down => core::Button::Down,
        hal::Button::Digit(d) => core::Button::Digit(d.value()),
    }
}

/// The input task: button presses → `Button`, until intake stops.
pub struct InputTask<I> {
    pub input: I,
    pub core: mpsc::Sender<CoreMsg>,
    pub intake: CancellationToken,
}

impl<I: ButtonInput + Send + 'static> Task for InputTask<I> {
    const NAME: &'static str = "input";

    fn run(self) -> impl Future<Output = Result<(), RunError>> + Send {
        input_task(self)
    }
}

async fn input_task<I: ButtonInput>(task: InputTask<I>) -> Result<(), RunError> {
    let InputTask {
        mut input,
        core,
        intake,
    } = task;
    loop {
        let pressed = tokio::select! {
            b = input.next_button() => b,
            _ = intake.cancelled() => return Ok(()),
        };
        match pressed {
            Ok(b) => {
                let button = core_button(b);
                if core
                    .send(CoreMsg::Input(Input::Button(button)))
                    .await
                    .is_err()
                {
                    return Ok(());
                }
            }
            Err(hal::InputError::UnknownButton(b)) => {
                tracing::warn!(button = %b, "unknown button ignored")
            }
            Err(e) => {
                // A dead keypad must not stop payments driven by the POS.
                tracing::error!(error = %e, "input device failed; buttons no longer work");
                intake.cancelled().await;
                return Ok(());
            }
        }
    }
}

/// The indicator task: plays signals one after another.
pub struct IndicatorTask<N> {
    pub indicator: N,
    pub signals: mpsc::Receiver<Signal>,
    pub all: CancellationToken,
}

impl<N: Indicator + Send + 'static> Task for IndicatorTask<N> {
    const NAME: &'static str = "indicator";

    fn run(self) -> impl Future<Output = Result<(), RunError>> + Send {
        indicator_task(self)
    }
}

async fn indicator_task<N: Indicator>(task: IndicatorTask<N>) -> Result<(), RunError> {
    let IndicatorTask {
        mut indicator,
        signals: mut rx,
        all,
    } = task;
    loop {
        let signal = tokio::select! {
            s = rx.recv() => match s {
                Some(s) => s,
                None => return Ok(()),
            },
            _ = all.cancelled() => return Ok(()),
        };
        if let Err(e) = indicator.signal(signal).await {
            tracing::warn!(error = %e, "indicator failed");
        }
    }
}
