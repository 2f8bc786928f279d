//! Helpers shared by the agent's integration tests: the `pos-agent` binary
//! and running it.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::process::Output;

/// The `pos-agent` binary cargo built for these tests.
pub const BIN: &str = env!("CARGO_BIN_EXE_pos-agent");

/// Runs `pos-agent` with `args` in an empty environment plus `env`.
pub async fn pos_agent(args: &[&str], env: &[(&str, &str)]) -> Output {
    tokio::process::Command::new(BIN)
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .await
        .unwrap()
}

/// Stdout and stderr, as text.
pub fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}
