//! Steps 1 and 2 of loading: the config file, its `config.d/` drop-ins,
//! `POS_AGENT_*` environment variables and command-line overrides, each
//! parsed into a TOML table and deep-merged in that order (later wins) while
//! [`Origins`] remembers which source set each key; then the merged table is
//! deserialized into the all-`Option` [`RawConfig`]. A key the agent does
//! not know inside one of its tables is an error naming the nearest known
//! key (a misspelt `floor_limt` must not silently leave the money limits at
//! their defaults); an unknown top-level table (a vendor's or a newer
//! agent's section) is a warning.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{
    ConfigError, ConfigWarning, DROP_IN_DIR, ENV_CONFIG_FILE, ENV_PREFIX, Origin, RawConfig,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Str,
    Int,
    Bool,
}

/// Every key that can be overridden from the environment or `--set`, and its
/// TOML type. The variable is `POS_AGENT_` + the key upper-cased with `.`
/// replaced by `_`.
const KEYS: &[(&str, Kind)] = &[
    ("data_dir", Kind::Str),
    ("terminal.id", Kind::Str),
    ("terminal.session_id", Kind::Str),
    ("backend.url", Kind::Str),
    ("backend.terminal_api_url", Kind::Str),
    ("backend.ca_file", Kind::Str),
    ("backend.connect_timeout_ms", Kind::Int),
    ("backend.request_timeout_ms", Kind::Int),
    ("backend.allow_insecure_http", Kind::Bool),
    ("offline.floor_limit", Kind::Str),
    ("offline.max_total", Kind::Str),
    ("offline.max_count", Kind::Int),
    ("offline.max_age_hours", Kind::Int),
    ("hal.reader", Kind::Str),
    ("hal.display", Kind::Str),
    ("hal.input", Kind::Str),
    ("hal.printer", Kind::Str),
    ("hal.virtual.control_addr", Kind::Str),
    ("payment.tap_timeout_ms", Kind::Int),
    ("payment.auth_timeout_ms", Kind::Int),
    ("payment.result_hold_ms", Kind::Int),
    ("payment.transfer_timeout_ms", Kind::Int),
    ("sync.heartbeat_interval_ms", Kind::Int),
    ("sync.session_poll_interval_ms", Kind::Int),
    ("sync.retry_initial_ms", Kind::Int),
    ("sync.retry_max_ms", Kind::Int),
    ("sync.link_return_spread_ms", Kind::Int),
    ("log.filter", Kind::Str),
    ("metrics.listen", Kind::Str),
];

/// The environment variable that overrides `key`.
pub fn env_var_for(key: &str) -> String {
    format!("{ENV_PREFIX}{}", key.to_ascii_uppercase().replace('.', "_"))
}

/// The keys that can be overridden, for `--set` help and the docs.
pub fn known_keys() -> impl Iterator<Item = &'static str> {
    KEYS.iter().map(|(k, _)| *k)
}

/// The inputs of [`load`]. The environment is passed in (not read here) so
/// that loading is a pure function of its inputs.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// The main config file; its directory holds `config.d/`.
    pub file: PathBuf,
    /// Environment variables (only `POS_AGENT_*` ones are looked at).
    pub env: Vec<(String, String)>,
    /// Command-line overrides: `(key, value, flag as typed)`, applied last.
    pub flags: Vec<(String, String, String)>,
}

impl Sources {
    /// The file plus this process's `POS_AGENT_*` environment variables.
    /// Variables whose value is not UTF-8 are kept with a lossy value so that
    /// validation names them.
    pub fn from_process(file: impl Into<PathBuf>) -> Self {
        let env = std::env::vars_os()
            .filter_map(|(k, v)| {
                let k = k.into_string().ok()?;
                k.starts_with(ENV_PREFIX)
                    .then(|| (k, v.to_string_lossy().into_owned()))
            })
            .collect();
        Sources {
            file: file.into(),
            env,
            flags: Vec::new(),
        }
    }

    /// Adds a command-line override of `key`.
    pub fn flag(mut self, key: &str, value: impl Into<String>, flag: &str) -> Self {
        self.flags
            .push((key.to_owned(), value.into(), flag.to_owned()));
        self
    }
}

/// Which source set each key (dotted path), tables and leaves alike.
#[derive(Debug, Clone, Default)]
pub struct Origins {
    pub(super) main_file: PathBuf,
    by_key: BTreeMap<String, Origin>,
}

impl Origins {
    /// The source of `key`, or of its nearest enclosing table.
    pub fn of(&self, key: &str) -> Origin {
        let mut k = key;
        loop {
            if let Some(o) = self.by_key.get(k) {
                return o.clone();
            }
            match k.rfind('.') {
                Some(i) => k = &k[..i],
                None => return Origin::File(self.main_file.clone()),
            }
        }
    }

    fn record(&mut self, path: &str, value: &toml::Value, origin: &Origin) {
        // A new value replaces whatever was below this path.
        let prefix = format!("{path}.");
        self.by_key.retain(|k, _| !k.starts_with(&prefix));
        self.by_key.insert(path.to_owned(), origin.clone());
        if let toml::Value::Table(t) = value {
            for (k, v) in t {
                self.record(&format!("{path}.{k}"), v, origin);
            }
        }
    }
}

/// The drop-in files beside `file`, in the order they apply.
pub fn drop_in_files(file: &Path) -> Result<Vec<PathBuf>, ConfigError> {
    let dir = file
        .parent()
        .unwrap_or_else(|| Path::new("."))
        .join(DROP_IN_DIR);
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(ConfigError::ReadDropIns { path: dir, source }),
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| ConfigError::ReadDropIns {
            path: dir.clone(),
            source,
        })?;
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "toml") && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

fn read_table(path: &Path) -> Result<toml::Table, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    text.parse::<toml::Table>()
        .map_err(|e| syntax_error(path, &text, &e))
}

/// Where in `text` the parser stopped, as line, column and the line with
/// a caret under it.
fn syntax_error(path: &Path, text: &str, e: &toml::de::Error) -> ConfigError {
    let at = e.span().map_or(0, |s| s.start).min(text.len());
    let at = (0..=at)
        .rev()
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(0);
    let before = &text[..at];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[at..].find('\n').map_or(text.len(), |i| at + i);
    let line_text = text[line_start..line_end].trim_end_matches('\r');
    let column = text[line_start..at].chars().count() + 1;
    ConfigError::Syntax {
        path: path.to_owned(),
        line: before.matches('\n').count() + 1,
        column,
        message: e.message().trim_end().to_owned(),
        snippet: format!("    {line_text}\n    {}^", " ".repeat(column - 1)),
    }
}

/// serde's `invalid type: integer `500`, expected a string` in words a
/// technician editing the file understands: what the key takes, with an
/// example (`a quoted amount like "50000.00"`). Other messages pass as
/// they are.
fn problem_in_words(key: &str, message: &str) -> String {
    let Some(rest) = message.strip_prefix("invalid type: ") else {
        return message.to_owned();
    };
    let Some((found, expected)) = rest.split_once(", expected ") else {
        return message.to_owned();
    };
    let leaf = key.rsplit('.').next().unwrap_or(key);
    let wanted = match expected {
        _ if matches!(leaf, "floor_limit" | "max_total") => {
            "a quoted amount like \"50000.00\"".to_owned()
        }
        "path string" => "a quoted path like \"/var/lib/pos-agent\"".to_owned(),
        "a string" => "a quoted string like \"value\"".to_owned(),
        "u64" | "u32" | "i64" => "a whole number like 30000 (no quotes)".to_owned(),
        "a boolean" => "true or false (no quotes)".to_owned(),
        other => other.to_owned(),
    };
    format!("expected {wanted}, found {found}")
}

fn merge(
    into: &mut toml::Table,
    from: toml::Table,
    prefix: &str,
    origin: &Origin,
    origins: &mut Origins,
) {
    for (k, v) in from {
        let path = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match (into.get_mut(&k), v) {
            (Some(toml::Value::Table(dst)), toml::Value::Table(src)) => {
                origins.by_key.insert(path.clone(), origin.clone());
                merge(dst, src, &path, origin, origins);
            }
            (_, v) => {
                origins.record(&path, &v, origin);
                into.insert(k, v);
            }
        }
    }
}

/// Sets the dotted `key` to `value` (typed by the key table).
fn set_key(
    table: &mut toml::Table,
    key: &str,
    value: &str,
    origin: &Origin,
    origins: &mut Origins,
) -> Result<(), ConfigError> {
    let Some((_, kind)) = KEYS.iter().find(|(k, _)| *k == key) else {
        return Err(ConfigError::UnknownOverride {
            origin: origin.clone(),
            key: key.to_owned(),
        });
    };
    let value = match kind {
        Kind::Str => toml::Value::String(value.to_owned()),
        Kind::Int => match value.trim().parse::<i64>() {
            Ok(n) => toml::Value::Integer(n),
            Err(_) => {
                return Err(ConfigError::Invalid {
                    origin: origin.clone(),
                    key: key.to_owned(),
                    problem: format!("{value:?} is not an integer"),
                });
            }
        },
        Kind::Bool => match value.trim() {
            "true" => toml::Value::Boolean(true),
            "false" => toml::Value::Boolean(false),
            _ => {
                return Err(ConfigError::Invalid {
                    origin: origin.clone(),
                    key: key.to_owned(),
                    problem: format!("{value:?} is not true or false"),
                });
            }
        },
    };
    // Build the nested table {a: {b: value}} and merge it like a file.
    let mut parts: Vec<&str> = key.split('.').collect();
    let leaf = parts.pop().unwrap_or(key);
    let mut nested = toml::Table::new();
    nested.insert(leaf.to_owned(), value);
    for part in parts.into_iter().rev() {
        let mut outer = toml::Table::new();
        outer.insert(part.to_owned(), toml::Value::Table(nested));
        nested = outer;
    }
    merge(table, nested, "", origin, origins);
    Ok(())
}

/// The keys (and sub-tables) the agent knows directly inside `table`
/// (`""` for the top level).
fn known_in(table: &str) -> Vec<&'static str> {
    let mut names: Vec<&'static str> = KEYS
        .iter()
        .filter_map(|(k, _)| {
            let rest = if table.is_empty() {
                *k
            } else {
                k.strip_prefix(table)?.strip_prefix('.')?
            };
            rest.split('.').next()
        })
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

/// The error for `key` (dotted), which no table of the agent has: its
/// table and the nearest known key there, if one is close.
fn unknown_key(origins: &Origins, key: &str) -> ConfigError {
    let (table, name) = key.rsplit_once('.').unwrap_or(("", key));
    let suggestion = known_in(table)
        .into_iter()
        .map(|k| (strsim::damerau_levenshtein(name, k), k))
        .filter(|(d, k)| *d <= 3 && *d < name.len().max(k.len()))
        .min()
        .map(|(_, k)| k.to_owned());
    ConfigError::UnknownKey {
        origin: origins.of(key),
        key: key.to_owned(),
        table: table.to_owned(),
        suggestion,
    }
}

/// Steps 1 and 2: the merged, unvalidated configuration and its warnings.
pub fn load_raw(sources: &Sources) -> Result<(RawConfig, Vec<ConfigWarning>), ConfigError> {
    let mut origins = Origins {
        main_file: sources.file.clone(),
        by_key: BTreeMap::new(),
    };
    let mut table = toml::Table::new();
    let mut warnings = Vec::new();

    let main = read_table(&sources.file)?;
    merge(
        &mut table,
        main,
        "",
        &Origin::File(sources.file.clone()),
        &mut origins,
    );
    for path in drop_in_files(&sources.file)? {
        let t = read_table(&path)?;
        merge(&mut table, t, "", &Origin::File(path), &mut origins);
    }

    let mut env: Vec<&(String, String)> = sources
        .env
        .iter()
        .filter(|(k, _)| k.starts_with(ENV_PREFIX) && k != ENV_CONFIG_FILE)
        .collect();
    env.sort();
    for (var, value) in env {
        match KEYS.iter().find(|(k, _)| env_var_for(k) == *var) {
            Some((key, _)) => set_key(
                &mut table,
                key,
                value,
                &Origin::Env(var.clone()),
                &mut origins,
            )?,
            None => warnings.push(ConfigWarning::UnknownEnv { var: var.clone() }),
        }
    }
    for (key, value, flag) in &sources.flags {
        set_key(
            &mut table,
            key,
            value,
            &Origin::Flag(flag.clone()),
            &mut origins,
        )?;
    }

    // Top-level keys that hold a table: an unknown one is someone else's
    // section, not a typo in ours.
    let top_tables: Vec<String> = table
        .iter()
        .filter(|(_, v)| v.is_table())
        .map(|(k, _)| k.clone())
        .collect();
    let mut unknown = Vec::new();
    let de = toml::Value::Table(table);
    let result: Result<RawConfig, _> = serde_path_to_error::deserialize(
        serde_ignored::Deserializer::new(de, &mut |path: serde_ignored::Path<'_>| {
            unknown.push(path.to_string())
        }),
    );
    let mut raw = result.map_err(|e| {
        let key = e.path().to_string();
        ConfigError::Invalid {
            origin: origins.of(&key),
            problem: problem_in_words(&key, e.into_inner().message()),
            key,
        }
    })?;
    for key in unknown {
        if !key.contains('.') && top_tables.contains(&key) {
            warnings.push(ConfigWarning::UnknownKey {
                origin: origins.of(&key),
                key,
            });
        } else {
            return Err(unknown_key(&origins, &key));
        }
    }
    raw.origins = origins;
    Ok((raw, warnings))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::test_support::*;
    use crate::config::{PaymentTimings, load};

    #[test]
    fn file_then_drop_ins_then_env_then_flags() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(
            dir.path(),
            "config.toml",
            &format!(
                "{MINIMAL}[payment]\ntap_timeout_ms = 1000\nauth_timeout_ms = 1000\nresult_hold_ms = 1000\n[sync]\nheartbeat_interval_ms = 1000\n"
            ),
        );
        // Lexical order: 10 before 20; the later one wins.
        write(
            dir.path(),
            "config.d/20-late.toml",
            "[payment]\nauth_timeout_ms = 2222\nresult_hold_ms = 2222\n",
        );
        write(
            dir.path(),
            "config.d/10-early.toml",
            "[payment]\ntap_timeout_ms = 1111\nauth_timeout_ms = 1111\nresult_hold_ms = 1111\n",
        );
        write(dir.path(), "config.d/ignored.txt", "this is not toml [");
        let sources = Sources {
            file: file.clone(),
            env: vec![
                ("POS_AGENT_PAYMENT_RESULT_HOLD_MS".into(), "3333".into()),
                ("POS_AGENT_SYNC_HEARTBEAT_INTERVAL_MS".into(), "3333".into()),
                (
                    "POS_AGENT_HAL_VIRTUAL_CONTROL_ADDR".into(),
                    "127.0.0.1:9999".into(),
                ),
                ("HOME".into(), "/root".into()),
            ],
            flags: Vec::new(),
        }
        .flag("sync.heartbeat_interval_ms", "4444", "--set");
        let loaded = load(&sources).unwrap();
        let c = loaded.config;
        assert_eq!(c.payment.tap_timeout, Duration::from_millis(1111));
        assert_eq!(c.payment.auth_timeout, Duration::from_millis(2222));
        assert_eq!(c.payment.result_hold, Duration::from_millis(3333));
        assert_eq!(c.sync.heartbeat_interval, Duration::from_millis(4444));
        assert_eq!(c.hal.virtual_control_addr.port(), 9999);
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);

        // The origin of each key is tracked for error messages.
        let (raw, _) = load_raw(&sources).unwrap();
        assert_eq!(raw.origins.of("terminal.id"), Origin::File(file));
        assert_eq!(
            raw.origins.of("payment.auth_timeout_ms"),
            Origin::File(dir.path().join("config.d/20-late.toml"))
        );
        assert_eq!(
            raw.origins.of("payment.result_hold_ms"),
            Origin::Env("POS_AGENT_PAYMENT_RESULT_HOLD_MS".into())
        );
        assert_eq!(
            raw.origins.of("sync.heartbeat_interval_ms"),
            Origin::Flag("--set".into())
        );
    }

    #[test]
    fn errors_name_the_drop_in_that_set_the_bad_value() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(dir.path(), "config.toml", MINIMAL);
        let drop_in = write(
            dir.path(),
            "config.d/50-bad.toml",
            "[offline]\nfloor_limit = \"50,000.00\"\n",
        );
        let err = load(&Sources {
            file,
            ..Sources::default()
        })
        .unwrap_err();
        let msg = err.to_string();
        assert_eq!(err.key(), Some("offline.floor_limit"));
        assert!(msg.contains(&drop_in.display().to_string()), "{msg}");
        assert!(msg.contains("thousands"), "{msg}");
    }

    #[test]
    fn env_errors_name_the_variable() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(dir.path(), "config.toml", MINIMAL);
        let err = load(&Sources {
            file: file.clone(),
            env: vec![("POS_AGENT_OFFLINE_MAX_COUNT".into(), "many".into())],
            flags: Vec::new(),
        })
        .unwrap_err();
        assert_eq!(err.key(), Some("offline.max_count"));
        assert!(err.to_string().contains("POS_AGENT_OFFLINE_MAX_COUNT"));

        let err = load(&Sources {
            file,
            env: vec![("POS_AGENT_BACKEND_URL".into(), "ftp://x".into())],
            flags: Vec::new(),
        })
        .unwrap_err();
        assert_eq!(err.key(), Some("backend.url"));
        assert!(err.to_string().contains("POS_AGENT_BACKEND_URL"));
    }

    #[test]
    fn unknown_top_level_tables_are_accepted_with_a_warning() {
        let text = format!("{MINIMAL}[vendor]\nx = 1\n[telemetry]\nlisten = \"127.0.0.1:9464\"\n");
        let loaded = load_text(&text).unwrap();
        let keys: Vec<String> = loaded
            .warnings
            .iter()
            .map(|w| match w {
                ConfigWarning::UnknownKey { key, .. } => key.clone(),
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(keys, ["telemetry", "vendor"], "{keys:?}");
        assert!(loaded.warnings[0].to_string().contains("ignored"));
    }

    #[test]
    fn a_misspelt_key_in_a_known_table_is_refused_with_the_nearest_key() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(dir.path(), "config.toml", MINIMAL);
        let drop_in = write(
            dir.path(),
            "config.d/50-limits.toml",
            "[offline]\nfloor_limt = \"100.00\"\n",
        );
        let err = load(&Sources {
            file,
            ..Sources::default()
        })
        .unwrap_err();
        let msg = err.to_string();
        assert_eq!(err.key(), Some("offline.floor_limt"), "{msg}");
        assert!(msg.contains(&drop_in.display().to_string()), "{msg}");
        assert!(msg.contains("`floor_limt` in [offline]"), "{msg}");
        assert!(msg.contains("did you mean `floor_limit`?"), "{msg}");

        // Every table of the agent, nested ones and the top level included.
        let cases: &[(&str, &str, Option<&str>)] = &[
            (
                "[hal.virtual]\ncontrol_adr = \"127.0.0.1:1\"\n",
                "hal.virtual.control_adr",
                Some("control_addr"),
            ),
            ("[hal]\nreadr = \"virtual\"\n", "hal.readr", Some("reader")),
            (
                "[payment]\ntap_timeout = 5\n",
                "payment.tap_timeout",
                Some("tap_timeout_ms"),
            ),
            ("colour = \"blue\"\n", "backend.colour", None),
            (
                "[sync]\nhearbeat_interval_ms = 5\n",
                "sync.hearbeat_interval_ms",
                Some("heartbeat_interval_ms"),
            ),
        ];
        for (extra, key, suggestion) in cases {
            match load_text(&format!("{MINIMAL}{extra}")) {
                Err(ConfigError::UnknownKey {
                    key: k,
                    suggestion: s,
                    ..
                }) => {
                    assert_eq!(&k, key);
                    assert_eq!(s.as_deref(), *suggestion, "{key}");
                }
                other => panic!("{key}: expected UnknownKey, got {other:?}"),
            }
        }
        let top = format!("data_dri = \"/x\"\n{MINIMAL}");
        let err = load_text(&top).unwrap_err();
        assert!(
            err.to_string()
                .contains("`data_dri` at the top level; did you mean `data_dir`?"),
            "{err}"
        );
    }

    #[test]
    fn unknown_env_vars_warn_and_unknown_flags_fail() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(dir.path(), "config.toml", MINIMAL);
        let loaded = load(&Sources {
            file: file.clone(),
            env: vec![
                ("POS_AGENT_NOPE".into(), "1".into()),
                (ENV_CONFIG_FILE.into(), "/x".into()),
            ],
            flags: Vec::new(),
        })
        .unwrap();
        assert_eq!(
            loaded.warnings,
            vec![ConfigWarning::UnknownEnv {
                var: "POS_AGENT_NOPE".into()
            }]
        );
        let err = load(
            &Sources {
                file,
                ..Sources::default()
            }
            .flag("nope.nothing", "1", "--set"),
        )
        .unwrap_err();
        assert!(
            matches!(err, ConfigError::UnknownOverride { .. }),
            "{err:?}"
        );
    }

    #[test]
    fn syntax_errors_and_missing_files_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(dir.path(), "config.toml", "[terminal\nid = 1");
        let err = load(&Sources {
            file: file.clone(),
            ..Sources::default()
        })
        .unwrap_err();
        assert!(matches!(err, ConfigError::Syntax { .. }));
        assert!(err.to_string().contains(&file.display().to_string()));
        let missing = dir.path().join("absent.toml");
        let err = load(&Sources {
            file: missing.clone(),
            ..Sources::default()
        })
        .unwrap_err();
        assert!(matches!(err, ConfigError::Read { .. }));
        assert!(err.to_string().contains(&missing.display().to_string()));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]

        /// Whatever subset of the sources sets a key, the last one in the
        /// order file < drop-ins (lexical) < env < flag wins.
        #[test]
        fn the_last_source_that_sets_a_key_wins(
            in_file in proptest::option::of(1u64..100_000),
            drop_ins in proptest::collection::vec(proptest::option::of(1u64..100_000), 0..3),
            in_env in proptest::option::of(1u64..100_000),
            in_flag in proptest::option::of(1u64..100_000),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let mut main = MINIMAL.to_owned();
            if let Some(v) = in_file {
                main.push_str(&format!("[payment]\ntap_timeout_ms = {v}\n"));
            }
            let file = write(dir.path(), "config.toml", &main);
            for (i, v) in drop_ins.iter().enumerate() {
                let text = match v {
                    Some(v) => format!("[payment]\ntap_timeout_ms = {v}\n"),
                    None => "[payment]\nauth_timeout_ms = 1\n".to_owned(),
                };
                write(dir.path(), &format!("config.d/{i:02}.toml"), &text);
            }
            let mut sources = Sources { file, ..Sources::default() };
            if let Some(v) = in_env {
                sources.env.push(("POS_AGENT_PAYMENT_TAP_TIMEOUT_MS".into(), v.to_string()));
            }
            if let Some(v) = in_flag {
                sources = sources.flag("payment.tap_timeout_ms", v.to_string(), "--set");
            }
            let expected = in_flag
                .or(in_env)
                .or(drop_ins.iter().rev().flatten().next().copied())
                .or(in_file)
                .map(Duration::from_millis)
                .unwrap_or(PaymentTimings::default().tap_timeout);
            let c = load(&sources).unwrap().config;
            proptest::prop_assert_eq!(c.payment.tap_timeout, expected);
        }
    }

    #[test]
    fn every_key_maps_to_an_env_var() {
        assert_eq!(
            env_var_for("hal.virtual.control_addr"),
            "POS_AGENT_HAL_VIRTUAL_CONTROL_ADDR"
        );
        assert_eq!(env_var_for("data_dir"), "POS_AGENT_DATA_DIR");
        assert_eq!(env_var_for("backend.url"), "POS_AGENT_BACKEND_URL");
        let vars: std::collections::BTreeSet<String> = known_keys().map(env_var_for).collect();
        assert_eq!(vars.len(), KEYS.len(), "two keys share a variable");
    }
}
