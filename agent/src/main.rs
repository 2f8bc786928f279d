//! `pos-agent`: the payment terminal edge agent. See `cli.rs` for the commands.

mod cli;

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

/// `-V` prints the package version; `--version` adds the commit (from
/// `POS_AGENT_GIT_COMMIT` at build time, when the build sets it) and the
/// target.
fn long_version() -> &'static str {
    let text = format!(
        "{}\ncommit: {}\ntarget: {}-{}",
        env!("CARGO_PKG_VERSION"),
        option_env!("POS_AGENT_GIT_COMMIT").unwrap_or("unknown"),
        std::env::consts::ARCH,
        std::env::consts::OS,
    );
    // Built once per process, for clap's 'static strings.
    Box::leak(text.into_boxed_str())
}

fn main() -> ExitCode {
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
