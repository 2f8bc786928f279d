//! `pos-agent`: the payment terminal edge agent. See `cli.rs` for the commands.

mod cli;
mod docs;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

/// `-V` prints the package version; `--version` adds the git commit and the
/// target triple, both stamped by `build.rs`.
fn long_version() -> &'static str {
    let text = format!(
        "{}\ncommit: {}\ntarget: {}",
        env!("CARGO_PKG_VERSION"),
        env!("BUILD_GIT_COMMIT"),
        env!("BUILD_TARGET"),
    );
    // Built once per process, for clap's 'static strings.
    Box::leak(text.into_boxed_str())
}

fn main() -> ExitCode {
    // Before anything reads a key: no core dumps, no ptrace by peers,
    // owner-only files.
    if let Err(e) = pos_agent::hardening::harden_process() {
        eprintln!("pos-agent: {e}");
        return ExitCode::FAILURE;
    }
    // clap exits with 2 on a usage error and 0 for --help/--version.
    let matches = cli::Cli::command()
        .long_version(long_version())
        .get_matches();
    let cli = match cli::Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    match cli::dispatch(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => failure.exit(),
    }
}
