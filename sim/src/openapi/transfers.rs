//! The operations of SPEC 7.7 (pay by bank transfer): the terminal's
//! registrations, the sandbox bank's credit, and the collection account's
//! balance and statement. Listed in the document's `paths(...)` as
//! `transfers::…`.

use proto::wire::{
    AccountBalance, Envelope, ExpectedTransfer, Page, SandboxTransfer, StatementEntry,
    StatementFilter, TransferRegistration,
};
use proto::{Reference, SessionId, TerminalId};

use super::{BodyErrors, ErrorEnvelope, NotFound, OrgErrors, PageParams, SignedErrors};

#[utoipa::path(post, path = "/v1/terminals/{tid}/transfers", tag = "terminal",
    security(("sig_api_key" = [], "sig_tenant" = [], "sig_merchant" = [], "sig_nonce" = [], "sig_timestamp" = [], "sig_signature" = [])),
    params(("tid" = TerminalId, Path, description = "terminal id")),
    request_body = TransferRegistration,
    responses(SignedErrors, NotFound, BodyErrors,
        (status = 201, description = "the expected transfer, `open`, with the session's collection account", body = Envelope<ExpectedTransfer>),
        (status = 200, description = "a replay (`idempotent-replayed: true`: same reference, amount and code): the transfer as it stands now", body = Envelope<ExpectedTransfer>),
        (status = 409, description = "`idempotency_conflict` (the reference was registered with another amount or code, or is a card transaction), `code_in_use` (an open transfer of the session shows this code), `no_collection_account`, `session_closed`, `session_not_started`", body = ErrorEnvelope),
        (status = 422, description = "`reference_not_yours`, `expired` (`expires_at` not in the future), `invalid_operator_id`, `amount_*` (zero, over the per-payment maximum), `unsupported_currency`", body = ErrorEnvelope)))]
fn register_transfer() {}

#[utoipa::path(delete, path = "/v1/terminals/{tid}/transfers/{reference}", tag = "terminal",
    security(("sig_api_key" = [], "sig_tenant" = [], "sig_merchant" = [], "sig_nonce" = [], "sig_timestamp" = [], "sig_signature" = [])),
    params(("tid" = TerminalId, Path, description = "terminal id"), ("reference" = Reference, Path, description = "the terminal's reference")),
    responses(SignedErrors, NotFound,
        (status = 200, description = "`cancelled` (idempotent; `expired` when it had expired first); its code is free again", body = Envelope<ExpectedTransfer>),
        (status = 409, description = "`transfer_settled`: the money arrived, the payment is settled", body = ErrorEnvelope),
        (status = 422, description = "`reference_not_yours`", body = ErrorEnvelope)))]
fn cancel_transfer() {}

#[utoipa::path(post, path = "/v1/sandbox/transfers", tag = "sandbox", security(("org_key" = [])),
    request_body = SandboxTransfer,
    responses(OrgErrors, BodyErrors,
        (status = 201, description = "the credit's statement entry: `matched` (it settled a terminal's transfer, which gets `transfer_received`), `partial` (added to an open transfer) or `unmatched` (kept on the account)", body = Envelope<StatementEntry>),
        (status = 404, description = "`account_not_found`: no session has this collection account", body = ErrorEnvelope),
        (status = 422, description = "`amount_*` (zero, over the maximum), `unsupported_currency`, `invalid_narration` (over 140 characters), `invalid_payer_name`, `invalid_payer_bank`, `invalid_payer_account_number` (1-140 characters)", body = ErrorEnvelope)))]
fn sandbox_transfer() {}

#[utoipa::path(get, path = "/v1/sessions/{id}/account/balance", tag = "sessions", security(("org_key" = [])),
    params(("id" = SessionId, Path, description = "session id")),
    responses(OrgErrors, NotFound,
        (status = 200, description = "`collected` (every credit: the last statement entry's `new_balance`), `settled` (credits of settled transfers, partial ones included), `unmatched`", body = Envelope<AccountBalance>),
        (status = 409, description = "`no_collection_account`", body = ErrorEnvelope)))]
fn account_balance() {}

#[utoipa::path(post, path = "/v1/sessions/{id}/account/statement", tag = "sessions", security(("org_key" = [])),
    params(("id" = SessionId, Path, description = "session id"), PageParams),
    request_body(content = StatementFilter, description = "may be empty or `{}`: every credit; `reference` matches the credit's own reference or the transfer it went to"),
    responses(OrgErrors, NotFound,
        (status = 200, description = "a page of the account's credits, oldest first", body = Envelope<Page<StatementEntry>>),
        (status = 400, description = "`malformed_json`, `invalid_currency`, `invalid_status`, `invalid_reference` (over 64 characters): the message names the field and what it takes; `invalid_path`, `invalid_query`, `invalid_size` for malformed parameters", body = ErrorEnvelope),
        (status = 409, description = "`no_collection_account`", body = ErrorEnvelope),
        (status = 413, description = "`payload_too_large`", body = ErrorEnvelope)))]
fn account_statement() {}
