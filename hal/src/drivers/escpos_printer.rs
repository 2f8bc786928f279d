//! ESC/POS receipt printers: on a character device ([`EscPosFile`], e.g.
//! the USB printer class's `/dev/usb/lp0`) and on a serial line
//! ([`EscPosSerial`]). Both open the device per job and bound every step
//! with a timeout, so a missing or silent printer costs the caller at most
//! [`EscPosTimeouts::job`] and never a payment.
//!
//! Status: a serial printer answers the `DLE EOT` real-time queries (or
//! the status query fails with [`PrinterError::Timeout`]); a `/dev/usb/lp`
//! device is usually write-only in practice, so its status is
//! [`Paper::Unknown`] unless all three answers arrive within
//! [`EscPosTimeouts::status`].

use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_serial::SerialPort;

use super::printer_spec::FlowControl;
use crate::printer::escpos::{EscPosOptions, StatusQuery, encode_document, parse_status};
use crate::printer::{Document, Paper, Printer, PrinterError, PrinterStatus};

/// How long each step may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EscPosTimeouts {
    /// Opening the device, writing the whole job and flushing it.
    pub job: Duration,
    /// Waiting for the answer to one status query.
    pub status: Duration,
}

impl Default for EscPosTimeouts {
    fn default() -> Self {
        EscPosTimeouts {
            job: Duration::from_secs(10),
            status: Duration::from_millis(300),
        }
    }
}

/// An I/O error on `path` as the printer error it means.
fn io_error(path: &Path, source: std::io::Error) -> PrinterError {
    use rustix::io::Errno;
    let raw = source.raw_os_error();
    if source.kind() == std::io::ErrorKind::NotFound
        || raw == Some(Errno::NODEV.raw_os_error())
        || raw == Some(Errno::NXIO.raw_os_error())
    {
        PrinterError::NotFound {
            path: path.to_owned(),
        }
    } else if raw == Some(Errno::NOSPC.raw_os_error()) {
        // usblp reports a paper-out printer this way.
        PrinterError::PaperOut
    } else {
        PrinterError::Io {
            path: path.to_owned(),
            source,
        }
    }
}

fn describe(kind: &str, path: &Path, extra: &str, options: EscPosOptions) -> String {
    format!(
        "{kind} {}{extra} {}mm {}",
        path.display(),
        options.paper.as_str(),
        options.code_page.as_str()
    )
}

/// ESC/POS written to a character device (or any file).
#[derive(Debug, Clone)]
pub struct EscPosFile {
    path: PathBuf,
    options: EscPosOptions,
    timeouts: EscPosTimeouts,
}

impl EscPosFile {
    pub fn new(path: impl Into<PathBuf>, options: EscPosOptions) -> EscPosFile {
        EscPosFile {
            path: path.into(),
            options,
            timeouts: EscPosTimeouts::default(),
        }
    }

    pub fn with_timeouts(mut self, timeouts: EscPosTimeouts) -> EscPosFile {
        self.timeouts = timeouts;
        self
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Asks the status queries on an open device, each answer within `wait`;
/// `None` when any answer is missing.
fn ask_blocking(
    file: &mut std::fs::File,
    wait: Duration,
) -> Result<Option<[u8; 3]>, std::io::Error> {
    use rustix::event::{PollFd, PollFlags, Timespec, poll};
    use std::io::{Read, Write};
    let timeout = Timespec::try_from(wait).unwrap_or(Timespec {
        tv_sec: 1,
        tv_nsec: 0,
    });
    let mut answers = [0u8; 3];
    for (query, answer) in StatusQuery::ALL.iter().zip(answers.iter_mut()) {
        match file.write(&query.bytes()) {
            Ok(3) => {}
            Ok(_) => return Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(None),
            Err(e) => return Err(e),
        }
        let mut fds = [PollFd::new(&*file, PollFlags::IN)];
        if poll(&mut fds, Some(&timeout))? == 0 {
            return Ok(None);
        }
        let mut byte = [0u8; 1];
        match file.read(&mut byte) {
            Ok(1) => *answer = byte[0],
            Ok(_) => return Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(None),
            Err(e) => return Err(e),
        }
    }
    Ok(Some(answers))
}

impl Printer for EscPosFile {
    async fn print(&mut self, doc: &Document) -> Result<(), PrinterError> {
        let bytes = encode_document(doc, self.options)?;
        let path = self.path.clone();
        let job = async {
            let mut file = tokio::fs::OpenOptions::new()
                .append(true)
                .open(&path)
                .await
                .map_err(|e| io_error(&path, e))?;
            file.write_all(&bytes)
                .await
                .map_err(|e| io_error(&path, e))?;
            file.flush().await.map_err(|e| io_error(&path, e))
        };
        tokio::time::timeout(self.timeouts.job, job)
            .await
            .map_err(|_| PrinterError::Timeout {
                what: format!(
                    "writing {} bytes to {} within {:?}",
                    bytes.len(),
                    self.path.display(),
                    self.timeouts.job
                ),
            })?
    }

    /// Opens the device without blocking, sends the queries and waits for
    /// each answer at most [`EscPosTimeouts::status`]. A device that opens
    /// but does not answer is online with unknown paper.
    async fn status(&mut self) -> Result<PrinterStatus, PrinterError> {
        let path = self.path.clone();
        let wait = self.timeouts.status;
        let asked = tokio::task::spawn_blocking(move || {
            let mut file = std::fs::OpenOptions::new()
                .read(true)
                .append(true)
                .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
                .open(&path)
                .map_err(|e| io_error(&path, e))?;
            ask_blocking(&mut file, wait).map_err(|e| io_error(&path, e))
        });
        // Every step in there is non-blocking or bounded by `wait`.
        let bound = wait * 4 + Duration::from_secs(1);
        let answers = tokio::time::timeout(bound, asked)
            .await
            .map_err(|_| PrinterError::Timeout {
                what: format!("status of {}", self.path.display()),
            })?
            .map_err(|e| PrinterError::Io {
                path: self.path.clone(),
                source: std::io::Error::other(e.to_string()),
            })??;
        match answers {
            Some([a, b, c]) => parse_status(a, b, c),
            None => Ok(PrinterStatus {
                online: true,
                paper: Paper::Unknown,
                cover_open: false,
            }),
        }
    }

    fn describe(&self) -> String {
        describe("escpos", &self.path, "", self.options)
    }
}

/// ESC/POS on a serial line (8N1).
#[derive(Debug, Clone)]
pub struct EscPosSerial {
    path: PathBuf,
    baud: u32,
    flow: FlowControl,
    options: EscPosOptions,
    timeouts: EscPosTimeouts,
}

impl EscPosSerial {
    pub fn new(
        path: impl Into<PathBuf>,
        baud: u32,
        flow: FlowControl,
        options: EscPosOptions,
    ) -> EscPosSerial {
        EscPosSerial {
            path: path.into(),
            baud,
            flow,
            options,
            timeouts: EscPosTimeouts::default(),
        }
    }

    pub fn with_timeouts(mut self, timeouts: EscPosTimeouts) -> EscPosSerial {
        self.timeouts = timeouts;
        self
    }

    fn open(&self) -> Result<tokio_serial::SerialStream, PrinterError> {
        use tokio_serial::SerialPortBuilderExt;
        let flow = match self.flow {
            FlowControl::None => tokio_serial::FlowControl::None,
            FlowControl::RtsCts => tokio_serial::FlowControl::Hardware,
            FlowControl::XonXoff => tokio_serial::FlowControl::Software,
        };
        let port = tokio_serial::new(self.path.to_string_lossy(), self.baud)
            .data_bits(tokio_serial::DataBits::Eight)
            .parity(tokio_serial::Parity::None)
            .stop_bits(tokio_serial::StopBits::One)
            .flow_control(flow)
            .open_native_async()
            .map_err(|e| io_error(&self.path, std::io::Error::from(e)))?;
        // Anything the printer sent unasked (automatic status back) is stale.
        let _ = port.clear(tokio_serial::ClearBuffer::Input);
        Ok(port)
    }

    /// The three status answers on an open port; a missing one is a
    /// timeout naming the query.
    async fn ask(
        &self,
        port: &mut tokio_serial::SerialStream,
    ) -> Result<PrinterStatus, PrinterError> {
        let mut answers = [0u8; 3];
        for (query, answer) in StatusQuery::ALL.iter().zip(answers.iter_mut()) {
            port.write_all(&query.bytes())
                .await
                .map_err(|e| io_error(&self.path, e))?;
            let mut byte = [0u8; 1];
            tokio::time::timeout(self.timeouts.status, port.read_exact(&mut byte))
                .await
                .map_err(|_| PrinterError::Timeout {
                    what: format!(
                        "answer to DLE EOT {} from {} within {:?}",
                        *query as u8,
                        self.path.display(),
                        self.timeouts.status
                    ),
                })?
                .map_err(|e| io_error(&self.path, e))?;
            *answer = byte[0];
        }
        let [a, b, c] = answers;
        parse_status(a, b, c)
    }
}

impl Printer for EscPosSerial {
    /// Asks the status first: a printer that answers out of paper, offline
    /// or with its cover open gets nothing sent (typed error); one that
    /// does not answer is printed to anyway.
    async fn print(&mut self, doc: &Document) -> Result<(), PrinterError> {
        let bytes = encode_document(doc, self.options)?;
        let mut port = self.open()?;
        match self.ask(&mut port).await {
            Ok(s) if s.paper == Paper::Out => return Err(PrinterError::PaperOut),
            Ok(s) if s.cover_open => return Err(PrinterError::CoverOpen),
            Ok(s) if !s.online => return Err(PrinterError::Offline),
            Ok(_) | Err(PrinterError::Timeout { .. } | PrinterError::BadStatus { .. }) => {}
            Err(e) => return Err(e),
        }
        let job = async {
            port.write_all(&bytes).await?;
            port.flush().await
        };
        tokio::time::timeout(self.timeouts.job, job)
            .await
            .map_err(|_| PrinterError::Timeout {
                what: format!(
                    "writing {} bytes to {} within {:?}",
                    bytes.len(),
                    self.path.display(),
                    self.timeouts.job
                ),
            })?
            .map_err(|e| io_error(&self.path, e))
    }

    async fn status(&mut self) -> Result<PrinterStatus, PrinterError> {
        let mut port = self.open()?;
        self.ask(&mut port).await
    }

    fn describe(&self) -> String {
        describe(
            "escpos-serial",
            &self.path,
            &format!(" {}", self.baud),
            self.options,
        )
    }
}
