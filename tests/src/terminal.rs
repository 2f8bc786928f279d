//! One payment terminal: a provisioned data directory, a pos-agent running
//! in-process (or as a child process) with its virtual device, and the
//! [`FaultProxy`] between it and the backend.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use pos_agent::config::{self, Config, Sources};
use pos_agent::runtime::RunningAgent;
use proto::signing::{Credentials, Secret};
use proto::{SessionId, TerminalId};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::{mpsc, watch};

use crate::backend::{Backend, ORG_KEY};
use crate::device::Device;
use crate::error::{HarnessError, Result};
use crate::proxy::FaultProxy;

/// The agent's timers, short so that flows finish in seconds.
#[derive(Debug, Clone)]
pub struct AgentOptions {
    pub tap_timeout: Duration,
    pub auth_timeout: Duration,
    pub result_hold: Duration,
    pub heartbeat: Duration,
    pub retry_initial: Duration,
    pub retry_max: Duration,
    /// `sync.link_return_spread_ms`: the random wait before draining after
    /// the link returns.
    pub link_return_spread: Duration,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    /// `log.filter` of the agent.
    pub log_filter: String,
    /// Extra TOML appended to the generated config (e.g. `[offline]`).
    pub extra_toml: String,
    /// Keep every byte the agent sends through its proxy.
    pub record_traffic: bool,
}

impl Default for AgentOptions {
    fn default() -> Self {
        AgentOptions {
            tap_timeout: Duration::from_secs(20),
            auth_timeout: Duration::from_millis(1_500),
            result_hold: Duration::from_millis(1_500),
            heartbeat: Duration::from_millis(1_000),
            retry_initial: Duration::from_millis(100),
            retry_max: Duration::from_millis(1_000),
            link_return_spread: Duration::from_millis(500),
            connect_timeout: Duration::from_millis(500),
            request_timeout: Duration::from_secs(3),
            log_filter: "info".into(),
            extra_toml: String::new(),
            record_traffic: false,
        }
    }
}

/// How the agent runs.
enum Run {
    Stopped,
    InProcess(RunningAgent),
    Process(AgentProcess),
}

/// A terminal under test.
pub struct Terminal {
    pub id: TerminalId,
    pub label: String,
    pub session_id: SessionId,
    data_dir: PathBuf,
    config_path: PathBuf,
    proxy: FaultProxy,
    run: Run,
    device: Option<Device>,
    http: reqwest::Client,
    opts: AgentOptions,
}

impl Terminal {
    /// Starts a proxy in front of `backend`, writes the agent's config into
    /// `data_dir/config.toml` and provisions the terminal with the agent's
    /// own provisioning code (credentials + card key in `data_dir`).
    pub async fn provision(
        backend: &Backend,
        session_id: &SessionId,
        id: &TerminalId,
        label: &str,
        data_dir: &Path,
        opts: &AgentOptions,
    ) -> Result<Terminal> {
        std::fs::create_dir_all(data_dir)
            .map_err(HarnessError::io(format!("create {}", data_dir.display())))?;
        let proxy = FaultProxy::start_with(backend.addr(), opts.record_traffic)
            .await
            .map_err(HarnessError::io("start the fault proxy"))?;
        let config_path = data_dir.join("config.toml");
        let toml = config_toml(data_dir, id, session_id, &proxy.url(), opts);
        std::fs::write(&config_path, toml)
            .map_err(HarnessError::io(format!("write {}", config_path.display())))?;
        let t = Terminal {
            id: id.clone(),
            label: label.to_owned(),
            session_id: session_id.clone(),
            data_dir: data_dir.to_owned(),
            config_path,
            proxy,
            run: Run::Stopped,
            device: None,
            http: backend.http().clone(),
            opts: opts.clone(),
        };
        let cfg = t.config()?;
        pos_agent::provision::provision(&cfg, Secret::new(ORG_KEY), false)
            .await
            .map_err(|e| HarnessError::Agent(format!("provisioning {id}: {e}")))?;
        Ok(t)
    }

    /// Rewrites the config so the agent talks to `url` instead of its
    /// proxy (takes effect at the next start).
    pub fn set_backend_url(&self, url: &str) -> Result<()> {
        let toml = config_toml(&self.data_dir, &self.id, &self.session_id, url, &self.opts);
        std::fs::write(&self.config_path, toml).map_err(HarnessError::io(format!(
            "write {}",
            self.config_path.display()
        )))
    }

    /// The agent's validated config, loaded from the file like `pos-agent`.
    pub fn config(&self) -> Result<Config> {
        let sources = Sources {
            file: self.config_path.clone(),
            env: Vec::new(),
            flags: Vec::new(),
        };
        config::load(&sources)
            .map(|l| l.config)
            .map_err(|e| HarnessError::Agent(format!("config of {}: {e}", self.id)))
    }

    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub fn ledger_path(&self) -> PathBuf {
        self.data_dir.join(config::LEDGER_FILE)
    }

    /// The terminal's credentials as provisioned.
    pub fn credentials(&self) -> Result<Credentials> {
        let cfg = self.config()?;
        pos_agent::provision::load_identity(&cfg, None)
            .map(|i| i.credentials)
            .map_err(|e| HarnessError::Agent(format!("identity of {}: {e}", self.id)))
    }

    pub fn proxy(&self) -> &FaultProxy {
        &self.proxy
    }

    /// The virtual device; fails when the agent is not running.
    pub fn device(&self) -> Result<&Device> {
        self.device
            .as_ref()
            .ok_or_else(|| HarnessError::Agent(format!("{} is not running", self.id)))
    }

    /// Starts the agent in this process.
    pub async fn start(&mut self) -> Result<()> {
        self.stop().await?;
        let agent = RunningAgent::start(self.config()?)
            .await
            .map_err(|e| HarnessError::Agent(format!("starting {}: {e}", self.id)))?;
        let addr = agent
            .control_addr()
            .ok_or_else(|| HarnessError::Agent("the agent serves no virtual device".into()))?;
        self.device = Some(Device::new(addr, self.http.clone()));
        self.run = Run::InProcess(agent);
        Ok(())
    }

    /// Starts the agent as a child process (`agent-proc`, the `pos-agent
    /// run` equivalent); its log lines go to `logs`.
    pub async fn start_process(
        &mut self,
        exe: &Path,
        logs: mpsc::UnboundedSender<String>,
    ) -> Result<()> {
        self.start_process_with_env(exe, logs, &[]).await
    }

    /// [`Terminal::start_process`] with extra environment variables (the
    /// disk benchmark's `LD_PRELOAD` shim).
    pub async fn start_process_with_env(
        &mut self,
        exe: &Path,
        logs: mpsc::UnboundedSender<String>,
        env: &[(String, String)],
    ) -> Result<()> {
        self.stop().await?;
        let p = AgentProcess::spawn(exe, &self.config_path, logs, env).await?;
        self.device = Some(Device::new(p.control_addr, self.http.clone()));
        self.run = Run::Process(p);
        Ok(())
    }

    /// Kills a child-process agent with SIGKILL (no cleanup at all).
    pub async fn kill(&mut self) -> Result<()> {
        match std::mem::replace(&mut self.run, Run::Stopped) {
            Run::Process(mut p) => {
                self.device = None;
                p.kill().await
            }
            other => {
                self.run = other;
                Err(HarnessError::Agent(
                    "kill: the agent is not a child process".into(),
                ))
            }
        }
    }

    /// Graceful shutdown (SIGTERM for a child process).
    pub async fn stop(&mut self) -> Result<()> {
        self.device = None;
        match std::mem::replace(&mut self.run, Run::Stopped) {
            Run::Stopped => Ok(()),
            Run::InProcess(agent) => agent
                .shutdown()
                .await
                .map_err(|e| HarnessError::Agent(format!("shutdown of {}: {e}", self.id))),
            Run::Process(p) => p.terminate().await,
        }
    }

    /// The in-process agent's virtual device itself (benchmarks watch its
    /// state instead of polling the control API).
    pub fn virtual_device(&self) -> Option<hal::VirtualDevice> {
        match &self.run {
            Run::InProcess(a) => a.device().cloned(),
            _ => None,
        }
    }

    /// The child process's pid.
    pub fn pid(&self) -> Option<u32> {
        match &self.run {
            Run::Process(p) => p.pid(),
            _ => None,
        }
    }

    pub fn is_running(&self) -> bool {
        !matches!(self.run, Run::Stopped)
    }
}

fn ms(d: Duration) -> u128 {
    d.as_millis()
}

/// The agent's config file for the harness: everything virtual, the control
/// API on a free loopback port, short timers.
pub fn config_toml(
    data_dir: &Path,
    id: &TerminalId,
    session: &SessionId,
    backend_url: &str,
    o: &AgentOptions,
) -> String {
    config_toml_for(data_dir, Some((id, session)), backend_url, o)
}

/// [`config_toml`], naming the terminal and session or (a fresh board,
/// SPEC 8.1) not: then the ids come with pairing.
pub fn config_toml_for(
    data_dir: &Path,
    ids: Option<(&TerminalId, &SessionId)>,
    backend_url: &str,
    o: &AgentOptions,
) -> String {
    let terminal = match ids {
        Some((id, session)) => format!("[terminal]\nid = \"{id}\"\nsession_id = \"{session}\"\n"),
        None => String::new(),
    };
    format!(
        r#"data_dir = "{data_dir}"

{terminal}
[backend]
url = "{backend_url}"
connect_timeout_ms = {connect}
request_timeout_ms = {request}

[hal]
reader = "virtual"
display = "virtual"
input = "virtual"
printer = "virtual"

[hal.virtual]
control_addr = "127.0.0.1:0"

[payment]
tap_timeout_ms = {tap}
auth_timeout_ms = {auth}
result_hold_ms = {hold}

[sync]
heartbeat_interval_ms = {hb}
retry_initial_ms = {ri}
retry_max_ms = {rm}
link_return_spread_ms = {spread}

[log]
filter = "{filter}"

{extra}
"#,
        data_dir = data_dir.display(),
        connect = ms(o.connect_timeout),
        request = ms(o.request_timeout),
        tap = ms(o.tap_timeout),
        auth = ms(o.auth_timeout),
        hold = ms(o.result_hold),
        hb = ms(o.heartbeat),
        ri = ms(o.retry_initial),
        rm = ms(o.retry_max),
        spread = ms(o.link_return_spread),
        filter = o.log_filter,
        extra = o.extra_toml,
    )
}

/// The line `agent-proc` prints on stdout once the agent is up.
pub const READY_PREFIX: &str = "agent-proc ready control=";

/// An agent running as a child process.
pub struct AgentProcess {
    child: tokio::process::Child,
    pub control_addr: std::net::SocketAddr,
    exited: watch::Receiver<bool>,
}

impl AgentProcess {
    /// Spawns `exe run --config FILE`, forwards its stdout and stderr lines to
    /// `logs`, and waits (bounded) for the ready line.
    pub async fn spawn(
        exe: &Path,
        config: &Path,
        logs: mpsc::UnboundedSender<String>,
        env: &[(String, String)],
    ) -> Result<AgentProcess> {
        let mut child = tokio::process::Command::new(exe)
            .arg("run")
            .arg("--config")
            .arg(config)
            .env_remove("RUST_LOG")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(HarnessError::io(format!("spawn {}", exe.display())))?;
        let (ready_tx, mut ready_rx) = mpsc::unbounded_channel::<String>();
        let (exit_tx, exited) = watch::channel(false);
        if let Some(out) = child.stdout.take() {
            pump(out, logs.clone(), Some(ready_tx.clone()), Some(exit_tx));
        }
        if let Some(err) = child.stderr.take() {
            pump(err, logs, None, None);
        }
        drop(ready_tx);
        let addr = tokio::time::timeout(Duration::from_secs(20), async {
            while let Some(line) = ready_rx.recv().await {
                if let Some(a) = line.strip_prefix(READY_PREFIX) {
                    return a.trim().parse().ok();
                }
            }
            None
        })
        .await;
        match addr {
            Ok(Some(control_addr)) => Ok(AgentProcess {
                child,
                control_addr,
                exited,
            }),
            Ok(None) => {
                let status = child.wait().await.ok();
                Err(HarnessError::Agent(format!(
                    "agent process ended before it was ready ({status:?})"
                )))
            }
            Err(_) => {
                let _ = child.kill().await;
                Err(HarnessError::Agent(
                    "agent process not ready within 20 s".into(),
                ))
            }
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// SIGKILL and reap.
    pub async fn kill(&mut self) -> Result<()> {
        self.child
            .kill()
            .await
            .map_err(HarnessError::io("kill the agent process"))
    }

    /// SIGTERM (via `kill -TERM`), then waits up to 20 s for a clean exit.
    pub async fn terminate(mut self) -> Result<()> {
        if let Some(pid) = self.child.id() {
            let _ = tokio::process::Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .status()
                .await;
        }
        let mut exited = self.exited.clone();
        let _ = tokio::time::timeout(Duration::from_secs(20), exited.wait_for(|e| *e)).await;
        match tokio::time::timeout(Duration::from_secs(20), self.child.wait()).await {
            Ok(Ok(status)) if status.success() => Ok(()),
            Ok(Ok(status)) => Err(HarnessError::Agent(format!(
                "agent process exited with {status}"
            ))),
            Ok(Err(e)) => Err(HarnessError::io("wait for the agent process")(e)),
            Err(_) => {
                let _ = self.child.kill().await;
                Err(HarnessError::Agent(
                    "agent process did not stop within 20 s of SIGTERM".into(),
                ))
            }
        }
    }
}

fn pump<R: AsyncRead + Unpin + Send + 'static>(
    r: R,
    logs: mpsc::UnboundedSender<String>,
    ready: Option<mpsc::UnboundedSender<String>>,
    exited: Option<watch::Sender<bool>>,
) {
    tokio::spawn(async move {
        let mut lines = BufReader::new(r).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(r) = &ready {
                let _ = r.send(line.clone());
            }
            let _ = logs.send(line);
        }
        if let Some(e) = exited {
            let _ = e.send(true);
        }
    });
}
