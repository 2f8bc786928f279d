//! The demo's bar chapter (SPEC 7): the terminal as the cashier's only
//! till. The partner sets up operators, tips and the quick-sale catalog; a
//! cashier logs in, sells two catalog items with a 10% tip, keys a
//! standalone amount while the venue network is down; a supervisor closes
//! the shift with a Z report that reaches the backend.

use crate::check;
use crate::device::ScreenView;
use crate::error::Result;
use crate::proxy::LinkState;
use crate::scenario::{STEP_TIMEOUT, Scene};

/// What the bar chapter sold.
#[derive(Debug, Clone, Default)]
pub struct BarOutcome {
    pub sales: usize,
    pub tips_minor: u64,
    pub shift_no: u64,
}

const CASHIER_PIN: &str = "1234";
const SUPERVISOR_PIN: &str = "98765";

impl Scene {
    /// Runs the bar chapter on terminal `i`. Every terminal of the session
    /// asks for a login afterwards (the session has operators now).
    pub async fn bar_shift(&mut self, i: usize) -> Result<BarOutcome> {
        let mut out = BarOutcome::default();
        let sid = self.session_id().clone();
        let ada = self
            .backend
            .create_operator(&sid, "Ada", "cashier", CASHIER_PIN)
            .await?;
        let tunde = self
            .backend
            .create_operator(&sid, "Tunde", "supervisor", SUPERVISOR_PIN)
            .await?;
        self.backend
            .put_config(
                &sid,
                serde_json::json!({
                    "tips": {"enabled": true, "percentages": [5, 10, 15], "fixed": ["500.00"], "custom": true},
                    "receipt_print": "auto", "logout_after_s": 600, "language": "en"
                }),
            )
            .await?;
        self.backend
            .put_catalog(
                &sid,
                serde_json::json!({"items": [
                    {"item_id": "star", "name": "Star Lager", "price": "1500.00", "category": "drinks"},
                    {"item_id": "water", "name": "Eva Water", "price": "300.00", "category": "drinks"},
                    {"item_id": "suya", "name": "Suya", "price": "2000.00", "category": "food"}
                ]}),
            )
            .await?;
        self.timeline.note(
            "partner",
            format!(
                "operators Ada (cashier, {ada}) and Tunde (supervisor, {tunde}), tips 5/10/15% + NGN 500.00 + custom, a 3-item catalog"
            ),
        );

        let dev = self.terminals[i].device()?.clone();
        let view = dev.wait_screen("login", STEP_TIMEOUT).await?;
        self.shot(i, "the terminal learned its operators: login", &view)
            .await?;
        dev.keys(CASHIER_PIN).await?;
        let view = dev
            .wait_for("4 PIN digits", STEP_TIMEOUT, |s| {
                s.screen == "login" && s.message.is_none()
            })
            .await?;
        self.shot(i, "Ada keys her PIN (dots only)", &view).await?;
        dev.press("ok").await?;
        let view = dev
            .wait_for("idle, Ada logged in", STEP_TIMEOUT, |s| {
                s.screen == "idle" && s.operator.as_deref() == Some(ada.as_str())
            })
            .await?;
        self.shot(i, "Ada is logged in", &view).await?;

        // Two catalog items, 10% tip. The catalog comes with a heartbeat of
        // its own (it was set after the operators): until it is there the
        // menu says "No catalog for this event".
        let view = dev.open_catalog(STEP_TIMEOUT).await?;
        self.shot(i, "menu", &view).await?;
        dev.keys("1").await?;
        dev.press("ok").await?;
        dev.keys("2").await?;
        dev.press("ok").await?;
        let view = dev
            .wait_for("a cart of 2 items", STEP_TIMEOUT, |s| {
                s.screen == "catalog" && s.cart.as_ref().is_some_and(|c| c.len() == 2)
            })
            .await?;
        self.shot(i, "Star Lager and Eva Water in the cart", &view)
            .await?;
        dev.press("menu").await?;
        let view = dev
            .wait_for("the tip screen", STEP_TIMEOUT, |s| {
                s.screen == "tip" && s.amount.as_deref() == Some("1800.00")
            })
            .await?;
        self.shot(i, "the customer is offered a tip", &view).await?;
        dev.press("2").await?;
        let view = dev
            .wait_for("tap_card with the tip", STEP_TIMEOUT, |s| {
                s.screen == "tap_card" && s.total.as_deref() == Some("1980.00")
            })
            .await?;
        check!(
            view.tip_amount.as_deref() == Some("180.00")
                && view.amount.as_deref() == Some("1800.00"),
            "10% of 1800.00: screen {}",
            view.summary()
        );
        self.shot(i, "10% tip chosen: NGN 1,980.00 to pay", &view)
            .await?;
        let view = self.tap_for_result(i, "visa_ok").await?;
        check!(
            view.screen == "approved",
            "catalog sale: {}",
            view.summary()
        );
        out.sales += 1;
        out.tips_minor += 18_000;
        self.back_to_idle(i).await?;

        // A keyed amount while the network is down.
        self.terminals[i].proxy().set(LinkState::Refuse);
        self.timeline
            .note("network", "the bar's uplink is down: connections refused");
        dev.wait_for("offline", STEP_TIMEOUT, |s| s.offline).await?;
        dev.keys("250000").await?;
        let view = dev
            .wait_for("amount_entry 2500.00", STEP_TIMEOUT, |s| {
                s.screen == "amount_entry" && s.amount.as_deref() == Some("2500.00")
            })
            .await?;
        self.shot(i, "Ada keys NGN 2,500.00", &view).await?;
        dev.press("ok").await?;
        dev.wait_screen("tip", STEP_TIMEOUT).await?;
        dev.press("0").await?;
        dev.wait_screen("tap_card", STEP_TIMEOUT).await?;
        let view = self.tap_for_result(i, "mc_ok").await?;
        check!(
            view.screen == "approved" && view.queued > 0,
            "keyed sale offline: {}",
            view.summary()
        );
        out.sales += 1;
        self.terminals[i].proxy().set(LinkState::Up);
        self.timeline.note("network", "the bar's uplink is back");
        let view = dev
            .wait_for("online, queue drained", STEP_TIMEOUT, |s| {
                s.screen == "idle" && !s.offline && s.queued == 0
            })
            .await?;
        self.shot(i, "the offline sale is forwarded", &view).await?;

        // The supervisor closes the shift.
        dev.press("menu").await?;
        dev.wait_screen("menu", STEP_TIMEOUT).await?;
        dev.press("4").await?;
        let view = dev
            .wait_for("Z refused to a cashier", STEP_TIMEOUT, |s| {
                s.screen == "menu" && s.message.is_some()
            })
            .await?;
        self.shot(i, "Ada may not close the shift", &view).await?;
        dev.press("6").await?;
        dev.wait_screen("login", STEP_TIMEOUT).await?;
        dev.keys(SUPERVISOR_PIN).await?;
        dev.press("ok").await?;
        dev.wait_for("Tunde logged in", STEP_TIMEOUT, |s| {
            s.screen == "idle" && s.operator.as_deref() == Some(tunde.as_str())
        })
        .await?;
        dev.press("menu").await?;
        dev.wait_screen("menu", STEP_TIMEOUT).await?;
        dev.press("4").await?;
        let view = dev.wait_screen("report", STEP_TIMEOUT).await?;
        let report = view.report.clone().unwrap_or_default();
        check!(
            report["kind"] == "Z" && report["tips"] == "180.00",
            "Z report: {report}"
        );
        out.shift_no = report["shift_no"].as_u64().unwrap_or(0);
        self.shot(i, "Tunde's Z report closes the shift", &view)
            .await?;
        let shift = self.wait_shift(i, out.shift_no).await?;
        self.timeline.note(
            "partner",
            format!(
                "GET /v1/sessions/{sid}/shifts -> shift {} of {}: {} sales, tips {}",
                shift.shift_no,
                self.terminals[i].id,
                shift.totals.sales.count,
                shift.totals.tips.total.to_wire()
            ),
        );
        check!(
            shift.totals.tips.total.0 == out.tips_minor,
            "the backend's Z report says tips {}",
            shift.totals.tips.total.to_wire()
        );
        dev.press("ok").await?;
        dev.wait_screen("idle", STEP_TIMEOUT).await?;
        Ok(out)
    }

    async fn shot(&mut self, i: usize, what: &str, view: &ScreenView) -> Result<()> {
        let t = &self.terminals[i];
        self.timeline.screen(t, what, view).await
    }

    /// Waits until the backend has terminal `i`'s Z report `shift_no`.
    async fn wait_shift(&self, i: usize, shift_no: u64) -> Result<proto::wire::ShiftRecord> {
        let deadline = crate::wait::Deadline::after(STEP_TIMEOUT);
        let tid = &self.terminals[i].id;
        loop {
            let shifts = self.backend.shifts(self.session_id()).await?;
            if let Some(s) = shifts
                .into_iter()
                .find(|s| &s.terminal_id == tid && s.shift_no == shift_no)
            {
                return Ok(s);
            }
            deadline
                .tick(&format!("Z report {shift_no} at the backend"), || {
                    "not yet".to_string()
                })
                .await?;
        }
    }
}
