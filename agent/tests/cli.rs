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
    // Both card payments; none by bank transfer (SPEC 7.7).
    assert_eq!(v["by_channel"]["card"]["count"], 2);
    assert!(v["by_channel"].get("account").is_none(), "{v}");

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

/// A tokenised test card, as the agent stores one.
fn test_card() -> store::Card {
    let key = pos_agent::card::CardKey::generate();
    let tokenized = pos_agent::card::tokenize_secret(
        &key,
        &hal::SecretPan::new("4111111111111111").unwrap(),
        pos_agent::card::EntryMode::Contactless,
    );
    store::Card::new(
        tokenized.token.as_str(),
        tokenized.last4.as_str(),
        store::CardBrand::Visa,
        store::EntryMode::Contactless,
    )
    .unwrap()
}

/// A ledger with an approved sale of 5,000.00, a refund of 1,000.00 of it
/// and a declined sale of 700.00; returns the config path.
fn ledger_with_sale_refund_and_decline(dir: &std::path::Path) -> PathBuf {
    use proto::{Money, Reference};
    use store::{Change, NewTransaction, Store, TxState};

    let cfg = write_config(dir, "http://127.0.0.1:9", "");
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let store = Store::open(data.join("ledger.sqlite")).unwrap();
    let sale = Reference::new("pos_3f1e2d_001-000001").unwrap();
    let card = test_card();
    for (i, tx) in [
        NewTransaction {
            state: TxState::Approved,
            card: Some(card.clone()),
            ..NewTransaction::sale(sale.clone(), Money::parse("5000.00").unwrap())
        },
        NewTransaction {
            state: TxState::Approved,
            card: Some(card.clone()),
            ..NewTransaction::refund(
                Reference::new("pos_3f1e2d_001-000002").unwrap(),
                Money::parse("1000.00").unwrap(),
                sale,
            )
        },
        NewTransaction {
            state: TxState::Declined,
            card: Some(card.clone()),
            ..NewTransaction::sale(
                Reference::new("pos_3f1e2d_001-000003").unwrap(),
                Money::parse("700.00").unwrap(),
            )
        },
    ]
    .into_iter()
    .enumerate()
    {
        store
            .record(&Change::insert(1_763_719_200_000 + i as i64, tx))
            .unwrap();
    }
    cfg
}

#[tokio::test]
async fn report_keeps_refunds_and_declined_apart_from_the_takings() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = ledger_with_sale_refund_and_decline(dir.path());
    let cfg_s = cfg.to_str().unwrap();

    let out = pos_agent(&["report", "--json", "--config", cfg_s], &[]).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let t = &v["takings"];
    assert_eq!(
        t["sales"],
        serde_json::json!({"count": 1, "total": "5000.00"}),
        "{v}"
    );
    assert_eq!(
        t["refunds"],
        serde_json::json!({"count": 1, "total": "1000.00"}),
        "{v}"
    );
    assert_eq!(t["net"], "4000.00", "{v}");
    assert_eq!(
        t["declined"],
        serde_json::json!({"count": 1, "total": "700.00"}),
        "{v}"
    );

    let out = pos_agent(
        &["report", "--shift", "current", "--json", "--config", cfg_s],
        &[],
    )
    .await;
    let v: serde_json::Value = serde_json::from_str(&text(&out).0).unwrap();
    assert_eq!(v["totals"]["sales"]["total"], "5000.00", "{v}");
    assert_eq!(v["net"], "4000.00", "{v}");

    let out = pos_agent(&["report", "--config", cfg_s], &[]).await;
    let (stdout, _) = text(&out);
    let line = |name: &str| {
        stdout
            .lines()
            .find(|l| l.trim_start().starts_with(name))
            .unwrap_or_else(|| panic!("no {name} line in\n{stdout}"))
            .to_owned()
    };
    assert!(line("sales").ends_with("NGN 5,000.00"), "{stdout}");
    assert!(line("refunds").ends_with("NGN 1,000.00"), "{stdout}");
    assert!(line("net").ends_with("NGN 4,000.00"), "{stdout}");
    assert!(line("declined").ends_with("NGN 700.00"), "{stdout}");
}

/// Every line holding an amount ends at the same column, and nothing is
/// spelt as a Rust `Debug` name.
fn assert_aligned_and_wire_spelt(stdout: &str) {
    let ends: Vec<usize> = stdout
        .lines()
        .filter(|l| l.contains("NGN "))
        .map(|l| l.find("NGN ").unwrap() + l[l.find("NGN ").unwrap()..].len())
        .collect();
    assert!(ends.len() > 3, "{stdout}");
    assert!(
        ends.iter().all(|e| *e == ends[0]),
        "amounts not aligned:\n{stdout}"
    );
    for debug_name in ["Approved", "Declined", "Sale", "Refund", "Pending", "Some("] {
        assert!(!stdout.contains(debug_name), "{debug_name} in\n{stdout}");
    }
}

#[tokio::test]
async fn report_and_queue_columns_are_aligned_in_wire_spelling() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = ledger_with_sale_refund_and_decline(dir.path());
    let cfg_s = cfg.to_str().unwrap();
    {
        // A long reference and an operator name longer than the old fixed widths.
        let store = store::Store::open(dir.path().join("data/ledger.sqlite")).unwrap();
        let r = proto::Reference::new("pos_a_very_long_terminal_name_0001-000001").unwrap();
        let mut c = store::Change::insert(
            1_763_719_300_000,
            store::NewTransaction {
                state: store::TxState::OfflineApproved,
                card: Some(test_card()),
                operator_id: Some("operator_with_a_long_name".into()),
                ..store::NewTransaction::sale(r.clone(), proto::Money::parse("12.00").unwrap())
            },
        );
        c.enqueue.push(store::NewOutboxItem {
            reference: Some(r),
            ..store::NewOutboxItem::new(store::OutboxKind::Transaction, serde_json::json!({}))
        });
        store.record(&c).unwrap();
    }
    let out = pos_agent(&["report", "--config", cfg_s], &[]).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_aligned_and_wire_spelt(&stdout);
    assert!(stdout.contains("offline_approved"), "{stdout}");

    let out = pos_agent(&["queue", "--config", cfg_s], &[]).await;
    let (stdout, _) = text(&out);
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(lines.len() >= 3, "{stdout}");
    // The STATE column starts at the same place in the header and the row.
    let at = |l: &str, w: &str| l.find(w).unwrap_or_else(|| panic!("{w} in {l}"));
    assert_eq!(at(lines[0], "STATE"), at(lines[1], "waiting"), "{stdout}");
    assert!(at(lines[0], "LAST ERROR") > at(lines[1], "waiting"));
    assert!(
        lines.iter().all(|l| !l.ends_with(' ')),
        "trailing spaces:\n{stdout}"
    );
}

#[tokio::test]
async fn a_closed_stdout_ends_the_command_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = ledger_with_sale_refund_and_decline(dir.path());
    for args in [
        ["report", "--config", cfg.to_str().unwrap()],
        ["doctor", "--config", cfg.to_str().unwrap()],
    ] {
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_pos-agent"))
            .args(args)
            .env_clear()
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // The reader goes away before the command writes (`| head -0`).
        drop(child.stdout.take());
        let out = child.wait_with_output().await.unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(!stderr.contains("Broken pipe"), "{args:?}: {stderr}");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
    }
}

#[tokio::test]
async fn doctor_json_is_one_object_with_the_same_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "http://127.0.0.1:9", "");
    let cfg_s = cfg.to_str().unwrap();
    let text_run = pos_agent(&["doctor", "--config", cfg_s], &[]).await;
    let out = pos_agent(&["doctor", "--json", "--config", cfg_s], &[]).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), text_run.status.code(), "{stderr}");
    assert_eq!(out.status.code(), Some(1), "no credentials: {stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["ok"], false);
    let checks = v["checks"].as_array().unwrap();
    assert_eq!(checks[0]["check"], "config");
    assert_eq!(checks[0]["ok"], true);
    assert!(
        checks
            .iter()
            .all(|c| c["detail"].is_string() && c["ok"].is_boolean())
    );
    let creds = checks.iter().find(|c| c["check"] == "credentials").unwrap();
    assert_eq!(creds["ok"], false, "{v}");
    assert_eq!(checks.len(), text(&text_run).0.lines().count());

    std::fs::write(&cfg, "data_dir = 5\n").unwrap();
    let out = pos_agent(&["doctor", "--json", "--config", cfg_s], &[]).await;
    assert_eq!(out.status.code(), Some(78));
    let v: serde_json::Value = serde_json::from_str(&text(&out).0).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["checks"][0]["check"], "config");
}

#[tokio::test]
async fn toml_errors_point_at_line_and_column_and_type_errors_are_in_words() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.toml");
    std::fs::write(
        &cfg,
        "data_dir = \"/tmp/x\"\n[offline]\nfloor_limit = \"5\n",
    )
    .unwrap();
    let out = pos_agent(&["report", "--config", cfg.to_str().unwrap()], &[]).await;
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(78), "{stderr}");
    let at = format!("{}:3:", cfg.display());
    assert!(stderr.contains(&at), "{stderr}");
    assert!(stderr.contains("    floor_limit = \"5\n"), "{stderr}");
    assert!(stderr.lines().any(|l| l.trim() == "^"), "{stderr}");

    std::fs::write(
        &cfg,
        "data_dir = \"/tmp/x\"\n[offline]\nfloor_limit = 500\n",
    )
    .unwrap();
    let out = pos_agent(&["report", "--config", cfg.to_str().unwrap()], &[]).await;
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(78), "{stderr}");
    assert!(
        stderr.contains("expected a quoted amount like \"50000.00\", found integer `500`"),
        "{stderr}"
    );
    assert!(!stderr.contains("expected a string"), "{stderr}");
}

#[tokio::test]
async fn every_flag_is_described_and_provision_says_an_org_key_is_needed() {
    let out = pos_agent(&["--help"], &[]).await;
    let (top, _) = text(&out);
    let commands: Vec<String> = top
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| l.starts_with("  "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .filter(|c| c != "help")
        .collect();
    assert!(commands.len() >= 8, "{top}");
    for c in &commands {
        let out = pos_agent(&[c, "--help"], &[]).await;
        let (help, _) = text(&out);
        assert!(!help.contains("\x1b["), "colour codes in {c} --help");
        for l in help.lines().filter(|l| l.trim_start().starts_with('-')) {
            let described = l.trim_start().split_once("  ").map(|(_, d)| d.trim());
            assert!(
                described.is_some_and(|d| !d.is_empty()),
                "{c}: undescribed flag {l:?}"
            );
        }
    }
    let out = pos_agent(&["provision", "--help"], &[]).await;
    let (help, _) = text(&out);
    assert!(
        help.contains("Organisation key (one is required)"),
        "{help}"
    );
    assert!(
        help.contains("One of --org-key-file or --org-key is required"),
        "{help}"
    );
    assert!(
        help.contains("<--org-key-file <FILE>|--org-key <KEY>>"),
        "{help}"
    );
    let out = pos_agent(&["provision", "--session", "s", "--terminal", "t"], &[]).await;
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr.contains("--org-key-file"), "{stderr}");
    assert!(
        !stderr.contains("\x1b["),
        "colour codes on a pipe: {stderr}"
    );
    let out = pos_agent(&["reconcile", "--help"], &[]).await;
    assert!(
        text(&out)
            .0
            .contains("69  the backend could not be reached")
    );
}

#[tokio::test]
async fn an_error_and_its_cause_are_printed_once() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "http://127.0.0.1:9", "");
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(
        data.join("ledger.sqlite"),
        b"this is not a database, not at all",
    )
    .unwrap();
    for json in [false, true] {
        let mut args = vec!["report", "--config", cfg.to_str().unwrap()];
        if json {
            args.push("--json");
        }
        let out = pos_agent(&args, &[]).await;
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        let message = if json {
            let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
            v["error"]["message"].as_str().unwrap().to_owned()
        } else {
            stderr.trim().to_owned()
        };
        let parts: Vec<&str> = message.split(": ").collect();
        for (i, p) in parts.iter().enumerate() {
            assert!(!parts[i + 1..].contains(p), "{p:?} repeated in {message:?}");
        }
    }
}

#[tokio::test]
async fn reconcile_exits_69_with_a_json_error_when_the_backend_is_unreachable() {
    let (url, _) = provision_server().await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &url, "");
    let cfg_s = cfg.to_str().unwrap();
    let out = pos_agent(
        &[
            "provision",
            "--config",
            cfg_s,
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
    store::Store::open(dir.path().join("data/ledger.sqlite")).unwrap();
    // A port nobody listens on: bound, then released.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let cfg = write_config(dir.path(), &closed, "");
    let cfg_s = cfg.to_str().unwrap();
    let out = pos_agent(&["reconcile", "--json", "--config", cfg_s], &[]).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(69), "{stdout}\n{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["error"]["code"], "unavailable", "{v}");
    let out = pos_agent(&["reconcile", "--config", cfg_s], &[]).await;
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(69), "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
}
