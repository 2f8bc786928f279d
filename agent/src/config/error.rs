//! What can go wrong or be worth a warning while loading the configuration:
//! [`ConfigError`] (refused; the binary exits with `EX_CONFIG`),
//! [`ConfigWarning`] (logged, not fatal) and the [`Origin`] of a value that
//! both name.

use std::fmt;
use std::path::PathBuf;

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The config file or one of its drop-ins.
    File(PathBuf),
    /// An environment variable.
    Env(String),
    /// A command-line flag.
    Flag(String),
    /// Nobody set it: the default, or a required key that is missing.
    Default,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File(p) => write!(f, "{}", p.display()),
            Origin::Env(v) => write!(f, "environment variable {v}"),
            Origin::Flag(flag) => write!(f, "command-line flag {flag}"),
            Origin::Default => f.write_str("built-in default"),
        }
    }
}

/// Why the configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot list drop-in directory {}: {source}", path.display())]
    ReadDropIns {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `file:line:col: not valid TOML: …`, then the line and a caret
    /// under the column.
    #[error("{}:{line}:{column}: not valid TOML: {message}\n{snippet}", path.display())]
    Syntax {
        path: PathBuf,
        /// 1-based.
        line: usize,
        /// 1-based, in characters.
        column: usize,
        message: String,
        /// The line, and a caret under the column, each indented.
        snippet: String,
    },
    #[error("{origin}: key `{key}`: {problem}")]
    Invalid {
        origin: Origin,
        key: String,
        problem: String,
    },
    #[error("{}: key `{key}` is required (or set {env})", file.display())]
    Missing {
        file: PathBuf,
        key: String,
        env: String,
    },
    #[error("{origin}: `{key}` is not a known config key")]
    UnknownOverride { origin: Origin, key: String },
    /// A key in one of the agent's tables that the agent does not know,
    /// most likely a typo: refused, not ignored.
    #[error(
        "{origin}: unknown key `{}` {}{}",
        key.rsplit('.').next().unwrap_or(key),
        if table.is_empty() { "at the top level".to_owned() } else { format!("in [{table}]") },
        suggestion.as_ref().map(|s| format!("; did you mean `{s}`?")).unwrap_or_default()
    )]
    UnknownKey {
        origin: Origin,
        /// The dotted key, e.g. `offline.floor_limt`.
        key: String,
        /// The table it is in (dotted, `""` for the top level).
        table: String,
        /// The nearest key that table knows.
        suggestion: Option<String>,
    },
}

impl ConfigError {
    /// The dotted key the error is about, when there is one.
    pub fn key(&self) -> Option<&str> {
        match self {
            ConfigError::Invalid { key, .. }
            | ConfigError::Missing { key, .. }
            | ConfigError::UnknownOverride { key, .. }
            | ConfigError::UnknownKey { key, .. } => Some(key),
            _ => None,
        }
    }
}

/// Something worth a warning that did not stop the agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigWarning {
    /// A top-level table this agent does not know; ignored.
    UnknownKey { origin: Origin, key: String },
    /// A `POS_AGENT_*` variable that maps to no key; ignored.
    UnknownEnv { var: String },
    /// A backend URL in clear text to a host that is not loopback, allowed
    /// by `backend.allow_insecure_http`.
    PlainHttp { key: &'static str, url: String },
}

impl fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigWarning::UnknownKey { origin, key } => {
                write!(f, "{origin}: unknown table `[{key}]` ignored")
            }
            ConfigWarning::UnknownEnv { var } => {
                write!(
                    f,
                    "environment variable {var} is not a known setting; ignored"
                )
            }
            ConfigWarning::PlainHttp { key, url } => {
                write!(
                    f,
                    "`{key}` = {url} is plain http to a host that is not loopback; use https"
                )
            }
        }
    }
}
