//! The fleet simulation (SPEC 8.5): one in-process kler-sim (with load
//! shedding) and N provisioned in-process agents with virtual devices, in
//! sessions of at most 50 terminals, selling at a bar's pace (keypad and
//! partner sales mixed), through a venue outage that cuts every terminal's
//! link at once, then recovery. At the end every ledger is checked against
//! the backend: nothing the terminals showed approved is lost, nothing is
//! charged twice, nothing is at the backend that a terminal does not have.
//!
//! [`run`] is what `cargo run -p e2e-tests --bin fleet` and the fleet tests
//! call; [`FleetReport::render`] is the table they print.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hal::{Button, Digit, TestCard, VirtualDevice};
use proto::wire::{CreatePayment, Payment, RecordStatus};
use proto::{Currency, DecisionMode, Money, TerminalId, TxKind, TxState};
use rand::Rng;
use tokio::sync::watch;
use tokio::time::Instant;
use ui::{ScreenName, ScreenState};

use crate::backend::{Backend, ORG_KEY, SimOptions, send_enveloped};
use crate::error::{HarnessError, Result};
use crate::proxy::LinkState;
use crate::terminal::{AgentOptions, Terminal};

/// Most POS terminals in one session (SPEC 4.1 `pos_count`).
pub const SESSION_MAX: usize = 50;

/// What to run.
#[derive(Debug, Clone)]
pub struct FleetOptions {
    pub terminals: usize,
    /// How long the terminals sell (the outage included).
    pub duration: Duration,
    /// How long every link is cut; it starts in the middle of the run.
    pub outage: Duration,
    /// Each terminal sells once every `sale_every.0..=sale_every.1`.
    pub sale_every: (Duration, Duration),
    /// Share of sales (percent) the partner POS starts (`POST /v1/payments`
    /// then a tap) while the link is up; the rest are keyed by the cashier.
    pub partner_percent: u32,
    /// `--max-inflight` of the sim.
    pub max_inflight: Option<usize>,
    /// Restart the sim (on its state file, same port) this long after the
    /// start, while the agents keep running.
    pub restart_sim_at: Option<Duration>,
    /// Data directories (and the sim's state file) go here.
    pub root: PathBuf,
    /// How long the queues may take to drain after the outage and at the
    /// end before the run counts as failed.
    pub drain_timeout: Duration,
}

impl FleetOptions {
    /// `terminals` for `minutes`, the outage 60 s or, for runs under 3
    /// minutes, a third of the run.
    pub fn new(terminals: usize, duration: Duration, root: PathBuf) -> FleetOptions {
        let outage = if duration >= Duration::from_secs(180) {
            Duration::from_secs(60)
        } else {
            duration / 3
        };
        FleetOptions {
            terminals,
            duration,
            outage,
            sale_every: (Duration::from_secs(20), Duration::from_secs(40)),
            partner_percent: 50,
            max_inflight: Some(default_max_inflight(terminals)),
            restart_sim_at: None,
            root,
            drain_timeout: Duration::from_secs(120),
        }
    }
}

/// A limit that a whole venue returning at once exceeds (one request in
/// flight for every 40 terminals, at least 2): on 2 cores 300 terminals
/// peaked at 19 requests in flight during recovery without a limit, 12
/// shed nothing during recovery, 8 shed some.
pub fn default_max_inflight(terminals: usize) -> usize {
    terminals.div_ceil(40).max(2)
}

/// One sale as the cashier saw it.
#[derive(Debug, Clone)]
struct Sold {
    terminal: usize,
    amount: Money,
    approved: bool,
    tap_to_result: Duration,
}

/// Latency percentiles of one kind of sale.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Percentiles {
    pub count: usize,
    pub p50: Duration,
    pub p99: Duration,
}

fn percentiles(mut v: Vec<Duration>) -> Percentiles {
    if v.is_empty() {
        return Percentiles::default();
    }
    v.sort();
    let at = |p: usize| v[((v.len() - 1) * p).div_ceil(100).min(v.len() - 1)];
    Percentiles {
        count: v.len(),
        p50: at(50),
        p99: at(99),
    }
}

/// What a fleet run measured and found.
#[derive(Debug, Clone, Default)]
pub struct FleetReport {
    pub terminals: usize,
    pub sessions: usize,
    pub duration: Duration,
    pub outage: Duration,
    pub max_inflight: Option<usize>,
    /// Approved sales by how the terminal decided (ledger), and sales the
    /// cashier saw end otherwise (declined, refused, timed out).
    pub approved_online: u64,
    pub approved_offline: u64,
    pub not_approved: u64,
    pub partner_sales: u64,
    pub keypad_sales: u64,
    /// Partner sales that could not be started (the terminal was busy or
    /// offline at the backend): skipped, not an error.
    pub partner_skipped: u64,
    /// Tap → result screen of approved sales, by the terminal's decision.
    pub tap_online: Percentiles,
    pub tap_offline: Percentiles,
    /// From the links' return until every terminal's queue was empty.
    pub drain: Option<Duration>,
    /// The sim's figures from the links' return until the drain ended.
    pub recovery: Option<kler_sim::load::LoadStats>,
    /// The sim's 503s over the whole run.
    pub shed_total: u64,
    pub sim_restarts: u32,
    /// Shown approved but not (exactly once, approved) at the backend.
    pub lost: u64,
    /// At the backend more than once, or at the backend but not approved
    /// in any terminal's ledger.
    pub duplicate: u64,
    /// What went wrong, one line each (lost/duplicate details first).
    pub problems: Vec<String>,
    pub elapsed: Duration,
}

impl FleetReport {
    /// No payment lost or duplicated, and every queue drained.
    pub fn ok(&self) -> bool {
        self.lost == 0 && self.duplicate == 0 && self.drain.is_some()
    }

    /// The table printed by the fleet binary.
    pub fn render(&self) -> String {
        let ms = |d: Duration| format!("{:.1} ms", d.as_secs_f64() * 1000.0);
        let mut rows: Vec<(String, String)> = vec![
            (
                "terminals / sessions".into(),
                format!("{} / {}", self.terminals, self.sessions),
            ),
            (
                "run / outage".into(),
                format!(
                    "{} s / {} s",
                    self.duration.as_secs(),
                    self.outage.as_secs()
                ),
            ),
            (
                "sim --max-inflight".into(),
                self.max_inflight.map_or("none".into(), |n| n.to_string()),
            ),
            (
                "payments approved (online / offline)".into(),
                format!(
                    "{} ({} / {})",
                    self.approved_online + self.approved_offline,
                    self.approved_online,
                    self.approved_offline
                ),
            ),
            (
                "sales keypad / partner (partner skipped)".into(),
                format!(
                    "{} / {} ({})",
                    self.keypad_sales, self.partner_sales, self.partner_skipped
                ),
            ),
            ("sales not approved".into(), self.not_approved.to_string()),
            (
                "tap→result online p50 / p99".into(),
                format!(
                    "{} / {} (n={})",
                    ms(self.tap_online.p50),
                    ms(self.tap_online.p99),
                    self.tap_online.count
                ),
            ),
            (
                "tap→result offline p50 / p99".into(),
                format!(
                    "{} / {} (n={})",
                    ms(self.tap_offline.p50),
                    ms(self.tap_offline.p99),
                    self.tap_offline.count
                ),
            ),
            (
                "drain after the outage".into(),
                self.drain.map_or("NOT DRAINED".into(), |d| {
                    format!("{:.1} s", d.as_secs_f64())
                }),
            ),
        ];
        if let Some(r) = &self.recovery {
            rows.push((
                "sim during recovery: p50 / p99 / max".into(),
                format!(
                    "{} / {} / {}",
                    ms(Duration::from_micros(r.latency_p50_us)),
                    ms(Duration::from_micros(r.latency_p99_us)),
                    ms(Duration::from_micros(r.latency_max_us))
                ),
            ));
            rows.push((
                "sim during recovery: peak in flight".into(),
                r.peak_in_flight.to_string(),
            ));
            rows.push((
                "sim during recovery: requests / 503s".into(),
                format!("{} / {}", r.served, r.shed),
            ));
        }
        rows.push(("sim 503s (whole run)".into(), self.shed_total.to_string()));
        if self.sim_restarts > 0 {
            rows.push(("sim restarts".into(), self.sim_restarts.to_string()));
        }
        rows.push(("lost payments".into(), self.lost.to_string()));
        rows.push(("duplicate payments".into(), self.duplicate.to_string()));
        rows.push((
            "wall time".into(),
            format!("{:.1} s", self.elapsed.as_secs_f64()),
        ));
        let w = rows.iter().map(|r| r.0.chars().count()).max().unwrap_or(0);
        let mut s = String::new();
        for (k, v) in rows {
            let pad = w - k.chars().count();
            s.push_str(&format!("  {k}{}  {v}\n", " ".repeat(pad)));
        }
        for p in self.problems.iter().take(20) {
            s.push_str(&format!("  ! {p}\n"));
        }
        if self.problems.len() > 20 {
            s.push_str(&format!("  ! … {} more\n", self.problems.len() - 20));
        }
        s
    }
}

/// The agents' timers for a fleet: heartbeats every 5 s, quiet logs,
/// production-like retries.
pub fn fleet_agent_options() -> AgentOptions {
    AgentOptions {
        heartbeat: Duration::from_secs(5),
        retry_initial: Duration::from_millis(500),
        retry_max: Duration::from_secs(10),
        link_return_spread: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(2),
        request_timeout: Duration::from_secs(10),
        auth_timeout: Duration::from_secs(8),
        result_hold: Duration::from_millis(1_500),
        log_filter: "warn".into(),
        ..AgentOptions::default()
    }
}

/// The partner's POS: the partner API with the organisation key.
#[derive(Clone)]
struct Partner {
    http: reqwest::Client,
    url: String,
}

impl Partner {
    async fn create_payment(
        &self,
        terminal: &TerminalId,
        amount: Money,
        key: &str,
    ) -> Result<Payment> {
        let body = CreatePayment {
            terminal_id: terminal.clone(),
            amount,
            currency: Currency::Ngn,
            reference: key.to_owned(),
            metadata: None,
            offline_policy: None,
            expires_at: None,
        };
        let rb = self
            .http
            .post(format!("{}/v1/payments", self.url))
            .header("x-api-key", ORG_KEY)
            .header("Idempotency-Key", key)
            .json(&body);
        send_enveloped("create payment", rb).await
    }
}

/// What a terminal's seller shares with the run.
struct Seller {
    index: usize,
    id: TerminalId,
    device: VirtualDevice,
    partner: Partner,
    outage: watch::Receiver<bool>,
    stop: watch::Receiver<bool>,
    sold: Arc<Mutex<Vec<Sold>>>,
    counts: Arc<Mutex<Counts>>,
    every: (Duration, Duration),
    partner_percent: u32,
}

#[derive(Debug, Default)]
struct Counts {
    partner: u64,
    keypad: u64,
    partner_skipped: u64,
    problems: Vec<String>,
}

const STEP: Duration = Duration::from_secs(30);

/// Waits (bounded) for the device's screen state to satisfy `pred`.
async fn wait_state(
    dev: &VirtualDevice,
    what: &str,
    timeout: Duration,
    pred: impl Fn(&ScreenState) -> bool,
) -> Result<ScreenState> {
    let mut rx = dev.subscribe_state();
    let found = tokio::time::timeout(
        timeout,
        rx.wait_for(|s| s.parse::<ScreenState>().is_ok_and(|s| pred(&s))),
    )
    .await;
    match found {
        Ok(Ok(s)) => s
            .parse()
            .map_err(|e| HarnessError::Check(format!("screen state: {e}"))),
        _ => Err(HarnessError::Timeout {
            what: what.to_owned(),
            waited: timeout,
            last: dev.screen_state().as_str().chars().take(300).collect(),
        }),
    }
}

fn is_result(s: &ScreenState) -> bool {
    matches!(
        s.screen,
        ScreenName::Approved | ScreenName::Declined | ScreenName::Error
    )
}

impl Seller {
    /// Sells until told to stop; a failed sale is noted and selling goes on.
    async fn run(self) {
        let mut seq = 0u64;
        // Terminals start out of step.
        let first = rand::thread_rng().gen_range(Duration::ZERO..=self.every.1);
        if self.pause(first).await {
            return;
        }
        loop {
            seq += 1;
            let amount = match Money::from_minor(100_000 + seq * 100 + self.index as u64 % 100) {
                Ok(a) => a,
                Err(_) => return,
            };
            let partner = !*self.outage.borrow()
                && rand::thread_rng().gen_range(0..100) < self.partner_percent;
            let result = if partner {
                self.partner_sale(amount, seq).await
            } else {
                self.keypad_sale(amount).await
            };
            if let Err(e) = result {
                self.note(format!("{}: sale {seq}: {e}", self.id));
            }
            let gap = rand::thread_rng().gen_range(self.every.0..=self.every.1);
            if self.pause(gap).await {
                return;
            }
        }
    }

    fn note(&self, problem: String) {
        if let Ok(mut c) = self.counts.lock() {
            c.problems.push(problem);
        }
    }

    /// Sleeps `d`; true when the run ends meanwhile.
    async fn pause(&self, d: Duration) -> bool {
        let mut stop = self.stop.clone();
        tokio::select! {
            _ = tokio::time::sleep(d) => *self.stop.borrow(),
            _ = stop.wait_for(|s| *s) => true,
        }
    }

    async fn idle(&self) -> Result<()> {
        wait_state(&self.device, "idle", STEP, |s| s.screen == ScreenName::Idle)
            .await
            .map(|_| ())
    }

    /// The cashier keys the amount, presses OK, the customer taps.
    async fn keypad_sale(&self, amount: Money) -> Result<()> {
        self.idle().await?;
        if let Ok(mut c) = self.counts.lock() {
            c.keypad += 1;
        }
        for b in amount.minor().to_string().bytes() {
            let d =
                Digit::new(b - b'0').ok_or_else(|| HarnessError::Check("not a digit".into()))?;
            self.press(Button::Digit(d))?;
        }
        wait_state(&self.device, "the keyed amount", STEP, |s| {
            s.screen == ScreenName::AmountEntry && s.amount == Some(amount)
        })
        .await?;
        self.press(Button::Ok)?;
        self.tap(amount).await
    }

    /// The partner's POS creates the payment, the customer taps.
    async fn partner_sale(&self, amount: Money, seq: u64) -> Result<()> {
        self.idle().await?;
        let key = format!("fleet-{}-{seq}", self.id);
        let mut tries = 0;
        loop {
            tries += 1;
            match self.partner.create_payment(&self.id, amount, &key).await {
                Ok(_) => break,
                // Shed: the same key again after the server's wait.
                Err(HarnessError::Api { status: 503, .. }) if tries < 10 => {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                // The backend does not see the terminal free (its view lags
                // by a heartbeat, or the link just came back): not now.
                Err(HarnessError::Api { status: 409, .. }) => {
                    if let Ok(mut c) = self.counts.lock() {
                        c.partner_skipped += 1;
                    }
                    return Ok(());
                }
                Err(e) => return Err(e),
            }
        }
        if let Ok(mut c) = self.counts.lock() {
            c.partner += 1;
        }
        self.tap(amount).await
    }

    fn press(&self, b: Button) -> Result<()> {
        self.device
            .press(b)
            .map_err(|e| HarnessError::Check(format!("press: {e}")))
    }

    /// From the tap screen: a visa_ok tap, timed to the result screen.
    async fn tap(&self, amount: Money) -> Result<()> {
        wait_state(&self.device, "tap_card", STEP, |s| {
            s.screen == ScreenName::TapCard && s.amount == Some(amount)
        })
        .await?;
        tokio::time::timeout(STEP, self.device.reader_ready())
            .await
            .map_err(|_| HarnessError::Check("the reader never waited for a card".into()))?;
        let t0 = Instant::now();
        self.device
            .tap(TestCard::VisaOk)
            .map_err(|e| HarnessError::Check(format!("tap: {e}")))?;
        let result = wait_state(&self.device, "a result", STEP, is_result).await?;
        let dt = t0.elapsed();
        if let Ok(mut v) = self.sold.lock() {
            v.push(Sold {
                terminal: self.index,
                amount,
                approved: result.screen == ScreenName::Approved,
                tap_to_result: dt,
            });
        }
        Ok(())
    }
}

/// Waits until terminal `dev` is online with an empty queue.
async fn drained(dev: &VirtualDevice, timeout: Duration) -> Result<ScreenState> {
    wait_state(dev, "online with an empty queue", timeout, |s| {
        !s.offline && s.queued == 0
    })
    .await
}

/// Waits until every terminal is online with an empty queue; returns when.
async fn all_drained(devices: &[VirtualDevice], timeout: Duration) -> Result<Instant> {
    let mut set = tokio::task::JoinSet::new();
    for d in devices {
        let d = d.clone();
        set.spawn(async move { drained(&d, timeout).await });
    }
    while let Some(r) = set.join_next().await {
        r.map_err(|e| HarnessError::Check(format!("drain watcher: {e}")))??;
    }
    Ok(Instant::now())
}

/// Runs the fleet and checks the money.
pub async fn run(opts: FleetOptions) -> Result<FleetReport> {
    let started = Instant::now();
    std::fs::create_dir_all(&opts.root)
        .map_err(HarnessError::io(format!("create {}", opts.root.display())))?;
    let sim_opts = SimOptions {
        ping_interval: Duration::from_secs(15),
        webhook_retry_base: Duration::from_millis(200),
        max_inflight: opts.max_inflight,
        state_file: Some(opts.root.join("kler-sim.db")),
        ..SimOptions::default()
    };
    let mut backend = Backend::start(sim_opts).await?;
    let agent = fleet_agent_options();

    // Sessions of at most 50, every terminal provisioned and started.
    let mut terminals: Vec<Terminal> = Vec::with_capacity(opts.terminals);
    let mut sessions = 0;
    let mut left = opts.terminals;
    while left > 0 {
        let n = left.min(SESSION_MAX);
        left -= n;
        sessions += 1;
        let session = backend
            .create_session(&format!("Fleet night {sessions}"), n as u32)
            .await?;
        for pos in &session.pos_terminals {
            let dir = opts.root.join(pos.terminal_id.as_str());
            let t = Terminal::provision(
                &backend,
                &session.session_id,
                &pos.terminal_id,
                &pos.label,
                &dir,
                &agent,
            )
            .await?;
            terminals.push(t);
        }
    }
    for t in &mut terminals {
        t.start().await?;
    }
    let devices: Vec<VirtualDevice> = terminals
        .iter()
        .map(|t| {
            t.virtual_device()
                .ok_or_else(|| HarnessError::Agent(format!("{} runs no virtual device", t.id)))
        })
        .collect::<Result<_>>()?;
    all_drained(&devices, Duration::from_secs(60)).await?;
    if let Some(sim) = backend.sim() {
        sim.reset_stats();
    }

    // Selling.
    let (outage_tx, outage_rx) = watch::channel(false);
    let (stop_tx, stop_rx) = watch::channel(false);
    let sold = Arc::new(Mutex::new(Vec::new()));
    let counts = Arc::new(Mutex::new(Counts::default()));
    let partner = Partner {
        http: backend.http().clone(),
        url: backend.url(),
    };
    let mut sellers = tokio::task::JoinSet::new();
    for (i, t) in terminals.iter().enumerate() {
        let s = Seller {
            index: i,
            id: t.id.clone(),
            device: devices[i].clone(),
            partner: partner.clone(),
            outage: outage_rx.clone(),
            stop: stop_rx.clone(),
            sold: Arc::clone(&sold),
            counts: Arc::clone(&counts),
            every: opts.sale_every,
            partner_percent: opts.partner_percent,
        };
        sellers.spawn(s.run());
    }

    let mut report = FleetReport {
        terminals: opts.terminals,
        sessions,
        duration: opts.duration,
        outage: opts.outage,
        max_inflight: opts.max_inflight,
        ..FleetReport::default()
    };
    let t0 = Instant::now();
    let outage_at = t0 + opts.duration.saturating_sub(opts.outage) / 2;
    let restart_at = opts.restart_sim_at.map(|d| t0 + d);
    let mut shed_before_reset = 0u64;

    // A restart that falls before the outage happens first.
    if let Some(at) = restart_at.filter(|at| *at < outage_at) {
        tokio::time::sleep_until(at).await;
        shed_before_reset += stats_shed(&backend);
        backend.restart().await?;
        report.sim_restarts += 1;
    }
    tokio::time::sleep_until(outage_at).await;
    let _ = outage_tx.send(true);
    for t in &terminals {
        t.proxy().set(LinkState::Refuse);
    }
    tokio::time::sleep_until(outage_at + opts.outage).await;
    shed_before_reset += stats_shed(&backend);
    if let Some(sim) = backend.sim() {
        sim.reset_stats();
    }
    let link_back = Instant::now();
    for t in &terminals {
        t.proxy().set(LinkState::Up);
    }
    let _ = outage_tx.send(false);
    match all_drained(&devices, opts.drain_timeout).await {
        Ok(done) => {
            report.drain = Some(done - link_back);
            report.recovery = backend.sim().map(|s| s.stats());
        }
        Err(e) => report.problems.push(format!("after the outage: {e}")),
    }
    if let Some(at) = restart_at.filter(|at| *at >= outage_at) {
        tokio::time::sleep_until(at).await;
        shed_before_reset += stats_shed(&backend);
        backend.restart().await?;
        report.sim_restarts += 1;
    }
    tokio::time::sleep_until(t0 + opts.duration).await;
    let _ = stop_tx.send(true);
    while sellers.join_next().await.is_some() {}
    if let Err(e) = all_drained(&devices, opts.drain_timeout).await {
        report.problems.push(format!("at the end: {e}"));
    }
    report.shed_total = shed_before_reset + stats_shed(&backend);

    // The agents stop; their ledgers against the backend.
    for t in &mut terminals {
        t.stop().await?;
    }
    let sold = sold.lock().map(|v| v.clone()).unwrap_or_default();
    if let Ok(mut c) = counts.lock() {
        report.partner_sales = c.partner;
        report.keypad_sales = c.keypad;
        report.partner_skipped = c.partner_skipped;
        report.problems.append(&mut c.problems);
    }
    check_money(&backend, &terminals, &sold, &mut report).await?;
    backend.shutdown().await;
    report.elapsed = started.elapsed();
    Ok(report)
}

fn stats_shed(backend: &Backend) -> u64 {
    backend.sim().map_or(0, |s| s.stats().shed)
}

/// Lost and duplicate payments, from what the cashiers saw, the ledgers
/// and the backend's statements.
async fn check_money(
    backend: &Backend,
    terminals: &[Terminal],
    sold: &[Sold],
    report: &mut FleetReport,
) -> Result<()> {
    let mut tap_online = Vec::new();
    let mut tap_offline = Vec::new();
    for (i, t) in terminals.iter().enumerate() {
        let txs = crate::reconcile::ledger(&t.ledger_path())?;
        let approved: Vec<&store::Transaction> = txs
            .iter()
            .filter(|x| x.kind == TxKind::Sale && x.state == TxState::Approved)
            .collect();
        // What the cashier saw approved is in the ledger, approved.
        let mut ledger_amounts: HashMap<u64, u64> = HashMap::new();
        let mut mode: HashMap<u64, DecisionMode> = HashMap::new();
        for x in &approved {
            *ledger_amounts.entry(x.amount.minor()).or_default() += 1;
            if let Some(d) = &x.decision {
                mode.insert(x.amount.minor(), d.mode);
            }
            match x.decision.as_ref().map(|d| d.mode) {
                Some(DecisionMode::Offline) => report.approved_offline += 1,
                _ => report.approved_online += 1,
            }
        }
        for s in sold.iter().filter(|s| s.terminal == i) {
            if !s.approved {
                report.not_approved += 1;
                continue;
            }
            match mode.get(&s.amount.minor()) {
                Some(DecisionMode::Offline) => tap_offline.push(s.tap_to_result),
                _ => tap_online.push(s.tap_to_result),
            }
            match ledger_amounts.get_mut(&s.amount.minor()) {
                Some(n) if *n > 0 => *n -= 1,
                _ => {
                    report.lost += 1;
                    report.problems.push(format!(
                        "{}: {} shown approved, not approved in the ledger",
                        t.id,
                        s.amount.to_wire()
                    ));
                }
            }
        }
        // Every approved ledger sale exactly once at the backend, approved;
        // nothing approved at the backend that the ledger lacks.
        let statement = backend.statement(&t.id, &t.credentials()?).await?;
        let mut remote: BTreeMap<String, Vec<&proto::wire::TransactionRecord>> = BTreeMap::new();
        for r in &statement {
            remote.entry(r.reference.to_string()).or_default().push(r);
        }
        for x in &approved {
            let at = remote
                .get(x.reference.as_str())
                .map_or(&[][..], |v| v.as_slice());
            let ok: Vec<_> = at
                .iter()
                .filter(|r| r.status == RecordStatus::Approved && r.amount == x.amount)
                .collect();
            match ok.len() {
                1 => {}
                0 => {
                    report.lost += 1;
                    report.problems.push(format!(
                        "{}: {} approved in the ledger, not at the backend ({} records)",
                        t.id,
                        x.reference,
                        at.len()
                    ));
                }
                n => {
                    report.duplicate += n as u64 - 1;
                    report.problems.push(format!(
                        "{}: {} at the backend {n} times",
                        t.id, x.reference
                    ));
                }
            }
        }
        for (reference, recs) in &remote {
            let charged = recs
                .iter()
                .filter(|r| r.kind == TxKind::Sale && r.status == RecordStatus::Approved)
                .count() as u64;
            if charged > 0 && !approved.iter().any(|x| x.reference.as_str() == reference) {
                report.duplicate += charged;
                report.problems.push(format!(
                    "{}: {reference} approved at the backend, not in the ledger",
                    t.id
                ));
            }
        }
    }
    report.tap_online = percentiles(tap_online);
    report.tap_offline = percentiles(tap_offline);
    Ok(())
}
