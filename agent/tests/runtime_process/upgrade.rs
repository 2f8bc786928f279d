//! Upgrades (SPEC 8.3): `pos-agent wait-idle` against a real `pos-agent
//! run` process, and the package's real `prerm` with a fake `systemctl`
//! first in `PATH` that records its calls (and, at `stop`, what the ledger
//! held at that moment).

use std::path::{Path, PathBuf};

use super::*;

/// `pos-agent wait-idle --config … --timeout S`; returns the output and
/// how long it took.
async fn wait_idle(config: &Path, timeout_s: &str) -> (std::process::Output, Duration) {
    let started = std::time::Instant::now();
    let out = timeout(
        DEADLINE,
        crate::common::pos_agent(
            &[
                "wait-idle",
                "--config",
                config.to_str().unwrap(),
                "--timeout",
                timeout_s,
            ],
            &[("RUST_LOG", "warn")],
        ),
    )
    .await
    .expect("wait-idle never returned");
    (out, started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_idle_times_out_with_75_while_a_payment_waits_and_returns_at_once_when_idle_or_stopped()
 {
    let mut p = Proc::start().await;
    let config = p.dir.path().join("config.toml");

    // A payment waits for its card: wait-idle gives up with 75.
    let pid = p.create_payment("1200.00", "UPG-1").await;
    p.wait_screen("tap_card").await;
    let (out, took) = wait_idle(&config, "1").await;
    let (stdout, stderr) = crate::common::text(&out);
    assert_eq!(out.status.code(), Some(75), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("a payment is still in progress after 1 s"),
        "{stderr}"
    );
    assert!(took >= Duration::from_secs(1), "{took:?}");
    // The hold never cancels the payment: it finishes when the card comes.
    assert_eq!(p.screen().await["screen"], "tap_card");
    p.tap("visa_ok").await;
    p.wait_screen("approved").await;
    until("the partner to see the approval", || async {
        (p.payment(&pid).await["status"] == "approved").then_some(())
    })
    .await;

    // Idle: at once.
    let (out, took) = wait_idle(&config, "10").await;
    let (stdout, stderr) = crate::common::text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("no payment in progress"), "{stdout}");
    assert!(took < Duration::from_secs(5), "{took:?}");

    // Intake is held: a new sale is refused as busy, the keypad says why.
    // (The sim may answer 409 itself while it still sees the terminal
    // busy; otherwise the terminal acks rejected/busy.)
    let created = p
        .org(
            reqwest::Method::POST,
            "/v1/payments",
            Some(json!({
                "terminal_id": p.terminal, "amount": "300.00",
                "currency": "NGN", "reference": "UPG-2"
            })),
        )
        .await;
    if let Some(refused) = created["data"]["payment_id"].as_str() {
        let status = until("the held terminal to refuse the sale", || async {
            let s = p.payment(refused).await["status"].clone();
            (s != "pending").then_some(s)
        })
        .await;
        assert_ne!(status, "in_progress", "a held terminal started a sale");
    } else {
        assert_eq!(created["success"], false, "{created}");
    }
    p.wait_screen("idle").await;
    for key in ["1", "0", "0", "ok"] {
        let r = p
            .http
            .post(format!("http://{}/press", p.control_addr))
            .json(&json!({ "button": key }))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
    }
    let s = until("the keypad's refusal", || async {
        let s = p.screen().await;
        s["message"]
            .as_str()
            .is_some_and(|m| m.contains("Terminal updating"))
            .then_some(s)
    })
    .await;
    assert_eq!(s["screen"], "amount_entry", "{s}");

    // No agent: at once.
    p.sigterm_and_wait().await;
    let (out, took) = wait_idle(&config, "10").await;
    let (stdout, stderr) = crate::common::text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("no agent is running"), "{stdout}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    p.sim.shutdown().await;
}

/// A directory of fake `systemctl` and `deb-systemd-invoke` that append
/// their arguments to `calls.log` (and at `stop`, the agent's report as
/// the ledger stood then to `stop-report.json`), and `pos-agent`.
fn fake_bin(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let bin = dir.join("fake-bin");
    std::fs::create_dir_all(&bin).unwrap();
    let log = dir.join("calls.log");
    let report = dir.join("stop-report.json");
    for name in ["systemctl", "deb-systemd-invoke"] {
        let script = format!(
            "#!/bin/sh\necho \"{name} $*\" >> '{log}'\n\
             if [ \"$1\" = stop ]; then pos-agent report --json > '{report}' 2>&1; fi\nexit 0\n",
            log = log.display(),
            report = report.display(),
        );
        let path = bin.join(name);
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::os::unix::fs::symlink(crate::common::BIN, bin.join("pos-agent")).unwrap();
    bin
}

/// The package's `prerm`, with the two host paths it looks at moved into
/// `dir`: `/run/systemd/system` (systemd is running) and the restart mark.
fn prerm_copy(dir: &Path) -> PathBuf {
    let real = Path::new(env!("CARGO_MANIFEST_DIR")).join("../packaging/debian/prerm");
    let systemd = dir.join("run-systemd-system");
    std::fs::create_dir_all(&systemd).unwrap();
    let text = std::fs::read_to_string(real).unwrap();
    assert!(text.contains("/run/systemd/system") && text.contains("wait-idle"));
    let text = text
        .replace("/run/systemd/system", systemd.to_str().unwrap())
        .replace(
            "/run/pos-agent.restart-after-upgrade",
            dir.join("restart-after-upgrade").to_str().unwrap(),
        );
    let copy = dir.join("prerm");
    std::fs::write(&copy, text).unwrap();
    copy
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_package_upgrade_during_a_payment_waits_for_it_to_finish() {
    let mut p = Proc::start().await;
    let dir = p.dir.path().to_path_buf();
    let bin = fake_bin(&dir);
    let prerm = prerm_copy(&dir);
    let log = dir.join("calls.log");
    let calls = || std::fs::read_to_string(&log).unwrap_or_default();

    let pid = p.create_payment("2500.00", "UPG-3").await;
    p.wait_screen("tap_card").await;
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let mut script = tokio::process::Command::new("sh")
        .arg(&prerm)
        .args(["upgrade", "0.2.0"])
        .env("PATH", path)
        .env("POS_AGENT_CONFIG", dir.join("config.toml"))
        .env_remove("DPKG_ROOT")
        .env("RUST_LOG", "warn")
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // prerm asked whether the agent runs; wait-idle follows.
    until("prerm to look at the service", || async {
        calls().contains("systemctl is-active").then_some(())
    })
    .await;
    assert!(
        !calls().contains("stop"),
        "stopped during the payment: {}",
        calls()
    );
    p.tap("visa_ok").await;
    p.wait_screen("approved").await;

    let status = timeout(DEADLINE, script.wait()).await.unwrap().unwrap();
    assert_eq!(status.code(), Some(0));
    let calls = calls();
    let lines: Vec<&str> = calls.lines().collect();
    assert_eq!(
        lines,
        [
            "systemctl is-active --quiet pos-agent.service",
            "systemctl stop pos-agent.service"
        ],
        "{calls}"
    );
    // When the stop came, the ledger already held the sale approved.
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("stop-report.json")).unwrap())
            .unwrap();
    assert_eq!(report["by_status"]["approved"]["count"], 1, "{report}");
    assert!(
        dir.join("restart-after-upgrade").exists(),
        "postinst is told to start it again"
    );
    let payment = p.payment(&pid).await;
    assert_ne!(payment["status"], "aborted", "{payment}");
    p.sigterm_and_wait().await;
    p.sim.shutdown().await;
}
