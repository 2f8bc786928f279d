//! The demo's scenario, step by step; the same function runs in the demo
//! binary and in the end-to-end test `demo_scenario`.

use crate::error::Result;
use crate::scenario::{Scene, ngn};

/// What the script did, for the summary.
#[derive(Debug, Clone, Default)]
pub struct ScriptOutcome {
    pub approved_sales: usize,
    pub offline_sales: usize,
    pub refunds: usize,
    /// Sales at the bar (cashier's keypad and catalog).
    pub bar_sales: usize,
    /// Sales paid by bank transfer to the event's account (SPEC 7.7).
    pub transfer_sales: usize,
}

/// Runs the narrated scenario on a scene with two running terminals:
/// approved sale, declined card, abort before tap, abort too late, outage
/// with offline sales, recovery and drain, refund with the right and with a
/// wrong card, the bar (a cashier's catalog and keypad sales with a tip and
/// offline, the supervisor's Z report), and (unless `close` is false) an
/// authorization lost on the way followed by the session's close, with
/// totals.
pub async fn run(scene: &mut Scene, close: bool) -> Result<ScriptOutcome> {
    let mut out = ScriptOutcome::default();
    scene.timeline.note("demo", "1. approved sales");
    let s1 = scene.approved_sale(0, ngn(200_000), "visa_ok").await?;
    let s2 = scene.approved_sale(1, ngn(350_050), "mc_ok").await?;
    out.approved_sales += 2;

    scene.timeline.note("demo", "2. declined card");
    scene
        .declined_sale(1, ngn(120_000), "visa_declined")
        .await?;

    scene.timeline.note("demo", "3. abort before the tap");
    scene.abort_before_tap(0, ngn(500_000)).await?;

    scene
        .timeline
        .note("demo", "4. abort too late (card already read)");
    scene.abort_too_late(1, ngn(250_000), "verve_ok").await?;
    out.approved_sales += 1;

    scene
        .timeline
        .note("demo", "5. network outage: offline sales");
    let pending = scene
        .outage_offline_sales(&[ngn(150_000), ngn(420_000)], "visa_ok")
        .await?;

    scene.timeline.note("demo", "6. recovery: the queues drain");
    let drained = scene.recovery_drain(&pending, "visa_ok").await?;
    out.offline_sales += drained.len();

    scene.timeline.note("demo", "7. refunds");
    scene.refund(&s1, ngn(50_000), "visa_ok").await?;
    out.refunds += 1;
    scene.refund(&s2, ngn(100_000), "visa_ok").await?;

    scene.timeline.note(
        "demo",
        "7b. pay by bank transfer: the customer pays the event's account in two parts",
    );
    scene.transfer_sale(0, ngn(250_000), ngn(100_000)).await?;
    out.transfer_sales += 1;

    scene.timeline.note(
        "demo",
        "8. the bar: cashier login, catalog sale with a tip, keyed sale offline, Z report",
    );
    let bar = scene.bar_shift(0).await?;
    out.bar_sales += bar.sales;

    if close {
        scene.timeline.note(
            "demo",
            "9. unknown outcome, then the session closes: the sale is still paid",
        );
        scene
            .unknown_outcome_then_close(0, ngn(180_000), "visa_ok")
            .await?;
        out.offline_sales += 1;
    }
    Ok(out)
}
