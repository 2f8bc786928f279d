//! Stamps the binary with the git commit and the target triple it was built
//! for, for `pos-agent --version`. `GIT_COMMIT` in the environment wins
//! (release builds from a tarball set it); otherwise git is asked; a build
//! without either says "unknown". The stamps are named `BUILD_*`, not
//! `POS_AGENT_*`: cargo also exports them to `cargo test`/`cargo run`, and the
//! agent reads `POS_AGENT_*` variables as configuration.

use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=GIT_COMMIT");
    let commit = std::env::var("GIT_COMMIT")
        .ok()
        .filter(|c| !c.trim().is_empty())
        .or_else(git_commit)
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=BUILD_GIT_COMMIT={}", commit.trim());
    let target = std::env::var("TARGET").unwrap_or_else(|_| "unknown".to_owned());
    println!("cargo:rustc-env=BUILD_TARGET={target}");
    // The clock of a terminal can never be earlier than this: the agent
    // refuses TLS before it (certificates could not be checked) and
    // `doctor` reports it. SOURCE_DATE_EPOCH, else the commit's time.
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    let epoch = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .or_else(commit_time)
        .unwrap_or(0);
    println!("cargo:rustc-env=BUILD_EPOCH={epoch}");
}

fn commit_time() -> Option<u64> {
    let out = Command::new("git")
        .args(["log", "-1", "--format=%ct"])
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

fn git_commit() -> Option<String> {
    let git_dir = Command::new("git")
        .args(["rev-parse", "--git-dir"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())?;
    // Rebuild when HEAD moves (a checkout, or a commit on the current branch).
    let head = Path::new(&git_dir).join("HEAD");
    println!("cargo:rerun-if-changed={}", head.display());
    if let Ok(text) = std::fs::read_to_string(&head) {
        if let Some(reference) = text.strip_prefix("ref: ") {
            let reference = Path::new(&git_dir).join(reference.trim());
            if reference.exists() {
                println!("cargo:rerun-if-changed={}", reference.display());
            }
        }
    }
    let out = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    Some(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}
