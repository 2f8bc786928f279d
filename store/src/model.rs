//! The values the store reads and writes, validated at the boundary.

use std::fmt;
use std::time::Duration;

pub use proto::{CardBrand, DecisionMode, EntryMode, TxKind, TxState};
use proto::{Currency, Money, PaymentId, Reference};

use crate::StoreError;

/// Milliseconds since the Unix epoch (wall clock), as passed in by the caller.
pub type UnixMillis = i64;

macro_rules! text_enum {
    ($(#[$doc:meta])* $name:ident, $what:literal { $($(#[$vdoc:meta])* $variant:ident => $text:literal,)+ }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The stored (and wire) text.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }

            /// Parses the stored text.
            pub fn parse(s: &str) -> Result<Self, StoreError> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err(StoreError::Invalid(format!(
                        "unknown {} {:?}", $what, truncate(other, 32)
                    ))),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

text_enum!(
    /// What an outbox item carries.
    OutboxKind, "outbox kind" {
        PaymentEvent => "payment_event",
        Transaction => "transaction",
        Reversal => "reversal",
        CommandAck => "command_ack",
        /// A closed shift's Z report (SPEC 7.5).
        Shift => "shift",
        /// Register an expected bank transfer (SPEC 7.7).
        TransferRegister => "transfer_register",
        /// Cancel the registration of a transfer.
        TransferCancel => "transfer_cancel",
    }
);

text_enum!(
    /// How a transaction was paid (SPEC 7.7).
    Channel, "channel" {
        /// A card tapped on the terminal.
        Card => "card",
        /// A bank transfer to the session's collection account.
        Account => "account",
    }
);

/// The online/offline decision of a payment and why it was taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub mode: DecisionMode,
    pub reason: String,
}

impl Decision {
    pub fn new(mode: DecisionMode, reason: impl Into<String>) -> Result<Self, StoreError> {
        let reason = reason.into();
        check_text("decision reason", &reason, 256)?;
        Ok(Decision { mode, reason })
    }
}

/// What the store keeps of a card: never the PAN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Card {
    token: String,
    last4: String,
    brand: CardBrand,
    entry_mode: EntryMode,
}

impl Card {
    /// `token`: 32–128 lowercase hex digits (a keyed hash of the PAN; a PAN,
    /// at most 19 digits, can never pass). `last4`: four digits.
    pub fn new(
        token: impl Into<String>,
        last4: impl Into<String>,
        brand: CardBrand,
        entry_mode: EntryMode,
    ) -> Result<Self, StoreError> {
        let (token, last4) = (token.into(), last4.into());
        let hex = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
        if !(32..=128).contains(&token.len()) || !token.bytes().all(hex) {
            return Err(StoreError::InvalidInput(
                "card token must be 32 to 128 lowercase hex digits".into(),
            ));
        }
        if last4.len() != 4 || !last4.bytes().all(|b| b.is_ascii_digit()) {
            return Err(StoreError::InvalidInput(
                "card last4 must be four digits".into(),
            ));
        }
        Ok(Card {
            token,
            last4,
            brand,
            entry_mode,
        })
    }

    pub fn token(&self) -> &str {
        &self.token
    }
    pub fn last4(&self) -> &str {
        &self.last4
    }
    pub fn brand(&self) -> CardBrand {
        self.brand
    }
    pub fn entry_mode(&self) -> EntryMode {
        self.entry_mode
    }
}

/// A transaction as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transaction {
    pub reference: Reference,
    pub payment_id: Option<PaymentId>,
    pub kind: TxKind,
    pub amount: Money,
    pub currency: Currency,
    pub state: TxState,
    pub card: Option<Card>,
    pub operator_id: Option<String>,
    pub captured_at: Option<UnixMillis>,
    pub decision: Option<Decision>,
    pub backend_transaction_id: Option<String>,
    pub auth_code: Option<String>,
    pub decline_reason: Option<String>,
    /// The sale a refund refers to; `None` for sales.
    pub original_reference: Option<Reference>,
    /// Part of `amount`.
    pub tip_amount: Option<Money>,
    /// The cart of a catalog sale (empty otherwise).
    pub items: Vec<LineItem>,
    /// The shift it was taken in (SPEC 7.5).
    pub shift_no: u64,
    /// The card application (EMV AID, uppercase hex, and label), for the
    /// receipt.
    pub card_aid: Option<String>,
    pub card_label: Option<String>,
    /// Card, or a bank transfer to the session's account (no card).
    pub channel: Channel,
    /// Who paid by transfer, as the bank reported it.
    pub payer_name: Option<String>,
    pub payer_bank: Option<String>,
    /// The transfer payment code shown to the customer.
    pub transfer_code: Option<String>,
    pub created_at: UnixMillis,
    pub updated_at: UnixMillis,
}

/// One cart line of a catalog sale, stored as the wire carries it (JSON
/// in `items`).
pub use proto::wire::TxItem as LineItem;

/// A shift's figures: the current one (X report) or a closed one (Z).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShiftReport {
    pub shift_no: u64,
    pub opened_at: Option<UnixMillis>,
    /// Set once the shift is closed.
    pub closed_at: Option<UnixMillis>,
    /// The operator who closed it.
    pub closed_by: Option<String>,
    pub totals: proto::wire::ShiftTotals,
}

/// A transaction to create. It starts in `state` (usually `Pending`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTransaction {
    pub reference: Reference,
    pub payment_id: Option<PaymentId>,
    pub kind: TxKind,
    pub amount: Money,
    pub currency: Currency,
    pub state: TxState,
    pub card: Option<Card>,
    pub operator_id: Option<String>,
    pub captured_at: Option<UnixMillis>,
    pub decision: Option<Decision>,
    /// Required for refunds, refused for sales.
    pub original_reference: Option<Reference>,
    /// Part of `amount`; only on sales.
    pub tip_amount: Option<Money>,
    /// The cart of a catalog sale (empty otherwise); only on sales.
    pub items: Vec<LineItem>,
}

impl NewTransaction {
    /// A pending sale with nothing else known yet.
    pub fn sale(reference: Reference, amount: Money) -> Self {
        NewTransaction {
            reference,
            payment_id: None,
            kind: TxKind::Sale,
            amount,
            currency: Currency::Ngn,
            state: TxState::Pending,
            card: None,
            operator_id: None,
            captured_at: None,
            decision: None,
            original_reference: None,
            tip_amount: None,
            items: Vec::new(),
        }
    }

    /// A pending refund of part or all of `original`.
    pub fn refund(reference: Reference, amount: Money, original: Reference) -> Self {
        NewTransaction {
            kind: TxKind::Refund,
            original_reference: Some(original),
            ..NewTransaction::sale(reference, amount)
        }
    }
}

/// Fields to change on an existing transaction; `None` leaves a field alone.
/// A field already set to a different value cannot be overwritten, except
/// `state` (within [`TxState::can_become`]) and `decline_reason`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TxUpdate {
    pub state: Option<TxState>,
    pub payment_id: Option<PaymentId>,
    pub card: Option<Card>,
    pub captured_at: Option<UnixMillis>,
    pub decision: Option<Decision>,
    pub backend_transaction_id: Option<String>,
    pub auth_code: Option<String>,
    pub decline_reason: Option<String>,
    /// The card application (set once, with the card).
    pub card_aid: Option<String>,
    pub card_label: Option<String>,
    /// `Account`: paid by transfer (only on a row without a card; set
    /// once).
    pub channel: Option<Channel>,
    /// Who paid by transfer (set once, at most 140 characters each).
    pub payer_name: Option<String>,
    pub payer_bank: Option<String>,
    /// The transfer payment code, six digits (set once).
    pub transfer_code: Option<String>,
}

/// The transaction part of a [`Change`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxWrite {
    Insert(NewTransaction),
    Update {
        reference: Reference,
        update: TxUpdate,
    },
}

/// How durable a write is when the call returns (docs/store.md,
/// "Durability").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// `synchronous=FULL`: the WAL is fsynced before the call returns. The
    /// commit and every commit before it survive a power cut.
    #[default]
    Full,
    /// `synchronous=NORMAL`: atomic, ordered and visible at once, but not
    /// fsynced; it becomes durable with the next `Full` commit or WAL
    /// checkpoint (the WAL is a log: syncing it syncs everything before).
    /// A power cut may lose it, never half of it and never without losing
    /// every later commit too. For what costs nothing to lose: claims,
    /// acknowledgements of delivered items, schedules, caches.
    Relaxed,
}

/// One atomic write: an optional transaction insert/update, its audit row,
/// and the outbox items it produces, committed together or not at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub now: UnixMillis,
    pub write: Option<TxWrite>,
    pub enqueue: Vec<NewOutboxItem>,
    /// `Full` unless the caller knows losing this change costs nothing.
    pub durability: Durability,
}

impl Change {
    pub fn insert(now: UnixMillis, tx: NewTransaction) -> Self {
        Change {
            now,
            write: Some(TxWrite::Insert(tx)),
            enqueue: Vec::new(),
            durability: Durability::Full,
        }
    }

    pub fn update(now: UnixMillis, reference: Reference, update: TxUpdate) -> Self {
        Change {
            now,
            write: Some(TxWrite::Update { reference, update }),
            enqueue: Vec::new(),
            durability: Durability::Full,
        }
    }

    /// Only outbox items (e.g. a command acknowledgement with no transaction).
    pub fn enqueue_only(now: UnixMillis, items: Vec<NewOutboxItem>) -> Self {
        Change {
            now,
            write: None,
            enqueue: items,
            durability: Durability::Full,
        }
    }

    /// The same change, committed with `durability`.
    pub fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// Adds an outbox item to the same commit.
    pub fn with(mut self, item: NewOutboxItem) -> Self {
        self.enqueue.push(item);
        self
    }
}

/// Id of an outbox item; increases with creation order and is never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OutboxId(pub i64);

impl fmt::Display for OutboxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Something to send to a backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOutboxItem {
    pub kind: OutboxKind,
    pub payload: serde_json::Value,
    /// The transaction it is about; orders items per transaction.
    pub reference: Option<Reference>,
    /// The partner payment it is about; orders items per payment.
    pub payment_id: Option<PaymentId>,
    /// Not to be sent before this time; `None` means as soon as possible.
    pub not_before: Option<UnixMillis>,
}

impl NewOutboxItem {
    pub fn new(kind: OutboxKind, payload: serde_json::Value) -> Self {
        NewOutboxItem {
            kind,
            payload,
            reference: None,
            payment_id: None,
            not_before: None,
        }
    }

    pub fn for_reference(mut self, reference: Reference) -> Self {
        self.reference = Some(reference);
        self
    }

    pub fn for_payment(mut self, payment_id: PaymentId) -> Self {
        self.payment_id = Some(payment_id);
        self
    }
}

/// An outbox item as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxItem {
    pub id: OutboxId,
    pub kind: OutboxKind,
    pub payload: serde_json::Value,
    pub reference: Option<Reference>,
    pub payment_id: Option<PaymentId>,
    /// How many times it was claimed for sending.
    pub attempts: u32,
    pub next_attempt_at: UnixMillis,
    pub in_flight: bool,
    pub last_error: Option<String>,
    pub parked: bool,
    pub created_at: UnixMillis,
}

/// Outbox counters for the idle screen and the heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OutboxStats {
    /// Items not yet acknowledged (waiting, in flight or parked).
    pub queued: u64,
    pub parked: u64,
    pub in_flight: u64,
    pub oldest_created_at: Option<UnixMillis>,
}

/// Offline approvals the backend has not yet acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OfflineExposure {
    pub count: u64,
    pub total: proto::Total,
    pub oldest_created_at: Option<UnixMillis>,
    /// `now - oldest_created_at`, zero when there is none.
    pub oldest_age: Duration,
}

/// A count and a sum in minor units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CountTotal {
    pub count: u64,
    pub total: proto::Total,
}

/// Approved (online or offline) sales and refunds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ApprovedTotals {
    pub sales: CountTotal,
    pub refunds: CountTotal,
}

/// Report totals, each list sorted by its key.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Totals {
    pub by_state: Vec<(TxState, CountTotal)>,
    pub by_kind: Vec<(TxKind, CountTotal)>,
    /// `None` groups transactions without an operator.
    pub by_operator: Vec<(Option<String>, CountTotal)>,
    /// Card or bank transfer (SPEC 7.7).
    pub by_channel: Vec<(Channel, CountTotal)>,
}

/// A page of the transaction list, oldest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub offset: u64,
    pub limit: u32,
}

/// Exponential backoff for outbox retries.
#[derive(Clone)]
pub struct RetryPolicy {
    /// Delay after the first failed attempt.
    pub base: Duration,
    /// Upper bound of the backoff (Retry-After may exceed it).
    pub cap: Duration,
    pub jitter: Jitter,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            base: Duration::from_secs(2),
            cap: Duration::from_secs(300),
            jitter: Jitter::Equal,
        }
    }
}

impl fmt::Debug for RetryPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryPolicy")
            .field("base", &self.base)
            .field("cap", &self.cap)
            .field("jitter", &self.jitter)
            .finish()
    }
}

/// How the backoff delay is randomised.
#[derive(Clone)]
pub enum Jitter {
    /// Exactly the exponential delay (deterministic).
    None,
    /// Uniform in `[delay/2, delay]` ("equal jitter").
    Equal,
    /// Any function of the exponential delay (tests inject one).
    Custom(std::sync::Arc<dyn Fn(Duration) -> Duration + Send + Sync>),
}

impl fmt::Debug for Jitter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Jitter::None => f.write_str("None"),
            Jitter::Equal => f.write_str("Equal"),
            Jitter::Custom(_) => f.write_str("Custom(..)"),
        }
    }
}

impl RetryPolicy {
    /// The delay before the next attempt after `attempts` failed attempts
    /// (`attempts >= 1`), honouring `retry_after` when it is longer.
    pub fn delay(&self, attempts: u32, retry_after: Option<Duration>) -> Duration {
        let exp = attempts.saturating_sub(1).min(31);
        let backoff = self
            .base
            .checked_mul(1u32 << exp)
            .unwrap_or(self.cap)
            .min(self.cap);
        let jittered = match &self.jitter {
            Jitter::None => backoff,
            Jitter::Equal => {
                use rand::Rng;
                let half = backoff / 2;
                let spread = u64::try_from(half.as_millis()).unwrap_or(u64::MAX);
                half + Duration::from_millis(rand::thread_rng().gen_range(0..=spread))
            }
            Jitter::Custom(f) => f(backoff),
        };
        match retry_after {
            Some(ra) => jittered.max(ra),
            None => jittered,
        }
    }
}

/// Checks free text stored beside a transaction: bounded length, no control
/// characters.
pub(crate) fn check_text(what: &str, s: &str, max: usize) -> Result<(), StoreError> {
    if s.len() > max {
        return Err(StoreError::InvalidInput(format!(
            "{what} is longer than {max} bytes"
        )));
    }
    if s.chars().any(char::is_control) {
        return Err(StoreError::InvalidInput(format!(
            "{what} contains control characters"
        )));
    }
    Ok(())
}

pub(crate) fn truncate(s: &str, max_chars: usize) -> String {
    s.chars().take(max_chars).collect()
}
