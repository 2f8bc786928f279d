//! Setup shared by the end-to-end tests.

use e2e_tests::backend::SimOptions;
use e2e_tests::scenario::Scene;
use e2e_tests::terminal::AgentOptions;
use e2e_tests::timeline::Timeline;
use tempfile::TempDir;

/// Sends the in-process agents' logs (`RUST_LOG`, default warn) to the
/// test's output.
pub fn logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}

/// A scene with `n` running terminals in a fresh temp dir. The timeline is
/// printed (the test harness shows it when a test fails).
pub async fn scene(n: u32, agent: AgentOptions) -> (TempDir, Scene) {
    scene_with(n, SimOptions::default(), agent).await
}

pub async fn scene_with(n: u32, sim: SimOptions, agent: AgentOptions) -> (TempDir, Scene) {
    logs();
    let dir = tempfile::tempdir().expect("temp dir");
    let timeline = Timeline::new(None, true).expect("timeline");
    let scene = Scene::start(dir.path(), n, sim, agent, timeline)
        .await
        .expect("scene starts");
    (dir, scene)
}

/// A scene whose agents are provisioned but not started.
pub async fn provisioned(n: u32, agent: AgentOptions) -> (TempDir, Scene) {
    logs();
    let dir = tempfile::tempdir().expect("temp dir");
    let timeline = Timeline::new(None, true).expect("timeline");
    let backend = e2e_tests::backend::Backend::start(SimOptions::default())
        .await
        .expect("sim starts");
    let scene = Scene::provisioned(backend, dir.path(), n, agent, timeline)
        .await
        .expect("terminals provisioned");
    (dir, scene)
}

/// The `agent-proc` binary of this package.
pub fn agent_exe() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_BIN_EXE_agent-proc"))
}
