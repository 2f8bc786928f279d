//! SPEC 7.5 shifts: the Z report a terminal sends when it closes a shift
//! (`POST /v1/terminals/:tid/shifts`, idempotent by `shift_no`) and the
//! backend's record of it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{CountTotal, Timestamp};
use crate::ids::{SessionId, TerminalId};
use crate::money::{Money, Total};

/// Units and gross total of one catalog item.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ItemTotal {
    pub name: String,
    pub qty: u64,
    pub total: Total,
}

impl ItemTotal {
    /// Adds a line of `qty` units at `unit_price` (the name is the latest
    /// one seen). Saturates rather than wrapping.
    pub fn add(&mut self, name: &str, qty: u32, unit_price: Money) {
        name.clone_into(&mut self.name);
        self.qty = self.qty.saturating_add(u64::from(qty));
        let line = unit_price.minor().saturating_mul(u64::from(qty));
        self.total = Total(self.total.0.saturating_add(line));
    }
}

/// The figures of a shift (SPEC 7.5): by outcome and kind, tips, online vs
/// offline approvals, by operator and by item.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ShiftTotals {
    /// Approved sales.
    pub sales: CountTotal,
    /// Approved refunds.
    pub refunds: CountTotal,
    /// Declined payments.
    pub declined: CountTotal,
    /// Approved sales with a tip, and the sum of their tips.
    pub tips: CountTotal,
    /// Approved sales approved online.
    pub online: CountTotal,
    /// Approved sales approved offline.
    pub offline: CountTotal,
    /// Approved sales by `operator_id`.
    #[serde(default)]
    pub by_operator: BTreeMap<String, CountTotal>,
    /// Approved sales' items by `item_id`.
    #[serde(default)]
    pub by_item: BTreeMap<String, ItemTotal>,
}

/// `POST /v1/terminals/:tid/shifts`: a closed shift.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ShiftSubmission {
    /// From 1, never reused by the terminal.
    #[cfg_attr(feature = "openapi", schema(minimum = 1))]
    pub shift_no: u64,
    pub opened_at: Timestamp,
    pub closed_at: Timestamp,
    pub totals: ShiftTotals,
}

/// A shift as the backend keeps it (`GET /v1/sessions/:id/shifts`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ShiftRecord {
    pub terminal_id: TerminalId,
    pub session_id: SessionId,
    pub shift_no: u64,
    pub opened_at: Timestamp,
    pub closed_at: Timestamp,
    pub totals: ShiftTotals,
    pub received_at: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    use crate::wire::test_util::round_trip;

    #[test]
    fn shifts_on_the_wire() {
        let ct = |count: u64, total: &str| json!({"count": count, "total": total});
        let totals = json!({
            "sales": ct(3, "4650.00"), "refunds": ct(1, "300.00"), "declined": ct(1, "50.00"),
            "tips": ct(1, "150.00"), "online": ct(2, "3150.00"), "offline": ct(1, "1500.00"),
            "by_operator": {"op_1": ct(3, "4650.00")},
            "by_item": {"beer": {"name": "Star Lager", "qty": 3, "total": "4500.00"}}
        });
        let sub: ShiftSubmission = round_trip(json!({
            "shift_no": 7, "opened_at": "2026-11-21T18:00:00Z",
            "closed_at": "2026-11-22T02:00:00Z", "totals": totals
        }));
        assert_eq!(sub.totals.by_item["beer"].total, Total(450_000));
        round_trip::<ShiftRecord>(json!({
            "terminal_id": "pos_3f1e2d_001", "session_id": "s1", "shift_no": 7,
            "opened_at": "2026-11-21T18:00:00Z", "closed_at": "2026-11-22T02:00:00Z",
            "totals": totals, "received_at": "2026-11-22T02:00:01Z"
        }));
        // by_operator and by_item may be left out.
        let zero = json!({"count": 0, "total": "0.00"});
        let t: ShiftTotals = serde_json::from_value(json!({
            "sales": zero, "refunds": zero, "declined": zero, "tips": zero,
            "online": zero, "offline": zero
        }))
        .unwrap();
        assert_eq!(t, ShiftTotals::default());
        let mut it = ItemTotal::default();
        it.add("Beer", 2, Money::parse("1500.00").unwrap());
        it.add("Star Lager", 1, Money::parse("1500.00").unwrap());
        assert_eq!(
            (it.name.as_str(), it.qty, it.total),
            ("Star Lager", 3, Total(450_000))
        );
    }
}
