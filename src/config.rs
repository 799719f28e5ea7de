//! Settings: a YAML file (the embedded `config/default.yaml` when none is given), then environment
//! variables over it. Secrets (staff tokens) come only from the environment or a file, and are kept
//! as SHA-256 hashes.
//!
//! In: a path or nothing, and the environment. Out: validated [`Settings`], or an error naming the
//! file, line and column (YAML) or the setting (a bad value).

use crate::domain::diagnostic::Diagnostic;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// The embedded default configuration.
pub const DEFAULT_YAML: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/config/default.yaml"));

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
    /// The emergency reduction list imported on first start (a folder with `enterprises.csv` and
    /// `measures.csv`), when the store has none. `HAZEFLOW_LIST_SEED`.
    #[serde(default)]
    pub list_seed: Option<PathBuf>,
    /// The measure defaults file (industry × grade × level, deadlines, duties). `HAZEFLOW_MEASURES`.
    #[serde(default = "default_measures")]
    pub measures: PathBuf,
    /// Logging.
    pub log: LogSettings,
    /// Seconds to finish work on shutdown. `HAZEFLOW_SHUTDOWN_DEADLINE_SECS`.
    #[serde(default = "default_deadline")]
    pub shutdown_deadline_secs: u64,
    /// Staff who may use the staff endpoints.
    #[serde(default)]
    pub staff: StaffSettings,
    /// Outgoing mail: SMTP, or `.eml` files when no server is set (see [`MailSettings`]).
    #[serde(default)]
    pub mail: MailSettings,
    /// The duty roster file (值班表): who is on duty where, and which event reaches whom.
    /// `HAZEFLOW_ROSTER`.
    #[serde(default = "default_roster")]
    pub roster: PathBuf,
    /// Webhook endpoints (SMS gateways, work-chat robots) and how they are sent to.
    #[serde(default)]
    pub webhooks: WebhookSettings,
    /// What forecasts are accepted.
    #[serde(default)]
    pub forecast: ForecastSettings,
    /// Where the data is kept: the embedded file in `data_dir` (the default), or PostgreSQL.
    #[serde(default)]
    pub store: StoreSettings,
    /// Where these settings were read from (by [`Settings::load`]); `None` for settings built in
    /// code, whose staff tokens a reload keeps as they are.
    #[serde(skip)]
    pub source: Option<Source>,
}

/// The store's backend.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSettings {
    /// A PostgreSQL connection string (`postgres://user:password@host:port/db`, several hosts and
    /// `target_session_attrs=read-write` allowed); unset: the embedded file `data_dir/hazeflow.redb`.
    /// `HAZEFLOW_STORE_URL`.
    #[serde(default)]
    pub url: Option<String>,
}

/// Where [`Settings::load`] read the settings from, so that a reload can read them again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The embedded `config/default.yaml` (no `--config`).
    Embedded,
    /// A file layered over the defaults.
    File(PathBuf),
}

/// Forecast acceptance settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForecastSettings {
    /// How far ahead of the daemon's clock an `issued_at` may lie (clock skew between the forecast
    /// centre and this host), in minutes. `HAZEFLOW_FORECAST_MAX_AHEAD_MINUTES`.
    #[serde(default = "default_max_ahead")]
    pub max_ahead_minutes: u64,
}

impl Default for ForecastSettings {
    fn default() -> Self {
        ForecastSettings {
            max_ahead_minutes: default_max_ahead(),
        }
    }
}

fn default_max_ahead() -> u64 {
    60
}

fn default_measures() -> PathBuf {
    PathBuf::from("./playbooks/measures/shanxi.yaml")
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
    /// Seconds a client has to send a request's headers (slow-loris). `HAZEFLOW_HTTP_HEADER_TIMEOUT_SECS`.
    #[serde(default = "default_header_timeout")]
    pub header_timeout_secs: u64,
    /// Seconds a client has to send a request's body. `HAZEFLOW_HTTP_BODY_TIMEOUT_SECS`.
    #[serde(default = "default_body_timeout")]
    pub body_timeout_secs: u64,
    /// Connections served at once; more wait in the listen queue. `HAZEFLOW_HTTP_MAX_CONNECTIONS`.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
}

fn default_header_timeout() -> u64 {
    10
}

fn default_body_timeout() -> u64 {
    30
}

fn default_max_connections() -> usize {
    512
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
    /// How many of `tokens`, at the end, came from `tokens_file` (a reload replaces those).
    #[serde(skip)]
    pub from_file: usize,
}

/// Reads a staff tokens file (`name,role,sha256` lines; `#` comments), all of it or an error naming
/// the file, line and column.
pub fn read_token_file(f: &Path) -> Result<Vec<StaffToken>> {
    let text = std::fs::read_to_string(f).with_context(|| format!("staff.tokens_file: cannot read {}", f.display()))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let parts: Vec<&str> = trimmed.split(',').map(str::trim).collect();
        let [name, role, sha] = parts[..] else {
            bail!("{}:{}:1: expected name,role,sha256", f.display(), i + 1);
        };
        if name.is_empty() || role.is_empty() {
            bail!("{}:{}:1: a token needs a name and a role", f.display(), i + 1);
        }
        if sha.len() != 64 || !sha.chars().all(|c| c.is_ascii_hexdigit()) {
            let col = line.rfind(sha).map_or(1, |c| line[..c].chars().count() + 1);
            bail!("{}:{}:{col}: the sha256 of {name} is not 64 hex digits", f.display(), i + 1);
        }
        out.push(StaffToken {
            name: name.into(),
            role: role.into(),
            sha256: sha.to_lowercase(),
        });
    }
    Ok(out)
}

/// The environment the settings read: the process's, and over it the `KEY=VALUE` lines of the file
/// that `HAZEFLOW_ENV_FILE` names (read at start and again on every reload, unlike the process's
/// own environment, which cannot change while it runs). With such a file, `HAZEFLOW_STAFF_TOKENS`
/// comes from the file alone, so that deleting its line revokes the tokens even when the same file
/// was also loaded into the process at start (systemd's `EnvironmentFile=`).
struct Environment {
    file: Option<std::collections::HashMap<String, String>>,
}

impl Environment {
    fn read() -> Result<Environment> {
        let Some(path) = std::env::var_os("HAZEFLOW_ENV_FILE").filter(|p| !p.is_empty()) else {
            return Ok(Environment { file: None });
        };
        let path = PathBuf::from(path);
        let text = std::fs::read_to_string(&path).with_context(|| format!("HAZEFLOW_ENV_FILE: cannot read {}", path.display()))?;
        Ok(Environment {
            file: Some(parse_env_file(&path, &text)?),
        })
    }

    fn get(&self, key: &str) -> Option<String> {
        let from_file = self.file.as_ref().and_then(|f| f.get(key).cloned());
        if key == "HAZEFLOW_STAFF_TOKENS" && self.file.is_some() {
            return from_file;
        }
        from_file.or_else(|| std::env::var(key).ok())
    }
}

/// `KEY=VALUE` lines (systemd's `EnvironmentFile=` form: `#` comments, blank lines, an optional
/// `export `, values optionally in single or double quotes); an error names the file and line.
pub fn parse_env_file(path: &Path, text: &str) -> Result<std::collections::HashMap<String, String>> {
    let mut out = std::collections::HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((key, value)) = line.split_once('=') else {
            bail!("{}:{}:1: expected KEY=VALUE", path.display(), i + 1);
        };
        let key = key.trim();
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            bail!("{}:{}:1: \"{key}\" is not a variable name", path.display(), i + 1);
        }
        let value = value.trim();
        let value = [('"', '"'), ('\'', '\'')]
            .iter()
            .find_map(|(a, b)| value.strip_prefix(*a).and_then(|v| v.strip_suffix(*b)))
            .unwrap_or(value);
        out.insert(key.to_string(), value.to_string());
    }
    Ok(out)
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

/// Creates a folder readable by its owner only (0700) when it does not exist; an existing folder is
/// left as it is.
pub fn private_dir(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(dir).with_context(|| format!("cannot create {}", dir.display()))
}

/// Makes a file readable by its owner only (0600): keys, the store, anything with personal data.
pub fn private_file(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .with_context(|| format!("cannot set the mode of {}", path.display()))?;
    }
    Ok(())
}

/// Opens `path` for writing, readable by its owner only (0600) from the moment it exists: created
/// with that mode (not created under the umask and changed afterwards), truncated, and set to 0600
/// when it was already there (a temporary file left by a crash).
pub fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    let f = o.open(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(f)
}

/// Creates `path`, which must not exist, empty and readable by its owner only (0600) from the moment
/// it exists.
pub fn create_new_private(path: &Path) -> std::io::Result<std::fs::File> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    o.open(path)
}

/// A YAML error as `file:line:column: message`.
fn yaml_error(name: &str, e: &serde_saphyr::Error) -> anyhow::Error {
    let (l, c) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
    let msg = e.without_snippet().to_string();
    let msg = msg.rsplit_once(" at line ").map_or(msg.as_str(), |(m, _)| m).to_string();
    anyhow::Error::new(Diagnostic::at(name, l, c, msg))
}

/// Merges `over` into `base`: mappings key by key, anything else replaced.
fn merge(base: &mut serde_json::Value, over: serde_json::Value) {
    match (base, over) {
        (serde_json::Value::Object(b), serde_json::Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

/// Line and column (1-based) of the setting at `path` (`http.listen`, `webhooks.endpoints[0].url`)
/// in a YAML file, following its keys by indentation; the nearest enclosing key when the rest is
/// not in the file (a default), or 1:1.
fn locate(text: &str, path: &str) -> (usize, usize) {
    let keys: Vec<&str> = path.split(['.', '[']).filter(|k| !k.is_empty() && !k.ends_with(']')).collect();
    let (mut found, mut from, mut indent) = ((1, 1), 0, None::<usize>);
    for key in keys {
        let hit = text.lines().enumerate().skip(from).find_map(|(i, line)| {
            let body = line.trim_start().trim_start_matches("- ");
            let col = line.len() - body.len();
            let deeper = indent.is_none_or(|d| col > d);
            (deeper && (body.starts_with(&format!("{key}:")) || body.starts_with(&format!("\"{key}\":")))).then_some((i, col))
        });
        let Some((i, col)) = hit else { break };
        found = (i + 1, col + 1);
        from = i + 1;
        indent = Some(col);
    }
    found
}

impl Settings {
    /// Loads a file layered over the defaults (or the embedded default alone), then applies the
    /// environment.
    pub fn load(path: Option<&Path>) -> Result<Settings> {
        let mut s = match path {
            Some(p) => {
                let text = std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?;
                Self::layered(&p.display().to_string(), &text)?
            }
            None => Self::parse("config/default.yaml (embedded)", DEFAULT_YAML)?,
        };
        let env = Environment::read()?;
        s.apply_env(|k| env.get(k))?;
        s.load_token_file()?;
        s.load_secret_files()?;
        s.validate()?;
        s.source = Some(path.map_or(Source::Embedded, |p| Source::File(p.to_path_buf())));
        Ok(s)
    }

    /// The staff tokens a reload puts live. Settings read by [`Settings::load`] are read again the
    /// same way — the configuration file, the environment (with `HAZEFLOW_ENV_FILE` read again),
    /// the tokens file — and checked whole, so a token removed from any of them stops working; an
    /// error names the file and line (or the variable). Settings built in code keep their own
    /// tokens, with the tokens file read again.
    pub fn staff_tokens_again(&self) -> Result<Vec<StaffToken>> {
        match &self.source {
            Some(Source::Embedded) => Ok(Settings::load(None)?.staff.tokens),
            Some(Source::File(p)) => Ok(Settings::load(Some(p))?.staff.tokens),
            None => {
                let fixed = &self.staff.tokens[..self.staff.tokens.len().saturating_sub(self.staff.from_file)];
                let read = match &self.staff.tokens_file {
                    Some(f) => read_token_file(f)?,
                    None => Vec::new(),
                };
                Ok(fixed.iter().cloned().chain(read).collect())
            }
        }
    }

    /// Parses a complete settings file; errors name `file:line:column`.
    pub fn parse(name: &str, text: &str) -> Result<Settings> {
        serde_saphyr::from_str::<Settings>(text).map_err(|e| yaml_error(name, &e))
    }

    /// Parses a file that holds only what differs from the defaults: its mappings are merged key by
    /// key into the embedded defaults (a list or a value replaces the default's). Three defaults
    /// belong to the demo and are not inherited: the demo token (`staff.tokens` is empty unless the
    /// file gives tokens), `demo` (false) and `list_seed` (none unless the file turns `demo` on).
    /// Errors name `file:line:column` and the setting.
    pub fn layered(name: &str, text: &str) -> Result<Settings> {
        let file: serde_json::Value = if text.trim().is_empty() {
            serde_json::Value::Object(Default::default())
        } else {
            serde_saphyr::from_str(text).map_err(|e| yaml_error(name, &e))?
        };
        let serde_json::Value::Object(over) = file else {
            bail!("{name}:1:1: expected a mapping of settings (data_dir: …, http: …)");
        };
        let mut base: serde_json::Value =
            serde_saphyr::from_str(DEFAULT_YAML).context("the embedded config/default.yaml does not parse")?;
        base["staff"]["tokens"] = serde_json::json!([]);
        base["demo"] = serde_json::Value::Bool(false);
        let demo = over.get("demo").and_then(serde_json::Value::as_bool).unwrap_or(false);
        if !demo {
            base["list_seed"] = serde_json::Value::Null;
        }
        merge(&mut base, serde_json::Value::Object(over));
        serde_path_to_error::deserialize::<_, Settings>(base).map_err(|e| {
            let path = e.path().to_string();
            let (line, col) = locate(text, &path);
            anyhow::Error::new(Diagnostic::at(name, line as u64, col as u64, format!("{path}: {}", e.into_inner())))
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
        if let Some(v) = get("HAZEFLOW_STORE_URL") {
            self.store.url = Some(v).filter(|v| !v.trim().is_empty());
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
        if let Some(v) = get("HAZEFLOW_FORECAST_MAX_AHEAD_MINUTES") {
            self.forecast.max_ahead_minutes = num("HAZEFLOW_FORECAST_MAX_AHEAD_MINUTES", v)?;
        }
        if let Some(v) = get("HAZEFLOW_HTTP_HEADER_TIMEOUT_SECS") {
            self.http.header_timeout_secs = num("HAZEFLOW_HTTP_HEADER_TIMEOUT_SECS", v)?;
        }
        if let Some(v) = get("HAZEFLOW_HTTP_BODY_TIMEOUT_SECS") {
            self.http.body_timeout_secs = num("HAZEFLOW_HTTP_BODY_TIMEOUT_SECS", v)?;
        }
        if let Some(v) = get("HAZEFLOW_HTTP_MAX_CONNECTIONS") {
            self.http.max_connections = num("HAZEFLOW_HTTP_MAX_CONNECTIONS", v)? as usize;
        }
        if let Some(v) = get("HAZEFLOW_LIST_SEED") {
            self.list_seed = if v.is_empty() { None } else { Some(v.into()) };
        }
        if let Some(v) = get("HAZEFLOW_MEASURES") {
            self.measures = v.into();
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
                    bail!(
                        "HAZEFLOW_STAFF_TOKENS: \"{}\" is not name:role:token",
                        item.split(':').take(2).collect::<Vec<_>>().join(":")
                    );
                };
                self.staff.tokens.push(StaffToken {
                    name: name.into(),
                    role: role.into(),
                    sha256: hash_token(token),
                });
            }
        }
        self.apply_notify_env(&get)?;
        Ok(())
    }

    fn load_token_file(&mut self) -> Result<()> {
        let Some(f) = &self.staff.tokens_file else { return Ok(()) };
        let read = read_token_file(f)?;
        self.staff.from_file = read.len();
        self.staff.tokens.extend(read);
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
        if self.http.header_timeout_secs == 0 || self.http.body_timeout_secs == 0 {
            bail!("http.header_timeout_secs, http.body_timeout_secs: must be more than 0");
        }
        if self.http.max_connections == 0 {
            bail!("http.max_connections: must be more than 0");
        }
        for t in &self.staff.tokens {
            if t.sha256.len() != 64 || !t.sha256.chars().all(|c| c.is_ascii_hexdigit()) {
                bail!("staff.tokens: the sha256 of {} is not 64 hex digits", t.name);
            }
        }
        if !self.http.public_url.starts_with("http://") && !self.http.public_url.starts_with("https://") {
            bail!("http.public_url: \"{}\" must start with http:// or https://", self.http.public_url);
        }
        self.validate_notify()?;
        Ok(())
    }

    /// The listen address.
    pub fn listen_addr(&self) -> Result<SocketAddr> {
        self.http
            .listen
            .parse()
            .with_context(|| format!("http.listen: \"{}\" is not host:port", self.http.listen))
    }

    /// The database file.
    pub fn db_path(&self) -> PathBuf {
        self.data_dir.join("hazeflow.redb")
    }
}

// ---------------------------------------------------------------------------------------------
// Notifications: mail, roster, webhooks (the notifier reads them).

fn default_roster() -> PathBuf {
    PathBuf::from("./config/roster.yaml")
}

/// A secret (SMTP password, webhook key): read from the environment or a file, never from the
/// YAML, and never printed.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Outgoing mail. With no `smtp.host`, messages are written as `.eml` files into `dir`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MailSettings {
    /// The sender, `Name <address>`. `HAZEFLOW_MAIL_FROM`.
    pub from: String,
    /// Folder for `.eml` files when no SMTP host is set; `{data_dir}/mail` when empty.
    /// `HAZEFLOW_MAIL_DIR`.
    pub dir: Option<PathBuf>,
    /// The SMTP server, if any.
    pub smtp: SmtpSettings,
    /// Most messages per second handed to the transport (0: no limit).
    pub rate_per_sec: f64,
    /// Messages sent and not yet recorded, at most: also the most a kill -9 can send twice. The SMTP
    /// sessions they share are `smtp.pool_size`; more messages than sessions keep the sessions
    /// sending while outcomes commit.
    pub concurrency: usize,
    /// Retries with exponential backoff.
    pub retry: RetrySettings,
}

impl Default for MailSettings {
    fn default() -> Self {
        MailSettings {
            from: "山西省重污染天气应急指挥部办公室 <hazeflow@example.cn>".into(),
            dir: None,
            smtp: SmtpSettings::default(),
            rate_per_sec: 50.0,
            concurrency: 8,
            retry: RetrySettings::default(),
        }
    }
}

impl MailSettings {
    /// The folder `.eml` files go to.
    pub fn dir_in(&self, data_dir: &Path) -> PathBuf {
        self.dir.clone().unwrap_or_else(|| data_dir.join("mail"))
    }
}

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain text (a relay on localhost only).
    None,
    /// Plain, then upgraded with STARTTLS, which is required (port 587).
    #[default]
    Starttls,
    /// TLS from the first byte (SMTPS, port 465).
    Tls,
}

impl SmtpTls {
    fn parse(v: &str) -> Result<SmtpTls> {
        match v {
            "none" => Ok(SmtpTls::None),
            "starttls" => Ok(SmtpTls::Starttls),
            "tls" => Ok(SmtpTls::Tls),
            _ => bail!("HAZEFLOW_SMTP_TLS=\"{v}\" is none of none, starttls, tls"),
        }
    }

    /// The usual port.
    pub fn default_port(self) -> u16 {
        match self {
            SmtpTls::None => 25,
            SmtpTls::Starttls => 587,
            SmtpTls::Tls => 465,
        }
    }
}

/// An SMTP server.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpSettings {
    /// Host name; empty: no server, write `.eml` files. `HAZEFLOW_SMTP_HOST`.
    pub host: Option<String>,
    /// Port; by default 25, 587 or 465 after `tls`. `HAZEFLOW_SMTP_PORT`.
    pub port: Option<u16>,
    /// `none`, `starttls` or `tls`. `HAZEFLOW_SMTP_TLS`.
    pub tls: SmtpTls,
    /// User name for AUTH; none: no authentication. `HAZEFLOW_SMTP_USER`.
    pub user: Option<String>,
    /// A file holding the password (first line). The password itself comes only from here or from
    /// `HAZEFLOW_SMTP_PASSWORD`. `HAZEFLOW_SMTP_PASSWORD_FILE`.
    pub password_file: Option<PathBuf>,
    /// The password, from the environment or `password_file`.
    #[serde(skip)]
    pub password: Option<Secret>,
    /// Extra CA certificate (PEM) to trust, for a server with a private CA.
    pub ca_file: Option<PathBuf>,
    /// SMTP sessions open at once, at most (kept open between messages).
    pub pool_size: u32,
    /// Seconds per SMTP command before giving up on the attempt.
    pub timeout_secs: u64,
    /// Name sent in EHLO; the host name by default.
    pub hello_name: Option<String>,
}

impl Default for SmtpSettings {
    fn default() -> Self {
        SmtpSettings {
            host: None,
            port: None,
            tls: SmtpTls::Starttls,
            user: None,
            password_file: None,
            password: None,
            ca_file: None,
            pool_size: 8,
            timeout_secs: 30,
            hello_name: None,
        }
    }
}

impl SmtpSettings {
    /// The port to connect to.
    pub fn port(&self) -> u16 {
        self.port.unwrap_or_else(|| self.tls.default_port())
    }
}

/// Exponential backoff: attempt `n` failing waits `base_secs · factor^(n-1)`, at most
/// `max_delay_secs`; after `max_attempts` the message has failed for good.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetrySettings {
    /// First wait, in seconds.
    pub base_secs: u64,
    /// Growth of the wait per attempt (≥ 1).
    pub factor: f64,
    /// Longest wait, in seconds.
    pub max_delay_secs: u64,
    /// Attempts in all, the first included.
    pub max_attempts: u32,
}

impl Default for RetrySettings {
    fn default() -> Self {
        RetrySettings {
            base_secs: 30,
            factor: 2.0,
            max_delay_secs: 3600,
            max_attempts: 10,
        }
    }
}

impl RetrySettings {
    /// The wait after attempt `attempt` (1-based) failed.
    pub fn delay_after(&self, attempt: u32) -> chrono::Duration {
        let exp = self.factor.powi(attempt.saturating_sub(1).min(64) as i32);
        let secs = (self.base_secs as f64 * exp).min(self.max_delay_secs as f64);
        chrono::Duration::milliseconds((secs * 1000.0) as i64)
    }

    fn validate(&self, at: &str) -> Result<()> {
        if self.base_secs == 0 {
            bail!("{at}.base_secs: must be more than 0");
        }
        if !self.factor.is_finite() || self.factor < 1.0 {
            bail!("{at}.factor: must be 1 or more");
        }
        if self.max_delay_secs < self.base_secs {
            bail!("{at}.max_delay_secs: must be at least base_secs");
        }
        if self.max_attempts == 0 {
            bail!("{at}.max_attempts: must be more than 0");
        }
        Ok(())
    }
}

/// Webhook endpoints and how they are sent to.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookSettings {
    /// The endpoints.
    pub endpoints: Vec<WebhookEndpoint>,
    /// Most POSTs per second (0: no limit).
    pub rate_per_sec: f64,
    /// POSTs in flight at once.
    pub concurrency: usize,
    /// Seconds per request.
    pub timeout_secs: u64,
    /// Retries with exponential backoff.
    pub retry: RetrySettings,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        WebhookSettings {
            endpoints: Vec::new(),
            rate_per_sec: 20.0,
            concurrency: 4,
            timeout_secs: 10,
            retry: RetrySettings::default(),
        }
    }
}

/// The body a webhook endpoint expects.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WebhookFormat {
    /// hazeflow's own JSON (id, event, subject, text, data, recipients).
    #[default]
    Hazeflow,
    /// `{"msgtype":"text","text":{"content":…}}`, as 企业微信 and 钉钉 group robots take it.
    Robot,
}

/// One endpoint: a JSON POST per message, signed with HMAC-SHA256 over the body.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookEndpoint {
    /// Id (letters, digits, `-`, `_`), used in message ids and logs.
    pub id: String,
    /// `https://…` (checked against the Mozilla root certificates, plus `ca_file`) or `http://…`.
    pub url: String,
    /// Events it hears of, by the names of the roster's `notify:` mapping (`issued`, `lifted`, …).
    pub events: Vec<String>,
    /// Regions it covers (with everything below them); empty: all.
    #[serde(default)]
    pub regions: Vec<String>,
    /// Body format.
    #[serde(default)]
    pub format: WebhookFormat,
    /// Name of the environment variable holding the signing secret.
    #[serde(default)]
    pub secret_env: Option<String>,
    /// File holding the signing secret (first line).
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
    /// The secret, from `secret_env` or `secret_file`.
    #[serde(skip)]
    pub secret: Option<Secret>,
    /// Extra CA certificates (a PEM file, one or more certificates) trusted for this endpoint
    /// besides the built-in roots, for a gateway inside a department network with a private CA.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

/// The certificates of a PEM file of extra CA certificates (`ca_file` settings); `field` names
/// the setting in errors. Fails when the file cannot be read, holds no certificate, or one of them
/// is not a valid X.509 certificate.
pub fn read_ca_file(path: &Path, field: &str) -> Result<Vec<reqwest::Certificate>> {
    let pem = std::fs::read(path).with_context(|| format!("{field}: cannot read {}", path.display()))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem)
        .map_err(|e| anyhow::anyhow!("{field}: {} is not a PEM certificate file ({e})", path.display()))?;
    if certs.is_empty() {
        bail!("{field}: {} holds no PEM certificate (-----BEGIN CERTIFICATE-----)", path.display());
    }
    // The PEM armour may wrap bytes that are no certificate: let rustls parse each one.
    for c in &certs {
        reqwest::Client::builder()
            .tls_built_in_root_certs(false)
            .add_root_certificate(c.clone())
            .build()
            .map_err(|e| anyhow::anyhow!("{field}: {} holds an invalid certificate ({})", path.display(), error_chain(&e)))?;
    }
    Ok(certs)
}

/// An error and its causes, `a: b: c`.
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let s = c.to_string();
        if !out.contains(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        cur = c.source();
    }
    out
}

fn first_line(path: &Path, what: &str) -> Result<Secret> {
    let text = std::fs::read_to_string(path).with_context(|| format!("{what}: cannot read {}", path.display()))?;
    Ok(Secret::new(text.lines().next().unwrap_or("").trim_end_matches('\r').to_string()))
}

impl Settings {
    /// `HAZEFLOW_SMTP_*`, `HAZEFLOW_MAIL_*`, `HAZEFLOW_ROSTER` and the webhooks' `secret_env`.
    fn apply_notify_env(&mut self, get: &impl Fn(&str) -> Option<String>) -> Result<()> {
        let smtp = &mut self.mail.smtp;
        if let Some(v) = get("HAZEFLOW_SMTP_HOST") {
            smtp.host = Some(v).filter(|h| !h.trim().is_empty());
        }
        if let Some(v) = get("HAZEFLOW_SMTP_PORT") {
            smtp.port = Some(
                v.parse()
                    .with_context(|| format!("HAZEFLOW_SMTP_PORT=\"{v}\" is not a port number"))?,
            );
        }
        if let Some(v) = get("HAZEFLOW_SMTP_TLS") {
            smtp.tls = SmtpTls::parse(&v)?;
        }
        if let Some(v) = get("HAZEFLOW_SMTP_USER") {
            smtp.user = Some(v).filter(|u| !u.is_empty());
        }
        if let Some(v) = get("HAZEFLOW_SMTP_PASSWORD") {
            smtp.password = Some(Secret::new(v));
        }
        if let Some(v) = get("HAZEFLOW_SMTP_PASSWORD_FILE") {
            smtp.password_file = Some(v.into());
        }
        if let Some(v) = get("HAZEFLOW_MAIL_FROM") {
            self.mail.from = v;
        }
        if let Some(v) = get("HAZEFLOW_MAIL_DIR") {
            self.mail.dir = Some(v.into());
        }
        if let Some(v) = get("HAZEFLOW_ROSTER") {
            self.roster = v.into();
        }
        for e in &mut self.webhooks.endpoints {
            if let Some(name) = &e.secret_env {
                let v = get(name).with_context(|| format!("webhooks: endpoint {}: the environment variable {name} is not set", e.id))?;
                e.secret = Some(Secret::new(v));
            }
        }
        Ok(())
    }

    /// Reads the SMTP password file and the webhooks' secret files (the environment wins).
    fn load_secret_files(&mut self) -> Result<()> {
        let smtp = &mut self.mail.smtp;
        if smtp.password.is_none()
            && let Some(f) = &smtp.password_file
        {
            smtp.password = Some(first_line(f, "mail.smtp.password_file")?);
        }
        for e in &mut self.webhooks.endpoints {
            if e.secret.is_none()
                && let Some(f) = &e.secret_file
            {
                e.secret = Some(first_line(f, &format!("webhooks: endpoint {}: secret_file", e.id))?);
            }
        }
        Ok(())
    }

    /// Checks the mail, roster and webhook settings.
    fn validate_notify(&self) -> Result<()> {
        let m = &self.mail;
        if m.from.parse::<lettre::message::Mailbox>().is_err() {
            bail!("mail.from: \"{}\" is not a mailbox (Name <user@host>)", m.from);
        }
        if !m.rate_per_sec.is_finite() || m.rate_per_sec < 0.0 {
            bail!("mail.rate_per_sec: must be 0 (no limit) or more");
        }
        if m.concurrency == 0 {
            bail!("mail.concurrency: must be more than 0");
        }
        m.retry.validate("mail.retry")?;
        let smtp = &m.smtp;
        if let Some(host) = &smtp.host {
            if host.trim().is_empty() || host.contains(char::is_whitespace) {
                bail!("mail.smtp.host: \"{host}\" is not a host name");
            }
            if smtp.port() == 0 {
                bail!("mail.smtp.port: must be more than 0");
            }
            if smtp.user.is_some() && smtp.password.is_none() && smtp.password_file.is_none() {
                bail!("mail.smtp.user is set but there is no password (HAZEFLOW_SMTP_PASSWORD or mail.smtp.password_file)");
            }
            if smtp.pool_size == 0 {
                bail!("mail.smtp.pool_size: must be more than 0");
            }
            if smtp.timeout_secs == 0 {
                bail!("mail.smtp.timeout_secs: must be more than 0");
            }
        }
        let w = &self.webhooks;
        if !w.rate_per_sec.is_finite() || w.rate_per_sec < 0.0 {
            bail!("webhooks.rate_per_sec: must be 0 (no limit) or more");
        }
        if w.concurrency == 0 {
            bail!("webhooks.concurrency: must be more than 0");
        }
        if w.timeout_secs == 0 {
            bail!("webhooks.timeout_secs: must be more than 0");
        }
        w.retry.validate("webhooks.retry")?;
        let mut seen = std::collections::BTreeSet::new();
        for (i, e) in w.endpoints.iter().enumerate() {
            let at = format!("webhooks.endpoints[{i}]");
            if e.id.is_empty() || !e.id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
                bail!("{at}.id: \"{}\" must be letters, digits, - and _", e.id);
            }
            if !seen.insert(e.id.as_str()) {
                bail!("{at}.id: \"{}\" is used twice", e.id);
            }
            let rest = e.url.strip_prefix("https://").or_else(|| e.url.strip_prefix("http://"));
            if rest.is_none_or(|r| r.is_empty() || r.starts_with('/')) {
                bail!("{at}.url: \"{}\" must be an https:// (or http://) URL with a host", e.url);
            }
            if let Err(err) = reqwest::Url::parse(&e.url) {
                bail!("{at}.url: \"{}\" is not a URL ({err})", e.url);
            }
            if let Some(f) = &e.ca_file {
                read_ca_file(f, &format!("{at}.ca_file"))?;
            }
            if e.events.is_empty() {
                bail!("{at}.events: name at least one event");
            }
            for r in &e.regions {
                crate::domain::region::RegionCode::parse(r).map_err(|err| anyhow::anyhow!("{at}.regions: {err}"))?;
            }
            if e.secret_env.is_some() && e.secret_file.is_some() {
                bail!("{at}: give one of secret_env and secret_file, not both");
            }
            if e.secret.is_none() && e.secret_env.is_none() && e.secret_file.is_none() {
                bail!("{at}: no signing secret (set secret_env or secret_file)");
            }
            if e.secret.as_ref().is_some_and(|s| s.expose().is_empty()) {
                bail!("{at}: the signing secret is empty");
            }
        }
        Ok(())
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
    fn a_file_holds_only_what_differs_and_the_demo_is_not_inherited() {
        let s = Settings::layered("site.yaml", "data_dir: /srv/hz\nhttp:\n  listen: 0.0.0.0:9000\ndemo: false\n").unwrap();
        assert_eq!(s.data_dir, PathBuf::from("/srv/hz"));
        assert_eq!(s.http.listen, "0.0.0.0:9000");
        assert_eq!(
            s.http.public_url, "http://127.0.0.1:8080",
            "the rest of http comes from the defaults"
        );
        assert_eq!(s.mail.concurrency, 8);
        assert!(s.staff.tokens.is_empty(), "the demo token is never inherited by a site's file");
        assert!(s.list_seed.is_none() && !s.demo);
        let demo = Settings::layered("demo.yaml", "demo: true").unwrap();
        assert!(demo.demo && demo.list_seed.is_some() && demo.staff.tokens.is_empty());
        assert!(Settings::layered("empty.yaml", "").is_ok());
    }

    #[test]
    fn a_layered_file_names_the_line_column_and_setting_it_got_wrong() {
        let e = Settings::layered("site.yaml", "data_dir: /srv\nhttp:\n  listen: x\n  max_connections: many\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("site.yaml:4:3: http.max_connections: invalid type"), "{e}");
        let e = Settings::layered("site.yaml", "mail:\n  smtp:\n    hots: a\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("site.yaml:3:5:") && e.contains("unknown field `hots`"), "{e}");
        let e = Settings::layered("site.yaml", "http: [1\n").unwrap_err().to_string();
        assert!(e.starts_with("site.yaml:"), "{e}");
    }

    #[test]
    fn a_bad_value_names_the_setting() {
        let mut s = Settings::parse("default", DEFAULT_YAML).unwrap();
        s.http.listen = "localhost".into();
        assert_eq!(s.validate().unwrap_err().to_string(), "http.listen: \"localhost\" is not host:port");
    }

    fn with_endpoint(url: &str, ca_file: Option<PathBuf>) -> Settings {
        let mut s = Settings::parse("default", DEFAULT_YAML).unwrap();
        s.webhooks.endpoints.push(WebhookEndpoint {
            id: "wecom".into(),
            url: url.into(),
            events: vec!["issued".into()],
            regions: vec![],
            format: WebhookFormat::Robot,
            secret_env: None,
            secret_file: None,
            secret: Some(Secret::new("k")),
            ca_file,
        });
        s
    }

    #[test]
    fn https_webhooks_are_accepted_and_other_schemes_are_refused_naming_the_field() {
        with_endpoint("https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=x", None)
            .validate()
            .unwrap();
        with_endpoint("http://127.0.0.1:9000/hook", None).validate().unwrap();
        for bad in ["ftp://gw.example.cn/hook", "qyapi.weixin.qq.com/send", "https://", "https:///x"] {
            let e = with_endpoint(bad, None).validate().unwrap_err().to_string();
            assert!(e.starts_with("webhooks.endpoints[0].url: ") && e.contains(bad), "{e}");
        }
    }

    #[test]
    fn a_webhook_ca_file_that_is_missing_or_not_a_certificate_is_named_with_its_file() {
        let dir = tempfile::TempDir::new().unwrap();
        let missing = dir.path().join("missing.pem");
        let e = with_endpoint("https://gw.example.cn/hook", Some(missing.clone()))
            .validate()
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("webhooks.endpoints[0].ca_file: cannot read ") && e.contains(&missing.display().to_string()),
            "{e}"
        );

        let text = dir.path().join("notes.pem");
        std::fs::write(&text, "not a certificate\n").unwrap();
        let e = with_endpoint("https://gw.example.cn/hook", Some(text.clone()))
            .validate()
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("webhooks.endpoints[0].ca_file: ") && e.contains(&text.display().to_string()) && e.contains("no PEM certificate"),
            "{e}"
        );

        // Valid armour around bytes that are no certificate.
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "-----BEGIN CERTIFICATE-----\naGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n").unwrap();
        let e = with_endpoint("https://gw.example.cn/hook", Some(junk.clone()))
            .validate()
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("webhooks.endpoints[0].ca_file: ")
                && e.contains(&junk.display().to_string())
                && e.contains("invalid certificate"),
            "{e}"
        );
    }
}
