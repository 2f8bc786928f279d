//! The simulator demo: kler-sim and two pos-agents with virtual devices,
//! in one process, running a narrated payment scenario, then a third,
//! fresh board pairing by code. See docs/demo.md.
//!
//! `cargo run --release -p e2e-tests --bin demo [-- --out DIR] [--interactive]`

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Mutex;

use anyhow::Context;
use clap::Parser;
use e2e_tests::backend::SimOptions;
use e2e_tests::reconcile;
use e2e_tests::scenario::Scene;
use e2e_tests::script;
use e2e_tests::terminal::AgentOptions;
use e2e_tests::timeline::Timeline;

/// Run kler-sim and two virtual terminals through a narrated scenario.
#[derive(Debug, Parser)]
#[command(name = "demo")]
struct Args {
    /// Where screens (PNG), the timeline, the agents' log and the
    /// reconciliation go.
    #[arg(long, value_name = "DIR", default_value = "./demo-out")]
    out: PathBuf,
    /// After the scenario, keep everything up and print the addresses of
    /// the virtual devices and the simulator until Ctrl-C.
    #[arg(long)]
    interactive: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("demo: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(args)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("demo: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The virtual printers' receipts (text and PNG) into `out/receipts`.
async fn save_receipts(scene: &Scene, out: &std::path::Path) -> anyhow::Result<()> {
    let dir = out.join("receipts");
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    std::fs::create_dir_all(&dir)?;
    let mut count = 0;
    for t in &scene.terminals {
        let Ok(dev) = t.device() else { continue };
        let slug = t.label.to_lowercase().replace(' ', "-");
        for r in dev.receipts().await? {
            let n = r["n"].as_u64().unwrap_or(0);
            let base = dir.join(format!("{slug}-{n:03}"));
            std::fs::write(base.with_extension("txt"), r["text"].as_str().unwrap_or(""))?;
            std::fs::write(base.with_extension("png"), dev.receipt_png(n).await?)?;
            count += 1;
        }
    }
    println!("{count} printed receipts -> {}", dir.display());
    Ok(())
}

/// Step 10 (SPEC 8.1): a fresh virtual board with a minimal config (no
/// terminal id) shows a pairing code; the demo reads it off `/screen`,
/// claims it with the organisation key as the organiser would, and the
/// board reaches idle. Its own session, so the reconciliation below is
/// about the event's two terminals only.
async fn pair_fresh_board(
    scene: &mut Scene,
    data: &std::path::Path,
    out: &std::path::Path,
) -> anyhow::Result<()> {
    use e2e_tests::pairing::FreshTerminal;
    scene.timeline.note(
        "demo",
        "10. pairing by code: a fresh board, config without any terminal id",
    );
    let session = scene.backend.create_session("Next night", 1).await?;
    let terminal = session.pos_terminals[0].terminal_id.clone();
    let mut board = FreshTerminal::start_unpaired(
        &scene.backend,
        &data.join("fresh-board"),
        &AgentOptions::default(),
    )
    .await?;
    let code = board.wait_code(e2e_tests::scenario::STEP_TIMEOUT).await?;
    let png = out.join("100-fresh-board-pairing.png");
    std::fs::write(&png, board.device()?.png().await?)?;
    scene.timeline.note(
        "fresh",
        format!("shows pairing code {code} [pairing]  {}", png.display()),
    );
    let claimed = scene
        .backend
        .claim(&session.session_id, &terminal, &code)
        .await?;
    scene.timeline.note(
        "organiser",
        format!(
            "POST /v1/sessions/{}/terminals/{}/pair {{\"pairing_code\": \"{code}\"}} -> {}",
            session.session_id, claimed.terminal_id, claimed.status
        ),
    );
    let view = board
        .device()?
        .wait_screen("idle", std::time::Duration::from_secs(40))
        .await?;
    let png = out.join("101-fresh-board-idle.png");
    std::fs::write(&png, board.device()?.png().await?)?;
    scene.timeline.note(
        "fresh",
        format!(
            "paired as {terminal}: [{}]  {}",
            view.summary(),
            png.display()
        ),
    );
    board.stop().await?;
    Ok(())
}

async fn run(args: Args) -> anyhow::Result<bool> {
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    // Old screens from an earlier run would confuse the picture.
    for entry in std::fs::read_dir(&args.out)?.flatten() {
        let p = entry.path();
        if p.extension().is_some_and(|e| e == "png") {
            let _ = std::fs::remove_file(p);
        }
    }
    let log_path = args.out.join("agents.log");
    let log = std::fs::File::create(&log_path)
        .with_context(|| format!("cannot create {}", log_path.display()))?;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_ansi(false)
        .with_writer(Mutex::new(log))
        .init();

    let data = tempfile::Builder::new()
        .prefix("pos-agent-demo-")
        .tempdir()
        .context("cannot create the temporary data directories")?;
    println!("pos-agent demo: kler-sim + 2 virtual terminals");
    println!(
        "screens -> {}, agent logs -> {}, data dirs -> {}",
        args.out.display(),
        log_path.display(),
        data.path().display()
    );
    println!();
    let timeline = Timeline::new(Some(&args.out), true)?;
    let mut scene = Scene::start(
        data.path(),
        2,
        SimOptions::default(),
        AgentOptions::default(),
        timeline,
    )
    .await?;

    // Interactive: the session stays open for payments by hand and is
    // closed after Ctrl-C.
    let outcome = script::run(&mut scene, !args.interactive).await;
    if let Err(e) = &outcome {
        println!("\nscenario FAILED: {e}");
    }
    let paired = pair_fresh_board(&mut scene, data.path(), &args.out).await;
    if let Err(e) = &paired {
        println!("\npairing by code FAILED: {e:#}");
    }

    if args.interactive {
        println!("\ninteractive: everything stays up until Ctrl-C");
        println!(
            "  kler-sim      {}   (organisation key {})",
            scene.backend.url(),
            e2e_tests::backend::ORG_KEY
        );
        // The fragment never reaches the server: the page reads it and keeps
        // the key in the browser tab's session storage.
        println!(
            "  dashboard     {}/dashboard#org_key={}",
            scene.backend.url(),
            e2e_tests::backend::ORG_KEY
        );
        for t in &scene.terminals {
            if let Ok(d) = t.device() {
                println!(
                    "  {:<12}  {}   (terminal {}, backend via {})",
                    t.label,
                    d.url(),
                    t.id,
                    t.proxy().url()
                );
            }
        }
        println!("  session       {}", scene.session_id());
        tokio::signal::ctrl_c()
            .await
            .context("waiting for Ctrl-C")?;
        println!();
        if outcome.is_ok() {
            scene.timeline.note("demo", "9. session close");
            scene.close_session().await?;
        }
    }

    save_receipts(&scene, &args.out).await?;
    // SPEC 7.7: the backend's reconciliation separates card (pos) and
    // transfer (account) payments.
    let by_channel = match scene.backend.reconciliation(scene.session_id()).await {
        Ok(r) => {
            let line = r
                .by_channel
                .iter()
                .map(|(ch, c)| {
                    format!(
                        "{ch}: {} for {}",
                        c.count,
                        c.total.display(proto::Currency::Ngn)
                    )
                })
                .collect::<Vec<_>>()
                .join(", ");
            println!("\nbackend reconciliation by channel: {line}");
            ["pos", "account"]
                .iter()
                .all(|ch| r.by_channel.get(*ch).is_some_and(|c| c.count > 0))
        }
        Err(e) => {
            println!("\nbackend reconciliation FAILED: {e}");
            false
        }
    };
    if !by_channel {
        println!("MISMATCH: the reconciliation lacks card (pos) or transfer (account) payments");
    }
    scene.stop_agents().await?;
    let report = reconcile::reconcile(&scene).await?;
    let table = report.render();
    println!("\nreconciliation (agent ledgers vs kler-sim reconciliation and statements)");
    print!("{table}");
    let ok = outcome.is_ok() && paired.is_ok() && report.all_match() && by_channel;
    println!(
        "\n{}",
        if report.all_match() {
            "RECONCILED: every ledger matches the backend"
        } else {
            "MISMATCH: see the DIFF lines above"
        }
    );

    let mut text = String::new();
    for e in scene.timeline.entries() {
        text.push_str(&format!(
            "{:>8.3}s  {:<8} {}{}{}\n",
            e.at_ms as f64 / 1000.0,
            e.who,
            e.what,
            e.screen
                .as_deref()
                .map(|s| format!("  [{s}]"))
                .unwrap_or_default(),
            e.png
                .as_deref()
                .and_then(|p| p.file_name())
                .map(|n| format!("  {}", n.to_string_lossy()))
                .unwrap_or_default()
        ));
    }
    std::fs::write(args.out.join("timeline.txt"), text)?;
    std::fs::write(args.out.join("reconciliation.txt"), table)?;
    scene.backend.shutdown().await;
    if let Ok(o) = outcome {
        println!(
            "{} approved sales, {} offline sales drained, {} refund, {} bar sales, {} paid by transfer; output in {}",
            o.approved_sales,
            o.offline_sales,
            o.refunds,
            o.bar_sales,
            o.transfer_sales,
            args.out.display()
        );
    }
    Ok(ok)
}
