//! The core's vocabulary: what goes in ([`Input`]), what comes out
//! ([`Output`]), what is persisted ([`Change`]) and what is shown
//! ([`ScreenModel`]). Everything here is already validated by the shell.

use std::fmt;

pub use proto::domain::{
    AckReason, AckStatus, CardBrand, DecisionMode, EntryMode, OfflinePolicy, PaymentEventStatus,
    SessionStatus, TxKind, TxState,
};
/// What the reader tells about a card, after tokenization by the shell
/// (token: HMAC of the PAN under the per-device key; the core never sees a
/// PAN), exactly as the wire carries it.
pub use proto::wire::{Card, CardToken, Last4};
/// Pay by bank transfer (SPEC 7.7): the session's account, the payment
/// code, the payer and the channel a transaction was paid through.
pub use proto::wire::{Channel, CollectionAccount, Payer, TransferCode};
use proto::{Currency, Money, PaymentId, Reference, Total};

use super::cashier::{
    Answer, CardApp, CatalogItem, DeskConfig, LineItem, MenuEntry, Operator, OperatorTag, PrintJob,
    Query, ShiftReport, TipOption,
};
use super::limits::{OfflineLimits, OfflineRefusal};
use super::time::UnixMillis;
pub use super::transfer::{TransferReceivedCommand, TransferRegistration, TransferStatus};

/// The id of a command received on the command stream (opaque, from the
/// backend, validated by the shell).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CommandId(pub String);

impl fmt::Display for CommandId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The online/offline decision and why it was taken.
///
/// The decision is taken once per payment, at the tap, and stored then
/// ([`TxUpdate::decision`]): `Online`, `OfflineLinkDown` or a refusal. The
/// two `*AfterUnknown` variants are the fallback when an online
/// authorization's outcome is unknown: they are reported, and stored as the
/// transaction's `reason`, never as a second decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The link was up at the tap: authorize online.
    Online,
    /// The link was known down at the tap and offline is allowed: approved
    /// offline within limits.
    OfflineLinkDown,
    /// Online authorization outcome unknown; within limits and
    /// `prefer_online`: approved offline under the same reference.
    OfflineAfterUnknown,
    /// Online authorization outcome unknown and offline not allowed:
    /// declined on screen, reversal queued.
    ReverseAfterUnknown,
    /// `require_online` and the link was down: refused, nothing sent.
    RefusedOnlineRequired,
    /// Offline and beyond the offline limits: refused, nothing sent.
    RefusedOfflineLimit(OfflineRefusal),
    /// Paid by bank transfer to the session's account (SPEC 7.7): settled
    /// by the backend, online by nature.
    Transfer,
}

impl Decision {
    /// Online or offline.
    pub fn mode(&self) -> DecisionMode {
        match self {
            Decision::Online | Decision::ReverseAfterUnknown | Decision::Transfer => {
                DecisionMode::Online
            }
            Decision::OfflineLinkDown
            | Decision::OfflineAfterUnknown
            | Decision::RefusedOnlineRequired
            | Decision::RefusedOfflineLimit(_) => DecisionMode::Offline,
        }
    }

    /// Why: a stable snake_case code (the `reason` half of a stored decision).
    pub fn code(&self) -> &'static str {
        match self {
            Decision::Online => "online",
            Decision::OfflineLinkDown => "offline_link_down",
            Decision::OfflineAfterUnknown => "offline_after_unknown",
            Decision::ReverseAfterUnknown => "reverse_after_unknown",
            Decision::RefusedOnlineRequired => "refused_online_required",
            Decision::RefusedOfflineLimit(r) => r.code(),
            Decision::Transfer => "transfer",
        }
    }
}

/// End-of-day totals for the session-closed screen (computed by the shell
/// from the store).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SessionTotals {
    pub sales_count: u32,
    pub sales_total: Total,
    pub refunds_count: u32,
    pub refunds_total: Total,
}

// ---------------------------------------------------------------- inputs ---

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaleCommand {
    /// Minted by the shell from the store's durable counter
    /// (`Reference::for_sequence`) before it hands the command over; left
    /// unused (a gap in the sequence) when the command is rejected.
    pub reference: Reference,
    pub command_id: CommandId,
    pub payment_id: PaymentId,
    pub amount: Money,
    pub partner_reference: Option<String>,
    /// `expires_at` converted to wall-clock milliseconds by the shell.
    pub expires_at: Option<UnixMillis>,
    pub offline_policy: OfflinePolicy,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AbortCommand {
    pub command_id: CommandId,
    pub payment_id: PaymentId,
}

/// What the store knows of the sale a refund points at; looked up by the
/// shell with `original_reference` (None when the store has no such
/// transaction).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginalSale {
    pub reference: Reference,
    pub kind: TxKind,
    pub state: TxState,
    pub amount: Money,
    /// Amount minus every refund not declined/aborted/failed so far.
    pub refundable_left: Money,
    pub card_token: CardToken,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundCommand {
    /// The refund's own reference, minted like [`SaleCommand::reference`].
    pub reference: Reference,
    pub command_id: CommandId,
    pub payment_id: PaymentId,
    pub original_reference: Reference,
    pub amount: Money,
    pub original: Option<OriginalSale>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionClosedCommand {
    pub command_id: CommandId,
    pub totals: Option<SessionTotals>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Sale(SaleCommand),
    Abort(AbortCommand),
    Refund(RefundCommand),
    SessionClosed(SessionClosedCommand),
    TransferReceived(TransferReceivedCommand),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Button {
    Cancel,
    Ok,
    Back,
    Menu,
    Up,
    Down,
    Digit(u8),
}

/// The answer to an [`Output::Authorize`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthResult {
    Approved {
        auth_code: Option<String>,
        transaction_id: String,
    },
    Declined {
        reason: String,
    },
    /// The backend refused the request itself (a 4xx: credentials, clock,
    /// session, a settled payment...): nothing was charged, and it is not
    /// the bank's decline (SPEC 5.14). `code` is the refusal's code.
    Refused {
        code: String,
    },
    /// Timeout, connection error, 5xx: the outcome is unknown.
    Unknown,
}

/// The backend's answer to an offline transaction forwarded by the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForwardOutcome {
    Approved {
        transaction_id: String,
        auth_code: Option<String>,
    },
    Declined {
        reason: String,
    },
}

/// Identifies one [`Output::Persist`] so the shell can confirm it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OpId(pub u64);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Command(Command),
    /// A card was read: what the wire carries, and its EMV application for
    /// the receipt.
    CardRead {
        card: Card,
        app: CardApp,
    },
    CardError {
        reason: String,
    },
    Button(Button),
    /// The change of this op is durably committed.
    Persisted {
        op_id: OpId,
    },
    /// The change of this op could not be committed (disk full, corrupt).
    PersistFailed {
        op_id: OpId,
        error: String,
    },
    AuthAnswer {
        reference: Reference,
        result: AuthResult,
        /// The backend's digital receipt for it (SPEC 7.4), when it said.
        receipt_url: Option<String>,
    },
    Forwarded {
        reference: Reference,
        outcome: ForwardOutcome,
    },
    /// The backend acknowledged the reversal of this reference.
    Reversed {
        reference: Reference,
    },
    LinkChanged {
        online: bool,
    },
    SessionStatus {
        status: SessionStatus,
        totals: Option<SessionTotals>,
    },
    /// Limits from the heartbeat (None: back to the configured ones).
    OfflineLimits(Option<OfflineLimits>),
    /// Outbox items not yet acknowledged (`queued`) and, among them, those
    /// parked until an operator acts (`parked`), for the screen.
    QueueDepth {
        queued: u32,
        parked: u32,
    },
    /// The session's operators (empty: nobody logs in), from the backend
    /// or the ledger's cache.
    Operators(Vec<Operator>),
    /// The session configuration to apply between payments.
    DeskConfig(DeskConfig),
    /// The quick-sale catalog, in catalog order.
    Catalog(Vec<CatalogItem>),
    /// The shell's answer to the last [`Output::Query`].
    Answer(Answer),
    /// The receipt printer's problem (None: it prints again), for the
    /// idle screen.
    PrinterProblem(Option<String>),
    /// The agent is stopping: a payment still waiting for its card is
    /// cancelled, what the cashier keyed is dropped, no new payment starts.
    Stopping,
    /// An upgrade is about to stop the agent (`pos-agent wait-idle`):
    /// while held (`true`), no new payment starts (sales and refunds are
    /// acked `rejected/busy`, the keypad says the terminal is updating);
    /// the payment in progress finishes as usual. `false` resumes intake.
    HoldIntake(bool),
    /// The session's collection account (SPEC 7.7), from the cached
    /// session; `None`: transfer is not offered for this event.
    CollectionAccount(Option<CollectionAccount>),
    /// The backend refused the transfer registration of `reference`
    /// (`code_in_use`, `no_collection_account`, `session_closed`...): the
    /// item is parked, the transfer screen says it is unavailable.
    TransferRefused {
        reference: Reference,
        code: String,
    },
    /// A deadline from `poll_timeout` has passed (any input also fires due
    /// timers first; this one only wakes the core).
    TimerDue,
}

// --------------------------------------------------------------- outputs ---

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandAck {
    pub command_id: CommandId,
    pub status: AckStatus,
    pub reason: Option<AckReason>,
}

/// The body of a `POST /v1/terminals/:tid/transactions`, minus currency
/// (always NGN) and the terminal id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submission {
    pub reference: Reference,
    pub payment_id: Option<PaymentId>,
    pub kind: TxKind,
    pub amount: Money,
    pub card: Card,
    pub captured_at: UnixMillis,
    /// `true`: already approved offline, the backend records it.
    pub offline: bool,
    pub original_reference: Option<Reference>,
    pub operator_id: Option<String>,
    /// Part of `amount`.
    pub tip_amount: Option<Money>,
    /// The cart of a catalog sale (empty otherwise).
    pub items: Vec<LineItem>,
}

/// Something the backend must learn, enqueued in the same commit as the
/// state change it belongs to; the outbox forwards items in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutboxItem {
    Ack(CommandAck),
    PaymentEvent {
        payment_id: PaymentId,
        status: PaymentEventStatus,
        reason: Option<String>,
        at: UnixMillis,
    },
    /// Forward an offline-approved transaction.
    Submit(Submission),
    Reversal {
        reference: Reference,
    },
    /// Register the transfer payment the terminal waits for.
    TransferRegister(TransferRegistration),
    /// Cancel the registration of `reference` (cancel, timeout, back to
    /// the card, session closed, restart).
    TransferCancel {
        reference: Reference,
    },
}

/// A new transaction row (always `pending`, no card yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTx {
    pub reference: Reference,
    pub kind: TxKind,
    pub amount: Money,
    pub currency: Currency,
    pub payment_id: Option<PaymentId>,
    pub command_id: Option<CommandId>,
    pub partner_reference: Option<String>,
    pub original_reference: Option<Reference>,
    pub offline_policy: OfflinePolicy,
    pub state: TxState,
    /// The operator logged in when the payment started.
    pub operator_id: Option<String>,
    /// Part of `amount`.
    pub tip_amount: Option<Money>,
    /// The cart of a catalog sale (empty otherwise).
    pub items: Vec<LineItem>,
}

/// An update of an existing transaction row; `None` fields are unchanged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxUpdate {
    pub reference: Reference,
    pub state: TxState,
    pub card: Option<Card>,
    /// With the card: its EMV application (receipts only).
    pub card_app: Option<CardApp>,
    pub captured_at: Option<UnixMillis>,
    /// Set once, at the tap (see [`Decision`]).
    pub decision: Option<Decision>,
    pub auth_code: Option<String>,
    pub transaction_id: Option<String>,
    /// Why the transaction ended this way: decline or failure reason code,
    /// or for an offline approval after an unknown online outcome,
    /// `offline_after_unknown`.
    pub reason: Option<String>,
    /// How it was paid, once known (`account`: by bank transfer).
    pub channel: Option<Channel>,
    /// Who paid by transfer, as the bank reported it.
    pub payer: Option<Payer>,
    /// The transfer payment code shown to the customer.
    pub transfer_code: Option<TransferCode>,
}

impl TxUpdate {
    pub fn new(reference: Reference, state: TxState) -> TxUpdate {
        TxUpdate {
            reference,
            state,
            card: None,
            card_app: None,
            captured_at: None,
            decision: None,
            auth_code: None,
            transaction_id: None,
            reason: None,
            channel: None,
            payer: None,
            transfer_code: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxWrite {
    Insert(NewTx),
    Update(TxUpdate),
}

impl TxWrite {
    pub fn reference(&self) -> &Reference {
        match self {
            TxWrite::Insert(n) => &n.reference,
            TxWrite::Update(u) => &u.reference,
        }
    }

    pub fn state(&self) -> TxState {
        match self {
            TxWrite::Insert(n) => n.state,
            TxWrite::Update(u) => u.state,
        }
    }
}

/// How durable a [`Change`] must be when the shell reports it persisted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// On disk (fsynced) before `Input::Persisted`: whatever is shown or
    /// acknowledged after it survives a power cut.
    Full,
    /// Committed atomically and in order, made durable by the next `Full`
    /// change (or WAL checkpoint); a power cut may lose it, and that must
    /// cost nothing: the change carries nothing anyone has been shown or
    /// told, or it is redone (a forward's answer comes again when the
    /// forward is resent under the same reference).
    Relaxed,
}

/// One atomic commit: the transaction write and the outbox items to
/// enqueue with it. Either all of it is committed or none of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Wall-clock time of the change (`created_at`/`updated_at`).
    pub at: UnixMillis,
    pub tx: Option<TxWrite>,
    pub outbox: Vec<OutboxItem>,
    pub durability: Durability,
}

/// An online authorization request (`offline: false`); the shell sends it
/// with the auth timeout and answers with [`Input::AuthAnswer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthRequest {
    pub submission: Submission,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Beep {
    Read,
    Success,
    Failure,
}

/// Log-worthy events (never card data beyond last4/brand, never secrets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    CommandRejected {
        command_id: CommandId,
        reason: AckReason,
    },
    PaymentStarted {
        reference: Reference,
        kind: TxKind,
        amount: Money,
    },
    Decided {
        reference: Reference,
        decision: Decision,
    },
    Finished {
        reference: Reference,
        state: TxState,
    },
    AbortTooLate {
        reference: Reference,
    },
    CardReadFailed {
        reason: String,
    },
    /// The shell's auth timeout did not answer; the core's guard did.
    AuthGuardExpired {
        reference: Reference,
    },
    PersistFailed {
        op_id: OpId,
        reference: Option<Reference>,
        error: String,
    },
    OfflineDeclined {
        reference: Reference,
        reason: String,
    },
    LoggedIn {
        operator_id: String,
    },
    LoggedOut {
        operator_id: String,
        why: &'static str,
    },
    WrongPin {
        attempts: u8,
    },
    /// Too many wrong PINs: the login is locked for a while.
    LoginLocked,
    /// The shell could not answer a query (nothing was changed).
    QueryFailed {
        error: String,
    },
    /// A transfer credit arrived for a payment still waiting for the rest.
    TransferPartial {
        reference: Reference,
        received: Money,
        amount: Money,
    },
    /// A transfer credit for no transfer this terminal waits for (unknown,
    /// finished, cancelled or another payment): acknowledged, nothing
    /// changed.
    TransferIgnored {
        reference: Reference,
        why: &'static str,
    },
    /// The backend refused a transfer registration.
    TransferRefused {
        reference: Reference,
        code: String,
    },
    /// An input that makes no sense in the current state; ignored.
    Ignored {
        input: &'static str,
        why: &'static str,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Persist {
    pub op_id: OpId,
    pub change: Change,
}

/// What the core asks the shell to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    Render(ScreenModel),
    /// Commit `change` atomically, then answer `Persisted`/`PersistFailed`.
    Persist(Persist),
    Authorize(AuthRequest),
    /// An ack sent straight away (rejections, abort receipts): no state
    /// depends on it. Accepted sale/refund acks go through the outbox.
    Ack(CommandAck),
    /// Best-effort immediate reversal when the state that would queue one
    /// could not be stored (storage failure after an authorization).
    ReverseNow {
        reference: Reference,
    },
    StartReader {
        timeout_ms: u64,
    },
    StopReader,
    Beep(Beep),
    Report(Report),
    /// Ask the shell about the ledger; it answers with [`Input::Answer`].
    Query(Query),
    /// Print a receipt or a report (no answer: printing never holds up the
    /// core).
    Print(PrintJob),
}

// --------------------------------------------------------------- screens ---

/// What an amount being keyed is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryPurpose {
    Sale,
    Refund,
}

/// The screens of SPEC section 6, with what each shows. On payment
/// screens `amount` is what is charged; `tip` is part of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Screen {
    Booting,
    Idle {
        event_name: String,
        terminal_label: String,
    },
    TapCard {
        amount: Money,
        tip: Option<Money>,
        message: Option<String>,
    },
    Processing {
        kind: TxKind,
        amount: Money,
        tip: Option<Money>,
    },
    Approved {
        kind: TxKind,
        amount: Money,
        tip: Option<Money>,
        reference: Reference,
        /// Approved without the backend.
        offline_approval: bool,
        message: Option<String>,
        /// The digital receipt, shown as a QR code (SPEC 7.4).
        receipt_url: Option<String>,
        /// `ok` prints the customer's receipt ("Print receipt?").
        print_prompt: bool,
        /// Paid by bank transfer (SPEC 7.7): "Transfer received".
        transfer: bool,
    },
    Declined {
        kind: TxKind,
        amount: Money,
        tip: Option<Money>,
        reference: Reference,
        reason: DeclineReason,
        receipt_url: Option<String>,
    },
    Cancelled {
        amount: Money,
        reason: CancelReason,
    },
    RefundTap {
        amount: Money,
        message: Option<String>,
    },
    /// Not selling: the session is pending, closed or cancelled.
    SessionClosed {
        totals: Option<SessionTotals>,
        status: SessionStatus,
    },
    Error {
        message: String,
    },
    /// The cashier keys an amount (SPEC 7.1).
    AmountEntry {
        purpose: EntryPurpose,
        amount: Money,
        message: Option<String>,
    },
    /// The customer picks a tip (SPEC 7.3); `amount` is before the tip;
    /// `custom` is the tip being keyed.
    Tip {
        amount: Money,
        choices: Vec<TipOption>,
        custom: Option<Money>,
        message: Option<String>,
    },
    /// PIN entry (SPEC 7.2): only the number of digits is shown.
    Login {
        pin_len: u8,
        message: Option<String>,
    },
    /// Too many wrong PINs.
    Locked {
        seconds: u32,
    },
    /// The menu, or a list to pick from (the refund's sale).
    Menu {
        title: String,
        entries: Vec<MenuEntry>,
        selected: Option<usize>,
        message: Option<String>,
    },
    /// The quick-sale catalog with the cart (`qty[i]` of `items[i]`).
    Catalog {
        items: Vec<CatalogItem>,
        qty: Vec<u32>,
        first: usize,
        keyed: Option<u32>,
        cart_total: Money,
        cart_count: u32,
        message: Option<String>,
    },
    /// Pay by bank transfer (SPEC 7.7): the account to pay into, the
    /// amount, the payment code (once the registration is committed) and
    /// what has arrived so far.
    Transfer {
        amount: Money,
        tip: Option<Money>,
        account: Option<CollectionAccount>,
        code: Option<TransferCode>,
        received: Money,
        status: TransferStatus,
    },
    /// An X or Z report; `names` are the operators' names by id, as far
    /// as the terminal knows them.
    Report {
        report: ShiftReport,
        names: Vec<(String, String)>,
    },
}

impl Screen {
    /// The name used by the virtual device's `GET /screen`.
    pub fn name(&self) -> &'static str {
        match self {
            Screen::Booting => "booting",
            Screen::Idle { .. } => "idle",
            Screen::TapCard { .. } => "tap_card",
            Screen::Processing { .. } => "processing",
            Screen::Approved { .. } => "approved",
            Screen::Declined { .. } => "declined",
            Screen::Cancelled { .. } => "cancelled",
            Screen::RefundTap { .. } => "refund_tap",
            Screen::SessionClosed { .. } => "session_closed",
            Screen::Error { .. } => "error",
            Screen::AmountEntry { .. } => "amount_entry",
            Screen::Tip { .. } => "tip",
            Screen::Login { .. } => "login",
            Screen::Locked { .. } => "locked",
            Screen::Menu { .. } => "menu",
            Screen::Catalog { .. } => "catalog",
            Screen::Report { .. } => "report",
            Screen::Transfer { .. } => "transfer",
        }
    }

    pub fn amount(&self) -> Option<Money> {
        match self {
            Screen::TapCard { amount, .. }
            | Screen::Processing { amount, .. }
            | Screen::Approved { amount, .. }
            | Screen::Declined { amount, .. }
            | Screen::Cancelled { amount, .. }
            | Screen::RefundTap { amount, .. }
            | Screen::AmountEntry { amount, .. }
            | Screen::Tip { amount, .. }
            | Screen::Transfer { amount, .. } => Some(*amount),
            Screen::Catalog { cart_total, .. } => Some(*cart_total),
            Screen::Booting
            | Screen::Idle { .. }
            | Screen::SessionClosed { .. }
            | Screen::Error { .. }
            | Screen::Login { .. }
            | Screen::Locked { .. }
            | Screen::Menu { .. }
            | Screen::Report { .. } => None,
        }
    }

    /// The core's words for the cashier, where the screen has any (also
    /// the `message` of the virtual device's `GET /screen`).
    pub fn message(&self) -> Option<String> {
        match self {
            Screen::Approved {
                message,
                print_prompt: true,
                ..
            } => Some(match message {
                Some(m) => format!("{m}. Print receipt? Press OK"),
                None => "Print receipt? Press OK".to_string(),
            }),
            Screen::TapCard { message, .. }
            | Screen::Approved { message, .. }
            | Screen::RefundTap { message, .. }
            | Screen::AmountEntry { message, .. }
            | Screen::Tip { message, .. }
            | Screen::Login { message, .. }
            | Screen::Menu { message, .. }
            | Screen::Catalog { message, .. } => message.clone(),
            Screen::Locked { seconds } => Some(format!(
                "Too many wrong PINs. Try again in {seconds} seconds"
            )),
            Screen::Declined { reason, .. } => Some(reason.message()),
            Screen::Cancelled { reason, .. } => Some(reason.message().to_string()),
            Screen::SessionClosed { status, .. } => Some(session_message(*status).to_string()),
            Screen::Error { message } => Some(message.clone()),
            Screen::Transfer {
                amount,
                received,
                status,
                ..
            } => Some(status.message(*received, *amount)),
            Screen::Booting
            | Screen::Idle { .. }
            | Screen::Processing { .. }
            | Screen::Report { .. } => None,
        }
    }
}

/// What the home screen says when the session is not active.
fn session_message(status: SessionStatus) -> &'static str {
    match status {
        SessionStatus::Pending => "Session not started yet",
        SessionStatus::Cancelled => "Session cancelled",
        SessionStatus::Active | SessionStatus::Closed => "Session closed",
    }
}

/// Why a payment ended declined, as its result screen says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeclineReason {
    /// The issuer: not enough money on the card.
    InsufficientFunds,
    /// The issuer declined the card.
    CardDeclined,
    /// Any other decline by the issuer or the backend.
    Bank,
    /// A refund tapped with another card than its sale's.
    CardMismatch,
    /// `require_online` and the link is down.
    OnlineRequired,
    /// Offline and beyond the offline limits.
    OfflineLimit(OfflineRefusal),
    /// The authorization's outcome is unknown and offline is not allowed:
    /// declined on screen, reversal queued.
    NetworkProblem,
    /// The backend refused the request for a terminal or account problem
    /// (credentials, clock, session...), not the issuer (SPEC 5.14).
    TerminalProblem,
}

impl DeclineReason {
    /// From the backend's `decline_reason` code.
    pub fn from_code(code: &str) -> DeclineReason {
        match code {
            "insufficient_funds" => DeclineReason::InsufficientFunds,
            "card_declined" => DeclineReason::CardDeclined,
            _ => DeclineReason::Bank,
        }
    }

    /// What the cashier reads.
    pub fn message(&self) -> String {
        match self {
            DeclineReason::InsufficientFunds => "Insufficient funds".to_string(),
            DeclineReason::CardDeclined => "Card declined".to_string(),
            DeclineReason::Bank => "Declined by the bank".to_string(),
            DeclineReason::CardMismatch => "Card does not match the sale. No charge".to_string(),
            DeclineReason::OnlineRequired => {
                "Online payment required, network unavailable. No charge".to_string()
            }
            DeclineReason::OfflineLimit(refusal) => refusal.message(),
            DeclineReason::NetworkProblem => "Network problem, no charge".to_string(),
            DeclineReason::TerminalProblem => {
                "Not approved: terminal problem. No charge".to_string()
            }
        }
    }
}

/// Why a payment ended before a card was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelReason {
    /// The cashier's cancel button or the partner's abort command.
    Cancelled,
    /// No card presented before the reader's timeout.
    TimedOut,
    /// The session closed while waiting for the card.
    SessionClosed,
}

impl CancelReason {
    /// What the cashier reads.
    pub fn message(self) -> &'static str {
        match self {
            CancelReason::Cancelled => "Payment cancelled",
            CancelReason::TimedOut => "Timed out, no card presented",
            CancelReason::SessionClosed => "Session closed, payment cancelled",
        }
    }
}

/// What the display shows: the screen plus the status line every screen
/// carries (`offline`: the terminal believes the backend unreachable;
/// `queued`: outbox items not yet acknowledged).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScreenModel {
    pub screen: Screen,
    pub currency: Currency,
    pub offline: bool,
    pub queued: u32,
    /// Outbox items parked until an operator acts (`pos-agent queue`).
    pub parked: u32,
    /// The logged-in operator.
    pub operator: Option<OperatorTag>,
    /// What is wrong with the receipt printer, if anything.
    pub printer_problem: Option<String>,
}
