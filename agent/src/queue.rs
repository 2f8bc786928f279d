//! `pos-agent queue`: the outbox items the backend has not acknowledged yet,
//! as a table for a technician or as JSON. Reading is [`read`]; the two
//! renderings ([`to_json`], [`to_text`]) are pure.

use std::fmt::Write as _;

use store::{OutboxItem, Store, StoreError};

/// Every outbox item, oldest first.
pub fn read(store: &Store) -> Result<Vec<OutboxItem>, StoreError> {
    store.list_outbox()
}

/// `waiting`, `in_flight` or `parked`.
pub fn item_state(i: &OutboxItem) -> &'static str {
    if i.parked {
        "parked"
    } else if i.in_flight {
        "in_flight"
    } else {
        "waiting"
    }
}

/// Milliseconds since the epoch as RFC 3339 (the number itself when out of
/// range).
pub fn rfc3339_millis(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| ms.to_string())
}

/// `{"items": [...]}`, one object per item.
pub fn to_json(items: &[OutboxItem]) -> serde_json::Value {
    let rows: Vec<serde_json::Value> = items
        .iter()
        .map(|i| {
            serde_json::json!({
                "id": i.id.0,
                "kind": i.kind.as_str(),
                "reference": i.reference.as_ref().map(|r| r.as_str()),
                "payment_id": i.payment_id.as_ref().map(|p| p.as_str()),
                "state": item_state(i),
                "attempts": i.attempts,
                "next_attempt_at": rfc3339_millis(i.next_attempt_at),
                "created_at": rfc3339_millis(i.created_at),
                "last_error": i.last_error,
            })
        })
        .collect();
    serde_json::json!({ "items": rows })
}

/// The table, one line per item and a count line; a sentence when the
/// outbox is empty. Every line ends with a newline.
pub fn to_text(items: &[OutboxItem]) -> String {
    let mut out = String::new();
    if items.is_empty() {
        out.push_str("outbox empty: the backend has acknowledged everything\n");
        return out;
    }
    let _ = writeln!(
        out,
        "{:>6}  {:<13}  {:<28}  {:<9}  {:>8}  {:<20}  LAST ERROR",
        "ID", "KIND", "REFERENCE", "STATE", "ATTEMPTS", "NEXT ATTEMPT"
    );
    for i in items {
        let _ = writeln!(
            out,
            "{:>6}  {:<13}  {:<28}  {:<9}  {:>8}  {:<20}  {}",
            i.id.0,
            i.kind.as_str(),
            i.reference.as_ref().map(|r| r.as_str()).unwrap_or("-"),
            item_state(i),
            i.attempts,
            rfc3339_millis(i.next_attempt_at),
            i.last_error.as_deref().unwrap_or("")
        );
    }
    let parked = items.iter().filter(|i| i.parked).count();
    let _ = writeln!(out, "{} queued, {} parked", items.len(), parked);
    out
}
