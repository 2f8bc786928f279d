//! The shell's backend code against the real simulator (`kler-sim`) on
//! loopback: provisioning through the binary, every typed terminal API call,
//! `doctor` and `reconcile`.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::path::{Path, PathBuf};
use std::process::Output;

use pos_agent::card::{CardKey, EntryMode, tokenize_secret};
use pos_agent::client::{OrgClient, SignedClient};
use pos_agent::config::{self, Config, Sources};
use proto::signing::Secret;
use proto::wire::{
    AgentState, AuthStatus, CreateSession, Heartbeat, ReversalRequest, ReversalStatus, Session,
    StatementQuery, Timestamp, TransactionSubmission, TxKind,
};
use proto::{Currency, Money, Reference};

use crate::common::{self, text};

const ORG_KEY: &str = "sim-org-key-123";

/// `pos-agent` with `args` in an empty environment.
async fn pos_agent(args: &[&str]) -> Output {
    common::pos_agent(args, &[]).await
}

struct World {
    _sim: kler_sim::RunningSim,
    _dir: tempfile::TempDir,
    config_file: PathBuf,
    config: Config,
}

/// A simulator with one session of one terminal, and a config for it.
async fn world() -> World {
    let sim = kler_sim::start(kler_sim::Config::new("127.0.0.1:0", ORG_KEY))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = sim.url();
    let bootstrap = config::BackendConfig {
        url: url.parse().unwrap(),
        terminal_api_url: url.parse().unwrap(),
        ca_file: None,
        ca_pem: None,
        connect_timeout: std::time::Duration::from_secs(2),
        request_timeout: std::time::Duration::from_secs(10),
    };
    let org = OrgClient::new(&bootstrap, Secret::new(ORG_KEY)).unwrap();
    let create: CreateSession = serde_json::from_value(serde_json::json!({
        "external_event_id": "evt-1", "name": "Festival",
        "collection": {"account": false, "pos": true, "pos_count": 1}
    }))
    .unwrap();
    let session: Session = org.post_json("/v1/sessions", &create, None).await.unwrap();
    let terminal = session.pos_terminals[0].terminal_id.clone();
    let config_file = write_config(
        dir.path(),
        &url,
        terminal.as_str(),
        session.session_id.as_str(),
    );
    let config = config::load(&Sources {
        file: config_file.clone(),
        ..Sources::default()
    })
    .unwrap()
    .config;
    World {
        _sim: sim,
        _dir: dir,
        config_file,
        config,
    }
}

fn write_config(dir: &Path, url: &str, terminal: &str, session: &str) -> PathBuf {
    let path = dir.join("config.toml");
    std::fs::write(
        &path,
        format!(
            "data_dir = {:?}\n[terminal]\nid = {terminal:?}\nsession_id = {session:?}\n[backend]\nurl = {url:?}\n",
            dir.join("data").display().to_string()
        ),
    )
    .unwrap();
    path
}

async fn provision(w: &World) {
    let out = pos_agent(&[
        "provision",
        "--config",
        w.config_file.to_str().unwrap(),
        "--org-key",
        ORG_KEY,
        "--terminal",
        w.config.terminal.id.as_ref().unwrap().as_str(),
        "--session",
        w.config.terminal.session_id.as_ref().unwrap().as_str(),
    ])
    .await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
}

fn sale(reference: &Reference, key: &CardKey, pan: &str, amount: &str) -> TransactionSubmission {
    TransactionSubmission {
        reference: reference.clone(),
        payment_id: None,
        kind: TxKind::Sale,
        amount: Money::parse(amount).unwrap(),
        currency: Currency::Ngn,
        card: tokenize_secret(
            key,
            &hal::SecretPan::new(pan).unwrap(),
            EntryMode::Contactless,
        ),
        operator_id: None,
        captured_at: Timestamp::now(),
        offline: false,
        original_reference: None,
        tip_amount: None,
        items: None,
    }
}

#[tokio::test]
async fn provisioned_credentials_sign_every_terminal_api_call() {
    let w = world().await;
    provision(&w).await;
    let id = pos_agent::provision::load_identity(&w.config, None).unwrap();
    let client =
        SignedClient::new(&w.config.backend, id.terminal_id.clone(), id.credentials).unwrap();

    let session = client
        .session(w.config.terminal.session_id.as_ref().unwrap())
        .await
        .unwrap();
    assert_eq!(
        Some(&session.session_id),
        w.config.terminal.session_id.as_ref()
    );

    let hb = client
        .heartbeat(&Heartbeat {
            agent_version: env!("CARGO_PKG_VERSION").into(),
            state: AgentState::Idle,
            queue_depth: 0,
            parked: 0,
            oldest_queued_at: None,
            offline_since: None,
            hal: None,
            metrics: None,
        })
        .await
        .unwrap();
    assert_eq!(hb.session_status, session.status);

    let r1 = Reference::for_sequence(&id.terminal_id, 1);
    let tx = sale(&r1, &id.card_key, "4111111111111111", "1500.50");
    let first = client.submit_transaction(&tx).await.unwrap();
    assert_eq!(first.status, AuthStatus::Approved);
    // The same reference again: the same answer, recorded once.
    let again = client.submit_transaction(&tx).await.unwrap();
    assert_eq!(again.transaction_id, first.transaction_id);

    let r2 = Reference::for_sequence(&id.terminal_id, 2);
    let declined = client
        .submit_transaction(&sale(&r2, &id.card_key, "4000000000000002", "10.00"))
        .await
        .unwrap();
    assert_eq!(declined.status, AuthStatus::Declined);

    let record = client.lookup_transaction(&r1).await.unwrap().unwrap();
    assert_eq!(record.amount.to_wire(), "1500.50");
    assert_eq!(record.card.as_ref().map(|c| c.last4.as_str()), Some("1111"));
    let unknown = Reference::for_sequence(&id.terminal_id, 99);
    assert!(client.lookup_transaction(&unknown).await.unwrap().is_none());

    let rev = client
        .reverse(&unknown, &ReversalRequest::default())
        .await
        .unwrap();
    assert_eq!(rev.status, ReversalStatus::NotFound);

    let page = client.statement(&StatementQuery::default()).await.unwrap();
    assert_eq!(page.total_elements, 2);

    // Re-provisioning rotates the credentials: the old ones stop working.
    let out = pos_agent(&[
        "provision",
        "--config",
        w.config_file.to_str().unwrap(),
        "--org-key",
        ORG_KEY,
        "--terminal",
        w.config.terminal.id.as_ref().unwrap().as_str(),
        "--session",
        w.config.terminal.session_id.as_ref().unwrap().as_str(),
        "--force",
    ])
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
    let e = client
        .statement(&StatementQuery::default())
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(401), "{e}");
    let fresh = pos_agent::provision::load_identity(&w.config, None).unwrap();
    let client =
        SignedClient::new(&w.config.backend, fresh.terminal_id, fresh.credentials).unwrap();
    assert!(client.statement(&StatementQuery::default()).await.is_ok());
}

#[tokio::test]
async fn doctor_passes_and_reconcile_reports_disagreement() {
    let w = world().await;
    let cfg = w.config_file.to_str().unwrap();

    // Before provisioning, doctor fails on the credentials line.
    let out = pos_agent(&["doctor", "--config", cfg]).await;
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("FAIL") && l.contains("credentials")),
        "{stdout}"
    );

    provision(&w).await;
    let out = pos_agent(&["doctor", "--config", cfg]).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    for check in ["config", "storage", "credentials", "clock", "backend"] {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with("ok") && l.contains(check)),
            "{check}:\n{stdout}"
        );
    }

    // Nothing anywhere (an empty ledger, as the first `run` creates it):
    // ledger and backend agree.
    drop(store::Store::open(w.config.ledger_path()).unwrap());
    let out = pos_agent(&["reconcile", "--json", "--config", cfg]).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["clean"], true);

    // The backend knows a sale the (empty) local ledger does not.
    let id = pos_agent::provision::load_identity(&w.config, None).unwrap();
    let client =
        SignedClient::new(&w.config.backend, id.terminal_id.clone(), id.credentials).unwrap();
    let r1 = Reference::for_sequence(&id.terminal_id, 1);
    client
        .submit_transaction(&sale(&r1, &id.card_key, "5555555555554444", "2000.00"))
        .await
        .unwrap();
    let out = pos_agent(&["reconcile", "--json", "--config", cfg]).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["clean"], false);
    assert_eq!(v["backend"]["sales"]["total"], "2000.00");
    assert_eq!(v["mismatches"][0]["reference"], r1.as_str());

    // With the organisation key, the session reconciliation is checked too:
    // its line for this terminal (one sale) disagrees with the empty ledger.
    let out = pos_agent(&["reconcile", "--json", "--config", cfg, "--org-key", ORG_KEY]).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["session"]["count"], 1);
    assert_eq!(v["session"]["total"], "2000.00");
    assert_eq!(v["mismatches"].as_array().unwrap().len(), 2, "{v}");

    // Once the ledger holds the same sale, everything agrees.
    let data = w.config.data_dir.clone();
    {
        let store = store::Store::open(data.join("ledger.sqlite")).unwrap();
        let card = store::Card::new(
            "9f2c4e1a0b7d3e6f8a1c2b4d6e8f0a1b",
            "4444",
            store::CardBrand::Mastercard,
            store::EntryMode::Contactless,
        )
        .unwrap();
        store
            .record(&store::Change::insert(
                1_763_719_200_000,
                store::NewTransaction {
                    state: store::TxState::Approved,
                    card: Some(card),
                    ..store::NewTransaction::sale(r1.clone(), Money::parse("2000.00").unwrap())
                },
            ))
            .unwrap();
    }
    let out = pos_agent(&["reconcile", "--config", cfg, "--org-key", ORG_KEY]).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("ledger and backend agree"), "{stdout}");
    assert!(stdout.contains("NGN 2,000.00"), "{stdout}");
}

#[tokio::test]
async fn a_mistyped_session_or_terminal_is_refused_before_the_working_credentials_are_replaced() {
    let w = world().await;
    provision(&w).await;
    let id = pos_agent::provision::load_identity(&w.config, None).unwrap();
    let client =
        SignedClient::new(&w.config.backend, id.terminal_id.clone(), id.credentials).unwrap();
    assert!(client.statement(&StatementQuery::default()).await.is_ok());
    let before = std::fs::read(w.config.data_dir.join("credentials.json")).unwrap();
    let terminal = w.config.terminal.id.as_ref().unwrap().as_str();
    let session = w.config.terminal.session_id.as_ref().unwrap().as_str();

    // The typo only on the command line: it contradicts the config.
    let typo = format!("{session}x");
    let out = pos_agent(&[
        "provision",
        "--config",
        w.config_file.to_str().unwrap(),
        "--org-key",
        ORG_KEY,
        "--terminal",
        terminal,
        "--session",
        &typo,
        "--force",
    ])
    .await;
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(78), "{stderr}");
    assert!(stderr.contains("terminal.session_id"), "{stderr}");

    // The same typo in the config too: the backend does not know the session.
    let dir = tempfile::tempdir().unwrap();
    let url = w.config.backend.url.as_str();
    let cfg = write_config(dir.path(), url, terminal, &typo);
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    // (a separate data directory, so only the backend can refuse it)
    let out = pos_agent(&[
        "provision",
        "--config",
        cfg.to_str().unwrap(),
        "--org-key",
        ORG_KEY,
        "--terminal",
        terminal,
        "--session",
        &typo,
    ])
    .await;
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(78), "{stderr}");
    assert!(stderr.contains("knows no session"), "{stderr}");

    // A real session that does not have this terminal.
    let org = OrgClient::new(&w.config.backend, Secret::new(ORG_KEY)).unwrap();
    let create: CreateSession = serde_json::from_value(serde_json::json!({
        "external_event_id": "evt-2", "name": "Other",
        "collection": {"account": false, "pos": true, "pos_count": 1}
    }))
    .unwrap();
    let other: Session = org.post_json("/v1/sessions", &create, None).await.unwrap();
    let cfg = write_config(dir.path(), url, terminal, other.session_id.as_str());
    let out = pos_agent(&[
        "provision",
        "--config",
        cfg.to_str().unwrap(),
        "--org-key",
        ORG_KEY,
        "--terminal",
        terminal,
        "--session",
        other.session_id.as_str(),
    ])
    .await;
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(78), "{stderr}");
    assert!(stderr.contains("is not one of session"), "{stderr}");
    assert!(!dir.path().join("data/credentials.json").exists());

    // The terminal in service still works, with the same credentials.
    assert!(
        client.statement(&StatementQuery::default()).await.is_ok(),
        "the backend invalidated the working credentials"
    );
    assert_eq!(
        std::fs::read(w.config.data_dir.join("credentials.json")).unwrap(),
        before
    );
}
