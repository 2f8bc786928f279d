//! NXP PN532 contactless reader on a UART (HSU), with the EMV read on top.
//!
//! Layers, bottom up: [`frame`] (the byte-level codec), [`driver`] (commands, ACKs,
//! retries, timeouts, cancellation), [`Pn532Reader`] (wait for a tap, run the EMV
//! read of [`crate::emv`], release the card, detect its removal). [`emulator`] is a
//! PN532 with scripted Visa, Mastercard and Verve cards on a pseudo-terminal, for
//! tests, benchmarks and development without hardware.

pub mod driver;
pub mod emulator;
pub mod frame;

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::sync::CancellationToken;
use zeroize::Zeroizing;

pub use driver::{FirmwareVersion, LineHealth, Pn532, Pn532Config, Pn532Error, Target};

use crate::card::{CardRead, ReaderError, ReaderInfo};
use crate::emv::{self, ApduTransport, EmvError, TerminalData, TransportError};
use crate::traits::{CardReader, ReadPurpose, ReadRequest};

/// Why a tap did not produce a card read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The PN532 or the serial line failed.
    #[error(transparent)]
    Reader(#[from] Pn532Error),
    /// No card was presented in time.
    #[error("no card presented within {0:?}")]
    NoCard(Duration),
    /// The card is not an ISO 14443-4 (EMV) card, e.g. a MIFARE Classic tag.
    #[error("card is not a contactless payment card")]
    NotPaymentCard,
    /// The card answered, but not with a readable payment application.
    #[error("card read failed: {0}")]
    Emv(#[from] EmvError),
}

impl ReadError {
    /// True when the card left the field during the read (the cashier asks for
    /// another tap); false for reader or card data problems.
    pub fn is_card_removed(&self) -> bool {
        matches!(
            self,
            ReadError::Reader(Pn532Error::CardRemoved)
                | ReadError::Emv(EmvError::Transport(TransportError::CardRemoved))
        )
    }
}

impl From<ReadError> for ReaderError {
    fn from(e: ReadError) -> ReaderError {
        if e.is_card_removed() {
            return ReaderError::RemovedTooEarly;
        }
        match e {
            ReadError::Reader(Pn532Error::Cancelled) => ReaderError::Cancelled,
            ReadError::Reader(Pn532Error::Io(io)) => ReaderError::Io(io),
            ReadError::Reader(other) => ReaderError::Fault(other.to_string()),
            ReadError::NoCard(d) => ReaderError::Timeout(d),
            ReadError::NotPaymentCard => ReaderError::Unsupported(e.to_string()),
            ReadError::Emv(EmvError::NoApplication | EmvError::UnsupportedBrand) => {
                ReaderError::Unsupported(e.to_string())
            }
            ReadError::Emv(EmvError::Transport(TransportError::Reader(why))) => {
                ReaderError::Fault(why)
            }
            ReadError::Emv(other) => ReaderError::Misread(other.to_string()),
        }
    }
}

/// A PN532 reading EMV contactless cards; implements [`CardReader`].
pub struct Pn532Reader<T> {
    pn532: Pn532<T>,
    /// The target of the last tap, kept activated after the read so its presence
    /// can be tested (Diagnose needs an active target): the next read first waits
    /// for it to leave, so one tap is never read twice. Released once gone.
    active: Option<u8>,
}

impl Pn532Reader<tokio_serial::SerialStream> {
    /// Opens the PN532 on the serial port at `path` and wakes it up.
    pub async fn open(path: &str, config: Pn532Config) -> Result<Self, Pn532Error> {
        Pn532Reader::start(Pn532::open(path, config)?).await
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Pn532Reader<T> {
    /// Wakes up and configures a PN532 driver.
    pub async fn start(mut pn532: Pn532<T>) -> Result<Self, Pn532Error> {
        pn532.wake_up().await?;
        Ok(Pn532Reader {
            pn532,
            active: None,
        })
    }

    /// The driver underneath.
    pub fn driver(&mut self) -> &mut Pn532<T> {
        &mut self.pn532
    }

    /// Reads the firmware version (for `doctor` and reader info).
    pub async fn firmware_version(&mut self) -> Result<FirmwareVersion, Pn532Error> {
        self.pn532.firmware_version().await
    }

    /// Waits for a card tap and reads it. Waiting for the card (and for
    /// the previously read card to leave) ends after `wait` if given; `cancel` ends
    /// everything. The PN532 does the waiting: no host polling while idle.
    pub async fn read_emv(
        &mut self,
        terminal: &TerminalData,
        wait: Option<Duration>,
        cancel: &CancellationToken,
    ) -> Result<CardRead, ReadError> {
        let waiting = cancel.child_token();
        let deadline = async {
            if let Some(d) = wait {
                tokio::time::sleep(d).await;
                waiting.cancel();
            }
            // Let the wait below finish (it sends the abort to the PN532).
            std::future::pending::<std::convert::Infallible>().await
        };
        let pn532 = &mut self.pn532;
        let active = &mut self.active;
        let found = async {
            if let Some(tg) = *active {
                pn532.wait_for_removal(&waiting).await?;
                *active = None;
                if let Err(e) = pn532.release(tg).await {
                    tracing::debug!(error = %e, "InRelease failed");
                }
            }
            pn532.wait_for_card(&waiting).await
        };
        let found = tokio::select! {
            r = found => r,
            never = deadline => match never {},
        };
        let target = match found {
            Ok(t) => t,
            Err(Pn532Error::Cancelled) if !cancel.is_cancelled() => {
                return Err(ReadError::NoCard(wait.unwrap_or_default()));
            }
            Err(e) => return Err(e.into()),
        };
        self.active = Some(target.tg);
        if !target.is_iso14443_4() {
            return Err(ReadError::NotPaymentCard);
        }
        let result = {
            let mut transport = Pn532Apdu {
                pn532: &mut self.pn532,
                tg: target.tg,
            };
            tokio::select! {
                r = emv::read_card(&mut transport, terminal) => r.map_err(ReadError::from),
                () = cancel.cancelled() => Err(ReadError::Reader(Pn532Error::Cancelled)),
            }
        };
        if result.as_ref().is_err_and(ReadError::is_card_removed) {
            self.active = None;
            self.release_quietly(target.tg).await;
        }
        result
    }

    /// Waits until the last tapped card has left the field (at once if none is).
    pub async fn wait_for_removal(&mut self, cancel: &CancellationToken) -> Result<(), Pn532Error> {
        if let Some(tg) = self.active {
            self.pn532.wait_for_removal(cancel).await?;
            self.active = None;
            self.release_quietly(tg).await;
        }
        Ok(())
    }

    async fn release_quietly(&mut self, tg: u8) {
        if let Err(e) = self.pn532.release(tg).await {
            tracing::debug!(error = %e, "InRelease failed");
        }
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> CardReader for Pn532Reader<T> {
    async fn read_card(
        &mut self,
        request: ReadRequest,
        cancel: CancellationToken,
    ) -> Result<CardRead, ReaderError> {
        let now = time::OffsetDateTime::now_utc();
        let date = (
            (now.year().rem_euclid(100)) as u8,
            u8::from(now.month()),
            now.day(),
        );
        let mut terminal = TerminalData::purchase(request.amount, date);
        terminal.currency = request.currency;
        terminal.transaction_type = match request.purpose {
            ReadPurpose::Sale => 0x00,
            ReadPurpose::Refund => 0x20,
        };
        let read = self
            .read_emv(&terminal, Some(request.timeout), &cancel)
            .await
            .map_err(ReaderError::from);
        match &read {
            Ok(card) => tracing::info!(brand = %card.brand(), "card read"),
            Err(e) => tracing::info!(code = e.code(), "card read failed"),
        }
        read
    }

    async fn info(&mut self) -> Result<ReaderInfo, ReaderError> {
        let fw = self
            .pn532
            .firmware_version()
            .await
            .map_err(|e| ReaderError::from(ReadError::from(e)))?;
        Ok(ReaderInfo {
            model: format!("PN5{:02X}", fw.ic),
            firmware: format!("{}.{}", fw.version, fw.revision),
        })
    }
}

/// APDUs over `InDataExchange` to one activated target.
struct Pn532Apdu<'a, T> {
    pn532: &'a mut Pn532<T>,
    tg: u8,
}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> ApduTransport for Pn532Apdu<'_, T> {
    async fn transmit(&mut self, apdu: &[u8]) -> Result<Zeroizing<Vec<u8>>, TransportError> {
        self.pn532
            .exchange(self.tg, apdu)
            .await
            .map_err(|e| match e {
                Pn532Error::CardRemoved => TransportError::CardRemoved,
                other => TransportError::Reader(other.to_string()),
            })
    }
}
