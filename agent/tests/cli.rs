//! The `pos-agent` binary: exit codes, provisioning files and secrecy.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use tokio::net::TcpListener;

use crate::common::{pos_agent, text};

const ORG_KEY: &str = "org-key-very-secret-42";
const SECRET: &str = "terminal-secret-XYZZY-0001";

fn write_config(dir: &std::path::Path, backend: &str, extra: &str) -> PathBuf {
    let path = dir.join("config.toml");
    std::fs::write(
        &path,
        format!(
            "data_dir = {:?}\n{extra}\n[terminal]\nid = \"pos_3f1e2d_001\"\nsession_id = \"sess_1\"\n[backend]\nurl = {backend:?}\n",
            dir.join("data").display().to_string()
        ),
    )
    .unwrap();
    path
}

/// A provisioning endpoint like the simulator's, and its session lookup
/// (session `sess_1` with terminal `pos_3f1e2d_001`); counts the
/// provisioning calls.
async fn provision_server() -> (String, Arc<Mutex<u32>>) {
    let calls = Arc::new(Mutex::new(0u32));
    let c = calls.clone();
    let app = Router::new().route(
        "/v1/sessions/{id}",
        get(|Path(id): Path<String>| async move {
            if id != "sess_1" {
                return (
                    StatusCode::NOT_FOUND,
                    r#"{"success":false,"error":{"code":"not_found","message":"no such session"}}"#
                        .to_owned(),
                );
            }
            let body = serde_json::json!({"success": true, "data": {
                "session_id": "sess_1", "external_event_id": "e", "name": "Fest",
                "currency": "NGN", "status": "active", "created_at": "2026-11-21T09:00:00Z",
                "pos_terminals": [{"terminal_id": "pos_3f1e2d_001", "label": "POS 1", "status": "offline"}]
            }});
            (StatusCode::OK, body.to_string())
        }),
    );
    let app = app.route(
        "/v1/terminals/{tid}/provision",
        post(move |headers: HeaderMap| {
            let c = c.clone();
            async move {
                if headers.get("x-api-key").map(|v| v.as_bytes()) != Some(ORG_KEY.as_bytes()) {
                    return (
                        StatusCode::UNAUTHORIZED,
                        r#"{"success":false,"error":{"code":"unauthorized","message":"bad organisation key"}}"#,
                    )
                        .into_response();
                }
                *c.lock().unwrap() += 1;
                let body = serde_json::json!({"success": true, "data": {
                    "api_key": "term_key_001", "secret": SECRET, "merchant_id": "m-1",
                    "tenant_id": "test-tenant", "terminal_id": "pos_3f1e2d_001", "session_id": "sess_1"
                }});
                (StatusCode::CREATED, body.to_string()).into_response()
            }
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), calls)
}

fn mode(p: &std::path::Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn a_bad_config_exits_78_naming_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        "http://127.0.0.1:9",
        "[hal.virtual]\ncontrol_addr = \"0.0.0.0:7070\"",
    );
    let out = pos_agent(&["run", "--config", cfg.to_str().unwrap()], &[]).await;
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(78), "{err}");
    assert!(err.contains("hal.virtual.control_addr"), "{err}");
    assert!(err.contains(&cfg.display().to_string()), "{err}");

    // The same through the environment: the variable is named.
    let good = write_config(dir.path(), "http://127.0.0.1:9", "");
    let out = pos_agent(
        &["queue", "--config", good.to_str().unwrap()],
        &[("POS_AGENT_OFFLINE_FLOOR_LIMIT", "1e3")],
    )
    .await;
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(78), "{err}");
    assert!(err.contains("POS_AGENT_OFFLINE_FLOOR_LIMIT"), "{err}");

    // A missing file is a configuration error too.
    let out = pos_agent(&["run", "--config", "/nonexistent/pos-agent.toml"], &[]).await;
    assert_eq!(out.status.code(), Some(78));
}

#[tokio::test]
async fn usage_errors_exit_2_and_version_prints() {
    let out = pos_agent(&["frobnicate"], &[]).await;
    assert_eq!(out.status.code(), Some(2));
    let out = pos_agent(&["provision", "--session", "s", "--terminal", "t"], &[]).await;
    assert_eq!(out.status.code(), Some(2), "an org key source is required");
    let out = pos_agent(&["--version"], &[]).await;
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out).0.contains(env!("CARGO_PKG_VERSION")));
    let (stdout, _) = text(&pos_agent(&["--version"], &[]).await);
    assert!(
        stdout.contains("commit: ") && stdout.contains("target: "),
        "{stdout}"
    );
    // The target is the full triple the binary was built for.
    let target = stdout
        .lines()
        .find_map(|l| l.strip_prefix("target: "))
        .unwrap_or_default();
    assert!(
        target.starts_with(std::env::consts::ARCH) && target.contains("-linux-"),
        "{stdout}"
    );
}

#[tokio::test]
async fn provision_writes_private_files_refuses_to_overwrite_and_never_prints_secrets() {
    let (url, calls) = provision_server().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &url, "");
    let key_file = dir.path().join("org.key");
    std::fs::write(&key_file, format!("{ORG_KEY}\n")).unwrap();
    let cfg_s = cfg.to_str().unwrap();
    let args = [
        "provision",
        "--config",
        cfg_s,
        "--org-key-file",
        key_file.to_str().unwrap(),
        "--session",
        "sess_1",
        "--terminal",
        "pos_3f1e2d_001",
    ];
    let env = [("RUST_LOG", "trace")];

    let out = pos_agent(&args, &env).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("pos_3f1e2d_001"), "{stdout}");
    for s in [&stdout, &stderr] {
        assert!(!s.contains(SECRET), "secret printed:\n{s}");
        assert!(!s.contains(ORG_KEY), "org key printed:\n{s}");
    }
    assert_eq!(*calls.lock().unwrap(), 1);

    let data = dir.path().join("data");
    let creds = data.join("credentials.json");
    let key = data.join("card.key");
    assert_eq!(mode(&creds), 0o600);
    assert_eq!(mode(&key), 0o600);
    assert_eq!(mode(&data), 0o700);
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&creds).unwrap()).unwrap();
    assert_eq!(json["terminal_id"], "pos_3f1e2d_001");
    assert_eq!(json["session_id"], "sess_1");
    assert_eq!(json["api_key"], "term_key_001");
    assert_eq!(json["secret"], SECRET);
    let key_bytes = std::fs::read(&key).unwrap();
    assert_eq!(key_bytes.len(), 32);
    // No temp files left behind.
    let names: Vec<String> = std::fs::read_dir(&data)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");

    // Again without --force: refused before calling the backend, files untouched.
    let out = pos_agent(&args, &env).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stderr.contains("--force"), "{stderr}");
    assert_eq!(*calls.lock().unwrap(), 1);
    assert_eq!(std::fs::read(&key).unwrap(), key_bytes);

    // With --force: new credentials and a fresh card key.
    let mut forced = args.to_vec();
    forced.push("--force");
    let out = pos_agent(&forced, &env).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(!stdout.contains(SECRET) && !stderr.contains(SECRET));
    assert_eq!(*calls.lock().unwrap(), 2);
    assert_ne!(std::fs::read(&key).unwrap(), key_bytes);
    assert_eq!(mode(&key), 0o600);

    // A config naming another terminal does not match the credentials.
    let other = dir.path().join("other.toml");
    std::fs::write(
        &other,
        format!(
            "data_dir = {:?}\n[terminal]\nid = \"someone_else\"\nsession_id = \"other\"\n[backend]\nurl = {url:?}\n",
            dir.path().join("data").display().to_string()
        ),
    )
    .unwrap();
    let cfg_s = other.to_str().unwrap();
    let out = pos_agent(&["doctor", "--config", cfg_s], &env).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    let line = credentials_line(&stdout);
    assert!(
        line.starts_with("FAIL") && line.contains("mismatch"),
        "{stdout}"
    );
    assert!(!stdout.contains(SECRET) && !stderr.contains(SECRET));

    // With matching ids the credentials load.
    let matching = [
        "doctor",
        "--config",
        cfg_s,
        "--set",
        "terminal.id=pos_3f1e2d_001",
        "--set",
        "terminal.session_id=sess_1",
    ];
    let out = pos_agent(&matching, &env).await;
    let (stdout, stderr) = text(&out);
    let line = credentials_line(&stdout);
    assert!(line.starts_with("ok"), "{stdout}\n{stderr}");
    assert!(line.contains("pos_3f1e2d_001"), "{line}");
    assert!(!stdout.contains(SECRET) && !stderr.contains(SECRET));

    // Credentials readable by others are refused.
    std::fs::set_permissions(&creds, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = pos_agent(&matching, &env).await;
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    let line = credentials_line(&stdout);
    assert!(
        line.starts_with("FAIL") && line.contains("0600"),
        "{stdout}"
    );
}

fn credentials_line(stdout: &str) -> &str {
    stdout
        .lines()
        .find(|l| l.contains("credentials"))
        .unwrap_or_else(|| panic!("no credentials line in:\n{stdout}"))
}

#[tokio::test]
async fn provision_with_a_wrong_org_key_fails_and_writes_nothing() {
    let (url, _) = provision_server().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &url, "");
    let out = pos_agent(
        &[
            "provision",
            "--config",
            cfg.to_str().unwrap(),
            "--org-key",
            "wrong-key",
            "--session",
            "sess_1",
            "--terminal",
            "pos_3f1e2d_001",
        ],
        &[],
    )
    .await;
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("401"), "{stderr}");
    assert!(!stderr.contains("wrong-key"), "{stderr}");
    assert!(!dir.path().join("data/credentials.json").exists());
    assert!(!dir.path().join("data/card.key").exists());
}

#[tokio::test]
async fn unknown_tables_are_warned_about_and_a_misspelt_key_exits_78_with_the_nearest_one() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        "http://127.0.0.1:9",
        "[offline]\nfloor_limt = \"999999.00\"",
    );
    for command in ["run", "queue", "doctor"] {
        let out = pos_agent(&[command, "--config", cfg.to_str().unwrap()], &[]).await;
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(78), "{command}: {stdout}\n{stderr}");
        let said = if command == "doctor" {
            &stdout
        } else {
            &stderr
        };
        assert!(
            said.contains("unknown key `floor_limt` in [offline]; did you mean `floor_limit`?"),
            "{command}: {said}"
        );
        assert!(said.contains(&cfg.display().to_string()), "{said}");
    }

    // A whole section the agent does not know is someone else's: a warning.
    let cfg = write_config(
        dir.path(),
        "http://127.0.0.1:9",
        "[vendor_tool]\ncolour = \"blue\"",
    );
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    drop(store::Store::open(data.join("ledger.sqlite")).unwrap());
    let out = pos_agent(&["queue", "--json", "--config", cfg.to_str().unwrap()], &[]).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("unknown table `[vendor_tool]` ignored"),
        "{stderr}"
    );
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["items"], serde_json::json!([]));
    // stderr is a pipe here: no colour escape codes in the log line.
    assert!(!stderr.contains('\x1b'), "{stderr:?}");

    // A JOURNAL_STREAM inherited for another stream is not ours: the log
    // still comes on stderr.
    let out = pos_agent(
        &["queue", "--json", "--config", cfg.to_str().unwrap()],
        &[("JOURNAL_STREAM", "1:1")],
    )
    .await;
    let (_, stderr) = text(&out);
    assert!(
        stderr.contains("unknown table `[vendor_tool]` ignored"),
        "{stderr}"
    );
}

#[tokio::test]
async fn queue_report_and_reconcile_refuse_a_missing_ledger_also_in_json() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "http://127.0.0.1:9", "");
    let cfg_s = cfg.to_str().unwrap();
    // Credentials, so that reconcile gets as far as the ledger.
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    pos_agent::provision::write_private_file(
        &data,
        "credentials.json",
        serde_json::json!({
            "terminal_id": "pos_3f1e2d_001", "session_id": "sess_1", "tenant_id": "t",
            "api_key": "k", "merchant_id": "m", "secret": SECRET,
            "provisioned_at": "2026-11-21T09:00:00Z"
        })
        .to_string()
        .as_bytes(),
    )
    .unwrap();
    pos_agent::provision::write_private_file(&data, "card.key", &[7u8; 32]).unwrap();
    let typo = dir.path().join("dta");
    let typo_s = typo.to_str().unwrap();

    for command in ["queue", "report", "reconcile"] {
        let ledger = data.join("ledger.sqlite");
        let out = pos_agent(&[command, "--config", cfg_s], &[]).await;
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(1), "{command}: {stdout}\n{stderr}");
        assert!(
            stderr.contains(&format!("no ledger at {}", ledger.display())),
            "{command}: {stderr}"
        );
        assert!(!stdout.contains("outbox empty"), "{command}: {stdout}");

        // A typo in --data-dir names the path that was looked at.
        let out = pos_agent(
            &[command, "--json", "--config", cfg_s, "--data-dir", typo_s],
            &[],
        )
        .await;
        let (stdout, stderr) = text(&out);
        assert_ne!(out.status.code(), Some(0), "{command}: {stdout}\n{stderr}");
        if command != "reconcile" {
            // (reconcile first misses the credentials in the wrong directory)
            let v: serde_json::Value = serde_json::from_str(&stdout)
                .unwrap_or_else(|e| panic!("{command}: not JSON ({e}): {stdout}"));
            assert_eq!(v["error"]["code"], "no_ledger", "{command}: {v}");
            let message = v["error"]["message"].as_str().unwrap();
            assert!(
                message.contains(&typo.join("ledger.sqlite").display().to_string()),
                "{v}"
            );
            assert!(
                v.get("items").is_none() && v.get("by_status").is_none(),
                "{v}"
            );
        }

        let out = pos_agent(&[command, "--json", "--config", cfg_s], &[]).await;
        let (stdout, _) = text(&out);
        assert_eq!(out.status.code(), Some(1), "{command}: {stdout}");
        let v: serde_json::Value = serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("{command}: not JSON ({e}): {stdout}"));
        assert_eq!(v["error"]["code"], "no_ledger", "{command}: {v}");
        assert!(!stdout.contains(SECRET));
    }
    assert!(!typo.exists(), "the reading commands create nothing");
    assert!(!data.join("ledger.sqlite").exists());
}

#[tokio::test]
async fn a_config_naming_another_terminal_than_the_credentials_makes_run_exit_78() {
    let (url, _) = provision_server().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &url, "");
    let out = pos_agent(
        &[
            "provision",
            "--config",
            cfg.to_str().unwrap(),
            "--org-key",
            ORG_KEY,
            "--session",
            "sess_1",
            "--terminal",
            "pos_3f1e2d_001",
        ],
        &[],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).1);
    let out = pos_agent(
        &[
            "run",
            "--config",
            cfg.to_str().unwrap(),
            "--set",
            "terminal.session_id=sess_2",
        ],
        &[],
    )
    .await;
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(78), "{stderr}");
    assert!(stderr.contains("terminal.session_id mismatch"), "{stderr}");
    assert!(!stderr.contains(SECRET), "{stderr}");
}

#[tokio::test]
async fn provision_flags_that_contradict_the_config_are_refused_before_the_backend_is_called() {
    let (url, calls) = provision_server().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &url, "");
    for (session, terminal, named) in [
        ("sess_l", "pos_3f1e2d_001", "terminal.session_id"),
        ("sess_1", "pos_3f1e2d_01", "terminal.id"),
    ] {
        let out = pos_agent(
            &[
                "provision",
                "--config",
                cfg.to_str().unwrap(),
                "--org-key",
                ORG_KEY,
                "--session",
                session,
                "--terminal",
                terminal,
            ],
            &[],
        )
        .await;
        let (_, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(78), "{stderr}");
        assert!(stderr.contains(named), "{stderr}");
        assert!(stderr.contains("nothing was sent"), "{stderr}");
    }
    assert_eq!(*calls.lock().unwrap(), 0);
    assert!(!dir.path().join("data/credentials.json").exists());
}

#[tokio::test]
async fn queue_and_report_read_a_real_ledger() {
    use proto::{Money, Reference};
    use store::{Change, NewOutboxItem, NewTransaction, OutboxKind, Store, TxState};

    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "http://127.0.0.1:9", "");
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    {
        let store = Store::open(data.join("ledger.sqlite")).unwrap();
        let key = pos_agent::card::CardKey::generate();
        let tokenized = pos_agent::card::tokenize_secret(
            &key,
            &hal::SecretPan::new("4111111111111111").unwrap(),
            pos_agent::card::EntryMode::Contactless,
        );
        let card = store::Card::new(
            tokenized.token.as_str(),
            tokenized.last4.as_str(),
            store::CardBrand::Visa,
            store::EntryMode::Contactless,
        )
        .unwrap();
        let r1 = Reference::new("pos_3f1e2d_001-000001").unwrap();
        let r2 = Reference::new("pos_3f1e2d_001-000002").unwrap();
        let mut c1 = Change::insert(
            1_763_719_200_000,
            NewTransaction {
                state: TxState::OfflineApproved,
                card: Some(card.clone()),
                ..NewTransaction::sale(r1.clone(), Money::parse("1500.50").unwrap())
            },
        );
        c1.enqueue.push(NewOutboxItem {
            reference: Some(r1),
            ..NewOutboxItem::new(OutboxKind::Transaction, serde_json::json!({"x": 1}))
        });
        store.record(&c1).unwrap();
        let c2 = Change::insert(
            1_763_719_300_000,
            NewTransaction {
                state: TxState::Approved,
                card: Some(card),
                operator_id: Some("op_7".into()),
                ..NewTransaction::sale(r2, Money::parse("2000.00").unwrap())
            },
        );
        store.record(&c2).unwrap();
    }
    let cfg_s = cfg.to_str().unwrap();

    let out = pos_agent(&["queue", "--json", "--config", cfg_s], &[]).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let items = v["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{v}");
    assert_eq!(items[0]["kind"], "transaction");
    assert_eq!(items[0]["reference"], "pos_3f1e2d_001-000001");
    assert_eq!(items[0]["state"], "waiting");

    let out = pos_agent(&["queue", "--config", cfg_s], &[]).await;
    let (stdout, _) = text(&out);
    assert!(stdout.contains("pos_3f1e2d_001-000001"), "{stdout}");
    assert!(stdout.contains("1 queued, 0 parked"), "{stdout}");

    let out = pos_agent(&["report", "--json", "--config", cfg_s], &[]).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["by_status"]["offline_approved"]["total"], "1500.50");
    assert_eq!(v["by_status"]["approved"]["count"], 1);
    assert_eq!(v["by_kind"]["sale"]["count"], 2);
    assert_eq!(v["by_kind"]["sale"]["total"], "3500.50");
    assert_eq!(v["by_operator"]["op_7"]["total"], "2000.00");

    let out = pos_agent(&["report", "--config", cfg_s], &[]).await;
    let (stdout, _) = text(&out);
    assert!(stdout.contains("NGN 3,500.50"), "{stdout}");

    // SPEC 7.5: the current shift (X), then a closed one (Z) by number.
    let out = pos_agent(
        &["report", "--shift", "current", "--json", "--config", cfg_s],
        &[],
    )
    .await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        (v["kind"].as_str(), v["shift_no"].as_u64()),
        (Some("X"), Some(1))
    );
    assert_eq!(v["totals"]["sales"]["count"], 2);
    assert_eq!(v["totals"]["offline"]["total"], "1500.50");
    assert_eq!(v["totals"]["by_operator"]["op_7"]["total"], "2000.00");
    {
        let store = Store::open(data.join("ledger.sqlite")).unwrap();
        store
            .close_shift(1_763_719_400_000, Some("op_sup"), |_| {
                Ok(serde_json::json!({"shift_no": 1}))
            })
            .unwrap();
    }
    let out = pos_agent(
        &["report", "--shift", "1", "--json", "--config", cfg_s],
        &[],
    )
    .await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["kind"], "Z");
    assert_eq!(v["closed_by"], "op_sup");
    assert_eq!(v["totals"]["sales"]["total"], "3500.50");
    let out = pos_agent(&["report", "--shift", "current", "--config", cfg_s], &[]).await;
    let (stdout, _) = text(&out);
    assert!(stdout.contains("X report  shift 2"), "{stdout}");
    // A shift never used, and a word that is not a shift.
    let out = pos_agent(&["report", "--shift", "7", "--config", cfg_s], &[]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).1.contains("no shift"), "{}", text(&out).1);
    let out = pos_agent(&["report", "--shift", "yesterday", "--config", cfg_s], &[]).await;
    assert_eq!(out.status.code(), Some(2));
}

#[tokio::test]
async fn doctor_reports_unusable_devices_one_line_each() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        "http://127.0.0.1:9",
        "[hal]\nreader = \"pn532:/nonexistent/ttyS9\"\ndisplay = \"fbdev:/dev/fb7\"\nprinter = \"escpos:/nonexistent/lp0\"",
    );
    let out = pos_agent(&["doctor", "--config", cfg.to_str().unwrap()], &[]).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    let line = |name: &str| {
        stdout
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(name))
            .unwrap_or_else(|| panic!("no {name} line in:\n{stdout}"))
            .to_owned()
    };
    assert!(line("config").starts_with("ok"), "{stdout}");
    assert!(line("reader").starts_with("FAIL"), "{stdout}");
    assert!(line("reader").contains("/nonexistent/ttyS9"), "{stdout}");
    assert!(line("display").starts_with("FAIL"), "{stdout}");
    assert!(line("printer").starts_with("FAIL"), "{stdout}");
    assert!(line("printer").contains("/nonexistent/lp0"), "{stdout}");
    assert!(line("credentials").starts_with("FAIL"), "{stdout}");
    assert!(line("backend").starts_with("FAIL"), "{stdout}");
}

#[tokio::test]
async fn doctor_draws_the_test_pattern_on_a_framebuffer() {
    let dir = tempfile::tempdir().unwrap();
    // A file-backed framebuffer with explicit geometry (a file has no fb
    // ioctls), as on a 240x320 RGB565 panel.
    let fb = dir.path().join("fb0");
    std::fs::write(&fb, vec![0u8; 240 * 320 * 2]).unwrap();
    let cfg = write_config(
        dir.path(),
        "http://127.0.0.1:9",
        &format!(
            "[hal]\ndisplay = \"fbdev:{}?width=240&height=320&format=rgb565\"",
            fb.display()
        ),
    );
    let out = pos_agent(&["doctor", "--config", cfg.to_str().unwrap()], &[]).await;
    let (stdout, _) = text(&out);
    let display = stdout
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some("display"))
        .unwrap_or_else(|| panic!("no display line in:\n{stdout}"));
    assert!(display.starts_with("ok"), "{stdout}");
    assert!(display.contains("test pattern"), "{stdout}");
    // The pixels really reached the framebuffer: the eight bars, in order.
    let bytes = std::fs::read(&fb).unwrap();
    let pixel = |x: usize, y: usize| {
        let i = (y * 240 + x) * 2;
        u16::from_le_bytes([bytes[i], bytes[i + 1]])
    };
    let bars: Vec<u16> = (0..8).map(|i| pixel(i * 30 + 15, 160)).collect();
    assert_eq!(
        bars,
        [
            0xFFFF, 0xFFE0, 0x07FF, 0x07E0, 0xF81F, 0xF800, 0x001F, 0x0000
        ],
        "white yellow cyan green magenta red blue black"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_reads_the_firmware_of_an_emulated_pn532_and_checks_the_input() {
    let dir = tempfile::tempdir().unwrap();
    // A PN532 emulated at the byte level on a pseudo-terminal: doctor opens
    // its path exactly as it would open /dev/ttyS0.
    let emulator = hal::pn532::emulator::Pn532Emulator::start().unwrap();
    let cfg = write_config(
        dir.path(),
        "http://127.0.0.1:9",
        &format!(
            "[hal]\nreader = \"pn532:{}\"\ninput = \"evdev:/nonexistent/event9\"",
            emulator.path()
        ),
    );
    let out = pos_agent(&["doctor", "--config", cfg.to_str().unwrap()], &[]).await;
    let (stdout, stderr) = text(&out);
    let line = |name: &str| {
        stdout
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(name))
            .unwrap_or_else(|| panic!("no {name} line in:\n{stdout}\n{stderr}"))
            .to_owned()
    };
    let reader = line("reader");
    assert!(reader.starts_with("ok"), "{stdout}\n{stderr}");
    assert!(
        reader.contains("PN532") && reader.contains("firmware 1.6"),
        "{reader}"
    );
    let input = line("input");
    assert!(
        input.starts_with("FAIL") && input.contains("/nonexistent/event9"),
        "{input}"
    );
    assert_eq!(out.status.code(), Some(1), "a failed check fails doctor");
}

#[tokio::test]
async fn the_agent_process_is_not_dumpable_and_creates_files_owner_only() {
    use std::os::unix::fs::MetadataExt;
    use std::os::unix::fs::PermissionsExt;

    // A backend that takes the connection and never answers: the agent
    // waits inside its own code while its /proc entry is looked at.
    let backend = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", backend.local_addr().unwrap());
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let cfg = write_config(dir.path(), &url, "");
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o644)).unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();

    // The kernel hands a non-dumpable process's /proc files to root. So the
    // agent runs as another user than root: as `nobody` when the tests run
    // as root, else as ourselves.
    let me = rustix::process::getuid().as_raw();
    let mut command = tokio::process::Command::new(crate::common::BIN);
    if me == 0 {
        std::os::unix::fs::chown(&data, Some(65534), Some(65534)).unwrap();
        command.uid(65534).gid(65534);
    }
    let mut child = command
        .args([
            "provision",
            "--config",
            cfg.to_str().unwrap(),
            "--org-key",
            ORG_KEY,
            "--session",
            "sess_1",
            "--terminal",
            "pos_3f1e2d_001",
        ])
        .env_clear()
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let pid = child.id().unwrap();
    let accepted = tokio::time::timeout(std::time::Duration::from_secs(20), backend.accept()).await;
    let Ok(Ok((_connection, _))) = accepted else {
        let _ = child.start_kill();
        let out = child.wait_with_output().await.unwrap();
        panic!(
            "the agent never called the backend: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };

    let status = format!("/proc/{pid}/status");
    let owner = std::fs::metadata(&status).unwrap().uid();
    assert_eq!(
        owner,
        0,
        "the agent (uid {}) is dumpable",
        if me == 0 { 65534 } else { me }
    );
    let text = std::fs::read_to_string(&status).unwrap();
    assert!(
        text.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["Umask:", "0077"]),
        "{text}"
    );
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let core = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .unwrap();
    assert_eq!(core.split_whitespace().nth(4), Some("0"), "{core}");
    assert_eq!(core.split_whitespace().nth(5), Some("0"), "{core}");
    child.start_kill().unwrap();
    let _ = child.wait().await;
}
