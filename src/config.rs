//! Settings: a YAML file (the embedded `config/default.yaml` when none is given), then environment
//! variables over it. Secrets (staff tokens) come only from the environment or a file, and are kept
//! as SHA-256 hashes.
//!
//! In: a path or nothing, and the environment. Out: validated [`Settings`], or an error naming the
//! file, line and column (YAML) or the setting (a bad value).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// The embedded default configuration.
pub const DEFAULT_YAML: &str = include_str!("../config/default.yaml");

/// All settings of the daemon.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Where the database and working files live. `HAZEFLOW_DATA_DIR`.
    pub data_dir: PathBuf,
    /// The live playbooks folder. `HAZEFLOW_PLAYBOOKS`.
    pub playbooks: PathBuf,
    /// HTTP server.
    pub http: HttpSettings,
    /// Forecast inbox.
    pub inbox: InboxSettings,
    /// Put the sample forecast into the inbox on first start. `HAZEFLOW_DEMO`.
    #[serde(default)]
    pub demo: bool,
    /// Logging.
    pub log: LogSettings,
    /// Seconds to finish work on shutdown. `HAZEFLOW_SHUTDOWN_DEADLINE_SECS`.
    #[serde(default = "default_deadline")]
    pub shutdown_deadline_secs: u64,
    /// Staff who may use the staff endpoints.
    #[serde(default)]
    pub staff: StaffSettings,
}

fn default_deadline() -> u64 {
    10
}

/// HTTP server settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSettings {
    /// Address to listen on (port 0: any free port). `HAZEFLOW_HTTP_LISTEN`.
    pub listen: String,
    /// The address people reach the server at, for links in messages. `HAZEFLOW_PUBLIC_URL`.
    pub public_url: String,
}

/// Inbox settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InboxSettings {
    /// Folder watched for forecast files. `HAZEFLOW_INBOX_DIR`.
    pub dir: PathBuf,
    /// How often it is looked at, in ms. `HAZEFLOW_INBOX_POLL_MS`.
    pub poll_ms: u64,
    /// Largest accepted file. `HAZEFLOW_INBOX_MAX_BYTES`.
    pub max_bytes: usize,
}

/// Log settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    /// `text` or `json`. `HAZEFLOW_LOG_FORMAT`.
    pub format: String,
    /// A tracing filter (`info`, `hazeflow=debug`). `HAZEFLOW_LOG_LEVEL` (or `RUST_LOG`).
    pub level: String,
}

/// Staff tokens.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaffSettings {
    /// Tokens as hashes.
    #[serde(default)]
    pub tokens: Vec<StaffToken>,
    /// A file of `name,role,sha256` lines. `HAZEFLOW_STAFF_TOKENS_FILE`.
    #[serde(default)]
    pub tokens_file: Option<PathBuf>,
}

/// One staff member's token, hashed.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct StaffToken {
    /// Who.
    pub name: String,
    /// Their role (a playbook role id).
    pub role: String,
    /// SHA-256 of the token, hex.
    pub sha256: String,
}

/// SHA-256 hex of a token.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

impl Settings {
    /// Loads a file (or the embedded default), then applies the environment.
    pub fn load(path: Option<&Path>) -> Result<Settings> {
        let (name, text) = match path {
            Some(p) => (p.display().to_string(), std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?),
            None => ("config/default.yaml (embedded)".to_string(), DEFAULT_YAML.to_string()),
        };
        let mut s = Self::parse(&name, &text)?;
        s.apply_env(|k| std::env::var(k).ok())?;
        s.load_token_file()?;
        s.validate()?;
        Ok(s)
    }

    /// Parses YAML text; errors name `file:line:column`.
    pub fn parse(name: &str, text: &str) -> Result<Settings> {
        serde_saphyr::from_str::<Settings>(text).map_err(|e| {
            let (l, c) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
            let msg = e.without_snippet().to_string();
            let msg = msg.rsplit_once(" at line ").map_or(msg.as_str(), |(m, _)| m).to_string();
            anyhow::anyhow!("{name}:{l}:{c}: {msg}")
        })
    }

    /// Applies `HAZEFLOW_*` variables.
    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> Result<()> {
        let num = |k: &str, v: String| -> Result<u64> { v.parse().with_context(|| format!("{k}=\"{v}\" is not a whole number")) };
        if let Some(v) = get("HAZEFLOW_DATA_DIR") {
            self.data_dir = v.into();
        }
        if let Some(v) = get("HAZEFLOW_PLAYBOOKS") {
            self.playbooks = v.into();
        }
        if let Some(v) = get("HAZEFLOW_HTTP_LISTEN") {
            self.http.listen = v;
        }
        if let Some(v) = get("HAZEFLOW_PUBLIC_URL") {
            self.http.public_url = v;
        }
        if let Some(v) = get("HAZEFLOW_INBOX_DIR") {
            self.inbox.dir = v.into();
        }
        if let Some(v) = get("HAZEFLOW_INBOX_POLL_MS") {
            self.inbox.poll_ms = num("HAZEFLOW_INBOX_POLL_MS", v)?;
        }
        if let Some(v) = get("HAZEFLOW_INBOX_MAX_BYTES") {
            self.inbox.max_bytes = num("HAZEFLOW_INBOX_MAX_BYTES", v)? as usize;
        }
        if let Some(v) = get("HAZEFLOW_DEMO") {
            self.demo = matches!(v.as_str(), "1" | "true" | "yes");
        }
        if let Some(v) = get("HAZEFLOW_LOG_FORMAT") {
            self.log.format = v;
        }
        if let Some(v) = get("HAZEFLOW_LOG_LEVEL") {
            self.log.level = v;
        }
        if let Some(v) = get("HAZEFLOW_SHUTDOWN_DEADLINE_SECS") {
            self.shutdown_deadline_secs = num("HAZEFLOW_SHUTDOWN_DEADLINE_SECS", v)?;
        }
        if let Some(v) = get("HAZEFLOW_STAFF_TOKENS_FILE") {
            self.staff.tokens_file = Some(v.into());
        }
        // name:role:token, comma separated; the plain token is hashed at once and never kept.
        if let Some(v) = get("HAZEFLOW_STAFF_TOKENS") {
            for item in v.split(',').filter(|s| !s.trim().is_empty()) {
                let parts: Vec<&str> = item.trim().splitn(3, ':').collect();
                let [name, role, token] = parts[..] else {
                    bail!("HAZEFLOW_STAFF_TOKENS: \"{}\" is not name:role:token", item.split(':').take(2).collect::<Vec<_>>().join(":"));
                };
                self.staff.tokens.push(StaffToken { name: name.into(), role: role.into(), sha256: hash_token(token) });
            }
        }
        Ok(())
    }

    fn load_token_file(&mut self) -> Result<()> {
        let Some(f) = &self.staff.tokens_file else { return Ok(()) };
        let text = std::fs::read_to_string(f).with_context(|| format!("staff.tokens_file: cannot read {}", f.display()))?;
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let parts: Vec<&str> = line.split(',').map(str::trim).collect();
            let [name, role, sha] = parts[..] else {
                bail!("{}:{}:1: expected name,role,sha256", f.display(), i + 1);
            };
            self.staff.tokens.push(StaffToken { name: name.into(), role: role.into(), sha256: sha.to_lowercase() });
        }
        Ok(())
    }

    /// Checks values that parse but make no sense; errors name the setting.
    pub fn validate(&self) -> Result<()> {
        self.listen_addr()?;
        if !matches!(self.log.format.as_str(), "text" | "json") {
            bail!("log.format: \"{}\" is neither text nor json", self.log.format);
        }
        if self.inbox.poll_ms == 0 {
            bail!("inbox.poll_ms: must be more than 0");
        }
        for t in &self.staff.tokens {
            if t.sha256.len() != 64 || !t.sha256.chars().all(|c| c.is_ascii_hexdigit()) {
                bail!("staff.tokens: the sha256 of {} is not 64 hex digits", t.name);
            }
        }
        if !self.http.public_url.starts_with("http://") && !self.http.public_url.starts_with("https://") {
            bail!("http.public_url: \"{}\" must start with http:// or https://", self.http.public_url);
        }
        Ok(())
    }

    /// The listen address.
    pub fn listen_addr(&self) -> Result<SocketAddr> {
        self.http.listen.parse().with_context(|| format!("http.listen: \"{}\" is not host:port", self.http.listen))
    }

    /// The database file.
    pub fn db_path(&self) -> PathBuf {
        self.data_dir.join("hazeflow.redb")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_default_loads_and_validates() {
        let s = Settings::parse("default", DEFAULT_YAML).unwrap();
        s.validate().unwrap();
        assert_eq!(s.http.listen, "127.0.0.1:8080");
        assert_eq!(s.staff.tokens[0].sha256, hash_token("hazeflow-demo"));
    }

    #[test]
    fn the_production_example_loads() {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/production.example.yaml")).unwrap();
        let s = Settings::parse("production.example.yaml", &text).unwrap();
        s.validate().unwrap();
    }

    #[test]
    fn environment_variables_override_the_file_and_tokens_are_hashed() {
        let mut s = Settings::parse("default", DEFAULT_YAML).unwrap();
        s.apply_env(|k| match k {
            "HAZEFLOW_HTTP_LISTEN" => Some("127.0.0.1:0".into()),
            "HAZEFLOW_STAFF_TOKENS" => Some("张三:deputy_head:s3cret".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(s.http.listen, "127.0.0.1:0");
        let t = s.staff.tokens.last().unwrap();
        assert_eq!((t.name.as_str(), t.role.as_str()), ("张三", "deputy_head"));
        assert_eq!(t.sha256, hash_token("s3cret"));
    }

    #[test]
    fn an_unknown_key_is_named_with_its_line_and_column() {
        let text = DEFAULT_YAML.replace("demo: true", "demo: true\ndemoo: 1");
        let e = Settings::parse("c.yaml", &text).unwrap_err().to_string();
        assert!(e.starts_with("c.yaml:") && e.contains("unknown field `demoo`"), "{e}");
    }

    #[test]
    fn a_bad_value_names_the_setting() {
        let mut s = Settings::parse("default", DEFAULT_YAML).unwrap();
        s.http.listen = "localhost".into();
        assert_eq!(s.validate().unwrap_err().to_string(), "http.listen: \"localhost\" is not host:port");
    }
}
