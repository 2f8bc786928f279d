//! `pos-agent generate-docs`: manual pages (`clap_mangen`) and shell
//! completions (`clap_complete`) from the same clap definition the binary
//! parses, so they cannot drift from `--help`. The Debian package is built
//! with them (`scripts/build-deb`).

use std::fs;
use std::path::Path;

use anyhow::Context;
use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::Cli;

/// Writes `pos-agent.1`, `pos-agent-<sub>.1` for every visible subcommand,
/// and the bash, zsh and fish completions.
pub fn generate(man_dir: &Path, completions_dir: &Path) -> anyhow::Result<()> {
    let cmd = Cli::command()
        .version(env!("CARGO_PKG_VERSION"))
        .long_about(
            "pos-agent drives a payment terminal's contactless reader, display, \
             buttons and receipt printer, records every payment durably in SQLite \
             before anything else happens, keeps taking payments offline within \
             limits, and forwards them exactly once to the session backend.",
        );
    fs::create_dir_all(man_dir).with_context(|| format!("creating {}", man_dir.display()))?;
    fs::create_dir_all(completions_dir)
        .with_context(|| format!("creating {}", completions_dir.display()))?;

    // One page for the tool and one per visible subcommand
    // (`pos-agent-run.1`, ...), as `man pos-agent-run` expects.
    clap_mangen::generate_to(cmd.clone(), man_dir)
        .with_context(|| format!("writing manual pages into {}", man_dir.display()))?;

    for (shell, file) in [
        (Shell::Bash, "pos-agent"),
        (Shell::Zsh, "_pos-agent"),
        (Shell::Fish, "pos-agent.fish"),
    ] {
        let mut out = Vec::new();
        clap_complete::generate(shell, &mut cmd.clone(), "pos-agent", &mut out);
        let path = completions_dir.join(file);
        fs::write(&path, out).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
