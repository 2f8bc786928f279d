//! The virtual printer's routes: the receipts it printed and the state it
//! is told to be in.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::{error, json_body};
use crate::virtual_device::{VirtualDevice, VirtualPrinterState};

/// One entry of `GET /receipts`.
#[derive(Serialize)]
struct ReceiptJson {
    n: u64,
    text: String,
    png: String,
}

/// `GET /receipts`: the kept receipts, newest first.
pub(super) async fn list(State(device): State<VirtualDevice>) -> Response {
    let receipts: Vec<ReceiptJson> = device
        .receipts()
        .into_iter()
        .map(|r| ReceiptJson {
            n: r.n,
            png: format!("/receipts/{}.png", r.n),
            text: r.text,
        })
        .collect();
    ([(header::CACHE_CONTROL, "no-store")], axum::Json(receipts)).into_response()
}

/// `GET /receipts/{n}.png`.
pub(super) async fn png(State(device): State<VirtualDevice>, Path(file): Path<String>) -> Response {
    let receipt = file
        .strip_suffix(".png")
        .and_then(|n| n.parse::<u64>().ok())
        .and_then(|n| device.receipt(n));
    match receipt {
        Some(r) => (
            [
                (header::CONTENT_TYPE, HeaderValue::from_static("image/png")),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            ],
            r.png.to_vec(),
        )
            .into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            "unknown_receipt",
            format!("no receipt {file:?} is kept (GET /receipts lists them)"),
        ),
    }
}

#[derive(Serialize)]
struct PrinterJson {
    state: &'static str,
    printed: u64,
    kept: usize,
}

fn printer_json(device: &VirtualDevice) -> PrinterJson {
    PrinterJson {
        state: device.printer_state().as_str(),
        printed: device.receipts_printed(),
        kept: device.receipts().len(),
    }
}

/// `GET /printer`.
pub(super) async fn printer(State(device): State<VirtualDevice>) -> Response {
    (
        [(header::CACHE_CONTROL, "no-store")],
        axum::Json(printer_json(&device)),
    )
        .into_response()
}

#[derive(Deserialize)]
struct PrinterBody {
    state: String,
}

/// `POST /printer {"state": "ok" | "paper_out" | "offline"}`.
pub(super) async fn set_printer(
    State(device): State<VirtualDevice>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body: PrinterBody = match json_body(body) {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    match VirtualPrinterState::parse(&body.state) {
        Ok(state) => {
            device.set_printer_state(state);
            tracing::info!(state = state.as_str(), "virtual printer state set");
            axum::Json(printer_json(&device)).into_response()
        }
        Err(e) => error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_printer_state",
            e.to_string(),
        ),
    }
}
