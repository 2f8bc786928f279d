//! A fresh board (SPEC 8.1): a pos-agent daemon in-process with a minimal
//! config (no terminal or session id), which pairs by code before it runs.

use std::path::{Path, PathBuf};
use std::time::Duration;

use pos_agent::config::{self, Config, Sources};
use pos_agent::runtime::daemon::Daemon;

use crate::backend::Backend;
use crate::device::Device;
use crate::error::{HarnessError, Result};
use crate::proxy::FaultProxy;
use crate::terminal::{AgentOptions, config_toml_for};
use crate::wait::Deadline;

/// A terminal that has never been given an id: its daemon shows a pairing
/// code until the organiser claims it, then runs.
pub struct FreshTerminal {
    data_dir: PathBuf,
    config_path: PathBuf,
    proxy: FaultProxy,
    daemon: Option<Daemon>,
    device: Option<Device>,
    http: reqwest::Client,
}

impl FreshTerminal {
    /// Writes the minimal config (data_dir, `[backend] url` through a
    /// fault proxy, `[hal]`) into `data_dir/config.toml` and starts the
    /// daemon.
    pub async fn start_unpaired(
        backend: &Backend,
        data_dir: &Path,
        opts: &AgentOptions,
    ) -> Result<FreshTerminal> {
        std::fs::create_dir_all(data_dir)
            .map_err(HarnessError::io(format!("create {}", data_dir.display())))?;
        let proxy = FaultProxy::start_with(backend.addr(), opts.record_traffic)
            .await
            .map_err(HarnessError::io("start the fault proxy"))?;
        let config_path = data_dir.join("config.toml");
        let toml = config_toml_for(data_dir, None, &proxy.url(), opts);
        std::fs::write(&config_path, toml)
            .map_err(HarnessError::io(format!("write {}", config_path.display())))?;
        let mut t = FreshTerminal {
            data_dir: data_dir.to_owned(),
            config_path,
            proxy,
            daemon: None,
            device: None,
            http: backend.http().clone(),
        };
        t.start().await?;
        Ok(t)
    }

    /// The config as `pos-agent` loads it.
    pub fn config(&self) -> Result<Config> {
        config::load(&Sources {
            file: self.config_path.clone(),
            env: Vec::new(),
            flags: Vec::new(),
        })
        .map(|l| l.config)
        .map_err(|e| HarnessError::Agent(format!("config: {e}")))
    }

    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub fn proxy(&self) -> &FaultProxy {
        &self.proxy
    }

    /// Starts the daemon (pairing first when the data directory holds no
    /// credentials).
    pub async fn start(&mut self) -> Result<()> {
        self.stop().await?;
        let daemon = Daemon::start(self.config()?)
            .await
            .map_err(|e| HarnessError::Agent(format!("starting the daemon: {e}")))?;
        let addr = daemon
            .control_addr()
            .ok_or_else(|| HarnessError::Agent("the daemon serves no virtual device".into()))?;
        self.device = Some(Device::new(addr, self.http.clone()));
        self.daemon = Some(daemon);
        Ok(())
    }

    /// Graceful stop.
    pub async fn stop(&mut self) -> Result<()> {
        self.device = None;
        match self.daemon.take() {
            Some(d) => d
                .shutdown()
                .await
                .map_err(|e| HarnessError::Agent(format!("daemon shutdown: {e}"))),
            None => Ok(()),
        }
    }

    /// The virtual device; fails when the daemon is not running.
    pub fn device(&self) -> Result<&Device> {
        self.device
            .as_ref()
            .ok_or_else(|| HarnessError::Agent("the fresh terminal is not running".into()))
    }

    /// Waits for the `pairing` screen with a code, and returns the code.
    pub async fn wait_code(&self, timeout: Duration) -> Result<String> {
        let v = self
            .device()?
            .wait_for("pairing with a code", timeout, |s| {
                s.screen == "pairing" && s.pairing_code.is_some()
            })
            .await?;
        v.pairing_code
            .ok_or_else(|| HarnessError::Agent("pairing screen without a code".into()))
    }

    /// Waits for a pairing code other than `old` (after a code was gone,
    /// or after unpairing from the menu: the daemon then reopens its panel
    /// on the same address, so the control API may refuse a connection for
    /// a moment; that is waited out too, within `timeout`).
    pub async fn wait_new_code(&self, old: &str, timeout: Duration) -> Result<String> {
        let deadline = Deadline::after(timeout);
        loop {
            let last = match self.device()?.screen().await {
                Ok(v)
                    if v.screen == "pairing"
                        && v.pairing_code.as_deref().is_some_and(|c| c != old) =>
                {
                    return v.pairing_code.ok_or_else(|| {
                        HarnessError::Agent("pairing screen without a code".into())
                    });
                }
                Ok(v) => v.summary(),
                Err(e @ HarnessError::Http { .. }) => e.to_string(),
                Err(e) => return Err(e),
            };
            deadline.tick("a new pairing code", || last).await?;
        }
    }
}
