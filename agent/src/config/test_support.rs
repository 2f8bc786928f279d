//! Helpers shared by the config unit tests: a minimal valid config and
//! loading from text in a temporary directory.

use std::path::{Path, PathBuf};

use super::{ConfigError, Loaded, Sources, load};

pub(crate) const MINIMAL: &str = r#"
data_dir = "/tmp/pos"
[terminal]
id = "pos_3f1e2d_001"
session_id = "sess_1"
[backend]
url = "http://127.0.0.1:8080"
"#;

pub(crate) fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&p, text).unwrap();
    p
}

pub(crate) fn load_text(text: &str) -> Result<Loaded, ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "config.toml", text);
    load(&Sources {
        file,
        ..Sources::default()
    })
}

pub(crate) fn invalid_key(text: &str) -> String {
    match load_text(text) {
        Err(e @ ConfigError::Invalid { .. }) => e.key().unwrap().to_owned(),
        other => panic!("expected an Invalid error, got {other:?}"),
    }
}
