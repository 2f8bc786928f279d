//! `pos-agent queue`: the outbox items the backend has not acknowledged yet,
//! as a table for a technician or as JSON. Reading is [`read`]; the two
//! renderings ([`to_json`], [`to_text`]) are pure.

use std::fmt::Write as _;

use store::{OutboxId, OutboxItem, Store, StoreError};

/// Which parked items `queue --retry` puts back in line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    One(i64),
    All,
}

/// Puts parked items back in line, due at once (`now`: wall milliseconds).
/// Returns their ids; asking for an item that is not parked is
/// [`StoreError::NotFound`].
pub fn retry(store: &Store, which: Retry, now: i64) -> Result<Vec<OutboxId>, StoreError> {
    match which {
        Retry::One(id) => {
            store.unpark(OutboxId(id), now)?;
            Ok(vec![OutboxId(id)])
        }
        Retry::All => store.unpark_all(now),
    }
}

/// What `queue --retry` says, as text.
pub fn retried_text(ids: &[OutboxId], agent: Option<i32>) -> String {
    let what = match ids {
        [] => "no parked items: nothing to retry".to_owned(),
        [one] => format!("item {} is back in line", one.0),
        many => format!("{} items are back in line", many.len()),
    };
    let who = match (ids.is_empty(), agent) {
        (true, _) => String::new(),
        (false, Some(pid)) => format!("; the running agent (pid {pid}) sends them now"),
        (false, None) => "; no agent is running here: they go out when it starts".to_owned(),
    };
    format!("{what}{who}\n")
}

/// What `queue --retry --json` says.
pub fn retried_json(ids: &[OutboxId], agent: Option<i32>) -> serde_json::Value {
    serde_json::json!({
        "retried": ids.iter().map(|i| i.0).collect::<Vec<_>>(),
        "agent_pid": agent,
    })
}

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
    use crate::table::{Align, Table};
    let mut t = Table::new(&[
        Align::Right,
        Align::Left,
        Align::Left,
        Align::Left,
        Align::Right,
        Align::Left,
        Align::Left,
    ]);
    t.row([
        "ID",
        "KIND",
        "REFERENCE",
        "STATE",
        "ATTEMPTS",
        "NEXT ATTEMPT",
        "LAST ERROR",
    ]);
    for i in items {
        t.row([
            i.id.0.to_string(),
            i.kind.as_str().to_owned(),
            i.reference
                .as_ref()
                .map_or_else(|| "-".to_owned(), |r| r.as_str().to_owned()),
            item_state(i).to_owned(),
            i.attempts.to_string(),
            rfc3339_millis(i.next_attempt_at),
            i.last_error.clone().unwrap_or_default(),
        ]);
    }
    out.push_str(&t.render(""));
    let parked = items.iter().filter(|i| i.parked).count();
    let _ = writeln!(out, "{} queued, {} parked", items.len(), parked);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_messages_say_what_moved_and_who_sends_it() {
        assert_eq!(
            retried_text(&[], Some(7)),
            "no parked items: nothing to retry\n"
        );
        assert_eq!(
            retried_text(&[OutboxId(12)], Some(4242)),
            "item 12 is back in line; the running agent (pid 4242) sends them now\n"
        );
        assert!(retried_text(&[OutboxId(1), OutboxId(2)], None).starts_with("2 items are back"));
        assert_eq!(
            retried_json(&[OutboxId(3)], None),
            serde_json::json!({"retried": [3], "agent_pid": null})
        );
    }
}
