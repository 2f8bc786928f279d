//! Receipt printers over real parts: ESC/POS into files and FIFOs, over a
//! pseudo-terminal to an emulated serial printer, and the virtual printer
//! through the control API on loopback HTTP.
//!
//! Regenerate the golden byte streams and PNG with
//! `UPDATE_GOLDEN=1 cargo test -p hal --test main printer`, then look at
//! the PNG.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use embedded_graphics::prelude::Size;
use hal::drivers::{
    AnyPrinter, EscPosFile, EscPosSerial, EscPosTimeouts, FlowControl, PrinterSpec,
};
use hal::printer::escpos::{EscPosOptions, encode_document, status_answer};
use hal::printer::{render, sample_receipt};
use hal::{
    CodePage, Document, Paper, PaperWidth, Printer, PrinterError, PrinterStatus, VirtualDevice,
    VirtualPrinterState, serve_control,
};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;
use tokio_serial::SerialStream;
use tokio_util::sync::CancellationToken;

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// Compares `bytes` with the golden file `name` (or rewrites it with
/// `UPDATE_GOLDEN=1`).
fn check_golden(name: &str, bytes: &[u8]) {
    let path = golden_dir().join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(golden_dir()).unwrap();
        std::fs::write(&path, bytes).unwrap();
        return;
    }
    let golden = std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_GOLDEN=1)", path.display()));
    assert!(golden == bytes, "{name} differs from the golden file");
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn quick() -> EscPosTimeouts {
    EscPosTimeouts {
        job: Duration::from_millis(500),
        status: Duration::from_millis(200),
    }
}

#[tokio::test]
async fn sample_receipt_to_a_file_matches_the_golden_bytes() {
    let dir = tempfile::tempdir().unwrap();
    for (name, options) in [
        ("receipt_58mm_cp437.bin", EscPosOptions::default()),
        (
            "receipt_80mm_cp1252.bin",
            EscPosOptions {
                code_page: CodePage::Cp1252,
                paper: PaperWidth::Mm80,
            },
        ),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, b"").unwrap();
        let mut printer = EscPosFile::new(&path, options);
        printer.print(&sample_receipt()).await.unwrap();
        let written = std::fs::read(&path).unwrap();
        assert_eq!(
            written,
            encode_document(&sample_receipt(), options).unwrap()
        );
        check_golden(name, &written);
    }
    // Parts of the stream that must be there, whatever the golden says.
    let bytes = std::fs::read(golden_dir().join("receipt_58mm_cp437.bin")).unwrap();
    assert!(bytes.starts_with(&[0x1B, b'@', 0x1B, b't', 0]));
    assert!(contains(&bytes, b"NGN 1,500.00"));
    assert!(contains(&bytes, b"Operator: Ad\x82\n"));
    assert!(bytes.ends_with(&[0x1D, b'V', 66, 0]));
    let wide = std::fs::read(golden_dir().join("receipt_80mm_cp1252.bin")).unwrap();
    assert!(contains(&wide, b"Operator: Ad\xE9\n"));
    assert!(wide.starts_with(&[0x1B, b'@', 0x1B, b't', 16]));
}

#[tokio::test]
async fn two_jobs_append_to_the_device() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lp0");
    std::fs::write(&path, b"").unwrap();
    let mut printer = EscPosFile::new(&path, EscPosOptions::default());
    let doc = Document {
        lines: vec![hal::DocLine::new("one")],
        qr: None,
        cut: false,
    };
    printer.print(&doc).await.unwrap();
    printer.print(&doc).await.unwrap();
    let one = encode_document(&doc, EscPosOptions::default()).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), [one.clone(), one].concat());
}

#[tokio::test]
async fn a_missing_device_is_a_typed_error_at_once() {
    let missing = PathBuf::from("/dev/usb/no-such-lp9");
    let started = Instant::now();
    let mut file = EscPosFile::new(&missing, EscPosOptions::default());
    let e = file.print(&sample_receipt()).await.unwrap_err();
    assert!(
        matches!(&e, PrinterError::NotFound { path } if *path == missing),
        "{e}"
    );
    let e = file.status().await.unwrap_err();
    assert!(matches!(e, PrinterError::NotFound { .. }), "{e}");
    let mut serial = EscPosSerial::new(
        "/dev/no-such-ttyS9",
        19200,
        FlowControl::None,
        EscPosOptions::default(),
    );
    let e = serial.print(&sample_receipt()).await.unwrap_err();
    assert!(matches!(e, PrinterError::NotFound { .. }), "{e}");
    let e = serial.status().await.unwrap_err();
    assert!(matches!(e, PrinterError::NotFound { .. }), "{e}");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_device_that_cannot_answer_has_unknown_paper() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lp0");
    std::fs::write(&path, b"").unwrap();
    let mut printer = EscPosFile::new(&path, EscPosOptions::default()).with_timeouts(quick());
    let status = printer.status().await.unwrap();
    assert_eq!(
        status,
        PrinterStatus {
            online: true,
            paper: Paper::Unknown,
            cover_open: false
        }
    );
}

#[tokio::test]
async fn a_printer_that_never_takes_the_job_times_out() {
    // A FIFO without a reader: opening it for writing blocks, like a
    // device whose printer does not accept the job.
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("lp0");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let mut printer = EscPosFile::new(&fifo, EscPosOptions::default()).with_timeouts(quick());
    let started = Instant::now();
    let e = printer.print(&sample_receipt()).await.unwrap_err();
    assert!(matches!(e, PrinterError::Timeout { .. }), "{e}");
    assert!(started.elapsed() < Duration::from_secs(2));
    // Release the open still waiting in the blocking pool: the abandoned
    // job is not written late.
    let mut reader = tokio::fs::File::open(&fifo).await.unwrap();
    let mut late = Vec::new();
    reader.read_to_end(&mut late).await.unwrap();
    assert!(
        late.is_empty(),
        "{} bytes written after the timeout",
        late.len()
    );
}

/// An ESC/POS printer on the master side of a pty: answers `DLE EOT n`
/// with its status (or stays silent), and keeps every other byte.
struct EmulatedPrinter {
    path: String,
    received: watch::Receiver<Vec<u8>>,
    status: Arc<Mutex<Option<PrinterStatus>>>,
    _slave: SerialStream,
    _task: tokio::task::JoinHandle<()>,
}

impl EmulatedPrinter {
    fn start(status: Option<PrinterStatus>) -> EmulatedPrinter {
        use tokio_serial::SerialPort;
        let (mut master, slave) = SerialStream::pair().unwrap();
        let path = slave.name().unwrap();
        let status = Arc::new(Mutex::new(status));
        let (tx, received) = watch::channel(Vec::new());
        let answers = status.clone();
        let task = tokio::spawn(async move {
            let mut pending: Vec<u8> = Vec::new();
            let mut buf = [0u8; 512];
            loop {
                let n = match master.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                pending.extend_from_slice(&buf[..n]);
                // Real-time queries are answered as they arrive.
                while let Some(at) = pending
                    .windows(3)
                    .position(|w| w[0] == 0x10 && w[1] == 0x04)
                {
                    let query = pending[at + 2];
                    pending.drain(at..at + 3);
                    let status = *answers.lock().unwrap();
                    if let Some(s) = status {
                        let [a, b, c] = status_answer(s);
                        let byte = match query {
                            1 => a,
                            2 => b,
                            _ => c,
                        };
                        if master.write_all(&[byte]).await.is_err() {
                            return;
                        }
                    }
                }
                // Keep what cannot be the start of a query.
                let keep = if pending.last() == Some(&0x10) {
                    1
                } else if pending.ends_with(&[0x10, 0x04]) {
                    2
                } else {
                    0
                };
                let done = pending.len() - keep;
                tx.send_modify(|r| r.extend(pending.drain(..done)));
            }
        });
        EmulatedPrinter {
            path,
            received,
            status,
            _slave: slave,
            _task: task,
        }
    }

    fn driver(&self) -> EscPosSerial {
        EscPosSerial::new(
            &self.path,
            19200,
            FlowControl::None,
            EscPosOptions::default(),
        )
        .with_timeouts(quick())
    }

    async fn until_received(&mut self, len: usize) -> Vec<u8> {
        tokio::time::timeout(
            Duration::from_secs(5),
            self.received.wait_for(|r| r.len() >= len),
        )
        .await
        .expect("printer did not receive the job")
        .unwrap()
        .clone()
    }
}

const READY: PrinterStatus = PrinterStatus {
    online: true,
    paper: Paper::Ok,
    cover_open: false,
};

#[tokio::test]
async fn serial_printer_answers_status_and_prints() {
    let mut emulated = EmulatedPrinter::start(Some(PrinterStatus {
        paper: Paper::Low,
        ..READY
    }));
    let mut printer = emulated.driver();
    assert_eq!(
        printer.status().await.unwrap(),
        PrinterStatus {
            paper: Paper::Low,
            ..READY
        }
    );
    *emulated.status.lock().unwrap() = Some(PrinterStatus {
        cover_open: true,
        online: false,
        ..READY
    });
    let s = printer.status().await.unwrap();
    assert!(s.cover_open && !s.online);

    *emulated.status.lock().unwrap() = Some(READY);
    printer.print(&sample_receipt()).await.unwrap();
    let job = encode_document(&sample_receipt(), EscPosOptions::default()).unwrap();
    assert_eq!(emulated.until_received(job.len()).await, job);
    assert!(printer.describe().starts_with("escpos-serial /dev/pts/"));
}

#[tokio::test]
async fn serial_printer_out_of_paper_gets_nothing() {
    let mut emulated = EmulatedPrinter::start(Some(PrinterStatus {
        paper: Paper::Out,
        ..READY
    }));
    let mut printer = emulated.driver();
    let e = printer.print(&sample_receipt()).await.unwrap_err();
    assert!(matches!(e, PrinterError::PaperOut), "{e}");
    *emulated.status.lock().unwrap() = Some(PrinterStatus {
        online: false,
        ..READY
    });
    let e = printer.print(&sample_receipt()).await.unwrap_err();
    assert!(matches!(e, PrinterError::Offline), "{e}");
    // Then paper goes in: the next job is the first the printer receives.
    *emulated.status.lock().unwrap() = Some(READY);
    let doc = Document {
        lines: vec![hal::DocLine::new("after paper")],
        qr: None,
        cut: false,
    };
    printer.print(&doc).await.unwrap();
    let job = encode_document(&doc, EscPosOptions::default()).unwrap();
    assert_eq!(emulated.until_received(job.len()).await, job);
}

#[tokio::test]
async fn serial_printer_that_does_not_answer_times_out_without_hanging() {
    let mut emulated = EmulatedPrinter::start(None);
    let mut printer = emulated.driver();
    let started = Instant::now();
    let e = printer.status().await.unwrap_err();
    assert!(
        matches!(&e, PrinterError::Timeout { what } if what.contains("DLE EOT 1")),
        "{e}"
    );
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(200) && waited < Duration::from_secs(2),
        "{waited:?}"
    );
    // A printer that cannot answer status still gets its receipt.
    printer.print(&sample_receipt()).await.unwrap();
    let job = encode_document(&sample_receipt(), EscPosOptions::default()).unwrap();
    assert_eq!(emulated.until_received(job.len()).await, job);
}

#[tokio::test]
async fn any_printer_from_specs() {
    let (device, _parts) = VirtualDevice::new(Size::new(240, 320));
    let mut none = AnyPrinter::open(&PrinterSpec::None, Some(&device)).unwrap();
    assert!(!none.is_configured());
    let e = none.print(&sample_receipt()).await.unwrap_err();
    assert!(matches!(e, PrinterError::NotConfigured), "{e}");
    let e = AnyPrinter::open(&PrinterSpec::Virtual, None).unwrap_err();
    assert!(matches!(e, PrinterError::NoVirtualDevice), "{e}");
    let mut virt = AnyPrinter::open(&PrinterSpec::Virtual, Some(&device)).unwrap();
    virt.print(&sample_receipt()).await.unwrap();
    assert_eq!(device.receipts().len(), 1);
    let spec: PrinterSpec = "escpos:/dev/usb/lp0?codepage=cp1252".parse().unwrap();
    let lp = AnyPrinter::open(&spec, None).unwrap();
    assert_eq!(lp.describe(), "escpos /dev/usb/lp0 58mm cp1252");
    let spec: PrinterSpec = "escpos-serial:/dev/ttyS1:9600?paper=80".parse().unwrap();
    let serial = AnyPrinter::open(&spec, None).unwrap();
    assert_eq!(
        serial.describe(),
        "escpos-serial /dev/ttyS1 9600 80mm cp437"
    );
}

#[tokio::test]
async fn virtual_printer_renders_text_and_png() {
    let (device, _parts) = VirtualDevice::new(Size::new(240, 320));
    let mut printer = device.printer();
    printer.print(&sample_receipt()).await.unwrap();
    let receipt = device.receipt(1).unwrap();
    assert_eq!(
        receipt.text,
        render::to_text(&sample_receipt(), PaperWidth::Mm58)
    );
    check_golden("receipt_virtual.txt", receipt.text.as_bytes());
    check_golden("receipt_virtual.png", &receipt.png);
    let text: Vec<&str> = receipt.text.lines().collect();
    assert_eq!(text[0], "        **K L E R   B A R**");
    assert!(text.contains(&"Amount              NGN 1,500.00"));
    assert!(text.contains(&"**TOTAL               NGN 1,650.00**"));
    assert!(text.contains(&"[QR] https://api.kler.africa/r/txn_01JEXAMPLE7Q2M"));
    // Bold markers may stick out; only the QR's data line is longer.
    assert!(
        text.iter()
            .filter(|l| !l.starts_with("[QR] "))
            .all(|l| l.chars().count() <= 32 + 4)
    );
    let (w, _, _) = hal::decode_png_rgb888(&receipt.png).unwrap();
    assert_eq!(w, 384 + 24);
}

struct Api {
    device: VirtualDevice,
    base: String,
    http: reqwest::Client,
    _shutdown: tokio_util::sync::DropGuard,
}

async fn api() -> Api {
    let (device, _parts) = VirtualDevice::new(Size::new(240, 320));
    let shutdown = CancellationToken::new();
    let bound = serve_control(
        "127.0.0.1:0".parse().unwrap(),
        device.clone(),
        shutdown.clone(),
    )
    .await
    .unwrap();
    Api {
        device,
        base: format!("http://{bound}"),
        http: reqwest::Client::new(),
        _shutdown: shutdown.drop_guard(),
    }
}

impl Api {
    async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
    }

    async fn set_state(&self, body: &str) -> (reqwest::StatusCode, Value) {
        let r = self
            .http
            .post(format!("{}/printer", self.base))
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        (r.status(), r.json().await.unwrap())
    }
}

fn one_line(text: &str) -> Document {
    Document {
        lines: vec![hal::DocLine::new(text)],
        qr: None,
        cut: true,
    }
}

#[tokio::test]
async fn receipts_over_http_newest_first() {
    let api = api().await;
    let empty: Value = api.get("/receipts").await.json().await.unwrap();
    assert_eq!(empty, serde_json::json!([]));
    let mut printer = api.device.printer();
    printer.print(&one_line("first")).await.unwrap();
    printer.print(&sample_receipt()).await.unwrap();
    let r = api.get("/receipts").await;
    assert_eq!(r.status(), 200);
    let list: Value = r.json().await.unwrap();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["n"], 2);
    assert_eq!(list[0]["png"], "/receipts/2.png");
    assert!(list[0]["text"].as_str().unwrap().contains("NGN 1,650.00"));
    assert_eq!(list[1]["n"], 1);
    assert!(list[1]["text"].as_str().unwrap().starts_with("first\n"));

    let png = api.get("/receipts/2.png").await;
    assert_eq!(png.status(), 200);
    assert_eq!(png.headers()["content-type"], "image/png");
    let bytes = png.bytes().await.unwrap();
    assert_eq!(&bytes[..], &api.device.receipt(2).unwrap().png[..]);
    for missing in [
        "/receipts/3.png",
        "/receipts/0.png",
        "/receipts/2",
        "/receipts/x.png",
    ] {
        let r = api.get(missing).await;
        assert_eq!(r.status(), 404, "{missing}");
    }
    let page = api.get("/").await.text().await.unwrap();
    assert!(page.contains("/receipts") && page.contains("paper_out"));
}

#[tokio::test]
async fn keeps_the_last_fifty() {
    let api = api().await;
    let mut printer = api.device.printer();
    for i in 1..=52 {
        printer
            .print(&one_line(&format!("receipt {i}")))
            .await
            .unwrap();
    }
    let list: Value = api.get("/receipts").await.json().await.unwrap();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), hal::virtual_device::RECEIPTS_KEPT);
    assert_eq!(list[0]["n"], 52);
    assert_eq!(list[49]["n"], 3);
    assert_eq!(api.get("/receipts/2.png").await.status(), 404);
    assert_eq!(api.get("/receipts/3.png").await.status(), 200);
    let printer_json: Value = api.get("/printer").await.json().await.unwrap();
    assert_eq!(
        printer_json,
        serde_json::json!({"state": "ok", "printed": 52, "kept": 50})
    );
}

#[tokio::test]
async fn printer_can_be_told_to_fail() {
    let api = api().await;
    let mut printer = api.device.printer();
    let (status, body) = api.set_state(r#"{"state": "paper_out"}"#).await;
    assert_eq!(status, 200);
    assert_eq!(body["state"], "paper_out");
    let e = printer.print(&one_line("lost?")).await.unwrap_err();
    assert!(matches!(e, PrinterError::PaperOut), "{e}");
    assert_eq!(printer.status().await.unwrap().paper, Paper::Out);

    api.set_state(r#"{"state": "offline"}"#).await;
    let e = printer.print(&one_line("lost?")).await.unwrap_err();
    assert!(matches!(e, PrinterError::Offline), "{e}");
    assert!(!printer.status().await.unwrap().online);
    assert_eq!(api.device.printer_state(), VirtualPrinterState::Offline);

    let (status, body) = api.set_state(r#"{"state": "jammed"}"#).await;
    assert_eq!(status, 422);
    assert_eq!(body["error"]["code"], "unknown_printer_state");
    let (status, _) = api.set_state("{").await;
    assert_eq!(status, 400);

    api.set_state(r#"{"state": "ok"}"#).await;
    printer.print(&one_line("printed")).await.unwrap();
    let list: Value = api.get("/receipts").await.json().await.unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["n"], 1);
}
