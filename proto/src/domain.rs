//! The domain's words, defined once and used by the core, the store and the
//! wire alike: a transaction's kind and state, how it was decided, the acks
//! and payment events of SPEC 4.3, a sale's offline policy, a session's
//! status, and the card's brand and entry mode.
//!
//! Each is a [`text_enum!`](crate::text_enum) type: its snake_case text is
//! the wire form, the stored form and `as_str()`.

use crate::text_enum::text_enum;

text_enum! {
    /// Sale or refund.
    pub enum TxKind: "transaction kind" {
        Sale = "sale",
        Refund = "refund",
    }
}

text_enum! {
    /// Where a transaction stands on the terminal (the ledger's `state`
    /// column). See [`TxState::can_become`] for the transitions allowed.
    pub enum TxState: "transaction state" {
        /// Created, reference committed, waiting for the card.
        Pending = "pending",
        /// Card read; online authorization about to be sent or in flight.
        Authorizing = "authorizing",
        /// Approved (online, or an offline approval the backend confirmed).
        Approved = "approved",
        /// Declined online.
        Declined = "declined",
        /// Approved by the terminal within offline limits; not yet confirmed.
        OfflineApproved = "offline_approved",
        /// Approved offline, then declined by the backend when forwarded.
        OfflineDeclined = "offline_declined",
        /// Cancelled before a card was read.
        Aborted = "aborted",
        /// No card presented in time.
        TimedOut = "timed_out",
        /// Stopped by a local failure (card read, storage, restart) before
        /// any charge; nothing was sent.
        Failed = "failed",
        /// Outcome unknown and shown as declined; a reversal is queued.
        ReversalPending = "reversal_pending",
        /// The backend acknowledged the reversal.
        Reversed = "reversed",
    }
}

impl TxState {
    /// Whether a transaction may move from `self` to `next`. Staying in the
    /// same state is allowed (to fill in fields). Final states never change.
    pub fn can_become(self, next: TxState) -> bool {
        use TxState::*;
        if self == next {
            return true;
        }
        match self {
            Pending => matches!(
                next,
                Authorizing
                    | Approved
                    | Declined
                    | OfflineApproved
                    | Aborted
                    | TimedOut
                    | Failed
                    | ReversalPending
            ),
            Authorizing => matches!(
                next,
                Approved | Declined | OfflineApproved | Failed | ReversalPending
            ),
            OfflineApproved => matches!(next, Approved | OfflineDeclined | ReversalPending),
            Approved => matches!(next, ReversalPending),
            ReversalPending => matches!(next, Reversed),
            Declined | OfflineDeclined | Aborted | TimedOut | Failed | Reversed => false,
        }
    }

    /// Approved on this terminal (online or offline): money taken (sales)
    /// or given (refunds), refundable.
    pub fn is_approved(self) -> bool {
        matches!(self, TxState::Approved | TxState::OfflineApproved)
    }

    /// No more work is expected from the payment flow.
    pub fn is_final(self) -> bool {
        !matches!(self, TxState::Pending | TxState::Authorizing)
    }
}

text_enum! {
    /// Online or offline: the `mode` half of a payment's decision.
    pub enum DecisionMode: "decision" {
        Online = "online",
        Offline = "offline",
    }
}

text_enum! {
    /// `status` of a command ack (SPEC 4.3).
    pub enum AckStatus: "ack status" {
        Accepted = "accepted",
        Rejected = "rejected",
    }
}

text_enum! {
    /// Rejection reasons of the ack endpoint (SPEC 4.3).
    pub enum AckReason: "ack reason" {
        Busy = "busy",
        Expired = "expired",
        SessionClosed = "session_closed",
        UnknownTransaction = "unknown_transaction",
        AmountExceedsRefundable = "amount_exceeds_refundable",
        OfflineLimit = "offline_limit",
        InvalidRequest = "invalid_request",
    }
}

text_enum! {
    /// `status` of a payment event (SPEC 4.3).
    pub enum PaymentEventStatus: "payment event status" {
        InProgress = "in_progress",
        Aborted = "aborted",
        AbortTooLate = "abort_too_late",
        TimedOut = "timed_out",
        Failed = "failed",
    }
}

text_enum! {
    /// `offline_policy` of a payment / sale command.
    #[derive(Default)]
    pub enum OfflinePolicy: "offline policy" {
        #[default]
        PreferOnline = "prefer_online",
        RequireOnline = "require_online",
    }
}

text_enum! {
    /// A session's lifecycle (SPEC 4.1).
    #[derive(Default)]
    pub enum SessionStatus: "session status" {
        Pending = "pending",
        #[default]
        Active = "active",
        Closed = "closed",
        Cancelled = "cancelled",
    }
}

text_enum! {
    /// The card scheme, from the PAN's prefix.
    pub enum CardBrand: "card brand" {
        Visa = "visa",
        Mastercard = "mastercard",
        Verve = "verve",
        Amex = "amex",
        Discover = "discover",
        Unionpay = "unionpay",
        Other = "other",
    }
}

impl CardBrand {
    /// The scheme from a PAN's leading digits (ISO/IEC 7812 issuer ranges).
    /// Verve's ranges come first: they overlap Discover's `65`. Anything
    /// that is not a digit ends the prefix, so any input is safe.
    pub fn from_pan_digits(pan: &[u8]) -> CardBrand {
        let prefix = |n: usize| -> u32 {
            pan.iter()
                .take(n)
                .take_while(|b| b.is_ascii_digit())
                .fold(0, |acc, b| acc * 10 + u32::from(b - b'0'))
        };
        let (p2, p3, p4, p6) = (prefix(2), prefix(3), prefix(4), prefix(6));
        if (506_099..=506_198).contains(&p6)
            || (650_002..=650_027).contains(&p6)
            || (507_865..=507_964).contains(&p6)
        {
            CardBrand::Verve
        } else if pan.first() == Some(&b'4') {
            CardBrand::Visa
        } else if (51..=55).contains(&p2) || (2221..=2720).contains(&p4) {
            CardBrand::Mastercard
        } else if p2 == 34 || p2 == 37 {
            CardBrand::Amex
        } else if p4 == 6011 || p2 == 65 || (644..=649).contains(&p3) {
            CardBrand::Discover
        } else if p2 == 62 {
            CardBrand::Unionpay
        } else {
            CardBrand::Other
        }
    }
}

text_enum! {
    /// How the card was read.
    pub enum EntryMode: "entry mode" {
        Contactless = "contactless",
        Chip = "chip",
        Magstripe = "magstripe",
        Manual = "manual",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// serde, `as_str`, `Display` and `FromStr` agree for every value of a
    /// text enum, and unknown texts are refused with a typed error.
    fn round_trips<T>(all: &[T], as_str: fn(T) -> &'static str)
    where
        T: Copy
            + std::fmt::Debug
            + PartialEq
            + std::fmt::Display
            + std::str::FromStr<Err = crate::UnknownValue>
            + serde::Serialize
            + serde::de::DeserializeOwned,
    {
        for &v in all {
            let text = as_str(v);
            assert_eq!(serde_json::to_value(v).unwrap(), text, "{v:?}");
            assert_eq!(serde_json::from_value::<T>(text.into()).unwrap(), v);
            assert_eq!(v.to_string(), text);
            assert_eq!(text.parse::<T>().unwrap(), v);
        }
        let err = "Not-A-Value".parse::<T>().unwrap_err();
        assert_eq!(err.value, "Not-A-Value");
        assert!(serde_json::from_value::<T>("Not-A-Value".into()).is_err());
    }

    #[test]
    fn card_brands_from_pan_prefixes() {
        for (pan, brand) in [
            ("4111111111111111", CardBrand::Visa),
            ("5555555555554444", CardBrand::Mastercard),
            ("2221000000000009", CardBrand::Mastercard),
            ("5061000000000000007", CardBrand::Verve),
            ("6500020000000000", CardBrand::Verve),
            ("378282246310005", CardBrand::Amex),
            ("6011111111111117", CardBrand::Discover),
            ("6200000000000005", CardBrand::Unionpay),
            ("9999999999999995", CardBrand::Other),
            ("", CardBrand::Other),
            ("5x", CardBrand::Other),
        ] {
            assert_eq!(CardBrand::from_pan_digits(pan.as_bytes()), brand, "{pan}");
        }
    }

    #[test]
    fn every_domain_enum_has_one_text_per_value() {
        round_trips(TxKind::ALL, TxKind::as_str);
        round_trips(TxState::ALL, TxState::as_str);
        round_trips(DecisionMode::ALL, DecisionMode::as_str);
        round_trips(AckStatus::ALL, AckStatus::as_str);
        round_trips(AckReason::ALL, AckReason::as_str);
        round_trips(PaymentEventStatus::ALL, PaymentEventStatus::as_str);
        round_trips(OfflinePolicy::ALL, OfflinePolicy::as_str);
        round_trips(SessionStatus::ALL, SessionStatus::as_str);
        round_trips(CardBrand::ALL, CardBrand::as_str);
        round_trips(EntryMode::ALL, EntryMode::as_str);
    }

    #[test]
    fn unknown_text_is_cut_in_the_error() {
        let long = "x".repeat(500);
        let err = long.parse::<TxState>().unwrap_err();
        assert_eq!(err.value.len(), 32);
        assert!(
            err.to_string()
                .starts_with("unknown transaction state \"xxx")
        );
    }

    #[test]
    fn final_states_never_change_and_stay_is_allowed() {
        for &from in TxState::ALL {
            assert!(from.can_become(from));
            for &to in TxState::ALL {
                if from.can_become(to) && from != to {
                    assert!(!matches!(
                        from,
                        TxState::Declined
                            | TxState::OfflineDeclined
                            | TxState::Aborted
                            | TxState::TimedOut
                            | TxState::Failed
                            | TxState::Reversed
                    ));
                }
            }
        }
        assert!(TxState::Authorizing.can_become(TxState::OfflineApproved));
        assert!(!TxState::Approved.can_become(TxState::Declined));
        assert!(!TxState::Pending.is_final() && TxState::Failed.is_final());
    }

    #[test]
    fn defaults_are_the_specs() {
        assert_eq!(OfflinePolicy::default(), OfflinePolicy::PreferOnline);
        assert_eq!(SessionStatus::default(), SessionStatus::Active);
    }
}
