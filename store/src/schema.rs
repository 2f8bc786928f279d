//! Versioned schema. Migrations are applied in order at open; never edit a
//! released step, append a new one.

use rusqlite_migration::{M, Migrations};

/// The schema steps, oldest first. `PRAGMA user_version` records how many ran.
pub const MIGRATIONS: &[M<'static>] = &[
    M::up(
        r#"
CREATE TABLE transactions (
    reference              TEXT PRIMARY KEY NOT NULL
                           CHECK (length(reference) BETWEEN 1 AND 64),
    payment_id             TEXT CHECK (payment_id IS NULL OR length(payment_id) BETWEEN 1 AND 64),
    kind                   TEXT NOT NULL CHECK (kind IN ('sale', 'refund')),
    amount                 INTEGER NOT NULL CHECK (amount > 0 AND amount <= 1000000000),
    currency               TEXT NOT NULL CHECK (currency = 'NGN'),
    state                  TEXT NOT NULL CHECK (state IN (
                               'pending', 'authorizing', 'approved', 'declined',
                               'offline_approved', 'offline_declined', 'aborted',
                               'timed_out', 'failed', 'reversal_pending', 'reversed')),
    card_token             TEXT,
    card_last4             TEXT CHECK (card_last4 IS NULL OR
                               (length(card_last4) = 4 AND card_last4 NOT GLOB '*[^0-9]*')),
    card_brand             TEXT,
    card_entry_mode        TEXT,
    operator_id            TEXT,
    captured_at            INTEGER,
    decision               TEXT CHECK (decision IS NULL OR decision IN ('online', 'offline')),
    decision_reason        TEXT,
    backend_transaction_id TEXT,
    auth_code              TEXT,
    decline_reason         TEXT,
    original_reference     TEXT REFERENCES transactions (reference),
    created_at             INTEGER NOT NULL,
    updated_at             INTEGER NOT NULL,
    -- a card is stored whole or not at all
    CHECK ((card_token IS NULL) = (card_last4 IS NULL)
       AND (card_token IS NULL) = (card_brand IS NULL)
       AND (card_token IS NULL) = (card_entry_mode IS NULL)),
    CHECK ((decision IS NULL) = (decision_reason IS NULL)),
    -- refunds, and only refunds, point at their sale
    CHECK ((kind = 'refund') = (original_reference IS NOT NULL)),
    -- these states exist only after a card was read
    CHECK (card_token IS NOT NULL OR state IN
           ('pending', 'authorizing', 'aborted', 'timed_out', 'failed'))
    -- no CHECK ties offline states to decision = 'offline': a payment whose
    -- online authorization went unanswered keeps its decision `online` and
    -- is approved offline with decline_reason `offline_after_unknown`
) STRICT;

-- Partial indexes: a row without the key costs no index write. Listing
-- (CLI, reconciliation) sorts by created_at without an index: every index
-- is one more page written and fsynced per payment.
CREATE INDEX transactions_payment_id ON transactions (payment_id)
    WHERE payment_id IS NOT NULL;
CREATE INDEX transactions_original_reference ON transactions (original_reference)
    WHERE original_reference IS NOT NULL;

CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    kind            TEXT NOT NULL CHECK (kind IN
                        ('payment_event', 'transaction', 'reversal', 'command_ack')),
    payload         TEXT NOT NULL CHECK (json_valid(payload)),
    reference       TEXT REFERENCES transactions (reference),
    payment_id      TEXT,
    attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at INTEGER NOT NULL,
    in_flight       INTEGER NOT NULL DEFAULT 0 CHECK (in_flight IN (0, 1)),
    last_error      TEXT,
    parked          INTEGER NOT NULL DEFAULT 0 CHECK (parked IN (0, 1)),
    created_at      INTEGER NOT NULL,
    CHECK (NOT (in_flight = 1 AND parked = 1)),
    CHECK (kind NOT IN ('transaction', 'reversal') OR reference IS NOT NULL)
) STRICT;

CREATE INDEX outbox_reference ON outbox (reference) WHERE reference IS NOT NULL;
CREATE INDEX outbox_payment_id ON outbox (payment_id) WHERE payment_id IS NOT NULL;
-- one forward and one reversal per transaction at a time
CREATE UNIQUE INDEX outbox_one_per_reference ON outbox (reference, kind)
    WHERE kind IN ('transaction', 'reversal');

CREATE TABLE audit_log (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    at        INTEGER NOT NULL,
    reference TEXT,
    event     TEXT NOT NULL,
    detail    TEXT NOT NULL CHECK (json_valid(detail))
) STRICT;

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;

CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;

CREATE TABLE kv (
    key        TEXT PRIMARY KEY NOT NULL CHECK (length(key) BETWEEN 1 AND 128),
    value      TEXT NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;
"#,
    ),
    // Step 2: what boot restores (unfinished and unforwarded transactions)
    // without reading the whole ledger. Partial: a row is in the index only
    // while it is in one of these states, so settled rows cost no index
    // write. Queries must repeat this WHERE term exactly to use it.
    M::up(
        r#"
CREATE INDEX transactions_restorable ON transactions (state)
    WHERE state IN ('pending', 'authorizing', 'offline_approved');
"#,
    ),
    // Step 3: the earliest time the server asked for (`Retry-After`), which
    // a returning link never moves an item before (SPEC 5.7).
    M::up(
        r#"
ALTER TABLE outbox ADD COLUMN not_before INTEGER;
"#,
    ),
    // Step 4: the cashier's terminal (SPEC 7). Tips and cart items on
    // transactions, the shift each belongs to, closed shifts (Z reports),
    // and the `shift` outbox kind. SQLite cannot change a CHECK, so the
    // outbox is rebuilt with its ids and its AUTOINCREMENT counter kept
    // (outbox ids are never reused).
    M::up(
        r#"
ALTER TABLE transactions ADD COLUMN tip_amount INTEGER
    CHECK (tip_amount IS NULL OR (tip_amount > 0 AND tip_amount <= amount));
ALTER TABLE transactions ADD COLUMN items TEXT
    CHECK (items IS NULL OR json_valid(items));
ALTER TABLE transactions ADD COLUMN shift_no INTEGER NOT NULL DEFAULT 1
    CHECK (shift_no >= 1);

CREATE TABLE shifts (
    shift_no  INTEGER PRIMARY KEY NOT NULL CHECK (shift_no >= 1),
    opened_at INTEGER,
    closed_at INTEGER NOT NULL,
    closed_by TEXT CHECK (closed_by IS NULL OR length(closed_by) BETWEEN 1 AND 64),
    totals    TEXT NOT NULL CHECK (json_valid(totals))
) STRICT;

CREATE TABLE outbox_new (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    kind            TEXT NOT NULL CHECK (kind IN
                        ('payment_event', 'transaction', 'reversal', 'command_ack', 'shift')),
    payload         TEXT NOT NULL CHECK (json_valid(payload)),
    reference       TEXT REFERENCES transactions (reference),
    payment_id      TEXT,
    attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at INTEGER NOT NULL,
    in_flight       INTEGER NOT NULL DEFAULT 0 CHECK (in_flight IN (0, 1)),
    last_error      TEXT,
    parked          INTEGER NOT NULL DEFAULT 0 CHECK (parked IN (0, 1)),
    created_at      INTEGER NOT NULL,
    not_before      INTEGER,
    CHECK (NOT (in_flight = 1 AND parked = 1)),
    CHECK (kind NOT IN ('transaction', 'reversal') OR reference IS NOT NULL)
) STRICT;
INSERT INTO outbox_new (id, kind, payload, reference, payment_id, attempts, next_attempt_at,
                        in_flight, last_error, parked, created_at, not_before)
    SELECT id, kind, payload, reference, payment_id, attempts, next_attempt_at,
           in_flight, last_error, parked, created_at, not_before FROM outbox;
DELETE FROM sqlite_sequence WHERE name = 'outbox_new';
INSERT INTO sqlite_sequence (name, seq)
    SELECT 'outbox_new', seq FROM sqlite_sequence WHERE name = 'outbox';
DROP TABLE outbox;
ALTER TABLE outbox_new RENAME TO outbox;
CREATE INDEX outbox_reference ON outbox (reference) WHERE reference IS NOT NULL;
CREATE INDEX outbox_payment_id ON outbox (payment_id) WHERE payment_id IS NOT NULL;
CREATE UNIQUE INDEX outbox_one_per_reference ON outbox (reference, kind)
    WHERE kind IN ('transaction', 'reversal');
-- one Z report per shift number in the queue
CREATE UNIQUE INDEX outbox_one_per_shift ON outbox (json_extract(payload, '$.shift_no'))
    WHERE kind = 'shift';
"#,
    ),
    // Step 5: the card application a card was read with (EMV tags 4F and
    // 50), for the receipt (SPEC 7.4); never more card data than this.
    M::up(
        r#"
ALTER TABLE transactions ADD COLUMN card_aid TEXT
    CHECK (card_aid IS NULL OR (length(card_aid) BETWEEN 10 AND 32
                                AND card_aid NOT GLOB '*[^0-9A-F]*'));
ALTER TABLE transactions ADD COLUMN card_label TEXT
    CHECK (card_label IS NULL OR length(card_label) BETWEEN 1 AND 32);
"#,
    ),
    // Step 6: pay by bank transfer (SPEC 7.7). How a transaction was paid
    // (`channel`: card, or `account` for a transfer to the session's
    // collection account), who paid by transfer, the payment code shown,
    // and the outbox kinds `transfer_register` and `transfer_cancel`.
    // An approved transfer has no card, and SQLite cannot change a CHECK:
    // both tables are rebuilt with SQLite's 12-step ALTER TABLE procedure
    // (foreign keys are off while migrations run, see `db/open.rs`, and
    // checked after this step), keeping every row, the outbox's ids and
    // AUTOINCREMENT counter, and every index; neither table has triggers
    // or views.
    M::up(
        r#"
CREATE TABLE transactions_new (
    reference              TEXT PRIMARY KEY NOT NULL
                           CHECK (length(reference) BETWEEN 1 AND 64),
    payment_id             TEXT CHECK (payment_id IS NULL OR length(payment_id) BETWEEN 1 AND 64),
    kind                   TEXT NOT NULL CHECK (kind IN ('sale', 'refund')),
    amount                 INTEGER NOT NULL CHECK (amount > 0 AND amount <= 1000000000),
    currency               TEXT NOT NULL CHECK (currency = 'NGN'),
    state                  TEXT NOT NULL CHECK (state IN (
                               'pending', 'authorizing', 'approved', 'declined',
                               'offline_approved', 'offline_declined', 'aborted',
                               'timed_out', 'failed', 'reversal_pending', 'reversed')),
    card_token             TEXT,
    card_last4             TEXT CHECK (card_last4 IS NULL OR
                               (length(card_last4) = 4 AND card_last4 NOT GLOB '*[^0-9]*')),
    card_brand             TEXT,
    card_entry_mode        TEXT,
    operator_id            TEXT,
    captured_at            INTEGER,
    decision               TEXT CHECK (decision IS NULL OR decision IN ('online', 'offline')),
    decision_reason        TEXT,
    backend_transaction_id TEXT,
    auth_code              TEXT,
    decline_reason         TEXT,
    original_reference     TEXT REFERENCES transactions (reference),
    created_at             INTEGER NOT NULL,
    updated_at             INTEGER NOT NULL,
    tip_amount             INTEGER
                           CHECK (tip_amount IS NULL OR (tip_amount > 0 AND tip_amount <= amount)),
    items                  TEXT CHECK (items IS NULL OR json_valid(items)),
    shift_no               INTEGER NOT NULL DEFAULT 1 CHECK (shift_no >= 1),
    card_aid               TEXT
                           CHECK (card_aid IS NULL OR (length(card_aid) BETWEEN 10 AND 32
                                                       AND card_aid NOT GLOB '*[^0-9A-F]*')),
    card_label             TEXT CHECK (card_label IS NULL OR length(card_label) BETWEEN 1 AND 32),
    channel                TEXT NOT NULL DEFAULT 'card' CHECK (channel IN ('card', 'account')),
    payer_name             TEXT CHECK (payer_name IS NULL OR length(payer_name) BETWEEN 1 AND 140),
    payer_bank             TEXT CHECK (payer_bank IS NULL OR length(payer_bank) BETWEEN 1 AND 140),
    transfer_code          TEXT CHECK (transfer_code IS NULL OR
                               (length(transfer_code) = 6 AND transfer_code NOT GLOB '*[^0-9]*')),
    CHECK ((card_token IS NULL) = (card_last4 IS NULL)
       AND (card_token IS NULL) = (card_brand IS NULL)
       AND (card_token IS NULL) = (card_entry_mode IS NULL)),
    CHECK ((decision IS NULL) = (decision_reason IS NULL)),
    CHECK ((kind = 'refund') = (original_reference IS NOT NULL)),
    -- these states exist only after a card was read, or a transfer arrived
    CHECK (card_token IS NOT NULL OR channel = 'account' OR state IN
           ('pending', 'authorizing', 'aborted', 'timed_out', 'failed')),
    -- a transfer has no card, and only a transfer has a payer
    CHECK (channel = 'card' OR card_token IS NULL),
    CHECK (channel = 'account' OR (payer_name IS NULL AND payer_bank IS NULL))
) STRICT;
INSERT INTO transactions_new (reference, payment_id, kind, amount, currency, state,
        card_token, card_last4, card_brand, card_entry_mode, operator_id, captured_at,
        decision, decision_reason, backend_transaction_id, auth_code, decline_reason,
        original_reference, created_at, updated_at, tip_amount, items, shift_no,
        card_aid, card_label)
    SELECT reference, payment_id, kind, amount, currency, state,
        card_token, card_last4, card_brand, card_entry_mode, operator_id, captured_at,
        decision, decision_reason, backend_transaction_id, auth_code, decline_reason,
        original_reference, created_at, updated_at, tip_amount, items, shift_no,
        card_aid, card_label
    FROM transactions ORDER BY rowid;
DROP TABLE transactions;
ALTER TABLE transactions_new RENAME TO transactions;
CREATE INDEX transactions_payment_id ON transactions (payment_id)
    WHERE payment_id IS NOT NULL;
CREATE INDEX transactions_original_reference ON transactions (original_reference)
    WHERE original_reference IS NOT NULL;
CREATE INDEX transactions_restorable ON transactions (state)
    WHERE state IN ('pending', 'authorizing', 'offline_approved');

CREATE TABLE outbox_new (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    kind            TEXT NOT NULL CHECK (kind IN
                        ('payment_event', 'transaction', 'reversal', 'command_ack', 'shift',
                         'transfer_register', 'transfer_cancel')),
    payload         TEXT NOT NULL CHECK (json_valid(payload)),
    reference       TEXT REFERENCES transactions (reference),
    payment_id      TEXT,
    attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt_at INTEGER NOT NULL,
    in_flight       INTEGER NOT NULL DEFAULT 0 CHECK (in_flight IN (0, 1)),
    last_error      TEXT,
    parked          INTEGER NOT NULL DEFAULT 0 CHECK (parked IN (0, 1)),
    created_at      INTEGER NOT NULL,
    not_before      INTEGER,
    CHECK (NOT (in_flight = 1 AND parked = 1)),
    CHECK (kind NOT IN ('transaction', 'reversal', 'transfer_register', 'transfer_cancel')
           OR reference IS NOT NULL)
) STRICT;
INSERT INTO outbox_new (id, kind, payload, reference, payment_id, attempts, next_attempt_at,
                        in_flight, last_error, parked, created_at, not_before)
    SELECT id, kind, payload, reference, payment_id, attempts, next_attempt_at,
           in_flight, last_error, parked, created_at, not_before FROM outbox;
DELETE FROM sqlite_sequence WHERE name = 'outbox_new';
INSERT INTO sqlite_sequence (name, seq)
    SELECT 'outbox_new', seq FROM sqlite_sequence WHERE name = 'outbox';
DROP TABLE outbox;
ALTER TABLE outbox_new RENAME TO outbox;
CREATE INDEX outbox_reference ON outbox (reference) WHERE reference IS NOT NULL;
CREATE INDEX outbox_payment_id ON outbox (payment_id) WHERE payment_id IS NOT NULL;
CREATE UNIQUE INDEX outbox_one_per_reference ON outbox (reference, kind)
    WHERE kind IN ('transaction', 'reversal');
CREATE UNIQUE INDEX outbox_one_per_shift ON outbox (json_extract(payload, '$.shift_no'))
    WHERE kind = 'shift';
"#,
    )
    .foreign_key_check(),
    // Step 7: the audit log without AUTOINCREMENT. Its rows are never
    // deleted (the triggers refuse it), so a plain rowid already grows
    // without reuse, and AUTOINCREMENT only added a write of
    // `sqlite_sequence` to every commit that audits (one more page on the
    // disk per commit, see docs/store.md). Rebuilt keeping every row and
    // id; the triggers go with the old table and are created again.
    M::up(
        r#"
CREATE TABLE audit_log_new (
    id        INTEGER PRIMARY KEY,
    at        INTEGER NOT NULL,
    reference TEXT,
    event     TEXT NOT NULL,
    detail    TEXT NOT NULL CHECK (json_valid(detail))
) STRICT;
INSERT INTO audit_log_new (id, at, reference, event, detail)
    SELECT id, at, reference, event, detail FROM audit_log;
DROP TABLE audit_log;
DELETE FROM sqlite_sequence WHERE name = 'audit_log';
ALTER TABLE audit_log_new RENAME TO audit_log;

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;

CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
"#,
    ),
    // Step 8: one index on the outbox's reference instead of two. The
    // ordering check (an earlier item of the same reference) and the
    // uniqueness of a reference's forward and reversal both read the same
    // key, and every outbox row with a reference cost a leaf write in each
    // index when queued and again when deleted (see docs/store.md). The
    // second column is the kind for the two kinds that are one per
    // reference, the row's own id (so never a clash) for the others.
    M::up(
        r#"
DROP INDEX outbox_reference;
DROP INDEX outbox_one_per_reference;
CREATE UNIQUE INDEX outbox_by_reference ON outbox
    (reference, CASE WHEN kind IN ('transaction', 'reversal') THEN kind ELSE id END)
    WHERE reference IS NOT NULL;
"#,
    ),
];

/// The migration set applied at open.
pub fn migrations() -> Migrations<'static> {
    Migrations::new(MIGRATIONS.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_validate() {
        migrations().validate().expect("migrations apply in order");
    }
}
