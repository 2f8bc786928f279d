//! The PN532 command layer: send a command, wait for its ACK (resending on NACK,
//! corruption or silence, a bounded number of times), wait for its response (asking
//! for a resend with NACK when it arrives corrupt), and cancel a waiting command by
//! sending ACK, as the PN532 User Manual prescribes.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;
use zeroize::Zeroizing;

use super::frame::{Frame, Pn532Codec, TFI_PN532, WAKEUP};

/// PN532 command codes used by this driver.
pub mod cmd {
    /// Diagnose (card presence test with NumTst 0x06).
    pub const DIAGNOSE: u8 = 0x00;
    /// GetFirmwareVersion.
    pub const GET_FIRMWARE_VERSION: u8 = 0x02;
    /// SAMConfiguration.
    pub const SAM_CONFIGURATION: u8 = 0x14;
    /// RFConfiguration.
    pub const RF_CONFIGURATION: u8 = 0x32;
    /// InDataExchange.
    pub const IN_DATA_EXCHANGE: u8 = 0x40;
    /// InListPassiveTarget.
    pub const IN_LIST_PASSIVE_TARGET: u8 = 0x4A;
    /// InRelease.
    pub const IN_RELEASE: u8 = 0x52;
}

/// Timeouts and retry bounds of the driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pn532Config {
    /// Line speed when opening a serial port (the PN532 HSU default is 115200).
    pub baud: u32,
    /// How long to wait for the ACK of a command before sending it again.
    pub ack_timeout: Duration,
    /// How long to wait for a response once a command was acknowledged (card
    /// exchanges included). Not applied while waiting for a card to be tapped.
    pub response_timeout: Duration,
    /// How many times a command is sent again (no ACK, NACK) or a response asked for
    /// again (corrupt, late) before giving up.
    pub retries: u8,
    /// While a card stays in the field after a read, how often its presence is tested.
    pub removal_poll: Duration,
}

impl Default for Pn532Config {
    fn default() -> Self {
        Pn532Config {
            baud: 115_200,
            ack_timeout: Duration::from_millis(100),
            response_timeout: Duration::from_millis(1000),
            retries: 3,
            removal_poll: Duration::from_millis(200),
        }
    }
}

/// What went wrong talking to the PN532.
#[derive(Debug, thiserror::Error)]
pub enum Pn532Error {
    /// The serial port could not be opened.
    #[error("cannot open serial port {path}: {source}")]
    Open {
        /// The device path.
        path: String,
        /// Why.
        source: tokio_serial::Error,
    },
    /// Reading or writing the serial line failed.
    #[error("serial line I/O failed: {0}")]
    Io(#[from] std::io::Error),
    /// The serial line closed.
    #[error("serial line closed")]
    Closed,
    /// No ACK for a command after all retries.
    #[error("PN532 did not acknowledge command 0x{command:02X} after {attempts} attempts")]
    NoAck {
        /// Command code.
        command: u8,
        /// How many times it was sent.
        attempts: u8,
    },
    /// No (valid) response to an acknowledged command in time, after all retries.
    #[error("PN532 did not answer command 0x{command:02X} in time")]
    Timeout {
        /// Command code.
        command: u8,
    },
    /// The PN532 rejected the command as malformed (error frame).
    #[error("PN532 reported a syntax error for command 0x{command:02X}")]
    ApplicationError {
        /// Command code.
        command: u8,
    },
    /// The response did not have the expected shape.
    #[error("unexpected PN532 response to command 0x{command:02X}: {what}")]
    BadResponse {
        /// Command code.
        command: u8,
        /// What was wrong.
        what: &'static str,
    },
    /// The PN532 reported an error status for an RF operation.
    #[error("PN532 status 0x{status:02X} for command 0x{command:02X}")]
    Status {
        /// Command code.
        command: u8,
        /// The status byte (low 6 bits).
        status: u8,
    },
    /// The card left the field (status 0x01, target timeout).
    #[error("card removed or not responding")]
    CardRemoved,
    /// The operation was cancelled by the caller.
    #[error("cancelled")]
    Cancelled,
}

/// `GetFirmwareVersion` answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FirmwareVersion {
    /// IC (0x32 for a PN532).
    pub ic: u8,
    /// Firmware version.
    pub version: u8,
    /// Firmware revision.
    pub revision: u8,
    /// Supported protocols bit field.
    pub support: u8,
}

impl std::fmt::Display for FirmwareVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "PN5{:02X} firmware {}.{}",
            self.ic, self.version, self.revision
        )
    }
}

/// A card found by `InListPassiveTarget` (ISO 14443-A, 106 kbps).
#[derive(Clone, PartialEq, Eq)]
pub struct Target {
    /// Logical target number the PN532 assigned (used in InDataExchange).
    pub tg: u8,
    /// SENS_RES (ATQA).
    pub sens_res: [u8; 2],
    /// SEL_RES (SAK).
    pub sel_res: u8,
    /// NFCID1 (UID), 4, 7 or 10 bytes.
    pub uid: Vec<u8>,
}

impl Target {
    /// True if the card announced ISO/IEC 14443-4 (bit 6 of SAK), which EMV needs.
    pub fn is_iso14443_4(&self) -> bool {
        self.sel_res & 0x20 != 0
    }
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The UID is a stable card identifier: not printed.
        f.debug_struct("Target")
            .field("tg", &self.tg)
            .field("sel_res", &self.sel_res)
            .field("uid_len", &self.uid.len())
            .finish()
    }
}

/// Line health counters, for diagnostics (`doctor`, logs) and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LineHealth {
    /// Bytes received, frames and garbage.
    pub bytes_in: u64,
    /// Bytes sent.
    pub bytes_out: u64,
    /// Non-zero bytes dropped as garbage between frames.
    pub garbage_bytes: u64,
    /// Commands sent again (no ACK in time, NACK, corrupt ACK).
    pub commands_resent: u64,
    /// NACKs sent to ask for a response again (corrupt or late).
    pub nacks_sent: u64,
}

/// A PN532 on a byte stream (a serial port in production, a pseudo-terminal in tests).
pub struct Pn532<T> {
    io: Framed<T, Pn532Codec>,
    config: Pn532Config,
    commands_resent: u64,
    nacks_sent: u64,
}

impl Pn532<tokio_serial::SerialStream> {
    /// Opens the serial port at `path` (8N1, no flow control) at `config.baud`.
    pub fn open(path: &str, config: Pn532Config) -> Result<Self, Pn532Error> {
        use tokio_serial::SerialPortBuilderExt;
        let port = tokio_serial::new(path, config.baud)
            .data_bits(tokio_serial::DataBits::Eight)
            .parity(tokio_serial::Parity::None)
            .stop_bits(tokio_serial::StopBits::One)
            .flow_control(tokio_serial::FlowControl::None)
            .open_native_async()
            .map_err(|source| Pn532Error::Open {
                path: path.to_owned(),
                source,
            })?;
        Ok(Pn532::new(port, config))
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> Pn532<T> {
    /// Wraps an open byte stream.
    pub fn new(io: T, config: Pn532Config) -> Self {
        Pn532 {
            io: Framed::new(io, Pn532Codec::default()),
            config,
            commands_resent: 0,
            nacks_sent: 0,
        }
    }

    /// The driver's configuration.
    pub fn config(&self) -> &Pn532Config {
        &self.config
    }

    /// Line counters so far.
    pub fn line_health(&self) -> LineHealth {
        let codec = self.io.codec();
        LineHealth {
            bytes_in: codec.bytes_in(),
            bytes_out: codec.bytes_out(),
            garbage_bytes: codec.garbage(),
            commands_resent: self.commands_resent,
            nacks_sent: self.nacks_sent,
        }
    }

    /// Wakes the PN532 from power-down, puts the SAM in normal mode, and makes
    /// `InListPassiveTarget` wait for a card indefinitely (so waiting for a tap costs
    /// no host polling).
    pub async fn wake_up(&mut self) -> Result<(), Pn532Error> {
        self.io.send(Frame::Raw(WAKEUP.to_vec())).await?;
        // SAMConfiguration: normal mode, virtual card timeout 1 s, use IRQ.
        self.command(cmd::SAM_CONFIGURATION, &[0x01, 0x14, 0x01], None)
            .await?;
        // RFConfiguration item 5 (MaxRetries): MxRtyATR 0xFF, MxRtyPSL 0x01,
        // MxRtyPassiveActivation 0xFF (retry forever).
        self.command(cmd::RF_CONFIGURATION, &[0x05, 0xFF, 0x01, 0xFF], None)
            .await?;
        Ok(())
    }

    /// Reads IC type and firmware version.
    pub async fn firmware_version(&mut self) -> Result<FirmwareVersion, Pn532Error> {
        let r = self.command(cmd::GET_FIRMWARE_VERSION, &[], None).await?;
        match r.as_slice() {
            [ic, version, revision, support] => Ok(FirmwareVersion {
                ic: *ic,
                version: *version,
                revision: *revision,
                support: *support,
            }),
            _ => Err(Pn532Error::BadResponse {
                command: cmd::GET_FIRMWARE_VERSION,
                what: "firmware version is not 4 bytes",
            }),
        }
    }

    /// Waits until one ISO 14443-A card is in the field and activates it. The
    /// PN532 does the waiting; `cancel` aborts it (an ACK frame is sent).
    pub async fn wait_for_card(
        &mut self,
        cancel: &CancellationToken,
    ) -> Result<Target, Pn532Error> {
        const C: u8 = cmd::IN_LIST_PASSIVE_TARGET;
        let r = self.command(C, &[0x01, 0x00], Some(cancel)).await?;
        let bad = |what| Pn532Error::BadResponse { command: C, what };
        let (&count, rest) = r.split_first().ok_or(bad("empty"))?;
        if count == 0 {
            return Err(bad("no target"));
        }
        let [tg, s0, s1, sel_res, uid_len, rest @ ..] = rest else {
            return Err(bad("target data truncated"));
        };
        let uid = rest
            .get(..usize::from(*uid_len))
            .ok_or(bad("UID truncated"))?;
        if !matches!(uid.len(), 4 | 7 | 10) {
            return Err(bad("UID length not 4, 7 or 10"));
        }
        Ok(Target {
            tg: *tg,
            sens_res: [*s0, *s1],
            sel_res: *sel_res,
            uid: uid.to_vec(),
        })
    }

    /// Sends one APDU to the target and returns the card's response APDU.
    pub async fn exchange(
        &mut self,
        tg: u8,
        apdu: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, Pn532Error> {
        const C: u8 = cmd::IN_DATA_EXCHANGE;
        let mut params = Zeroizing::new(Vec::with_capacity(apdu.len() + 1));
        params.push(tg);
        params.extend_from_slice(apdu);
        let r = self.command(C, &params, None).await?;
        let (&status, data) = r.split_first().ok_or(Pn532Error::BadResponse {
            command: C,
            what: "empty",
        })?;
        if status & 0x40 != 0 {
            // MI: the card's answer did not fit the PN532's buffer; what arrived is
            // partial, and EMV responses that long are not expected.
            return Err(Pn532Error::BadResponse {
                command: C,
                what: "card response longer than the PN532 buffer (MI set)",
            });
        }
        match status & 0x3F {
            0x00 => Ok(Zeroizing::new(data.to_vec())),
            0x01 => Err(Pn532Error::CardRemoved),
            status => Err(Pn532Error::Status { command: C, status }),
        }
    }

    /// Tests whether the activated card is still in the field (Diagnose, NumTst 0x06).
    pub async fn card_present(&mut self) -> Result<bool, Pn532Error> {
        let r = self.command(cmd::DIAGNOSE, &[0x06], None).await?;
        match r.first() {
            Some(0x00) => Ok(true),
            Some(_) => Ok(false),
            None => Err(Pn532Error::BadResponse {
                command: cmd::DIAGNOSE,
                what: "empty",
            }),
        }
    }

    /// Waits until the card has left the field, testing its presence every
    /// `removal_poll` (a timer runs only while a card lies on the reader).
    pub async fn wait_for_removal(&mut self, cancel: &CancellationToken) -> Result<(), Pn532Error> {
        loop {
            if !self.card_present().await? {
                return Ok(());
            }
            tokio::select! {
                () = cancel.cancelled() => return Err(Pn532Error::Cancelled),
                () = tokio::time::sleep(self.config.removal_poll) => {}
            }
        }
    }

    /// Releases the target (deselects the card).
    pub async fn release(&mut self, tg: u8) -> Result<(), Pn532Error> {
        self.command(cmd::IN_RELEASE, &[tg], None).await?;
        Ok(())
    }

    /// Sends a command and returns the response parameters (after the response code).
    /// With `cancel`, waits for the response without a time limit until cancelled;
    /// otherwise within `response_timeout`.
    pub async fn command(
        &mut self,
        code: u8,
        params: &[u8],
        cancel: Option<&CancellationToken>,
    ) -> Result<Zeroizing<Vec<u8>>, Pn532Error> {
        self.discard_pending();
        let mut data = Zeroizing::new(Vec::with_capacity(params.len() + 1));
        data.push(code);
        data.extend_from_slice(params);

        let attempts = self.config.retries.saturating_add(1);
        let mut acked = false;
        'send: for attempt in 1..=attempts {
            self.io.send(Frame::host(&data)).await?;
            let deadline = tokio::time::Instant::now() + self.config.ack_timeout;
            loop {
                match self.next_frame(Some(deadline), None).await? {
                    Some(Frame::Ack) => {
                        acked = true;
                        break 'send;
                    }
                    Some(Frame::Info { .. }) => {
                        // A late response to an abandoned command; keep waiting.
                        tracing::debug!(command = code, "ignoring stale PN532 response");
                    }
                    other => {
                        tracing::debug!(command = code, attempt, got = ?other, "PN532 command not acknowledged; resending");
                        if attempt < attempts {
                            self.commands_resent += 1;
                        }
                        continue 'send;
                    }
                }
            }
        }
        if !acked {
            return Err(Pn532Error::NoAck {
                command: code,
                attempts,
            });
        }

        let timeout = match cancel {
            Some(_) => None,
            None => Some(self.config.response_timeout),
        };
        let mut resend_requests = 0u8;
        let mut deadline = timeout.map(|t| tokio::time::Instant::now() + t);
        loop {
            let frame = match self.next_frame(deadline, cancel).await {
                Ok(frame) => frame,
                Err(Pn532Error::Cancelled) => {
                    // An ACK from the host aborts the running command.
                    self.io.send(Frame::Ack).await?;
                    return Err(Pn532Error::Cancelled);
                }
                Err(e) => return Err(e),
            };
            match frame {
                Some(Frame::Info { tfi, data })
                    if tfi == TFI_PN532 && data.first() == Some(&code.wrapping_add(1)) =>
                {
                    return Ok(Zeroizing::new(data[1..].to_vec()));
                }
                Some(Frame::ApplicationError) => {
                    return Err(Pn532Error::ApplicationError { command: code });
                }
                Some(Frame::Corrupt(_)) | None => {
                    if resend_requests >= self.config.retries {
                        return Err(Pn532Error::Timeout { command: code });
                    }
                    resend_requests += 1;
                    self.nacks_sent += 1;
                    tracing::debug!(command = code, "PN532 response corrupt or late; NACK");
                    self.io.send(Frame::Nack).await?;
                    deadline = timeout.map(|t| tokio::time::Instant::now() + t);
                }
                Some(other) => {
                    // A stale response to an earlier (timed out or cancelled) command,
                    // or a stray ACK: not ours.
                    tracing::debug!(command = code, got = ?other, "ignoring unexpected frame");
                }
            }
        }
    }

    /// The next frame, `None` once `deadline` has passed.
    async fn next_frame(
        &mut self,
        deadline: Option<tokio::time::Instant>,
        cancel: Option<&CancellationToken>,
    ) -> Result<Option<Frame>, Pn532Error> {
        let never = CancellationToken::new();
        let cancel = cancel.unwrap_or(&never);
        let sleep = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            frame = self.io.next() => match frame {
                Some(Ok(frame)) => Ok(Some(frame)),
                Some(Err(e)) => Err(Pn532Error::Io(e)),
                None => Err(Pn532Error::Closed),
            },
            () = sleep => Ok(None),
            () = cancel.cancelled() => Err(Pn532Error::Cancelled),
        }
    }

    /// Drops frames that already arrived (late answers to abandoned commands).
    fn discard_pending(&mut self) {
        use futures_util::FutureExt;
        while let Some(Some(Ok(frame))) = self.io.next().now_or_never() {
            tracing::debug!(got = ?frame, "discarding stale PN532 frame");
        }
    }
}
