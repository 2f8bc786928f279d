//! The transfer screen (SPEC 7.7): the account to pay into, the amount,
//! the payment code large (grouped `012 345`), where it stands, the keys;
//! its QR code goes at the bottom or in a pane of its own like a receipt's.

use super::column::Column;
use super::qr::Qr;
use super::{AMOUNT_SIZES, BODY, INK, MUTED, ORANGE, SMALL, SMALL_BOLD, TITLE_SIZES};
use crate::model::{Amount, TransferAccount, TransferStatus, grouped_transfer_code};
use crate::strings::Key;

/// What the transfer screen shows.
pub(super) struct TransferView<'a> {
    pub amount: &'a Amount,
    pub tip: Option<&'a Amount>,
    pub account: Option<&'a TransferAccount>,
    pub code: Option<&'a str>,
    pub received: Option<&'a Amount>,
    pub status: TransferStatus,
}

pub(super) fn transfer(col: &mut Column, v: &TransferView<'_>, inline_qr: Option<&Qr>) {
    // Small panels: the compact column drops the key hints, the tight one
    // the title too (the amount, account and code always stay).
    if !col.tight {
        col.fitted(col.t(Key::TransferTitle), &TITLE_SIZES[1..], INK);
        col.gap(2);
    }
    col.fitted(&v.amount.display(), &AMOUNT_SIZES[2..], INK);
    if let Some(tip) = v.tip {
        let line = col.tf(Key::InclTip, &[&tip.display()]);
        col.line(&line, SMALL, MUTED);
    }
    let open = v.status.open();
    if let (Some(a), true) = (v.account, open) {
        col.gap(6);
        col.line(&a.bank_name, BODY, INK);
        col.fitted(&a.account_number, &AMOUNT_SIZES[4..], INK);
        col.line(&a.account_name, SMALL_BOLD, MUTED);
    }
    if let (Some(code), true) = (v.code, open) {
        col.gap(6);
        col.line(col.t(Key::TransferCodeLabel), SMALL, MUTED);
        col.fitted(&grouped_transfer_code(code), &AMOUNT_SIZES[1..], INK);
    }
    col.gap(6);
    let message = col.tf(
        v.status.key(),
        &[
            &v.received.map(Amount::display).unwrap_or_default(),
            &v.amount.display(),
        ],
    );
    let color = match v.status {
        TransferStatus::Waiting => MUTED,
        TransferStatus::PartlyReceived => INK,
        TransferStatus::NoNetwork
        | TransferStatus::NeedsNetwork
        | TransferStatus::Unavailable
        | TransferStatus::NotForEvent => ORANGE,
    };
    col.wrapped(&message, BODY, color, if open { 2 } else { 3 });
    if !col.compact {
        col.gap(4);
        let hints = if open {
            col.t(Key::TransferHints)
        } else {
            col.t(Key::TransferCardOnly)
        };
        col.hint(&[hints], MUTED);
    }
    // The QR code only where it fits whole (a portrait panel may have no
    // room left for it: the details are on screen all the same).
    if let Some(qr) = inline_qr {
        let gap = if col.compact { 4 } else { 8 };
        let room = col.room().saturating_sub(gap).min(col.inner);
        if let Some(px) = qr.px_for(room) {
            col.push(super::column::Item::Gap(gap));
            col.push(super::column::Item::Qr(qr.clone(), px));
        }
    }
}
