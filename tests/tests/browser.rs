//! Browser tests (SPEC 8.4 and 6): Debian's chromium, headless, driven over
//! WebDriver (chromedriver, started here on a free loopback port) through
//! the sim's dashboard and a terminal's virtual device page, with kler-sim
//! and a pos-agent in-process as in the e2e tests. Ignored by default (they
//! need `chromium` and `chromium-driver`); CI runs them with
//! `cargo test -p e2e-tests --test browser --locked -- --ignored --test-threads=1`.
//! Each step saves a PNG under `target/browser-screenshots/`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use e2e_tests::backend::{Backend, ORG_KEY, SimOptions};
use e2e_tests::pairing::FreshTerminal;
use e2e_tests::scenario::{STEP_TIMEOUT, Scene};
use e2e_tests::terminal::AgentOptions;
use e2e_tests::timeline::Timeline;
use fantoccini::wd::Capabilities;
use fantoccini::{Client, ClientBuilder, Locator};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// How long the browser may take to show what the backend already knows.
const SHOW: Duration = Duration::from_secs(20);

/// chromedriver on a free loopback port, killed on drop.
struct Driver {
    _child: Child,
    url: String,
}

impl Driver {
    /// Starts chromedriver and waits for its "started successfully" line.
    async fn start() -> Driver {
        let exe = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into());
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = Command::new(&exe)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start {exe} (apt-get install chromium-driver): {e}")
            });
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let ready = tokio::time::timeout(Duration::from_secs(20), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if line.contains("started successfully") {
                    return true;
                }
            }
            false
        })
        .await;
        assert_eq!(ready, Ok(true), "chromedriver did not say it started");
        // Keep draining its stdout so it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Driver {
            _child: child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }

    async fn browser(&self) -> Client {
        let mut chrome = serde_json::json!({
            "args": [
                "--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                "--disable-gpu", "--window-size=1500,1100", "--lang=en-GB",
                "--no-first-run", "--disable-extensions"
            ]
        });
        if let Ok(bin) = std::env::var("CHROMIUM") {
            chrome["binary"] = bin.into();
        }
        let mut caps = Capabilities::new();
        caps.insert("goog:chromeOptions".into(), chrome);
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&self.url)
            .await
            .expect("a chromium session")
    }
}

/// `target/browser-screenshots/` (or under `CARGO_TARGET_DIR`).
fn shots_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let dir = target.join("browser-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn shot(c: &Client, name: &str) {
    let png = c.screenshot().await.unwrap();
    let path = shots_dir().join(format!("{name}.png"));
    std::fs::write(&path, png).unwrap();
    eprintln!("screenshot {}", path.display());
}

/// Waits until an element matches `css` (the dashboard puts the facts a
/// test looks for into `data-*` attributes).
async fn wait_css(c: &Client, what: &str, css: &str) {
    if let Err(e) = c.wait().at_most(SHOW).for_element(Locator::Css(css)).await {
        let _ = shot(c, &format!("failed-{}", what.replace(' ', "-"))).await;
        panic!("{what}: no {css} within {SHOW:?}: {e}");
    }
}

/// Clicks the element matching `css`. The live page may render it anew
/// between finding and clicking it (a stale element): then it is found
/// again, at most a few times, never waited for blindly.
async fn click_css(c: &Client, css: &str) {
    for _ in 0..5 {
        let element = c.find(Locator::Css(css)).await.unwrap();
        match element.click().await {
            Ok(_) => return,
            Err(e) if e.is_stale_element_reference() => continue,
            Err(e) => panic!("clicking {css}: {e}"),
        }
    }
    panic!("{css} was rendered anew five times while being clicked");
}

async fn scene() -> (tempfile::TempDir, Scene) {
    let dir = tempfile::tempdir().unwrap();
    let timeline = Timeline::new(None, true).unwrap();
    let scene = Scene::start(
        dir.path(),
        1,
        SimOptions::default(),
        AgentOptions::default(),
        timeline,
    )
    .await
    .unwrap();
    (dir, scene)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs chromium and chromium-driver; CI runs it with --ignored"]
async fn the_dashboard_and_the_device_page_sell_and_show_it_live() {
    let (_dir, s) = scene().await;
    let driver = Driver::start().await;
    let c = driver.browser().await;
    let tid = s.terminals[0].id.to_string();
    let dev = s.terminals[0].device().unwrap().clone();
    let sid = s.session_id().to_string();

    // (a) The dashboard, keyed by the fragment: the session, its terminal
    // online; the key leaves the address bar.
    c.goto(&format!("{}/dashboard#org_key={ORG_KEY}", s.backend.url()))
        .await
        .unwrap();
    let dashboard = c.window().await.unwrap();
    wait_css(&c, "live stream", "#live[data-live='yes']").await;
    wait_css(
        &c,
        "the terminal online",
        &format!("article[data-session='{sid}'] table.terminals tr[data-terminal='{tid}'][data-status='online']"),
    )
    .await;
    let url = c.current_url().await.unwrap();
    assert!(
        url.fragment().is_none(),
        "the key stays in the address bar: {url}"
    );
    shot(&c, "01-dashboard-terminal-online").await;

    // A payment from the dashboard's form.
    let form = format!("form.charge[data-terminal='{tid}']");
    // The live page may re-render the form between find and typing (a
    // heartbeat arrives): find it again when the element went stale.
    let amount = format!("{form} input[name='amount']");
    let mut typed = false;
    for _ in 0..20 {
        let field = c.find(Locator::Css(&amount)).await.unwrap();
        if field.send_keys("2500").await.is_ok() {
            typed = true;
            break;
        }
    }
    assert!(typed, "could not type into {amount}");
    click_css(&c, &format!("{form} button[type='submit']")).await;
    wait_css(&c, "the payment listed", "table.payments tr[data-payment]").await;
    let view = dev.wait_screen("tap_card", STEP_TIMEOUT).await.unwrap();
    assert_eq!(
        view.amount.as_deref(),
        Some("2500.00"),
        "{}",
        view.summary()
    );
    shot(&c, "02-dashboard-payment-sent").await;

    // (b) The device page in a second window: tap a test card.
    let device = c.new_window(false).await.unwrap();
    c.switch_to_window(device.handle.clone()).await.unwrap();
    c.goto(&format!("{}/", dev.url())).await.unwrap();
    wait_css(&c, "the card buttons", "#cards button").await;
    shot(&c, "03-device-tap-card").await;
    c.find(Locator::XPath(
        "//div[@id='cards']/button[text()='visa_ok']",
    ))
    .await
    .unwrap()
    .click()
    .await
    .unwrap();
    let view = dev.wait_screen("approved", STEP_TIMEOUT).await.unwrap();
    assert_eq!(
        view.amount.as_deref(),
        Some("2500.00"),
        "{}",
        view.summary()
    );
    wait_css(&c, "the device page says approved", "#state").await;
    shot(&c, "04-device-approved").await;

    // (c) Back on the dashboard, never reloaded: approved, reconciled.
    c.switch_to_window(dashboard.clone()).await.unwrap();
    wait_css(
        &c,
        "the payment approved",
        "table.payments tr[data-payment][data-status='approved']",
    )
    .await;
    wait_css(
        &c,
        "one sale reconciled",
        &format!("table.by-terminal tr[data-terminal='{tid}'][data-count='1']"),
    )
    .await;
    shot(&c, "05-dashboard-approved-reconciled").await;

    // (d) A keypad sale on the device page: digits, OK, a card.
    c.switch_to_window(device.handle.clone()).await.unwrap();
    dev.press("ok").await.unwrap(); // the receipt prompt: print it
    dev.wait_screen("idle", STEP_TIMEOUT).await.unwrap();
    for key in ["1", "5", "0", "0", "0"] {
        click_css(&c, &format!("#keypad button[data-button='{key}']")).await;
    }
    let view = dev
        .wait_for("amount 150.00", STEP_TIMEOUT, |v| {
            v.screen == "amount_entry" && v.amount.as_deref() == Some("150.00")
        })
        .await
        .unwrap();
    assert_eq!(view.screen, "amount_entry");
    click_css(&c, "#keypad button[data-button='ok']").await;
    dev.wait_screen("tap_card", STEP_TIMEOUT).await.unwrap();
    c.find(Locator::XPath("//div[@id='cards']/button[text()='mc_ok']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    dev.wait_screen("approved", STEP_TIMEOUT).await.unwrap();
    // The page's own state view shows it (it follows the device by long poll).
    c.wait()
        .at_most(SHOW)
        .for_element(Locator::XPath(
            "//pre[@id='state'][contains(., '\"screen\": \"approved\"')]",
        ))
        .await
        .expect("the device page shows approved");
    shot(&c, "06-device-keypad-sale-approved").await;

    c.switch_to_window(dashboard).await.unwrap();
    wait_css(
        &c,
        "the keypad sale reconciled",
        &format!("table.by-terminal tr[data-terminal='{tid}'][data-count='2']"),
    )
    .await;
    shot(&c, "07-dashboard-keypad-sale").await;

    c.close().await.unwrap();
    s.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs chromium and chromium-driver; CI runs it with --ignored"]
async fn the_dashboard_pairs_a_fresh_terminal_by_its_code_and_closes_the_session() {
    let dir = tempfile::tempdir().unwrap();
    let backend = Backend::start(SimOptions::default()).await.unwrap();
    // Its webhooks go to a loopback port where nothing listens: every
    // attempt fails, and the dashboard lists them.
    let hooks = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hook_url = format!("http://{}/hooks", hooks.local_addr().unwrap());
    drop(hooks);
    let session: proto::wire::Session = e2e_tests::backend::send_enveloped(
        "create a session",
        backend
            .http()
            .post(format!("{}/v1/sessions", backend.url()))
            .header("x-api-key", ORG_KEY)
            .json(&serde_json::json!({
                "external_event_id": "evt-pairing", "name": "Pairing night",
                "collection": {"account": false, "pos": true, "pos_count": 2},
                "webhook_url": hook_url,
            })),
    )
    .await
    .unwrap();
    let sid = session.session_id.to_string();
    let tid = session.pos_terminals[1].terminal_id.to_string();
    let mut board = FreshTerminal::start_unpaired(
        &backend,
        &dir.path().join("board"),
        &AgentOptions::default(),
    )
    .await
    .unwrap();
    let code = board.wait_code(STEP_TIMEOUT).await.unwrap();

    let driver = Driver::start().await;
    let c = driver.browser().await;
    // Asked for the key: typed once into the form.
    c.goto(&format!("{}/dashboard", backend.url()))
        .await
        .unwrap();
    wait_css(&c, "the key form", "#login:not([hidden]) #org-key").await;
    shot(&c, "10-dashboard-asks-the-key").await;
    c.find(Locator::Css("#org-key"))
        .await
        .unwrap()
        .send_keys(ORG_KEY)
        .await
        .unwrap();
    click_css(&c, "#login button[type='submit']").await;
    let session_css = format!("article[data-session='{sid}']");
    wait_css(&c, "the session", &session_css).await;

    // The code the board shows, typed in lower case, for its second terminal.
    let pair = format!("{session_css} form.pair");
    c.find(Locator::Css(&format!("{pair} input[name='pairing_code']")))
        .await
        .unwrap()
        .send_keys(&code.to_lowercase())
        .await
        .unwrap();
    c.find(Locator::Css(&format!(
        "{pair} select[name='terminal_id'] option[value='{tid}']"
    )))
    .await
    .unwrap()
    .click()
    .await
    .unwrap();
    shot(&c, "11-dashboard-pair-code-typed").await;
    click_css(&c, &format!("{pair} button[type='submit']")).await;
    let dev = board.device().unwrap().clone();
    dev.wait_screen("idle", Duration::from_secs(40))
        .await
        .unwrap();
    wait_css(
        &c,
        "the paired terminal online",
        &format!("{session_css} table.terminals tr[data-terminal='{tid}'][data-status='online']"),
    )
    .await;
    shot(&c, "12-dashboard-terminal-paired").await;

    // Close the session: confirmed in the browser's dialog.
    click_css(&c, &format!("{session_css} button.close-session")).await;
    c.accept_alert().await.unwrap();
    wait_css(
        &c,
        "the session closed",
        &format!("article[data-session='{sid}'][data-status='closed']"),
    )
    .await;
    dev.wait_screen("session_closed", STEP_TIMEOUT)
        .await
        .unwrap();
    shot(&c, "13-dashboard-session-closed").await;
    c.execute(
        "document.getElementById('webhooks-section').scrollIntoView()",
        vec![],
    )
    .await
    .unwrap();
    shot(&c, "14-dashboard-webhooks").await;

    c.close().await.unwrap();
    board.stop().await.unwrap();
    backend.shutdown().await;
}
