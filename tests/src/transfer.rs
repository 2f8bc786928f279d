//! Pay by bank transfer (SPEC 7.7) in the harness: the sandbox bank's
//! credit and the account's statement (organisation key), and the demo's
//! transfer chapter: a keyed sale the customer pays by transfer to the
//! event's collection account, in two parts.

use proto::Money;
use proto::SessionId;
use proto::wire::{Page, SandboxTransfer, StatementEntry};
use reqwest::Method;

use crate::backend::{Backend, ORG_KEY, send_enveloped};
use crate::check;
use crate::device::ScreenView;
use crate::error::{HarnessError, Result};
use crate::scenario::{STEP_TIMEOUT, Scene};

/// The payer the demo and the tests use.
pub const PAYER_NAME: &str = "ADA OBI";
pub const PAYER_BANK: &str = "GTBank";

impl Backend {
    /// `POST /v1/sandbox/transfers`: the bank credits `account_number` as a
    /// customer's transfer with `narration` would.
    pub async fn sandbox_transfer(
        &self,
        account_number: &str,
        amount: Money,
        narration: &str,
    ) -> Result<StatementEntry> {
        let body = SandboxTransfer {
            account_number: account_number.to_owned(),
            amount,
            currency: proto::Currency::Ngn,
            narration: narration.to_owned(),
            payer_name: PAYER_NAME.to_owned(),
            payer_bank: PAYER_BANK.to_owned(),
            payer_account_number: Some("0123456789".to_owned()),
        };
        let rb = self
            .http()
            .post(format!("{}/v1/sandbox/transfers", self.url()))
            .header("x-api-key", ORG_KEY)
            .json(&body);
        send_enveloped("sandbox transfer", rb).await
    }

    /// `POST /v1/sessions/:id/account/statement {}`: every credit of the
    /// session's collection account (first page of 100).
    pub async fn account_statement(&self, session: &SessionId) -> Result<Vec<StatementEntry>> {
        let rb = self
            .http()
            .request(
                Method::POST,
                format!(
                    "{}/v1/sessions/{session}/account/statement?page=0&size=100",
                    self.url()
                ),
            )
            .header("x-api-key", ORG_KEY)
            .json(&serde_json::json!({}));
        let page: Page<StatementEntry> = send_enveloped("account statement", rb).await?;
        Ok(page.content)
    }

    /// The session's collection account number.
    pub async fn account_number(&self, session: &SessionId) -> Result<String> {
        self.session(session)
            .await?
            .collection_account
            .map(|a| a.account_number)
            .ok_or_else(|| HarnessError::Check(format!("session {session} has no account")))
    }
}

/// What the transfer chapter sold.
#[derive(Debug, Clone)]
pub struct TransferSale {
    pub reference: String,
    pub code: String,
    pub amount: Money,
}

/// The code and account on a `transfer` screen.
pub fn shown_code(view: &ScreenView) -> Option<String> {
    view.transfer
        .as_ref()
        .and_then(|t| t["code"].as_str())
        .map(str::to_owned)
}

impl Scene {
    /// Keys `amount` on terminal `i` (no tips configured, nobody logged
    /// in), switches the tap screen to transfer and waits for the code.
    pub async fn key_transfer(&mut self, i: usize, amount: Money) -> Result<ScreenView> {
        let t = &self.terminals[i];
        let dev = t.device()?.clone();
        dev.keys(&amount.minor().to_string()).await?;
        dev.wait_for("the amount keyed", STEP_TIMEOUT, |v| {
            v.screen == "amount_entry" && v.amount.as_deref() == Some(amount.to_wire().as_str())
        })
        .await?;
        dev.press("ok").await?;
        dev.wait_screen("tap_card", STEP_TIMEOUT).await?;
        dev.press("down").await?;
        let view = dev
            .wait_for("the transfer code", STEP_TIMEOUT, |v| {
                v.screen == "transfer" && shown_code(v).is_some()
            })
            .await?;
        self.timeline
            .screen(t, "down on tap_card: pay by bank transfer", &view)
            .await?;
        Ok(view)
    }

    /// The demo's transfer chapter on terminal `i`: a keyed sale paid by
    /// transfer in two credits (`first`, then the rest), as the bank would
    /// report them; the terminal shows "Received X of Y", then approved.
    pub async fn transfer_sale(
        &mut self,
        i: usize,
        amount: Money,
        first: Money,
    ) -> Result<TransferSale> {
        let view = self.key_transfer(i, amount).await?;
        let code = shown_code(&view).unwrap_or_default();
        let sid = self.session_id().clone();
        let account = self.backend.account_number(&sid).await?;
        let entry = self
            .backend
            .sandbox_transfer(&account, first, &format!("drinks {code}"))
            .await?;
        self.timeline.note(
            "bank",
            format!(
                "POST /v1/sandbox/transfers {} from {PAYER_NAME} ({PAYER_BANK}), narration \"drinks {code}\" -> {}",
                first.display(proto::Currency::Ngn),
                entry.status
            ),
        );
        let t = &self.terminals[i];
        let dev = t.device()?.clone();
        let view = dev
            .wait_for("part of the transfer", STEP_TIMEOUT, |v| {
                v.screen == "transfer"
                    && v.transfer.as_ref().and_then(|t| t["received"].as_str())
                        == Some(first.to_wire().as_str())
            })
            .await?;
        self.timeline.screen(t, "part received", &view).await?;
        let rest = amount.saturating_sub(first);
        let entry = self.backend.sandbox_transfer(&account, rest, &code).await?;
        self.timeline.note(
            "bank",
            format!(
                "POST /v1/sandbox/transfers {} narration \"{code}\" -> {}",
                rest.display(proto::Currency::Ngn),
                entry.status
            ),
        );
        let t = &self.terminals[i];
        let view = t
            .device()?
            .wait_for("the transfer approved", STEP_TIMEOUT, |v| {
                matches!(
                    v.screen.as_str(),
                    "approved" | "declined" | "cancelled" | "error"
                )
            })
            .await?;
        self.timeline.screen(t, "transfer received", &view).await?;
        check!(
            view.screen == "approved",
            "transfer sale: screen {}",
            view.summary()
        );
        let reference = entry
            .matched_reference
            .map(|r| r.to_string())
            .unwrap_or_default();
        self.back_to_idle(i).await?;
        Ok(TransferSale {
            reference,
            code,
            amount,
        })
    }
}
